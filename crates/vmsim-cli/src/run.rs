//! `vmsim run`: a trace or a built-in workload through the kernel and the MMU, and the
//! report of what happened. The flags that configure a run are shared with `sweep`.

use crate::args;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vmsim::hw::MachineSpec;
use vmsim::os::{Kernel, KernelConfig, Overcommit, ReclaimPolicy, Storage};
use vmsim::output::OutputFile;
use vmsim::run::{RunConfig, Workload};
use vmsim::sim::IntervalRow;
use vmsim::trace::synth::{SynthParams, WorkloadKind};
use vmsim::trace::{EventReader, Format};
use vmsim::user::alloc::AllocatorKind;
use vmsim::user::gc::CollectorKind;
use vmsim::user::workload::{AllocParams, AllocPattern, GcParams, GraphShape};
use vmsim::workload::ServerParams;

/// The machine of a run.
#[derive(Args, Debug, Clone)]
pub struct MachineArgs {
    /// Machine: a preset name (see `vmsim machines`) or a TOML file.
    #[arg(long, short, default_value = "x86-64")]
    pub machine: String,
    /// RAM size, overriding the machine's (4KiB, 2MiB, 1GiB; KB/MB/GB are powers of 1000).
    #[arg(long, value_parser = args::size)]
    pub ram: Option<u64>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OvercommitArg {
    /// Mode 0: refuse only absurd requests.
    Heuristic,
    /// Mode 1: never refuse.
    Always,
    /// Mode 2: strict accounting.
    Never,
}

/// The kernel's switches.
#[derive(Args, Debug, Clone)]
pub struct KernelArgs {
    /// Refuse writable-and-executable mappings (W^X).
    #[arg(long)]
    pub wx: bool,
    /// Allocate a frame on the first read of anonymous memory instead of mapping the
    /// shared zero page.
    #[arg(long)]
    pub no_zero_page: bool,
    /// Overcommit policy (vm.overcommit_memory 0, 1, 2).
    #[arg(long, value_enum, default_value_t = OvercommitArg::Heuristic)]
    pub overcommit: OvercommitArg,
    /// Swap size (0: none; else a whole number of pages), in a temporary file unless
    /// --swap-file names one.
    #[arg(long, default_value = "0", value_parser = args::size)]
    pub swap: u64,
    /// The swap file: a new path, or a swap file vmsim made before (any other existing
    /// file is refused unless --force).
    #[arg(long)]
    pub swap_file: Option<PathBuf>,
    /// Use --swap-file even if it exists and vmsim did not make it (its contents are
    /// lost).
    #[arg(long)]
    pub force: bool,
    /// Reclaim policy: fifo, clock, two-list.
    #[arg(long, default_value = "clock")]
    pub policy: String,
    /// Storage under swap and files: nvme, sata-ssd, hdd.
    #[arg(long, default_value = "nvme")]
    pub storage: String,
}

/// A synthetic workload's parameters.
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Number of accesses.
    #[arg(long, short = 'n', default_value = "1000000", value_parser = args::count)]
    pub accesses: u64,
    /// Seed of the access stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes of data the workload touches (seq, stride, uniform, zipf, hotcold,
    /// pointer-chase, hash, fork).
    #[arg(long, default_value = "16MiB", value_parser = args::nonzero_size)]
    pub footprint: u64,
    /// Stride in bytes (stride).
    #[arg(long, default_value = "4096", value_parser = args::nonzero_size)]
    pub stride: u64,
    /// Zipf exponent (zipf).
    #[arg(long, default_value = "0.9", value_parser = args::non_negative)]
    pub alpha: f64,
    /// Fraction of pages that are hot (hotcold).
    #[arg(long, default_value = "0.1", value_parser = args::rate)]
    pub hot_fraction: f64,
    /// Probability that an access goes to a hot page (hotcold).
    #[arg(long, default_value = "0.9", value_parser = args::fraction)]
    pub hot_probability: f64,
    /// Fraction of accesses that are stores.
    #[arg(long, default_value = "0.25", value_parser = args::fraction)]
    pub write_ratio: f64,
    /// Matrix order (matmul, matmul-blocked).
    #[arg(long, default_value = "256", value_parser = args::count)]
    pub matrix: u64,
    /// Tile size (matmul-blocked).
    #[arg(long, default_value = "32", value_parser = args::count)]
    pub block: u64,
    /// Recursion depth (recursion).
    #[arg(long, default_value = "1000", value_parser = args::count)]
    pub depth: u64,
    /// Bytes per stack frame (recursion).
    #[arg(long, default_value = "256", value_parser = args::nonzero_size)]
    pub frame: u64,
    /// Workers (fork, server; server default 4, 2 on small machines).
    #[arg(long, value_parser = args::count_u32)]
    pub workers: Option<u32>,
    /// Server workload: the shared cache's size (default: RAM / 32, at most 4 MiB on
    /// 4 KiB pages; rounded up to whole pages).
    #[arg(long, value_parser = args::nonzero_size)]
    pub cache: Option<u64>,
    /// Server workload: each worker's private buffer (default: RAM / 128, at most 64
    /// pages; rounded up to whole pages).
    #[arg(long, value_parser = args::nonzero_size)]
    pub buffer: Option<u64>,
    /// alloc: the allocator (first-fit, next-fit, best-fit, explicit-lifo,
    /// explicit-address, segregated, simple-segregated, buddy).
    #[arg(long, default_value = "segregated")]
    pub allocator: String,
    /// alloc: the allocation trace (random, phases, producer-consumer).
    #[arg(long, default_value = "random")]
    pub pattern: String,
    /// alloc: malloc and free operations.
    #[arg(long, default_value = "10000", value_parser = args::count)]
    pub ops: u64,
    /// alloc: the largest request (the smallest is 8 bytes).
    #[arg(long, default_value = "4096", value_parser = args::nonzero_size)]
    pub max_size: u64,
    /// alloc: most blocks live at once.
    #[arg(long, default_value = "1000", value_parser = args::count)]
    pub max_live: u64,
    /// gc: the collector (refcount, mark-sweep, mark-compact, copying, generational).
    #[arg(long, default_value = "mark-sweep")]
    pub collector: String,
    /// gc: the object graph (tree, list, random-graph).
    #[arg(long, default_value = "tree")]
    pub shape: String,
    /// gc: objects in the live structure.
    #[arg(long, default_value = "1000", value_parser = args::count)]
    pub objects: u64,
    /// gc: mutator steps after the structure is built.
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// gc: percentage of steps that change the structure.
    #[arg(long, default_value = "50", value_parser = args::percent)]
    pub churn: u64,
    /// gc: the collected heap's size.
    #[arg(long, default_value = "256KiB", value_parser = args::nonzero_size)]
    pub gc_heap: u64,
}

