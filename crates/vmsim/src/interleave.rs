//! Interleaving: which thread's accesses a replay takes next, by simulated time.
//!
//! A trace is one serial order of every thread's accesses, made by a recorder that had
//! no memory pressure: nobody waited for storage. Natively, a thread that takes a
//! major fault sleeps until its page arrives while the process's other threads run on,
//! and threads that have a CPU each advance at their own rates. Replaying the recorded
//! order as it is would make every thread wait for every other's storage, and would
//! keep the recorder's own drift between threads (its pacing lets one run up to a
//! thousand accesses ahead of another; see the plugin's `pace.rs`).
//!
//! So, once a process has a second thread, the replay gives each thread (each task: a
//! process's thread) a clock, the simulated nanoseconds its own accesses and faults
//! took (storage time included), and hands the kernel the next [`CHUNK`] accesses of
//! the task whose clock is lowest, ties going to the task whose next access came first
//! in the trace. A task that takes a major fault falls behind in the trace's order by
//! as many accesses of the others as fit in its wait, as on a machine with a CPU for
//! each thread.
//!
//! Processes are tasks too, from the first `fork`: under the recorder each process
//! runs in its own emulator, and one that forks takes long enough there (the emulator
//! copies itself) for the child to run far ahead, so four children forked in a loop
//! ran one after another in the trace where natively they run side by side. A forked
//! child starts at its parent's clock when the parent's `fork` is replayed, and its
//! events wait for that.
//!
//! What stays in the trace's order:
//! - each task's own events;
//! - a process's own system calls among its events, while it has one thread: an
//!   `mmap`, `munmap`, `brk`, `read`, `fork` or exit of one process is held in its
//!   task's queue with its accesses (it changes no other process's memory);
//! - everything around any other event that is not an access or a page's `nonzero`
//!   mark (the system calls and exit of a process with threads, thread starts and
//!   ends, `vfork`, `exec`, sleeps, what the trace says of files): every access
//!   before it is replayed first, and none after it is looked at until it is done. A
//!   thread that waits on a lock waits in a system call (`futex`), and the one that
//!   wakes it makes one, so work one thread hands to another through memory keeps its
//!   order whenever a system call lies between, as it does for any wait that sleeps;
//! - a parent's events after its child's exit: they wait for it (the trace has no
//!   event for `wait`, and a parent that went on after its child's exit had, most
//!   often, waited for it);
//! - the trace's order very far away: a task's next event is taken only if it is at
//!   most [`DRIFT`] events after the oldest one held, whatever the clocks say, and at
//!   most [`WINDOW`] events are held. Between system calls nothing else bounds how far
//!   one thread gets ahead of another, as nothing does natively: two threads that
//!   each work through their own memory under a limit drift apart, the one that
//!   faults less running on further ahead (on this project's machines one of two
//!   such threads finished a fifth to a third of the run before the other).
//!
//! Events are held only as long as their turn has not come: once the task with the
//! lowest clock holds more than a chunk, that chunk is replayed at once. So what is
//! held is what one thread lags behind the others, not the whole window.
//!
//! A task absent from the trace for more than [`ABSENT`] events (a thread of a process
//! with several) or [`PROCESS_ABSENT`] (a process's only thread: each process's events
//! reach the trace as its emulator sends them, in stretches) was not running when it
//! was recorded (asleep in a system call), and a process the trace has not shown
//! before (other than a forked child) was not running either: its clock moves up to
//! the others' when it comes back, so it does not overtake them to make up the time
//! it was away. While absent it does not hold the others back, and what it still
//! holds is replayed when its turn comes. A task whose every other is asleep, holding
//! nothing, runs alone: its accesses go to the kernel as they come, a stretch at a
//! time (a process working while its parent waits).
//!
//! A thread's `sleep` adds the time the kernel's clock moved for it to the thread's
//! clock, so the others run while it sleeps.
//!
//! A trace in which no process forks or has a second thread is passed through
//! untouched.

use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::trace::{Access, Event, TracePid, TraceTid};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;

/// Accesses handed to the kernel at a time.
pub const CHUNK: usize = 16;
/// The most events held back from the kernel (about 24 bytes each).
pub const WINDOW: usize = 1 << 21;
/// How far (events of the trace) a task may run ahead of the oldest event held.
pub const DRIFT: u64 = 1 << 21;
/// The most room for held events a task keeps once it holds none.
const RETAINED: usize = 1 << 16;
/// A thread of a process with several, with no event in this many events of the
/// trace, was not running then.
pub const ABSENT: u64 = 8 * 1024;
/// The same for a process with one thread. Processes are recorded apart (each
/// emulator sends its own stream, and the recorder puts them together as they
/// arrive), so one missing from the trace for a while may have run all along.
pub const PROCESS_ABSENT: u64 = 1 << 16;
/// Events between looks at whether a task runs alone ([`Interleave::run_alone`]) within
/// one process's run of accesses.
const ALONE_EVERY: u64 = 4096;

/// An access or a `nonzero` mark held back, without its process (its task's).
#[derive(Clone, Copy, Debug)]
struct Held {
    va: u64,
    size: u32,
    /// [`AccessKind`] as its number, or [`NONZERO`].
    kind: u8,
}

/// [`Held::kind`] of a `nonzero` mark.
const NONZERO: u8 = 3;
/// [`Held::kind`] of a process's own system call ([`Interleave::calls`] holds it).
const CALL: u8 = 4;

impl Held {
    fn is_access(self) -> bool {
        self.kind < NONZERO
    }

    fn event(self, pid: TracePid) -> Event {
        let kind = match self.kind {
            0 => AccessKind::Read,
            1 => AccessKind::Write,
            2 => AccessKind::Execute,
            CALL => unreachable!("a held system call is replayed from `calls`"),
            _ => {
                return Event::Nonzero {
                    pid,
                    addr: VirtAddr(self.va),
                }
            }
        };
        Event::Access(Access {
            pid,
            kind,
            va: VirtAddr(self.va),
            size: self.size,
        })
    }
}

