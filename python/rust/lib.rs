//! `vmsim._vmsim`: the native half of vmsim's Python package, a thin layer over the
//! same library calls the `vmsim` command makes. Options arrive as text, as they would
//! be written on the command line (the Python half turns numbers, switches and paths
//! into text), and are checked by the library's parsers ([`vmsim::options`]); reports
//! leave as JSON text, which the Python half turns into dicts and DataFrames.
//!
//! Every simulation runs with the GIL released ([`Python::detach`]). Every error is
//! raised as one of the package's exception classes (`vmsim/_errors.py`) with the
//! library's message; nothing the caller gives is unwrapped.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use vmsim::explain::Explainer;
use vmsim::options::{self as o, defaults};
use vmsim::policy::PolicyKind;
use vmsim::run::{RunError, RunOptions};
use vmsim::sweep::{Grid, SweepError};
use vmsim::trace::{Event, EventReader, MapKind, TraceError};

/// Which of the package's exception classes an error is raised as.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// An option's name or value (`OptionError`, a `ValueError`).
    Option,
    /// An input file that does not exist (`MissingFileError`, a `FileNotFoundError`).
    MissingFile,
    /// A trace that cannot be read (`TraceError`, a `ValueError`).
    Trace,
    /// Anything else (`Error`).
    Other,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Option => "OptionError",
            Kind::MissingFile => "MissingFileError",
            Kind::Trace => "TraceError",
            Kind::Other => "Error",
        }
    }

    /// A file error when one of `inputs` is missing, else `self`.
    fn or_missing(self, inputs: &[&Path]) -> Kind {
        if inputs.iter().any(|p| !p.exists()) {
            Kind::MissingFile
        } else {
            self
        }
    }
}

