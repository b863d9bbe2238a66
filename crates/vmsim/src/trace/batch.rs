//! A batch of events as the pipelined reader hands it out: the events, and the long
//! stretches of plain accesses among them laid out again for a replay's fast path.
//!
//! The reader fills a batch on one CPU and the replay reads it on another, so every
//! line of it crosses between their caches. An [`Event`] is 40 bytes (the size of its
//! largest kind, `mmap`'s); an access the replay translates needs only its address
//! and kind, 9 bytes. The reader, which has time to spare while the replay translates,
//! packs those of each [`PlainRun`] into arrays of their own, and the replay copies a
//! run's accesses from them without reading its events.

use super::{Event, TracePid};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;

/// A stretch `start..end` of a batch's events that are all accesses of one process,
/// each within one page: what a replay can add to one run of translations without a
/// look at any of them. Its addresses and kinds are [`Batch::packed`]`(run)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainRun {
    /// The index of its first event.
    pub start: usize,
    /// One past the index of its last event.
    pub end: usize,
    /// The process making the accesses.
    pub pid: TracePid,
    /// Where its accesses start in the packed arrays.
    at: usize,
}

/// Events, with their long [`PlainRun`]s' addresses and kinds packed beside them.
#[derive(Debug, Default)]
pub struct Batch {
    events: Vec<Event>,
    runs: Vec<PlainRun>,
    vas: Vec<VirtAddr>,
    kinds: Vec<AccessKind>,
    /// For each packed access, the bytes of instructions its run's fetches fetched up
    /// to and including it.
    fetched: Vec<u64>,
    /// Packed, and no event starts a second task: no `thread` event names a thread
    /// other than a process's first, and no process forks.
    one_task: bool,
}

/// The shortest stretch of plain accesses made a [`PlainRun`]: a replay takes shorter
/// ones event by event, as it takes those of a batch not packed.
pub const MIN_RUN: usize = 16;

impl Batch {
    /// An empty batch with room for `n` events.
    pub fn with_capacity(n: usize) -> Batch {
        Batch {
            events: Vec::with_capacity(n),
            ..Batch::default()
        }
    }

    /// The events.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The events, for a reader to fill; what the last [`Batch::pack`] found is dropped.
    pub fn events_mut(&mut self) -> &mut Vec<Event> {
        self.runs.clear();
        self.one_task = false;
        &mut self.events
    }

    /// Whether the last [`Batch::pack`] found no event that starts a second task: no
    /// `thread` event naming a thread other than a process's first, and no `fork`
    /// (false when the batch was not packed). A replay that interleaves tasks may take
    /// such a batch in the trace's order while no process has forked or had a second
    /// thread ([`crate::interleave::Interleave::pass`]).
    pub fn one_task(&self) -> bool {
        self.one_task
    }

    /// The plain runs found by the last [`Batch::pack`], in order; none when it was not
    /// packed.
    pub fn runs(&self) -> &[PlainRun] {
        &self.runs
    }

    /// The addresses and kinds of `run`'s accesses, one for each of its events.
    pub fn packed(&self, run: &PlainRun) -> (&[VirtAddr], &[AccessKind]) {
        let range = run.at..run.at + (run.end - run.start);
        (&self.vas[range.clone()], &self.kinds[range])
    }

    /// The bytes of instructions fetched by `run`'s accesses `from..from + n` (the sizes
    /// of its fetches): what the program ran to make them.
    #[inline]
    pub fn fetched(&self, run: &PlainRun, from: usize, n: usize) -> u64 {
        if n == 0 {
            return 0;
        }
        let before = match from {
            0 => 0,
            k => self.fetched[run.at + k - 1],
        };
        self.fetched[run.at + from + n - 1] - before
    }

