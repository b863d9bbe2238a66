//! A run, resolved once: a machine, a kernel configuration and what runs on them (a
//! trace, a synthetic workload, the forking server, the hardware-only demo, an
//! allocator or a collector), and the report of what happened as JSON and as text.
//! `vmsim run` and `vmsim sweep` are this module's callers.

use crate::hw::MachineSpec;
use crate::os::{BootError, Errno, Kernel, KernelConfig, Program};
use crate::report::{HwStats, KernelStats, RunSummary};
use crate::sim::{IntervalRow, Sim, SimStats};
use crate::trace::synth::{Generator, SynthError, SynthParams};
use crate::trace::{EventReader, Format, TraceError};
use crate::user::workload::{AllocParams, GcParams, WorkloadError};
use crate::workload::{try_run_server_with, ServerError, ServerParams};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The machine did not boot.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A synthetic workload's parameters do not fit.
    #[error(transparent)]
    Synth(#[from] SynthError),
    /// The server's parameters do not fit.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// An allocator's or collector's parameters do not fit.
    #[error(transparent)]
    User(#[from] WorkloadError),
    /// The demo address space could not be built.
    #[error("building the demo address space: {0}")]
    Demo(crate::hw::MapError),
    /// [`replay`] was given a workload that is not a trace or a synthetic workload.
    #[error("only a trace or a synthetic workload is replayed event by event")]
    NotReplayed,
    /// The first process could not start.
    #[error("starting the process: {0}")]
    Spawn(Errno),
}

/// What runs.
#[derive(Clone, Debug)]
pub enum Workload {
    /// A trace file, in `format` (`None`: told by its name and contents).
    Trace {
        /// The file.
        path: PathBuf,
        /// Its format.
        format: Option<Format>,
    },
    /// A synthetic workload.
    Synth(SynthParams),
    /// The forking server (`accesses` worker accesses).
    Server(ServerParams),
    /// The hardware-only demo (`accesses` accesses over a fixed address space).
    Hw,
    /// A malloc allocator inside a simulated process.
    Alloc(AllocParams),
    /// A garbage collector inside a simulated process.
    Gc(GcParams),
}

/// A run, resolved from flags, files and presets.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The machine.
    pub spec: MachineSpec,
    /// The kernel's configuration.
    pub kernel: KernelConfig,
    /// What runs.
    pub workload: Workload,
    /// Accesses (server and hw; the other workloads carry their own).
    pub accesses: u64,
    /// The seed (server, hw; reported for alloc and gc).
    pub seed: u64,
    /// Take the counters every `interval` accesses (0: never; traces and synthetic
    /// workloads).
    pub interval: u64,
}

/// What a run reports.
#[derive(Clone, Debug)]
pub struct Report {
    /// The report as one JSON object (`vmsim run --json`).
    pub json: Value,
    /// The report as text (`vmsim run`).
    pub text: String,
    /// The counters every `interval` accesses.
    pub rows: Vec<IntervalRow>,
}

/// What a replay produced.
pub struct Replay {
    /// The kernel after the run.
    pub kernel: Kernel,
    /// The replay's own counters.
    pub stats: SimStats,
    /// The counters every `interval` accesses.
    pub rows: Vec<IntervalRow>,
    /// What ran: the trace's path or the workload's name.
    pub source: String,
}

/// Boots `spec` with `config` and replays a trace or a synthetic workload through it,
/// calling `progress` with the events so far after each batch.
pub fn replay(
    spec: MachineSpec,
    config: KernelConfig,
    workload: &Workload,
    interval: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Replay, RunError> {
    let mut k = Kernel::try_boot(spec, config)?;
    let (mut reader, name) = match workload {
        Workload::Trace { path, format } => (
            EventReader::open(path, *format, k.page_size())?,
            path.display().to_string(),
        ),
        Workload::Synth(p) => (
            EventReader::Synth(Box::new(Generator::for_kernel(*p, &k)?)),
            p.kind.name().to_string(),
        ),
        _ => return Err(RunError::NotReplayed),
    };
    let (stats, rows) = {
        let mut sim = Sim::new(&mut k, interval);
        sim.run(&mut reader, progress)?;
        (sim.stats.clone(), std::mem::take(&mut sim.rows))
    };
    Ok(Replay {
        kernel: k,
        stats,
        rows,
        source: name,
    })
}

/// Adds `fields` to the JSON object `v`.
fn with(mut v: Value, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    if let Some(o) = v.as_object_mut() {
        for (k, x) in fields {
            o.insert(k.into(), x);
        }
    }
    v
}

fn json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("reports serialise")
}

