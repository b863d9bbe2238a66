//! Workloads that drive the allocators and collectors, and what they report.
//!
//! - Allocation traces ([`alloc_trace`], run by [`run_alloc_trace`]; both at once:
//!   [`run_alloc`]): `random` (mallocs and frees in random order, sizes skewed toward
//!   small), `phases` (build up, free most, keep a few long-lived blocks, with each
//!   phase's sizes in a different range: the classic fragmenter) and
//!   `producer-consumer` (a FIFO of messages: blocks freed in allocation order). A
//!   trace is a plain list of operations, so the same trace can run through every
//!   allocator.
//! - Object-graph mutators ([`run_gc`]): a binary `tree` whose subtrees are replaced, a
//!   `list` used as a queue (append at the tail, drop the head), and a `random-graph`
//!   whose nodes are replaced and edges rewired (which makes cycles).
//!
//! Everything is seeded from the crate's generator: the same parameters give the same
//! run, bit for bit. Run each workload on a freshly booted kernel for clean numbers:
//! the machine-wide counters in the reports ([`HwStats`], [`KernelStats`]) include
//! whatever ran before.

use crate::addr::VirtAddr;
use crate::os::{Kernel, Pid};
use crate::report::{HwStats, KernelStats};
use crate::rng::Rng;
use crate::size::format_size;
use crate::user::alloc::{AllocConfig, AllocError, AllocStats, AllocatorKind, Heap};
use crate::user::gc::{CollectorKind, GcConfig, GcError, GcHeap, GcStats};
use serde::Serialize;
use std::fmt;

/// The shape of an allocation trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AllocPattern {
    /// Random mallocs, frees and reallocs.
    Random,
    /// Phases of build-up and mass free, with survivors.
    Phases,
    /// A FIFO queue of messages.
    ProducerConsumer,
}

impl AllocPattern {
    /// Every pattern.
    pub const ALL: [AllocPattern; 3] = [
        AllocPattern::Random,
        AllocPattern::Phases,
        AllocPattern::ProducerConsumer,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            AllocPattern::Random => "random",
            AllocPattern::Phases => "phases",
            AllocPattern::ProducerConsumer => "producer-consumer",
        }
    }

    /// The pattern called `name`, if any.
    pub fn from_name(name: &str) -> Option<AllocPattern> {
        AllocPattern::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One operation of an allocation trace. Blocks are named by slot numbers, which the
/// runner maps to the pointers the allocator returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TraceOp {
    /// `slot = malloc(size)`.
    Malloc {
        /// The block's name.
        slot: u32,
        /// Bytes.
        size: u64,
    },
    /// `slot = calloc(1, size)`.
    Calloc {
        /// The block's name.
        slot: u32,
        /// Bytes.
        size: u64,
    },
    /// `slot = realloc(slot, size)`.
    Realloc {
        /// The block's name.
        slot: u32,
        /// New size in bytes.
        size: u64,
    },
    /// `free(slot)`.
    Free {
        /// The block's name.
        slot: u32,
    },
}

/// Parameters of an allocation workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AllocParams {
    /// Which allocator.
    pub allocator: AllocatorKind,
    /// Which trace.
    pub pattern: AllocPattern,
    /// Operations in the trace.
    pub ops: u64,
    /// Smallest request, bytes.
    pub min_size: u64,
    /// Largest request, bytes.
    pub max_size: u64,
    /// Most blocks live at once.
    pub max_live: u64,
    /// The program writes every block it gets (touching its pages), as real programs
    /// do; off, only the allocator's own metadata is touched.
    pub touch: bool,
    /// Seed.
    pub seed: u64,
    /// The allocator's tunables.
    pub config: AllocConfig,
}

impl Default for AllocParams {
    fn default() -> Self {
        AllocParams {
            allocator: AllocatorKind::Segregated,
            pattern: AllocPattern::Random,
            ops: 10_000,
            min_size: 8,
            max_size: 4096,
            max_live: 1_000,
            touch: true,
            seed: 1,
            config: AllocConfig::default(),
        }
    }
}

/// Most operations an allocation trace takes: it is built in memory before it runs
/// (24 bytes an operation, so at most 384 MiB).
pub const MAX_OPS: u64 = 1 << 24;

/// Why a workload's parameters cannot be, or why its run could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A parameter out of range: the workload, the parameter as the command line
    /// names it, its value and why.
    #[error("workload {workload}: {param} = {value}: {reason}")]
    Param {
        /// `alloc` or `gc`.
        workload: &'static str,
        /// The parameter.
        param: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot be.
        reason: String,
    },
    /// The allocator's heap could not be set up.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// The collector's heap could not be set up.
    #[error(transparent)]
    Gc(#[from] GcError),
}

