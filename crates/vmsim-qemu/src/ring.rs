//! One process's records in the order they happened: every guest thread reserves slots
//! in one ring with a single atomic add, so the ring's order is a serial order of all
//! threads' accesses and syscalls; a sender thread drains it into messages for the
//! recorder.
//!
//! While the process has one thread (most of the time, for most programs), that
//! thread's accesses first gather in a small local buffer with plain stores, which
//! goes into the ring with one atomic add per [`LOCAL`] accesses, and before any
//! control record; the second thread's start empties it and ends the local mode.

use crate::wire;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Slots in the ring (a power of two).
const SLOTS: usize = 1 << 18;
const MASK: u64 = SLOTS as u64 - 1;
/// Bits of a slot's sequence number (in its meta word, above the vCPU and tag).
const SEQ_MASK: u64 = (1 << 40) - 1;

/// A slot's tag: an access word, a control header or a control payload word.
pub const TAG_ACCESS: u64 = 0;
/// A control record's header.
pub const TAG_CONTROL: u64 = 1;
/// A word of a control record's payload.
pub const TAG_PAYLOAD: u64 = 2;

#[repr(align(64))]
struct Padded(AtomicU64);

struct Slot {
    /// `(index + 1) << 24 | vcpu << 8 | tag`, stored last (Release): the slot is full.
    meta: AtomicU64,
    word: AtomicU64,
}

/// Accesses a lone thread gathers before they go into the ring.
pub const LOCAL: usize = 512;

struct Local {
    words: [u64; LOCAL],
    len: usize,
    vcpu: u32,
}

/// The ring.
pub struct Ring {
    /// The next index to reserve.
    head: Padded,
    /// The first index not yet drained.
    tail: Padded,
    slots: Box<[Slot]>,
    /// The process has one thread: its accesses gather in `local`.
    single: AtomicBool,
    local: UnsafeCell<Local>,
}

// SAFETY: `local` is touched only by the process's one guest thread while `single` is
// set (access, control and flush_local are called from guest threads only, and the
// sender thread never calls them); the second thread's start clears `single` on the
// first thread, after emptying `local`, before the new thread runs. Everything else is
// atomics.
unsafe impl Sync for Ring {}

impl Ring {
    /// An empty ring.
    pub fn new() -> Ring {
        let slots = (0..SLOTS)
            .map(|_| Slot {
                meta: AtomicU64::new(0),
                word: AtomicU64::new(0),
            })
            .collect();
        Ring {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            slots,
            single: AtomicBool::new(true),
            local: UnsafeCell::new(Local {
                words: [0; LOCAL],
                len: 0,
                vcpu: 0,
            }),
        }
    }

    /// Sends the lone thread's gathered accesses into the ring. Call from a guest
    /// thread only.
    pub fn flush_local(&self) {
        if self.single.load(Ordering::Relaxed) {
            // SAFETY: see `impl Sync for Ring`: a guest thread in local mode.
            let l = unsafe { &mut *self.local.get() };
            self.spill(l);
        }
    }

    fn spill(&self, l: &mut Local) {
        if l.len == 0 {
            return;
        }
        let i = self.reserve(l.len as u64);
        for (k, &w) in l.words[..l.len].iter().enumerate() {
            self.fill(i + k as u64, l.vcpu, TAG_ACCESS, w);
        }
        l.len = 0;
    }

    /// A second thread is starting (called on the first, before the new one runs):
    /// from now on every access takes its place in the ring at once.
    pub fn threads_share(&self) {
        self.flush_local();
        self.single.store(false, Ordering::Relaxed);
    }

    /// Empties the ring (in a forked child, whose parent drains what was in it). The
    /// child has one thread: back to local mode.
    pub fn reset(&self) {
        for s in self.slots.iter() {
            s.meta.store(0, Ordering::Relaxed);
        }
        // SAFETY: the forked child's one thread, before it records anything.
        unsafe { (*self.local.get()).len = 0 };
        self.single.store(true, Ordering::Relaxed);
        self.head.0.store(0, Ordering::Relaxed);
        self.tail.0.store(0, Ordering::Release);
    }