/// The exception `kind` with `message` (a `RuntimeError` should the package's classes
/// be missing, as when the native module is imported alone).
fn raise(py: Python<'_>, kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    let class = py
        .import("vmsim._errors")
        .and_then(|m| m.getattr(kind.class()));
    match class.and_then(|c| c.call1((message.clone(),))) {
        Ok(value) => PyErr::from_value(value),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

/// `error` raised as `kind`, its causes said once as the command says them.
fn fail(py: Python<'_>, kind: Kind, error: &dyn std::error::Error) -> PyErr {
    raise(py, kind, vmsim::sweep::error_chain(error))
}

/// The value `value` of the keyword argument `name`, parsed as its kind.
fn parse<T>(
    py: Python<'_>,
    name: &str,
    value: &str,
    kind: impl Fn(&str) -> Result<T, String>,
) -> PyResult<T> {
    kind(value).map_err(|reason| raise(py, Kind::Option, o::refused(name, value, &reason)))
}

/// `value` parsed as `kind`, or the option's default when it is not given.
fn parse_or<T>(
    py: Python<'_>,
    name: &str,
    value: Option<&str>,
    default: &str,
    kind: impl Fn(&str) -> Result<T, String>,
) -> PyResult<T> {
    parse(py, name, value.unwrap_or(default), kind)
}

/// Each of `values` parsed as `kind`.
fn parse_all<T>(
    py: Python<'_>,
    name: &str,
    values: &[String],
    kind: impl Fn(&str) -> Result<T, String>,
) -> PyResult<Vec<T>> {
    values.iter().map(|v| parse(py, name, v, &kind)).collect()
}

/// How a trace's error is raised: a missing file, or a trace that cannot be read.
fn trace_kind(e: &TraceError, path: &Path) -> Kind {
    match e {
        TraceError::UnknownFormat { .. } => Kind::Trace,
        _ => Kind::Trace.or_missing(&[path]),
    }
}

/// How a run's error is raised.
fn run_kind(e: &RunError, inputs: &[&Path]) -> Kind {
    match e {
        RunError::Trace(t) => match inputs.first() {
            Some(path) => trace_kind(t, path),
            None => Kind::Trace,
        },
        RunError::Flag { .. }
        | RunError::Refused(_)
        | RunError::UnknownOption { .. }
        | RunError::TraceAndWorkload(_)
        | RunError::Synth(_)
        | RunError::Server(_)
        | RunError::User(_)
        | RunError::Machine(_)
        | RunError::SwapFile(_) => Kind::Option,
        _ => Kind::Other,
    }
}

/// Runs a trace or a workload (`vmsim run`): `options` are (flag name, value) pairs
/// (see `RunOptions::set`). Returns the report as JSON (`vmsim run --json`) and, when
/// `interval` is among the options, the interval rows as CSV.
#[pyfunction]
fn run(py: Python<'_>, options: Vec<(String, String)>) -> PyResult<(String, Option<String>)> {
    let mut opts = RunOptions::default();
    for (name, value) in &options {
        opts.set(name, value)
            .map_err(|e| fail(py, run_kind(&e, &[]), &e))?;
    }
    let trace = opts.trace.clone();
    let inputs: Vec<&Path> = trace.as_deref().into_iter().collect();
    let interval = opts.interval.is_some();
    let report = py
        .detach(|| {
            let config = opts.resolve()?;
            vmsim::run::execute(config, &mut |_| {})
        })
        .map_err(|e| fail(py, run_kind(&e, &inputs), &e))?;
    let json =
        serde_json::to_string(&report.json).map_err(|e| raise(py, Kind::Other, e.to_string()))?;
    let rows = interval.then(|| vmsim::run::interval_csv(&report.rows));
    Ok((json, rows))
}

/// The page stream of `trace` as `vmsim policy` and `vmsim mrc` read it.
fn pages(
    py: Python<'_>,
    trace: &Path,
    format: Option<&str>,
    pid: Option<&str>,
    page_size: Option<&str>,
) -> PyResult<vmsim::policy::PageTrace> {
    let pid = match pid {
        Some(p) => Some(parse(py, "pid", p, |t| {
            u32::try_from(o::whole(t)?).map_err(|_| format!("must be at most {}", u32::MAX))
        })?),
        None => None,
    };
    let page_size = parse_or(
        py,
        "page_size",
        page_size,
        defaults::PAGE_SIZE,
        o::page_size,
    )?;
    let path = trace.to_path_buf();
    let format = format.map(str::to_string);
    py.detach(|| vmsim::trace::pages::read_pages(&path, format.as_deref(), pid, page_size))
        .map_err(|e| {
            let kind = match &e {
                vmsim::trace::pages::PagesError::UnknownFormat(_) => Kind::Option,
                _ => Kind::Trace.or_missing(&[trace]),
            };
            fail(py, kind, &e)
        })
}

/// The policies named, as `vmsim policy --policy` takes them.
fn policies(py: Python<'_>, names: Option<Vec<String>>) -> PyResult<Vec<PolicyKind>> {
    let names = names.unwrap_or_else(|| vec![defaults::POLICY.to_string()]);
    names
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|e: String| raise(py, Kind::Option, format!("policies: {e}")))
        })
        .collect()
}

/// Replacement-only simulation (`vmsim policy --json`): one JSON object per (policy,
/// size), in order, as a JSON array.
#[pyfunction]
#[pyo3(signature = (trace, policies=None, frames=vec![], window=None, pff_threshold=None, seed=None, format=None, pid=None, page_size=None))]
#[allow(clippy::too_many_arguments)]
fn policy(
    py: Python<'_>,
    trace: PathBuf,
    policies: Option<Vec<String>>,
    frames: Vec<String>,
    window: Option<Vec<String>>,
    pff_threshold: Option<Vec<String>>,
    seed: Option<String>,
    format: Option<String>,
    pid: Option<String>,
    page_size: Option<String>,
) -> PyResult<String> {
    let kinds = self::policies(py, policies)?;
    let frames = parse_all(py, "frames", &frames, o::count_usize)?;
    let window = window.unwrap_or_else(|| vec![defaults::WINDOW.into()]);
    let windows = parse_all(py, "window", &window, o::count_usize)?;
    let pff = pff_threshold.unwrap_or_else(|| vec![defaults::PFF_THRESHOLD.into()]);
    let thresholds = parse_all(py, "pff_threshold", &pff, o::count_usize)?;
    let seed = parse_or(py, "seed", seed.as_deref(), defaults::SEED, o::whole)?;
    let specs = vmsim::policy::grid(&kinds, &frames, &windows, &thresholds, seed)
        .map_err(|e| raise(py, Kind::Option, e))?;
    let t = pages(
        py,
        &trace,
        format.as_deref(),
        pid.as_deref(),
        page_size.as_deref(),
    )?;
    let results = py.detach(|| vmsim::policy::simulate_all(&specs, &t));
    serde_json::to_string(&results).map_err(|e| raise(py, Kind::Other, e.to_string()))
}

