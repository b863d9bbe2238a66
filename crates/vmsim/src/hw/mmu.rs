//! The MMU: TLB hierarchy, page-walk caches and the walker, behind one call,
//! [`Mmu::translate`].
//!
//! The hardware reports; it never decides policy. A translation either yields a physical
//! address or a [`Fault`] saying exactly why, and the kernel decides what to do.
//!
//! Modelling choices (see docs/modelling.md):
//! - The walker sets Accessed on every entry it uses where the format has the bit there
//!   (x86 at every level, RISC-V and textbook on leaves), and Dirty on a written leaf.
//!   RISC-V A/D updates are done in hardware (Svadu) rather than by trapping.
//! - A TLB entry that matches but does not allow the access (a write to an entry filled
//!   while the page was clean, or an entry made stale by a change that widened access) is
//!   dropped and the tables are walked again; the walk's verdict stands. This is what x86
//!   does for Dirty, and what its "a page fault invalidates the entry" rule amounts to
//!   once the kernel returns from a spurious fault.
//! - Supervisor code may read and write user pages (x86 SMAP off, RISC-V SUM set) but
//!   may not execute them (x86 SMEP on; always so on RISC-V).

use super::machine::{Holds, Inclusion, MachineSpec};
use super::paging::{Paging, MAX_LEVELS};
use super::pte::{AdUpdate, Flags, Pte};
use super::ram::PhysMem;
use super::story::{NoRecord, PteRead, Recorder, Step, Story, Translation};
use super::tlb::{perm, Tlb, TlbEntry};
use super::walk_cache::WalkCache;
use crate::addr::{PhysAddr, VirtAddr};
use std::fmt;
use thiserror::Error;

/// What an access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessKind {
    /// A load.
    Read = 0,
    /// A store.
    Write = 1,
    /// An instruction fetch.
    Execute = 2,
}

/// The kinds of a run of accesses handed to [`Mmu::translate_run`]: one kind for the
/// whole run ([`AccessKind`]), or one per access (`&[AccessKind]`, as a replay's loads
/// and stores come interleaved).
pub trait RunKinds: Copy {
    /// The kind of access `i`; `i` is below [`RunKinds::len`].
    fn kind(&self, i: usize) -> AccessKind;
    /// How many accesses this gives a kind to.
    fn len(&self) -> usize;
    /// Whether it gives none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The kinds from access `i` on.
    fn skip(self, i: usize) -> Self;
}

impl RunKinds for AccessKind {
    #[inline(always)]
    fn kind(&self, _: usize) -> AccessKind {
        *self
    }
    #[inline(always)]
    fn len(&self) -> usize {
        usize::MAX
    }
    #[inline(always)]
    fn skip(self, _: usize) -> Self {
        self
    }
}

impl RunKinds for &[AccessKind] {
    #[inline(always)]
    fn kind(&self, i: usize) -> AccessKind {
        debug_assert!(i < <[AccessKind]>::len(self));
        // SAFETY: callers ask only for `i < len()` (translate_run bounds its run by it).
        unsafe { *self.get_unchecked(i) }
    }
    #[inline(always)]
    fn len(&self) -> usize {
        <[AccessKind]>::len(self)
    }
    #[inline(always)]
    fn skip(self, i: usize) -> Self {
        self.get(i..).unwrap_or(&[])
    }
}

/// The privilege an access is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Privilege {
    /// User mode (x86 CPL 3, RISC-V U-mode).
    User = 0,
    /// Supervisor mode (the kernel).
    Supervisor = 1,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultCause {
    /// The address is not canonical (x86-64, RISC-V) or is wider than the machine's
    /// virtual address (textbook).
    NonCanonical,
    /// The entry at this level is not present.
    NotPresent {
        /// The level (1 = the entry that would map a base page).
        level: u32,
    },
    /// The entry at this level has reserved bits set or an impossible encoding.
    Reserved {
        /// The level.
        level: u32,
    },
    /// A write to a page that is not writable.
    WriteProtect,
    /// A read of a page that is not readable (RISC-V execute-only pages).
    NoRead,
    /// An instruction fetch from a page that is not executable.
    NoExecute,
    /// A user-mode access to a supervisor-only page.
    UserToSupervisor,
    /// A supervisor-mode instruction fetch from a user page.
    SupervisorExecUser,
    /// A table the walk needed lies outside RAM.
    BusError {
        /// The physical address of the entry that could not be read.
        pa: PhysAddr,
    },
}

