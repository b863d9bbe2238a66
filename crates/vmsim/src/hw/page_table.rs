//! Editing page tables that live in simulated RAM: the primitives a kernel uses to map,
//! unmap and change pages. Every change that removes or narrows access returns a
//! [`TlbFlush`] token that must be applied to the MMU; dropping one unapplied is a
//! compile-time warning (`#[must_use]`) and a debug-build panic.

use super::mmu::{AsidScope, Mmu};
use super::paging::Paging;
use super::pte::{Flags, Pte, SoftPte};
use super::ram::{OutOfRange, PhysMem};
use crate::addr::{Pfn, PhysAddr, SwapSlot, VirtAddr};
use thiserror::Error;

/// Where page-table frames come from.
pub trait FrameAlloc {
    /// `n` physically contiguous free frames, or `None` if there are none.
    fn alloc_frames(&mut self, n: u64) -> Option<Pfn>;
    /// Gives back `n` frames from `pfn`.
    fn free_frames(&mut self, pfn: Pfn, n: u64);
}

/// A minimal frame allocator: a bump pointer over a range plus a free list of single
/// frames. For tests and hardware-only runs; the kernel brings a real allocator.
#[derive(Clone, Debug)]
pub struct SimpleFrames {
    next: u64,
    end: u64,
    free: Vec<u64>,
}

impl SimpleFrames {
    /// Hands out frames `start..end`.
    pub fn new(start: u64, end: u64) -> SimpleFrames {
        SimpleFrames {
            next: start,
            end,
            free: Vec::new(),
        }
    }
    /// Frames still available.
    pub fn available(&self) -> u64 {
        self.end - self.next + self.free.len() as u64
    }
}

impl FrameAlloc for SimpleFrames {
    fn alloc_frames(&mut self, n: u64) -> Option<Pfn> {
        if n == 1 {
            if let Some(f) = self.free.pop() {
                return Some(Pfn(f));
            }
        }
        if self.end - self.next < n {
            return None;
        }
        let f = self.next;
        self.next += n;
        Some(Pfn(f))
    }
    fn free_frames(&mut self, pfn: Pfn, n: u64) {
        self.free.extend(pfn.0..pfn.0 + n);
    }
}

/// Why a page-table edit was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MapError {
    /// The address is not canonical for this format.
    #[error("{va} is not a valid address for this machine")]
    NonCanonical {
        /// The address.
        va: VirtAddr,
    },
    /// Leaves cannot sit at that level.
    #[error("level {level} cannot hold a leaf")]
    NoLeafAtLevel {
        /// The level.
        level: u32,
    },
    /// Address or frame not aligned to the page size of the level.
    #[error("{va} / frame {pfn} is not aligned to the {size}-byte page of level {level}")]
    Misaligned {
        /// The address.
        va: VirtAddr,
        /// The frame.
        pfn: Pfn,
        /// The level.
        level: u32,
        /// The page size at that level.
        size: u64,
    },
    /// The frame number does not fit the format.
    #[error("frame {pfn} is beyond the machine's physical address width")]
    FrameTooHigh {
        /// The frame.
        pfn: Pfn,
    },
    /// Something is already mapped there.
    #[error("{va} is already mapped (entry at level {level})")]
    AlreadyMapped {
        /// The address.
        va: VirtAddr,
        /// The level of the existing entry.
        level: u32,
    },
    /// Nothing is mapped there.
    #[error("{va} is not mapped")]
    NotMapped {
        /// The address.
        va: VirtAddr,
    },
    /// A present entry with reserved bits is in the way.
    #[error("corrupt entry at level {level} on the way to {va}")]
    Corrupt {
        /// The address.
        va: VirtAddr,
        /// The level.
        level: u32,
    },
    /// No frame for a new table.
    #[error("out of frames for page tables")]
    OutOfFrames,
    /// A table lies outside RAM.
    #[error(transparent)]
    Ram(#[from] OutOfRange),
}

/// Why [`PageTable::swap_out_at`] left an entry alone.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SwapOutError {
    /// The entry neither maps the frame nor keeps it for a `PROT_NONE` page (it changed
    /// since the reverse map recorded it).
    #[error("the entry at {pte_addr} does not hold frame {pfn}")]
    NotThisFrame {
        /// Where the entry lives.
        pte_addr: PhysAddr,
        /// The frame being swapped out.
        pfn: Pfn,
    },
    /// The entry lies outside RAM.
    #[error(transparent)]
    Ram(#[from] OutOfRange),
}

/// Why [`PageTable::unmap_frame_at`] left an entry alone.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UnmapFrameError {
    /// The entry is not a present leaf mapping the frame.
    #[error("the entry at {pte_addr} does not map frame {pfn}")]
    NotThisFrame {
        /// Where the entry lives.
        pte_addr: PhysAddr,
        /// The frame being unmapped.
        pfn: Pfn,
    },
    /// The entry lies outside RAM.
    #[error(transparent)]
    Ram(#[from] OutOfRange),
}

/// Why [`PageTable::set_soft`] (and [`PageTable::set_prot_none`]) refused to write a
/// software entry.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SetSoftError {
    /// The value does not fit a not-present entry of this format.
    #[error("software entry {entry:?} does not fit a page-table entry of this format")]
    TooWide {
        /// The entry.
        entry: SoftPte,
    },
    /// The walk to the entry, or the entry itself, refused it (an entry already
    /// present, no frame for a table, a non-canonical address).
    #[error(transparent)]
    Map(#[from] MapError),
}

