//! A run, resolved once: a machine, a kernel configuration and what runs on them (a
//! trace, a synthetic workload, the forking server, the hardware-only demo, an
//! allocator or a collector), and the report of what happened as JSON and as text.
//! `vmsim run` and `vmsim sweep` are this module's callers.
//!
//! [`RunOptions`] holds a run as a command line names it (machines, policies and
//! workloads by name, sizes as numbers) and [`RunOptions::resolve`] checks it into a
//! [`RunConfig`]; every error names the flag the value came from.

use crate::hw::{MachineError, MachineSpec};
use crate::os::{
    BootError, Errno, Kernel, KernelConfig, Overcommit, Program, ReclaimPolicy, Storage,
};
use crate::output::OutputError;
use crate::report::{HwStats, KernelStats, RunSummary};
use crate::sim::{IntervalRow, Sim, SimStats};
use crate::trace::synth::{Generator, SynthError, SynthParams, WorkloadKind};
use crate::trace::{Event, EventReader, Format, TraceError};
use crate::user::alloc::AllocatorKind;
use crate::user::gc::{CollectorKind, GcConfig};
use crate::user::workload::{AllocParams, AllocPattern, GcParams, GraphShape, WorkloadError};
use crate::viz::RecordError;
use crate::workload::{try_run_server_with, ServerError, ServerParams};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The machine did not boot.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A synthetic workload's parameters do not fit.
    #[error(transparent)]
    Synth(#[from] SynthError),
    /// The server's parameters do not fit.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// An allocator's or collector's parameters do not fit.
    #[error(transparent)]
    User(#[from] WorkloadError),
    /// The demo address space could not be built.
    #[error("building the demo address space: {0}")]
    Demo(crate::hw::MapError),
    /// [`replay`] was given a workload that is not a trace or a synthetic workload.
    #[error("only a trace or a synthetic workload is replayed event by event")]
    NotReplayed,
    /// The first process could not start.
    #[error("starting the process: {0}")]
    Spawn(Errno),
    /// The machine cannot be loaded or given the RAM asked for.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// A flag's value does not fit.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A value given by name (see [`RunOptions::set`]) does not fit: the name, the
    /// value and why, as [`crate::options::refused`] words it.
    #[error("{0}")]
    Refused(String),
    /// An option named by a front end (see [`RunOptions::set`]) is not one of a run's.
    #[error("unknown option `{name}` ({names})")]
    UnknownOption {
        /// The name as given.
        name: String,
        /// The names a run takes.
        names: String,
    },
    /// The trace and the workload were both given.
    #[error("give a trace or --workload {0}, not both")]
    TraceAndWorkload(String),
    /// The swap file cannot be written.
    #[error("--swap-file: {0}")]
    SwapFile(#[source] OutputError),
    /// The swap file failed during the run.
    #[error(transparent)]
    Swap(#[from] crate::os::swap::SwapFileError),
    /// A short trace told step by step could not be read.
    #[error("{path}")]
    ShortTrace {
        /// The trace.
        path: String,
        /// Why.
        source: RecordError,
    },
}

fn flag(flag: &'static str, reason: impl Into<String>) -> RunError {
    RunError::Flag {
        flag,
        reason: reason.into(),
    }
}

/// "unknown `what` `value` (the names it takes)": the one wording of every refused
/// name, its list read from the kind's own list of names.
fn unknown<'a>(what: &str, value: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let names = names.into_iter().collect::<Vec<_>>().join(", ");
    format!("unknown {what} `{value}` ({names})")
}

/// The reclaim policy `name`, or why not.
pub fn reclaim_policy(name: &str) -> Result<ReclaimPolicy, String> {
    ReclaimPolicy::parse(name).ok_or_else(|| {
        unknown(
            "reclaim policy",
            name,
            ReclaimPolicy::ALL.map(ReclaimPolicy::name),
        )
    })
}

/// The storage `name` (a preset, or `LATENCY,BANDWIDTH`), or why not.
pub fn storage(name: &str) -> Result<Storage, String> {
    Storage::parse_spec(name)
}

/// The trace format named by `--format`, if any.
pub fn format_named(name: Option<&str>) -> Result<Option<Format>, RunError> {
    name.map(|name| {
        Format::parse(name).ok_or_else(|| {
            flag(
                "--format",
                unknown("format", name, Format::ALL.map(Format::name)),
            )
        })
    })
    .transpose()
}

/// The machine `name` (a preset or a file), with `ram` bytes of RAM if given (`--ram`).
pub fn load_machine(
    name: &str,
    ram: Option<u64>,
    cpus: Option<u32>,
) -> Result<MachineSpec, MachineError> {
    let mut spec = MachineSpec::load(name)?;
    if let Some(bytes) = ram {
        spec = spec.with_ram(bytes, "--ram")?;
    }
    if let Some(n) = cpus {
        spec = spec.with_cpus(n, "--cpus")?;
    }
    Ok(spec)
}

/// The kernel's switches as flags give them (`Default`: the flags' defaults, see
/// [`crate::options`]).
#[derive(Clone, Debug)]
pub struct KernelOptions {
    /// Refuse writable-and-executable mappings (`--wx`).
    pub wx: bool,
    /// Map the shared zero page on the first read of anonymous memory.
    pub zero_page: bool,
    /// The overcommit policy.
    pub overcommit: Overcommit,
    /// Swap bytes (`--swap`: none, or whole pages).
    pub swap: u64,
    /// The swap file (`--swap-file`).
    pub swap_file: Option<PathBuf>,
    /// Use the swap file even if vmsim did not make it (`--force`).
    pub force: bool,
    /// The reclaim policy's name (`--policy`).
    pub reclaim: String,
    /// The storage's name (`--storage`).
    pub storage: String,
    /// The workload's memory limit in bytes (`--memory-max`).
    pub memory_max: Option<u64>,
    /// Most bytes file readahead reads at once for every file (`--readahead`; 0:
    /// none); `None`: each file's device readahead where the trace recorded it, else
    /// Linux's default of 128 KiB.
    pub readahead: Option<u64>,
    /// Every file starts cached (`--page-cache warm`).
    pub page_cache_warm: bool,
    /// Replay a trace's `fs-metadata` events (off with `--no-fs-metadata`).
    pub fs_metadata: bool,
    /// Charge processes' kernel objects to their group (off with `--no-kmem`).
    pub kmem: bool,
    /// When anonymous memory gets transparent huge pages (`--thp`).
    pub thp: crate::os::thp::ThpMode,
    /// Whether huge-page faults may reclaim (`--thp-defrag`).
    pub thp_defrag: crate::os::thp::ThpDefrag,
    /// Which slots a swap fault reads ahead (`--swap-readahead`).
    pub swap_readahead: crate::os::swap::SwapReadahead,
    /// The order threads' accesses are replayed in (`--thread-order`).
    pub thread_order: crate::interleave::ThreadOrder,
    /// Milliseconds between flushes of memory groups' statistics, which two-list
    /// reclaim reads as last flushed; 0: as they are (`--stats-flush-ms`).
    pub stats_flush_ms: u64,
    /// Milliseconds of the run's clock before the first of those flushes; `None`: half
    /// a period (`--stats-flush-phase-ms`).
    pub stats_flush_phase_ms: Option<u64>,
    /// khugepaged's settings (`--khugepaged`).
    pub khugepaged: crate::os::khugepaged::KhugepagedConfig,
    /// hugetlb pools: (page size in bytes, pages) pairs (`--hugepages`).
    pub hugepages: Vec<(u64, u64)>,
}

/// Linux's default readahead (`VM_READAHEAD_PAGES`, 128 KiB), for files whose
/// device's is not known.
pub const DEFAULT_READAHEAD: u64 = 128 << 10;

impl KernelOptions {
    /// The kernel configuration, on a machine of `page_size` pages, for a command whose
    /// inputs are `inputs` (a swap file must be none of them).
    pub fn config(&self, page_size: u64, inputs: &[&Path]) -> Result<KernelConfig, RunError> {
        if self.swap % page_size != 0 {
            return Err(flag(
                "--swap",
                format!(
                    "{} bytes is not a whole number of {} pages (0 for no swap)",
                    self.swap,
                    crate::size::format_size(page_size)
                ),
            ));
        }
        if let Some(f) = &self.swap_file {
            if self.swap == 0 {
                return Err(flag(
                    "--swap-file",
                    format!("{} is given but --swap is 0", f.display()),
                ));
            }
            crate::output::check(f, inputs).map_err(RunError::SwapFile)?;
        } else if self.force {
            return Err(flag(
                "--force",
                "it allows an existing --swap-file, and none is given",
            ));
        }
        if let Some(max) = self.memory_max {
            if max < page_size {
                return Err(flag(
                    "--memory-max",
                    format!(
                        "{max} bytes is less than one {} page",
                        crate::size::format_size(page_size)
                    ),
                ));
            }
        }
        if let Some(ra) = self.readahead.filter(|ra| ra % page_size != 0) {
            return Err(flag(
                "--readahead",
                format!(
                    "{ra} bytes is not a whole number of {} pages (0 for none)",
                    crate::size::format_size(page_size)
                ),
            ));
        }
        Ok(KernelConfig {
            memory_max: self.memory_max,
            readahead_pages: self.readahead.unwrap_or(DEFAULT_READAHEAD) / page_size,
            readahead_fixed: self.readahead.is_some(),
            // Traces and the synthetic workloads give addresses, not the bytes
            // stored.
            store_values: false,
            page_cache_warm: self.page_cache_warm,
            fs_metadata: self.fs_metadata,
            kmem: self.kmem,
            thp: self.thp,
            thp_defrag: self.thp_defrag,
            swap_readahead_by: self.swap_readahead,
            thread_order: self.thread_order,
            stats_flush_ns: self.stats_flush_ms.saturating_mul(1_000_000),
            stats_flush_phase_ns: self
                .stats_flush_phase_ms
                .map(|ms| ms.saturating_mul(1_000_000)),
            khugepaged: self.khugepaged,
            hugepages: self.hugepages.clone(),
            swap_bytes: self.swap,
            swap_path: self.swap_file.clone(),
            swap_force: self.force,
            reclaim: reclaim_policy(&self.reclaim).map_err(|r| flag("--policy", r))?,
            storage: storage(&self.storage).map_err(|r| flag("--storage", r))?,
            wx: self.wx,
            zero_page: self.zero_page,
            overcommit: self.overcommit,
            ..KernelConfig::default()
        })
    }
}

/// The built-in workloads' parameters as flags give them (`Default`: the flags'
/// defaults, see [`crate::options`]).
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    /// Accesses.
    pub accesses: u64,
    /// The seed.
    pub seed: u64,
    /// Bytes of data the synthetic workload touches.
    pub footprint: u64,
    /// Stride in bytes (stride).
    pub stride: u64,
    /// Zipf exponent (zipf).
    pub alpha: f64,
    /// Fraction of pages that are hot (hotcold).
    pub hot_fraction: f64,
    /// Probability that an access goes to a hot page (hotcold).
    pub hot_probability: f64,
    /// Fraction of accesses that are stores.
    pub write_ratio: f64,
    /// Matrix order (matmul, matmul-blocked).
    pub matrix: u64,
    /// Tile size (matmul-blocked).
    pub block: u64,
    /// Recursion depth (recursion).
    pub depth: u64,
    /// Bytes per stack frame (recursion).
    pub frame: u64,
    /// Workers (fork, server) or threads (threads, unmap).
    pub workers: Option<u32>,
    /// Accesses per turn when processes or threads take turns (fork, threads, unmap,
    /// prodcons).
    pub quantum: u64,
    /// The server's shared cache in bytes.
    pub cache: Option<u64>,
    /// Each server worker's private buffer in bytes.
    pub buffer: Option<u64>,
    /// alloc: the allocator's name.
    pub allocator: String,
    /// alloc: the allocation trace's name.
    pub pattern: String,
    /// alloc: malloc and free operations.
    pub ops: u64,
    /// alloc: the largest request.
    pub max_size: u64,
    /// alloc: most blocks live at once.
    pub max_live: u64,
    /// gc: the collector's name.
    pub collector: String,
    /// gc: the object graph's name.
    pub shape: String,
    /// gc: objects in the live structure.
    pub objects: u64,
    /// gc: mutator steps.
    pub steps: u64,
    /// gc: percentage of steps that change the structure.
    pub churn: u64,
    /// gc: the collected heap's size.
    pub gc_heap: u64,
}

impl WorkloadOptions {
    /// The parameters of synthetic workload `kind` (4 workers unless given).
    pub fn synth(&self, kind: WorkloadKind) -> SynthParams {
        SynthParams {
            accesses: self.accesses,
            footprint: self.footprint,
            stride: self.stride,
            alpha: self.alpha,
            hot_fraction: self.hot_fraction,
            hot_probability: self.hot_probability,
            write_ratio: self.write_ratio,
            matrix: self.matrix,
            block: self.block,
            depth: self.depth,
            frame: self.frame,
            workers: self
                .workers
                .unwrap_or(if kind == WorkloadKind::Unmap { 2 } else { 4 }),
            quantum: self.quantum,
            seed: self.seed,
            ..SynthParams::new(kind)
        }
    }

    /// The built-in workload `name` (`None`: the server) on a machine of `page_size`
    /// pages.
    pub fn workload(&self, name: Option<&str>, page_size: u64) -> Result<Workload, RunError> {
        Ok(match name {
            None | Some("server") => Workload::Server(ServerParams::from_bytes(
                self.cache,
                self.buffer,
                self.workers.map(u64::from),
                page_size,
            )?),
            Some("hw") => Workload::Hw,
            Some("alloc") => Workload::Alloc(self.alloc()?),
            Some("gc") => Workload::Gc(self.gc()?),
            Some(w) => {
                let kind = WorkloadKind::parse(w).ok_or_else(|| {
                    let synth = WorkloadKind::ALL.iter().map(|(_, n)| *n);
                    let names = ["server", "hw", "alloc", "gc"].into_iter().chain(synth);
                    flag("--workload", unknown("workload", w, names))
                })?;
                Workload::Synth(self.synth(kind))
            }
        })
    }

    fn alloc(&self) -> Result<AllocParams, RunError> {
        let (a, p) = (&self.allocator, &self.pattern);
        let allocator = AllocatorKind::from_name(a).ok_or_else(|| {
            let names = AllocatorKind::ALL.map(AllocatorKind::name);
            flag("--allocator", unknown("allocator", a, names))
        })?;
        let pattern = AllocPattern::from_name(p).ok_or_else(|| {
            flag(
                "--pattern",
                unknown("pattern", p, AllocPattern::ALL.map(AllocPattern::name)),
            )
        })?;
        Ok(AllocParams {
            allocator,
            pattern,
            ops: self.ops,
            max_size: self.max_size,
            max_live: self.max_live,
            seed: self.seed,
            ..AllocParams::default()
        })
    }

    fn gc(&self) -> Result<GcParams, RunError> {
        let (c, g) = (&self.collector, &self.shape);
        let collector = CollectorKind::from_name(c).ok_or_else(|| {
            let names = CollectorKind::ALL.map(CollectorKind::name);
            flag("--collector", unknown("collector", c, names))
        })?;
        let shape = GraphShape::from_name(g).ok_or_else(|| {
            flag(
                "--shape",
                unknown("shape", g, GraphShape::ALL.map(GraphShape::name)),
            )
        })?;
        let defaults = GcParams::default();
        Ok(GcParams {
            collector,
            shape,
            objects: self.objects,
            steps: self.steps,
            churn_percent: self.churn,
            seed: self.seed,
            config: GcConfig {
                heap_bytes: self.gc_heap,
                ..defaults.config
            },
            ..defaults
        })
    }
}

/// A run as a command line names it (`vmsim run`'s flags; `Default`: no flag given,
/// and [`RunOptions::set`] sets one by name, see [`crate::options`]).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// A trace to replay.
    pub trace: Option<PathBuf>,
    /// The trace's format's name, when its name and contents do not tell.
    pub format: Option<String>,
    /// A built-in workload's name (`None`: the server, or the trace).
    pub workload: Option<String>,
    /// The machine: a preset's name or a TOML file.
    pub machine: String,
    /// RAM bytes, overriding the machine's.
    pub ram: Option<u64>,
    /// CPUs, overriding the machine's.
    pub cpus: Option<u32>,
    /// The kernel's switches.
    pub kernel: KernelOptions,
    /// The workloads' parameters.
    pub params: WorkloadOptions,
    /// Take the counters every this many accesses.
    pub interval: Option<u64>,
}

