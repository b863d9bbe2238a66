//! The step-by-step view: every translated access as a [`Step`] (the address bits, the
//! TLB lookup, the walk level by level, the fault and what the kernel did about it, the
//! physical address), with what the TLBs, the physical frames and the swap slots hold
//! after it; and [`html`], which writes a [`Walkthrough`] as one self-contained page
//! that steps through it forwards and backwards.
//!
//! Numbers that may not fit a JavaScript number (addresses, raw entries) are kept as
//! `0x` hex strings, so the page shows them exactly.
//!
//! Snapshots are stored once and shared: a step names the TLB, frame and swap
//! snapshot it shows by index, and consecutive steps that leave something unchanged
//! share its snapshot.

pub mod html;
pub mod record;
pub mod snapshot;

use crate::addr::VirtAddr;
use crate::hw::paging::Paging;
use crate::hw::story::{Step as HwStep, Translation, WalkStep};
use crate::hw::AccessKind;
use crate::os::{FaultKind, Violation};
use serde::Serialize;

pub use record::{explain_machine, record_trace, RecordError, MAX_TRACE_EVENTS};
pub use snapshot::{FrameSnapshot, SwapSnapshot, TlbSnapshot, MAX_FRAMES_SHOWN};

/// `0x` and the value in hex.
pub(crate) fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// A whole walk-through: the steps and the snapshots they show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Walkthrough {
    /// What it shows, for the page's title.
    pub title: String,
    /// The machine's name.
    pub machine: String,
    /// The machine's geometry in one line.
    pub machine_summary: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The distinct TLB snapshots ([`Step::tlbs`] indexes them).
    pub tlb_snapshots: Vec<TlbSnapshot>,
    /// The distinct frame snapshots ([`Step::frames`] indexes them).
    pub frame_snapshots: Vec<FrameSnapshot>,
    /// The distinct swap snapshots ([`Step::swap`] indexes them).
    pub swap_snapshots: Vec<SwapSnapshot>,
}

impl Walkthrough {
    /// An empty walk-through of `title` on a machine.
    pub fn new(title: impl Into<String>, machine: &str, machine_summary: &str) -> Walkthrough {
        Walkthrough {
            title: title.into(),
            machine: machine.to_string(),
            machine_summary: machine_summary.to_string(),
            ..Walkthrough::default()
        }
    }

    /// Adds a step showing `tlbs`, `frames` and `swap` after it; a snapshot equal to
    /// the one before it is shared rather than stored again.
    pub fn push(
        &mut self,
        mut step: Step,
        tlbs: TlbSnapshot,
        frames: FrameSnapshot,
        swap: Option<SwapSnapshot>,
    ) {
        step.tlbs = share(&mut self.tlb_snapshots, tlbs);
        step.frames = share(&mut self.frame_snapshots, frames);
        step.swap = swap.map(|s| share(&mut self.swap_snapshots, s));
        self.steps.push(step);
    }

    /// Adds a step that shows the same frames as the step before it (nothing but the
    /// hardware changed); with no step before, like [`Walkthrough::push`] of `frames()`.
    pub fn push_same_memory(
        &mut self,
        mut step: Step,
        tlbs: TlbSnapshot,
        frames: impl FnOnce() -> FrameSnapshot,
        swap: impl FnOnce() -> Option<SwapSnapshot>,
    ) {
        match self.steps.last() {
            Some(prev) => {
                step.frames = prev.frames;
                step.swap = prev.swap;
                step.tlbs = share(&mut self.tlb_snapshots, tlbs);
                self.steps.push(step);
            }
            None => self.push(step, tlbs, frames(), swap()),
        }
    }
}

/// The index of `snap` in `list`, appending it unless it equals the last one.
fn share<T: PartialEq>(list: &mut Vec<T>, snap: T) -> usize {
    if list.last() != Some(&snap) {
        list.push(snap);
    }
    list.len() - 1
}