/// A pending TLB invalidation for a range of one address space. Apply it with
/// [`TlbFlush::apply`]; it cannot be silently dropped.
#[must_use = "a page-table change that narrows access must be followed by a TLB flush"]
#[derive(Debug)]
pub struct TlbFlush {
    start: VirtAddr,
    /// Exclusive end.
    end: VirtAddr,
    asid: u32,
    /// Whether a global entry was changed in the range.
    global: bool,
    /// Set when applied or merged, so that dropping it is fine.
    done: bool,
}

/// Ranges of more pages than this are flushed by flushing the whole address space, as
/// Linux does past `tlb_single_page_flush_ceiling` (33).
pub const FLUSH_CEILING_PAGES: u64 = 33;

impl TlbFlush {
    fn new(start: VirtAddr, end: VirtAddr, asid: u32, global: bool) -> TlbFlush {
        TlbFlush {
            start,
            end,
            asid,
            global,
            done: false,
        }
    }

    /// The range covered.
    pub fn range(&self) -> (VirtAddr, VirtAddr) {
        (self.start, self.end)
    }

    /// Combines two pending flushes of the same address space into one covering both.
    pub fn merge(mut self, mut other: TlbFlush) -> TlbFlush {
        debug_assert_eq!(self.asid, other.asid);
        other.done = true;
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.global |= other.global;
        self
    }

    /// Merges this flush into `pending`, the flush a range operation owes so far.
    pub fn add_to(self, pending: &mut Option<TlbFlush>) {
        *pending = Some(match pending.take() {
            Some(p) => p.merge(self),
            None => self,
        });
    }

    /// Drops the flush without touching the MMU: for an address space none of whose
    /// translations can be cached (not loaded in an untagged TLB, or carrying an id whose
    /// entries were all flushed since).
    pub fn discard_unloaded(mut self) {
        self.done = true;
    }

    /// Invalidates the range in `mmu` (see [`TlbFlush::invalidate`]) and is done.
    pub fn apply(mut self, mmu: &mut Mmu) -> Flushed {
        self.done = true;
        self.invalidate(mmu)
    }

    /// Flushes the whole address space in `mmu` (everything, if a global entry was
    /// in the range), however small the range, and is done: a batch of unmaps
    /// flushed at once (Linux's `TLB_FLUSH_ALL`).
    pub fn apply_whole(mut self, mmu: &mut Mmu) -> Flushed {
        self.done = true;
        if self.global {
            mmu.flush_all();
        } else {
            mmu.flush_asid(self.asid);
        }
        Flushed::All
    }

    /// Invalidates the range in `mmu`, leaving the flush pending (for another CPU's
    /// MMU; the flush is done once [`TlbFlush::apply`]d or discarded): page by page up
    /// to [`FLUSH_CEILING_PAGES`] base pages; past that the whole address space (and
    /// everything, if a global entry was in the range).
    pub fn invalidate(&self, mmu: &mut Mmu) -> Flushed {
        let page = mmu.paging().page_size();
        let pages = (self.end.0.wrapping_sub(self.start.0)).div_ceil(page);
        if pages > FLUSH_CEILING_PAGES {
            if self.global {
                mmu.flush_all();
            } else {
                mmu.flush_asid(self.asid);
            }
            return Flushed::All;
        }
        let mut va = self.start;
        for _ in 0..pages {
            mmu.invalidate_page(va, AsidScope::One(self.asid));
            va = VirtAddr(va.0.wrapping_add(page));
        }
        Flushed::Pages(pages)
    }
}

/// What a [`TlbFlush`] did to a TLB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Invalidated this many pages one by one (`invlpg`).
    Pages(u64),
    /// Flushed the whole address space (or everything).
    All,
}

impl Drop for TlbFlush {
    fn drop(&mut self) {
        debug_assert!(
            self.done || std::thread::panicking(),
            "TlbFlush dropped without being applied"
        );
    }
}

/// A leaf found by a software walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First frame of the page.
    pub pfn: Pfn,
    /// Its level (1 = base page).
    pub level: u32,
    /// Its flags (permissions, Accessed, Dirty, ...).
    pub flags: Flags,
    /// Where its PTE lives.
    pub pte_addr: PhysAddr,
}

impl Mapping {
    /// The frame holding `va`'s base page: the leaf's first frame for a base page, the
    /// right one inside a huge page.
    pub fn frame_of(&self, paging: &Paging, va: VirtAddr) -> Pfn {
        let within = va.0 & (paging.leaf_size(self.level) - 1);
        Pfn(self.pfn.0 + (within >> paging.page_shift))
    }
}

/// A leaf slot found by [`PageTable::entries`]: a present leaf, or a not-present entry
/// whose other bits the kernel uses for its own bookkeeping (a swap slot, a page made
/// inaccessible by `mprotect(PROT_NONE)`). Hardware ignores such an entry: bit 0 (x86 P,
/// RISC-V V, textbook V) is clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A present leaf.
    Leaf(Mapping),
    /// A not-present base-page entry holding a software value.
    Soft {
        /// Where the entry lives.
        pte_addr: PhysAddr,
        /// The value (see [`PageTable::write_soft`]).
        value: u64,
    },
}