impl FaultCause {
    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            FaultCause::NonCanonical => "non-canonical",
            FaultCause::NotPresent { .. } => "not-present",
            FaultCause::Reserved { .. } => "reserved-bit",
            FaultCause::WriteProtect => "write-protect",
            FaultCause::NoRead => "no-read",
            FaultCause::NoExecute => "no-execute",
            FaultCause::UserToSupervisor => "user-to-supervisor",
            FaultCause::SupervisorExecUser => "supervisor-exec-user",
            FaultCause::BusError { .. } => "bus-error",
        }
    }

    /// Every cause, in report order (with placeholder levels).
    pub const ALL: [FaultCause; 9] = [
        FaultCause::NonCanonical,
        FaultCause::NotPresent { level: 0 },
        FaultCause::Reserved { level: 0 },
        FaultCause::WriteProtect,
        FaultCause::NoRead,
        FaultCause::NoExecute,
        FaultCause::UserToSupervisor,
        FaultCause::SupervisorExecUser,
        FaultCause::BusError { pa: PhysAddr(0) },
    ];

    fn index(&self) -> usize {
        match self {
            FaultCause::NonCanonical => 0,
            FaultCause::NotPresent { .. } => 1,
            FaultCause::Reserved { .. } => 2,
            FaultCause::WriteProtect => 3,
            FaultCause::NoRead => 4,
            FaultCause::NoExecute => 5,
            FaultCause::UserToSupervisor => 6,
            FaultCause::SupervisorExecUser => 7,
            FaultCause::BusError { .. } => 8,
        }
    }
}

/// A failed translation: the page fault the hardware raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    /// The faulting address.
    pub va: VirtAddr,
    /// What the access did.
    pub access: AccessKind,
    /// With which privilege.
    pub mode: Privilege,
    /// Why it failed.
    pub cause: FaultCause,
    /// Where the walk read the base-page entry (level 1) it stopped at, when it got
    /// that far: the fault handler reads the entry there instead of walking again.
    /// `None` for a fault raised above level 1 or before any walk.
    pub entry: Option<PhysAddr>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.access {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
            AccessKind::Execute => "execute",
        };
        let who = match self.mode {
            Privilege::User => "user",
            Privilege::Supervisor => "supervisor",
        };
        write!(f, "{who} {what} of {}: ", self.va)?;
        match self.cause {
            FaultCause::NonCanonical => write!(f, "address is not canonical"),
            FaultCause::NotPresent { level } => write!(f, "entry not present at level {level}"),
            FaultCause::Reserved { level } => {
                write!(f, "reserved bits set in the entry at level {level}")
            }
            FaultCause::WriteProtect => write!(f, "page is not writable"),
            FaultCause::NoRead => write!(f, "page is not readable"),
            FaultCause::NoExecute => write!(f, "page is not executable"),
            FaultCause::UserToSupervisor => write!(f, "page is supervisor-only"),
            FaultCause::SupervisorExecUser => write!(f, "supervisor may not execute a user page"),
            FaultCause::BusError { pa } => write!(f, "page-table entry at {pa} is outside RAM"),
        }
    }
}

/// Errors from MMU control operations.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MmuError {
    /// An address-space id wider than the machine's.
    #[error("address-space id {asid} does not fit in the machine's {bits} bits")]
    AsidTooWide {
        /// The id.
        asid: u32,
        /// The machine's width.
        bits: u32,
    },
}

/// Counters of the MMU as a whole; the TLBs and walk caches keep their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MmuCounters {
    /// Translations asked for, by [`AccessKind`].
    pub translations: [u64; 3],
    /// Page walks.
    pub walks: u64,
    /// PTEs read by walks.
    pub pte_reads: u64,
    /// PTEs written back by walks (Accessed or Dirty set).
    pub pte_writes: u64,
    /// TLB entries that matched but had to be walked again because the page was clean
    /// and the access a write.
    pub dirty_rewalks: u64,
    /// TLB entries that matched but did not allow the access, and were walked again.
    pub stale_rewalks: u64,
    /// Faults, by cause (in the order of [`FaultCause::ALL`]).
    pub faults: [u64; 9],
    /// Single-page invalidations.
    pub invalidations: u64,
    /// Whole-TLB or whole-ASID flushes.
    pub flushes: u64,
    /// Context switches (root/ASID loads).
    pub context_switches: u64,
}

impl MmuCounters {
    /// All translations.
    pub fn total_translations(&self) -> u64 {
        self.translations.iter().sum()
    }
    /// All faults.
    pub fn total_faults(&self) -> u64 {
        self.faults.iter().sum()
    }
    /// Faults of one cause.
    pub fn faults_of(&self, cause: FaultCause) -> u64 {
        self.faults[cause.index()]
    }
}

/// Which addresses an invalidation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsidScope {
    /// Entries of this address space, and global entries.
    One(u32),
    /// Entries of every address space.
    All,
}