fn param_error(
    workload: &'static str,
    param: &'static str,
    value: impl ToString,
    reason: impl Into<String>,
) -> WorkloadError {
    WorkloadError::Param {
        workload,
        param,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl AllocParams {
    /// Checks the trace's parameters: at most [`MAX_OPS`] operations; between 1 and
    /// 2^31 - 1 blocks live at once; request sizes from 1 byte, the smallest no larger
    /// than the largest. Nothing is silently clamped.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let e = |param, value: u64, reason: String| Err(param_error("alloc", param, value, reason));
        if self.ops > MAX_OPS {
            return e(
                "ops",
                self.ops,
                format!("at most {MAX_OPS} (the trace is built in memory first)"),
            );
        }
        let most_live = u32::MAX as u64 / 2;
        if !(1..=most_live).contains(&self.max_live) {
            return e(
                "max-live",
                self.max_live,
                format!("must be between 1 and {most_live}"),
            );
        }
        if self.max_size == 0 {
            return e("max-size", 0, "must be at least 1 byte".into());
        }
        if self.min_size == 0 || self.min_size > self.max_size {
            return e(
                "min-size",
                self.min_size,
                format!("must be between 1 and max-size ({})", self.max_size),
            );
        }
        Ok(())
    }
}

fn seeded(seed: u64) -> Rng {
    Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
}

/// A request size in `min..=max`, skewed toward small ones as real programs' are.
fn size_in(rng: &mut Rng, min: u64, max: u64) -> u64 {
    let (lo, hi) = (min.min(max), min.max(max));
    lo + rng.skewed(hi - lo + 1)
}

/// The trace `params` describe (its allocator is not used).
pub fn alloc_trace(params: &AllocParams) -> Vec<TraceOp> {
    let mut rng = seeded(params.seed);
    let max_live = params.max_live.clamp(1, u32::MAX as u64 / 2) as usize;
    let (min, max) = (params.min_size, params.max_size);
    let mut out = Vec::with_capacity(params.ops.min(1 << 24) as usize);
    // Slots not in use, and slots live.
    let mut free_slots: Vec<u32> = Vec::new();
    let mut next_slot = 0u32;
    let mut take = |free_slots: &mut Vec<u32>| {
        free_slots.pop().unwrap_or_else(|| {
            next_slot += 1;
            next_slot - 1
        })
    };
    match params.pattern {
        AllocPattern::Random => {
            let mut live: Vec<u32> = Vec::new();
            while (out.len() as u64) < params.ops {
                let r = rng.below(100);
                if live.is_empty() || (live.len() < max_live && r < 55) {
                    let slot = take(&mut free_slots);
                    let size = size_in(&mut rng, min, max);
                    out.push(if r % 10 == 0 {
                        TraceOp::Calloc { slot, size }
                    } else {
                        TraceOp::Malloc { slot, size }
                    });
                    live.push(slot);
                } else if r < 65 {
                    let slot = live[rng.below(live.len() as u64) as usize];
                    out.push(TraceOp::Realloc {
                        slot,
                        size: size_in(&mut rng, min, max),
                    });
                } else {
                    let i = rng.below(live.len() as u64) as usize;
                    let slot = live.swap_remove(i);
                    out.push(TraceOp::Free { slot });
                    free_slots.push(slot);
                }
            }
        }
        AllocPattern::Phases => {
            let mut survivors: Vec<u32> = Vec::new();
            let mut phase = 0u64;
            while (out.len() as u64) < params.ops {
                // Alternate small and large sizes from phase to phase.
                let (lo, hi) = if phase % 2 == 0 {
                    (min, min + (max - min.min(max)) / 4)
                } else {
                    (min + (max - min.min(max)) / 2, max)
                };
                let n = (max_live - survivors.len().min(max_live)).max(1);
                let mut built: Vec<u32> = Vec::with_capacity(n);
                for _ in 0..n {
                    let slot = take(&mut free_slots);
                    out.push(TraceOp::Malloc {
                        slot,
                        size: size_in(&mut rng, lo, hi),
                    });
                    built.push(slot);
                }
                // Free most in random order; a tenth survive into later phases.
                while !built.is_empty() {
                    let i = rng.below(built.len() as u64) as usize;
                    let slot = built.swap_remove(i);
                    if rng.below(10) == 0 && survivors.len() < max_live / 2 {
                        survivors.push(slot);
                    } else {
                        out.push(TraceOp::Free { slot });
                        free_slots.push(slot);
                    }
                }
                phase += 1;
            }
            out.truncate(params.ops as usize);
        }
        AllocPattern::ProducerConsumer => {
            let mut queue = std::collections::VecDeque::new();
            while (out.len() as u64) < params.ops {
                // The producer runs ahead in bursts; the consumer catches up.
                let produce = queue.is_empty()
                    || (queue.len() < max_live
                        && rng.below(100) < 50 + (queue.len() < max_live / 2) as u64 * 10);
                if produce {
                    let slot = take(&mut free_slots);
                    out.push(TraceOp::Malloc {
                        slot,
                        size: size_in(&mut rng, min, max),
                    });
                    queue.push_back(slot);
                } else if let Some(slot) = queue.pop_front() {
                    out.push(TraceOp::Free { slot });
                    free_slots.push(slot);
                }
            }
        }
    }
    out
}

/// What a process's memory system did during a run: its own counters, plus the
/// machine's and the kernel's reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemorySystem {
    /// Accesses the process made during the run (allocator or collector, and program).
    pub accesses: u64,
    /// Page faults the process took during the run (minor and major).
    pub page_faults: u64,
    /// Major faults (swap-ins) among them.
    pub major_faults: u64,
    /// Resident pages at the end.
    pub rss_pages: u64,
    /// Most pages resident at once (over the process's life).
    pub peak_rss_pages: u64,
    /// The machine's counters (TLBs, walks, faults), machine-wide.
    pub hw: HwStats,
    /// The kernel's counters and state, machine-wide.
    pub kernel: KernelStats,
}

