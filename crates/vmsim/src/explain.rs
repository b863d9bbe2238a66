//! Translations told step by step: `vmsim explain` translates addresses on the demo
//! address space or on a machine state file ([`Explainer`]), and `vmsim run --explain`
//! tells a short trace event by event under the kernel ([`trace_text`]). The same
//! translations become an HTML page through [`crate::viz`].

use crate::addr::{parse_u64, VirtAddr};
use crate::demo::Demo;
use crate::hw::{AccessKind, Machine, MachineError, MachineSpec, MapError, Privilege};
use crate::os::Kernel;
use crate::sim::Sim;
use crate::trace::Event;
use crate::viz::Walkthrough;
use std::fmt::Write as _;
use std::path::Path;

/// Why addresses cannot be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// An address is not a number.
    #[error("address `{0}` is not a number (use decimal, 0x hex or 0b binary)")]
    Address(String),
    /// The state file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The state file does not describe a machine.
    #[error(transparent)]
    State(#[from] MachineError),
    /// The demo address space does not fit the machine.
    #[error("building the demo address space: {0}")]
    Demo(#[source] MapError),
    /// A translation's summary could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The addresses `texts` (decimal, `0x` hex or `0b` binary), in order.
pub fn addresses(texts: &[String]) -> Result<Vec<VirtAddr>, ExplainError> {
    texts
        .iter()
        .map(|a| {
            parse_u64(a)
                .map(VirtAddr)
                .ok_or_else(|| ExplainError::Address(a.clone()))
        })
        .collect()
}

/// A machine to translate addresses on, with what its story says first.
pub struct Explainer {
    machine: Machine,
    /// The lines before the first translation: the machine, and the state file or the
    /// demo's regions.
    header: String,
    /// The title of its page.
    title: String,
}

impl Explainer {
    /// The demo address space (see [`Demo`]) on `spec`.
    pub fn demo(spec: MachineSpec) -> Result<Explainer, ExplainError> {
        let demo = Demo::new(spec).map_err(ExplainError::Demo)?;
        let spec = &demo.machine.spec;
        let mut header = format!("machine {}: {}\n", spec.name, spec.summary());
        for r in &demo.regions {
            let _ = writeln!(
                header,
                "  mapped {:<6} {:#x}..{:#x} [{}]",
                r.name,
                r.start.0,
                r.start.0 + r.len,
                r.flags
            );
        }
        Ok(Explainer {
            title: format!("vmsim explain on {}", spec.name),
            header,
            machine: demo.machine,
        })
    }

    /// The machine of the state file `path` (a machine with preloaded TLB and
    /// page-table entries, as an exercise writes it).
    pub fn state(path: &Path) -> Result<Explainer, ExplainError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ExplainError::Read {
            path: name.clone(),
            source,
        })?;
        let machine = crate::hw::state::load_state(&text, &name)?;
        let spec = &machine.spec;
        Ok(Explainer {
            header: format!("machine {}: {}\nstate {name}\n", spec.name, spec.summary()),
            title: format!("vmsim explain --state {name}"),
            machine,
        })
    }

    /// Translates `vas` in order (a repeated address hits the TLB) and tells every
    /// step, after the header.
    pub fn text(&mut self, vas: &[VirtAddr], kind: AccessKind, mode: Privilege) -> String {
        let paging = self.machine.spec.paging;
        let mut t = self.header.clone();
        for &va in vas {
            t.push('\n');
            t += &self.machine.explain(va, kind, mode).to_text(&paging);
        }
        t
    }

    /// Translates `vas` in order: one JSON object per translation, one per line.
    pub fn json_lines(
        &mut self,
        vas: &[VirtAddr],
        kind: AccessKind,
        mode: Privilege,
    ) -> Result<String, ExplainError> {
        let paging = self.machine.spec.paging;
        let mut t = String::new();
        for &va in vas {
            let s = self.machine.explain(va, kind, mode).summary(&paging);
            t += &serde_json::to_string(&s)?;
            t.push('\n');
        }
        Ok(t)
    }

    /// Translates `vas` in order into a walk-through, for its HTML page.
    pub fn walkthrough(
        &mut self,
        vas: &[VirtAddr],
        kind: AccessKind,
        mode: Privilege,
    ) -> Walkthrough {
        crate::viz::explain_machine(&mut self.machine, vas, kind, mode, &self.title)
    }
}

