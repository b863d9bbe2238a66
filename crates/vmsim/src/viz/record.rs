//! Building a [`Walkthrough`]: addresses translated on a machine with no kernel (the
//! demo address space, a state file), or a short trace replayed through the kernel one
//! access at a time on the explained (slow) path.

use super::snapshot::{kernel_frames, kernel_swap, table_frames, tlbs, touched};
use super::{KernelAction, Step, TlbGeometry, Walkthrough};
use crate::addr::VirtAddr;
use crate::hw::machine::Holds;
use crate::hw::{AccessKind, Machine, Mmu, Privilege, Translation};
use crate::os::Kernel;
use crate::sim::Sim;
use crate::trace::text::format_event;
use crate::trace::{for_each_batch, Event, EventReader, TraceError};
use thiserror::Error;

/// Most events a trace may have to be told step by step: each access keeps its whole
/// story and a snapshot of the machine, so the view is for short traces.
pub const MAX_TRACE_EVENTS: usize = 10_000;

/// Why a walk-through could not be made.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The trace is longer than [`MAX_TRACE_EVENTS`].
    #[error(
        "the trace has more than {max} events, the most the step-by-step view takes; \
         cut it down (the first {max} events are enough to see every step)"
    )]
    TooLong {
        /// The cap.
        max: usize,
    },
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// The set geometry of the first data TLB, for splitting addresses.
fn first_data_tlb(mmu: &Mmu) -> Option<TlbGeometry> {
    let t = mmu
        .tlbs()
        .iter()
        .find(|t| t.holds != Holds::Instr)
        .or_else(|| mmu.tlbs().first())?;
    let (sets, page_shift) = t.first_geometry()?;
    Some(TlbGeometry {
        tlb: t.name.clone(),
        sets,
        page_shift,
    })
}

fn letter(kind: AccessKind) -> &'static str {
    match kind {
        AccessKind::Read => "R",
        AccessKind::Write => "W",
        AccessKind::Execute => "X",
    }
}

/// Translates `vas` in order on a machine with no kernel (a fault ends its access) and
/// tells every step; the frames shown are those the current page tables reach.
pub fn explain_machine(
    m: &mut Machine,
    vas: &[VirtAddr],
    kind: AccessKind,
    mode: Privilege,
    title: &str,
) -> Walkthrough {
    let paging = m.spec.paging;
    let mut wt = Walkthrough::new(title, &m.spec.name, &m.spec.summary());
    let geometry = first_data_tlb(&m.mmu);
    for &va in vas {
        let t = m.explain(va, kind, mode);
        let action = t.result.is_err().then(KernelAction::no_kernel);
        let label = format!(
            "{} {}{}",
            letter(kind),
            super::hex(va.0),
            if mode == Privilege::Supervisor {
                " (supervisor)"
            } else {
                ""
            }
        );
        let mut step = Step::new(label, &paging, geometry.clone(), kind, &[(&t, action)]);
        step.touched = touched(&m.mmu, &t);
        let snap = tlbs(&m.mmu);
        let machine: &Machine = m;
        wt.push_same_memory(step, snap, || table_frames(machine), || None);
    }
    wt
}

/// Reads every event of `reader`, refusing a trace longer than [`MAX_TRACE_EVENTS`].
pub fn read_events(reader: &mut EventReader) -> Result<Vec<Event>, RecordError> {
    let mut all = Vec::new();
    for_each_batch(
        |b| reader.next_batch(b),
        |batch| {
            all.extend_from_slice(batch);
            if all.len() > MAX_TRACE_EVENTS {
                return Err(RecordError::TooLong {
                    max: MAX_TRACE_EVENTS,
                });
            }
            Ok(())
        },
    )?;
    Ok(all)
}

/// Replays `events` through `kernel`, each access alone on the explained path
/// ([`Sim::access_explained`]), and tells every translation: what the hardware did,
/// what the fault handler did, and the TLBs, frames and swap slots after it.
/// System-call events are applied as a normal replay applies them.
pub fn record_trace(
    kernel: &mut Kernel,
    events: &[Event],
    title: &str,
) -> Result<Walkthrough, RecordError> {
    if events.len() > MAX_TRACE_EVENTS {
        return Err(RecordError::TooLong {
            max: MAX_TRACE_EVENTS,
        });
    }
    let paging = kernel.machine().spec.paging;
    let mut wt = Walkthrough::new(
        title,
        &kernel.machine().spec.name,
        &kernel.machine().spec.summary(),
    );
    let geometry = first_data_tlb(&kernel.machine().mmu);
    let mut sim = Sim::new(kernel, 0);
    // Whether memory may have changed since the last snapshot of frames and swap.
    let mut memory_changed = true;
    for e in events {
        let Event::Access(a) = e else {
            sim.feed(std::slice::from_ref(e));
            memory_changed = true;
            continue;
        };
        let stories = sim.access_explained(*a);
        let k: &Kernel = sim.kernel;
        for (part, s) in stories.iter().enumerate() {
            let tries: Vec<(&Translation, Option<KernelAction>)> = s
                .tries
                .iter()
                .map(|t| (&t.translation, t.handled.map(KernelAction::from_handler)))
                .collect();
            let label = format!(
                "{}{}",
                format_event(e),
                if part > 0 {
                    format!(" (its second page, {})", super::hex(s.va.0))
                } else {
                    String::new()
                }
            );
            let mut step = Step::new(label, &paging, geometry.clone(), a.kind, &tries);
            step.pid = Some(s.pid.0);
            if let Err(err) = &s.result {
                step.outcome = err.to_string();
            }
            if let Some(last) = s.tries.last() {
                if last.translation.result.is_ok() {
                    step.touched = touched(&k.machine().mmu, &last.translation);
                }
            }
            let changed = memory_changed || s.tries.iter().any(|t| t.handled.is_some());
            let snap = tlbs(&k.machine().mmu);
            if changed {
                wt.push(step, snap, kernel_frames(k), kernel_swap(k));
            } else {
                wt.push_same_memory(step, snap, || kernel_frames(k), || kernel_swap(k));
            }
            memory_changed = false;
        }
        if stories.is_empty() {
            // A skipped access may have mapped an inferred region.
            memory_changed = true;
        }
    }
    sim.finish();
    Ok(wt)
}