/// Miss-ratio curves (`vmsim mrc --json`), as a JSON object.
#[pyfunction]
#[pyo3(signature = (trace, policies=None, frames=vec![], points=None, sample=None, format=None, pid=None, page_size=None))]
#[allow(clippy::too_many_arguments)]
fn mrc(
    py: Python<'_>,
    trace: PathBuf,
    policies: Option<Vec<String>>,
    frames: Vec<String>,
    points: Option<String>,
    sample: Option<String>,
    format: Option<String>,
    pid: Option<String>,
    page_size: Option<String>,
) -> PyResult<String> {
    let kinds = self::policies(py, policies)?;
    let frames = parse_all(py, "frames", &frames, o::count_usize)?;
    let points = parse_or(
        py,
        "points",
        points.as_deref(),
        defaults::POINTS,
        o::count_usize,
    )?;
    let sample = parse_or(py, "sample", sample.as_deref(), defaults::SAMPLE, o::rate)?;
    if let Some(k) = kinds.iter().find(|k| !k.fixed_frames()) {
        let e = vmsim::policy::mrc::CurveError::NoFixedFrames(*k);
        return Err(raise(py, Kind::Option, format!("policies: {e}")));
    }
    let t = pages(
        py,
        &trace,
        format.as_deref(),
        pid.as_deref(),
        page_size.as_deref(),
    )?;
    let name = trace.display().to_string();
    let curves = py
        .detach(|| vmsim::policy::mrc::curves(&t, &name, &kinds, &frames, points, sample))
        .map_err(|e| raise(py, Kind::Option, format!("{}: {e}", e.param())))?;
    Ok(curves.to_json().to_string())
}

/// Translates addresses step by step (`vmsim explain --json`): one JSON object per
/// address, in order.
#[pyfunction]
#[pyo3(signature = (addresses, machine=None, ram=None, access=None, mode=None, state=None))]
fn explain(
    py: Python<'_>,
    addresses: Vec<String>,
    machine: Option<String>,
    ram: Option<String>,
    access: Option<String>,
    mode: Option<String>,
    state: Option<PathBuf>,
) -> PyResult<Vec<String>> {
    let ram = match ram {
        Some(r) => Some(parse(py, "ram", &r, o::size)?),
        None => None,
    };
    let kind = parse_or(py, "access", access.as_deref(), defaults::ACCESS, o::access)?;
    let mode = parse_or(py, "mode", mode.as_deref(), defaults::MODE, o::mode)?;
    let machine = machine.unwrap_or_else(|| defaults::MACHINE.to_string());
    let vas = vmsim::explain::addresses(&addresses).map_err(|e| fail(py, Kind::Option, &e))?;
    let inputs: Vec<&Path> = state.as_deref().into_iter().collect();
    let lines = py
        .detach(|| {
            let mut e = match &state {
                Some(path) => Explainer::state(path)?,
                None => {
                    let spec = vmsim::run::load_machine(&machine, ram, None)?;
                    Explainer::demo(spec)?
                }
            };
            e.json_lines(&vas, kind, mode)
        })
        .map_err(|e| fail(py, Kind::Option.or_missing(&inputs), &e))?;
    Ok(lines.lines().map(str::to_string).collect())
}

/// Keys of a sweep's grid that set the synthetic workloads' parameters (beside
/// `Grid::KEYS`' `accesses`, `seed` and `footprint`), as `vmsim sweep`'s flags do.
const SWEEP_PARAMS: [&str; 11] = [
    "stride",
    "alpha",
    "hot_fraction",
    "hot_probability",
    "write_ratio",
    "matrix",
    "block",
    "depth",
    "frame",
    "workers",
    "quantum",
];

