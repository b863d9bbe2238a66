//! `vmsim sweep`: a grid of runs (machines × RAM sizes × reclaim policies × TLB sizes
//! × traces and workloads) in parallel, one row per run, in grid order whatever the
//! finishing order, so the output is the same for the same grid.

use crate::run::{load_machine, parse_format, replay, KernelArgs, Source, WorkloadArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use vmsim::report::RunSummary;
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
    #[arg(long, value_delimiter = ',')]
    pub ram: Vec<String>,
    /// Reclaim policies (fifo, clock, two-list), repeated or comma-separated.
    #[arg(long = "policy", short, value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Entries of the first-level TLBs, repeated or comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tlb_entries: Vec<u32>,
    /// Traces, repeated.
    #[arg(long = "trace")]
    pub traces: Vec<PathBuf>,
    /// Synthetic workloads, repeated or comma-separated.
    #[arg(long = "workload", short, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// Run only the K-th of N shares of the grid (runs K, K+N, K+2N, ... counting from
    /// 1), for the jobs of a cluster scheduler.
    #[arg(long)]
    pub shard: Option<String>,
    /// Print CSV instead of JSON lines.
    #[arg(long)]
    pub csv: bool,
    /// Write the rows here instead of to standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The traces' format, when names and contents do not tell.
    #[arg(long)]
    pub format: Option<String>,
    /// Swap size of every run.
    #[arg(long, default_value = "0")]
    pub swap: String,
    /// Storage under swap and files: nvme, sata-ssd, hdd.
    #[arg(long, default_value = "nvme")]
    pub storage: String,
    #[command(flatten)]
    pub params: WorkloadArgs,
}

/// The grid file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    #[serde(default)]
    machines: Vec<String>,
    #[serde(default)]
    ram: Vec<String>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    tlb_entries: Vec<u32>,
    #[serde(default)]
    traces: Vec<PathBuf>,
    #[serde(default)]
    workloads: Vec<String>,
    swap: Option<String>,
    storage: Option<String>,
    accesses: Option<u64>,
    seed: Option<u64>,
    footprint: Option<String>,
}

/// One run of the grid.
#[derive(Clone, Debug)]
struct Point {
    index: usize,
    machine: String,
    ram: Option<String>,
    policy: String,
    tlb_entries: Option<u32>,
    source: SourceSpec,
}

#[derive(Clone, Debug)]
enum SourceSpec {
    Trace(PathBuf),
    Workload(String),
}

/// One row of output.
#[derive(Clone, Debug, Serialize)]
struct Row {
    run: usize,
    machine: String,
    ram_bytes: u64,
    policy: String,
    tlb_entries: Option<u32>,
    source: String,
    accesses: u64,
    tlb_l1_misses: u64,
    walks: u64,
    minor_faults: u64,
    major_faults: u64,
    cow_faults: u64,
    segv: u64,
    swap_ins: u64,
    swap_outs: u64,
    evictions: u64,
    peak_rss_pages: u64,
    cycles: u64,
    /// (minor + major faults) / accesses.
    miss_ratio: f64,
    error: Option<String>,
}

const CSV_HEADER: &str = "run,machine,ram_bytes,policy,tlb_entries,source,accesses,tlb_l1_misses,walks,minor_faults,major_faults,cow_faults,segv,swap_ins,swap_outs,evictions,peak_rss_pages,cycles,miss_ratio,error";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Row {
    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.run,
            csv_field(&self.machine),
            self.ram_bytes,
            self.policy,
            self.tlb_entries.map_or(String::new(), |t| t.to_string()),
            csv_field(&self.source),
            self.accesses,
            self.tlb_l1_misses,
            self.walks,
            self.minor_faults,
            self.major_faults,
            self.cow_faults,
            self.segv,
            self.swap_ins,
            self.swap_outs,
            self.evictions,
            self.peak_rss_pages,
            self.cycles,
            self.miss_ratio,
            csv_field(self.error.as_deref().unwrap_or(""))
        )
    }
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow!("--shard: `{s}` is not K/N with 1 <= K <= N");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

