//! `vmsim sweep`: a grid of runs (machines × RAM sizes × reclaim policies × TLB sizes
//! × traces and workloads) in parallel, one row per run, in grid order whatever the
//! finishing order, so the output is the same for the same grid.

use crate::args;
use crate::run::{check_swap, load_machine_as, parse_format, KernelArgs, WorkloadArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use vmsim::os::{ReclaimPolicy, Storage};
use vmsim::output::OutputFile;
use vmsim::report::RunSummary;
use vmsim::run::{replay, Workload};
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
    /// Swap size of every run (0: none; else whole pages).
    #[arg(long, default_value = "0", value_parser = args::size)]
    pub swap: u64,
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
    /// RAM bytes, and where the value came from (a flag or the file's key) for errors.
    ram: Option<(u64, String)>,
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

/// A value of the grid file's `key`, checked by `parse`, with the file and key named
/// in its error.
fn from_file<T>(
    file: &str,
    key: &str,
    text: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T> {
    parse(text).map_err(|e| anyhow!("{file}: {key}: `{text}`: {e}"))
}

pub fn run(a: SweepArgs) -> Result<()> {
    let config_name = a
        .config
        .as_ref()
        .map_or(String::new(), |p| p.display().to_string());
    let grid = match &a.config {
        None => GridFile::default(),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
    };
    let f = config_name.as_str();
    // Every value with the place it came from, checked before any run.
    let mut machines = grid.machines.clone();
    machines.extend(a.machines.iter().cloned());
    if machines.is_empty() {
        machines.push("x86-64".into());
    }
    let mut rams: Vec<Option<(u64, String)>> = Vec::new();
    for r in &grid.ram {
        rams.push(Some((
            from_file(f, "ram", r, args::size)?,
            format!("{f}: ram"),
        )));
    }
    rams.extend(a.ram.iter().map(|&r| Some((r, "--ram".to_string()))));
    if rams.is_empty() {
        rams.push(None);
    }
    let mut policies: Vec<(String, String)> = grid
        .policies
        .iter()
        .map(|p| (p.clone(), format!("{f}: policies")))
        .collect();
    policies.extend(
        a.policies
            .iter()
            .map(|p| (p.clone(), "--policy".to_string())),
    );
    if policies.is_empty() {
        policies.push(("clock".into(), "--policy".into()));
    }
    for (p, label) in &policies {
        if ReclaimPolicy::parse(p).is_none() {
            bail!("{label}: unknown reclaim policy `{p}` (fifo, clock, two-list)");
        }
    }
    let mut tlbs: Vec<Option<u32>> = Vec::new();
    for &t in &grid.tlb_entries {
        if t == 0 {
            bail!("{f}: tlb_entries: 0 entries cannot hold a translation");
        }
        tlbs.push(Some(t));
    }
    tlbs.extend(a.tlb_entries.iter().map(|&t| Some(t)));
    if tlbs.is_empty() {
        tlbs.push(None);
    }
    let mut sources: Vec<SourceSpec> = grid
        .traces
        .iter()
        .chain(&a.traces)
        .cloned()
        .map(SourceSpec::Trace)
        .collect();
    for (w, label) in grid
        .workloads
        .iter()
        .map(|w| (w, format!("{f}: workloads")))
        .chain(a.workloads.iter().map(|w| (w, "--workload".to_string())))
    {
        if WorkloadKind::parse(w).is_none() {
            bail!("{label}: `{w}` is not a synthetic workload (seq, stride, uniform, zipf, hotcold, matmul, matmul-blocked, pointer-chase, hash, fork, recursion)");
        }
        sources.push(SourceSpec::Workload(w.clone()));
    }
    if sources.is_empty() {
        bail!("a sweep needs traces (--trace) or workloads (--workload)");
    }
    let mut points = Vec::new();
    for m in &machines {
        for r in &rams {
            for (p, _) in &policies {
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
        if n == 0 {
            bail!("{f}: accesses: must be at least 1");
        }
        params.accesses = n;
    }
    if let Some(s) = grid.seed {
        params.seed = s;
    }
    if let Some(fp) = &grid.footprint {
        params.footprint = from_file(f, "footprint", fp, args::nonzero_size)?;
    }
    let (swap, swap_label) = match &grid.swap {
        Some(t) => (from_file(f, "swap", t, args::size)?, format!("{f}: swap")),
        None => (a.swap, "--swap".to_string()),
    };
    let (storage, storage_label) = match &grid.storage {
        Some(t) => (t.clone(), format!("{f}: storage")),
        None => (a.storage.clone(), "--storage".to_string()),
    };
    if Storage::parse(&storage).is_none() {
        bail!("{storage_label}: unknown storage `{storage}` (nvme, sata-ssd, hdd)");
    }
    let format = parse_format(a.format.as_deref())?;
    // Check every configuration before running any, so a typo fails at once.
    for p in &points {
        let spec = spec_of(p)?;
        check_swap(swap, spec.paging.page_size(), &swap_label)?;
    }
    let mut inputs: Vec<&Path> = a.config.as_deref().into_iter().collect();
    inputs.extend(grid.traces.iter().chain(&a.traces).map(PathBuf::as_path));
    let file_out = match &a.output {
        Some(path) => Some(OutputFile::create(path, &inputs)?),
        None => None,
    };
    let rows: Vec<Row> = points
        .par_iter()
        .map(|p| one(p, &params, swap, &storage, format))
        .collect();
    let mut text = String::new();
    if a.csv {
        text.push_str(CSV_HEADER);
        text.push('\n');
    }
    for r in &rows {
        if a.csv {
            text.push_str(&r.csv());
        } else {
            text.push_str(&serde_json::to_string(r)?);
        }
        text.push('\n');
    }
    match file_out {
        Some(mut out) => {
            out.write_all(text.as_bytes())
                .with_context(|| out.path().display().to_string())?;
            out.commit()?;
        }
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

fn spec_of(p: &Point) -> Result<vmsim::hw::MachineSpec> {
    let spec = match &p.ram {
        None => load_machine_as(&p.machine, None, "--ram")?,
        Some((bytes, label)) => load_machine_as(&p.machine, Some(*bytes), label)?,
    };
    Ok(match p.tlb_entries {
        None => spec,
        Some(n) => spec.with_tlb_entries(1, n, "--tlb-entries")?,
    })
}

fn kernel_args(p: &Point, swap: u64, storage: &str) -> KernelArgs {
    KernelArgs {
        wx: false,
        no_zero_page: false,
        overcommit: crate::run::OvercommitArg::Heuristic,
        swap,
        swap_file: None,
        force: false,
        policy: p.policy.clone(),
        storage: storage.to_string(),
    }
}

fn one(
    p: &Point,
    params: &WorkloadArgs,
    swap: u64,
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
        let config = kernel_args(p, swap, storage).config(spec.paging.page_size(), &[])?;
        let source = match &p.source {
            SourceSpec::Trace(t) => Workload::Trace {
                path: t.clone(),
                format,
            },
            SourceSpec::Workload(w) => {
                let kind = WorkloadKind::parse(w).ok_or_else(|| anyhow!("unknown workload {w}"))?;
                Workload::Synth(params.synth(kind)?)
            }
        };
        let r = replay(spec, config, &source, 0, &mut |_| {})?;
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
