//! A sweep: a grid of runs (machines × RAM sizes × reclaim policies × TLB sizes ×
//! memory limits × THP modes × traces and workloads), run in parallel, one row per run, in grid order whatever the
//! finishing order, so the output is the same for the same grid.
//!
//! Each axis value keeps where it came from (a flag, or a grid file and its key), so
//! an error names the place the user wrote it.

use crate::hw::MachineSpec;
use crate::os::thp::ThpMode;
use crate::os::KernelConfig;
use crate::report::RunSummary;
use crate::run::{replay, Workload};
use crate::trace::synth::{SynthParams, WorkloadKind};
use crate::trace::Format;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A value of the grid and where it was written (`--ram`, or `grid.toml: ram`).
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub label: String,
}

impl<T> Labelled<T> {
    /// `value`, written at `label`.
    pub fn new(value: T, label: impl Into<String>) -> Labelled<T> {
        Labelled {
            value,
            label: label.into(),
        }
    }
}

/// Why a grid cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A value is not what its key takes.
    #[error("{label}: {reason}")]
    Value {
        /// Where it was written.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// The grid file cannot be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A machine cannot be built.
    #[error(transparent)]
    Machine(#[from] crate::hw::MachineError),
}

fn bad(label: &str, reason: impl Into<String>) -> SweepError {
    SweepError::Value {
        label: label.to_string(),
        reason: reason.into(),
    }
}

/// The grid file (see docs/traces.md).
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
    memory_max: Vec<String>,
    #[serde(default)]
    thp: Vec<String>,
    #[serde(default)]
    cpus: Vec<u32>,
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

/// What runs at a point of the grid.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A trace file.
    Trace(PathBuf),
    /// A synthetic workload.
    Workload(WorkloadKind),
}

/// A grid: every axis, with the settings every run shares.
#[derive(Clone, Debug)]
pub struct Grid {
    /// Machines: presets or files.
    pub machines: Vec<String>,
    /// RAM sizes (none: each machine's own).
    pub rams: Vec<Labelled<u64>>,
    /// Reclaim policies.
    pub policies: Vec<Labelled<String>>,
    /// Entries of the first-level TLBs (none: each machine's own).
    pub tlb_entries: Vec<Labelled<u32>>,
    /// The workload's memory limits (`--memory-max`; none: no limit).
    pub memory_maxes: Vec<Labelled<u64>>,
    /// Transparent huge page modes (none: the default, `madvise`).
    pub thps: Vec<Labelled<ThpMode>>,
    /// CPU counts (none: each machine's own).
    pub cpus: Vec<Labelled<u32>>,
    /// Traces (run before the synthetic workloads).
    pub traces: Vec<PathBuf>,
    /// Synthetic workloads.
    pub workloads: Vec<WorkloadKind>,
    /// Swap of every run.
    pub swap: Labelled<u64>,
    /// Storage of every run.
    pub storage: Labelled<String>,
    /// The synthetic workloads' parameters (each run sets its own kind).
    pub params: SynthParams,
    /// The traces' format (`None`: told by names and contents).
    pub format: Option<Format>,
}

impl Grid {
    /// An empty grid with `params` for synthetic workloads: swap 0, the default storage.
    pub fn new(params: SynthParams) -> Grid {
        Grid {
            machines: Vec::new(),
            rams: Vec::new(),
            policies: Vec::new(),
            tlb_entries: Vec::new(),
            memory_maxes: Vec::new(),
            thps: Vec::new(),
            cpus: Vec::new(),
            traces: Vec::new(),
            workloads: Vec::new(),
            swap: Labelled::new(0, "--swap"),
            storage: Labelled::new(crate::options::defaults::STORAGE.into(), "--storage"),
            params,
            format: None,
        }
    }