/// A snapshot of one process's counters, to take differences.
#[derive(Clone, Copy, Debug, Default)]
struct ProcSnap {
    accesses: u64,
    faults: u64,
    major: u64,
}

fn snap(k: &Kernel, pid: Pid) -> ProcSnap {
    use crate::os::{FaultClass, FaultKind};
    k.process(pid)
        .map(|p| {
            let in_class = |c: FaultClass| -> u64 {
                FaultKind::ALL
                    .iter()
                    .filter(|f| f.class() == c)
                    .map(|&f| p.stats.faults_of(f))
                    .sum()
            };
            ProcSnap {
                accesses: p.stats.accesses,
                faults: in_class(FaultClass::Minor) + in_class(FaultClass::Major),
                major: in_class(FaultClass::Major),
            }
        })
        .unwrap_or_default()
}

fn memory_system(k: &Kernel, pid: Pid, before: ProcSnap) -> MemorySystem {
    let after = snap(k, pid);
    let p = k.process(pid);
    MemorySystem {
        accesses: after.accesses - before.accesses,
        page_faults: after.faults - before.faults,
        major_faults: after.major - before.major,
        rss_pages: p.map_or(0, |p| p.rss().total()),
        peak_rss_pages: p.map_or(0, |p| p.stats.peak_rss),
        hw: HwStats::from_mmu(&k.machine().mmu),
        kernel: KernelStats::from_kernel(k),
    }
}

/// What an allocation workload did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AllocReport {
    /// The allocator.
    pub allocator: AllocatorKind,
    /// The trace's pattern (`None` for a trace given by the caller).
    pub pattern: Option<AllocPattern>,
    /// Operations in the trace.
    pub ops: u64,
    /// Operations run (fewer than `ops` if one failed).
    pub ops_done: u64,
    /// The allocator's counters and sizes.
    pub stats: AllocStats,
    /// Most heap at once (`brk` heap plus mapped blocks), bytes.
    pub peak_heap_bytes: u64,
    /// Peak live bytes over peak heap bytes.
    pub utilisation: f64,
    /// Share of the heap at peak load inside blocks but not requested.
    pub internal_fragmentation: f64,
    /// Share of the heap at peak load in free blocks.
    pub external_fragmentation: f64,
    /// The error that stopped the trace, if any (out of memory, a bad free).
    pub error: Option<String>,
    /// The memory system's counters.
    pub memory: MemorySystem,
}