/// What an event did to transparent huge pages, from the counters before and after it:
/// a line, or nothing.
fn huge_page_changes(
    before: &crate::os::thp::ThpCounters,
    after: &crate::os::thp::ThpCounters,
) -> String {
    let parts: Vec<String> = [
        (
            after.fault_alloc - before.fault_alloc,
            "huge page mapped by one level-2 entry (thp_fault_alloc)",
        ),
        (
            after.zero_page_alloc - before.zero_page_alloc,
            "huge zero page made (thp_zero_page_alloc)",
        ),
        (
            after.fault_fallback - before.fault_fallback,
            "fallback to base pages (thp_fault_fallback)",
        ),
        (
            after.split_pmd - before.split_pmd,
            "huge mapping split into a table of base-page entries (thp_split_pmd)",
        ),
        (
            after.split_page - before.split_page,
            "huge page split into base pages (thp_split_page)",
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("  huge pages: {}\n", parts.join("; "))
    }
}

/// What an event did to the TLBs beyond the translations: the flushes of the CPU
/// that made the change, and, on a machine of several CPUs, which CPUs a shootdown
/// reached (every TLB and walk cache of each). A line per kind, or nothing.
fn tlb_flush_changes(
    k: &Kernel,
    before: &crate::os::shootdown::TlbFlushCounters,
    received: &[u64],
) -> String {
    let after = k.counters().tlb;
    let mut t = String::new();
    let (one, all) = (
        after.local_flush_one - before.local_flush_one,
        after.local_flush_all - before.local_flush_all,
    );
    if one + all > 0 {
        let mut parts = Vec::new();
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        if one > 0 {
            parts.push(format!("{one} page{} invalidated one by one", plural(one)));
        }
        if all > 0 {
            parts.push(format!(
                "{all} whole flush{} of the address space",
                if all == 1 { "" } else { "es" }
            ));
        }
        let _ = writeln!(
            t,
            "  TLB flush on CPU {}: {}",
            k.machine().cpu(),
            parts.join(", ")
        );
    }
    if after.remote_flush > before.remote_flush {
        let tlbs: Vec<&str> = k
            .machine()
            .spec
            .tlbs
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let reached: Vec<String> = k
            .cpu_stats()
            .iter()
            .zip(received)
            .enumerate()
            .filter(|(_, (s, &r))| s.shootdowns_received > r)
            .map(|(c, _)| c.to_string())
            .collect();
        let _ = writeln!(
            t,
            "  TLB shootdown from CPU {}: an interrupt to CPU {}, which flushes its {} and walk caches",
            k.machine().cpu(),
            reached.join(", "),
            tlbs.join(", ")
        );
    }
    t
}

/// Replays `events` through `kernel` and tells them event by event: every translation
/// of an access step by step, and whether each OS event was done or refused; then the
/// replay's counters.
pub fn trace_text(kernel: &mut Kernel, events: &[Event]) -> String {
    let spec = &kernel.machine().spec;
    let mut t = format!("machine {}: {}\n", spec.name, spec.summary());
    let paging = spec.paging;
    let mut sim = Sim::new(kernel, 0);
    for (i, e) in events.iter().enumerate() {
        let _ = writeln!(t, "\n[{}] {}", i + 1, crate::trace::text::format_event(e));
        let thp = sim.kernel.counters().thp;
        let flushes = sim.kernel.counters().tlb;
        let received: Vec<u64> = sim
            .kernel
            .cpu_stats()
            .iter()
            .map(|s| s.shootdowns_received)
            .collect();
        match e {
            Event::Access(a) => {
                let stories = sim.access_explained(*a);
                if stories.is_empty() {
                    t += "  skipped (the process is gone, or no user mapping can hold the address)\n";
                } else if sim.kernel.nr_cpus() > 1 {
                    let _ = writeln!(t, "  on CPU {}", sim.kernel.machine().cpu());
                }
                for s in &stories {
                    t += &s.to_text(&paging);
                }
            }
            _ => {
                let failed = sim.stats.failed_events;
                sim.feed(std::slice::from_ref(e));
                if sim.stats.failed_events > failed {
                    if let Some(f) = sim.stats.failures.last() {
                        let _ = writeln!(t, "  refused: {f}");
                    }
                } else {
                    t += "  done\n";
                }
            }
        }
        t += &huge_page_changes(&thp, &sim.kernel.counters().thp);
        t += &tlb_flush_changes(sim.kernel, &flushes, &received);
    }
    sim.finish();
    t.push('\n');
    t + &crate::run::replay_text(&sim.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_three_bases_and_name_a_bad_one() {
        let texts = ["16", "0x10", "0b10000"].map(String::from);
        assert_eq!(addresses(&texts).unwrap(), vec![VirtAddr(16); 3]);
        let e = addresses(&["0xzz".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address `0xzz` is not a number (use decimal, 0x hex or 0b binary)"
        );
    }

    #[test]
    fn a_repeated_address_hits_the_tlb_the_second_time() {
        let spec = MachineSpec::preset("textbook").unwrap();
        let mut e = Explainer::demo(spec).unwrap();
        let va = VirtAddr(0x3d4);
        let t = e.text(&[va, va], AccessKind::Read, Privilege::User);
        assert!(t.starts_with("machine textbook: "), "{t}");
        assert!(t.contains("  mapped "), "{t}");
        let json = e
            .json_lines(&[va], AccessKind::Read, Privilege::User)
            .unwrap();
        assert_eq!(json.lines().count(), 1);
    }
}