    /// Adds the axes and settings of the grid file `path`; a value there is named in
    /// errors as `path: key`. Its settings replace the ones given before.
    pub fn add_file(&mut self, path: &Path) -> Result<(), SweepError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SweepError::File {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        let g: GridFile = toml::from_str(&text).map_err(|e| SweepError::File {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        let texts = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>();
        let paths = |v: &[PathBuf]| v.iter().map(|p| p.display().to_string()).collect();
        let one = |v: Option<String>| v.into_iter().collect::<Vec<_>>();
        let keys: [(&str, Vec<String>); 14] = [
            ("machines", g.machines),
            ("ram", g.ram),
            ("policies", g.policies),
            ("tlb_entries", texts(&g.tlb_entries)),
            ("memory_max", g.memory_max),
            ("thp", g.thp),
            ("cpus", texts(&g.cpus)),
            ("traces", paths(&g.traces)),
            ("workloads", g.workloads),
            ("swap", one(g.swap)),
            ("storage", one(g.storage)),
            ("accesses", one(g.accesses.map(|n| n.to_string()))),
            ("seed", one(g.seed.map(|n| n.to_string()))),
            ("footprint", one(g.footprint)),
        ];
        for (key, values) in keys {
            self.add(key, &values, &format!("{name}: {key}"))?;
        }
        Ok(())
    }

    /// The keys [`Grid::add`] takes: a grid file's (axes first, then the settings every
    /// run shares). `machine`, `policy`, `trace` and `workload` are taken for their
    /// plurals, as the flags name them.
    pub const KEYS: [&'static str; 14] = [
        "machines",
        "ram",
        "policies",
        "tlb_entries",
        "memory_max",
        "thp",
        "cpus",
        "traces",
        "workloads",
        "swap",
        "storage",
        "accesses",
        "seed",
        "footprint",
    ];

    /// How many of [`Grid::KEYS`] are axes (the rest are settings).
    const AXES: usize = 9;

    /// Adds `values` to the axis `key` (see [`Grid::KEYS`]), or sets the setting `key`
    /// (which takes at most one value) to its value, every value written as in a grid
    /// file or on the command line (`32MiB`, `clock`, `100000`). Errors name `label`,
    /// where the values were written.
    pub fn add(&mut self, key: &str, values: &[String], label: &str) -> Result<(), SweepError> {
        let key = match key.replace('-', "_").as_str() {
            "machine" => "machines".to_string(),
            "policy" => "policies".to_string(),
            "trace" => "traces".to_string(),
            "workload" => "workloads".to_string(),
            k => k.to_string(),
        };
        let Some(&key) = Self::KEYS.iter().find(|k| **k == key) else {
            return Err(bad(
                label,
                format!("unknown key `{key}` ({})", Self::KEYS.join(", ")),
            ));
        };
        let parse = |text: &String, kind: fn(&str) -> Result<u64, String>| {
            kind(text).map_err(|e| bad(label, crate::options::refusal(text, &e)))
        };
        let setting = if Self::KEYS[..Self::AXES].contains(&key) {
            None
        } else {
            match values {
                [] => return Ok(()),
                [v] => Some(v),
                _ => {
                    return Err(bad(
                        label,
                        format!(
                            "{} values, and {key} is one setting for every run (the axes are {})",
                            values.len(),
                            Self::KEYS[..Self::AXES].join(", ")
                        ),
                    ))
                }
            }
        };
        use crate::options as o;
        match (key, setting) {
            ("machines", _) => self.machines.extend(values.iter().cloned()),
            ("ram", _) => {
                for v in values {
                    self.rams.push(Labelled::new(parse(v, o::size)?, label));
                }
            }
            ("policies", _) => {
                let ps = values.iter().map(|p| Labelled::new(p.clone(), label));
                self.policies.extend(ps);
            }
            ("tlb_entries", _) => {
                for v in values {
                    let n = u32::try_from(parse(v, o::whole)?)
                        .map_err(|_| bad(label, format!("`{v}`: must be at most {}", u32::MAX)))?;
                    self.tlb_entries.push(Labelled::new(n, label));
                }
            }
            ("memory_max", _) => {
                for v in values {
                    let bytes = parse(v, o::size)?;
                    self.memory_maxes.push(Labelled::new(bytes, label));
                }
            }
            ("thp", _) => {
                for v in values {
                    let mode = o::thp(v).map_err(|e| bad(label, e))?;
                    self.thps.push(Labelled::new(mode, label));
                }
            }
            ("cpus", _) => {
                for v in values {
                    let n = u32::try_from(parse(v, o::count)?)
                        .map_err(|_| bad(label, format!("`{v}`: must be at most {}", u32::MAX)))?;
                    self.cpus.push(Labelled::new(n, label));
                }
            }
            ("traces", _) => self.traces.extend(values.iter().map(PathBuf::from)),
            ("workloads", _) => {
                for w in values {
                    self.add_workload(w, label)?;
                }
            }
            ("swap", Some(v)) => self.swap = Labelled::new(parse(v, o::size)?, label),
            ("storage", Some(v)) => self.storage = Labelled::new(v.clone(), label),
            ("accesses", Some(v)) => self.params.accesses = parse(v, o::count)?,
            ("seed", Some(v)) => self.params.seed = parse(v, o::whole)?,
            ("footprint", Some(v)) => self.params.footprint = parse(v, o::nonzero_size)?,
            _ => unreachable!("every key has an arm"),
        }
        Ok(())
    }

    /// Adds the synthetic workload `name`, written at `label`.
    pub fn add_workload(&mut self, name: &str, label: &str) -> Result<(), SweepError> {
        let kind = WorkloadKind::parse(name).ok_or_else(|| {
            let names: Vec<&str> = WorkloadKind::ALL.iter().map(|(_, n)| *n).collect();
            bad(
                label,
                format!(
                    "`{name}` is not a synthetic workload ({})",
                    names.join(", ")
                ),
            )
        })?;
        self.workloads.push(kind);
        Ok(())
    }

    /// The runs of the grid, in grid order (machines, RAM, policies, TLBs, memory
    /// limits, THP modes, sources),
    /// every one checked before any runs, so a typo fails at once.
    pub fn points(&self) -> Result<Vec<Point>, SweepError> {
        let sources: Vec<Source> = (self.traces.iter().cloned().map(Source::Trace))
            .chain(self.workloads.iter().map(|&w| Source::Workload(w)))
            .collect();
        if sources.is_empty() {
            return Err(bad(
                "sweep",
                "a sweep needs traces (--trace) or workloads (--workload)",
            ));
        }
        let storage = crate::run::storage(&self.storage.value)
            .map_err(|reason| bad(&self.storage.label, reason))?;
        let default_machine = ["x86-64".to_string()];
        let machines: &[String] = if self.machines.is_empty() {
            &default_machine
        } else {
            &self.machines
        };
        let default_policy = [Labelled::new(
            crate::options::defaults::RECLAIM.to_string(),
            "--policy",
        )];
        let policies = if self.policies.is_empty() {
            &default_policy[..]
        } else {
            &self.policies
        };
        let rams: Vec<Option<&Labelled<u64>>> = if self.rams.is_empty() {
            vec![None]
        } else {
            self.rams.iter().map(Some).collect()
        };
        let tlbs: Vec<Option<&Labelled<u32>>> = if self.tlb_entries.is_empty() {
            vec![None]
        } else {
            self.tlb_entries.iter().map(Some).collect()
        };
        let mems: Vec<Option<&Labelled<u64>>> = if self.memory_maxes.is_empty() {
            vec![None]
        } else {
            self.memory_maxes.iter().map(Some).collect()
        };
        let default_thp = [Labelled::new(ThpMode::default(), "--thp")];
        let thps = if self.thps.is_empty() {
            &default_thp[..]
        } else {
            &self.thps
        };
        let cpus: Vec<Option<&Labelled<u32>>> = if self.cpus.is_empty() {
            vec![None]
        } else {
            self.cpus.iter().map(Some).collect()
        };
        let mut points = Vec::new();
        for m in machines {
            for r in &rams {
                for p in policies {
                    let reclaim = crate::run::reclaim_policy(&p.value)
                        .map_err(|reason| bad(&p.label, reason))?;
                    for t in &tlbs {
                        let spec = machine(m, *r, *t)?;
                        let ps = spec.paging.page_size();
                        if self.swap.value % ps != 0 {
                            return Err(bad(
                                &self.swap.label,
                                format!(
                                    "{} bytes is not a whole number of {} pages (0 for no swap)",
                                    self.swap.value,
                                    crate::size::format_size(ps)
                                ),
                            ));
                        }
                        for mm in &mems {
                            if let Some(mm) = mm {
                                if mm.value < ps {
                                    return Err(bad(
                                        &mm.label,
                                        format!(
                                            "{} bytes is less than one {} page",
                                            mm.value,
                                            crate::size::format_size(ps)
                                        ),
                                    ));
                                }
                            }
                            let sources = &sources;
                            let cpus = &cpus;
                            for (thp, c, s) in thps.iter().flat_map(|t| {
                                cpus.iter()
                                    .flat_map(move |c| sources.iter().map(move |s| (t.value, c, s)))
                            }) {
                                let spec = match c {
                                    None => spec.clone(),
                                    Some(c) => spec.clone().with_cpus(c.value, &c.label)?,
                                };
                                points.push(Point {
                                    index: points.len(),
                                    machine: m.clone(),
                                    spec,
                                    policy: p.value.clone(),
                                    tlb_entries: t.map(|t| t.value),
                                    kernel: KernelConfig {
                                        swap_bytes: self.swap.value,
                                        reclaim,
                                        storage,
                                        memory_max: mm.map(|m| m.value),
                                        thp,
                                        store_values: false,
                                        ..KernelConfig::default()
                                    },
                                    source: s.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        Ok(points)
    }

    /// Runs `points` in parallel; the rows come in the points' order.
    pub fn run(&self, points: &[Point]) -> Vec<Row> {
        points.par_iter().map(|p| self.run_one(p)).collect()
    }

    fn run_one(&self, p: &Point) -> Row {
        let mut row = Row {
            run: p.index,
            machine: p.machine.clone(),
            ram_bytes: p.spec.ram_bytes,
            policy: p.policy.clone(),
            tlb_entries: p.tlb_entries,
            memory_max_bytes: p.kernel.memory_max,
            thp: p.kernel.thp.name().to_string(),
            cpus: p.spec.cpus,
            source: match &p.source {
                Source::Trace(t) => t.display().to_string(),
                Source::Workload(w) => w.name().to_string(),
            },
            ..Row::default()
        };
        let workload = match &p.source {
            Source::Trace(t) => Workload::Trace {
                path: t.clone(),
                format: self.format,
            },
            Source::Workload(kind) => Workload::Synth(SynthParams {
                kind: *kind,
                ..self.params
            }),
        };
        match replay(p.spec.clone(), p.kernel.clone(), &workload, 0, &mut |_| {}) {
            Err(e) => row.error = Some(error_chain(&e)),
            Ok(r) => row.fill(&RunSummary::from_kernel(&r.kernel, r.stats.accesses)),
        }
        row
    }
}

/// An error and its causes on one line, each said once (a cause its error already
/// quotes is not repeated): how a row, and the Python package, state an error.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut m = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !m.contains(&t) {
            m = format!("{m}: {t}");
        }
        cause = c.source();
    }
    m
}

/// The machine `name` with the RAM and first-level TLB sizes of a point.
fn machine(
    name: &str,
    ram: Option<&Labelled<u64>>,
    tlb: Option<&Labelled<u32>>,
) -> Result<MachineSpec, SweepError> {
    let mut spec = MachineSpec::load(name)?;
    if let Some(r) = ram {
        spec = spec.with_ram(r.value, &r.label)?;
    }
    if let Some(t) = tlb {
        if t.value == 0 {
            return Err(bad(&t.label, "0 entries cannot hold a translation"));
        }
        spec = spec.with_tlb_entries(1, t.value, &t.label)?;
    }
    Ok(spec)
}

/// One run of a grid.
#[derive(Clone, Debug)]
pub struct Point {
    /// Its place in the grid, from 0.
    pub index: usize,
    /// The machine as named.
    pub machine: String,
    /// The machine, resolved.
    pub spec: MachineSpec,
    /// The reclaim policy as named.
    pub policy: String,
    /// First-level TLB entries, if set.
    pub tlb_entries: Option<u32>,
    /// The kernel's configuration.
    pub kernel: KernelConfig,
    /// What runs.
    pub source: Source,
}

/// The points of share `k` of `n` (runs k, k+n, k+2n, ... counting from 1). `k` may
/// be 0, the same share as `n`, so that shares numbered 0 to n-1 (a Slurm job array's
/// `--array=0-(n-1)`) and 1 to n both cover the grid.
pub fn shard(points: Vec<Point>, k: usize, n: usize) -> Vec<Point> {
    let first = (k + n - 1) % n;
    points
        .into_iter()
        .filter(|p| p.index % n == first)
        .collect()
}

/// The share `text` names (`K/N`, 0 <= K <= N, N >= 1; 0 and N name the same share),
/// written at `label`.
pub fn parse_shard(text: &str, label: &str) -> Result<(usize, usize), SweepError> {
    let share = text
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
    match share {
        Some((k, n)) if n >= 1 && k <= n => Ok((k, n)),
        _ => Err(bad(
            label,
            format!("`{text}` is not K/N with 1 <= N and 0 <= K <= N"),
        )),
    }
}

/// Rows merged from shards' outputs: the text, and how many rows have an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The rows in grid order, in the shards' format (JSON lines, or CSV under its
    /// header): the bytes an unsharded sweep of the same grid prints.
    pub text: String,
    /// Rows.
    pub rows: usize,
    /// Rows whose run failed (their `error` is set).
    pub failed: usize,
}

/// Merges the outputs of a grid's shards (`vmsim sweep --shard K/N`), each given as
/// (name, contents), back into grid order. All must be JSON lines or all CSV with this
/// version's header (an empty output, a shard with no run, goes with either). Every
/// run must appear once and the runs must be 0, 1, 2, ... with none missing; with
/// `expected` (the grid's number of runs), exactly that many.
pub fn merge(inputs: &[(String, String)], expected: Option<usize>) -> Result<Merged, SweepError> {
    let mut csv: Option<(bool, &str)> = None;
    let mut rows: Vec<(usize, &str, String)> = Vec::new();
    for (name, text) in inputs {
        let mut lines = text.lines().enumerate().peekable();
        let Some(&(_, first)) = lines.peek() else {
            continue;
        };
        let is_csv = !first.starts_with('{');
        if is_csv {
            if first != CSV_HEADER {
                return Err(SweepError::File {
                    path: name.clone(),
                    reason:
                        "not a sweep's rows: neither JSON lines nor CSV under this version's header"
                            .into(),
                });
            }
            lines.next();
        }
        match csv {
            Some((was, other)) if was != is_csv => {
                let kind = |c: bool| if c { "CSV" } else { "JSON lines" };
                return Err(SweepError::File {
                    path: name.clone(),
                    reason: format!(
                        "its rows are {} and {other}'s are {}; a merge takes one format",
                        kind(is_csv),
                        kind(was)
                    ),
                });
            }
            _ => csv = Some((is_csv, name)),
        }
        for (i, line) in lines {
            let at = format!("{name}:{}", i + 1);
            let run = if is_csv {
                line.split(',').next().and_then(|r| r.parse().ok())
            } else {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("run")?.as_u64())
                    .and_then(|r| usize::try_from(r).ok())
            };
            let Some(run) = run else {
                return Err(SweepError::File {
                    path: at,
                    reason: "not a sweep's row (no run number)".into(),
                });
            };
            rows.push((run, line, at));
        }
    }
    rows.sort_by_key(|r| r.0);
    for w in rows.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(bad(
                "merge",
                format!("run {} is in both {} and {}", w[0].0, w[0].2, w[1].2),
            ));
        }
    }
    if let Some((i, _)) = rows.iter().enumerate().find(|(i, r)| r.0 != *i) {
        return Err(bad(
            "merge",
            format!("run {i} is missing: give every shard's output"),
        ));
    }
    if let Some(n) = expected {
        if rows.len() != n {
            return Err(bad(
                "merge",
                format!(
                    "the grid has {n} runs and the shards hold {}: give every shard's output of this grid",
                    rows.len()
                ),
            ));
        }
    }
    let is_csv = csv.is_some_and(|c| c.0);
    let mut text = String::new();
    if is_csv {
        text.push_str(CSV_HEADER);
        text.push('\n');
    }
    let mut failed = 0;
    for (_, line, _) in &rows {
        // The error is the last field: empty (CSV) or null (JSON) when the run worked.
        failed += usize::from(if is_csv {
            !line.ends_with(',')
        } else {
            !line.ends_with("\"error\":null}")
        });
        text.push_str(line);
        text.push('\n');
    }
    Ok(Merged {
        text,
        rows: rows.len(),
        failed,
    })
}

/// `rows` as a sweep prints them: JSON lines, or CSV under [`CSV_HEADER`].
pub fn rows_text(rows: &[Row], csv: bool) -> Result<String, serde_json::Error> {
    let mut text = String::new();
    if csv {
        text.push_str(CSV_HEADER);
        text.push('\n');
    }
    for r in rows {
        if csv {
            text.push_str(&r.csv());
        } else {
            text.push_str(&serde_json::to_string(r)?);
        }
        text.push('\n');
    }
    Ok(text)
}

/// One row of a sweep's output.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// The point's place in the grid.
    pub run: usize,
    /// The machine as named.
    pub machine: String,
    /// RAM.
    pub ram_bytes: u64,
    /// Reclaim policy.
    pub policy: String,
    /// First-level TLB entries, if set.
    pub tlb_entries: Option<u32>,
    /// The workload's memory limit, if set.
    pub memory_max_bytes: Option<u64>,
    /// The transparent huge page mode.
    pub thp: String,
    /// CPUs.
    pub cpus: u32,
    /// The trace or workload.
    pub source: String,
    /// Accesses replayed.
    pub accesses: u64,
    /// Misses of the first-level TLBs.
    pub tlb_l1_misses: u64,
    /// Page walks.
    pub walks: u64,
    /// Minor faults.
    pub minor_faults: u64,
    /// Major faults.
    pub major_faults: u64,
    /// Copy-on-write faults.
    pub cow_faults: u64,
    /// Accesses that got SIGSEGV.
    pub segv: u64,
    /// Pages swapped in.
    pub swap_ins: u64,
    /// Pages swapped out.
    pub swap_outs: u64,
    /// Pages evicted.
    pub evictions: u64,
    /// The largest resident set of any process, in pages.
    pub peak_rss_pages: u64,
    /// Cycles.
    pub cycles: u64,
    /// Simulated time, in nanoseconds (cycles at the clock, storage queues, sleeps).
    pub elapsed_ns: u64,
    /// (minor + major faults) / accesses.
    pub miss_ratio: f64,
    /// Linux's counters for the run.
    #[serde(flatten)]
    pub linux: crate::linux::LinuxRow,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// The header of a sweep's CSV.
pub const CSV_HEADER: &str = concat!(
    "run,machine,ram_bytes,policy,tlb_entries,memory_max_bytes,thp,cpus,source,accesses,tlb_l1_misses,walks,minor_faults,major_faults,cow_faults,segv,swap_ins,swap_outs,evictions,peak_rss_pages,cycles,elapsed_ns,miss_ratio,",
    crate::linux_row_csv_header!(),
    ",error"
);

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Row {
    fn fill(&mut self, s: &RunSummary) {
        self.accesses = s.accesses;
        self.tlb_l1_misses = s
            .tlb
            .iter()
            .filter(|t| t.level == 1)
            .map(|t| t.misses)
            .sum();
        self.walks = s.walks;
        self.minor_faults = s.faults.minor;
        self.major_faults = s.faults.major;
        self.cow_faults = s.faults.cow;
        self.segv = s.faults.segv;
        self.swap_ins = s.swap.ins;
        self.swap_outs = s.swap.outs;
        self.evictions = s.evictions;
        self.peak_rss_pages = s
            .processes
            .iter()
            .map(|p| p.peak_rss_pages)
            .max()
            .unwrap_or(0);
        self.cycles = s.cycles;
        self.elapsed_ns = s.elapsed_ns;
        self.linux = s.linux;
        self.miss_ratio = if s.accesses == 0 {
            0.0
        } else {
            (s.faults.minor + s.faults.major) as f64 / s.accesses as f64
        };
    }

    /// The row as CSV (see [`CSV_HEADER`]).
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.run,
            csv_field(&self.machine),
            self.ram_bytes,
            self.policy,
            self.tlb_entries.map_or(String::new(), |t| t.to_string()),
            self.memory_max_bytes
                .map_or(String::new(), |m| m.to_string()),
            self.thp,
            self.cpus,
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
            self.elapsed_ns,
            self.miss_ratio,
            self.linux.csv(),
            csv_field(self.error.as_deref().unwrap_or(""))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        let mut g = Grid::new(SynthParams {
            accesses: 2000,
            ..SynthParams::new(WorkloadKind::Seq)
        });
        g.add_workload("seq", "--workload").unwrap();
        g.add_workload("zipf", "--workload").unwrap();
        g.policies = vec![
            Labelled::new("clock".into(), "--policy"),
            Labelled::new("fifo".into(), "--policy"),
        ];
        g
    }

    #[test]
    fn csv_rows_have_as_many_fields_as_the_header_names() {
        let g = grid();
        let rows = g.run(&g.points().unwrap());
        let header = CSV_HEADER.split(',').count();
        for r in &rows {
            assert_eq!(r.csv().split(',').count(), header, "{}", r.csv());
        }
        assert!(CSV_HEADER.contains(crate::linux::LinuxRow::CSV_HEADER));
    }

    #[test]
    fn points_come_in_grid_order_and_shards_partition_them() {
        let g = grid();
        let points = g.points().unwrap();
        let names: Vec<(String, String)> = points
            .iter()
            .map(|p| {
                let s = match &p.source {
                    Source::Workload(w) => w.name().to_string(),
                    Source::Trace(t) => t.display().to_string(),
                };
                (p.policy.clone(), s)
            })
            .collect();
        assert_eq!(
            names,
            [
                ("clock", "seq"),
                ("clock", "zipf"),
                ("fifo", "seq"),
                ("fifo", "zipf")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let a = shard(points.clone(), 1, 2);
        let b = shard(points.clone(), 2, 2);
        assert_eq!(a.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(b.iter().map(|p| p.index).collect::<Vec<_>>(), [1, 3]);
        let zero = shard(points.clone(), 0, 2);
        assert_eq!(zero.iter().map(|p| p.index).collect::<Vec<_>>(), [1, 3]);
        let rows = g.run(&points);
        assert_eq!(rows.iter().map(|r| r.run).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert!(rows.iter().all(|r| r.error.is_none() && r.accesses == 2000));
    }

    #[test]
    fn shards_outputs_merge_back_into_the_whole_grids() {
        let g = grid();
        let points = g.points().unwrap();
        let rows = g.run(&points);
        for csv in [false, true] {
            let whole = rows_text(&rows, csv).unwrap();
            // Slurm's ids 0..n-1; a third share of four runs, and one shard empty.
            for n in [3, 5] {
                let outputs: Vec<(String, String)> = (0..n)
                    .rev()
                    .map(|k| {
                        let mine: Vec<Row> = shard(points.clone(), k, n)
                            .iter()
                            .map(|p| rows[p.index].clone())
                            .collect();
                        (format!("shard-{k}"), rows_text(&mine, csv).unwrap())
                    })
                    .collect();
                let m = merge(&outputs, Some(points.len())).unwrap();
                assert_eq!(m.text, whole);
                assert_eq!((m.rows, m.failed), (4, 0));
                // A shard left out is refused: by the gap it leaves (shard-2 of 3 holds
                // run 1), or, for the last runs (shard-4 of 5 holds run 3), by the
                // grid's size only.
                let e = merge(&outputs[1..], Some(4)).unwrap_err().to_string();
                if n == 3 {
                    assert_eq!(e, "merge: run 1 is missing: give every shard's output");
                    assert_eq!(merge(&outputs[1..], None).unwrap_err().to_string(), e);
                } else {
                    assert!(e.starts_with("merge: the grid has 4 runs and the shards hold 3"));
                    assert_eq!(merge(&outputs[1..], None).unwrap().rows, 3);
                }
                let mut twice = outputs.clone();
                twice.push(outputs[n - 2].clone());
                let e = merge(&twice, None).unwrap_err().to_string();
                assert!(e.starts_with("merge: run 0 is in both shard-1:"), "{e}");
            }
        }
        let json = rows_text(&rows[..1], false).unwrap();
        let csv = rows_text(&rows[1..], true).unwrap();
        let e = merge(&[("a".into(), json), ("b".into(), csv)], None).unwrap_err();
        assert!(e.to_string().contains("a merge takes one format"), "{e}");
        let e = merge(&[("x".into(), "run,foo\n0,1\n".into())], None).unwrap_err();
        assert!(e.to_string().starts_with("x: not a sweep's rows"), "{e}");
        let mut failed = rows[..2].to_vec();
        failed[1].error = Some("boom, it failed".into());
        for csv in [false, true] {
            let text = rows_text(&failed, csv).unwrap();
            assert_eq!(merge(&[("a".into(), text)], Some(2)).unwrap().failed, 1);
        }
    }

    #[test]
    fn memory_limits_are_an_axis_that_reaches_the_kernel_and_the_rows() {
        let mut g = grid();
        g.memory_maxes = vec![
            Labelled::new(1 << 20, "--memory-max"),
            Labelled::new(2 << 20, "--memory-max"),
        ];
        let points = g.points().unwrap();
        assert_eq!(points.len(), 8);
        let limits: Vec<_> = points.iter().map(|p| p.kernel.memory_max).collect();
        assert_eq!(
            &limits[..4],
            [Some(1 << 20), Some(1 << 20), Some(2 << 20), Some(2 << 20)]
        );
        let rows = g.run(&points[..2]);
        assert_eq!(rows[0].memory_max_bytes, Some(1 << 20));
        assert!(
            rows[0].csv().split(',').nth(5) == Some("1048576"),
            "{}",
            rows[0].csv()
        );
        g.memory_maxes = vec![Labelled::new(100, "grid.toml: memory_max")];
        let e = g.points().unwrap_err().to_string();
        assert!(
            e.contains("grid.toml: memory_max") && e.contains("100 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_is_blamed_where_it_was_written() {
        let mut g = grid();
        g.policies = vec![Labelled::new("lru".into(), "grid.toml: policies")];
        let e = g.points().unwrap_err().to_string();
        assert!(
            e.starts_with("grid.toml: policies: unknown reclaim policy `lru`"),
            "{e}"
        );
        let mut g = grid();
        g.swap = Labelled::new(6000, "grid.toml: swap");
        let e = g.points().unwrap_err().to_string();
        assert!(e.starts_with("grid.toml: swap: 6000 bytes"), "{e}");
        assert_eq!(parse_shard("2/3", "--shard").unwrap(), (2, 3));
        assert_eq!(parse_shard("0/3", "--shard").unwrap(), (0, 3));
        for bad in ["4/3", "3", "a/b", "1/0", "-1/3"] {
            let e = parse_shard(bad, "--shard").unwrap_err().to_string();
            assert_eq!(
                e,
                format!("--shard: `{bad}` is not K/N with 1 <= N and 0 <= K <= N")
            );
        }
        let e = grid().add_workload("nope", "--workload").unwrap_err();
        assert!(e.to_string().starts_with("--workload: `nope`"), "{e}");
    }
}