impl AllocReport {
    /// A readable summary (the memory system's headline numbers; the full hardware
    /// and kernel reports are in the JSON).
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for AllocReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let pattern = self.pattern.map_or("custom", |p| p.name());
        writeln!(
            f,
            "allocator     {}  ({pattern} trace, {} of {} ops)",
            self.allocator, self.ops_done, self.ops
        )?;
        writeln!(
            f,
            "operations    {} malloc, {} free, {} realloc, {} calloc, {} failed, {} bad frees",
            s.nr_malloc, s.nr_free, s.nr_realloc, s.nr_calloc, s.nr_failed, s.nr_errors
        )?;
        writeln!(
            f,
            "heap          peak {} (live at most {}), now {}; {} brk moves, {} trims, {} mmap, {} munmap",
            format_size(self.peak_heap_bytes),
            format_size(s.peak_live_bytes),
            format_size(s.heap_bytes),
            s.ops.brk_calls,
            s.ops.trims,
            s.nr_mmap,
            s.nr_munmap
        )?;
        writeln!(
            f,
            "utilisation   {:.1}%   fragmentation at peak load: internal {:.1}%, external {:.1}%",
            self.utilisation * 100.0,
            self.internal_fragmentation * 100.0,
            self.external_fragmentation * 100.0
        )?;
        writeln!(
            f,
            "allocator     {} accesses, {} search steps, {} splits, {} merges",
            s.accesses, s.ops.search_steps, s.ops.splits, s.ops.coalesces
        )?;
        write_memory(f, &self.memory)?;
        if let Some(e) = &self.error {
            writeln!(f, "stopped       {e}")?;
        }
        Ok(())
    }
}

fn write_memory(f: &mut fmt::Formatter<'_>, m: &MemorySystem) -> fmt::Result {
    let tlb_misses: u64 =
        m.hw.tlbs
            .iter()
            .filter(|t| t.level == 1)
            .map(|t| t.misses)
            .sum();
    writeln!(
        f,
        "process       {} accesses, {} page faults ({} major), rss {} pages (peak {})",
        m.accesses, m.page_faults, m.major_faults, m.rss_pages, m.peak_rss_pages
    )?;
    writeln!(
        f,
        "machine       {} L1 TLB misses, {} page walks, {} translation cycles",
        tlb_misses, m.hw.walks, m.hw.cycles
    )
}

/// Runs `trace` through a new allocator of kind `kind` in process `pid`. A failing
/// operation (out of memory, a bad free in a hand-written trace) stops the run and is
/// reported in [`AllocReport::error`]; only a heap that cannot even be set up is an
/// `Err`.
pub fn run_alloc_trace(
    kernel: &mut Kernel,
    pid: Pid,
    kind: AllocatorKind,
    config: AllocConfig,
    trace: &[TraceOp],
    touch: bool,
) -> Result<AllocReport, AllocError> {
    let before = snap(kernel, pid);
    let mut heap = Heap::new(kernel, pid, kind, config)?;
    let mut ptrs: Vec<VirtAddr> = Vec::new();
    let mut done = 0u64;
    let mut error = None;
    for op in trace {
        let r = run_op(&mut heap, &mut ptrs, *op, touch);
        if let Err(e) = r {
            error = Some(e.to_string());
            break;
        }
        done += 1;
    }
    let stats = heap.stats().clone();
    drop(heap);
    Ok(AllocReport {
        allocator: kind,
        pattern: None,
        ops: trace.len() as u64,
        ops_done: done,
        peak_heap_bytes: stats.peak_heap_bytes,
        utilisation: stats.utilisation(),
        internal_fragmentation: stats.internal_fragmentation(),
        external_fragmentation: stats.external_fragmentation(),
        stats,
        error,
        memory: memory_system(kernel, pid, before),
    })
}

fn slot_mut(ptrs: &mut Vec<VirtAddr>, slot: u32) -> &mut VirtAddr {
    let i = slot as usize;
    if i >= ptrs.len() {
        ptrs.resize(i + 1, VirtAddr(0));
    }
    &mut ptrs[i]
}

fn run_op(
    heap: &mut Heap<'_>,
    ptrs: &mut Vec<VirtAddr>,
    op: TraceOp,
    touch: bool,
) -> Result<(), AllocError> {
    match op {
        TraceOp::Malloc { slot, size } | TraceOp::Calloc { slot, size } => {
            let p = if matches!(op, TraceOp::Calloc { .. }) {
                heap.calloc(1, size)?
            } else {
                heap.malloc(size)?
            };
            *slot_mut(ptrs, slot) = p;
            if touch {
                heap.mem().fill(p.0, size, (slot as u8) | 1)?;
            }
        }
        TraceOp::Realloc { slot, size } => {
            let old = *slot_mut(ptrs, slot);
            let p = heap.realloc(old, size)?;
            *slot_mut(ptrs, slot) = p;
            if touch {
                heap.mem().fill(p.0, size, (slot as u8) | 1)?;
            }
        }
        TraceOp::Free { slot } => {
            let p = std::mem::replace(slot_mut(ptrs, slot), VirtAddr(0));
            heap.free(p)?;
        }
    }
    Ok(())
}