/// The TLBs probed for one kind of access, in level order.
#[derive(Clone, Copy, Debug, Default)]
struct Path {
    len: u8,
    tlb: [u8; 8],
}

/// (mask, want) of TLB permission bits per access kind and privilege: an entry allows
/// the access when `perms & mask == want`. A write also wants D, so that a write to a
/// clean page goes back to the tables to set Dirty.
const PERM_CHECK: [[(u8, u8); 2]; 3] = [
    [(perm::R | perm::U, perm::R | perm::U), (perm::R, perm::R)],
    [
        (perm::W | perm::D | perm::U, perm::W | perm::D | perm::U),
        (perm::W | perm::D, perm::W | perm::D),
    ],
    [
        (perm::X | perm::U, perm::X | perm::U),
        (perm::X | perm::U, perm::X),
    ],
];

fn perm_fault(perms: u8, access: AccessKind, mode: Privilege) -> Option<FaultCause> {
    if mode == Privilege::User && perms & perm::U == 0 {
        return Some(FaultCause::UserToSupervisor);
    }
    match access {
        AccessKind::Read if perms & perm::R == 0 => Some(FaultCause::NoRead),
        AccessKind::Write if perms & perm::W == 0 => Some(FaultCause::WriteProtect),
        AccessKind::Execute if perms & perm::X == 0 => Some(FaultCause::NoExecute),
        AccessKind::Execute if mode == Privilege::Supervisor && perms & perm::U != 0 => {
            Some(FaultCause::SupervisorExecUser)
        }
        _ => None,
    }
}

fn perm_bits(f: Flags) -> u8 {
    let mut p = 0;
    for (flag, bit) in [
        (Flags::READ, perm::R),
        (Flags::WRITE, perm::W),
        (Flags::EXEC, perm::X),
        (Flags::USER, perm::U),
        (Flags::DIRTY, perm::D),
        (Flags::GLOBAL, perm::G),
    ] {
        if f.contains(flag) {
            p |= bit;
        }
    }
    p
}

const NO_PWC: u8 = u8::MAX;
const NO_TLB: usize = usize::MAX;

/// The memory-management unit of one hardware thread.
#[derive(Clone, Debug)]
pub struct Mmu {
    paging: Paging,
    tlbs: Vec<Tlb>,
    /// Index 0: loads and stores; index 1: instruction fetches.
    paths: [Path; 2],
    /// The first TLB of each path ([`NO_TLB`] if the path is empty), for the fast path.
    front: [usize; 2],
    /// `va` is canonical when `va + canon_add < canon_limit` (wrapping): one add and one
    /// compare, whether the format sign-extends or zero-extends.
    canon_add: u64,
    canon_limit: u64,
    pwcs: Vec<WalkCache>,
    pwc_of_level: [u8; MAX_LEVELS + 1],
    inclusion: Inclusion,
    asid_tagged: bool,
    asid_bits: u32,
    root: PhysAddr,
    asid: u32,
    pte_read_latency: u32,
    walk_cache_latency: u32,
    /// [`Mmu::estimated_cycles`], kept as the counters it is made of move (every TLB
    /// lookup, walk-cache lookup and PTE read at its latency): the clock of a replay
    /// reads it at nearly every fault.
    cycles: u64,
    /// Counters of the MMU as a whole.
    pub counters: MmuCounters,
}