/// One translated access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The access in a few words (`W 0x10000000, pid 1`).
    pub label: String,
    /// The (kernel) process that made it, when a kernel runs.
    pub pid: Option<u32>,
    /// `read`, `write` or `execute`.
    pub access: &'static str,
    /// The address split into its fields.
    pub bits: AddressBits,
    /// The translations tried, in order: one, or one per fault the kernel handled.
    pub attempts: Vec<Attempt>,
    /// Whether the first translation faulted.
    pub page_fault: bool,
    /// The physical page number reached, if the access completed.
    pub ppn: Option<String>,
    /// The physical address reached, if the access completed.
    pub pa: Option<String>,
    /// How it ended, in words.
    pub outcome: String,
    /// The TLB entries this step used or filled.
    pub touched: Vec<Touched>,
    /// Index of the TLB snapshot after the step.
    pub tlbs: usize,
    /// Index of the frame snapshot after the step.
    pub frames: usize,
    /// Index of the swap snapshot after the step, when there is swap.
    pub swap: Option<usize>,
}

/// The name of an access kind.
pub fn access_name(kind: AccessKind) -> &'static str {
    match kind {
        AccessKind::Read => "read",
        AccessKind::Write => "write",
        AccessKind::Execute => "execute",
    }
}

impl Step {
    /// A step for the translations of one access (the last one decides the outcome),
    /// with `handled[i]` what the kernel did after translation `i` faulted.
    pub fn new(
        label: String,
        paging: &Paging,
        tlb: Option<TlbGeometry>,
        kind: AccessKind,
        tries: &[(&Translation, Option<KernelAction>)],
    ) -> Step {
        let va = tries.first().map_or(VirtAddr(0), |t| t.0.va);
        let attempts: Vec<Attempt> = tries
            .iter()
            .map(|(t, k)| Attempt::new(t, paging, k.clone()))
            .collect();
        let last = tries.last().map(|t| &t.0.result);
        let (ppn, pa) = match last {
            Some(Ok(pa)) => (Some(hex(pa.0 >> paging.page_shift)), Some(hex(pa.0))),
            _ => (None, None),
        };
        let outcome = match (&pa, attempts.last()) {
            (Some(pa), _) => format!("physical address {pa}"),
            (None, Some(a)) => match &a.kernel {
                Some(k) => k.text.clone(),
                None => a.result.clone(),
            },
            (None, None) => "nothing translated".into(),
        };
        Step {
            label,
            pid: None,
            access: access_name(kind),
            bits: AddressBits::new(paging, va, tlb),
            page_fault: tries.first().is_some_and(|t| t.0.result.is_err()),
            attempts,
            ppn,
            pa,
            outcome,
            touched: Vec::new(),
            tlbs: 0,
            frames: 0,
            swap: None,
        }
    }
}

/// The set geometry of the first data TLB's first array: how the VPN splits into a
/// set index and a tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlbGeometry {
    /// The TLB's name.
    pub tlb: String,
    /// Number of sets.
    pub sets: u64,
    /// log2 of the page size of its first probe.
    pub page_shift: u32,
}

/// One field of a virtual address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BitField {
    /// What it is (`PML4`, `PT`, `offset`, `sign`).
    pub name: String,
    /// Its highest bit.
    pub hi: u32,
    /// Its lowest bit.
    pub lo: u32,
    /// Its bits, highest first.
    pub binary: String,
    /// Its value.
    pub value: String,
}

/// A virtual address split into the fields the hardware uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddressBits {
    /// The address.
    pub va: String,
    /// Bits of virtual address the machine translates.
    pub va_bits: u32,
    /// log2 of the base page size.
    pub page_shift: u32,
    /// Virtual page number (base pages).
    pub vpn: String,
    /// Offset in the base page.
    pub vpo: String,
    /// The fields, from the highest bits down: the sign extension (where the format
    /// has one), the index at each level, the page offset.
    pub fields: Vec<BitField>,
    /// The first TLB's set index of the VPN, when there is a TLB.
    pub tlb_set: Option<u64>,
    /// The first TLB's tag of the VPN.
    pub tlb_tag: Option<String>,
    /// Bits of the VPN that select the set.
    pub tlb_set_bits: Option<u32>,
    /// The TLB the set and tag are for.
    pub tlb_name: Option<String>,
}