/// Generates the trace `params` describe and runs it through their allocator, once
/// [`AllocParams::validate`] accepts them.
pub fn run_alloc(
    kernel: &mut Kernel,
    pid: Pid,
    params: &AllocParams,
) -> Result<AllocReport, WorkloadError> {
    params.validate()?;
    let trace = alloc_trace(params);
    let mut r = run_alloc_trace(
        kernel,
        pid,
        params.allocator,
        params.config,
        &trace,
        params.touch,
    )?;
    r.pattern = Some(params.pattern);
    Ok(r)
}

/// The shape of the object graph a collector workload keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum GraphShape {
    /// A complete binary tree; churn replaces random subtrees.
    Tree,
    /// A linked list used as a queue: churn appends at the tail and drops the head.
    LinkedList,
    /// A directory of nodes with random edges (cycles included); churn replaces nodes
    /// (the old node drops its edges but stays alive while anything points to it) and
    /// rewires edges.
    RandomGraph,
}

impl GraphShape {
    /// Every shape.
    pub const ALL: [GraphShape; 3] = [
        GraphShape::Tree,
        GraphShape::LinkedList,
        GraphShape::RandomGraph,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            GraphShape::Tree => "tree",
            GraphShape::LinkedList => "list",
            GraphShape::RandomGraph => "random-graph",
        }
    }

    /// The shape called `name`, if any.
    pub fn from_name(name: &str) -> Option<GraphShape> {
        GraphShape::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Parameters of a collector workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GcParams {
    /// Which collector.
    pub collector: CollectorKind,
    /// Which graph.
    pub shape: GraphShape,
    /// Objects in the live structure (the tree's size is rounded down to `2^h - 1`;
    /// the graph's directory holds at most 65 535).
    pub objects: u64,
    /// Mutator steps after the structure is built.
    pub steps: u64,
    /// Percentage of steps that change the structure (the rest read it).
    pub churn_percent: u64,
    /// Pointer fields of each random-graph node.
    pub fields: u64,
    /// Data bytes of each object (at least 8: the object's number is kept there).
    pub data_bytes: u64,
    /// Seed.
    pub seed: u64,
    /// Heap sizes.
    pub config: GcConfig,
}

impl Default for GcParams {
    fn default() -> Self {
        GcParams {
            collector: CollectorKind::MarkSweep,
            shape: GraphShape::Tree,
            objects: 1_000,
            steps: 10_000,
            churn_percent: 50,
            fields: 2,
            data_bytes: 16,
            seed: 1,
            config: GcConfig {
                heap_bytes: 256 << 10,
                young_bytes: 32 << 10,
                nr_roots: 64,
            },
        }
    }
}

impl GcParams {
    /// Checks the mutator's parameters: at least one object (at most 65 535 for the
    /// random graph, whose directory is one object); churn a percentage (0 to 100);
    /// at most 65 535 fields; at least 8 data bytes (the object's number lives there).
    /// Nothing is silently clamped.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let max = crate::user::gc::MAX_FIELDS;
        let e = |param, value: u64, reason: String| Err(param_error("gc", param, value, reason));
        if self.objects == 0 {
            return e("objects", 0, "must be at least 1".into());
        }
        if self.shape == GraphShape::RandomGraph && self.objects > max {
            return e(
                "objects",
                self.objects,
                format!("the random graph's directory holds at most {max} nodes"),
            );
        }
        if self.churn_percent > 100 {
            return e(
                "churn",
                self.churn_percent,
                "a percentage: at most 100".into(),
            );
        }
        if self.fields > max {
            return e("fields", self.fields, format!("at most {max}"));
        }
        if self.data_bytes < 8 {
            return e(
                "data-bytes",
                self.data_bytes,
                "at least 8 (an object's number is kept there)".into(),
            );
        }
        Ok(())
    }
}

/// What a collector workload did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GcReport {
    /// The collector.
    pub collector: CollectorKind,
    /// The graph.
    pub shape: GraphShape,
    /// Mutator steps asked for.
    pub steps: u64,
    /// Steps run (fewer if one failed).
    pub steps_done: u64,
    /// The collector's counters.
    pub stats: GcStats,
    /// Mean accesses per pause.
    pub mean_pause_accesses: f64,
    /// Bytes of the heap's region.
    pub heap_bytes: u64,
    /// The error that stopped the run, if any (out of memory).
    pub error: Option<String>,
    /// The memory system's counters.
    pub memory: MemorySystem,
}