/// `vmsim run`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// A trace to replay (vmsim text or binary, lackey, ChampSim, plain R/W lines,
    /// oracleGeneral; compressed with gzip, xz or zstd or not). Without one, the
    /// workload runs.
    pub trace: Option<PathBuf>,
    /// The trace's format, when its name and contents do not tell: vmsim-text,
    /// vmsim-binary, lackey, champsim, plain, oracle-general.
    #[arg(long)]
    pub format: Option<String>,
    /// A built-in workload: server (the default), hw, alloc (a malloc allocator), gc
    /// (a garbage collector), or a synthetic one: seq, stride, uniform, zipf, hotcold,
    /// matmul, matmul-blocked, pointer-chase, hash, fork, recursion.
    #[arg(long, short)]
    pub workload: Option<String>,
    #[command(flatten)]
    pub machine: MachineArgs,
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub params: WorkloadArgs,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Take the counters every N accesses and write them as CSV (see --interval-file):
    /// traces and synthetic workloads.
    #[arg(long, value_parser = args::count)]
    pub interval: Option<u64>,
    /// Where --interval writes its CSV.
    #[arg(long, default_value = "vmsim-interval.csv")]
    pub interval_file: PathBuf,
    /// Replay a short trace (at most 10000 events) one access at a time and write an
    /// interactive page that steps through every translation: the address bits, the
    /// TLBs, the walk, the faults, the frames and the swap slots.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// Tell a short trace (at most 10 000 events) step by step as text: every event,
    /// every translation tried and what the kernel did about each fault.
    #[arg(long)]
    pub explain: bool,
}