impl Mmu {
    /// An MMU shaped by `spec`, with empty TLBs and walk caches and the root at address 0.
    pub fn new(spec: &MachineSpec) -> Mmu {
        let tlbs: Vec<Tlb> = spec
            .tlbs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Tlb::new(
                    t,
                    &spec.paging,
                    spec.seed.wrapping_add(i as u64 * 0x1234_5677),
                )
            })
            .collect();
        let mut paths = [Path::default(); 2];
        for (p, want) in [(0, Holds::Data), (1, Holds::Instr)] {
            for (i, t) in tlbs.iter().enumerate() {
                if t.holds == want || t.holds == Holds::Unified {
                    let path = &mut paths[p];
                    path.tlb[path.len as usize] = i as u8;
                    path.len += 1;
                }
            }
        }
        let pwcs: Vec<WalkCache> = spec
            .walk_caches
            .iter()
            .map(|w| {
                WalkCache::new(
                    w,
                    spec.paging.level_shift(w.level),
                    spec.seed ^ w.level as u64,
                )
            })
            .collect();
        let mut pwc_of_level = [NO_PWC; MAX_LEVELS + 1];
        for (i, w) in pwcs.iter().enumerate() {
            pwc_of_level[w.level as usize] = i as u8;
        }
        let front = paths.map(|p| if p.len > 0 { p.tlb[0] as usize } else { NO_TLB });
        let va_bits = spec.paging.va_bits;
        // Sign-extended: the canonical addresses are [-2^(b-1), 2^(b-1)), which adding
        // 2^(b-1) maps onto [0, 2^b). Zero-extended: [0, 2^b) as it is.
        let canon_add = if spec.paging.sign_extend {
            1u64 << (va_bits - 1)
        } else {
            0
        };
        let canon_limit = 1u64.checked_shl(va_bits).map_or(u64::MAX, |l| l - 1);
        Mmu {
            paging: spec.paging,
            front,
            canon_add,
            canon_limit,
            tlbs,
            paths,
            pwcs,
            pwc_of_level,
            inclusion: spec.inclusion,
            asid_tagged: spec.asid_tagged,
            asid_bits: spec.asid_bits,
            root: PhysAddr(0),
            asid: 0,
            pte_read_latency: spec.pte_read_latency,
            walk_cache_latency: spec.walk_cache_latency,
            cycles: 0,
            counters: MmuCounters::default(),
        }
    }

    /// The paging geometry.
    pub fn paging(&self) -> &Paging {
        &self.paging
    }

    /// The TLBs, in level order.
    pub fn tlbs(&self) -> &[Tlb] {
        &self.tlbs
    }

    /// The walk caches, from the lowest level up.
    pub fn walk_caches(&self) -> &[WalkCache] {
        &self.pwcs
    }

    /// Sets of the first data TLB's first array and its page shift (for state files).
    pub fn first_tlb_geometry(&self) -> Option<(u64, u32)> {
        self.tlbs.get(self.front[0])?.first_geometry()
    }

    /// Preloads an entry into the first data TLB's first array (for state files).
    pub fn preload_first_tlb(&mut self, va: VirtAddr, asid: u32, entry: TlbEntry) {
        let asid = self.tag_of(asid);
        if let Some(t) = self.tlbs.get_mut(self.front[0]) {
            t.preload_first(va, asid, entry);
        }
    }

    /// Exchanges the TLBs of level `level` and up with `other`'s (an MMU of the same
    /// machine): how a TLB the CPUs share follows the running CPU.
    ///
    /// Each MMU's clock ([`Mmu::estimated_cycles`]) counts the lookups of the TLBs it
    /// holds, so the cycles of the lookups made in the exchanged ones go with them.
    pub(crate) fn swap_tlbs_from(&mut self, other: &mut Mmu, level: u32) {
        for (mine, theirs) in self.tlbs.iter_mut().zip(other.tlbs.iter_mut()) {
            if mine.level >= level {
                let (a, b) = (lookup_cycles(mine), lookup_cycles(theirs));
                std::mem::swap(mine, theirs);
                self.cycles = self.cycles + b - a;
                other.cycles = other.cycles + a - b;
            }
        }
    }

    /// The entry any of the TLBs holds for `va` in address space `asid` (the first in
    /// level order), without marking it used or counting: what the next access of `va`
    /// there could use without a walk.
    pub fn peek(&self, va: VirtAddr, asid: u32) -> Option<TlbEntry> {
        let asid = self.tag_of(asid);
        self.tlbs.iter().find_map(|t| t.peek(va, asid))
    }

    /// The current root table and address-space id.
    pub fn context(&self) -> (PhysAddr, u32) {
        (self.root, self.asid)
    }

    /// Loads a new root table and address-space id (x86 `mov cr3`, RISC-V `csrw satp`).
    /// Without ASID tagging this flushes every non-global TLB entry and all walk caches,
    /// and the id is ignored.
    pub fn set_context(&mut self, root: PhysAddr, asid: u32) -> Result<(), MmuError> {
        if self.asid_tagged && asid >> self.asid_bits != 0 {
            return Err(MmuError::AsidTooWide {
                asid,
                bits: self.asid_bits,
            });
        }
        self.counters.context_switches += 1;
        self.root = root;
        if self.asid_tagged {
            self.asid = asid;
        } else {
            self.asid = 0;
            self.flush_non_global();
        }
        Ok(())
    }

    /// Translates `va` for an access of `access` kind at privilege `mode`, in the current
    /// context. Allocates nothing, hashes nothing.
    #[inline(always)]
    pub fn translate(
        &mut self,
        ram: &mut PhysMem,
        va: VirtAddr,
        access: AccessKind,
        mode: Privilege,
    ) -> Result<PhysAddr, Fault> {
        // Fast path: a hit in the first probe of the first TLB (the L1's base-page array)
        // that allows the access. Anything else takes the full path, which starts over;
        // the probe here only marked the entry used, which the full path's own probe
        // repeats, so replacement state ends the same either way.
        let t = self.front[(access == AccessKind::Execute) as usize];
        if va.0.wrapping_add(self.canon_add) <= self.canon_limit && t != NO_TLB {
            let (mask, want) = PERM_CHECK[access as usize][mode as usize];
            let asid = self.asid;
            if let Some(tlb) = self.tlbs.get_mut(t) {
                if let Some(e) = tlb.lookup_first(va, asid) {
                    if e.perms & mask == want {
                        tlb.counters.hits[(e.level as usize).min(MAX_LEVELS)] += 1;
                        self.cycles += tlb.latency as u64;
                        self.counters.translations[access as usize] += 1;
                        let offset = va.0 & ((1u64 << (e.shift & 63)) - 1);
                        return Ok(PhysAddr(e.pa_base | offset));
                    }
                }
            }
        }
        self.translate_slow(ram, va, access, mode)
    }

    /// Translates a run of accesses, as [`Mmu::translate`] would one by one, for as
    /// long as each hits the first probe of the first TLB and is allowed: writes the
    /// physical addresses to `out` and returns how many it translated. The caller
    /// translates the next one with [`Mmu::translate`] (a miss, a fault, or a hit in
    /// another array) and carries on. Same counters, same replacement state, as the
    /// single calls; the per-access work is only the set scan, the permission check and
    /// the address, with the TLB's shape held in registers across the run.
    ///
    /// `kinds` is one kind for the run or one per access. Loads and stores mix freely;
    /// the run stops before the first access whose kind goes through another first TLB
    /// than the first access's (an instruction fetch among data accesses, or the
    /// reverse), which the caller then translates alone.
    pub fn translate_run<K: RunKinds>(
        &mut self,
        vas: &[VirtAddr],
        kinds: K,
        mode: Privilege,
        out: &mut [PhysAddr],
    ) -> usize {
        let n = vas.len().min(out.len()).min(kinds.len());
        if n == 0 {
            return 0;
        }
        let fetch = kinds.kind(0) == AccessKind::Execute;
        let t = self.front[fetch as usize];
        let (canon_add, canon_limit) = (self.canon_add, self.canon_limit);
        let checks = PERM_CHECK.map(|c| c[mode as usize]);
        let asid = self.asid;
        let Some(tlb) = self.tlbs.get_mut(t) else {
            return 0;
        };
        let va_of = |i: usize| {
            // SAFETY: `lookup_run` asks only for `i < n`, and `n <= vas.len()`.
            let va = unsafe { *vas.get_unchecked(i) };
            (va.0.wrapping_add(canon_add) <= canon_limit).then_some(va)
        };
        let mut counted = [0u64; 3];
        let take = |i: usize, e: &TlbEntry| {
            let kind = kinds.kind(i);
            let (mask, want) = checks[kind as usize];
            if e.perms & mask != want || (kind == AccessKind::Execute) != fetch {
                return false;
            }
            counted[kind as usize] += 1;
            // SAFETY: as above, `i < n <= vas.len()`.
            let va = unsafe { *vas.get_unchecked(i) };
            let offset = va.0 & !(u64::MAX << (e.shift & 63));
            // SAFETY: `i < n <= out.len()`.
            unsafe { *out.get_unchecked_mut(i) = PhysAddr(e.pa_base | offset) };
            true
        };
        let done = tlb.lookup_first_run(n, asid, va_of, take);
        tlb.counters.hits[(tlb.first_level() as usize).min(MAX_LEVELS)] += done as u64;
        self.cycles += done as u64 * tlb.latency as u64;
        for (c, k) in self.counters.translations.iter_mut().zip(counted) {
            *c += k;
        }
        done
    }

    #[inline(never)]
    fn translate_slow(
        &mut self,
        ram: &mut PhysMem,
        va: VirtAddr,
        access: AccessKind,
        mode: Privilege,
    ) -> Result<PhysAddr, Fault> {
        self.translate_with(ram, va, access, mode, &mut NoRecord)
    }

    /// Translates like [`Mmu::translate`] and returns every step taken.
    pub fn translate_explained(
        &mut self,
        ram: &mut PhysMem,
        va: VirtAddr,
        access: AccessKind,
        mode: Privilege,
    ) -> Translation {
        let mut story = Story::default();
        let result = self.translate_with(ram, va, access, mode, &mut story);
        Translation {
            va,
            steps: story.steps,
            result,
        }
    }

    #[inline(always)]
    fn translate_with<R: Recorder>(
        &mut self,
        ram: &mut PhysMem,
        va: VirtAddr,
        access: AccessKind,
        mode: Privilege,
        rec: &mut R,
    ) -> Result<PhysAddr, Fault> {
        self.counters.translations[access as usize] += 1;
        if !self.paging.is_canonical(va) {
            return Err(self.fault(va, access, mode, FaultCause::NonCanonical));
        }
        let path = self.paths[(access == AccessKind::Execute) as usize];
        let (mask, want) = PERM_CHECK[access as usize][mode as usize];
        let asid = self.asid;
        let mut probed = 0usize;
        while probed < path.len as usize {
            let t = path.tlb[probed] as usize;
            if R::ENABLED {
                let probes = self.tlbs[t].probes(va, asid);
                let hit = probes.last().is_some_and(|p| p.way.is_some());
                rec.step(Step::Tlb {
                    tlb: self.tlbs[t].name.clone(),
                    probes,
                    hit,
                });
            }
            probed += 1;
            if let Some(hit) = self.tlbs[t].lookup(va, asid) {
                let e = hit.entry;
                if e.perms & mask == want {
                    self.tlbs[t].counters.hits[e.level as usize] += 1;
                    self.cycles += self.tlbs[t].latency as u64;
                    if probed > 1 {
                        for i in 0..probed - 1 {
                            let m = &mut self.tlbs[path.tlb[i] as usize];
                            m.counters.misses[e.level as usize] += 1;
                            self.cycles += m.latency as u64;
                        }
                        self.refill_above(path, probed - 1, va, asid, e, rec);
                    }
                    let offset = va.0 & ((1u64 << self.paging.level_shift(e.level as u32)) - 1);
                    return Ok(PhysAddr(e.pa_base | offset));
                }
                // The entry matched but does not allow this access: drop it everywhere on
                // the path and let the walk decide.
                let clean_write =
                    access == AccessKind::Write && e.perms & perm::W != 0 && e.perms & perm::D == 0;
                if clean_write {
                    self.counters.dirty_rewalks += 1;
                } else {
                    self.counters.stale_rewalks += 1;
                }
                if R::ENABLED {
                    let reason = if clean_write {
                        "write to a page cached while clean: walk again to set Dirty"
                    } else {
                        "entry does not allow this access: drop it and walk again"
                    };
                    rec.step(Step::TlbEntryDropped {
                        tlb: self.tlbs[t].name.clone(),
                        reason,
                    });
                }
                for i in 0..path.len as usize {
                    self.tlbs[path.tlb[i] as usize]
                        .invalidate_va(va, |a| a == asid || a == super::assoc::GLOBAL);
                }
                break;
            }
        }
        match self.walk(ram, va, access, mode, rec) {
            Ok(e) => {
                for i in 0..probed {
                    let m = &mut self.tlbs[path.tlb[i] as usize];
                    m.counters.misses[e.level as usize] += 1;
                    self.cycles += m.latency as u64;
                }
                self.refill_above(path, path.len as usize, va, asid, e, rec);
                let offset = va.0 & ((1u64 << self.paging.level_shift(e.level as u32)) - 1);
                Ok(PhysAddr(e.pa_base | offset))
            }
            Err((cause, entry)) => {
                for i in 0..probed {
                    let m = &mut self.tlbs[path.tlb[i] as usize];
                    m.counters.misses[0] += 1;
                    self.cycles += m.latency as u64;
                }
                let mut f = self.fault(va, access, mode, cause);
                f.entry = entry;
                Err(f)
            }
        }
    }

    #[cold]
    fn fault(
        &mut self,
        va: VirtAddr,
        access: AccessKind,
        mode: Privilege,
        cause: FaultCause,
    ) -> Fault {
        self.counters.faults[cause.index()] += 1;
        Fault {
            va,
            access,
            mode,
            cause,
            entry: None,
        }
    }

    /// Fills `entry` into the TLBs `path[..upto]`, deepest first, applying inclusion.
    #[inline(never)]
    fn refill_above<R: Recorder>(
        &mut self,
        path: Path,
        upto: usize,
        va: VirtAddr,
        asid: u32,
        entry: TlbEntry,
        rec: &mut R,
    ) {
        for i in (0..upto).rev() {
            let t = path.tlb[i] as usize;
            if !self.tlbs[t].holds_level(entry.level) {
                continue;
            }
            let evicted = self.tlbs[t].fill(va, asid, entry);
            if R::ENABLED {
                rec.step(Step::TlbFill {
                    tlb: self.tlbs[t].name.clone(),
                    page_size: self.paging.leaf_size(entry.level as u32),
                });
            }
            if let (Inclusion::Inclusive, Some((vpn, ev_asid, level))) = (self.inclusion, evicted) {
                let lvl = self.tlbs[t].level;
                for upper in self.tlbs.iter_mut().filter(|u| u.level < lvl) {
                    upper.invalidate_exact(vpn, ev_asid, level);
                }
            }
        }
    }

    /// Walks the page tables for `va`, setting Accessed and Dirty as the hardware does.
    /// A fault comes with the address of the level-1 entry it stopped at, if any.
    fn walk<R: Recorder>(
        &mut self,
        ram: &mut PhysMem,
        va: VirtAddr,
        access: AccessKind,
        mode: Privilege,
        rec: &mut R,
    ) -> Result<TlbEntry, (FaultCause, Option<PhysAddr>)> {
        self.counters.walks += 1;
        let asid = self.asid;
        let mut level = self.paging.levels;
        let mut table = self.root.0;
        // Restrictions from the entries above (RWXU), plus GLOBAL if a table entry made
        // the subtree global.
        let mut acc = Flags::RWX | Flags::USER;
        for wc in self.pwcs.iter_mut() {
            let hit = wc.lookup(va, asid);
            self.cycles += self.walk_cache_latency as u64;
            if R::ENABLED {
                rec.step(Step::WalkCache {
                    level: wc.level,
                    prefix: wc.prefix(va),
                    table: hit.map(|e| PhysAddr(e.table)),
                });
            }
            if let Some(e) = hit {
                level = wc.level - 1;
                table = e.table;
                acc = e.flags;
                break;
            }
        }
        let pte_bytes = self.paging.pte_bytes;
        loop {
            let index = self.paging.index(va, level);
            let pte_addr = PhysAddr(table + index * pte_bytes as u64);
            let raw = ram
                .read_uint(pte_addr, pte_bytes)
                .map_err(|_| (FaultCause::BusError { pa: pte_addr }, None))?;
            self.counters.pte_reads += 1;
            self.cycles += self.pte_read_latency as u64;
            let pte = self.paging.decode(raw, level);
            let entry = (level == 1).then_some(pte_addr);
            let record = |rec: &mut R, paging: &Paging, updated: Option<u64>| {
                if R::ENABLED {
                    rec.step(Step::PteRead(PteRead {
                        level,
                        table_name: paging.table_name(level),
                        index,
                        pte_addr,
                        raw,
                        pte,
                        updated,
                    }));
                }
            };
            match pte {
                Pte::Absent => {
                    record(rec, &self.paging, None);
                    return Err((FaultCause::NotPresent { level }, entry));
                }
                Pte::Reserved => {
                    record(rec, &self.paging, None);
                    return Err((FaultCause::Reserved { level }, None));
                }
                Pte::Table { pfn, flags } => {
                    let new = self.paging.set_accessed(raw, AdUpdate::Table);
                    let updated = (new != raw).then_some(new);
                    if updated.is_some() {
                        // The read just succeeded at this address, so the write cannot fail.
                        let _ = ram.write_uint(pte_addr, pte_bytes, new);
                        self.counters.pte_writes += 1;
                    }
                    record(rec, &self.paging, updated);
                    let rwxu = Flags::RWX | Flags::USER;
                    acc = (acc & flags & rwxu) | ((acc | flags) & Flags::GLOBAL);
                    table = pfn.addr(self.paging.page_shift).0;
                    let w = self.pwc_of_level[level as usize];
                    if w != NO_PWC {
                        self.pwcs[w as usize].fill(va, asid, PhysAddr(table), acc);
                    }
                    level -= 1;
                }
                Pte::Leaf { pfn, flags } => {
                    let eff = (flags & (acc | !(Flags::RWX | Flags::USER))) | (acc & Flags::GLOBAL);
                    let mut perms = perm_bits(eff);
                    if let Some(cause) = perm_fault(perms, access, mode) {
                        record(rec, &self.paging, None);
                        return Err((cause, entry));
                    }
                    let write = access == AccessKind::Write;
                    let new = self.paging.set_accessed(raw, AdUpdate::Leaf { write });
                    let updated = (new != raw).then_some(new);
                    if updated.is_some() {
                        let _ = ram.write_uint(pte_addr, pte_bytes, new);
                        self.counters.pte_writes += 1;
                    }
                    record(rec, &self.paging, updated);
                    if write {
                        perms |= perm::D;
                    }
                    return Ok(TlbEntry {
                        pa_base: pfn.addr(self.paging.page_shift).0,
                        perms,
                        level: level as u8,
                        shift: self.paging.level_shift(level) as u8,
                    });
                }
            }
        }
    }

    /// Hints the host to cache the last-level entry a walk of `va` would read, by
    /// reading the tables above it as they stand (no walk cache looked at, nothing
    /// counted, no bit set): a replay calls it a few accesses ahead, so that the
    /// entry's host line, at a random address in a large page table, arrives while
    /// earlier accesses are made. Stops at anything but a table entry. Returns the
    /// address of the entry it fetched, for a caller that will look at it later.
    #[inline]
    pub fn prefetch_walk(&self, ram: &PhysMem, va: VirtAddr) -> Option<PhysAddr> {
        if va.0.wrapping_add(self.canon_add) > self.canon_limit {
            return None;
        }
        let p = &self.paging;
        let mut table = self.root;
        for level in (2..=p.levels).rev() {
            let raw = ram
                .read_uint(p.entry_addr(table, va, level), p.pte_bytes)
                .ok()?;
            let Pte::Table { pfn, .. } = p.decode(raw, level) else {
                return None;
            };
            table = pfn.addr(p.page_shift);
        }
        let at = p.entry_addr(table, va, 1);
        ram.prefetch(at);
        Some(at)
    }

    /// The id entries of address space `asid` carry: itself with ASID tagging, else 0
    /// (an untagged TLB holds only the current address space's entries).
    fn tag_of(&self, asid: u32) -> u32 {
        if self.asid_tagged {
            asid
        } else {
            0
        }
    }

    /// Invalidates every TLB entry that maps `va` (any page size) in `scope`, and the
    /// walk-cache entries on the way to it (x86 `invlpg`, RISC-V `sfence.vma va, asid`).
    /// With [`AsidScope::One`], global entries for `va` go too.
    pub fn invalidate_page(&mut self, va: VirtAddr, scope: AsidScope) {
        self.counters.invalidations += 1;
        let scope = match scope {
            AsidScope::One(id) => AsidScope::One(self.tag_of(id)),
            all => all,
        };
        let matches = move |a: u32| match scope {
            AsidScope::All => true,
            AsidScope::One(id) => a == id || a == super::assoc::GLOBAL,
        };
        for t in &mut self.tlbs {
            t.invalidate_va(va, matches);
        }
        for w in &mut self.pwcs {
            w.invalidate_va(va, matches);
        }
    }

    /// Invalidates every non-global entry of one address space, and its walk-cache entries.
    pub fn flush_asid(&mut self, asid: u32) {
        self.counters.flushes += 1;
        let asid = self.tag_of(asid);
        for t in &mut self.tlbs {
            t.invalidate_all(|a| a == asid);
        }
        for w in &mut self.pwcs {
            w.invalidate_all(|a| a == asid);
        }
    }

    /// Invalidates every entry, global or not, and all walk caches.
    pub fn flush_all(&mut self) {
        self.counters.flushes += 1;
        for t in &mut self.tlbs {
            t.invalidate_all(|_| true);
        }
        for w in &mut self.pwcs {
            w.invalidate_all(|_| true);
        }
    }

    /// Invalidates every non-global entry and all walk caches (what a CR3 load without
    /// PCIDs does).
    pub fn flush_non_global(&mut self) {
        self.counters.flushes += 1;
        for t in &mut self.tlbs {
            t.invalidate_all(|a| a != super::assoc::GLOBAL);
        }
        for w in &mut self.pwcs {
            w.invalidate_all(|_| true);
        }
    }

    /// Estimated cycles spent translating so far: every TLB lookup at its level's latency,
    /// every walk-cache lookup and every PTE read at theirs.
    #[inline]
    pub fn estimated_cycles(&self) -> u64 {
        debug_assert_eq!(self.cycles, self.cycles_from_counters());
        self.cycles
    }

    /// [`Mmu::estimated_cycles`] worked out from the counters themselves.
    fn cycles_from_counters(&self) -> u64 {
        let tlb: u64 = self.tlbs.iter().map(lookup_cycles).sum();
        let pwc: u64 = self
            .pwcs
            .iter()
            .map(|w| (w.counters.hits + w.counters.misses) * self.walk_cache_latency as u64)
            .sum();
        tlb + pwc + self.counters.pte_reads * self.pte_read_latency as u64
    }

    /// Resets every counter of the MMU, its TLBs and walk caches (contents stay).
    pub fn reset_counters(&mut self) {
        self.counters = MmuCounters::default();
        self.cycles = 0;
        for t in &mut self.tlbs {
            t.counters = Default::default();
        }
        for w in &mut self.pwcs {
            w.counters = Default::default();
        }
    }
}

/// The cycles of every lookup `t` has counted, at its latency.
fn lookup_cycles(t: &Tlb) -> u64 {
    (t.counters.total_hits() + t.counters.total_misses()) * t.latency as u64
}

#[cfg(test)]
#[path = "mmu_tests.rs"]
mod tests;