    /// Reserves `n` consecutive slots, waiting while the ring is full.
    #[inline(always)]
    fn reserve(&self, n: u64) -> u64 {
        let i = self.head.0.fetch_add(n, Ordering::Relaxed);
        let mut waits = 0u32;
        while i + n > self.tail.0.load(Ordering::Acquire) + SLOTS as u64 {
            // Full: the recorder is behind. Sleep rather than spin, so the cores go
            // to the sender and the recorder, which are what the wait is for.
            waits += 1;
            if waits < 4 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
        i
    }

    #[inline(always)]
    fn fill(&self, i: u64, vcpu: u32, tag: u64, word: u64) {
        let s = &self.slots[(i & MASK) as usize];
        s.word.store(word, Ordering::Relaxed);
        s.meta.store(
            ((i + 1) & SEQ_MASK) << 24 | (vcpu as u64 & 0xffff) << 8 | tag,
            Ordering::Release,
        );
    }

    /// Appends one access word by `vcpu`.
    #[inline(always)]
    pub fn access(&self, vcpu: u32, word: u64) {
        if self.single.load(Ordering::Relaxed) {
            // SAFETY: see `impl Sync for Ring`: the lone guest thread.
            let l = unsafe { &mut *self.local.get() };
            l.words[l.len] = word;
            l.len += 1;
            l.vcpu = vcpu;
            if l.len == LOCAL {
                self.spill(l);
            }
            return;
        }
        let i = self.reserve(1);
        self.fill(i, vcpu, TAG_ACCESS, word);
    }

    /// Appends a control record by `vcpu` (after the accesses gathered before it).
    pub fn control(&self, vcpu: u32, ty: wire::Ctl, payload: &[u64]) {
        debug_assert_eq!(payload.len(), ty.payload());
        self.flush_local();
        let i = self.reserve(1 + payload.len() as u64);
        self.fill(i, vcpu, TAG_CONTROL, wire::control(ty, payload.len()));
        for (k, &w) in payload.iter().enumerate() {
            self.fill(i + 1 + k as u64, vcpu, TAG_PAYLOAD, w);
        }
    }

    /// Moves the filled slots from the tail on into `out` as wire words (a thread
    /// record before any record by another vCPU than the last), up to `limit` bytes of
    /// output and only at record boundaries. With `all`, waits for slots reserved but
    /// not yet filled, up to the head as it was on entry. Returns how many slots moved.
    pub fn drain(&self, out: &mut Sink, limit: usize, all: bool) -> usize {
        let end = self.head.0.load(Ordering::Acquire);
        let mut t = self.tail.0.load(Ordering::Relaxed);
        let start = t;
        let mut waited = 0u32;
        loop {
            if out.words.len() * 8 >= limit && out.open == 0 {
                break;
            }
            let s = &self.slots[(t & MASK) as usize];
            let meta = s.meta.load(Ordering::Acquire);
            if meta >> 24 != (t + 1) & SEQ_MASK {
                if all && t < end && waited < 100_000 {
                    waited += 1;
                    std::thread::yield_now();
                    continue;
                }
                break;
            }
            let word = s.word.load(Ordering::Relaxed);
            let vcpu = (meta >> 8 & 0xffff) as u32;
            match meta & 0xff {
                TAG_PAYLOAD => {
                    out.words.push(word);
                    out.open = out.open.saturating_sub(1);
                    if out.open == 0 {
                        out.complete = out.words.len();
                    }
                }
                tag => {
                    if out.vcpu != Some(vcpu) {
                        out.words.push(wire::control(wire::Ctl::Thread, 1));
                        out.words.push(vcpu as u64);
                        out.vcpu = Some(vcpu);
                    }
                    out.words.push(word);
                    if tag == TAG_CONTROL {
                        out.open = (word >> 8 & 0xff) as usize;
                    }
                    if out.open == 0 {
                        out.complete = out.words.len();
                    }
                }
            }
            t += 1;
            if t & 4095 == 0 {
                self.tail.0.store(t, Ordering::Release);
            }
        }
        self.tail.0.store(t, Ordering::Release);
        (t - start) as usize
    }
}

/// Where drained words go before they are sent: one message being built.
pub struct Sink {
    /// The message's words (its header first).
    pub words: Vec<u64>,
    /// The vCPU the recorder was last told of.
    pub vcpu: Option<u32>,
    /// Payload words still to come of the last control record.
    pub open: usize,
    /// Words up to the end of the last whole record: what may be sent.
    pub complete: usize,
}

impl Sink {
    /// A sink whose messages start with `header`.
    pub fn new(header: &[u64]) -> Sink {
        let mut words = Vec::with_capacity(wire::MAX_MESSAGE / 8 + 64);
        words.extend_from_slice(header);
        Sink {
            words,
            vcpu: None,
            open: 0,
            complete: header.len(),
        }
    }

    /// The whole records gathered (after the header of `header_len` words).
    pub fn ready(&self, header_len: usize) -> &[u64] {
        &self.words[..self.complete.max(header_len)]
    }

    /// Forgets the whole records (sent), keeping the header and a record cut short.
    pub fn sent(&mut self, header_len: usize) {
        let end = self.complete.max(header_len);
        self.words.drain(header_len..end);
        self.complete = header_len;
    }
}

/// A lock that is only a flag: the sender holds it while draining and sending, and an
/// exiting or exec'ing thread while it sends the rest. Fork takes it around the fork,
/// so a child never inherits it held.
pub struct SpinLock(AtomicBool);

impl SpinLock {
    /// An unlocked lock.
    pub const fn new() -> SpinLock {
        SpinLock(AtomicBool::new(false))
    }