/// The order a replay takes threads' accesses in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThreadOrder {
    /// By the threads' clocks (see the module's docs).
    #[default]
    Clock,
    /// The trace's, as recorded.
    Recorded,
}

impl ThreadOrder {
    /// Every order, by name.
    pub const ALL: [(&'static str, ThreadOrder); 2] = [
        ("clock", ThreadOrder::Clock),
        ("recorded", ThreadOrder::Recorded),
    ];

    /// The order called `name`.
    pub fn parse(name: &str) -> Option<ThreadOrder> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, o)| o)
    }
}

/// What an [`Interleave`] replays into.
pub trait Replayer {
    /// Replays `events` (the trace's own, counted as replayed).
    fn replay(&mut self, events: &[Event]);
    /// Makes thread `tid` of `pid` the one whose accesses follow, as a `thread` event
    /// would, without counting an event of the trace.
    fn switch(&mut self, pid: TracePid, tid: TraceTid);
    /// The simulated time, in nanoseconds, with everything replayed so far done.
    fn clock_ns(&mut self) -> u64;
    /// Counts an event of the trace that the kernel needs no more of (a `thread` event
    /// of a known thread: the interleaver makes its own switches).
    fn count(&mut self, event: &Event);
}

/// One thread of one process.
#[derive(Debug)]
struct Task {
    pid: TracePid,
    tid: TraceTid,
    /// Simulated nanoseconds its own events took.
    clock: u64,
    /// Its events held back, each with its place in the trace.
    queue: VecDeque<(u64, Held)>,
    /// How many of them are accesses.
    accesses: usize,
    /// The place in the trace of its last event.
    seen: u64,
    /// Back from an absence (or new): takes the others' clock when next eligible.
    joining: bool,
    /// A forked child whose parent's `fork` is still held: it may not run yet.
    unborn: bool,
    /// The place in the trace of the first held exit of its process's children: its
    /// events after it wait for it (a parent that made events after its child's
    /// exit had waited for it).
    waiting: Option<u64>,
    /// How long out of the trace it is taken to have been asleep: [`ABSENT`] for a
    /// thread of a process with several, [`PROCESS_ABSENT`] for a process's only one.
    absent_after: u64,
}

impl Task {
    /// Whether it has been out of the trace for more than its `absent_after` events at
    /// event `now`: it was not running.
    fn absent(&self, now: u64) -> bool {
        now.saturating_sub(self.seen) > self.absent_after
    }

    /// Whether its next event may be replayed, the oldest held being `oldest`: it holds
    /// one, at most [`DRIFT`] events after that and before any child's exit it waits
    /// for, and its process's fork has been replayed.
    fn eligible(&self, oldest: u64) -> bool {
        !self.unborn
            && self.queue.front().is_some_and(|&(seq, _)| {
                seq <= oldest + DRIFT && self.waiting.is_none_or(|exit| seq < exit)
            })
    }

    /// Whether its next event is one of its process's own system calls.
    fn calls_next(&self) -> bool {
        self.queue.front().is_some_and(|&(_, h)| h.kind == CALL)
    }
}

/// Reorders a trace's accesses among threads by their clocks (see the module's docs).
#[derive(Debug, Default)]
pub struct Interleave {
    /// Some process has forked or had a second thread: the trace's order is no longer
    /// kept.
    on: bool,
    /// The system calls held in the tasks' queues, by their place in the trace.
    calls: FxHashMap<u64, Event>,
    /// Children forked by a held `fork`: their events wait for it.
    unborn: FxHashSet<TracePid>,
    /// Each forked child's parent.
    parents: FxHashMap<TracePid, TracePid>,
    /// The places in the trace of each process's children's exits that are held.
    exiting: FxHashMap<TracePid, Vec<u64>>,
    tasks: Vec<Task>,
    by_id: FxHashMap<(TracePid, TraceTid), usize>,
    /// Each process's thread in the trace's order (the last `thread` event's).
    current: FxHashMap<TracePid, TraceTid>,
    /// Each process's thread in the kernel's order (the last one replayed).
    replayed: FxHashMap<TracePid, TraceTid>,
    /// Events held in the queues.
    held: usize,
    /// Events taken from the trace so far.
    seq: u64,
    /// The chunk being replayed.
    scratch: Vec<Event>,
    /// The process of the last access taken and the task of its thread then.
    last: Option<(TracePid, usize)>,
}

impl Interleave {
    /// An interleaver that has seen nothing yet.
    pub fn new() -> Interleave {
        Interleave::default()
    }

    /// Takes the trace's next `events`, replaying into `r` those whose turn has come.
    pub fn push<R: Replayer>(&mut self, events: &[Event], r: &mut R) {
        let mut rest = events;
        while !self.on {
            // One thread per process so far: the trace's order is the replay's, up to
            // the first `thread` event (a look at each event's kind, nothing more).
            let n = rest
                .iter()
                .position(|e| matches!(e, Event::Thread { .. } | Event::Fork { .. }))
                .unwrap_or(rest.len());
            self.seq += n as u64;
            r.replay(&rest[..n]);
            rest = &rest[n..];
            let tid = match rest.first() {
                None => return,
                Some(&Event::Thread { tid, .. }) => tid,
                Some(_) => {
                    // A fork: from here on, processes take turns by their clocks too.
                    self.on = true;
                    break;
                }
            };
            // A process's thread 0 is the one that runs until a `thread` event says.
            if tid != 0 {
                // A second thread: from here on, tasks and clocks. The processes seen
                // so far get their tasks as their events come, at the present.
                self.on = true;
                break;
            }
            self.seq += 1;
            r.replay(&rest[..1]);
            rest = &rest[1..];
        }
        let mut i = 0;
        while let Some(&e) = rest.get(i) {
            // Whether a task may run alone is asked where a run of one process's
            // accesses starts, and every so often within one.
            let starts = i == 0 || e.pid() != rest[i - 1].pid() || self.seq % ALONE_EVERY == 0;
            if starts && matches!(e, Event::Access(_) | Event::Nonzero { .. }) {
                let n = self.run_alone(&rest[i..], r);
                if n > 0 {
                    i += n;
                    continue;
                }
            }
            self.take(e, r);
            i += 1;
        }
    }

