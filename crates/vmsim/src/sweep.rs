//! A sweep: a grid of runs (machines × RAM sizes × reclaim policies × TLB sizes ×
//! traces and workloads), run in parallel, one row per run, in grid order whatever the
//! finishing order, so the output is the same for the same grid.
//!
//! Each axis value keeps where it came from (a flag, or a grid file and its key), so
//! an error names the place the user wrote it.

use crate::hw::MachineSpec;
use crate::os::KernelConfig;
use crate::report::RunSummary;
use crate::run::{replay, Workload};
use crate::size::parse_size;
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
    /// An empty grid with `params` for synthetic workloads: swap 0, NVMe storage.
    pub fn new(params: SynthParams) -> Grid {
        Grid {
            machines: Vec::new(),
            rams: Vec::new(),
            policies: Vec::new(),
            tlb_entries: Vec::new(),
            memory_maxes: Vec::new(),
            traces: Vec::new(),
            workloads: Vec::new(),
            swap: Labelled::new(0, "--swap"),
            storage: Labelled::new("nvme".into(), "--storage"),
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
        let at = |key: &str| format!("{name}: {key}");
        let size = |key: &str, text: &str| {
            parse_size(text).map_err(|e| bad(&at(key), format!("`{text}`: {e}")))
        };
        self.machines.extend(g.machines);
        for r in &g.ram {
            self.rams.push(Labelled::new(size("ram", r)?, at("ram")));
        }
        for p in g.policies {
            self.policies.push(Labelled::new(p, at("policies")));
        }
        for t in g.tlb_entries {
            self.tlb_entries.push(Labelled::new(t, at("tlb_entries")));
        }
        for m in &g.memory_max {
            let bytes = size("memory_max", m)?;
            self.memory_maxes
                .push(Labelled::new(bytes, at("memory_max")));
        }
        self.traces.extend(g.traces);
        for w in &g.workloads {
            self.add_workload(w, &at("workloads"))?;
        }
        if let Some(s) = &g.swap {
            self.swap = Labelled::new(size("swap", s)?, at("swap"));
        }
        if let Some(s) = g.storage {
            self.storage = Labelled::new(s, at("storage"));
        }
        if let Some(n) = g.accesses {
            if n == 0 {
                return Err(bad(&at("accesses"), "must be at least 1"));
            }
            self.params.accesses = n;
        }
        if let Some(s) = g.seed {
            self.params.seed = s;
        }
        if let Some(f) = &g.footprint {
            match size("footprint", f)? {
                0 => return Err(bad(&at("footprint"), "must be at least 1 byte")),
                bytes => self.params.footprint = bytes,
            }
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
    /// limits, sources),
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
        let default_policy = [Labelled::new("clock".to_string(), "--policy")];
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
                            for s in &sources {
                                points.push(Point {
                                    index: points.len(),
                                    machine: m.clone(),
                                    spec: spec.clone(),
                                    policy: p.value.clone(),
                                    tlb_entries: t.map(|t| t.value),
                                    kernel: KernelConfig {
                                        swap_bytes: self.swap.value,
                                        reclaim,
                                        storage,
                                        memory_max: mm.map(|m| m.value),
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

/// An error and its causes, each said once.
fn error_chain(e: &dyn std::error::Error) -> String {
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

/// The points of share `k` of `n` (runs k, k+n, k+2n, ... counting from 1).
pub fn shard(points: Vec<Point>, k: usize, n: usize) -> Vec<Point> {
    points
        .into_iter()
        .filter(|p| p.index % n == k - 1)
        .collect()
}

/// The share `text` names (`K/N`, 1 <= K <= N), written at `label`.
pub fn parse_shard(text: &str, label: &str) -> Result<(usize, usize), SweepError> {
    let share = text
        .split_once('/')
        .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)));
    match share {
        Some((k, n)) if k >= 1 && k <= n => Ok((k, n)),
        _ => Err(bad(label, format!("`{text}` is not K/N with 1 <= K <= N"))),
    }
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
    /// (minor + major faults) / accesses.
    pub miss_ratio: f64,
    /// Linux's counters for the run.
    #[serde(flatten)]
    pub linux: crate::linux::LinuxRow,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// The header of a sweep's CSV.
pub const CSV_HEADER: &str = "run,machine,ram_bytes,policy,tlb_entries,memory_max_bytes,source,accesses,tlb_l1_misses,walks,minor_faults,major_faults,cow_faults,segv,swap_ins,swap_outs,evictions,peak_rss_pages,cycles,miss_ratio,minflt,majflt,pgfault,pgmajfault,pswpin,pswpout,pgpgin,pgpgout,error";

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
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.run,
            csv_field(&self.machine),
            self.ram_bytes,
            self.policy,
            self.tlb_entries.map_or(String::new(), |t| t.to_string()),
            self.memory_max_bytes
                .map_or(String::new(), |m| m.to_string()),
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
        let rows = g.run(&points);
        assert_eq!(rows.iter().map(|r| r.run).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert!(rows.iter().all(|r| r.error.is_none() && r.accesses == 2000));
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
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            let e = parse_shard(bad, "--shard").unwrap_err().to_string();
            assert_eq!(e, format!("--shard: `{bad}` is not K/N with 1 <= K <= N"));
        }
        let e = grid().add_workload("nope", "--workload").unwrap_err();
        assert!(e.to_string().starts_with("--workload: `nope`"), "{e}");
    }
}