/// The grid `items` give: (key, values) pairs, a key of `Grid::KEYS` (or `machine`,
/// `policy`, `trace`, `workload`), `format`, or a synthetic workload's parameter.
fn grid(py: Python<'_>, items: &[(String, Vec<String>)]) -> PyResult<Grid> {
    let option = |e: &dyn std::error::Error| fail(py, Kind::Option, e);
    let mut params = RunOptions::default();
    let mut format = None;
    let mut keys = Vec::new();
    for (key, values) in items {
        let k = key.replace('-', "_");
        if k == "format" || SWEEP_PARAMS.contains(&k.as_str()) {
            let [value] = values.as_slice() else {
                let why = format!(
                    "{key}: {} values, and it is one setting for every run",
                    values.len()
                );
                return Err(raise(py, Kind::Option, why));
            };
            if k == "format" {
                format = Some(value.clone());
            } else {
                params.set(&k, value).map_err(|e| option(&e))?;
            }
        } else {
            keys.push((key, values));
        }
    }
    let mut g = Grid::new(params.params.synth(vmsim::trace::synth::WorkloadKind::Seq));
    g.format = vmsim::run::format_named(format.as_deref()).map_err(|e| option(&e))?;
    for (key, values) in keys {
        g.add(key, values, key).map_err(|e| match e {
            SweepError::Value { label, reason } if reason.starts_with("unknown key") => raise(
                py,
                Kind::Option,
                format!("{label}: {reason}, or format, {}", SWEEP_PARAMS.join(", ")),
            ),
            e => option(&e),
        })?;
    }
    Ok(g)
}

/// The number of runs of a sweep's grid, every value checked (see [`sweep_rows`]).
#[pyfunction]
fn sweep_size(py: Python<'_>, grid: Vec<(String, Vec<String>)>) -> PyResult<usize> {
    let g = self::grid(py, &grid)?;
    let points = py
        .detach(|| g.points())
        .map_err(|e| fail(py, Kind::Option, &e))?;
    Ok(points.len())
}

/// Runs a sweep's grid (all of its runs in parallel, or the runs `indices`, in that
/// order) and returns the rows as JSON lines (`vmsim sweep`).
#[pyfunction]
#[pyo3(signature = (grid, indices=None))]
fn sweep_rows(
    py: Python<'_>,
    grid: Vec<(String, Vec<String>)>,
    indices: Option<Vec<usize>>,
) -> PyResult<String> {
    let g = self::grid(py, &grid)?;
    let points = py
        .detach(|| g.points())
        .map_err(|e| fail(py, Kind::Option, &e))?;
    let chosen = match indices {
        None => points,
        Some(ix) => {
            let n = points.len();
            if let Some(i) = ix.iter().find(|&&i| i >= n) {
                let why = format!("run {i} is not in the grid of {n} runs");
                return Err(raise(py, Kind::Option, why));
            }
            ix.iter().map(|&i| points[i].clone()).collect()
        }
    };
    let rows = py.detach(|| g.run(&chosen));
    vmsim::sweep::rows_text(&rows, false).map_err(|e| raise(py, Kind::Other, e.to_string()))
}

/// Bytes of one event in a batch (see [`encode`]).
const RECORD: usize = 32;

/// The kinds of events, by the code [`encode`] writes (`vmsim.Trace.KINDS`).
const KINDS: [&str; 37] = [
    "read",
    "write",
    "fetch",
    "spawn",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "fork",
    "vfork",
    "exec",
    "exit",
    "switch",
    "shm_attach",
    "thread",
    "thread_exit",
    "exec_image",
    "mremap",
    "madvise",
    "shm_detach",
    "syscall",
    "file_read",
    "thp_disable",
    "file_readahead",
    "nonzero",
    "values",
    "file_size",
    "file_write",
    "file_cached",
    "sleep",
    "populate",
    "mlock",
    "mlockall",
    "file_shmem",
    "file_drop",
    "fadvise",
    "fs_metadata",
];