    /// Replays the accesses and marks at the start of `events` at once when they are
    /// one task's and no other task could run beside it (nothing is held, and every
    /// other task is asleep): a process working while its parent waits goes at the
    /// pace of a lone thread. Returns how many it replayed (0: none may go so).
    fn run_alone<R: Replayer>(&mut self, events: &[Event], r: &mut R) -> usize {
        let pid = match events.first() {
            Some(Event::Access(a)) => a.pid,
            Some(&Event::Nonzero { pid, .. }) => pid,
            _ => return 0,
        };
        let tid = self.current.get(&pid).copied().unwrap_or(0);
        let seq = self.seq;
        let others_asleep = self.tasks.iter().all(|t| {
            (t.pid == pid && t.tid == tid)
                || (t.queue.is_empty() && (t.absent(seq) || t.waiting.is_some()))
        });
        if !others_asleep {
            return 0;
        }
        // What it holds goes first.
        if let Some(&i) = self.by_id.get(&(pid, tid)) {
            if self.tasks[i].unborn || self.tasks[i].waiting.is_some() {
                return 0;
            }
            while !self.tasks[i].queue.is_empty() {
                self.replay_chunk(i, r);
            }
        }
        let n = events
            .iter()
            .position(|e| match e {
                Event::Access(a) => a.pid != pid,
                Event::Nonzero { pid: p, .. } => *p != pid,
                _ => true,
            })
            .unwrap_or(events.len());
        let i = self.task_of(pid, tid);
        self.sync(pid, tid, r);
        let before = r.clock_ns();
        r.replay(&events[..n]);
        let took = r.clock_ns().saturating_sub(before);
        self.seq += n as u64;
        let t = &mut self.tasks[i];
        t.joining = false;
        t.clock = t.clock.saturating_add(took);
        t.seen = self.seq - 1;
        self.last = Some((pid, i));
        n
    }

    /// Takes the trace's next `n` events in the trace's order, when that is still the
    /// replay's (no process has forked or had a second thread) and they start no second
    /// task (`one_task`, as [`crate::trace::Batch::one_task`] tells). Returns whether it
    /// took them: the caller then replays them as they are, as [`Interleave::push`]
    /// would have.
    pub fn pass(&mut self, n: usize, one_task: bool) -> bool {
        if self.on || !one_task {
            return false;
        }
        self.seq += n as u64;
        true
    }

    /// Replays everything still held, in the clocks' order.
    pub fn finish<R: Replayer>(&mut self, r: &mut R) {
        while self.held > 0 {
            self.step(r);
        }
    }

    fn take<R: Replayer>(&mut self, e: Event, r: &mut R) {
        let seq = self.seq;
        self.seq += 1;
        match e {
            Event::Access(a) => {
                let held = Held {
                    va: a.va.0,
                    size: a.size,
                    kind: a.kind as u8,
                };
                self.hold(a.pid, seq, held, r);
            }
            Event::Nonzero { pid, addr } => {
                let held = Held {
                    va: addr.0,
                    size: 0,
                    kind: NONZERO,
                };
                self.hold(pid, seq, held, r);
            }
            Event::Thread { pid, tid } if self.by_id.contains_key(&(pid, tid)) => {
                // A thread the replay knows: only the trace's order moves.
                self.last = None;
                self.current.insert(pid, tid);
                r.count(&e);
            }
            _ if self.own_call(&e) => {
                match e {
                    Event::Fork { parent, child } => {
                        self.unborn.insert(child);
                        self.parents.insert(child, parent);
                    }
                    Event::Exit { pid, .. } => {
                        if let Some(&parent) = self.parents.get(&pid) {
                            self.exiting.entry(parent).or_default().push(seq);
                            self.note_waiting(parent);
                        }
                    }
                    _ => {}
                }
                self.calls.insert(seq, e);
                let held = Held {
                    va: 0,
                    size: 0,
                    kind: CALL,
                };
                self.hold(e.pid(), seq, held, r);
            }
            _ => {
                self.call(seq, e, r);
            }
        }
    }

    /// Whether `e` is a system call that changes only its own process's memory (or
    /// forks it, or ends it) and its process has one thread: it is held with the
    /// process's accesses rather than keeping its place in the trace.
    fn own_call(&self, e: &Event) -> bool {
        let own = matches!(
            e,
            Event::Mmap { .. }
                | Event::Munmap { .. }
                | Event::Mprotect { .. }
                | Event::Brk { .. }
                | Event::Mremap { .. }
                | Event::Madvise { .. }
                | Event::Populate { .. }
                | Event::Mlock { .. }
                | Event::Mlockall { .. }
                | Event::Syscall { .. }
                | Event::FileRead { .. }
                | Event::FileWrite { .. }
                | Event::Fadvise { .. }
                | Event::Fork { .. }
                | Event::Exit { .. }
        );
        let pid = e.pid();
        own && self.current.get(&pid).is_none_or(|&tid| tid == 0)
            && !self.tasks.iter().any(|t| t.pid == pid && t.tid != 0)
    }

    /// Holds `pid`'s access or mark `held`, the trace's event `seq`, and replays what
    /// has become due.
    fn hold<R: Replayer>(&mut self, pid: TracePid, seq: u64, held: Held, r: &mut R) {
        let i = match self.last {
            Some((p, i)) if p == pid => i,
            _ => {
                let tid = *self.current.entry(pid).or_insert(0);
                let i = self.task_of(pid, tid);
                self.last = Some((pid, i));
                i
            }
        };
        let t = &mut self.tasks[i];
        if t.queue.is_empty() && t.absent(seq) {
            t.joining = true;
        }
        t.queue.push_back((seq, held));
        let access = held.is_access();
        t.accesses += usize::from(access);
        t.seen = seq;
        self.held += 1;
        let mut i = i;
        if self.held >= WINDOW {
            let id = (pid, self.tasks[i].tid);
            while self.held >= WINDOW {
                self.step(r);
            }
            // A process's exit replayed meanwhile takes its task away: others move.
            match self.by_id.get(&id) {
                Some(&j) => i = j,
                None => return,
            }
        }
        if access && self.tasks[i].accesses > CHUNK {
            self.run_due(r);
        }
    }