/// Bits `lo..=hi` of `v`, highest first.
fn binary(v: u64, hi: u32, lo: u32) -> String {
    (lo..=hi)
        .rev()
        .map(|b| {
            if b < 64 && (v >> b) & 1 == 1 {
                '1'
            } else {
                '0'
            }
        })
        .collect()
}

impl AddressBits {
    /// Splits `va` as `paging` does, with the set index and tag of `tlb`.
    pub fn new(paging: &Paging, va: VirtAddr, tlb: Option<TlbGeometry>) -> AddressBits {
        let p = paging;
        let mut fields = Vec::new();
        if p.sign_extend && p.va_bits < 64 {
            fields.push(BitField {
                name: "sign".into(),
                hi: 63,
                lo: p.va_bits,
                binary: binary(va.0, 63, p.va_bits),
                value: hex(va.0 >> p.va_bits),
            });
        }
        for level in (1..=p.levels).rev() {
            let lo = p.level_shift(level);
            let hi = (lo + p.level_bits(level)).saturating_sub(1);
            fields.push(BitField {
                name: p.table_name(level),
                hi,
                lo,
                binary: binary(va.0, hi, lo),
                value: p.index(va, level).to_string(),
            });
        }
        fields.push(BitField {
            name: "offset".into(),
            hi: p.page_shift.saturating_sub(1),
            lo: 0,
            binary: binary(va.0, p.page_shift.saturating_sub(1), 0),
            value: hex(va.page_offset(p.page_size())),
        });
        let (tlb_set, tlb_tag, tlb_set_bits, tlb_name) = match tlb {
            Some(g) if g.sets > 0 && g.page_shift < 64 => {
                let vpn = va.0 >> g.page_shift;
                let bits = g.sets.trailing_zeros();
                (
                    Some(vpn & (g.sets - 1)),
                    Some(hex(vpn.checked_shr(bits).unwrap_or(0))),
                    Some(bits),
                    Some(g.tlb),
                )
            }
            _ => (None, None, None, None),
        };
        AddressBits {
            va: hex(va.0),
            va_bits: p.va_bits,
            page_shift: p.page_shift,
            vpn: hex(va.0 >> p.page_shift),
            vpo: hex(va.page_offset(p.page_size())),
            fields,
            tlb_set,
            tlb_tag,
            tlb_set_bits,
            tlb_name,
        }
    }
}

/// One TLB probe of a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The TLB.
    pub tlb: String,
    /// The array.
    pub array: String,
    /// The page size probed for, in bytes.
    pub page_size: u64,
    /// The page number at that size.
    pub vpn: String,
    /// The set.
    pub set: u64,
    /// The tag.
    pub tag: String,
    /// The way that hit, if one did.
    pub way: Option<usize>,
}

/// One page-table entry read by a walk: the read as `vmsim explain --json` tells it,
/// its numbers as hex strings, and what the walker wrote back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalkEntry {
    /// The read (level, table, index, entry address, raw value, kind, frame, flags).
    #[serde(flatten)]
    pub read: WalkStep<String>,
    /// The value written back when the walker set Accessed or Dirty.
    pub updated: Option<String>,
}

/// What the kernel's fault handler did with a fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelAction {
    /// The fault kind's name (`demand-zero`, `cow-copy`, `segv-no-vma`, ...).
    pub kind: String,
    /// Its class: `minor`, `major`, `cow`, `spurious` or `violation`.
    pub class: &'static str,
    /// In words.
    pub text: String,
}

impl KernelAction {
    /// What the handler's result says.
    pub fn from_handler(r: Result<FaultKind, Violation>) -> KernelAction {
        use crate::os::FaultClass;
        match r {
            Ok(k) => {
                let (class, what) = match k.class() {
                    FaultClass::Minor => ("minor", "a minor fault, resolved in memory"),
                    FaultClass::Major => ("major", "a major fault, which read from storage"),
                    FaultClass::Cow => ("cow", "a copy-on-write fault"),
                    FaultClass::Spurious => ("spurious", "a spurious fault"),
                    FaultClass::Violation => ("violation", "a violation"),
                };
                KernelAction {
                    kind: k.name().to_string(),
                    class,
                    text: format!(
                        "the kernel handled {what} ({}); the access is retried",
                        k.name()
                    ),
                }
            }
            Err(v) => KernelAction {
                kind: v.kind().map_or("oom", |k| k.name()).to_string(),
                class: "violation",
                text: format!("the kernel refused it: {} ({:?})", v.reason(), v.signal()),
            },
        }
    }

