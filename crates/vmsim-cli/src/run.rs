//! `vmsim run`: a trace or a built-in workload through the kernel and the MMU, and the
//! report of what happened. The flags that configure a run are shared with `sweep`.

use crate::args;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vmsim::options::defaults as d;
use vmsim::os::Overcommit;
use vmsim::output::OutputFile;
use vmsim::run::{KernelOptions, RunOptions, WorkloadOptions};

/// The machine of a run.
#[derive(Args, Debug, Clone)]
pub struct MachineArgs {
    /// Machine: a preset name (see `vmsim machines`) or a TOML file.
    #[arg(long, short, default_value = d::MACHINE)]
    pub machine: String,
    /// RAM size, overriding the machine's (4KiB, 2MiB, 1GiB; KB/MB/GB are powers of 1000).
    #[arg(long, value_parser = args::size)]
    pub ram: Option<u64>,
    /// CPUs, overriding the machine's (1 to 64): each has its own TLBs and walk caches;
    /// threads are placed on the least-loaded CPU and stay there, and a change that
    /// narrows access sends TLB shootdowns to the other CPUs running the address space.
    #[arg(long, value_parser = args::count_u32)]
    pub cpus: Option<u32>,
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
    /// Overcommit policy (vm.overcommit_memory 0, 1, 2): heuristic (refuse only absurd
    /// requests), always (never refuse), never (strict accounting).
    #[arg(long, default_value = d::OVERCOMMIT, value_parser = args::overcommit)]
    pub overcommit: Overcommit,
    /// Swap size (0: none; else a whole number of pages, the first a header as in a
    /// Linux swap file), in a temporary file unless --swap-file names one.
    #[arg(long, default_value = d::SWAP, value_parser = args::size)]
    pub swap: u64,
    /// The swap file: a new path, or a swap file vmsim made before (any other existing
    /// file is refused unless --force).
    #[arg(long)]
    pub swap_file: Option<PathBuf>,
    /// Use --swap-file even if it exists and vmsim did not make it (its contents are
    /// lost).
    #[arg(long)]
    pub force: bool,
    /// What a swap fault reads ahead: cluster (the slots around its slot, as Linux does
    /// when a swap device reports itself rotational, as most virtual machines' disks
    /// do) or vma (the pages around it in its mapping, as Linux does when every swap
    /// device is an SSD that says so).
    #[arg(long, value_name = "HOW", default_value = d::SWAP_READAHEAD, value_parser = args::swap_readahead)]
    pub swap_readahead: vmsim::os::swap::SwapReadahead,
    /// The order a replay takes the threads' accesses in: clock (each thread has a
    /// clock of the simulated time its own accesses and faults took, storage waits
    /// included, and the thread furthest behind goes next, as on a machine with a CPU
    /// per thread) or recorded (the trace's order).
    #[arg(long, value_name = "ORDER", default_value = d::THREAD_ORDER, value_parser = args::thread_order)]
    pub thread_order: vmsim::interleave::ThreadOrder,
    /// Milliseconds of the run's clock between flushes of a memory group's
    /// statistics, which two-list reclaim's heuristics read as of the last flush, as
    /// Linux's do (2000: Linux's 2 s, on a clock that runs at about a program's real
    /// pace; the first flush comes half a period in); 0 reads them as they are.
    #[arg(long, value_name = "MS", default_value = d::STATS_FLUSH_MS, value_parser = args::whole)]
    pub stats_flush_ms: u64,
    /// Milliseconds of the run's clock before the first of those flushes (default: half
    /// the period). Linux's flusher keeps the machine's phase, not the program's, so on
    /// Linux it falls anywhere in the first period and a program's counts can move
    /// with it: a few phases show the spread.
    #[arg(long, value_name = "MS", value_parser = args::whole)]
    pub stats_flush_phase_ms: Option<u64>,
    /// Reclaim policy: fifo, clock, two-list (Linux's, the default; also `linux`).
    #[arg(long, default_value = d::RECLAIM)]
    pub policy: String,
    /// Storage under swap and files: vm (the default: this project's machines' disk as
    /// measured: reads 60us,2GB/s, swap writes 50us,2500MB/s), nvme, sata-ssd, hdd, or
    /// LATENCY,BANDWIDTH (70us,1200MB/s), then optionally LATENCY,BANDWIDTH for swap
    /// writes (20us,2GB/s,500us,100MB/s).
    #[arg(long, default_value = d::STORAGE)]
    pub storage: String,
    /// Run the workload (the trace's processes, or the built-in workload) in a memory
    /// group with this limit, as cgroup's memory.max: anonymous and page-cache pages
    /// are charged, the group reclaims its own pages at the limit, and its OOM killer
    /// runs when nothing in it can be reclaimed.
    #[arg(long, value_parser = args::size)]
    pub memory_max: Option<u64>,
    /// Most bytes file readahead reads at once, as a block device's read_ahead_kb, for
    /// every file (0: none; else a whole number of pages). Default: each file's
    /// device's, as `vmsim record` found it, else 128 KiB.
    #[arg(long, value_parser = args::size)]
    pub readahead: Option<u64>,
    /// The page cache at start: cold (what the trace's `file-cached` records found
    /// cached when the program was recorded, and programs and libraries, the files
    /// mapped executable, that have no such record) or warm (every file is).
    #[arg(long = "page-cache", value_name = "PAGE_CACHE", action = clap::ArgAction::Set,
          default_value = d::PAGE_CACHE, value_parser = args::page_cache_warm)]
    pub page_cache_warm: bool,
    /// Ignore the trace's `fs-metadata` events: the file system's own blocks (inode
    /// tables, directories) that the recorded program's path lookups read are not
    /// charged to its memory group, as Linux charges them.
    #[arg(long)]
    pub no_fs_metadata: bool,
    /// Charge no kernel memory to the memory group: by default each process's kernel
    /// stacks, task and mm structures and one vm_area_struct a mapping count against
    /// the limit, as Linux charges them.
    #[arg(long)]
    pub no_kmem: bool,
    /// Transparent huge pages for anonymous memory, as Linux's
    /// /sys/kernel/mm/transparent_hugepage/enabled: always (every private anonymous
    /// mapping), madvise (those madvise(MADV_HUGEPAGE) marked) or never.
    #[arg(long, value_name = "MODE", default_value = d::THP, value_parser = args::thp)]
    pub thp: vmsim::os::thp::ThpMode,
    /// Whether a huge-page fault may reclaim when its group or the machine is short, as
    /// /sys/kernel/mm/transparent_hugepage/defrag: always, defer, defer+madvise,
    /// madvise (advised mappings only) or never. vmsim does not compact memory.
    #[arg(long, value_name = "MODE", default_value = d::THP_DEFRAG, value_parser = args::thp_defrag)]
    pub thp_defrag: vmsim::os::thp::ThpDefrag,
    /// khugepaged's settings, as the files of
    /// /sys/kernel/mm/transparent_hugepage/khugepaged/: KEY=VALUE,... of
    /// scan_sleep_millisecs (10000), alloc_sleep_millisecs (60000), pages_to_scan
    /// (4096), max_ptes_none (511), max_ptes_shared (256); time is simulated time.
    #[arg(long, value_name = "SETTINGS", default_value = d::KHUGEPAGED, value_parser = args::khugepaged)]
    pub khugepaged: vmsim::os::khugepaged::KhugepagedConfig,
    /// hugetlb pools reserved at boot, as Linux's hugepages= parameters: SIZE:N,...
    /// (2MiB:512,1GiB:2), each size one the machine's page tables have a leaf for.
    /// MAP_HUGETLB mappings take their pages from them.
    #[arg(long, value_name = "SIZE:N,...", value_parser = args::huge_pools)]
    pub hugepages: Option<args::HugePools>,
}