    /// Replays event `seq`, `e`, which keeps its place in the trace (a system call, a
    /// thread's start or end, a fork, an exit): everything held first.
    fn call<R: Replayer>(&mut self, seq: u64, e: Event, r: &mut R) {
        self.last = None;
        self.finish(r);
        let pid = e.pid();
        let creator = self.current.get(&pid).copied();
        if let (Some(tid), false) = (creator, matches!(e, Event::Thread { .. })) {
            self.sync(pid, tid, r);
        }
        // A child made here (by `vfork`, or by a process with threads) is waited for
        // as a child forked alone is.
        if let Event::Fork { parent, child } | Event::Vfork { parent, child } = e {
            self.parents.insert(child, parent);
        }
        // A sleep moves the sleeper's clock by as much as the kernel's moved (a
        // sleep the kernel refused, none).
        let before = matches!(e, Event::Sleep { .. }).then(|| r.clock_ns());
        r.replay(std::slice::from_ref(&e));
        match e {
            Event::ThreadExit { pid, tid, .. } => {
                // A later thread of the same number is a new one.
                self.forget(|t| t.pid == pid && t.tid == tid);
            }
            Event::Sleep { pid, .. } => {
                // The sleeper's clock moves on: the others run in its sleep.
                let slept = r.clock_ns().saturating_sub(before.unwrap_or(0));
                if let Some(&i) = creator.and_then(|tid| self.by_id.get(&(pid, tid))) {
                    self.tasks[i].clock = self.tasks[i].clock.saturating_add(slept);
                }
            }
            Event::Exit { pid, .. } => {
                debug_assert_eq!(self.held, 0);
                self.ended(pid, seq);
            }
            Event::Thread { pid, tid } => {
                // A new thread starts where the thread that made it is; that one,
                // if it has no task yet (its process ran before the interleaving
                // began, or only it has run), starts at the furthest clock.
                let furthest = self.tasks.iter().map(|t| t.clock).max().unwrap_or(0);
                let c = creator.unwrap_or(0);
                let made = self.task(pid, c, furthest);
                let now = self.tasks[made].clock;
                let i = self.task(pid, tid, now);
                self.tasks[i].seen = seq;
                self.current.insert(pid, tid);
                self.replayed.insert(pid, tid);
            }
            _ => {}
        }
    }

    /// Drops the tasks `gone` says have ended (nothing is held: called between events
    /// that keep their place).
    fn forget(&mut self, gone: impl Fn(&Task) -> bool) {
        debug_assert_eq!(self.held, 0);
        self.tasks.retain(|t| !gone(t));
        self.reindex();
    }

    /// Process `pid` exited, its exit the trace's event `seq`: its tasks, which hold
    /// nothing more, go, and its parent no longer waits for that exit.
    fn ended(&mut self, pid: TracePid, seq: u64) {
        self.last = None;
        self.tasks.retain(|t| t.pid != pid || !t.queue.is_empty());
        self.reindex();
        self.current.remove(&pid);
        self.replayed.remove(&pid);
        if let Some(parent) = self.parents.remove(&pid) {
            if let Some(e) = self.exiting.get_mut(&parent) {
                e.retain(|&at| at != seq);
            }
            self.note_waiting(parent);
        }
    }

    /// The place in the trace of the first held exit of `parent`'s children.
    fn first_exit(&self, parent: TracePid) -> Option<u64> {
        self.exiting
            .get(&parent)
            .and_then(|e| e.iter().copied().min())
    }

    /// Sets what the tasks of `parent` wait for: the first of its children's exits
    /// held.
    fn note_waiting(&mut self, parent: TracePid) {
        let first = self.first_exit(parent);
        for t in self.tasks.iter_mut().filter(|t| t.pid == parent) {
            t.waiting = first;
        }
    }