/// The machine `name` (a preset or a file), with `ram` bytes of RAM if given (`--ram`).
pub fn load_machine(name: &str, ram: Option<u64>) -> Result<MachineSpec> {
    load_machine_as(name, ram, "--ram")
}

/// [`load_machine`], naming the RAM size `label` in errors (a flag or a file's key).
pub fn load_machine_as(name: &str, ram: Option<u64>, label: &str) -> Result<MachineSpec> {
    let spec = MachineSpec::load(name)?;
    match ram {
        None => Ok(spec),
        Some(bytes) => Ok(spec.with_ram(bytes, label)?),
    }
}

/// Checks a swap size against the page size: none, or whole pages.
pub fn check_swap(bytes: u64, page_size: u64, label: &str) -> Result<()> {
    if bytes % page_size != 0 {
        bail!(
            "{label}: {bytes} bytes is not a whole number of {} pages (0 for no swap)",
            vmsim::size::format_size(page_size)
        );
    }
    Ok(())
}

impl KernelArgs {
    /// The kernel configuration these flags describe, on a machine of `page_size`
    /// pages, for a command whose inputs are `inputs` (a swap file must be none of
    /// them).
    pub fn config(&self, page_size: u64, inputs: &[&Path]) -> Result<KernelConfig> {
        check_swap(self.swap, page_size, "--swap")?;
        if let Some(f) = &self.swap_file {
            if self.swap == 0 {
                bail!("--swap-file: {} is given but --swap is 0", f.display());
            }
            vmsim::output::check(f, inputs).context("--swap-file")?;
        } else if self.force {
            bail!("--force: it allows an existing --swap-file, and none is given");
        }
        let reclaim = ReclaimPolicy::parse(&self.policy).ok_or_else(|| {
            anyhow!(
                "--policy: unknown reclaim policy `{}` (fifo, clock, two-list)",
                self.policy
            )
        })?;
        let storage = Storage::parse(&self.storage).ok_or_else(|| {
            anyhow!(
                "--storage: unknown storage `{}` (nvme, sata-ssd, hdd)",
                self.storage
            )
        })?;
        Ok(KernelConfig {
            swap_bytes: self.swap,
            swap_path: self.swap_file.clone(),
            swap_force: self.force,
            reclaim,
            storage,
            wx: self.wx,
            zero_page: !self.no_zero_page,
            overcommit: match self.overcommit {
                OvercommitArg::Heuristic => Overcommit::Heuristic,
                OvercommitArg::Always => Overcommit::Always,
                OvercommitArg::Never => Overcommit::Never,
            },
            ..KernelConfig::default()
        })
    }
}

impl WorkloadArgs {
    /// The parameters of synthetic workload `kind`.
    pub fn synth(&self, kind: WorkloadKind) -> Result<SynthParams> {
        Ok(SynthParams {
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
            workers: self.workers.unwrap_or(4),
            seed: self.seed,
            ..SynthParams::new(kind)
        })
    }
}

/// The format named by `--format`, if any.
pub fn parse_format(f: Option<&str>) -> Result<Option<Format>> {
    f.map(|name| {
        Format::parse(name).ok_or_else(|| {
            anyhow!(
                "--format: unknown format `{name}` (vmsim-text, vmsim-binary, lackey, champsim, plain, oracle-general)"
            )
        })
    })
    .transpose()
}