impl Slot {
    /// The slot an entry at `level` holds, `pte` decoded from `raw`: a present leaf, or
    /// a base-page software entry (not present, not empty). A table entry, an empty or
    /// reserved one, holds none.
    #[inline]
    fn of(paging: &Paging, pte: Pte, raw: u64, level: u32, pte_addr: PhysAddr) -> Option<Slot> {
        match pte {
            Pte::Leaf { pfn, flags } => Some(Slot::Leaf(Mapping {
                pfn,
                level,
                flags,
                pte_addr,
            })),
            Pte::Absent if level == 1 && raw != 0 => Some(Slot::Soft {
                pte_addr,
                value: paging.soft_value(raw),
            }),
            Pte::Absent | Pte::Reserved | Pte::Table { .. } => None,
        }
    }

    /// The kernel's software entry, if this is a not-present entry holding one.
    #[inline]
    pub fn soft(&self) -> Option<SoftPte> {
        match *self {
            Slot::Soft { value, .. } => SoftPte::from_value(value),
            Slot::Leaf(_) => None,
        }
    }
}

/// One address space's page tables: the root and the id its TLB entries carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTable {
    root: PhysAddr,
    asid: u32,
}

impl PageTable {
    /// Allocates an empty root table.
    pub fn new(
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        asid: u32,
    ) -> Result<PageTable, MapError> {
        let root = alloc_table(paging, ram, alloc, paging.levels)?;
        Ok(PageTable { root, asid })
    }

    /// A handle on an existing table tree.
    pub fn from_root(root: PhysAddr, asid: u32) -> PageTable {
        PageTable { root, asid }
    }

    /// Physical address of the root table.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The address-space id.
    pub fn asid(&self) -> u32 {
        self.asid
    }

    /// Maps the page of `level` at `va` to frame `pfn` with `flags`, and returns the
    /// physical address of the entry written. Missing tables on the
    /// way are allocated and linked with `table_flags` (x86: the widest access the subtree
    /// may grant; ignored by formats whose table entries carry no permissions); existing
    /// links are widened to include them. Mapping where something is mapped is refused:
    /// unmap first, which yields the flush.
    #[allow(clippy::too_many_arguments)]
    pub fn map(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        va: VirtAddr,
        pfn: Pfn,
        level: u32,
        flags: Flags,
        table_flags: Flags,
    ) -> Result<PhysAddr, MapError> {
        if !paging.is_canonical(va) {
            return Err(MapError::NonCanonical { va });
        }
        if level == 0 || level > paging.levels || !paging.leaf_allowed(level) {
            return Err(MapError::NoLeafAtLevel { level });
        }
        let size = paging.leaf_size(level);
        let align = size >> paging.page_shift;
        if !va.is_aligned(size) || pfn.0 & (align - 1) != 0 {
            return Err(MapError::Misaligned {
                va,
                pfn,
                level,
                size,
            });
        }
        if pfn.0 > paging.max_pfn() {
            return Err(MapError::FrameTooHigh { pfn });
        }
        let addr = self.entry_for(paging, ram, alloc, va, level, table_flags)?;
        Self::set_leaf(paging, ram, addr, va, pfn, level, flags)
    }

    /// The flush that a change to the base-page entry for `va` calls for, when the
    /// caller changed the entry itself through its address (a kernel that found the
    /// entry through its reverse map rather than by walking).
    pub fn flush_page(&self, paging: &Paging, va: VirtAddr, global: bool) -> TlbFlush {
        self.flush_leaf(paging, va, 1, global)
    }

    /// Finds the leaf that maps `va`, without touching Accessed or Dirty.
    pub fn lookup(&self, paging: &Paging, ram: &PhysMem, va: VirtAddr) -> Option<Mapping> {
        match self.slot(paging, ram, va)? {
            Slot::Leaf(m) => Some(m),
            Slot::Soft { .. } => None,
        }
    }

    /// Removes the leaf that maps `va` and returns what it mapped (with its final
    /// Accessed and Dirty bits) and the flush to apply.
    pub fn unmap(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        va: VirtAddr,
    ) -> Result<(Mapping, TlbFlush), MapError> {
        let m = self.mapped(paging, ram, va)?;
        ram.write_uint(
            m.pte_addr,
            paging.pte_bytes,
            paging.encode(Pte::Absent, m.level),
        )?;
        let global = m.flags.contains(Flags::GLOBAL);
        Ok((m, self.flush_leaf(paging, va, m.level, global)))
    }

    /// Replaces the flags of the leaf that maps `va` (Accessed and Dirty included: pass
    /// the old ones through to keep them) and returns the flush to apply.
    pub fn set_flags(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        va: VirtAddr,
        flags: Flags,
    ) -> Result<TlbFlush, MapError> {
        let m = self.mapped(paging, ram, va)?;
        let raw = paging.encode(Pte::Leaf { pfn: m.pfn, flags }, m.level);
        ram.write_uint(m.pte_addr, paging.pte_bytes, raw)?;
        let global = (m.flags | flags).contains(Flags::GLOBAL);
        Ok(self.flush_leaf(paging, va, m.level, global))
    }

    /// The leaf that maps `va`, or [`MapError::NotMapped`].
    fn mapped(&self, paging: &Paging, ram: &PhysMem, va: VirtAddr) -> Result<Mapping, MapError> {
        self.lookup(paging, ram, va)
            .ok_or(MapError::NotMapped { va })
    }