/// A synthetic workload's parameters.
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Number of accesses.
    #[arg(long, short = 'n', default_value = d::ACCESSES, value_parser = args::count)]
    pub accesses: u64,
    /// Seed of the access stream.
    #[arg(long, default_value = d::SEED)]
    pub seed: u64,
    /// Bytes of data the workload touches (seq, stride, uniform, zipf, hotcold,
    /// pointer-chase, hash, fork).
    #[arg(long, default_value = d::FOOTPRINT, value_parser = args::nonzero_size)]
    pub footprint: u64,
    /// Stride in bytes (stride).
    #[arg(long, default_value = d::STRIDE, value_parser = args::nonzero_size)]
    pub stride: u64,
    /// Zipf exponent (zipf).
    #[arg(long, default_value = d::ALPHA, value_parser = args::non_negative)]
    pub alpha: f64,
    /// Fraction of pages that are hot (hotcold).
    #[arg(long, default_value = d::HOT_FRACTION, value_parser = args::rate)]
    pub hot_fraction: f64,
    /// Probability that an access goes to a hot page (hotcold).
    #[arg(long, default_value = d::HOT_PROBABILITY, value_parser = args::fraction)]
    pub hot_probability: f64,
    /// Fraction of accesses that are stores.
    #[arg(long, default_value = d::WRITE_RATIO, value_parser = args::fraction)]
    pub write_ratio: f64,
    /// Matrix order (matmul, matmul-blocked).
    #[arg(long, default_value = d::MATRIX, value_parser = args::count)]
    pub matrix: u64,
    /// Tile size (matmul-blocked).
    #[arg(long, default_value = d::BLOCK, value_parser = args::count)]
    pub block: u64,
    /// Recursion depth (recursion).
    #[arg(long, default_value = d::DEPTH, value_parser = args::count)]
    pub depth: u64,
    /// Bytes per stack frame (recursion).
    #[arg(long, default_value = d::FRAME, value_parser = args::nonzero_size)]
    pub frame: u64,
    /// Workers (fork, server; server default 4, 2 on small machines), or threads
    /// (threads: default 4; unmap, prodcons: 2).
    #[arg(long, value_parser = args::count_u32)]
    pub workers: Option<u32>,
    /// Accesses per turn when processes or threads take turns (fork, threads, unmap,
    /// prodcons).
    #[arg(long, default_value = d::QUANTUM, value_parser = args::count)]
    pub quantum: u64,
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
    #[arg(long, default_value = d::ALLOCATOR)]
    pub allocator: String,
    /// alloc: the allocation trace (random, phases, producer-consumer).
    #[arg(long, default_value = d::PATTERN)]
    pub pattern: String,
    /// alloc: malloc and free operations.
    #[arg(long, default_value = d::OPS, value_parser = args::count)]
    pub ops: u64,
    /// alloc: the largest request (the smallest is 8 bytes).
    #[arg(long, default_value = d::MAX_SIZE, value_parser = args::nonzero_size)]
    pub max_size: u64,
    /// alloc: most blocks live at once.
    #[arg(long, default_value = d::MAX_LIVE, value_parser = args::count)]
    pub max_live: u64,
    /// gc: the collector (refcount, mark-sweep, mark-compact, copying, generational).
    #[arg(long, default_value = d::COLLECTOR)]
    pub collector: String,
    /// gc: the object graph (tree, list, random-graph).
    #[arg(long, default_value = d::SHAPE)]
    pub shape: String,
    /// gc: objects in the live structure.
    #[arg(long, default_value = d::OBJECTS, value_parser = args::count)]
    pub objects: u64,
    /// gc: mutator steps after the structure is built.
    #[arg(long, default_value = d::STEPS)]
    pub steps: u64,
    /// gc: percentage of steps that change the structure.
    #[arg(long, default_value = d::CHURN, value_parser = args::percent)]
    pub churn: u64,
    /// gc: the collected heap's size.
    #[arg(long, default_value = d::GC_HEAP, value_parser = args::nonzero_size)]
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
    /// Where --interval writes its CSV (default `vmsim-interval.csv`, which is made
    /// new: an existing one is overwritten only when named here).
    #[arg(long, requires = "interval")]
    pub interval_file: Option<PathBuf>,
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