/// A spinner on standard error for replays that take more than a second.
pub fn progress() -> impl FnMut(u64) {
    let started = Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |events: u64| {
        if bar.is_none() && started.elapsed().as_secs_f64() > 1.0 {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed} {human_pos} events ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_position(events);
        }
    }
}

impl RunArgs {
    /// The workload these flags name, on a machine of `page_size` pages.
    fn workload(&self, page_size: u64) -> Result<Workload> {
        let p = &self.params;
        Ok(match (&self.trace, self.workload.as_deref()) {
            (Some(_), Some(w)) => bail!("give a trace or --workload {w}, not both"),
            (Some(path), None) => Workload::Trace {
                path: path.clone(),
                format: parse_format(self.format.as_deref())?,
            },
            (None, None | Some("server")) => Workload::Server(ServerParams::from_bytes(
                p.cache,
                p.buffer,
                p.workers.map(u64::from),
                page_size,
            )?),
            (None, Some("hw")) => Workload::Hw,
            (None, Some("alloc")) => Workload::Alloc(AllocParams {
                allocator: AllocatorKind::from_name(&p.allocator).ok_or_else(|| {
                    anyhow!("--allocator: unknown allocator `{}` (first-fit, next-fit, best-fit, explicit-lifo, explicit-address, segregated, simple-segregated, buddy)", p.allocator)
                })?,
                pattern: AllocPattern::from_name(&p.pattern).ok_or_else(|| {
                    anyhow!("--pattern: unknown pattern `{}` (random, phases, producer-consumer)", p.pattern)
                })?,
                ops: p.ops,
                max_size: p.max_size,
                max_live: p.max_live,
                seed: p.seed,
                ..AllocParams::default()
            }),
            (None, Some("gc")) => {
                let defaults = GcParams::default();
                Workload::Gc(GcParams {
                    collector: CollectorKind::from_name(&p.collector).ok_or_else(|| {
                        anyhow!("--collector: unknown collector `{}` (refcount, mark-sweep, mark-compact, copying, generational)", p.collector)
                    })?,
                    shape: GraphShape::from_name(&p.shape).ok_or_else(|| {
                        anyhow!("--shape: unknown shape `{}` (tree, list, random-graph)", p.shape)
                    })?,
                    objects: p.objects,
                    steps: p.steps,
                    churn_percent: p.churn,
                    seed: p.seed,
                    config: vmsim::user::gc::GcConfig {
                        heap_bytes: p.gc_heap,
                        ..defaults.config
                    },
                    ..defaults
                })
            }
            (None, Some(w)) => {
                let kind = WorkloadKind::parse(w).ok_or_else(|| {
                    let names: Vec<&str> = WorkloadKind::ALL.iter().map(|(_, n)| *n).collect();
                    anyhow!(
                        "--workload: unknown workload `{w}` (server, hw, alloc, gc, {})",
                        names.join(", ")
                    )
                })?;
                Workload::Synth(p.synth(kind)?)
            }
        })
    }
}

pub fn run(a: RunArgs) -> Result<()> {
    if a.explain {
        return run_explained(&a);
    }
    if let Some(out) = &a.html {
        return run_html(&a, out);
    }
    let spec = load_machine(&a.machine.machine, a.machine.ram)?;
    let page_size = spec.paging.page_size();
    let workload = a.workload(page_size)?;
    let replayed = matches!(workload, Workload::Trace { .. } | Workload::Synth(_));
    if a.interval.is_some() && !replayed {
        let w = a.workload.as_deref().unwrap_or("server");
        bail!("--interval: the {w} workload has no time series; --interval takes a trace or a synthetic workload (seq, zipf, ...)");
    }
    let inputs: Vec<&Path> = a.trace.as_deref().into_iter().collect();
    let kernel = a.kernel.config(page_size, &inputs)?;
    // Opened before the run, so a bad path fails at once.
    let rows_out = match a.interval {
        Some(_) => Some(OutputFile::create(&a.interval_file, &inputs)?),
        None => None,
    };
    let config = RunConfig {
        spec,
        kernel,
        workload,
        accesses: a.params.accesses,
        seed: a.params.seed,
        interval: a.interval.unwrap_or(0),
    };
    let report = vmsim::run::execute(config, &mut progress())?;
    if let Some(out) = rows_out {
        let n = report.rows.len();
        write_rows(out, &report.rows)?;
        eprintln!("{n} interval rows written to {}", a.interval_file.display());
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        out!("{}", report.text);
    }
    Ok(())
}