/// Runs `c`, calling `progress` with the events replayed so far (traces and synthetic
/// workloads).
pub fn execute(c: RunConfig, progress: &mut dyn FnMut(u64)) -> Result<Report, RunError> {
    let machine = c.spec.name.clone();
    let summary_line = c.spec.summary();
    match &c.workload {
        Workload::Trace { .. } | Workload::Synth(_) => {
            let (kind, seed) = match &c.workload {
                Workload::Synth(p) => ("workload", Some(p.seed)),
                _ => ("trace", None),
            };
            let r = replay(c.spec, c.kernel, &c.workload, c.interval, progress)?;
            let k = &r.kernel;
            let summary = RunSummary::from_kernel(k, r.stats.accesses);
            let hw = HwStats::from_mmu(&k.machine().mmu);
            let kernel = KernelStats::from_kernel(k);
            let mut fields = vec![
                ("machine", machine.clone().into()),
                (kind, r.source.clone().into()),
                ("replay", json(&r.stats)),
                ("hardware", json(&hw)),
                ("kernel", json(&kernel)),
            ];
            if let Some(s) = seed {
                fields.push(("seed", s.into()));
            }
            let mut text = format!("machine {machine}: {summary_line}\n{kind}: {}\n", r.source);
            text += &replay_text(&r.stats);
            text += &format!("\n{}\n{}", hw.to_text(), kernel.to_text());
            Ok(Report {
                json: with(json(&summary), fields),
                text,
                rows: r.rows,
            })
        }
        Workload::Server(params) => {
            let mut k = Kernel::try_boot(c.spec, c.kernel)?;
            let layout = try_run_server_with(&mut k, c.accesses, c.seed, *params)?;
            let hw = HwStats::from_mmu(&k.machine().mmu);
            let kernel = KernelStats::from_kernel(&k);
            let head = RunSummary::from_kernel(&k, hw.accesses);
            let json = with(
                json(&head),
                [
                    ("machine", machine.clone().into()),
                    ("workload", "server".into()),
                    ("seed", c.seed.into()),
                    ("workers", layout.workers.len().into()),
                    ("boot", json(&k.boot_log())),
                    ("hardware", json(&hw)),
                    ("kernel", json(&kernel)),
                ],
            );
            let mut text = format!(
                "machine {machine}: {summary_line}\nworkload: server with {} workers ({} shared cache pages, {} buffer pages each), {} worker accesses, seed {}\n\nboot\n",
                layout.workers.len(),
                layout.cache_pages,
                layout.buffer_pages,
                c.accesses,
                c.seed
            );
            for line in k.boot_log() {
                let _ = writeln!(text, "  {line}");
            }
            text += &format!("\n{}\n{}", hw.to_text(), kernel.to_text());
            Ok(Report {
                json,
                text,
                rows: Vec::new(),
            })
        }
        Workload::Hw => {
            let mut demo = crate::demo::Demo::new(c.spec).map_err(RunError::Demo)?;
            demo.run(c.accesses, c.seed);
            let stats = HwStats::from_mmu(&demo.machine.mmu);
            let json = serde_json::json!({
                "machine": machine,
                "workload": "hw",
                "seed": c.seed,
                "hardware": stats,
            });
            let mut text = format!(
                "machine {machine}: {summary_line}\nworkload: hw (fixed address space), {} accesses, seed {}\n",
                c.accesses, c.seed
            );
            for r in &demo.regions {
                let _ = writeln!(
                    text,
                    "  region {:<6} {:#x}..{:#x} ({} pages of {}) [{}]",
                    r.name,
                    r.start.0,
                    r.start.0 + r.len,
                    r.len / r.page_size,
                    crate::size::format_size(r.page_size),
                    r.flags
                );
            }
            text += &format!("\n{}", stats.to_text());
            Ok(Report {
                json,
                text,
                rows: Vec::new(),
            })
        }
        Workload::Alloc(_) | Workload::Gc(_) => {
            let alloc = matches!(c.workload, Workload::Alloc(_));
            let name = if alloc { "alloc" } else { "gc" };
            let mut k = Kernel::try_boot(c.spec, c.kernel)?;
            let prog = Program::small(name, k.page_size());
            let pid = k.spawn(&prog).map_err(RunError::Spawn)?;
            let (report, rendered) = match &c.workload {
                Workload::Alloc(p) => {
                    let r = crate::user::workload::run_alloc(&mut k, pid, p)?;
                    (json(&r), r.render())
                }
                Workload::Gc(p) => {
                    let r = crate::user::workload::run_gc(&mut k, pid, p)?;
                    (json(&r), r.render())
                }
                _ => unreachable!(),
            };
            // The headline counters every run reports, beside the allocator's or
            // collector's.
            let hw = HwStats::from_mmu(&k.machine().mmu);
            let mut v = report;
            if let (Some(o), Value::Object(h)) = (
                v.as_object_mut(),
                json(&RunSummary::from_kernel(&k, hw.accesses)),
            ) {
                for (key, value) in h {
                    o.entry(key).or_insert(value);
                }
            }
            Ok(Report {
                json: with(
                    v,
                    [
                        ("machine", machine.clone().into()),
                        ("workload", name.into()),
                        ("seed", c.seed.into()),
                    ],
                ),
                text: format!("machine {machine}\n{rendered}\n"),
                rows: Vec::new(),
            })
        }
    }
}

/// The replay's own counters as text.
pub fn replay_text(s: &SimStats) -> String {
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
            crate::size::format_size(s.inferred_bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_refuses_a_workload_it_cannot_replay() {
        let spec = MachineSpec::preset("x86-64").unwrap();
        let r = replay(spec, KernelConfig::default(), &Workload::Hw, 0, &mut |_| {});
        assert!(matches!(r, Err(RunError::NotReplayed)));
    }
}