    /// The flush that a change to the leaf of `level` mapping `va` calls for.
    pub fn flush_leaf(&self, paging: &Paging, va: VirtAddr, level: u32, global: bool) -> TlbFlush {
        let size = paging.leaf_size(level);
        let start = va.align_down(size);
        TlbFlush::new(
            start,
            VirtAddr(start.0.wrapping_add(size)),
            self.asid,
            global,
        )
    }

    /// Clears the Accessed bit of the leaf mapping `va` and says whether it was set (Linux's
    /// `ptep_test_and_clear_young`). No TLB flush follows, as on x86 Linux: while the
    /// translation stays cached, later accesses do not set the bit again, so a page in
    /// use may look idle to the next scan.
    pub fn test_and_clear_accessed(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        va: VirtAddr,
    ) -> bool {
        let Some(m) = self.lookup(paging, ram, va) else {
            return false;
        };
        if !m.flags.contains(Flags::ACCESSED) {
            return false;
        }
        let raw = paging.encode(
            Pte::Leaf {
                pfn: m.pfn,
                flags: m.flags & !Flags::ACCESSED,
            },
            m.level,
        );
        ram.write_uint(m.pte_addr, paging.pte_bytes, raw).is_ok()
    }

    /// The largest value a not-present entry can hold.
    pub fn max_soft(paging: &Paging) -> u64 {
        paging.max_soft()
    }

    /// Writes a not-present base-page entry holding `value` (1 to [`Self::max_soft`]) at
    /// `va`, allocating tables on the way. The slot must not hold a present leaf.
    pub fn write_soft(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        va: VirtAddr,
        value: u64,
        table_flags: Flags,
    ) -> Result<PhysAddr, MapError> {
        debug_assert!(value >= 1 && value <= Self::max_soft(paging));
        let addr = self.entry_for(paging, ram, alloc, va, 1, table_flags)?;
        let raw = ram.read_uint(addr, paging.pte_bytes)?;
        if !matches!(paging.decode(raw, 1), Pte::Absent) {
            return Err(MapError::AlreadyMapped { va, level: 1 });
        }
        ram.write_uint(addr, paging.pte_bytes, paging.encode_soft(value))?;
        Ok(addr)
    }

    /// Writes the software entry `entry` at `va` (as [`PageTable::write_soft`] does with
    /// its value). A not-present entry is never cached by the TLB: no flush is owed.
    pub fn set_soft(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        va: VirtAddr,
        entry: SoftPte,
        table_flags: Flags,
    ) -> Result<PhysAddr, SetSoftError> {
        let value = entry.value();
        if value > paging.max_soft() {
            return Err(SetSoftError::TooWide { entry });
        }
        Ok(self.write_soft(paging, ram, alloc, va, value, table_flags)?)
    }

    /// Makes the empty base-page entry at `va` keep frame `pfn` for a page made
    /// inaccessible by `mprotect(PROT_NONE)`. Unmap the leaf first: that yields the flush.
    pub fn set_prot_none(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        va: VirtAddr,
        pfn: Pfn,
        table_flags: Flags,
    ) -> Result<PhysAddr, SetSoftError> {
        self.set_soft(paging, ram, alloc, va, SoftPte::ProtNone(pfn), table_flags)
    }

    /// Turns the base-page entry at `pte_addr` (for `va`, found through the reverse map),
    /// which maps `pfn` or keeps it for a `PROT_NONE` page, into the swap entry naming
    /// `slot`, in place. Returns the flush owed when the entry was present.
    pub fn swap_out_at(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        pte_addr: PhysAddr,
        va: VirtAddr,
        pfn: Pfn,
        slot: SwapSlot,
    ) -> Result<Option<TlbFlush>, SwapOutError> {
        let raw = ram.read_uint(pte_addr, paging.pte_bytes)?;
        let present = match paging.decode(raw, 1) {
            Pte::Leaf { pfn: f, .. } if f == pfn => true,
            Pte::Absent
                if SoftPte::from_value(paging.soft_value(raw)) == Some(SoftPte::ProtNone(pfn)) =>
            {
                false
            }
            _ => return Err(SwapOutError::NotThisFrame { pte_addr, pfn }),
        };
        let value = SoftPte::Swap(slot).value();
        debug_assert!(value <= paging.max_soft());
        ram.write_uint(pte_addr, paging.pte_bytes, paging.encode_soft(value))?;
        Ok(present.then(|| self.flush_page(paging, va, false)))
    }

    /// Clears the present base-page leaf at `pte_addr` (for `va`, found through the
    /// reverse map) if it maps `pfn`; returns its final flags (Accessed, Dirty) and the
    /// flush owed.
    pub fn unmap_frame_at(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        pte_addr: PhysAddr,
        va: VirtAddr,
        pfn: Pfn,
    ) -> Result<(Flags, TlbFlush), UnmapFrameError> {
        let Some(flags) = Self::frame_leaf_at(paging, ram, pte_addr, pfn)? else {
            return Err(UnmapFrameError::NotThisFrame { pte_addr, pfn });
        };
        ram.write_uint(pte_addr, paging.pte_bytes, paging.encode(Pte::Absent, 1))?;
        Ok((flags, self.flush_page(paging, va, false)))
    }

