//! `vmsim sweep`: the flags of a grid of runs, given to [`vmsim::sweep`], and its rows
//! written as JSON lines or CSV.

use crate::args;
use crate::run::WorkloadArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use vmsim::options::defaults as d;
use vmsim::output::OutputFile;
use vmsim::sweep::{self, Grid, Labelled};
use vmsim::trace::synth::WorkloadKind;

/// `vmsim sweep`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// A TOML file with the grid (see docs/traces.md); flags add to its axes.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Machines (presets or TOML files), repeated or comma-separated.
    #[arg(long = "machine", short, value_delimiter = ',')]
    pub machines: Vec<String>,
    /// RAM sizes, repeated or comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = args::size)]
    pub ram: Vec<u64>,
    /// Reclaim policies (fifo, clock, two-list), repeated or comma-separated.
    #[arg(long = "policy", short, value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Entries of the first-level TLBs, repeated or comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = args::count_u32)]
    pub tlb_entries: Vec<u32>,
    /// The workload's memory limits (as run's --memory-max), repeated or
    /// comma-separated: an axis of the grid.
    #[arg(long, value_delimiter = ',', value_parser = args::size)]
    pub memory_max: Vec<u64>,
    /// Transparent huge page modes (always, madvise, never; as run's --thp),
    /// repeated or comma-separated: an axis of the grid.
    #[arg(long, value_name = "MODE", value_delimiter = ',', value_parser = args::thp)]
    pub thp: Vec<vmsim::os::thp::ThpMode>,
    /// CPU counts (as run's --cpus), comma-separated or repeated: a grid axis.
    #[arg(long, value_delimiter = ',', value_parser = args::count_u32)]
    pub cpus: Vec<u32>,
    /// Traces, repeated.
    #[arg(long = "trace")]
    pub traces: Vec<PathBuf>,
    /// Synthetic workloads, repeated or comma-separated.
    #[arg(long = "workload", short, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// Run only the K-th of N shares of the grid (runs K, K+N, K+2N, ... counting from
    /// 1; K = 0 is share N, so a Slurm array's $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
    /// works for --array=0-(N-1) and for --array=1-N), for the jobs of a cluster
    /// scheduler.
    #[arg(long, conflicts_with = "merge")]
    pub shard: Option<String>,
    /// Instead of running, merge the rows that shards of the grid wrote (JSON lines or
    /// CSV, all alike) into grid order: every run once, none missing (checked against
    /// the grid when the grid's flags or --config are given too).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub merge: Vec<PathBuf>,
    /// Print CSV instead of JSON lines.
    #[arg(long)]
    pub csv: bool,
    /// Write the rows here instead of to standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The traces' format, when names and contents do not tell.
    #[arg(long)]
    pub format: Option<String>,
    /// Swap size of every run (0: none; else whole pages).
    #[arg(long, default_value = d::SWAP, value_parser = args::size)]
    pub swap: u64,
    /// Storage under swap and files: vm (the default: this project's machines' disk as
    /// measured: reads 60us,2GB/s, swap writes 50us,2500MB/s), nvme, sata-ssd, hdd, or
    /// LATENCY,BANDWIDTH (70us,1200MB/s), then optionally LATENCY,BANDWIDTH for swap
    /// writes (20us,2GB/s,500us,100MB/s).
    #[arg(long, default_value = d::STORAGE)]
    pub storage: String,
    #[command(flatten)]
    pub params: WorkloadArgs,
}

pub fn run(a: SweepArgs) -> Result<()> {
    let shard = a.shard.as_deref();
    let shard = shard
        .map(|s| sweep::parse_shard(s, "--shard"))
        .transpose()?;
    // The synthetic workloads' parameters (each run sets its own kind).
    let mut grid = Grid::new(a.params.options().synth(WorkloadKind::Seq));
    grid.swap = Labelled::new(a.swap, "--swap");
    grid.storage = Labelled::new(a.storage.clone(), "--storage");
    grid.format = vmsim::run::format_named(a.format.as_deref())?;
    // The file's axes come first, then the flags'; the file's settings win.
    if let Some(path) = &a.config {
        grid.add_file(path)?;
    }
    grid.machines.extend(a.machines.iter().cloned());
    grid.rams
        .extend(a.ram.iter().map(|&r| Labelled::new(r, "--ram")));
    let policies = a
        .policies
        .iter()
        .map(|p| Labelled::new(p.clone(), "--policy"));
    grid.policies.extend(policies);
    let tlbs = a
        .tlb_entries
        .iter()
        .map(|&t| Labelled::new(t, "--tlb-entries"));
    grid.tlb_entries.extend(tlbs);
    let mems = a
        .memory_max
        .iter()
        .map(|&m| Labelled::new(m, "--memory-max"));
    grid.memory_maxes.extend(mems);
    let thps = a.thp.iter().map(|&t| Labelled::new(t, "--thp"));
    grid.thps.extend(thps);
    let cpus = a.cpus.iter().map(|&c| Labelled::new(c, "--cpus"));
    grid.cpus.extend(cpus);
    grid.traces.extend(a.traces.iter().cloned());
    for w in &a.workloads {
        grid.add_workload(w, "--workload")?;
    }
    if !a.merge.is_empty() {
        return merge(&a, &grid);
    }
    let mut points = grid.points()?;
    if let Some((k, n)) = shard {
        points = sweep::shard(points, k, n);
    }
    let mut inputs: Vec<&Path> = a.config.as_deref().into_iter().collect();
    inputs.extend(grid.traces.iter().map(PathBuf::as_path));
    let file_out = match &a.output {
        Some(path) => Some(OutputFile::create(path, &inputs)?),
        None => None,
    };
    let rows = grid.run(&points);
    let text = sweep::rows_text(&rows, a.csv)?;
    match file_out {
        Some(out) => out.finish(text.as_bytes())?,
        None => out!("{text}"),
    }
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} runs failed (see their error field)",
            rows.len()
        );
    }
    Ok(())
}

/// `vmsim sweep --merge FILE...`: the shards' rows in grid order, checked against the
/// grid when it is given (a grid with no source is not given).
fn merge(a: &SweepArgs, grid: &Grid) -> Result<()> {
    let given = !grid.traces.is_empty() || !grid.workloads.is_empty();
    let expected = if given {
        Some(grid.points()?.len())
    } else {
        None
    };
    let mut inputs = Vec::new();
    for path in &a.merge {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--merge: reading {}", path.display()))?;
        inputs.push((path.display().to_string(), text));
    }
    let merged = sweep::merge(&inputs, expected)?;
    if a.csv && !merged.text.starts_with(sweep::CSV_HEADER) && merged.rows > 0 {
        bail!("--csv: the shards' rows are JSON lines, and a merge keeps their format");
    }
    let paths: Vec<&Path> = a.merge.iter().map(PathBuf::as_path).collect();
    match &a.output {
        Some(path) => OutputFile::create(path, &paths)?.finish(merged.text.as_bytes())?,
        None => out!("{}", merged.text),
    }
    if merged.failed > 0 {
        bail!(
            "{} of {} runs failed (see their error field)",
            merged.failed,
            merged.rows
        );
    }
    Ok(())
}