impl GcReport {
    /// A readable summary.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(
            f,
            "collector     {}  ({} graph, {} of {} steps, heap {})",
            self.collector,
            self.shape.name(),
            self.steps_done,
            self.steps,
            format_size(self.heap_bytes)
        )?;
        writeln!(
            f,
            "allocated     {} objects, {}",
            s.nr_allocs,
            format_size(s.bytes_allocated)
        )?;
        writeln!(
            f,
            "collections   {} ({} minor, {} major)",
            s.collections, s.minor_collections, s.major_collections
        )?;
        writeln!(
            f,
            "reclaimed     {} objects, {}; moved {} objects, {}; promoted {}; barrier records {}",
            s.objects_reclaimed,
            format_size(s.bytes_reclaimed),
            s.objects_moved,
            format_size(s.bytes_moved),
            s.objects_promoted,
            s.barrier_records
        )?;
        writeln!(
            f,
            "pauses        {} totalling {} accesses; longest {}, mean {:.1}; mutator {} accesses",
            s.nr_pauses,
            s.pause_accesses,
            s.max_pause_accesses,
            self.mean_pause_accesses,
            s.mutator_accesses
        )?;
        write_memory(f, &self.memory)?;
        if let Some(e) = &self.error {
            writeln!(f, "stopped       {e}")?;
        }
        Ok(())
    }
}

/// Root slots the mutators use: 0 holds the structure; the rest are scratch.
const SCRATCH: usize = 1;

/// Builds a subtree of height `h` (2^(h+1) - 1 nodes) in root slot `s`, using the
/// slots above it as a stack.
fn build_tree(
    heap: &mut GcHeap<'_>,
    s: usize,
    h: u32,
    data: u64,
    id: &mut u64,
) -> Result<(), GcError> {
    heap.alloc(s, 2, data)?;
    heap.write_data(s, 0, &id.to_le_bytes())?;
    *id += 1;
    if h > 0 {
        for f in 0..2 {
            build_tree(heap, s + 1, h - 1, data, id)?;
            heap.store_field(s, f, Some(s + 1))?;
        }
        heap.set_root(s + 1, None)?;
    }
    Ok(())
}

/// The mutator of [`run_gc`]; returns the steps it completed.
fn mutate(heap: &mut GcHeap<'_>, p: &GcParams, done: &mut u64) -> Result<(), GcError> {
    let mut rng = seeded(p.seed);
    let data = p.data_bytes.max(8);
    let mut id = 0u64;
    let mut buf = [0u8; 8];
    match p.shape {
        GraphShape::Tree => {
            let height = (p.objects.max(1) + 1).ilog2().saturating_sub(1);
            let height = height.min(heap.nr_roots().saturating_sub(3) as u32);
            build_tree(heap, 0, height, data, &mut id)?;
            for _ in 0..p.steps {
                // Walk down a random path (slot 1 follows it), usually deep: most
                // replaced subtrees are small, a few are big.
                let depth = height.max(1) - rng.skewed(height.max(1) as u64) as u32;
                heap.set_root(SCRATCH, Some(0))?;
                for _ in 1..depth.min(height) {
                    heap.load_field(SCRATCH, SCRATCH, rng.below(2))?;
                }
                if rng.below(100) < p.churn_percent && height > 0 {
                    // Replace one child's subtree with a new one of the same height.
                    let sub = height - depth.min(height);
                    build_tree(heap, SCRATCH + 1, sub, data, &mut id)?;
                    heap.store_field(SCRATCH, rng.below(2), Some(SCRATCH + 1))?;
                    heap.set_root(SCRATCH + 1, None)?;
                } else {
                    heap.read_data(SCRATCH, 0, &mut buf)?;
                }
                *done += 1;
            }
        }
        GraphShape::LinkedList => {
            // Slot 0: head, slot 1: tail, slot 2: the new node or a walker.
            let n = p.objects.max(1);
            let append = |heap: &mut GcHeap<'_>, id: &mut u64| -> Result<(), GcError> {
                heap.alloc(2, 1, data)?;
                heap.write_data(2, 0, &id.to_le_bytes())?;
                *id += 1;
                if heap.root(1)?.is_some() {
                    heap.store_field(1, 0, Some(2))?;
                } else {
                    heap.set_root(0, Some(2))?;
                }
                heap.set_root(1, Some(2))
            };
            for _ in 0..n {
                append(heap, &mut id)?;
            }
            for _ in 0..p.steps {
                if rng.below(100) < p.churn_percent {
                    append(heap, &mut id)?;
                    heap.load_field(0, 0, 0)?;
                } else {
                    // Read a node a few links in.
                    heap.set_root(2, Some(0))?;
                    for _ in 0..rng.below(16) {
                        heap.load_field(2, 2, 0)?;
                        if heap.root(2)?.is_none() {
                            heap.set_root(2, Some(0))?;
                        }
                    }
                    heap.read_data(2, 0, &mut buf)?;
                }
                *done += 1;
            }
            heap.set_root(2, None)?;
        }
        GraphShape::RandomGraph => {
            let n = p.objects.clamp(1, crate::user::gc::MAX_FIELDS);
            let k = p.fields.min(crate::user::gc::MAX_FIELDS);
            heap.alloc(0, n, 0)?;
            let node = |heap: &mut GcHeap<'_>, i: u64, id: &mut u64| -> Result<(), GcError> {
                heap.alloc(1, k, data)?;
                heap.write_data(1, 0, &id.to_le_bytes())?;
                *id += 1;
                heap.store_field(0, i, Some(1))
            };
            for i in 0..n {
                node(heap, i, &mut id)?;
            }
            let wire = |heap: &mut GcHeap<'_>, rng: &mut Rng, a: u64| -> Result<(), GcError> {
                if k == 0 {
                    return Ok(());
                }
                heap.load_field(1, 0, a)?;
                heap.load_field(2, 0, rng.below(n))?;
                heap.store_field(1, rng.below(k), Some(2))
            };
            for i in 0..n {
                for _ in 0..k {
                    wire(heap, &mut rng, i)?;
                }
            }
            for _ in 0..p.steps {
                let a = rng.below(n);
                if rng.below(100) < p.churn_percent {
                    if rng.below(2) == 0 {
                        // The old node drops its edges (the program deletes it);
                        // references to it elsewhere keep only it alive.
                        heap.load_field(1, 0, a)?;
                        for f in 0..k {
                            heap.store_field(1, f, None)?;
                        }
                        node(heap, a, &mut id)?;
                        for _ in 0..k {
                            wire(heap, &mut rng, a)?;
                        }
                    } else {
                        wire(heap, &mut rng, a)?;
                    }
                } else {
                    heap.load_field(1, 0, a)?;
                    heap.read_data(1, 0, &mut buf)?;
                }
                *done += 1;
            }
            heap.set_root(1, None)?;
            heap.set_root(2, None)?;
        }
    }
    Ok(())
}