    /// Write-protects and cleans the present base-page leaf at `pte_addr` (for `va`,
    /// found through the reverse map) if it maps `pfn` (Linux's `page_mkclean_one`),
    /// so that the next store faults and tells the kernel the page is dirty again.
    /// Returns the flush owed if it was writable or dirty; an entry that maps
    /// something else is left alone.
    pub fn clean_frame_at(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        pte_addr: PhysAddr,
        va: VirtAddr,
        pfn: Pfn,
    ) -> Result<Option<TlbFlush>, OutOfRange> {
        let Some(flags) = Self::frame_leaf_at(paging, ram, pte_addr, pfn)? else {
            return Ok(None);
        };
        let clean = flags & !(Flags::WRITE | Flags::DIRTY);
        if clean == flags {
            return Ok(None);
        }
        let raw = paging.encode(Pte::Leaf { pfn, flags: clean }, 1);
        ram.write_uint(pte_addr, paging.pte_bytes, raw)?;
        Ok(Some(self.flush_page(paging, va, false)))
    }

    /// The flags of the present base-page leaf at `pte_addr`, if it maps `pfn`.
    fn frame_leaf_at(
        paging: &Paging,
        ram: &PhysMem,
        pte_addr: PhysAddr,
        pfn: Pfn,
    ) -> Result<Option<Flags>, OutOfRange> {
        let raw = ram.read_uint(pte_addr, paging.pte_bytes)?;
        Ok(match paging.decode(raw, 1) {
            Pte::Leaf { pfn: f, flags } if f == pfn => Some(flags),
            _ => None,
        })
    }

    /// Clears the Accessed bit of the base-page leaf at `pte_addr` (found through the
    /// reverse map) if it maps `pfn`, and says whether it was set: Linux's
    /// `ptep_test_and_clear_young`, which changes only that bit. No TLB flush is owed, as
    /// on x86 Linux (see [`PageTable::test_and_clear_accessed`]); an entry outside RAM
    /// reads as not accessed.
    #[inline]
    pub fn test_and_clear_accessed_at(
        paging: &Paging,
        ram: &mut PhysMem,
        pte_addr: PhysAddr,
        pfn: Pfn,
    ) -> bool {
        let Ok(raw) = ram.read_uint(pte_addr, paging.pte_bytes) else {
            return false;
        };
        let cleared = paging.clear_accessed(raw);
        if cleared == raw {
            return false;
        }
        match paging.decode(raw, 1) {
            Pte::Leaf { pfn: f, .. } if f == pfn => {
                ram.write_uint(pte_addr, paging.pte_bytes, cleared).is_ok()
            }
            _ => false,
        }
    }

    /// Clears the not-present entry at `pte_addr` (a software entry a walk found).
    /// A not-present entry is never cached by the TLB: no flush is owed.
    pub fn clear_soft_at(
        paging: &Paging,
        ram: &mut PhysMem,
        pte_addr: PhysAddr,
    ) -> Result<(), OutOfRange> {
        ram.write_uint(pte_addr, paging.pte_bytes, paging.encode(Pte::Absent, 1))
    }

    /// Makes the root entries `indices` of this table the same as `from`'s, where
    /// `from`'s are not empty: how every process shares the kernel's tables below the
    /// root. The entries were empty, so no flush is owed.
    pub fn share_root_entries(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        from: &PageTable,
        indices: std::ops::Range<u64>,
    ) -> Result<(), OutOfRange> {
        let b = paging.pte_bytes as u64;
        for i in indices {
            let raw = ram.read_uint(PhysAddr(from.root.0 + i * b), paging.pte_bytes)?;
            if raw != 0 {
                ram.write_uint(PhysAddr(self.root.0 + i * b), paging.pte_bytes, raw)?;
            }
        }
        Ok(())
    }

    /// Empties the root entries `indices` of this table (shared ones, before the table
    /// is destroyed). What they map stays mapped, the same, through the tables they
    /// shared, so no flush is owed.
    pub fn unshare_root_entries(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        indices: std::ops::Range<u64>,
    ) -> Result<(), OutOfRange> {
        let b = paging.pte_bytes as u64;
        let empty = paging.encode(Pte::Absent, paging.levels);
        for i in indices {
            ram.write_uint(PhysAddr(self.root.0 + i * b), paging.pte_bytes, empty)?;
        }
        Ok(())
    }

    /// Replaces the not-present base-page entry at `pte_addr` (found by
    /// [`PageTable::slot`]) with a leaf mapping `pfn`, as [`PageTable::map`] would at
    /// level 1 without walking again: the tables above exist and were linked when the
    /// entry was. Refused if the entry is present.
    pub fn map_at(
        paging: &Paging,
        ram: &mut PhysMem,
        pte_addr: PhysAddr,
        va: VirtAddr,
        pfn: Pfn,
        flags: Flags,
    ) -> Result<PhysAddr, MapError> {
        if pfn.0 > paging.max_pfn() {
            return Err(MapError::FrameTooHigh { pfn });
        }
        Self::set_leaf(paging, ram, pte_addr, va, pfn, 1, flags)
    }