    /// Finds the stretches of at least [`MIN_RUN`] plain accesses (none crossing a
    /// boundary of `page_size`-aligned pages) and packs their addresses and kinds, and
    /// notes whether an event starts a second task (a `thread` event naming a second
    /// thread, or a `fork`).
    pub fn pack(&mut self, page_size: u64) {
        self.runs.clear();
        self.one_task = true;
        let events = &self.events[..];
        let n = events.len();
        // Room for every event, so that a stretch is written as it is found (and
        // overwritten when it turns out short).
        if self.vas.len() < n {
            self.vas.resize(n, VirtAddr(0));
            self.kinds.resize(n, AccessKind::Read);
            self.fetched.resize(n, 0);
        }
        let (vas, kinds) = (&mut self.vas[..n], &mut self.kinds[..n]);
        let fetched = &mut self.fetched[..n];
        let in_page = !(page_size - 1);
        let plain = |a: &super::Access| (a.last_byte() ^ a.va.0) & in_page == 0;
        let mut at = 0;
        let mut i = 0;
        while let Some(e) = events.get(i) {
            i += 1;
            let Event::Access(first) = e else {
                if matches!(e, Event::Thread { tid, .. } if *tid != 0)
                    || matches!(e, Event::Fork { .. })
                {
                    self.one_task = false;
                }
                continue;
            };
            if !plain(first) {
                continue;
            }
            let pid = first.pid;
            let start = i - 1;
            vas[at] = first.va;
            kinds[at] = first.kind;
            let mut sum = super::fetched_by(first);
            fetched[at] = sum;
            let mut len = 1;
            while let Some(Event::Access(a)) = events.get(i) {
                if a.pid != pid || !plain(a) {
                    break;
                }
                // `at + len` is at most `i`, below `n`.
                vas[at + len] = a.va;
                kinds[at + len] = a.kind;
                sum += super::fetched_by(a);
                fetched[at + len] = sum;
                len += 1;
                i += 1;
            }
            if len >= MIN_RUN {
                self.runs.push(PlainRun {
                    start,
                    end: i,
                    pid,
                    at,
                });
                at += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::text::parse_line;

    fn batch(lines: &[String]) -> Batch {
        let mut b = Batch::with_capacity(lines.len());
        b.events_mut()
            .extend(lines.iter().map(|l| parse_line(l).unwrap()));
        b.pack(4096);
        b
    }

    #[test]
    fn runs_are_the_long_stretches_of_one_process_within_pages() {
        let mut lines = Vec::new();
        // 0..20: pid 1 loads and stores, one in its page.
        for i in 0..20u64 {
            let op = if i % 2 == 0 { "R" } else { "W" };
            lines.push(format!("{op} 1 {:#x} 8", 0x10000 + i * 64));
        }
        // 20: crosses a page; 21..26: too short; 26: an mmap.
        lines.push("R 1 0x10ffc 8".into());
        for i in 0..5u64 {
            lines.push(format!("R 1 {:#x} 8", 0x20000 + i));
        }
        lines.push("mmap 1 0x40000 4KiB rw-".into());
        // 27..67: pid 2's fetches, then its loads: one run.
        // 67..87: pid 1's loads.
        for i in 0..20u64 {
            lines.push(format!("X 2 {:#x} 4", 0x400000 + i * 4));
        }
        for i in 0..20u64 {
            lines.push(format!("R 2 {:#x} 4", 0x500000 + i * 4));
        }
        for i in 0..20u64 {
            lines.push(format!("R 1 {:#x} 4", 0x500000 + i * 4));
        }
        let b = batch(&lines);
        let runs: Vec<_> = b.runs().iter().map(|r| (r.start, r.end, r.pid)).collect();
        assert_eq!(runs, [(0, 20, 1), (27, 67, 2), (67, 87, 1)]);
        // pid 2's run fetches 4 bytes with each of its first 20 accesses.
        let r = &b.runs()[1];
        assert_eq!(b.fetched(r, 0, 40), 80);
        assert_eq!(b.fetched(r, 15, 10), 20, "5 fetches, then loads");
        assert_eq!(b.fetched(r, 20, 20), 0);
        assert_eq!(b.fetched(&b.runs()[0], 0, 20), 0);
        for r in b.runs() {
            let (vas, kinds) = b.packed(r);
            assert_eq!(vas.len(), r.end - r.start);
            for (k, e) in b.events()[r.start..r.end].iter().enumerate() {
                let Event::Access(a) = e else { panic!("{e:?}") };
                assert_eq!((vas[k], kinds[k]), (a.va, a.kind));
            }
        }
    }

    #[test]
    fn refilling_drops_the_runs_and_a_short_batch_has_none() {
        let lines: Vec<String> = (0..40).map(|i| format!("R 1 {:#x} 1", i * 8)).collect();
        let mut b = batch(&lines);
        assert_eq!(b.runs().len(), 1);
        b.events_mut().clear();
        assert!(b.runs().is_empty());
        assert!(!b.one_task());
        let b = batch(&lines[..MIN_RUN - 1]);
        assert!(b.runs().is_empty());
        assert!(b.one_task());
        let mut two = lines.clone();
        two.insert(3, "thread 1 0".into());
        assert!(batch(&two).one_task());
        two.insert(7, "thread 1 1".into());
        assert!(!batch(&two).one_task());
        let mut forked = lines.clone();
        forked.insert(5, "fork 1 2".into());
        assert!(!batch(&forked).one_task());
        // An access reaching the top of the address space stays in its page.
        let b = batch(&vec!["R 1 0xfffffffffffffff0 64".to_string(); MIN_RUN]);
        assert_eq!(b.runs().len(), 1);
    }
}