impl RunOptions {
    /// The inputs a run reads: its trace, if any.
    pub fn inputs(&self) -> Vec<&Path> {
        self.trace.as_deref().into_iter().collect()
    }

    /// The run these options describe, every name and size checked.
    pub fn resolve(&self) -> Result<RunConfig, RunError> {
        let spec = load_machine(&self.machine, self.ram, self.cpus)?;
        let page_size = spec.paging.page_size();
        let workload = match (&self.trace, self.workload.as_deref()) {
            (Some(_), Some(w)) => return Err(RunError::TraceAndWorkload(w.into())),
            (Some(path), None) => Workload::Trace {
                path: path.clone(),
                format: format_named(self.format.as_deref())?,
            },
            (None, w) => self.params.workload(w, page_size)?,
        };
        let replayed = matches!(workload, Workload::Trace { .. } | Workload::Synth(_));
        if self.interval.is_some() && !replayed {
            let w = self.workload.as_deref().unwrap_or("server");
            return Err(flag("--interval", format!("the {w} workload has no time series; --interval takes a trace or a synthetic workload (seq, zipf, ...)")));
        }
        Ok(RunConfig {
            kernel: self.kernel.config(page_size, &self.inputs())?,
            spec,
            workload,
            accesses: self.params.accesses,
            seed: self.params.seed,
            interval: self.interval.unwrap_or(0),
        })
    }