/// Builds the structure `params` describe in a new heap collected by their collector,
/// runs the mutator, and reports. A failing step (out of memory) stops the run and is
/// reported in [`GcReport::error`]; only a heap that cannot be set up is an `Err`.
pub fn run_gc(kernel: &mut Kernel, pid: Pid, params: &GcParams) -> Result<GcReport, WorkloadError> {
    params.validate()?;
    let before = snap(kernel, pid);
    let mut config = params.config;
    config.nr_roots = config.nr_roots.max(8);
    let mut heap = GcHeap::new(kernel, pid, params.collector, config)?;
    let mut done = 0;
    let error = mutate(&mut heap, params, &mut done)
        .err()
        .map(|e| e.to_string());
    let stats = heap.stats();
    drop(heap);
    Ok(GcReport {
        collector: params.collector,
        shape: params.shape,
        steps: params.steps,
        steps_done: done,
        mean_pause_accesses: stats.mean_pause_accesses(),
        stats,
        heap_bytes: config.heap_bytes,
        error,
        memory: memory_system(kernel, pid, before),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::test_support::boot;

    #[test]
    fn traces_are_deterministic_and_well_formed() {
        for pattern in AllocPattern::ALL {
            let p = AllocParams {
                pattern,
                ops: 2_000,
                max_live: 100,
                ..AllocParams::default()
            };
            let t = alloc_trace(&p);
            assert_eq!(t, alloc_trace(&p), "{pattern:?}");
            assert_eq!(t.len(), 2_000);
            // Every free and realloc names a live slot; no slot is allocated twice.
            let mut live = std::collections::HashSet::new();
            for op in &t {
                match *op {
                    TraceOp::Malloc { slot, .. } | TraceOp::Calloc { slot, .. } => {
                        assert!(live.insert(slot))
                    }
                    TraceOp::Realloc { slot, .. } => assert!(live.contains(&slot)),
                    TraceOp::Free { slot } => assert!(live.remove(&slot)),
                }
                assert!(live.len() <= 100);
            }
        }
    }

    #[test]
    fn alloc_reports_render_and_serialise() {
        let (mut k, pid) = boot("w");
        let p = AllocParams {
            ops: 500,
            ..AllocParams::default()
        };
        let r = run_alloc(&mut k, pid, &p).unwrap();
        assert_eq!(r.ops_done, 500);
        assert!(r.error.is_none());
        assert!(r.memory.page_faults > 0);
        assert!(r.utilisation > 0.0 && r.utilisation <= 1.0);
        let text = r.render();
        assert!(
            text.contains("segregated") && text.contains("page faults"),
            "{text}"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"utilisation\""));
    }

    #[test]
    fn every_collector_runs_every_shape() {
        for collector in CollectorKind::ALL {
            for shape in GraphShape::ALL {
                let (mut k, pid) = boot("w");
                let p = GcParams {
                    collector,
                    shape,
                    objects: 100,
                    steps: 2000,
                    churn_percent: 90,
                    data_bytes: 64,
                    config: GcConfig {
                        heap_bytes: 64 << 10,
                        young_bytes: 8 << 10,
                        nr_roots: 32,
                    },
                    ..GcParams::default()
                };
                let r = run_gc(&mut k, pid, &p).unwrap();
                if collector == CollectorKind::RefCount && shape == GraphShape::RandomGraph {
                    // Cycles leak; the heap may fill.
                    continue;
                }
                assert!(r.error.is_none(), "{collector} {shape:?}: {:?}", r.error);
                assert_eq!(r.steps_done, 2000);
                if collector != CollectorKind::RefCount {
                    assert!(r.stats.collections > 0, "{collector} {shape:?}");
                }
                assert!(r.stats.objects_reclaimed > 0, "{collector} {shape:?}");
                assert!(r.render().contains(collector.name()));
                serde_json::to_string(&r).unwrap();
            }
        }
    }

    #[test]
    fn out_of_memory_stops_the_run_with_a_report() {
        let (mut k, pid) = boot("w");
        let p = GcParams {
            objects: 10_000,
            config: GcConfig {
                heap_bytes: 16 << 10,
                ..GcConfig::default()
            },
            ..GcParams::default()
        };
        let r = run_gc(&mut k, pid, &p).unwrap();
        assert!(r.error.as_deref().unwrap().contains("out of memory"));
        assert_eq!(r.steps_done, 0);
    }

    #[test]
    fn parameters_out_of_range_are_named_and_never_clamped() {
        let alloc = |edit: fn(&mut AllocParams)| {
            let mut p = AllocParams::default();
            edit(&mut p);
            p.validate().map_err(|e| e.to_string())
        };
        assert!(alloc(|_| {}).is_ok());
        assert!(alloc(|p| p.ops = MAX_OPS).is_ok());
        for (edit, named) in [
            (
                (|p: &mut AllocParams| p.ops = u64::MAX) as fn(&mut AllocParams),
                "ops = 18446744073709551615",
            ),
            (|p| p.ops = MAX_OPS + 1, "ops = 16777217"),
            (|p| p.max_live = 0, "max-live = 0"),
            (|p| p.max_live = 1 << 32, "max-live = 4294967296"),
            (|p| p.max_size = 0, "max-size = 0"),
            (|p| p.min_size = 5000, "min-size = 5000"),
        ] {
            let e = alloc(edit).unwrap_err();
            assert!(e.starts_with(&format!("workload alloc: {named}: ")), "{e}");
        }
        let gc = |edit: fn(&mut GcParams)| {
            let mut p = GcParams::default();
            edit(&mut p);
            p.validate().map_err(|e| e.to_string())
        };
        assert!(gc(|_| {}).is_ok());
        assert!(gc(|p| p.churn_percent = 100).is_ok());
        for (edit, named) in [
            (
                (|p: &mut GcParams| p.objects = 0) as fn(&mut GcParams),
                "objects = 0",
            ),
            (
                |p| {
                    p.shape = GraphShape::RandomGraph;
                    p.objects = 70_000
                },
                "objects = 70000",
            ),
            (|p| p.churn_percent = 101, "churn = 101"),
            (|p| p.fields = 1 << 16, "fields = 65536"),
            (|p| p.data_bytes = 7, "data-bytes = 7"),
        ] {
            let e = gc(edit).unwrap_err();
            assert!(e.starts_with(&format!("workload gc: {named}: ")), "{e}");
        }
        // The runners check before they build anything.
        let (mut k, pid) = boot("w");
        let p = AllocParams {
            ops: u64::MAX,
            ..AllocParams::default()
        };
        assert!(matches!(
            run_alloc(&mut k, pid, &p),
            Err(WorkloadError::Param { param: "ops", .. })
        ));
        let g = GcParams {
            churn_percent: 101,
            ..GcParams::default()
        };
        assert!(matches!(
            run_gc(&mut k, pid, &g),
            Err(WorkloadError::Param { param: "churn", .. })
        ));
    }
}