    /// Writes a leaf of `level` at `addr`, which must hold no mapping.
    fn set_leaf(
        paging: &Paging,
        ram: &mut PhysMem,
        addr: PhysAddr,
        va: VirtAddr,
        pfn: Pfn,
        level: u32,
        flags: Flags,
    ) -> Result<PhysAddr, MapError> {
        let raw = ram.read_uint(addr, paging.pte_bytes)?;
        match paging.decode(raw, level) {
            Pte::Absent => {}
            Pte::Reserved => return Err(MapError::Corrupt { va, level }),
            _ => return Err(MapError::AlreadyMapped { va, level }),
        }
        ram.write_uint(
            addr,
            paging.pte_bytes,
            paging.encode(Pte::Leaf { pfn, flags }, level),
        )?;
        Ok(addr)
    }

    /// Clears a not-present entry at `va` (nothing happens where there is none).
    /// A not-present entry is never cached by the TLB: no flush is owed.
    pub fn clear_soft(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        va: VirtAddr,
    ) -> Result<(), OutOfRange> {
        match self.slot(paging, ram, va) {
            Some(Slot::Soft { pte_addr, .. }) => Self::clear_soft_at(paging, ram, pte_addr),
            _ => Ok(()),
        }
    }

    /// The base-page leaf or software entry held at `pte_addr` (a level-1 entry a walk
    /// found), if there is one: what [`PageTable::slot`] would return for its page.
    pub fn slot_at(paging: &Paging, ram: &PhysMem, pte_addr: PhysAddr) -> Option<Slot> {
        let raw = ram.read_uint(pte_addr, paging.pte_bytes).ok()?;
        Slot::of(paging, paging.decode(raw, 1), raw, 1, pte_addr)
    }

    /// The leaf or software entry for `va`, if there is one.
    pub fn slot(&self, paging: &Paging, ram: &PhysMem, va: VirtAddr) -> Option<Slot> {
        if !paging.is_canonical(va) {
            return None;
        }
        let mut table = self.root;
        for level in (1..=paging.levels).rev() {
            let addr = paging.entry_addr(table, va, level);
            let raw = ram.read_uint(addr, paging.pte_bytes).ok()?;
            match paging.decode(raw, level) {
                Pte::Table { pfn, .. } => table = pfn.addr(paging.page_shift),
                pte => return Slot::of(paging, pte, raw, level, addr),
            }
        }
        None
    }

    /// Whether nothing at all is mapped through the entry at `level` for `va`: that
    /// entry, or one above it, is empty (no table, no leaf, no software value). At
    /// level 2 this is Linux's `pmd_none`, the condition for a huge-page fault.
    pub fn empty_at(&self, paging: &Paging, ram: &PhysMem, va: VirtAddr, level: u32) -> bool {
        if !paging.is_canonical(va) || level == 0 || level > paging.levels {
            return false;
        }
        let mut table = self.root;
        for l in (level..=paging.levels).rev() {
            let addr = paging.entry_addr(table, va, l);
            let Ok(raw) = ram.read_uint(addr, paging.pte_bytes) else {
                return false;
            };
            match paging.decode(raw, l) {
                Pte::Absent => return raw == 0,
                Pte::Table { pfn, .. } if l > level => table = pfn.addr(paging.page_shift),
                _ => return false,
            }
        }
        false
    }

    /// The address of the entry at `level` for `va`, allocating missing tables on the
    /// way (linked with `table_flags`) and widening existing links to include them.
    fn entry_for(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        va: VirtAddr,
        level: u32,
        table_flags: Flags,
    ) -> Result<PhysAddr, MapError> {
        if !paging.is_canonical(va) {
            return Err(MapError::NonCanonical { va });
        }
        let mut table = self.root;
        for l in (level + 1..=paging.levels).rev() {
            let addr = paging.entry_addr(table, va, l);
            let raw = ram.read_uint(addr, paging.pte_bytes)?;
            table = match paging.decode(raw, l) {
                Pte::Absent => {
                    let t = alloc_table(paging, ram, alloc, l - 1)?;
                    let e = Pte::Table {
                        pfn: t.pfn(paging.page_shift),
                        flags: table_flags,
                    };
                    ram.write_uint(addr, paging.pte_bytes, paging.encode(e, l))?;
                    t
                }
                Pte::Table { pfn, flags: old } => {
                    let want = old | table_flags;
                    if want != old {
                        let e = Pte::Table { pfn, flags: want };
                        ram.write_uint(addr, paging.pte_bytes, paging.encode(e, l))?;
                    }
                    pfn.addr(paging.page_shift)
                }
                Pte::Leaf { .. } => return Err(MapError::AlreadyMapped { va, level: l }),
                Pte::Reserved => return Err(MapError::Corrupt { va, level: l }),
            };
        }
        Ok(paging.entry_addr(table, va, level))
    }

    /// Every present leaf and software entry whose page starts in `[start, end)`, in
    /// address order. Subtrees that are absent are skipped whole, so a sparse range of
    /// any size costs only what is mapped in it.
    pub fn entries(
        &self,
        paging: &Paging,
        ram: &PhysMem,
        start: VirtAddr,
        end: VirtAddr,
    ) -> Vec<(VirtAddr, Slot)> {
        let mut out = Vec::new();
        let top = paging.levels;
        // The sign extension of the top bits, for formats with an upper half.
        let span = paging.level_shift(top) + paging.level_bits(top);
        collect(
            paging,
            ram,
            self.root,
            top,
            0,
            span,
            (start.0, end.0),
            &mut out,
        );
        out
    }