impl KernelArgs {
    /// The library's options these flags give.
    pub fn options(&self) -> KernelOptions {
        KernelOptions {
            wx: self.wx,
            zero_page: !self.no_zero_page,
            overcommit: self.overcommit,
            swap: self.swap,
            swap_file: self.swap_file.clone(),
            force: self.force,
            swap_readahead: self.swap_readahead,
            thread_order: self.thread_order,
            stats_flush_ms: self.stats_flush_ms,
            stats_flush_phase_ms: self.stats_flush_phase_ms,
            reclaim: self.policy.clone(),
            storage: self.storage.clone(),
            memory_max: self.memory_max,
            readahead: self.readahead,
            page_cache_warm: self.page_cache_warm,
            fs_metadata: !self.no_fs_metadata,
            kmem: !self.no_kmem,
            thp: self.thp,
            thp_defrag: self.thp_defrag,
            khugepaged: self.khugepaged,
            hugepages: self.hugepages.clone().map(|p| p.0).unwrap_or_default(),
        }
    }
}

impl WorkloadArgs {
    /// The library's options these flags give.
    pub fn options(&self) -> WorkloadOptions {
        WorkloadOptions {
            accesses: self.accesses,
            seed: self.seed,
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
            workers: self.workers,
            quantum: self.quantum,
            cache: self.cache,
            buffer: self.buffer,
            allocator: self.allocator.clone(),
            pattern: self.pattern.clone(),
            ops: self.ops,
            max_size: self.max_size,
            max_live: self.max_live,
            collector: self.collector.clone(),
            shape: self.shape.clone(),
            objects: self.objects,
            steps: self.steps,
            churn: self.churn,
            gc_heap: self.gc_heap,
        }
    }
}

