//! `vmsim run`: a trace or a built-in workload through the kernel and the MMU, and the
//! report of what happened. The flags that configure a run are shared with `sweep`.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vmsim::hw::MachineSpec;
use vmsim::os::{Kernel, KernelConfig, Overcommit, ReclaimPolicy, Storage};
use vmsim::report::{HwStats, KernelStats, RunSummary};
use vmsim::sim::{IntervalRow, Sim, SimStats};
use vmsim::size::parse_size;
use vmsim::trace::synth::{Generator, Layout, SynthParams, WorkloadKind};
use vmsim::trace::{EventReader, Format};
use vmsim::workload::{run_server_with, ServerParams};

/// The machine of a run.
#[derive(Args, Debug, Clone)]
pub struct MachineArgs {
    /// Machine: a preset name (see `vmsim machines`) or a TOML file.
    #[arg(long, short, default_value = "x86-64")]
    pub machine: String,
    /// RAM size, overriding the machine's (4KiB, 2MiB, 1GiB; KB/MB/GB are powers of 1000).
    #[arg(long)]
    pub ram: Option<String>,
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
    /// Swap size (0: none), in a temporary file unless --swap-file names one.
    #[arg(long, default_value = "0")]
    pub swap: String,
    /// The swap file.
    #[arg(long)]
    pub swap_file: Option<PathBuf>,
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
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    pub accesses: u64,
    /// Seed of the access stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes of data the workload touches (seq, stride, uniform, zipf, hotcold,
    /// pointer-chase, hash, fork).
    #[arg(long, default_value = "16MiB")]
    pub footprint: String,
    /// Stride in bytes (stride).
    #[arg(long, default_value = "4096")]
    pub stride: String,
    /// Zipf exponent (zipf).
    #[arg(long, default_value_t = 0.9)]
    pub alpha: f64,
    /// Fraction of pages that are hot (hotcold).
    #[arg(long, default_value_t = 0.1)]
    pub hot_fraction: f64,
    /// Probability that an access goes to a hot page (hotcold).
    #[arg(long, default_value_t = 0.9)]
    pub hot_probability: f64,
    /// Fraction of accesses that are stores.
    #[arg(long, default_value_t = 0.25)]
    pub write_ratio: f64,
    /// Matrix order (matmul, matmul-blocked).
    #[arg(long, default_value_t = 256)]
    pub matrix: u64,
    /// Tile size (matmul-blocked).
    #[arg(long, default_value_t = 32)]
    pub block: u64,
    /// Recursion depth (recursion).
    #[arg(long, default_value_t = 1000)]
    pub depth: u64,
    /// Bytes per stack frame (recursion).
    #[arg(long, default_value = "256")]
    pub frame: String,
    /// Workers (fork, server; server default 4, 2 on small machines).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Server workload: the shared cache's size (default: RAM / 32, at most 4 MiB on
    /// 4 KiB pages).
    #[arg(long)]
    pub cache: Option<String>,
    /// Server workload: each worker's private buffer (default: RAM / 128, at most 64
    /// pages).
    #[arg(long)]
    pub buffer: Option<String>,
    /// alloc: the allocator (first-fit, next-fit, best-fit, explicit-lifo,
    /// explicit-address, segregated, simple-segregated, buddy).
    #[arg(long, default_value = "segregated")]
    pub allocator: String,
    /// alloc: the allocation trace (random, phases, producer-consumer).
    #[arg(long, default_value = "random")]
    pub pattern: String,
    /// alloc: malloc and free operations.
    #[arg(long, default_value_t = 10_000)]
    pub ops: u64,
    /// alloc: the largest request (the smallest is 8 bytes).
    #[arg(long, default_value = "4096")]
    pub max_size: String,
    /// alloc: most blocks live at once.
    #[arg(long, default_value_t = 1_000)]
    pub max_live: u64,
    /// gc: the collector (refcount, mark-sweep, mark-compact, copying, generational).
    #[arg(long, default_value = "mark-sweep")]
    pub collector: String,
    /// gc: the object graph (tree, list, random-graph).
    #[arg(long, default_value = "tree")]
    pub shape: String,
    /// gc: objects in the live structure.
    #[arg(long, default_value_t = 1_000)]
    pub objects: u64,
    /// gc: mutator steps after the structure is built.
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// gc: percentage of steps that change the structure.
    #[arg(long, default_value_t = 50)]
    pub churn: u64,
    /// gc: the collected heap's size.
    #[arg(long, default_value = "256KiB")]
    pub gc_heap: String,
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
    /// A built-in workload: server (the default), hw, seq, stride, uniform, zipf,
    /// hotcold, matmul, matmul-blocked, pointer-chase, hash, fork, recursion.
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
    /// Take the counters every N accesses and write them as CSV (see --interval-file).
    #[arg(long)]
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

pub fn load_machine(name: &str, ram: Option<&str>) -> Result<MachineSpec> {
    let spec = MachineSpec::load(name)?;
    match ram {
        None => Ok(spec),
        Some(r) => {
            let bytes = parse_size(r).map_err(|e| anyhow!("--ram: {e}"))?;
            Ok(spec.with_ram(bytes, "--ram")?)
        }
    }
}

fn size_arg(flag: &str, text: &str) -> Result<u64> {
    parse_size(text).map_err(|e| anyhow!("--{flag}: {e}"))
}

impl KernelArgs {
    /// The kernel configuration these flags describe.
    pub fn config(&self) -> Result<KernelConfig> {
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
            swap_bytes: size_arg("swap", &self.swap)?,
            swap_path: self.swap_file.clone(),
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
            footprint: size_arg("footprint", &self.footprint)?,
            stride: size_arg("stride", &self.stride)?,
            alpha: self.alpha,
            hot_fraction: self.hot_fraction,
            hot_probability: self.hot_probability,
            write_ratio: self.write_ratio,
            matrix: self.matrix,
            block: self.block,
            depth: self.depth,
            frame: size_arg("frame", &self.frame)?,
            workers: self.workers.unwrap_or(4),
            seed: self.seed,
            ..SynthParams::new(kind)
        })
    }
}