    /// Frees every table below the root that maps nothing inside `[start, end)` and lies
    /// wholly inside it; unlinks them from their parents. Returns how many were freed. No
    /// flush is needed for the leaves (there are none), but walk caches may still hold
    /// the unlinked tables: the caller flushes the range's address space.
    pub fn prune(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        start: VirtAddr,
        end: VirtAddr,
    ) -> u64 {
        let top = paging.levels;
        let span = paging.level_shift(top) + paging.level_bits(top);
        prune_tree(
            paging,
            ram,
            alloc,
            self.root,
            top,
            0,
            span,
            (start.0, end.0),
        )
        .0
    }

    /// Frees every table frame of the tree, root included (not the pages the leaves map).
    /// Returns how many tables were freed. The caller flushes the address space's id.
    pub fn destroy(self, paging: &Paging, ram: &mut PhysMem, alloc: &mut impl FrameAlloc) -> u64 {
        free_tree(paging, ram, alloc, self.root, paging.levels)
    }

    /// Number of table frames in the tree, root included.
    pub fn table_frames(&self, paging: &Paging, ram: &PhysMem) -> u64 {
        count_tree(paging, ram, self.root, paging.levels)
    }
}

fn alloc_table(
    paging: &Paging,
    ram: &mut PhysMem,
    alloc: &mut impl FrameAlloc,
    level: u32,
) -> Result<PhysAddr, MapError> {
    let n = paging.table_frames(level);
    let pfn = alloc.alloc_frames(n).ok_or(MapError::OutOfFrames)?;
    ram.zero_frames(pfn, n)?;
    Ok(pfn.addr(paging.page_shift))
}

/// Sign-extends a virtual address built from table indices, for formats with an upper
/// half.
fn extend(paging: &Paging, va: u64, span: u32) -> u64 {
    if paging.sign_extend && span < 64 && va >> (span - 1) & 1 == 1 {
        va | !((1u64 << span) - 1)
    } else {
        va
    }
}

#[allow(clippy::too_many_arguments)]
fn collect(
    paging: &Paging,
    ram: &PhysMem,
    table: PhysAddr,
    level: u32,
    base: u64,
    span: u32,
    range: (u64, u64),
    out: &mut Vec<(VirtAddr, Slot)>,
) {
    let shift = paging.level_shift(level);
    for i in 0..paging.entries(level) {
        let va = extend(paging, base | (i << shift), span);
        let size = 1u64 << shift;
        if va.wrapping_add(size - 1) < range.0 || va >= range.1 {
            continue;
        }
        let addr = PhysAddr(table.0 + i * paging.pte_bytes as u64);
        let Ok(raw) = ram.read_uint(addr, paging.pte_bytes) else {
            return;
        };
        match paging.decode(raw, level) {
            Pte::Table { pfn, .. } => collect(
                paging,
                ram,
                pfn.addr(paging.page_shift),
                level - 1,
                va,
                span,
                range,
                out,
            ),
            pte if va >= range.0 => {
                out.extend(Slot::of(paging, pte, raw, level, addr).map(|s| (VirtAddr(va), s)))
            }
            _ => {}
        }
    }
}

/// Returns (tables freed, whether `table` is now empty).
#[allow(clippy::too_many_arguments)]
fn prune_tree(
    paging: &Paging,
    ram: &mut PhysMem,
    alloc: &mut impl FrameAlloc,
    table: PhysAddr,
    level: u32,
    base: u64,
    span: u32,
    range: (u64, u64),
) -> (u64, bool) {
    let shift = paging.level_shift(level);
    let mut freed = 0;
    let mut empty = true;
    for i in 0..paging.entries(level) {
        let va = extend(paging, base | (i << shift), span);
        let size = 1u64 << shift;
        let addr = PhysAddr(table.0 + i * paging.pte_bytes as u64);
        let Ok(raw) = ram.read_uint(addr, paging.pte_bytes) else {
            return (freed, false);
        };
        if raw == 0 {
            continue;
        }
        let inside = va >= range.0 && va.wrapping_add(size - 1) < range.1;
        let overlaps = !(va.wrapping_add(size - 1) < range.0 || va >= range.1);
        match paging.decode(raw, level) {
            Pte::Table { pfn, .. } if overlaps && level > 1 => {
                let child = pfn.addr(paging.page_shift);
                let (n, child_empty) =
                    prune_tree(paging, ram, alloc, child, level - 1, va, span, range);
                freed += n;
                if child_empty && inside {
                    let _ = ram.write_uint(addr, paging.pte_bytes, 0);
                    let frames = paging.table_frames(level - 1);
                    let _ = ram.zero_frames(pfn, frames);
                    alloc.free_frames(pfn, frames);
                    freed += 1;
                } else {
                    empty = false;
                }
            }
            _ => empty = false,
        }
    }
    (freed, empty)
}

fn children(paging: &Paging, ram: &PhysMem, table: PhysAddr, level: u32) -> Vec<PhysAddr> {
    if level == 1 {
        return Vec::new();
    }
    (0..paging.entries(level))
        .filter_map(|i| {
            let raw = ram
                .read_uint(
                    PhysAddr(table.0 + i * paging.pte_bytes as u64),
                    paging.pte_bytes,
                )
                .ok()?;
            match paging.decode(raw, level) {
                Pte::Table { pfn, .. } => Some(pfn.addr(paging.page_shift)),
                _ => None,
            }
        })
        .collect()
}