    /// The trace `path`, read whole to be told step by step (at most
    /// [`crate::viz::MAX_TRACE_EVENTS`] events), with the kernel booted to replay it.
    pub fn short_trace(&self, path: &Path) -> Result<(Kernel, Vec<Event>), RunError> {
        let spec = load_machine(&self.machine, self.ram, self.cpus)?;
        let config = self.kernel.config(spec.paging.page_size(), &[path])?;
        let k = Kernel::try_boot(spec, config)?;
        let format = format_named(self.format.as_deref())?;
        let mut reader = EventReader::open(path, format, k.page_size())?;
        let events = crate::viz::record::read_events(&mut reader).map_err(|source| {
            RunError::ShortTrace {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok((k, events))
    }
}

/// The interval rows as CSV, under their header.
pub fn interval_csv(rows: &[IntervalRow]) -> String {
    let mut t = format!("{}\n", IntervalRow::CSV_HEADER);
    for r in rows {
        t += &r.to_csv();
        t.push('\n');
    }
    t
}

/// What runs.
#[derive(Clone, Debug)]
pub enum Workload {
    /// A trace file, in `format` (`None`: told by its name and contents).
    Trace {
        /// The file.
        path: PathBuf,
        /// Its format.
        format: Option<Format>,
    },
    /// A synthetic workload.
    Synth(SynthParams),
    /// The forking server (`accesses` worker accesses).
    Server(ServerParams),
    /// The hardware-only demo (`accesses` accesses over a fixed address space).
    Hw,
    /// A malloc allocator inside a simulated process.
    Alloc(AllocParams),
    /// A garbage collector inside a simulated process.
    Gc(GcParams),
}

/// A run, resolved from flags, files and presets.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The machine.
    pub spec: MachineSpec,
    /// The kernel's configuration.
    pub kernel: KernelConfig,
    /// What runs.
    pub workload: Workload,
    /// Accesses (server and hw; the other workloads carry their own).
    pub accesses: u64,
    /// The seed (server, hw; reported for alloc and gc).
    pub seed: u64,
    /// Take the counters every `interval` accesses (0: never; traces and synthetic
    /// workloads).
    pub interval: u64,
}

/// What a run reports.
#[derive(Clone, Debug)]
pub struct Report {
    /// The report as one JSON object (`vmsim run --json`).
    pub json: Value,
    /// The report as text (`vmsim run`).
    pub text: String,
    /// The counters every `interval` accesses.
    pub rows: Vec<IntervalRow>,
}

/// What a replay produced.
pub struct Replay {
    /// The kernel after the run.
    pub kernel: Kernel,
    /// The replay's own counters.
    pub stats: SimStats,
    /// The counters every `interval` accesses.
    pub rows: Vec<IntervalRow>,
    /// What ran: the trace's path or the workload's name.
    pub source: String,
}

/// Boots `spec` with `config` and replays a trace or a synthetic workload through it,
/// calling `progress` with the events so far after each batch.
pub fn replay(
    spec: MachineSpec,
    config: KernelConfig,
    workload: &Workload,
    interval: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Replay, RunError> {
    let mut k = Kernel::try_boot(spec, config)?;
    let (mut reader, name) = match workload {
        Workload::Trace { path, format } => (
            EventReader::open(path, *format, k.page_size())?,
            path.display().to_string(),
        ),
        Workload::Synth(p) => (
            EventReader::Synth(Box::new(Generator::for_kernel(*p, &k)?)),
            p.kind.name().to_string(),
        ),
        _ => return Err(RunError::NotReplayed),
    };
    let (stats, rows) = {
        let mut sim = Sim::new(&mut k, interval);
        sim.run(&mut reader, progress)?;
        (sim.stats.clone(), std::mem::take(&mut sim.rows))
    };
    if let Some(e) = k.take_swap_failure() {
        return Err(e.into());
    }
    Ok(Replay {
        kernel: k,
        stats,
        rows,
        source: name,
    })
}

/// Adds `fields` to the JSON object `v`.
fn with(mut v: Value, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    if let Some(o) = v.as_object_mut() {
        for (k, x) in fields {
            o.insert(k.into(), x);
        }
    }
    v
}

fn json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("reports serialise")
}

/// Runs `c`, calling `progress` with the events replayed so far (traces and synthetic
/// workloads).
pub fn execute(c: RunConfig, progress: &mut dyn FnMut(u64)) -> Result<Report, RunError> {
    let machine = c.spec.name.clone();
    let summary_line = c.spec.summary();
    match &c.workload {
        Workload::Trace { .. } | Workload::Synth(_) => {
            let (kind, seed) = match &c.workload {
                Workload::Synth(p) => ("workload", Some(p.seed)),
                _ => ("trace", None),
            };
            let r = replay(c.spec, c.kernel, &c.workload, c.interval, progress)?;
            let k = &r.kernel;
            let summary = RunSummary::from_kernel(k, r.stats.accesses);
            let hw = HwStats::from_machine(k.machine());
            let kernel = KernelStats::from_kernel(k);
            let mut fields = vec![
                ("machine", machine.clone().into()),
                (kind, r.source.clone().into()),
                ("replay", json(&r.stats)),
                ("hardware", json(&hw)),
                ("kernel", json(&kernel)),
            ];
            if let Some(s) = seed {
                fields.push(("seed", s.into()));
            }
            let mut text = format!("machine {machine}: {summary_line}\n{kind}: {}\n", r.source);
            text += &replay_text(&r.stats);
            text += &format!("\n{}\n{}", hw.to_text(), kernel.to_text());
            Ok(Report {
                json: with(json(&summary), fields),
                text,
                rows: r.rows,
            })
        }
        Workload::Server(params) => {
            let mut k = Kernel::try_boot(c.spec, c.kernel)?;
            let layout = try_run_server_with(&mut k, c.accesses, c.seed, *params)?;
            if let Some(e) = k.take_swap_failure() {
                return Err(e.into());
            }
            let hw = HwStats::from_machine(k.machine());
            let kernel = KernelStats::from_kernel(&k);
            let head = RunSummary::from_kernel(&k, hw.accesses);
            let json = with(
                json(&head),
                [
                    ("machine", machine.clone().into()),
                    ("workload", "server".into()),
                    ("seed", c.seed.into()),
                    ("workers", layout.workers.len().into()),
                    ("boot", json(&k.boot_log())),
                    ("hardware", json(&hw)),
                    ("kernel", json(&kernel)),
                ],
            );
            let mut text = format!(
                "machine {machine}: {summary_line}\nworkload: server with {} workers ({} shared cache pages, {} buffer pages each), {} worker accesses, seed {}\n\nboot\n",
                layout.workers.len(),
                layout.cache_pages,
                layout.buffer_pages,
                c.accesses,
                c.seed
            );
            for line in k.boot_log() {
                let _ = writeln!(text, "  {line}");
            }
            text += &format!("\n{}\n{}", hw.to_text(), kernel.to_text());
            Ok(Report {
                json,
                text,
                rows: Vec::new(),
            })
        }
        Workload::Hw => {
            let mut demo = crate::demo::Demo::new(c.spec).map_err(RunError::Demo)?;
            demo.run(c.accesses, c.seed);
            let stats = HwStats::from_mmu(&demo.machine.mmu);
            let json = serde_json::json!({
                "machine": machine,
                "workload": "hw",
                "seed": c.seed,
                "hardware": stats,
            });
            let mut text = format!(
                "machine {machine}: {summary_line}\nworkload: hw (fixed address space), {} accesses, seed {}\n",
                c.accesses, c.seed
            );
            for r in &demo.regions {
                let _ = writeln!(
                    text,
                    "  region {:<6} {:#x}..{:#x} ({} pages of {}) [{}]",
                    r.name,
                    r.start.0,
                    r.start.0 + r.len,
                    r.len / r.page_size,
                    crate::size::format_size(r.page_size),
                    r.flags
                );
            }
            text += &format!("\n{}", stats.to_text());
            Ok(Report {
                json,
                text,
                rows: Vec::new(),
            })
        }
        Workload::Alloc(_) | Workload::Gc(_) => {
            let alloc = matches!(c.workload, Workload::Alloc(_));
            let name = if alloc { "alloc" } else { "gc" };
            let mut k = Kernel::try_boot(c.spec, c.kernel)?;
            let prog = Program::small(name, k.page_size());
            let pid = k.spawn(&prog).map_err(RunError::Spawn)?;
            let (report, rendered) = match &c.workload {
                Workload::Alloc(p) => {
                    let r = crate::user::workload::run_alloc(&mut k, pid, p)?;
                    (json(&r), r.render())
                }
                Workload::Gc(p) => {
                    let r = crate::user::workload::run_gc(&mut k, pid, p)?;
                    (json(&r), r.render())
                }
                _ => unreachable!(),
            };
            if let Some(e) = k.take_swap_failure() {
                return Err(e.into());
            }
            // The headline counters every run reports, beside the allocator's or
            // collector's.
            let hw = HwStats::from_machine(k.machine());
            let mut v = report;
            if let (Some(o), Value::Object(h)) = (
                v.as_object_mut(),
                json(&RunSummary::from_kernel(&k, hw.accesses)),
            ) {
                for (key, value) in h {
                    o.entry(key).or_insert(value);
                }
            }
            Ok(Report {
                json: with(
                    v,
                    [
                        ("machine", machine.clone().into()),
                        ("workload", name.into()),
                        ("seed", c.seed.into()),
                    ],
                ),
                text: format!("machine {machine}\n{rendered}\n"),
                rows: Vec::new(),
            })
        }
    }
}

/// The replay's own counters as text.
pub fn replay_text(s: &SimStats) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "replay: {} events, {} accesses ({} translations), {} OS events",
        s.events, s.accesses, s.translations, s.os_events
    );
    if s.threads > s.processes {
        let _ = writeln!(t, "  {} processes, {} threads", s.processes, s.threads);
    }
    if s.other_syscalls > 0 {
        let _ = writeln!(
            t,
            "  {} calls counted only (syscall, madvise advice not modelled)",
            s.other_syscalls
        );
    }
    if s.inferred_regions > 0 {
        let _ = writeln!(
            t,
            "  {} regions inferred ({})",
            s.inferred_regions,
            crate::size::format_size(s.inferred_bytes)
        );
    }
    if s.skipped_accesses > 0 {
        let _ = writeln!(
            t,
            "  {} accesses skipped (process gone, or an address no user mapping can hold)",
            s.skipped_accesses
        );
    }
    if s.signalled_accesses > 0 {
        let _ = writeln!(t, "  {} accesses got a signal", s.signalled_accesses);
    }
    if s.failed_events > 0 {
        let _ = writeln!(t, "  {} OS events refused:", s.failed_events);
        for f in &s.failures {
            let _ = writeln!(t, "    {f}");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_refuses_a_workload_it_cannot_replay() {
        let spec = MachineSpec::preset("x86-64").unwrap();
        let r = replay(spec, KernelConfig::default(), &Workload::Hw, 0, &mut |_| {});
        assert!(matches!(r, Err(RunError::NotReplayed)));
    }
}
