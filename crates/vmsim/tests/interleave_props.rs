//! Property tests of the replay's thread order (`interleave.rs`): whatever the trace and
//! whatever its accesses cost, every event is replayed once and as the trace has it,
//! each access on the thread that made it, each thread's events in their order, and
//! every system call of a process with threads after everything before it and before
//! everything after it (a process with one thread keeps its calls among its own
//! events).

use proptest::prelude::*;
use std::collections::HashMap;
use vmsim::addr::VirtAddr;
use vmsim::hw::AccessKind;
use vmsim::interleave::{Interleave, Replayer};
use vmsim::trace::{Access, Event, TracePid, TraceTid};

/// One step of a generated trace.
#[derive(Clone, Debug)]
enum Step {
    /// An access by `pid`'s current thread; slow ones cost 1,000 ns, others 1.
    Access { pid: TracePid, slow: bool },
    /// Thread `tid` of `pid` runs next.
    Thread { pid: TracePid, tid: TraceTid },
    /// A system call by `pid`'s current thread.
    Syscall { pid: TracePid },
    /// A `nonzero` mark by `pid`'s current thread (held back as accesses are).
    Mark { pid: TracePid },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        20 => (1u32..3, prop::bool::weighted(0.05)).prop_map(|(pid, slow)| Step::Access { pid, slow }),
        4 => (1u32..3, 0u32..3).prop_map(|(pid, tid)| Step::Thread { pid, tid }),
        1 => (1u32..3).prop_map(|pid| Step::Syscall { pid }),
        2 => (1u32..3).prop_map(|pid| Step::Mark { pid }),
    ]
}

/// The trace of `steps`: access `i` is at address `i * 2` (plus 1 when slow), a system
/// call is an `madvise` at address `i * 2`, so that each event names itself.
fn trace(steps: &[Step]) -> Vec<Event> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| match *s {
            Step::Access { pid, slow } => Event::Access(Access {
                pid,
                kind: [AccessKind::Read, AccessKind::Write, AccessKind::Execute][i % 3],
                va: VirtAddr(i as u64 * 2 + slow as u64),
                size: 1 + (i % 5) as u32,
            }),
            Step::Mark { pid } => Event::Nonzero {
                pid,
                addr: VirtAddr(i as u64 * 2),
            },
            Step::Thread { pid, tid } => Event::Thread { pid, tid },
            Step::Syscall { pid } => Event::Madvise {
                pid,
                addr: VirtAddr(i as u64 * 2),
                len: 0,
                advice: 0,
            },
        })
        .collect()
}

/// What the kernel was handed: each access, mark or system call by its place in the
/// trace, with the thread that ran it.
#[derive(Default)]
struct Kernel {
    now: u64,
    current: HashMap<TracePid, TraceTid>,
    ran: Vec<(usize, TracePid, TraceTid)>,
    /// The accesses and marks as handed on, by their place in the trace.
    handed: HashMap<usize, Event>,
    events: usize,
}

impl Replayer for Kernel {
    fn replay(&mut self, events: &[Event]) {
        for e in events {
            self.events += 1;
            match *e {
                Event::Access(a) => {
                    let tid = self.current.get(&a.pid).copied().unwrap_or(0);
                    self.ran.push(((a.va.0 / 2) as usize, a.pid, tid));
                    self.handed.insert((a.va.0 / 2) as usize, *e);
                    self.now += if a.va.0 % 2 == 1 { 1000 } else { 1 };
                }
                Event::Nonzero { pid, addr } => {
                    let tid = self.current.get(&pid).copied().unwrap_or(0);
                    self.ran.push(((addr.0 / 2) as usize, pid, tid));
                    self.handed.insert((addr.0 / 2) as usize, *e);
                }
                Event::Madvise { pid, addr, .. } => {
                    let tid = self.current.get(&pid).copied().unwrap_or(0);
                    self.ran.push(((addr.0 / 2) as usize, pid, tid));
                }
                Event::Thread { pid, tid } => {
                    self.current.insert(pid, tid);
                }
                _ => {}
            }
        }
    }

    fn switch(&mut self, pid: TracePid, tid: TraceTid) {
        self.current.insert(pid, tid);
    }

    fn clock_ns(&mut self) -> u64 {
        self.now
    }

    fn count(&mut self, _: &Event) {
        self.events += 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_event_runs_once_on_its_thread_in_its_threads_order(
        steps in prop::collection::vec(step(), 0..3000),
        cut in 0usize..3000,
    ) {
        let events = trace(&steps);
        let mut k = Kernel::default();
        let mut il = Interleave::new();
        let (a, b) = events.split_at(cut.min(events.len()));
        il.push(a, &mut k);
        il.push(b, &mut k);
        il.finish(&mut k);
        prop_assert_eq!(k.events, events.len(), "every event counted");
        // The thread that made each access or call, as the trace says.
        let mut current: HashMap<TracePid, TraceTid> = HashMap::new();
        let mut maker = HashMap::new();
        for (i, s) in steps.iter().enumerate() {
            match *s {
                Step::Thread { pid, tid } => { current.insert(pid, tid); }
                Step::Access { pid, .. } | Step::Syscall { pid } | Step::Mark { pid } => {
                    maker.insert(i, (pid, current.get(&pid).copied().unwrap_or(0)));
                }
            }
        }
        prop_assert_eq!(k.ran.len(), maker.len(), "each access, mark and call once");
        // Held back and handed on, an access or mark is the one the trace holds.
        for (&i, e) in &k.handed {
            prop_assert_eq!(e, &events[i], "event {} as the trace has it", i);
        }
        let mut place = HashMap::new();
        for (at, &(i, pid, tid)) in k.ran.iter().enumerate() {
            prop_assert_eq!(maker.get(&i), Some(&(pid, tid)), "event {} on its own thread", i);
            prop_assert!(place.insert(i, at).is_none(), "event {} twice", i);
        }
        // Each thread's events in their order.
        let mut last: HashMap<(TracePid, TraceTid), usize> = HashMap::new();
        for &(i, pid, tid) in &k.ran {
            if let Some(&before) = last.get(&(pid, tid)) {
                prop_assert!(before < i, "thread {}/{} ran {} after {}", pid, tid, i, before);
            }
            last.insert((pid, tid), i);
        }
        // A system call of a process with threads (or made before any process had
        // two) after everything before it and before everything after it.
        let mut threaded: HashMap<TracePid, bool> = HashMap::new();
        let mut any_threads = false;
        for (i, s) in steps.iter().enumerate() {
            if let Step::Thread { pid, tid } = *s {
                if tid != 0 {
                    threaded.insert(pid, true);
                    any_threads = true;
                }
            }
            if let Step::Syscall { pid } = *s {
                if any_threads && !threaded.get(&pid).copied().unwrap_or(false) {
                    continue;
                }
                let at = place[&i];
                for &(j, _, _) in &k.ran[..at] {
                    prop_assert!(j < i, "event {} ran before the call at {}", j, i);
                }
                for &(j, _, _) in &k.ran[at + 1..] {
                    prop_assert!(j > i, "event {} ran after the call at {}", j, i);
                }
            }
        }
    }
}