/// Appends `e` as one little-endian record of [`RECORD`] bytes: `kind` (u8, an index
/// of [`KINDS`]), `prot` (u8: 1 read, 2 write, 4 exec, 8 shared, 16 hugetlb, 32
/// noreserve), 2 bytes of padding,
/// `pid` (u32), `addr`, `size` and `arg` (u64 each); vmsim/__init__.py's `EVENT_DTYPE`
/// says what each holds for each kind.
fn encode(e: &Event, out: &mut Vec<u8>) {
    let (kind, prot, pid, addr, size, arg): (usize, u8, u32, u64, u64, u64) = match *e {
        Event::Access(a) => (a.kind as usize, 0, a.pid, a.va.0, u64::from(a.size), 0),
        Event::Spawn { pid } => (3, 0, pid, 0, 0, 0),
        Event::Mmap {
            pid,
            addr,
            len,
            prot,
            shared,
            kind,
        } => {
            let (file, huge) = match kind {
                MapKind::Anon => (0, 0),
                MapKind::File { file, .. } => (u64::from(file) + 1, 0),
                MapKind::HugeTlb {
                    page_bytes,
                    noreserve,
                } => (page_bytes, 16 | (u8::from(noreserve) << 5)),
            };
            (
                4,
                prot.0 | (u8::from(shared) << 3) | huge,
                pid,
                addr.0,
                len,
                file,
            )
        }
        Event::Munmap { pid, addr, len } => (5, 0, pid, addr.0, len, 0),
        Event::Mprotect {
            pid,
            addr,
            len,
            prot,
        } => (6, prot.0, pid, addr.0, len, 0),
        Event::Brk { pid, addr } => (7, 0, pid, addr.0, 0, 0),
        Event::Fork { parent, child } => (8, 0, parent, 0, 0, u64::from(child)),
        Event::Vfork { parent, child } => (9, 0, parent, 0, 0, u64::from(child)),
        Event::Exec { pid } => (10, 0, pid, 0, 0, 0),
        Event::Exit { pid, code } => (11, 0, pid, 0, 0, code as i64 as u64),
        Event::Switch { pid } => (12, 0, pid, 0, 0, 0),
        Event::ShmAttach {
            pid,
            key,
            addr,
            len,
            prot,
        } => (13, prot.0, pid, addr.0, len, u64::from(key)),
        Event::Thread { pid, tid } => (14, 0, pid, 0, 0, u64::from(tid)),
        Event::ThreadExit { pid, tid, .. } => (15, 0, pid, 0, 0, u64::from(tid)),
        Event::ExecImage { pid } => (16, 0, pid, 0, 0, 0),
        Event::Mremap {
            pid,
            old,
            new_len,
            new,
            ..
        } => (17, 0, pid, old.0, new_len, new.0),
        Event::Madvise {
            pid,
            addr,
            len,
            advice,
        } => (18, 0, pid, addr.0, len, u64::from(advice)),
        Event::ShmDetach { pid, addr } => (19, 0, pid, addr.0, 0, 0),
        Event::Syscall { pid, nr } => (20, 0, pid, 0, 0, u64::from(nr)),
        // The buffer a recorded read names is not in the row (the replay uses it).
        Event::FileRead {
            pid,
            file,
            offset,
            len,
            buf: _,
        } => (21, 0, pid, offset, len, u64::from(file)),
        Event::ThpDisable { pid, disable } => (22, 0, pid, 0, 0, u64::from(disable)),
        Event::FileReadahead { pid, file, bytes } => (23, 0, pid, 0, bytes, u64::from(file)),
        Event::Nonzero { pid, addr } => (24, 0, pid, addr.0, 0, 0),
        Event::Values { pid } => (25, 0, pid, 0, 0, 0),
        Event::FileSize { pid, file, bytes } => (26, 0, pid, 0, bytes, u64::from(file)),
        Event::FileWrite {
            pid,
            file,
            offset,
            len,
        } => (27, 0, pid, offset, len, u64::from(file)),
        Event::FileCached {
            pid,
            file,
            offset,
            len,
        } => (28, 0, pid, offset, len, u64::from(file)),
        Event::Sleep { pid, ns } => (29, 0, pid, 0, 0, ns),
        Event::Populate { pid, addr, len } => (30, 0, pid, addr.0, len, 0),
        Event::Mlock {
            pid,
            addr,
            len,
            mode,
        } => (31, 0, pid, addr.0, len, mode.code()),
        Event::Mlockall { pid, flags } => (32, 0, pid, 0, 0, u64::from(flags)),
        Event::FileShmem { pid, file } => (33, 0, pid, 0, 0, u64::from(file)),
        Event::FileDrop { pid, file } => (34, 0, pid, 0, 0, u64::from(file)),
        Event::Fadvise {
            pid,
            file,
            offset,
            len,
            advice,
        } => (
            35,
            0,
            pid,
            offset,
            len,
            u64::from(file) | u64::from(advice) << 32,
        ),
        Event::FsMetadata { pid, pages } => (36, 0, pid, 0, 0, pages),
    };
    out.push(kind as u8);
    out.push(prot);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&pid.to_le_bytes());
    out.extend_from_slice(&addr.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&arg.to_le_bytes());
}