    /// A fault on a machine with no kernel: nobody handles it.
    pub fn no_kernel() -> KernelAction {
        KernelAction {
            kind: "unhandled".into(),
            class: "violation",
            text: "no kernel runs here: the page fault ends the access".into(),
        }
    }
}

/// One translation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The TLB probes, in order.
    pub probes: Vec<Probe>,
    /// Whether some TLB hit.
    pub tlb_hit: bool,
    /// The entries the walk read, in order.
    pub walk: Vec<WalkEntry>,
    /// Other things the hardware did (walk-cache probes, fills, dropped entries).
    pub notes: Vec<String>,
    /// The fault, in words, if it faulted.
    pub fault: Option<String>,
    /// How it ended, in words.
    pub result: String,
    /// What the kernel did about the fault.
    pub kernel: Option<KernelAction>,
}

impl Attempt {
    /// The attempt a translation's story tells.
    pub fn new(t: &Translation, paging: &Paging, kernel: Option<KernelAction>) -> Attempt {
        let mut a = Attempt {
            probes: Vec::new(),
            tlb_hit: t.tlb_hit().is_some(),
            walk: Vec::new(),
            notes: Vec::new(),
            fault: t.result.as_ref().err().map(|f| f.to_string()),
            result: match &t.result {
                Ok(pa) => format!(
                    "physical address {} (frame {}, offset {})",
                    hex(pa.0),
                    hex(pa.0 >> paging.page_shift),
                    hex(pa.page_offset(paging.page_size()))
                ),
                Err(f) => format!("page fault: {f}"),
            },
            kernel: if t.result.is_err() { kernel } else { None },
        };
        for s in &t.steps {
            match s {
                HwStep::Tlb { tlb, probes, hit } => {
                    a.probes.extend(probes.iter().map(|p| Probe {
                        tlb: tlb.clone(),
                        array: p.array.clone(),
                        page_size: p.page_size,
                        vpn: hex(p.vpn),
                        set: p.set,
                        tag: hex(p.tag),
                        way: p.way,
                    }));
                    if probes.is_empty() {
                        a.notes
                            .push(format!("{tlb}: {}", if *hit { "hit" } else { "miss" }));
                    }
                }
                HwStep::TlbEntryDropped { tlb, reason } => {
                    a.notes.push(format!("{tlb}: {reason}"));
                }
                HwStep::WalkCache {
                    level,
                    prefix,
                    table,
                } => a.notes.push(format!(
                    "walk cache for level {level}, prefix {}: {}",
                    hex(*prefix),
                    match table {
                        Some(t) => format!("hit, next table at {}", hex(t.0)),
                        None => "miss".into(),
                    }
                )),
                HwStep::PteRead(r) => {
                    a.walk.extend(WalkStep::of(s).map(|read| WalkEntry {
                        read: read.map(hex),
                        updated: r.updated.map(hex),
                    }));
                }
                HwStep::TlbFill { tlb, page_size } => a.notes.push(format!(
                    "filled {tlb} with the {} page",
                    crate::size::format_size(*page_size)
                )),
                HwStep::Cache(c) => a.notes.push(format!(
                    "data cache {}: PA tag {} set {} offset {}: {}",
                    c.cache,
                    hex(c.tag),
                    c.index,
                    c.offset,
                    if c.hit {
                        format!("hit in way {}", c.way)
                    } else {
                        "miss".into()
                    }
                )),
            }
        }
        a
    }
}

/// A TLB entry a step used or filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Touched {
    /// The TLB.
    pub tlb: String,
    /// The array.
    pub array: String,
    /// The set.
    pub set: u64,
    /// The way.
    pub way: usize,
    /// `hit` or `filled`.
    pub how: &'static str,
}

#[cfg(test)]
mod tests;