/// Where synthetic workloads may put their data on the machine `k` runs.
pub fn layout(k: &Kernel) -> Layout {
    let top = k.task_size().0;
    let ps = k.page_size();
    let big = top >= 1 << 32;
    let data_base = if big {
        0x10_0000_0000u64.min(top / 4)
    } else {
        (top / 4).div_ceil(ps) * ps
    };
    Layout {
        page_size: ps,
        data_base,
        data_room: top / 2 - data_base.min(top / 2),
        stack_top: top,
        text_base: if big { 0x40_0000 } else { k.mmap_min().0 },
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
            EventReader::Synth(Box::new(Generator::new(*p, layout(&k))?)),
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
    match (&a.trace, workload.as_deref()) {
        (Some(_), Some(w)) => bail!("give a trace or --workload {w}, not both"),
        (None, None | Some("server")) => return run_server(&a),
        (None, Some("hw")) => return run_hw(&a),
        (None, Some("alloc")) => return run_user(&a, true),
        (None, Some("gc")) => return run_user(&a, false),
        _ => {}
    }
    let spec = load_machine(&a.machine.machine, a.machine.ram.as_deref())?;
    let machine = spec.name.clone();
    let summary_line = spec.summary();
    let config = a.kernel.config()?;
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
    if a.interval == Some(0) {
        bail!("--interval: must be at least 1 access");
    }
    let r = replay(spec, config, &source, interval, true)?;
    if interval > 0 {
        write_rows(&a.interval_file, &r.rows)?;
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
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("machine {machine}: {summary_line}");
    println!("{kind}: {}", r.source);
    print!("{}", replay_text(&r.stats));
    println!();
    print!("{}", hw.to_text());
    println!();
    print!("{}", kernel.to_text());
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
    let spec = load_machine(&a.machine.machine, a.machine.ram.as_deref())?;
    let k = Kernel::try_boot(spec, a.kernel.config()?)?;
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
    println!(
        "machine {}: {}",
        k.machine.spec.name,
        k.machine.spec.summary()
    );
    let paging = k.machine.spec.paging;
    let mut sim = Sim::new(&mut k, 0);
    for (i, e) in events.iter().enumerate() {
        println!("\n[{}] {}", i + 1, vmsim::trace::text::format_event(e));
        match e {
            vmsim::trace::Event::Access(a) => {
                let stories = sim.access_explained(*a);
                if stories.is_empty() {
                    println!(
                        "  skipped (the process is gone, or no user mapping can hold the address)"
                    );
                }
                for s in &stories {
                    print!("{}", s.to_text(&paging));
                }
            }
            _ => {
                let failed = sim.stats.failed_events;
                sim.feed(std::slice::from_ref(e));
                if sim.stats.failed_events > failed {
                    if let Some(f) = sim.stats.failures.last() {
                        println!("  refused: {f}");
                    }
                } else {
                    println!("  done");
                }
            }
        }
    }
    sim.finish();
    let stats = sim.stats.clone();
    println!();
    print!("{}", replay_text(&stats));
    Ok(())
}

/// Writes a walk-through's page to `out` and says where it went.
pub fn write_page(out: &Path, w: &vmsim::viz::Walkthrough) -> Result<()> {
    let page = vmsim::viz::html::page(w)?;
    std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
    println!(
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

fn write_rows(path: &Path, rows: &[IntervalRow]) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    writeln!(w, "{}", IntervalRow::CSV_HEADER)?;
    for r in rows {
        writeln!(w, "{}", r.to_csv())?;
    }
    w.flush().with_context(|| format!("{}", path.display()))?;
    Ok(())
}

fn run_server(a: &RunArgs) -> Result<()> {
    let spec = load_machine(&a.machine.machine, a.machine.ram.as_deref())?;
    let page = spec.paging.page_size();
    let pages_of = |flag: &str, v: &Option<String>| -> Result<u64> {
        match v {
            None => Ok(0),
            Some(t) => Ok(size_arg(flag, t)?.div_ceil(page).max(1)),
        }
    };
    let params = ServerParams {
        cache_pages: pages_of("cache", &a.params.cache)?,
        buffer_pages: pages_of("buffer", &a.params.buffer)?,
        workers: a.params.workers.unwrap_or(0) as u64,
    };
    let (accesses, seed) = (a.params.accesses, a.params.seed);
    let name = spec.name.clone();
    let summary = spec.summary();
    let mut k = Kernel::try_boot(spec, a.kernel.config()?)?;
    let layout = run_server_with(&mut k, accesses, seed, params);
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
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("machine {name}: {summary}");
        println!(
            "workload: server with {} workers ({} shared cache pages, {} buffer pages each), {accesses} worker accesses, seed {seed}",
            layout.workers.len(),
            layout.cache_pages,
            layout.buffer_pages
        );
        println!("\nboot");
        for line in &k.boot_log {
            println!("  {line}");
        }
        println!();
        print!("{}", hw.to_text());
        println!();
        print!("{}", kernel.to_text());
    }
    Ok(())
}

fn run_hw(a: &RunArgs) -> Result<()> {
    let spec = load_machine(&a.machine.machine, a.machine.ram.as_deref())?;
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
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("machine {name}: {}", demo.machine.spec.summary());
        println!("workload: hw (fixed address space), {accesses} accesses, seed {seed}");
        for r in &demo.regions {
            println!(
                "  region {:<6} {:#x}..{:#x} ({} pages of {}) [{}]",
                r.name,
                r.start.0,
                r.start.0 + r.len,
                r.len / r.page_size,
                vmsim::size::format_size(r.page_size),
                r.flags
            );
        }
        println!();
        print!("{}", stats.to_text());
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
    let spec = load_machine(&a.machine.machine, a.machine.ram.as_deref())?;
    let name = spec.name.clone();
    let mut k = Kernel::try_boot(spec, a.kernel.config()?)?;
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
            max_size: size_arg("max-size", &p.max_size)?,
            max_live: p.max_live,
            seed: p.seed,
            ..AllocParams::default()
        };
        let r = run_alloc(&mut k, pid, &params)?;
        if a.json {
            serde_json::to_value(&r)?
        } else {
            println!("machine {name}\n{}", r.render());
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
                heap_bytes: size_arg("gc-heap", &p.gc_heap)?,
                ..defaults.config
            },
            ..defaults
        };
        let r = run_gc(&mut k, pid, &params)?;
        if a.json {
            serde_json::to_value(&r)?
        } else {
            println!("machine {name}\n{}", r.render());
            return Ok(());
        }
    };
    let mut v = report;
    if let Some(o) = v.as_object_mut() {
        o.insert("machine".into(), name.into());
        o.insert(
            "workload".into(),
            (if alloc { "alloc" } else { "gc" }).into(),
        );
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