impl RunArgs {
    /// The library's options these flags give.
    fn options(&self) -> RunOptions {
        RunOptions {
            trace: self.trace.clone(),
            format: self.format.clone(),
            workload: self.workload.clone(),
            machine: self.machine.machine.clone(),
            ram: self.machine.ram,
            cpus: self.machine.cpus,
            kernel: self.kernel.options(),
            params: self.params.options(),
            interval: self.interval,
        }
    }
}

/// Where `--interval` writes when `--interval-file` is not given.
const DEFAULT_INTERVAL_FILE: &str = "vmsim-interval.csv";

pub fn run(a: RunArgs) -> Result<()> {
    if a.explain || a.html.is_some() {
        return run_short(&a);
    }
    let o = a.options();
    let config = o.resolve()?;
    // Opened before the run, so a bad path fails at once.
    let rows_out = match (a.interval, &a.interval_file) {
        (None, _) => None,
        (Some(_), Some(named)) => Some(OutputFile::create(named, &o.inputs())?),
        (Some(_), None) => {
            let default = Path::new(DEFAULT_INTERVAL_FILE);
            if default.symlink_metadata().is_ok() {
                bail!(
                    "--interval: {DEFAULT_INTERVAL_FILE} already exists and --interval-file \
                     was not given; name the file to write (--interval-file \
                     {DEFAULT_INTERVAL_FILE} writes over it)"
                );
            }
            Some(OutputFile::create(default, &o.inputs())?)
        }
    };
    let report = vmsim::run::execute(config, &mut progress())?;
    if let Some(out) = rows_out {
        let path = out.path().display().to_string();
        out.finish(vmsim::run::interval_csv(&report.rows).as_bytes())?;
        eprintln!("{} interval rows written to {path}", report.rows.len());
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        out!("{}", report.text);
    }
    Ok(())
}

/// `vmsim run --explain TRACE` (the trace told event by event as text) or `vmsim run
/// --html OUT TRACE` (the trace replayed on the explained path, as a page).
fn run_short(a: &RunArgs) -> Result<()> {
    let flag = if a.explain { "--explain" } else { "--html" };
    let html = match (&a.html, a.explain) {
        (Some(p), false) => Some(OutputFile::create(p, &a.options().inputs())?),
        _ => None,
    };
    let max = vmsim::viz::MAX_TRACE_EVENTS;
    let Some(path) = &a.trace else {
        bail!("{flag} needs a trace to replay (a short one: at most {max} events)");
    };
    if a.workload.is_some() || a.json || a.interval.is_some() || (a.explain && a.html.is_some()) {
        bail!("{flag} takes a trace only, without --workload, --json, --interval or the other of --html and --explain");
    }
    let (mut k, events) = a.options().short_trace(path)?;
    match html {
        Some(out) => {
            let title = format!("vmsim run {}", path.display());
            write_page(out, &vmsim::viz::record_trace(&mut k, &events, &title)?)
        }
        None => {
            out!("{}", vmsim::explain::trace_text(&mut k, &events));
            Ok(())
        }
    }
}

/// Writes a walk-through's page to `out` (opened before the work) and says where it
/// went.
pub fn write_page(mut out: OutputFile, w: &vmsim::viz::Walkthrough) -> Result<()> {
    let page = vmsim::viz::html::page(w)?;
    let path = out.path().to_path_buf();
    out.write_all(page.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    out.commit()?;
    let (steps, machine) = (w.steps.len(), &w.machine);
    outln!(
        "wrote {} ({steps} steps on {machine}): open it in a browser",
        path.display()
    );
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        run: RunArgs,
    }

    /// The flags' defaults are the library's (which the Python package starts from).
    #[test]
    fn no_flag_gives_the_librarys_default_options() {
        let flags = Flags::parse_from(["vmsim"]);
        let ours = format!("{:?}", flags.run.options());
        assert_eq!(ours, format!("{:?}", RunOptions::default()));
        let flags = Flags::parse_from(["vmsim", "--ram", "32MiB", "--page-cache", "warm"]);
        let mut set = RunOptions::default();
        set.set("ram", "32MiB").unwrap();
        set.set("page_cache", "warm").unwrap();
        assert_eq!(format!("{:?}", flags.run.options()), format!("{set:?}"));
    }
}