pub fn run(a: SweepArgs) -> Result<()> {
    let mut grid = match &a.config {
        None => GridFile::default(),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
    };
    grid.machines.extend(a.machines.iter().cloned());
    grid.ram.extend(a.ram.iter().cloned());
    grid.policies.extend(a.policies.iter().cloned());
    grid.tlb_entries.extend(a.tlb_entries.iter().copied());
    grid.traces.extend(a.traces.iter().cloned());
    grid.workloads.extend(a.workloads.iter().cloned());
    if grid.machines.is_empty() {
        grid.machines.push("x86-64".into());
    }
    if grid.policies.is_empty() {
        grid.policies.push("clock".into());
    }
    let mut sources: Vec<SourceSpec> = grid.traces.iter().cloned().map(SourceSpec::Trace).collect();
    for w in &grid.workloads {
        if WorkloadKind::parse(w).is_none() {
            bail!("workload `{w}` is not a synthetic workload (seq, stride, uniform, zipf, hotcold, matmul, matmul-blocked, pointer-chase, hash, fork, recursion)");
        }
        sources.push(SourceSpec::Workload(w.clone()));
    }
    if sources.is_empty() {
        bail!("a sweep needs traces (--trace) or workloads (--workload)");
    }
    let rams: Vec<Option<String>> = if grid.ram.is_empty() {
        vec![None]
    } else {
        grid.ram.iter().cloned().map(Some).collect()
    };
    let tlbs: Vec<Option<u32>> = if grid.tlb_entries.is_empty() {
        vec![None]
    } else {
        grid.tlb_entries.iter().copied().map(Some).collect()
    };
    let mut points = Vec::new();
    for m in &grid.machines {
        for r in &rams {
            for p in &grid.policies {
                for t in &tlbs {
                    for s in &sources {
                        points.push(Point {
                            index: points.len(),
                            machine: m.clone(),
                            ram: r.clone(),
                            policy: p.clone(),
                            tlb_entries: *t,
                            source: s.clone(),
                        });
                    }
                }
            }
        }
    }
    if let Some(s) = &a.shard {
        let (k, n) = parse_shard(s)?;
        points.retain(|p| p.index % n == k - 1);
    }
    let mut params = a.params.clone();
    if let Some(n) = grid.accesses {
        params.accesses = n;
    }
    if let Some(s) = grid.seed {
        params.seed = s;
    }
    if let Some(f) = &grid.footprint {
        params.footprint = f.clone();
    }
    let swap = grid.swap.clone().unwrap_or_else(|| a.swap.clone());
    let storage = grid.storage.clone().unwrap_or_else(|| a.storage.clone());
    let format = parse_format(a.format.as_deref())?;
    // Check every configuration before running any, so a typo fails at once.
    for p in &points {
        spec_of(p)?;
        kernel_args(p, &swap, &storage).config()?;
    }
    let rows: Vec<Row> = points
        .par_iter()
        .map(|p| one(p, &params, &swap, &storage, format))
        .collect();
    let mut out: Box<dyn Write> = match &a.output {
        None => Box::new(std::io::stdout().lock()),
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
        )),
    };
    if a.csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    for r in &rows {
        if a.csv {
            writeln!(out, "{}", r.csv())?;
        } else {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        }
    }
    out.flush()?;
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        eprintln!(
            "{failed} of {} runs failed (see their error field)",
            rows.len()
        );
    }
    Ok(())
}

fn spec_of(p: &Point) -> Result<vmsim::hw::MachineSpec> {
    let spec = load_machine(&p.machine, p.ram.as_deref())?;
    Ok(match p.tlb_entries {
        None => spec,
        Some(n) => spec.with_tlb_entries(1, n, "--tlb-entries")?,
    })
}

fn kernel_args(p: &Point, swap: &str, storage: &str) -> KernelArgs {
    KernelArgs {
        wx: false,
        no_zero_page: false,
        overcommit: crate::run::OvercommitArg::Heuristic,
        swap: swap.to_string(),
        swap_file: None,
        policy: p.policy.clone(),
        storage: storage.to_string(),
    }
}

fn one(
    p: &Point,
    params: &WorkloadArgs,
    swap: &str,
    storage: &str,
    format: Option<vmsim::trace::Format>,
) -> Row {
    let mut row = Row {
        run: p.index,
        machine: p.machine.clone(),
        ram_bytes: 0,
        policy: p.policy.clone(),
        tlb_entries: p.tlb_entries,
        source: match &p.source {
            SourceSpec::Trace(t) => t.display().to_string(),
            SourceSpec::Workload(w) => w.clone(),
        },
        accesses: 0,
        tlb_l1_misses: 0,
        walks: 0,
        minor_faults: 0,
        major_faults: 0,
        cow_faults: 0,
        segv: 0,
        swap_ins: 0,
        swap_outs: 0,
        evictions: 0,
        peak_rss_pages: 0,
        cycles: 0,
        miss_ratio: 0.0,
        error: None,
    };
    let result = (|| -> Result<RunSummary> {
        let spec = spec_of(p)?;
        row.ram_bytes = spec.ram_bytes;
        let config = kernel_args(p, swap, storage).config()?;
        let source = match &p.source {
            SourceSpec::Trace(t) => Source::Trace(t, format),
            SourceSpec::Workload(w) => {
                let kind = WorkloadKind::parse(w).ok_or_else(|| anyhow!("unknown workload {w}"))?;
                Source::Synth(params.synth(kind)?)
            }
        };
        let r = replay(spec, config, &source, 0, false)?;
        Ok(RunSummary::from_kernel(&r.kernel, r.stats.accesses))
    })();
    match result {
        Err(e) => row.error = Some(format!("{e:#}")),
        Ok(s) => {
            row.accesses = s.accesses;
            row.tlb_l1_misses = s
                .tlb
                .iter()
                .filter(|t| t.level == 1)
                .map(|t| t.misses)
                .sum();
            row.walks = s.walks;
            row.minor_faults = s.faults.minor;
            row.major_faults = s.faults.major;
            row.cow_faults = s.faults.cow;
            row.segv = s.faults.segv;
            row.swap_ins = s.swap.ins;
            row.swap_outs = s.swap.outs;
            row.evictions = s.evictions;
            row.peak_rss_pages = s
                .processes
                .iter()
                .map(|p| p.peak_rss_pages)
                .max()
                .unwrap_or(0);
            row.cycles = s.cycles;
            row.miss_ratio = if s.accesses == 0 {
                0.0
            } else {
                (s.faults.minor + s.faults.major) as f64 / s.accesses as f64
            };
        }
    }
    row
}