fn free_tree(
    paging: &Paging,
    ram: &mut PhysMem,
    alloc: &mut impl FrameAlloc,
    table: PhysAddr,
    level: u32,
) -> u64 {
    let mut n = 1;
    for child in children(paging, ram, table, level) {
        n += free_tree(paging, ram, alloc, child, level - 1);
    }
    let frames = paging.table_frames(level);
    let pfn = table.pfn(paging.page_shift);
    let _ = ram.zero_frames(pfn, frames);
    alloc.free_frames(pfn, frames);
    n
}

fn count_tree(paging: &Paging, ram: &PhysMem, table: PhysAddr, level: u32) -> u64 {
    1 + children(paging, ram, table, level)
        .into_iter()
        .map(|c| count_tree(paging, ram, c, level - 1))
        .sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::MachineSpec;

    /// A machine's paging and RAM, an allocator for the upper half, and an empty table.
    fn rig(preset: &str) -> (Paging, PhysMem, SimpleFrames, PageTable) {
        let spec = MachineSpec::preset(preset).unwrap();
        let paging = spec.paging;
        let n = (paging.max_pfn() + 1).min(1024);
        let mut ram = PhysMem::new(paging.page_shift, n);
        let mut frames = SimpleFrames::new(n / 2, n);
        let pt = PageTable::new(&paging, &mut ram, &mut frames, 3).unwrap();
        (paging, ram, frames, pt)
    }

    #[test]
    fn named_entry_edits_change_only_what_they_name() {
        for preset in ["x86-64", "sv39", "textbook"] {
            let (p, mut ram, mut frames, pt) = rig(preset);
            let ps = p.page_size();
            let (va, pfn) = (VirtAddr(4 * ps), Pfn(7));
            let rw = Flags::RW | Flags::USER;
            let pte = pt
                .map(
                    &p,
                    &mut ram,
                    &mut frames,
                    va,
                    pfn,
                    1,
                    rw | Flags::ACCESSED,
                    rw,
                )
                .unwrap();
            // Accessed: cleared once, only for the frame it maps.
            assert!(!PageTable::test_and_clear_accessed_at(
                &p,
                &mut ram,
                pte,
                Pfn(8)
            ));
            assert!(PageTable::test_and_clear_accessed_at(
                &p, &mut ram, pte, pfn
            ));
            assert!(!PageTable::test_and_clear_accessed_at(
                &p, &mut ram, pte, pfn
            ));
            assert_eq!(pt.lookup(&p, &ram, va).unwrap().flags, rw, "{preset}");
            // Swap-out of another frame is refused; of this one it owes a flush.
            let other = pt.swap_out_at(&p, &mut ram, pte, va, Pfn(8), SwapSlot(5));
            assert!(matches!(other, Err(SwapOutError::NotThisFrame { .. })));
            let flush = pt
                .swap_out_at(&p, &mut ram, pte, va, pfn, SwapSlot(5))
                .unwrap();
            let flush = flush.expect("the entry was present");
            assert_eq!(flush.range().0, va);
            flush.discard_unloaded();
            let slot = pt.slot(&p, &ram, va).unwrap();
            assert_eq!(slot.soft(), Some(SoftPte::Swap(SwapSlot(5))), "{preset}");
            assert_eq!(
                p.decode(ram.read_uint(pte, p.pte_bytes).unwrap(), 1),
                Pte::Absent
            );
            // Cleared, then kept for PROT_NONE, which swaps out without a flush.
            PageTable::clear_soft_at(&p, &mut ram, pte).unwrap();
            assert_eq!(pt.slot(&p, &ram, va), None);
            let at = pt
                .set_prot_none(&p, &mut ram, &mut frames, va, pfn, rw)
                .unwrap();
            assert_eq!(at, pte);
            let swapped = pt.swap_out_at(&p, &mut ram, pte, va, pfn, SwapSlot(9));
            assert!(matches!(swapped, Ok(None)), "{preset}");
            pt.clear_soft(&p, &mut ram, va).unwrap();
            // A present leaf unmapped by frame: its flags and a flush come back.
            let pte = pt.map(&p, &mut ram, &mut frames, va, pfn, 1, rw | Flags::DIRTY, rw);
            let pte = pte.unwrap();
            let gone = pt.unmap_frame_at(&p, &mut ram, pte, va, Pfn(8));
            assert!(matches!(gone, Err(UnmapFrameError::NotThisFrame { .. })));
            let (flags, flush) = pt.unmap_frame_at(&p, &mut ram, pte, va, pfn).unwrap();
            flush.discard_unloaded();
            assert!(flags.contains(Flags::DIRTY), "{preset}");
            assert_eq!(pt.slot(&p, &ram, va), None);
        }
    }

    #[test]
    fn a_software_entry_wider_than_the_format_is_refused() {
        let (p, mut ram, mut frames, pt) = rig("textbook");
        let too_wide = SoftPte::ProtNone(Pfn(p.max_soft()));
        let r = pt.set_soft(&p, &mut ram, &mut frames, VirtAddr(0), too_wide, Flags::RWX);
        assert!(matches!(r, Err(SetSoftError::TooWide { .. })));
    }
}