/// A trace file read in batches of events (`vmsim.Trace` iterates one of these).
#[pyclass(module = "vmsim._vmsim")]
struct TraceReader {
    /// The file.
    path: PathBuf,
    /// The reader, its last batch and how much of it was handed out, behind a lock
    /// (Python may share the object between threads).
    state: Mutex<(EventReader, Vec<Event>, usize)>,
}

#[pymethods]
impl TraceReader {
    /// Opens `path` (any format vmsim reads, compressed or not; `format` names it when
    /// the name and contents do not tell).
    #[new]
    #[pyo3(signature = (path, format=None, page_size=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        format: Option<String>,
        page_size: Option<String>,
    ) -> PyResult<TraceReader> {
        let format =
            vmsim::run::format_named(format.as_deref()).map_err(|e| fail(py, Kind::Option, &e))?;
        let page_size = parse_or(
            py,
            "page_size",
            page_size.as_deref(),
            defaults::PAGE_SIZE,
            o::page_size,
        )?;
        let reader = py
            .detach(|| EventReader::open(&path, format, page_size))
            .map_err(|e| fail(py, trace_kind(&e, &path), &e))?;
        Ok(TraceReader {
            path,
            state: Mutex::new((reader, Vec::new(), 0)),
        })
    }

    /// The next batch of at most `limit` events (at least one), as packed records, or
    /// `None` at the end of the trace.
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        limit: usize,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let limit = limit.max(1);
        let result = py.detach(|| {
            let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let (reader, buffer, used) = &mut *guard;
            let mut out = Vec::new();
            while out.len() < limit * RECORD {
                if *used == buffer.len() {
                    reader.next_batch(buffer)?;
                    *used = 0;
                    if buffer.is_empty() {
                        break;
                    }
                }
                let take = (limit - out.len() / RECORD).min(buffer.len() - *used);
                for e in &buffer[*used..*used + take] {
                    encode(e, &mut out);
                }
                *used += take;
            }
            Ok::<_, TraceError>(out)
        });
        match result {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(Some(PyBytes::new(py, &bytes))),
            Err(e) => Err(fail(py, trace_kind(&e, &self.path), &e)),
        }
    }
}

/// The native module.
#[pymodule]
fn _vmsim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(policy, m)?)?;
    m.add_function(wrap_pyfunction!(mrc, m)?)?;
    m.add_function(wrap_pyfunction!(explain, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_size, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_rows, m)?)?;
    m.add_class::<TraceReader>()?;
    m.add("EVENT_KINDS", KINDS.to_vec())?;
    m.add("EVENT_RECORD_BYTES", RECORD)?;
    m.add("RUN_OPTIONS", RunOptions::NAMES.to_vec())?;
    m.add("SWEEP_KEYS", Grid::KEYS.to_vec())?;
    m.add(
        "SWEEP_COLUMNS",
        vmsim::sweep::CSV_HEADER.split(',').collect::<Vec<_>>(),
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