    /// Finds the tasks again by their ids after some went.
    fn reindex(&mut self) {
        self.by_id = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.pid, t.tid), i))
            .collect();
    }

    /// The task of thread `tid` of `pid`, made at clock `now` if new.
    fn task(&mut self, pid: TracePid, tid: TraceTid, now: u64) -> usize {
        if let Some(&i) = self.by_id.get(&(pid, tid)) {
            return i;
        }
        self.tasks.push(Task {
            pid,
            tid,
            clock: now,
            queue: VecDeque::new(),
            accesses: 0,
            seen: self.seq,
            joining: false,
            unborn: self.unborn.contains(&pid),
            waiting: self.first_exit(pid),
            absent_after: PROCESS_ABSENT,
        });
        let threads = self.tasks.iter().filter(|t| t.pid == pid).count();
        if threads > 1 {
            for t in self.tasks.iter_mut().filter(|t| t.pid == pid) {
                t.absent_after = ABSENT;
            }
        }
        self.by_id.insert((pid, tid), self.tasks.len() - 1);
        self.tasks.len() - 1
    }

    /// The task of thread `tid` of `pid`; a new one (a process not seen since the
    /// interleaving began) joins the present when it is next eligible (see
    /// [`Interleave::step`]).
    fn task_of(&mut self, pid: TracePid, tid: TraceTid) -> usize {
        match self.by_id.get(&(pid, tid)) {
            Some(&i) => i,
            None => {
                self.replayed.entry(pid).or_insert(tid);
                // A child whose fork is held waits for it, which sets its clock (one
                // whose fork was replayed has its task already).
                let i = self.task(pid, tid, 0);
                let t = &mut self.tasks[i];
                t.joining = !t.unborn;
                i
            }
        }
    }

    /// Makes the kernel's current thread of `pid` be `tid`.
    fn sync<R: Replayer>(&mut self, pid: TracePid, tid: TraceTid, r: &mut R) {
        if self.replayed.get(&pid) != Some(&tid) {
            r.switch(pid, tid);
            self.replayed.insert(pid, tid);
        }
    }

    /// Replays the next chunk of the eligible task with the lowest clock, whether or not
    /// it is due. Eligible: its next event is at most [`DRIFT`] events after the oldest
    /// held. Joining tasks first come to the present ([`Interleave::settle`]).
    fn step<R: Replayer>(&mut self, r: &mut R) {
        let Some(oldest) = self.settle() else {
            return;
        };
        let Some(i) = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.eligible(oldest))
            .filter_map(|(i, t)| t.queue.front().map(|&(seq, _)| (t.clock, seq, i)))
            .min()
            .map(|(_, _, i)| i)
            .or_else(|| {
                // The task holding the oldest event is eligible: what would keep it
                // (its process's fork held, or a child's exit it waits for) is older
                // still. Should that not hold, the oldest goes, so that what is held
                // always drains.
                self.tasks
                    .iter()
                    .position(|t| t.queue.front().is_some_and(|&(seq, _)| seq == oldest))
            })
        else {
            return;
        };
        self.replay_chunk(i, r);
    }

    /// Replays chunks while the task whose turn it is has more than a chunk held, or
    /// has gone quiet: the task with the lowest clock among those holding events and
    /// those in the trace lately (one absent for longer is asleep, and holds nobody
    /// back; one that holds events and has gone quiet runs what it holds).
    fn run_due<R: Replayer>(&mut self, r: &mut R) {
        loop {
            let Some(oldest) = self.settle() else {
                return;
            };
            let seq = self.seq;
            let Some(i) = self
                .tasks
                .iter()
                .enumerate()
                .filter_map(|(i, t)| match t.queue.front() {
                    Some(&(front, _)) => t.eligible(oldest).then_some((t.clock, front, i)),
                    None => (!t.absent(seq) && !t.unborn && t.waiting.is_none()).then_some((
                        t.clock,
                        u64::MAX,
                        i,
                    )),
                })
                .min()
                .map(|(_, _, i)| i)
            else {
                return;
            };
            let t = &self.tasks[i];
            // Its turn: a system call goes at once (a fork lets its child run).
            if t.queue.is_empty() || (t.accesses <= CHUNK && !t.absent(seq) && !t.calls_next()) {
                return;
            }
            self.replay_chunk(i, r);
        }
    }

    /// Brings joining tasks whose turn may come to the present (the lowest clock of
    /// the others running: holding events, or in the trace lately); returns the place
    /// in the trace of the oldest event held, if any.
    fn settle(&mut self) -> Option<u64> {
        let oldest = self
            .tasks
            .iter()
            .filter_map(|t| t.queue.front().map(|&(seq, _)| seq))
            .min()?;
        if self.tasks.iter().any(|t| t.joining && t.eligible(oldest)) {
            let seq = self.seq;
            let present = self
                .tasks
                .iter()
                .filter(|t| {
                    !t.joining && (t.eligible(oldest) || (t.queue.is_empty() && !t.absent(seq)))
                })
                .map(|t| t.clock)
                .min();
            for t in self
                .tasks
                .iter_mut()
                .filter(|t| t.joining && t.eligible(oldest))
            {
                t.joining = false;
                if let Some(now) = present {
                    t.clock = t.clock.max(now);
                }
            }
        }
        Some(oldest)
    }

    /// Replays the next chunk of task `i`'s events: up to [`CHUNK`] accesses and the
    /// marks among them, or its process's system call that comes next.
    fn replay_chunk<R: Replayer>(&mut self, i: usize, r: &mut R) {
        let (pid, tid) = (self.tasks[i].pid, self.tasks[i].tid);
        self.sync(pid, tid, r);
        if self.tasks[i].calls_next() {
            self.replay_call(i, r);
            return;
        }
        let mut chunk = std::mem::take(&mut self.scratch);
        chunk.clear();
        let mut accesses = 0;
        let t = &mut self.tasks[i];
        while let Some(&(_, h)) = t.queue.front() {
            if h.kind == CALL {
                break;
            }
            if h.is_access() {
                if accesses == CHUNK {
                    break;
                }
                accesses += 1;
            }
            t.queue.pop_front();
            chunk.push(h.event(pid));
        }
        t.accesses -= accesses;
        if t.queue.is_empty() && t.queue.capacity() > RETAINED {
            // Caught up after lagging far: the room goes back.
            t.queue = VecDeque::new();
        }
        self.held -= chunk.len();
        let before = r.clock_ns();
        r.replay(&chunk);
        let took = r.clock_ns().saturating_sub(before);
        self.tasks[i].clock = self.tasks[i].clock.saturating_add(took);
        self.scratch = chunk;
    }

    /// Replays task `i`'s next event, its process's own system call; a fork's child
    /// starts at the parent's clock after it.
    fn replay_call<R: Replayer>(&mut self, i: usize, r: &mut R) {
        let Some((seq, _)) = self.tasks[i].queue.pop_front() else {
            return;
        };
        self.held -= 1;
        let Some(e) = self.calls.remove(&seq) else {
            return;
        };
        let before = r.clock_ns();
        r.replay(std::slice::from_ref(&e));
        let took = r.clock_ns().saturating_sub(before);
        let t = &mut self.tasks[i];
        t.clock = t.clock.saturating_add(took);
        let now = t.clock;
        if let Event::Fork { child, .. } = e {
            self.unborn.remove(&child);
            let mut found = false;
            for t in self.tasks.iter_mut().filter(|t| t.pid == child) {
                t.unborn = false;
                t.joining = false;
                t.clock = now;
                found = true;
            }
            if !found {
                // It runs from now, whether or not its stream has come: it holds the
                // others back as a running thread does until it shows up.
                self.task(child, 0, now);
                self.replayed.entry(child).or_insert(0);
            }
        }
        if let Event::Exit { pid, .. } = e {
            self.ended(pid, seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it is given; an access to an address at or above `SLOW` takes
    /// 1,000 ns, any other 1 ns.
    #[derive(Default)]
    struct Log {
        order: Vec<(TracePid, TraceTid, u64)>,
        now: u64,
        current: FxHashMap<TracePid, TraceTid>,
        events: usize,
        switches: usize,
        /// `thread` events replayed (thread starts the kernel sees), by thread.
        starts: Vec<(TracePid, TraceTid)>,
    }

    const SLOW: u64 = 0x10_0000;

    impl Replayer for Log {
        fn replay(&mut self, events: &[Event]) {
            for e in events {
                self.events += 1;
                match *e {
                    Event::Access(a) => {
                        let tid = self.current.get(&a.pid).copied().unwrap_or(0);
                        self.order.push((a.pid, tid, a.va.0));
                        self.now += if a.va.0 >= SLOW { 1000 } else { 1 };
                    }
                    Event::Thread { pid, tid } => {
                        self.current.insert(pid, tid);
                        self.starts.push((pid, tid));
                    }
                    // As the kernel's clock: a sleep past 2^62 ns is refused.
                    Event::Sleep { ns, .. } if ns <= crate::os::MAX_SLEEP_NS => self.now += ns,
                    _ => {}
                }
            }
        }
        fn switch(&mut self, pid: TracePid, tid: TraceTid) {
            self.switches += 1;
            self.current.insert(pid, tid);
        }
        fn clock_ns(&mut self) -> u64 {
            self.now
        }
        fn count(&mut self, _: &Event) {
            self.events += 1;
        }
    }

    fn access(pid: TracePid, va: u64) -> Event {
        Event::Access(Access {
            pid,
            kind: AccessKind::Read,
            va: VirtAddr(va),
            size: 1,
        })
    }

    fn thread(pid: TracePid, tid: TraceTid) -> Event {
        Event::Thread { pid, tid }
    }

    fn run(events: &[Event]) -> Log {
        let mut log = Log::default();
        let mut il = Interleave::new();
        // In two batches, split in the middle: batches are not a unit of order.
        let (a, b) = events.split_at(events.len() / 2);
        il.push(a, &mut log);
        il.push(b, &mut log);
        il.finish(&mut log);
        log
    }

    #[test]
    fn one_thread_per_process_is_replayed_in_the_traces_order() {
        let events: Vec<Event> = (0..100)
            .map(|i| access(1 + i % 2, 0x1000 * i as u64))
            .collect();
        let log = run(&events);
        let want: Vec<u64> = (0..100).map(|i| 0x1000 * i as u64).collect();
        let got: Vec<u64> = log.order.iter().map(|o| o.2).collect();
        assert_eq!(got, want);
        assert_eq!(log.switches, 0);
    }

    #[test]
    fn a_thread_that_ran_far_ahead_in_the_trace_takes_turns_with_the_other() {
        // The recording let thread 1 make 400 accesses before thread 0's 400.
        let mut events = vec![access(1, 0), thread(1, 1)];
        events.extend((0..400).map(|i| access(1, 0x1000 + i)));
        events.push(thread(1, 0));
        events.extend((0..400).map(|i| access(1, 0x8000 + i)));
        let log = run(&events);
        assert_eq!(log.order.len(), 801);
        assert_eq!(
            log.events,
            events.len(),
            "every event of the trace is counted"
        );
        // Turns of a chunk each, from the start: within the first 100, both ran.
        let first: Vec<TraceTid> = log.order[1..101].iter().map(|o| o.1).collect();
        let ones = first.iter().filter(|&&t| t == 1).count();
        assert!(
            (40..=60).contains(&ones),
            "thread 1 took {ones} of the first 100"
        );
        // Each thread's own accesses keep their order.
        for tid in [0, 1] {
            let mine: Vec<u64> = log.order[1..]
                .iter()
                .filter(|o| o.1 == tid)
                .map(|o| o.2)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "thread {tid} kept its order"
            );
            assert_eq!(mine.len(), 400);
        }
    }

    #[test]
    fn a_thread_waiting_for_storage_lets_the_other_run() {
        // Both threads alternate in the trace; thread 1's first access is slow (a major
        // fault of 1,000 ns). Thread 0 then makes about 1,000 ns of accesses (1 ns each)
        // before thread 1 goes on.
        let mut events = vec![access(1, 0), thread(1, 1)];
        for i in 0..200u64 {
            events.push(thread(1, 1));
            let va = if i == 0 { SLOW } else { 0x1000 + i };
            events.extend((0..4).map(|j| access(1, va + j * (va < SLOW) as u64)));
            events.push(thread(1, 0));
            events.extend((0..4).map(|j| access(1, 0x9000 + i * 4 + j)));
        }
        let log = run(&events);
        let slow = log.order.iter().position(|o| o.2 == SLOW).unwrap();
        // After the slow access, thread 1 makes its chunk, then thread 0 runs alone for
        // its 799 accesses or until its clock passes thread 1's.
        let after: Vec<TraceTid> = log.order[slow..].iter().map(|o| o.1).collect();
        let zero_run = after
            .iter()
            .skip_while(|&&t| t == 1)
            .take_while(|&&t| t == 0)
            .count();
        assert!(
            zero_run >= 790,
            "thread 0 ran {zero_run} accesses while thread 1 waited"
        );
    }

    #[test]
    fn a_thread_that_faults_less_runs_far_ahead_of_one_that_faults_more() {
        // The trace alternates the threads four accesses at a time, 20,000 rounds; every
        // access of thread 1 takes 1,000 ns, every one of thread 0 1 ns. Thread 0's
        // 80,000 accesses take 80 us, as long as about 80 of thread 1's: it is done
        // while thread 1 has made few, however far that puts it ahead in the trace.
        let mut events = vec![access(1, 0), thread(1, 1)];
        for i in 0..20_000u64 {
            events.push(thread(1, 1));
            events.extend((0..4).map(|j| access(1, SLOW + i * 4 + j)));
            events.push(thread(1, 0));
            events.extend((0..4).map(|j| access(1, 0x10 + i * 4 + j)));
        }
        let log = run(&events);
        let last_zero = log.order.iter().rposition(|o| o.1 == 0).unwrap();
        let ones = log.order[..last_zero].iter().filter(|o| o.1 == 1).count();
        assert!(
            ones <= 200,
            "thread 1 made {ones} accesses before thread 0 was done"
        );
    }

    #[test]
    fn threads_that_keep_pace_hold_back_little() {
        // Two threads of equal cost, alternating in the trace: each chunk is handed on
        // as soon as it is due, so a few chunks are held at any time.
        let mut log = Log::default();
        let mut il = Interleave::new();
        il.push(&[access(1, 0), thread(1, 1)], &mut log);
        let mut most = 0;
        for i in 0..10_000u64 {
            let mut round = vec![thread(1, 1)];
            round.extend((0..4).map(|j| access(1, 0x8_0000 + i * 4 + j)));
            round.push(thread(1, 0));
            round.extend((0..4).map(|j| access(1, 0x10 + i * 4 + j)));
            il.push(&round, &mut log);
            most = most.max(il.held);
        }
        il.finish(&mut log);
        assert_eq!(log.order.len(), 80_001);
        assert!(most <= 4 * CHUNK, "{most} events held at once");
    }

    #[test]
    fn a_sleeping_thread_lets_the_other_run() {
        // Thread 1 sleeps 200 ns, then both threads alternate in the trace. Thread 0
        // makes 200 ns of accesses (1 ns each, in chunks) before thread 1 goes on.
        let mut events = vec![access(1, 0), thread(1, 1), access(1, 1)];
        events.push(Event::Sleep { pid: 1, ns: 200 });
        for i in 0..100u64 {
            events.push(thread(1, 1));
            events.extend((0..4).map(|j| access(1, 0x1000 + i * 4 + j)));
            events.push(thread(1, 0));
            events.extend((0..4).map(|j| access(1, 0x9000 + i * 4 + j)));
        }
        let log = run(&events);
        let first_one = log.order[2..].iter().position(|o| o.1 == 1).unwrap();
        assert!(
            (200..=200 + CHUNK).contains(&first_one),
            "thread 0 ran {first_one} accesses while thread 1 slept"
        );
    }

    #[test]
    fn a_refused_or_huge_sleep_leaves_the_clocks_usable() {
        // Refused: thread 1's clock stays, and it takes its turns at once. Accepted
        // (the most, 2^62 ns): thread 0 runs first, and the clocks go on adding without overflow.
        for (ns, asleep) in [(u64::MAX, false), (crate::os::MAX_SLEEP_NS, true)] {
            let mut events = vec![access(1, 0), thread(1, 1), access(1, 1)];
            events.push(Event::Sleep { pid: 1, ns });
            for i in 0..100u64 {
                events.push(thread(1, 1));
                events.push(access(1, SLOW + i));
                events.push(thread(1, 0));
                events.push(access(1, 0x1000 + i));
            }
            let log = run(&events);
            assert_eq!(log.order.len(), 202, "sleep {ns}");
            let first_one = log.order[2..].iter().position(|o| o.1 == 1).unwrap();
            assert_eq!(first_one >= 100, asleep, "sleep {ns}: {first_one}");
        }
    }

    #[test]
    fn system_calls_keep_their_place() {
        // An munmap by thread 0 after thread 1's accesses: none of thread 1's comes after it.
        let mut events = vec![access(1, 0), thread(1, 1)];
        events.extend((0..50).map(|i| access(1, SLOW + i)));
        events.push(thread(1, 0));
        events.push(Event::Munmap {
            pid: 1,
            addr: VirtAddr(SLOW),
            len: 0x1000,
        });
        events.extend((0..50).map(|i| access(1, 0x1000 + i)));
        let mut log = Log::default();
        let mut il = Interleave::new();
        il.push(&events, &mut log);
        il.finish(&mut log);
        let ones: Vec<usize> = (0..log.order.len())
            .filter(|&i| log.order[i].1 == 1)
            .collect();
        assert_eq!(ones.len(), 50);
        assert!(
            ones.iter().all(|&i| i <= 50),
            "thread 1's accesses all came before the munmap"
        );
        assert_eq!(log.current.get(&1), Some(&0), "the munmap was thread 0's");
    }

    #[test]
    fn a_thread_back_from_a_long_absence_joins_the_present() {
        // Thread 1 makes one access, then thread 0 alone makes 2 ABSENT + 100; thread 1
        // then comes back beside thread 0. It must not run its backlog of clock alone.
        let mut events = vec![access(1, 0), thread(1, 1), access(1, 1), thread(1, 0)];
        events.extend((0..2 * ABSENT + 100).map(|i| access(1, 0x10 + i)));
        for i in 0..100 {
            events.push(thread(1, 1));
            events.extend((0..4).map(|j| access(1, 0x90_000 + i * 4 + j)));
            events.push(thread(1, 0));
            events.extend((0..4).map(|j| access(1, 0x80_000 + i * 4 + j)));
        }
        let log = run(&events);
        let tail: Vec<TraceTid> = log.order[log.order.len() - 800..]
            .iter()
            .map(|o| o.1)
            .collect();
        let longest_one_run = tail
            .split(|&t| t == 0)
            .map(<[TraceTid]>::len)
            .max()
            .unwrap_or(0);
        assert!(
            longest_one_run <= 2 * CHUNK,
            "thread 1 ran {longest_one_run} in a row"
        );
    }

    #[test]
    fn a_process_that_turns_up_later_starts_at_the_others_clocks() {
        // Two threads of pid 1 run 2,000 accesses each, then pid 1 forks pid 2, and
        // pid 1's threads and pid 2 go on side by side. Pid 2 has run nothing, but it
        // must not take the 1,000 accesses it is behind all at once.
        let mut events = vec![access(1, 0), thread(1, 1)];
        let side_by_side = |events: &mut Vec<Event>, rounds: u64, base: u64| {
            for i in 0..rounds {
                for tid in [0, 1] {
                    events.push(thread(1, tid));
                    events.extend(
                        (0..4).map(|j| access(1, base + u64::from(tid) * 0x10_000 + i * 4 + j)),
                    );
                }
            }
        };
        side_by_side(&mut events, 500, 0x1000);
        events.push(Event::Fork {
            parent: 1,
            child: 2,
        });
        for i in 0..200 {
            events.extend((0..4).map(|j| access(2, 0x9_0000 + i * 4 + j)));
            events.push(thread(1, (i % 2) as TraceTid));
            events.extend((0..4).map(|j| access(1, 0x5_0000 + i * 4 + j)));
        }
        let log = run(&events);
        let fork = 1 + 4000;
        let after: Vec<TracePid> = log.order[fork..fork + 200].iter().map(|o| o.0).collect();
        let twos = after.iter().filter(|&&p| p == 2).count();
        assert!(
            (60..=140).contains(&twos),
            "pid 2 took {twos} of the first 200 accesses after the fork"
        );
    }

    #[test]
    fn a_thread_number_used_again_after_its_exit_is_a_new_thread() {
        let mut events = vec![access(1, 0), thread(1, 1), access(1, 1), thread(1, 0)];
        events.push(Event::ThreadExit {
            pid: 1,
            tid: 1,
            code: 0,
        });
        events.extend([
            access(1, 2),
            thread(1, 1),
            access(1, 3),
            thread(1, 0),
            access(1, 4),
        ]);
        let log = run(&events);
        // Both starts of thread 1 reach the kernel as `thread` events (the kernel makes
        // a thread at each), not as switches to a thread it knows.
        assert_eq!(
            log.starts.iter().filter(|t| **t == (1, 1)).count(),
            2,
            "{:?}",
            log.starts
        );
        let got: Vec<u64> = log.order.iter().map(|o| o.2).collect();
        assert_eq!(got, [0, 1, 2, 3, 4], "a thread's start keeps its place");
        assert_eq!(log.events, events.len());
    }

    fn fork(parent: TracePid, child: TracePid) -> Event {
        Event::Fork { parent, child }
    }

    fn exit(pid: TracePid) -> Event {
        Event::Exit { pid, code: 0 }
    }

    #[test]
    fn children_forked_in_a_loop_run_side_by_side() {
        // Under the recorder the parent's second fork came after its first child's
        // 2,000 accesses; natively both children run from their forks on.
        let mut events = vec![access(1, 0), fork(1, 2)];
        events.extend((0..2000).map(|i| access(2, 0x10_000 + i)));
        events.push(access(1, 1));
        events.push(fork(1, 3));
        events.extend((0..2000).map(|i| access(3, 0x90_000 + i)));
        events.extend([exit(2), exit(3), access(1, 2), exit(1)]);
        let log = run(&events);
        assert_eq!(log.events, events.len(), "every event is replayed once");
        let children: Vec<TracePid> = log.order.iter().map(|o| o.0).filter(|&p| p != 1).collect();
        let threes = children[..400].iter().filter(|&&p| p == 3).count();
        assert!(
            (150..=250).contains(&threes),
            "pid 3 made {threes} of the children's first 400 accesses"
        );
        for (pid, base) in [(2, 0x10_000), (3, 0x90_000)] {
            let mine: Vec<u64> = log
                .order
                .iter()
                .filter(|o| o.0 == pid)
                .map(|o| o.2)
                .collect();
            assert_eq!(mine, (0..2000).map(|i| base + i).collect::<Vec<u64>>());
        }
        assert_eq!(
            log.order.last().map(|o| o.2),
            Some(2),
            "the parent's last is last"
        );
    }

    /// Replays `events`, in which pid 2's accesses come before its exit and pid 1's
    /// access at 0x1000 after it, and checks that pid 1 went on only after all of
    /// pid 2's.
    fn assert_parent_went_on_after_child(events: &[Event]) {
        let log = run(events);
        let last_child = log.order.iter().rposition(|o| o.0 == 2).unwrap();
        let first_after = log.order.iter().position(|o| o.2 == 0x1000).unwrap();
        assert!(
            last_child < first_after,
            "the parent went on at {first_after}, before the child's access at {last_child}"
        );
    }

    #[test]
    fn a_parent_goes_on_only_after_its_childs_exit() {
        // The child's accesses are slow, the parent's fast: by the clocks the parent's
        // would all go first, but it made them after waiting for the child.
        let mut events = vec![access(1, 0), fork(1, 2)];
        child_works_then_parent(&mut events);
        assert_parent_went_on_after_child(&events);
    }

    /// Child 2's slow accesses and its exit, then its parent's (pid 1) fast ones.
    fn child_works_then_parent(events: &mut Vec<Event>) {
        events.extend((0..100).map(|i| access(2, SLOW + i)));
        events.push(exit(2));
        events.extend((0..100).map(|i| access(1, 0x1000 + i)));
    }

    #[test]
    fn a_parent_goes_on_only_after_its_vforked_childs_exit() {
        // `system()`: vfork, the child's exec, its work, its exit; the parent's next
        // accesses came after waiting for it.
        let mut events = vec![access(1, 0), fork(1, 3), exit(3)];
        events.push(Event::Vfork {
            parent: 1,
            child: 2,
        });
        events.push(Event::ExecImage { pid: 2 });
        child_works_then_parent(&mut events);
        assert_parent_went_on_after_child(&events);
    }

    #[test]
    fn a_process_missing_from_the_trace_for_a_while_was_still_running() {
        // Pid 2 shows up, then is missing for 20,000 events of pid 1 (the recorder put
        // its stream there later), then makes its 20,000: the two take turns from the
        // fork on, where a thread missing that long would be taken as asleep.
        let mut events = vec![access(1, 0), fork(1, 2)];
        events.extend((0..10).map(|i| access(2, 0x8_0000 + i)));
        events.extend((0..20_000).map(|i| access(1, 0x1000 + i)));
        events.extend((10..20_000).map(|i| access(2, 0x8_0000 + i)));
        let log = run(&events);
        let twos = log.order[1..2001].iter().filter(|o| o.0 == 2).count();
        assert!(
            (800..=1200).contains(&twos),
            "pid 2 made {twos} of the first 2,000 accesses"
        );
    }
}