    /// Takes the lock, spinning (yielding) while another thread holds it.
    pub fn lock(&self) {
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    /// Releases it.
    pub fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Default for SpinLock {
    fn default() -> Self {
        SpinLock::new()
    }
}

impl Default for Ring {
    fn default() -> Self {
        Ring::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> Sink {
        Sink::new(&[])
    }

    #[test]
    fn records_come_out_in_reservation_order_with_thread_switches() {
        let r = Ring::new();
        r.threads_share();
        r.access(0, 10);
        r.control(1, wire::Ctl::Munmap, &[0x1000, 0x2000]);
        r.access(1, 11);
        r.access(0, 12);
        let mut s = sink();
        assert_eq!(r.drain(&mut s, 1 << 20, false), 6);
        let thread = wire::control(wire::Ctl::Thread, 1);
        let munmap = wire::control(wire::Ctl::Munmap, 2);
        assert_eq!(
            s.words,
            [thread, 0, 10, thread, 1, munmap, 0x1000, 0x2000, 11, thread, 0, 12]
        );
    }

    #[test]
    fn a_drain_stops_at_a_record_boundary_past_its_limit_and_the_rest_follows() {
        let r = Ring::new();
        r.threads_share();
        r.control(0, wire::Ctl::Mremap, &[1, 2, 3, 4]);
        r.access(0, 7);
        let mut s = sink();
        r.drain(&mut s, 8, false);
        assert_eq!(s.words.len(), 2 + 5, "the control record is not split");
        s.words.clear();
        s.complete = 0;
        r.drain(&mut s, 1 << 20, false);
        assert_eq!(s.words, [7]);
    }

    #[test]
    fn a_lone_threads_accesses_gather_and_keep_their_place_before_a_control_record() {
        let r = Ring::new();
        let mut s = sink();
        for k in 0..LOCAL as u64 - 1 {
            r.access(0, k);
        }
        assert_eq!(r.drain(&mut s, 1 << 20, false), 0, "still gathered");
        r.control(0, wire::Ctl::Brk, &[9]);
        assert_eq!(r.drain(&mut s, 1 << 20, false), LOCAL - 1 + 2);
        let brk = wire::control(wire::Ctl::Brk, 1);
        assert_eq!(&s.words[s.words.len() - 2..], [brk, 9]);
        assert_eq!(
            s.words[2..s.words.len() - 2],
            (0..LOCAL as u64 - 1).collect::<Vec<_>>()
        );
        // A full buffer goes into the ring by itself.
        s.words.clear();
        for k in 0..LOCAL as u64 {
            r.access(0, k);
        }
        assert_eq!(r.drain(&mut s, 1 << 20, false), LOCAL);
    }

    #[test]
    fn only_whole_records_are_ready_to_send() {
        let mut s = Sink::new(&[99, 1]);
        s.words
            .extend_from_slice(&[wire::control(wire::Ctl::Munmap, 2), 5]);
        s.open = 1;
        assert_eq!(s.ready(2), [99, 1]);
        s.sent(2);
        assert_eq!(s.words, [99, 1, wire::control(wire::Ctl::Munmap, 2), 5]);
        s.words.push(6);
        s.open = 0;
        s.complete = s.words.len();
        assert_eq!(s.ready(2).len(), 5);
        s.sent(2);
        assert_eq!(s.words, [99, 1]);
    }

    #[test]
    fn many_threads_lose_nothing_and_keep_each_threads_order() {
        let r = std::sync::Arc::new(Ring::new());
        r.threads_share();
        let n = 200_000u64;
        let hs: Vec<_> = (0..3u32)
            .map(|v| {
                let r = std::sync::Arc::clone(&r);
                std::thread::spawn(move || {
                    for k in 0..n {
                        r.access(v, k);
                    }
                })
            })
            .collect();
        let mut got = [Vec::new(), Vec::new(), Vec::new()];
        let mut s = sink();
        loop {
            let done = hs.iter().all(|h| h.is_finished());
            if r.drain(&mut s, 1 << 16, done) == 0 && done {
                break;
            }
            let mut cur = 0usize;
            let mut it = s.words.iter();
            while let Some(&w) = it.next() {
                if w == wire::control(wire::Ctl::Thread, 1) {
                    cur = *it.next().unwrap() as usize;
                } else {
                    got[cur].push(w);
                }
            }
            s.words.clear();
            s.vcpu = None;
        }
        for g in &got {
            assert_eq!(g.len() as u64, n);
            assert!(g.windows(2).all(|w| w[0] + 1 == w[1]));
        }
    }
}