/// The short trace that `--html` or `--explain` (`flag`) tells step by step, read whole,
/// with the kernel booted to replay it.
fn short_trace(a: &RunArgs, flag: &str) -> Result<(Kernel, Vec<vmsim::trace::Event>)> {
    let max = vmsim::viz::MAX_TRACE_EVENTS;
    let Some(path) = &a.trace else {
        bail!("{flag} needs a trace to replay (a short one: at most {max} events)");
    };
    if a.workload.is_some() || a.json || a.interval.is_some() || (a.explain && a.html.is_some()) {
        bail!("{flag} takes a trace only, without --workload, --json, --interval or the other of --html and --explain");
    }
    let spec = load_machine(&a.machine.machine, a.machine.ram)?;
    let config = a.kernel.config(spec.paging.page_size(), &[path])?;
    let k = Kernel::try_boot(spec, config)?;
    let format = parse_format(a.format.as_deref())?;
    let mut reader = EventReader::open(path, format, k.page_size())?;
    let events = vmsim::viz::record::read_events(&mut reader)
        .with_context(|| format!("{}", path.display()))?;
    if events.len() > max {
        bail!(
            "{}: {} events; {flag} tells at most {max}",
            path.display(),
            events.len()
        );
    }
    Ok((k, events))
}

/// `vmsim run --html OUT TRACE`: the trace replayed on the explained path, as a page.
fn run_html(a: &RunArgs, out: &Path) -> Result<()> {
    let inputs: Vec<&Path> = a.trace.as_deref().into_iter().collect();
    let out = OutputFile::create(out, &inputs)?;
    let (mut k, events) = short_trace(a, "--html")?;
    let title = format!(
        "vmsim run {}",
        a.trace.as_deref().unwrap_or(Path::new("")).display()
    );
    let w = vmsim::viz::record_trace(&mut k, &events, &title)?;
    write_page(out, &w)
}

/// `vmsim run --explain TRACE`: the trace told event by event as text.
fn run_explained(a: &RunArgs) -> Result<()> {
    let (mut k, events) = short_trace(a, "--explain")?;
    out!("{}", vmsim::explain::trace_text(&mut k, &events));
    Ok(())
}

/// Writes a walk-through's page to `out` (opened before the work) and says where it
/// went.
pub fn write_page(out: OutputFile, w: &vmsim::viz::Walkthrough) -> Result<()> {
    let page = vmsim::viz::html::page(w)?;
    let mut out = out;
    out.write_all(page.as_bytes())
        .with_context(|| format!("writing {}", out.path().display()))?;
    let out_path = out.path().to_path_buf();
    out.commit()?;
    let out = out_path;
    outln!(
        "wrote {} ({} steps on {}): open it in a browser",
        out.display(),
        w.steps.len(),
        w.machine
    );
    Ok(())
}

fn write_rows(mut w: OutputFile, rows: &[IntervalRow]) -> Result<()> {
    let path = w.path().display().to_string();
    (|| -> std::io::Result<()> {
        writeln!(w, "{}", IntervalRow::CSV_HEADER)?;
        for r in rows {
            writeln!(w, "{}", r.to_csv())?;
        }
        Ok(())
    })()
    .with_context(|| path.clone())?;
    w.commit()?;
    Ok(())
}
