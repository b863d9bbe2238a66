//! The `vmsim` command: a thin layer over the library. Arguments are parsed and
//! validated here; every command is a library call.
//!
//! Standard output is written only through [`out!`] and [`outln!`], which return the
//! error (a closed pipe ends the command quietly) instead of panicking as `print!`
//! does; clippy refuses `print!` and `println!` in this crate.

#![deny(clippy::print_stdout)]

/// `print!` that returns the error (from a function returning `anyhow::Result`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)?
    }};
}

/// `println!` that returns the error (from a function returning `anyhow::Result`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

mod args;
mod plot;
mod run;
mod signals;
mod sweep;
mod trace_cmd;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use vmsim::explain::Explainer;
use vmsim::hw::machine::PRESETS;
use vmsim::hw::{AccessKind, MachineSpec, Privilege};
use vmsim::options::defaults as d;
use vmsim::run::load_machine;

/// vmsim: an executable model of a computer's virtual memory system.
#[derive(Parser, Debug)]
#[command(name = "vmsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a trace or a built-in workload through the kernel and the MMU, and report
    /// what happened and what it cost.
    ///
    /// Without a trace, `--workload server` (the default) boots the kernel, starts a
    /// server that fills a shared cache and forks workers; they run round-robin,
    /// reading the cache, writing private buffers and copying inherited pages on write.
    /// `hw` replays a seeded access mix over an address space mapped up front, on the
    /// hardware alone. `alloc` and `gc` run a malloc allocator or a garbage collector
    /// inside a simulated process. The synthetic workloads (seq, stride, uniform, zipf, hotcold,
    /// matmul, matmul-blocked, pointer-chase, hash, fork, recursion) generate trace
    /// events from their parameters.
    Run(Box<run::RunArgs>),
    /// Read, convert and summarise traces.
    #[command(subcommand)]
    Trace(trace_cmd::TraceCommand),
    /// Record a real program as it runs: every memory access of every process and
    /// thread it becomes (forks, threads and execs followed), the mappings exec made and
    /// every memory system call, streamed into a vmsim trace. The program's output and
    /// exit status pass through.
    Record {
        /// The recording tool: qemu (QEMU user-mode emulation with vmsim's plugin; fast,
        /// follows forks, threads and execs) or lackey (valgrind; the first process only).
        #[arg(long, default_value = "qemu", value_parser = vmsim::trace::record::Tool::parse)]
        tool: vmsim::trace::record::Tool,
        /// The trace to write (vmsim binary, zstd-compressed unless --no-compress;
        /// vmsim text with --text).
        #[arg(long, short)]
        output: PathBuf,
        /// Write vmsim text instead of binary.
        #[arg(long)]
        text: bool,
        /// Do not compress the binary trace.
        #[arg(long)]
        no_compress: bool,
        /// The program and its arguments, after `--`.
        #[arg(last = true, required = true)]
        program: Vec<String>,
    },
    /// Run a grid of configurations in parallel: machines × RAM sizes × reclaim
    /// policies × TLB sizes × traces and workloads, one JSON line (or CSV row) per run,
    /// in grid order.
    Sweep(Box<sweep::SweepArgs>),
    /// Draw a chart (PNG or SVG, by the output's extension) of a time series written
    /// by `vmsim run --interval` or of a sweep's rows (miss ratio against RAM size, one
    /// line per policy).
    Plot {
        /// An interval CSV or a sweep's JSON lines or CSV.
        input: PathBuf,
        /// The chart to write: NAME.png or NAME.svg.
        #[arg(long, short)]
        output: PathBuf,
        /// For sweep rows: the numeric column across (ram_bytes, tlb_entries,
        /// memory_max_bytes, ...).
        #[arg(long, default_value = "ram_bytes")]
        x: String,
        /// For sweep rows: the numeric columns up (miss_ratio, walks, tlb_l1_misses,
        /// minflt, ...), repeated or comma-separated; one line for each and each value
        /// of the grid's axes.
        #[arg(long, value_delimiter = ',', default_value = "miss_ratio")]
        y: Vec<String>,
    },
    /// Replacement-only simulation: the hits and misses of replacement policies on a
    /// stream of page numbers.
    ///
    /// The trace is a text file with one page number per line (decimal or 0x hex, `#`
    /// comments) or a libCacheSim oracleGeneral binary trace; either may be compressed
    /// with gzip, xz or zstd (told by its first bytes). Several policies and frame counts run in parallel, one
    /// result per (policy, frames) pair.
    Policy {
        /// The page trace.
        trace: std::path::PathBuf,
        /// Policies, comma-separated or repeated: fifo, lru, clock, fifo-reinsertion,
        /// clock2..clock8, two-list, arc, random, opt, ws, pff.
        #[arg(long, short, value_delimiter = ',', default_value = d::POLICY)]
        policy: Vec<String>,
        /// Frame counts, comma-separated or repeated (every policy but ws and pff).
        #[arg(long, short, value_delimiter = ',', value_parser = args::count_usize)]
        frames: Vec<usize>,
        /// Working-set windows τ in references, comma-separated (ws).
        #[arg(long, value_delimiter = ',', default_value = d::WINDOW, value_parser = args::count_usize)]
        window: Vec<usize>,
        /// Page-fault-frequency thresholds in references between faults (pff).
        #[arg(long, value_delimiter = ',', default_value = d::PFF_THRESHOLD, value_parser = args::count_usize)]
        pff_threshold: Vec<usize>,
        #[command(flatten)]
        format: PageSourceArgs,
        /// Seed of the random policy.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON object per run, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Miss-ratio curves: the misses of policies at many memory sizes.
    ///
    /// LRU's curve comes from one pass over the trace (stack distances), for every size
    /// at once; the other policies run once per size, in parallel. `--sample` estimates
    /// the LRU curve from a SHARDS sample of the pages.
    Mrc {
        /// The page trace (as for `vmsim policy`).
        trace: std::path::PathBuf,
        /// Policies, comma-separated (see `vmsim policy`; not ws or pff).
        #[arg(long, short, value_delimiter = ',', default_value = d::POLICY)]
        policy: Vec<String>,
        /// Frame counts to report (default: --points sizes, log-spaced up to the
        /// number of distinct pages).
        #[arg(long, short, value_delimiter = ',', value_parser = args::count_usize)]
        frames: Vec<usize>,
        /// How many log-spaced sizes when --frames is not given.
        #[arg(long, default_value = d::POINTS, value_parser = args::count_usize)]
        points: usize,
        /// SHARDS sampling rate for the LRU curve (0 < rate <= 1; 1: exact).
        #[arg(long, default_value = d::SAMPLE, value_parser = args::rate)]
        sample: f64,
        #[command(flatten)]
        format: PageSourceArgs,
        /// Print CSV rows (policy,frames,misses,miss_ratio).
        #[arg(long)]
        csv: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Also draw the curves (miss ratio against frames, log scale, knees marked)
        /// into this file (SVG, or PNG when its name ends in .png).
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// What a page stream needs: working-set size over time, reuse distances, hot pages.
    Wss {
        /// The page trace (as for `vmsim policy`).
        trace: std::path::PathBuf,
        /// τ: the working-set window, in references.
        #[arg(long, default_value = "10000", value_parser = args::count_usize)]
        window: usize,
        /// References between samples of the working-set size (default: a twentieth
        /// of the trace).
        #[arg(long, value_parser = args::count_usize)]
        interval: Option<usize>,
        /// How many hottest and coldest pages and regions to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Pages per region (512: 2 MiB regions of 4 KiB pages).
        #[arg(long, default_value = "512", value_parser = args::count)]
        region_pages: u64,
        #[command(flatten)]
        format: PageSourceArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Also draw the working-set size over time into this file (SVG, or PNG when its
        /// name ends in .png).
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Generate an exercise from a seed, with its answer key (`--answers`).
    ///
    /// `translation` (the default) gives the textbook machine's TLB and page table and
    /// addresses to translate; `replacement` gives a reference string, frames and a
    /// policy.
    Exercise {
        /// What to practise.
        #[arg(long, short, value_enum, default_value_t = ExerciseKind::Translation)]
        kind: ExerciseKind,
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Questions (addresses, or references): 1 to 1000.
        #[arg(long, short = 'n', default_value = "6", value_parser = args::questions)]
        questions: usize,
        /// Replacement policy (for `replacement`): fifo, lru, opt, clock, ...
        #[arg(long, default_value = "fifo")]
        policy: String,
        /// Print the answers too.
        #[arg(long)]
        answers: bool,
        /// Print one JSON object (questions and answers).
        #[arg(long)]
        json: bool,
        /// Write the translation exercise's machine state to this file (for
        /// `vmsim explain --state`).
        #[arg(long)]
        state_out: Option<std::path::PathBuf>,
    },
    /// List the machine presets with their geometry, or show one.
    Machines {
        /// A preset name or TOML file to show in full.
        name: Option<String>,
        /// With a name: print the preset's TOML text.
        #[arg(long)]
        toml: bool,
    },
    /// Translate addresses in the demo address space and tell every step (also
    /// `vmsim translate`).
    #[command(alias = "translate")]
    Explain {
        /// Print one JSON object per address, one per line, instead of the story.
        #[arg(long)]
        json: bool,
        /// Write an interactive page that steps through the translations (address
        /// bits, TLBs, walk, fault, frames) to this file instead of printing the story.
        #[arg(long, value_name = "OUT.html", conflicts_with = "json")]
        html: Option<PathBuf>,
        /// A machine state file (a machine with preloaded TLB and page-table entries,
        /// as an exercise prints them) instead of the demo address space.
        #[arg(long)]
        state: Option<std::path::PathBuf>,
        /// Machine: a preset name or a TOML file.
        #[arg(long, short, default_value = d::MACHINE)]
        machine: String,
        /// RAM size, overriding the machine's.
        #[arg(long, value_parser = args::size)]
        ram: Option<u64>,
        /// What each access does: read, write, exec.
        #[arg(long, default_value = d::ACCESS, value_parser = args::access)]
        access: AccessKind,
        /// Privilege of the accesses: user, supervisor.
        #[arg(long, default_value = d::MODE, value_parser = args::mode)]
        mode: Privilege,
        /// Virtual addresses (decimal, 0x hex, 0b binary), translated in order, so a
        /// repeated address shows a TLB hit.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExerciseKind {
    /// Translate addresses on the textbook machine.
    Translation,
    /// Page replacement on a reference string.
    Replacement,
}

/// Where a page stream comes from: a page trace, or the accesses of any event trace.
#[derive(clap::Args, Debug, Clone)]
struct PageSourceArgs {
    /// Trace format, when the name and contents do not tell: `text` (page numbers) or
    /// `oracle-general` for page streams; vmsim-text, vmsim-binary, lackey, champsim or
    /// plain for event traces, whose accesses become pages.
    #[arg(long)]
    format: Option<String>,
    /// Event traces: only this process's accesses (its trace pid); without it, every
    /// process's pages, each address space's pages distinct.
    #[arg(long)]
    pid: Option<u32>,
    /// Event traces: the page size accesses are counted in (any power of two of at
    /// least 64 bytes: 4KiB, 2MiB, ...).
    #[arg(long, default_value = d::PAGE_SIZE, value_parser = args::page_size)]
    page_size: u64,
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(*args)?,
        Command::Trace(cmd) => trace_cmd::run(cmd)?,
        Command::Sweep(args) => sweep::run(*args)?,
        Command::Plot {
            input,
            output,
            x,
            y,
        } => plot::plot_file(&input, &output, &vmsim::plot::Axes { x, ys: y })?,
        Command::Record {
            tool,
            output,
            text,
            no_compress,
            program,
        } => trace_cmd::record(tool, &output, text, no_compress, &program)?,
        Command::Policy {
            trace,
            policy,
            frames,
            window,
            pff_threshold,
            format,
            seed,
            json,
        } => run_policy(
            &trace,
            &policy,
            &frames,
            &window,
            &pff_threshold,
            format,
            seed,
            json,
        )?,
        Command::Mrc {
            trace,
            policy,
            frames,
            points,
            sample,
            format,
            csv,
            json,
            plot,
        } => run_mrc(
            &trace,
            &policy,
            &frames,
            points,
            sample,
            format,
            (csv, json),
            plot.as_deref(),
        )?,
        Command::Wss {
            trace,
            window,
            interval,
            top,
            region_pages,
            format,
            json,
            plot,
        } => {
            let plot_out = match &plot {
                Some(p) => Some(plot::create(p, &[&trace])?),
                None => None,
            };
            let t = format.read(&trace)?;
            let interval = interval.unwrap_or((t.len() / 20).max(1));
            let name = trace.display().to_string();
            let r = vmsim::policy::analysis::WssReport::of(
                &t,
                &name,
                window,
                interval,
                top,
                region_pages,
            );
            if let Some(out) = plot_out {
                plot::write(out, &vmsim::plot::Chart::working_set(&r, &name))?;
            }
            if json {
                // Through a Value, whose keys are sorted, as every report's are.
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::to_value(&r)?)?
                );
            } else {
                out!("{}", r.to_text());
            }
        }
        Command::Exercise {
            kind: ExerciseKind::Translation,
            seed,
            questions,
            answers,
            json,
            state_out,
            ..
        } => {
            let e = vmsim::exercise::translation(seed, questions);
            if let Some(p) = &state_out {
                vmsim::output::write_file(p, &[], e.state.as_bytes())?;
            }
            if json {
                outln!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                out!("{}", e.to_text(seed, answers));
            }
        }
        Command::Exercise {
            kind: ExerciseKind::Replacement,
            seed,
            questions,
            policy,
            answers,
            json,
            ..
        } => {
            let k: vmsim::policy::PolicyKind = policy
                .parse()
                .map_err(|e| anyhow::anyhow!("--policy: {e}"))?;
            if !k.fixed_frames() {
                bail!("--policy: {k} has no fixed number of frames");
            }
            let e = vmsim::exercise::replacement(seed, questions, k);
            if json {
                outln!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                out!("{}", e.to_text(seed, answers));
            }
        }
        Command::Machines { name: None, .. } => {
            for (name, _) in PRESETS {
                let m = MachineSpec::preset(name)?;
                outln!("{name:<16} {}", m.description);
                outln!("{:<16} {}", "", m.summary());
            }
        }
        Command::Machines {
            name: Some(name),
            toml,
        } => {
            if toml {
                out!("{}", MachineSpec::toml_text(&name)?);
            } else {
                out!("{}", MachineSpec::load(&name)?.describe());
            }
        }
        Command::Explain {
            json,
            html,
            state,
            machine,
            ram,
            access,
            mode,
            addrs,
        } => {
            let inputs: Vec<&std::path::Path> = state.as_deref().into_iter().collect();
            let html = match &html {
                Some(p) => Some(vmsim::output::OutputFile::create(p, &inputs)?),
                None => None,
            };
            let spec = load_machine(&machine, ram, None)?;
            let vas = vmsim::explain::addresses(&addrs)?;
            let kind = access;
            let mut e = match &state {
                Some(path) => Explainer::state(path)?,
                None => Explainer::demo(spec)?,
            };
            match html {
                Some(out) => run::write_page(out, &e.walkthrough(&vas, kind, mode))?,
                None if json => out!("{}", e.json_lines(&vas, kind, mode)?),
                None => out!("{}", e.text(&vas, kind, mode)),
            }
        }
    }
    Ok(())
}

/// The policies named on the command line.
fn parse_policies(policies: &[String]) -> Result<Vec<vmsim::policy::PolicyKind>> {
    policies
        .iter()
        .map(|p| p.parse().map_err(|e| anyhow::anyhow!("--policy: {e}")))
        .collect()
}

impl PageSourceArgs {
    /// The page stream of `path` (see [`vmsim::trace::pages::read_pages`]).
    fn read(&self, path: &std::path::Path) -> Result<vmsim::policy::PageTrace> {
        let f = self.format.as_deref();
        Ok(vmsim::trace::pages::read_pages(
            path,
            f,
            self.pid,
            self.page_size,
        )?)
    }
}

#[allow(clippy::too_many_arguments)]
fn run_mrc(
    trace: &std::path::Path,
    policies: &[String],
    frames: &[usize],
    points: usize,
    sample: f64,
    format: PageSourceArgs,
    (csv, json): (bool, bool),
    plot: Option<&std::path::Path>,
) -> Result<()> {
    let kinds = parse_policies(policies)?;
    if let Some(k) = kinds.iter().find(|k| !k.fixed_frames()) {
        bail!("--policy: {k} has no fixed number of frames, so no miss-ratio curve");
    }
    let plot_out = match plot {
        Some(p) => Some(plot::create(p, &[trace])?),
        None => None,
    };
    let t = format.read(trace)?;
    let name = trace.display().to_string();
    let c = vmsim::policy::mrc::curves(&t, &name, &kinds, frames, points, sample)
        .map_err(|e| anyhow::anyhow!("--{}: {e}", e.param()))?;
    if let Some(out) = plot_out {
        plot::write(out, &vmsim::plot::Chart::miss_ratio(&c, &name))?;
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&c.to_json())?);
    } else if csv {
        out!("{}", c.to_csv());
    } else {
        out!("{}", c.to_text());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_policy(
    trace: &std::path::Path,
    policies: &[String],
    frames: &[usize],
    windows: &[usize],
    thresholds: &[usize],
    format: PageSourceArgs,
    seed: u64,
    json: bool,
) -> Result<()> {
    use vmsim::policy::{grid, results_text};
    let kinds = parse_policies(policies)?;
    let specs =
        grid(&kinds, frames, windows, thresholds, seed).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let source = vmsim::trace::pages::open_pages(
        trace,
        format.format.as_deref(),
        format.pid,
        format.page_size,
    )?;
    let (results, n, pages) = source.simulate(&specs)?;
    if json {
        for r in &results {
            outln!("{}", serde_json::to_string(r)?);
        }
    } else {
        out!(
            "{}",
            results_text(&trace.display().to_string(), n, pages, &results)
        );
    }
    Ok(())
}

/// An error and its causes on one line, each cause said once: a cause whose text its
/// error already quotes (`cannot read X: {source}`) is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut m = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if m.contains(&c) {
            continue;
        }
        if !m.is_empty() {
            m.push_str(": ");
        }
        m.push_str(&c);
    }
    m
}

/// Whether `e` comes from writing to a pipe whose reader has gone (`vmsim ... | head`).
fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    signals::install();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader took what it wanted: nothing to say.
        Err(e) if is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(status) = e.downcast_ref::<trace_cmd::ProgramStatus>() {
                return ExitCode::from(status.0);
            }
            eprintln!("vmsim: error: {}", message(&e));
            ExitCode::from(2)
        }
    }
}
