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
use vmsim::report::{HwStats, KernelStats, RunSummary};
use vmsim::sim::{IntervalRow, Sim, SimStats};
use vmsim::trace::synth::{Generator, SynthParams, WorkloadKind};
use vmsim::trace::{EventReader, Format};
use vmsim::workload::{try_run_server_with, ServerParams};

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

/// What a replay produced.
pub struct Replay {
    pub kernel: Kernel,
    pub stats: SimStats,
    pub rows: Vec<IntervalRow>,
    pub source: String,
}

/// A source of events for a replay.
pub enum Source<'a> {
    Trace(&'a Path, Option<Format>),
    Synth(SynthParams),
}

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

/// Boots `spec` with `config` and replays `source` through it.
pub fn replay(
    spec: MachineSpec,
    config: KernelConfig,
    source: &Source,
    interval: u64,
    progress: bool,
) -> Result<Replay> {
    let mut k = Kernel::try_boot(spec, config)?;
    let (mut reader, name) = match source {
        Source::Trace(path, format) => (
            EventReader::open(path, *format, k.page_size())?,
            path.display().to_string(),
        ),
        Source::Synth(p) => (
            EventReader::Synth(Box::new(Generator::for_kernel(*p, &k)?)),
            p.kind.name().to_string(),
        ),
    };
    let started = Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut tick = |events: u64| {
        if !progress {
            return;
        }
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
    };
    let (stats, rows) = {
        let mut sim = Sim::new(&mut k, interval);
        sim.run(&mut reader, &mut tick)?;
        (sim.stats.clone(), std::mem::take(&mut sim.rows))
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(Replay {
        kernel: k,
        stats,
        rows,
        source: name,
    })
}

pub fn run(a: RunArgs) -> Result<()> {
    if a.explain {
        return run_explained(&a);
    }
    if let Some(out) = &a.html {
        return run_html(&a, out);
    }
    let workload = a.workload.clone();
    let w = workload.as_deref().unwrap_or("server");
    if a.interval.is_some() && a.trace.is_none() && matches!(w, "server" | "hw" | "alloc" | "gc") {
        bail!("--interval: the {w} workload has no time series; --interval takes a trace or a synthetic workload (seq, zipf, ...)");
    }
    match (&a.trace, workload.as_deref()) {
        (Some(_), Some(w)) => bail!("give a trace or --workload {w}, not both"),
        (None, None | Some("server")) => return run_server(&a),
        (None, Some("hw")) => return run_hw(&a),
        (None, Some("alloc")) => return run_user(&a, true),
        (None, Some("gc")) => return run_user(&a, false),
        _ => {}
    }
    let spec = load_machine(&a.machine.machine, a.machine.ram)?;
    let machine = spec.name.clone();
    let summary_line = spec.summary();
    let inputs: Vec<&Path> = a.trace.as_deref().into_iter().collect();
    let config = a.kernel.config(spec.paging.page_size(), &inputs)?;
    let source = match (&a.trace, workload.as_deref()) {
        (Some(path), _) => Source::Trace(path, parse_format(a.format.as_deref())?),
        (None, Some(w)) => {
            let kind = WorkloadKind::parse(w).ok_or_else(|| {
                let names: Vec<&str> = WorkloadKind::ALL.iter().map(|(_, n)| *n).collect();
                anyhow!(
                    "--workload: unknown workload `{w}` (server, hw, alloc, gc, {})",
                    names.join(", ")
                )
            })?;
            Source::Synth(a.params.synth(kind)?)
        }
        (None, None) => unreachable!("handled above"),
    };
    let interval = a.interval.unwrap_or(0);
    // Opened before the run, so a bad path fails at once.
    let rows_out = match a.interval {
        Some(_) => Some(OutputFile::create(&a.interval_file, &inputs)?),
        None => None,
    };
    let r = replay(spec, config, &source, interval, true)?;
    if let Some(out) = rows_out {
        write_rows(out, &r.rows)?;
        eprintln!(
            "{} interval rows written to {}",
            r.rows.len(),
            a.interval_file.display()
        );
    }
    let k = &r.kernel;
    let summary = RunSummary::from_kernel(k, r.stats.accesses);
    let hw = HwStats::from_mmu(&k.machine.mmu);
    let kernel = KernelStats::from_kernel(k);
    let (kind, seed) = match &source {
        Source::Trace(..) => ("trace", None),
        Source::Synth(p) => ("workload", Some(p.seed)),
    };
    if a.json {
        let mut v = serde_json::to_value(&summary)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("machine".into(), machine.into());
            o.insert(kind.into(), r.source.clone().into());
            if let Some(s) = seed {
                o.insert("seed".into(), s.into());
            }
            o.insert("replay".into(), serde_json::to_value(&r.stats)?);
            o.insert("hardware".into(), serde_json::to_value(&hw)?);
            o.insert("kernel".into(), serde_json::to_value(&kernel)?);
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!("machine {machine}: {summary_line}");
    outln!("{kind}: {}", r.source);
    out!("{}", replay_text(&r.stats));
    outln!();
    out!("{}", hw.to_text());
    outln!();
    out!("{}", kernel.to_text());
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
    outln!(
        "machine {}: {}",
        k.machine.spec.name,
        k.machine.spec.summary()
    );
    let paging = k.machine.spec.paging;
    let mut sim = Sim::new(&mut k, 0);
    for (i, e) in events.iter().enumerate() {
        outln!("\n[{}] {}", i + 1, vmsim::trace::text::format_event(e));
        match e {
            vmsim::trace::Event::Access(a) => {
                let stories = sim.access_explained(*a);
                if stories.is_empty() {
                    outln!(
                        "  skipped (the process is gone, or no user mapping can hold the address)"
                    );
                }
                for s in &stories {
                    out!("{}", s.to_text(&paging));
                }
            }
            _ => {
                let failed = sim.stats.failed_events;
                sim.feed(std::slice::from_ref(e));
                if sim.stats.failed_events > failed {
                    if let Some(f) = sim.stats.failures.last() {
                        outln!("  refused: {f}");
                    }
                } else {
                    outln!("  done");
                }
            }
        }
    }
    sim.finish();
    let stats = sim.stats.clone();
    outln!();
    out!("{}", replay_text(&stats));
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

/// The replay's own counters as text.
pub fn replay_text(s: &SimStats) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "replay: {} events, {} accesses ({} translations), {} OS events",
        s.events, s.accesses, s.translations, s.os_events
    );
    if s.inferred_regions > 0 {
        let _ = writeln!(
            t,
            "  {} regions inferred ({})",
            s.inferred_regions,
            vmsim::size::format_size(s.inferred_bytes)
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

fn run_server(a: &RunArgs) -> Result<()> {
    let spec = load_machine(&a.machine.machine, a.machine.ram)?;
    let page = spec.paging.page_size();
    let params = ServerParams::from_bytes(
        a.params.cache,
        a.params.buffer,
        a.params.workers.map(u64::from),
        page,
    )?;
    let (accesses, seed) = (a.params.accesses, a.params.seed);
    let name = spec.name.clone();
    let summary = spec.summary();
    let config = a.kernel.config(page, &[])?;
    let mut k = Kernel::try_boot(spec, config)?;
    let layout = try_run_server_with(&mut k, accesses, seed, params)?;
    let hw = HwStats::from_mmu(&k.machine.mmu);
    let kernel = KernelStats::from_kernel(&k);
    if a.json {
        let head = RunSummary::from_kernel(&k, hw.accesses);
        let mut v = serde_json::to_value(&head)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("machine".into(), name.into());
            o.insert("workload".into(), "server".into());
            o.insert("seed".into(), seed.into());
            o.insert("workers".into(), layout.workers.len().into());
            o.insert("boot".into(), serde_json::to_value(&k.boot_log)?);
            o.insert("hardware".into(), serde_json::to_value(&hw)?);
            o.insert("kernel".into(), serde_json::to_value(&kernel)?);
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("machine {name}: {summary}");
        outln!(
            "workload: server with {} workers ({} shared cache pages, {} buffer pages each), {accesses} worker accesses, seed {seed}",
            layout.workers.len(),
            layout.cache_pages,
            layout.buffer_pages
        );
        outln!("\nboot");
        for line in &k.boot_log {
            outln!("  {line}");
        }
        outln!();
        out!("{}", hw.to_text());
        outln!();
        out!("{}", kernel.to_text());
    }
    Ok(())
}

fn run_hw(a: &RunArgs) -> Result<()> {
    let spec = load_machine(&a.machine.machine, a.machine.ram)?;
    let name = spec.name.clone();
    let (accesses, seed) = (a.params.accesses, a.params.seed);
    let mut demo = vmsim::demo::Demo::new(spec).context("building the demo address space")?;
    demo.run(accesses, seed);
    let stats = HwStats::from_mmu(&demo.machine.mmu);
    if a.json {
        let v = serde_json::json!({
            "machine": name,
            "workload": "hw",
            "seed": seed,
            "hardware": stats,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("machine {name}: {}", demo.machine.spec.summary());
        outln!("workload: hw (fixed address space), {accesses} accesses, seed {seed}");
        for r in &demo.regions {
            outln!(
                "  region {:<6} {:#x}..{:#x} ({} pages of {}) [{}]",
                r.name,
                r.start.0,
                r.start.0 + r.len,
                r.len / r.page_size,
                vmsim::size::format_size(r.page_size),
                r.flags
            );
        }
        outln!();
        out!("{}", stats.to_text());
    }
    Ok(())
}

/// `--workload alloc` and `--workload gc`: an allocator or a collector running inside
/// a simulated process.
fn run_user(a: &RunArgs, alloc: bool) -> Result<()> {
    use vmsim::user::alloc::AllocatorKind;
    use vmsim::user::gc::CollectorKind;
    use vmsim::user::workload::{
        run_alloc, run_gc, AllocParams, AllocPattern, GcParams, GraphShape,
    };
    let spec = load_machine(&a.machine.machine, a.machine.ram)?;
    let name = spec.name.clone();
    let config = a.kernel.config(spec.paging.page_size(), &[])?;
    let mut k = Kernel::try_boot(spec, config)?;
    let prog = vmsim::os::Program::small(if alloc { "alloc" } else { "gc" }, k.page_size());
    let pid = k
        .spawn(&prog)
        .map_err(|e| anyhow!("starting the process: {e}"))?;
    let p = &a.params;
    let report = if alloc {
        let params = AllocParams {
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
        };
        let r = run_alloc(&mut k, pid, &params)?;
        if a.json {
            serde_json::to_value(&r)?
        } else {
            outln!("machine {name}\n{}", r.render());
            return Ok(());
        }
    } else {
        let defaults = GcParams::default();
        let params = GcParams {
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
        };
        let r = run_gc(&mut k, pid, &params)?;
        if a.json {
            serde_json::to_value(&r)?
        } else {
            outln!("machine {name}\n{}", r.render());
            return Ok(());
        }
    };
    let mut v = report;
    // The headline counters every run reports, beside the allocator's or collector's.
    let hw = HwStats::from_mmu(&k.machine.mmu);
    let head = serde_json::to_value(RunSummary::from_kernel(&k, hw.accesses))?;
    if let (Some(o), Some(h)) = (v.as_object_mut(), head.as_object()) {
        for (key, value) in h {
            o.entry(key.clone()).or_insert_with(|| value.clone());
        }
        o.insert("machine".into(), name.into());
        o.insert(
            "workload".into(),
            (if alloc { "alloc" } else { "gc" }).into(),
        );
        o.insert("seed".into(), p.seed.into());
    }
    outln!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
