//! Reads in flight: storage takes time, and a page-cache folio, or a page a swap fault
//! reads ahead, is locked from the moment its read is queued until the read
//! completes, as Linux's folios are (`PG_locked`, not yet `PG_uptodate`).
//!
//! - **The clock** is the program's: the simulated CPU's cycles at its clock rate
//!   (which include a swap-in's storage time) plus the time processes waited on
//!   reads in flight (a file fault's own read among them) and the time they slept
//!   ([`Kernel::io_now`], [`Kernel::sleep`]).
//! - **The device** serves one request at a time, in order: a batch of folios (a
//!   readahead window) goes as a request per run of adjacent pages (Linux's
//!   readahead submits what it has at each page already cached, and a bio holds
//!   contiguous blocks), each of at most [`MAX_REQUEST_PAGES`] segments and
//!   [`MAX_REQUEST_BYTES`]. A request starts when the device is free and completes
//!   when its last byte has arrived (the device's latency, then its bytes at its
//!   bandwidth, see [`Storage`](super::Storage)); every folio in it is unlocked
//!   then, as a bio's completion unlocks all of its folios.
//! - **While a folio is in flight**, reclaim passes over it (`shrink_folio_list`'s
//!   failed `folio_trylock`: kept, counted as scanned, not freed), fault-around does
//!   not map it (`filemap_map_pages` skips a folio that is locked or not up to date),
//!   and a process that needs it waits. A fault that waits is minor, as x86 Linux
//!   counts it since 6.4 (it drops the VMA's lock to wait and is retried without
//!   `FAULT_FLAG_TRIED`, since the folio was in the cache); a `read` that waits takes
//!   no fault.
//! - **The kernel's work per page** read in or evicted costs cycles
//!   (`page_in_cycles`, `page_out_cycles`), so whether a reader outruns its storage
//!   depends on the storage and on that work, as on Linux.
//!
//! A program that reads faster than its storage always has the window ahead of it in
//! flight, so under a memory limit reclaim cannot take it and turns to other pages,
//! as Linux's does; one that reads slower finds the window done, and reclaim may take
//! pages of it before the reader gets there.
//!
//! **Swap writes** take time too (two-list reclaim, the Linux model). Reclaim unmaps
//! a dirty anonymous page and sends its write (`pageout`), and the page stays in the
//! swap cache, charged and on the inactive list, until the write completes
//! (`PG_writeback`). A reclaim pass's writes to adjacent slots form one request (at
//! most [`MAX_REQUEST_PAGES`] pages), as its plug merges them; a page swapped in
//! before goes back to its old slot, so a program that touches its pages at random
//! sends many small requests, and one that sweeps them a few large ones. A memory
//! group's pass holds its writes until the pass ends, as the plug Linux's
//! `shrink_lruvec` opens does, unless it has to wait for one of them first (a task's
//! plug is flushed when it sleeps) or its first request has reached
//! [`PLUG_FLUSH_BYTES`] when another starts (the plug then sends what it holds, so a
//! pass that writes a long run of slots sends it 254 pages at a time, and finds the
//! pages of the first requests done, back at the inactive tail, before it ends); the
//! machine's reclaim sends them after each batch of the scan. A swap fault that
//! reads ahead holds the writes of every pass that finding its window's frames sets
//! off until the window is read, as the plug around Linux's swap readahead does (or
//! until they make [`PLUG_REQUESTS`] requests; the window's small read is the plug's
//! first request once its first page is found, so the size rule does not send
//! them): such a pass cannot free what the passes before it wrote, so it goes down
//! to the whole inactive list, writing, until it waits for one of its own.
//! Requests are served side by side (a virtual disk, like an
//! NVMe device, takes many at once), each in the device's write latency plus its
//! bytes at the write bandwidth ([`Storage::write_ns`](super::Storage::write_ns)),
//! but only once the device has finished the reads queued before them, and reads do
//! not queue behind them. This machine's disk, traced with `block_rq_issue` and
//! `block_rq_complete`, served a swap write issued while reads were in flight after
//! them (2 to 4 ms behind a readahead window), and one issued alone in 0.03 to
//! 0.3 ms; a reclaimer that waits for such a write (a group at its limit) finds the
//! window read when it wakes, and can take pages of it. At completion the page moves
//! to the inactive tail (`folio_rotate_reclaimable`), and the next reclaim frees it
//! without another write.
//! Until then a fault on it is minor (a swap-cache hit) and maps it again, dirty
//! after the program's next store, so it is written once more when it next leaves.
//! Reclaim that finds a page still being written activates it (`shrink_folio_list`'s
//! cases 1 and 2), or, for a memory group at its limit, waits for the write and frees
//! the page (case 3: cgroup v1's reclaim has no dirty throttling, so it waits).
//!
//! **Writeback of page-cache pages** (`writeback.rs`) goes in the flusher's requests
//! of adjacent pages, a few in flight at a time ([`Kernel::send_file_write`]): a page
//! waits dirty until its request starts, is under writeback until it is done, and
//! reclaim treats it as it treats a swap write in flight.

use super::writeback::FLUSH_DEPTH;
use super::Kernel;
use crate::addr::{Pfn, SwapSlot};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// The most pages one request to the device holds, a read or a swap write (this
/// machine's virtio disk takes 254 segments a request:
/// `/sys/block/vda/queue/max_segments`).
pub(in crate::os) const MAX_REQUEST_PAGES: usize = 254;

/// The most requests a plug holds before it sends them (Linux's
/// `BLK_MAX_REQUEST_COUNT`).
const PLUG_REQUESTS: usize = 32;

/// A plug whose first request holds this many bytes or more sends what it holds
/// when another request starts (Linux's `BLK_PLUG_FLUSH_SIZE`): a large request does
/// not wait for the plug's end.
const PLUG_FLUSH_BYTES: u64 = 128 << 10;

/// The most bytes one read request holds (`/sys/block/vda/queue/max_sectors_kb`).
const MAX_REQUEST_BYTES: u64 = 4 << 20;

/// The most nanoseconds a run's sleeps may add up to (2^62, 146 years): the clock
/// stays far from overflowing.
pub const MAX_SLEEP_NS: u64 = 1 << 62;

/// The reads the storage device has queued and not completed.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    /// When the read of each page-cache frame still in flight completes, in
    /// nanoseconds of [`Kernel::io_now`]'s clock.
    done: FxHashMap<u64, u64>,
    /// When the device has sent the last byte of the reads it was asked for.
    pub(super) free_at: u64,
    /// Nanoseconds processes waited on reads in flight.
    pub(super) waited: u64,
    /// A batch's frames, kept between batches.
    scratch: Vec<Pfn>,
    /// When the write (to swap, or the flusher's to a file) of each frame still under
    /// writeback completes (`u64::MAX` while its swap batch is being queued).
    writing: FxHashMap<u64, u64>,
    /// Writes sent, `(completion, frame)`, the first to complete on top, for the move
    /// to the inactive tail at completion.
    written: BinaryHeap<Reverse<(u64, u64)>>,
    /// The swap writes `(slot, frame)` of the two-list reclaim pass in progress, sent
    /// when it ends: while a pass collects them, a page reclaim writes stays in the
    /// swap cache until its write completes; otherwise it is freed at once.
    writes: Option<Vec<(SwapSlot, Pfn)>>,
    /// A pass's writes, kept between passes.
    write_scratch: Vec<(SwapSlot, Pfn)>,
    /// The requests the plug holds (the writes, and a swap fault's window read
    /// inside it), in the order they were queued: a page for the slot after the
    /// last one's joins its request while it has room and is of its kind, as a bio
    /// merges into the plug's last request; any other starts one.
    held_requests: usize,
    /// The last held page's slot and the pages of its request.
    held_last: (u32, usize),
    /// The pages of the first held request.
    held_first: usize,
    /// Whether the last held request is a read (a swap fault's window, read inside
    /// its plug): no write joins it.
    held_last_read: bool,
    /// Plugs sent because their first request had reached [`PLUG_FLUSH_BYTES`].
    #[cfg(test)]
    pub(super) size_flushes: u64,
    /// When the flusher's last writeback request is done.
    flush_free_at: u64,
    /// When the flusher's last [`FLUSH_DEPTH`] requests are done, in the order sent.
    flush_done: VecDeque<u64>,
    /// When the write of each page-cache frame the flusher queued starts (absent for
    /// swap writes, which start when sent).
    write_start: FxHashMap<u64, u64>,
}

/// A batch of reads being queued: one request to the device.
#[derive(Debug)]
pub(super) struct IoBatch {
    /// When the device starts on the batch.
    start: u64,
    /// The frames queued so far.
    frames: Vec<Pfn>,
}

impl Kernel {
    /// The running thread sleeps `ns` nanoseconds (`nanosleep`): the clock moves on
    /// with nothing else done, so storage gets that much further through its queue
    /// and periodic work (a group's statistics flush) comes due. vmsim's clock is one
    /// for the whole machine, so while one thread of several sleeps, the others'
    /// work does not fill the time. `EINVAL` if the sleeps would add up to more than
    /// [`MAX_SLEEP_NS`].
    pub fn sleep(&mut self, ns: u64) -> Result<(), super::Errno> {
        match self.log.counters.sleep_ns.checked_add(ns) {
            Some(total) if total <= MAX_SLEEP_NS => {
                self.log.counters.sleep_ns = total;
                Ok(())
            }
            _ => Err(super::Errno::EINVAL),
        }
    }

    /// Starts queueing a batch of reads on the device.
    pub(super) fn begin_reads(&mut self) -> IoBatch {
        let now = self.io_now();
        self.inflight.prune(now, PRUNE_AT);
        IoBatch {
            start: now.max(self.inflight.free_at),
            frames: std::mem::take(&mut self.inflight.scratch),
        }
    }

    /// Starts collecting a reclaim pass's swap writes into one request; false if a
    /// pass this one runs inside is collecting them already (it sends them).
    pub(super) fn begin_writes(&mut self) -> bool {
        if self.inflight.writes.is_some() {
            return false;
        }
        self.inflight.writes = Some(std::mem::take(&mut self.inflight.write_scratch));
        true
    }

    /// Opens a plug for a step that is not itself reclaim (a swap fault's readahead
    /// window, `MADV_PAGEOUT`'s range), under two-list reclaim, the only policy that
    /// holds swap writes: whether it did (pass that to [`Kernel::end_writes`]).
    pub(super) fn plug_writes(&mut self) -> bool {
        self.config.reclaim == super::ReclaimPolicy::TwoList && self.begin_writes()
    }

    /// Sends the swap writes held since [`Kernel::begin_writes`] returned `plugged`,
    /// if it did return true (the outermost plug sends them).
    pub(super) fn end_writes(&mut self, plugged: bool) {
        if plugged {
            self.send_writes();
        }
    }

    /// Whether a reclaim pass is collecting swap writes.
    pub(super) fn collecting_writes(&self) -> bool {
        self.inflight.writes.is_some()
    }

    /// Adds the page-cache frame `pfn` (locked since it was added, see
    /// [`Kernel::lock_for_read`]) to `batch`.
    pub(super) fn queue_read(&self, batch: &mut IoBatch, pfn: Pfn) {
        batch.frames.push(pfn);
    }

    /// Sends `batch` to the device as requests served one after another, each a run of
    /// adjacent pages of a file (a page already cached between two breaks the run, as
    /// Linux's readahead submits what it has at each one) of at most
    /// [`MAX_REQUEST_PAGES`] segments (a folio is one) and [`MAX_REQUEST_BYTES`]. Each
    /// request takes the device's latency and then its bytes at its bandwidth, and its
    /// frames stay locked until its last byte arrives.
    pub(super) fn send_reads(&mut self, batch: IoBatch) {
        let storage = self.config.storage;
        let ps = self.page_size();
        let IoBatch { start, mut frames } = batch;
        let mut t = start;
        // The request being built starts at frame `first`; `folio_left` counts the
        // pages of the current folio still to come; `prev` is the last frame's page.
        let (mut first, mut segments, mut folio_left) = (0, 0, 0u64);
        let mut prev: Option<(super::FileId, u64)> = None;
        for i in 0..=frames.len() {
            let at = frames
                .get(i)
                .and_then(|p| self.cache.owner.get(&p.0).copied());
            let end = i == frames.len();
            let gap = !end && i > first && prev.map(|(f, x)| (f, x + 1)) != at;
            let new_segment = !end && folio_left == 0;
            let full = (new_segment && segments == MAX_REQUEST_PAGES)
                || (i - first) as u64 * ps >= MAX_REQUEST_BYTES;
            if (end || gap || full) && i > first {
                let done = t + storage.transfer_ns((i - first) as u64 * ps);
                for pfn in &frames[first..i] {
                    self.inflight.done.insert(pfn.0, done);
                }
                t = done;
                first = i;
                segments = 0;
                folio_left = 0;
            }
            if end {
                break;
            }
            if folio_left == 0 {
                segments += 1;
                folio_left = 1 << self.folio_of(frames[i]);
            }
            folio_left -= 1;
            prev = at;
        }
        self.inflight.free_at = self.inflight.free_at.max(t);
        frames.clear();
        self.inflight.scratch = frames;
    }

    /// Puts the swap-cache frame `pfn`, whose write to `slot` reclaim just started,
    /// under writeback in the pass's writes until they are sent and its request done.
    /// A write that starts a request sends the held writes first when they make
    /// [`PLUG_REQUESTS`] already, or when the first of them holds
    /// [`PLUG_FLUSH_BYTES`] or more, as Linux's `blk_add_rq_to_plug` flushes a plug
    /// (6.13 on: it looks at the plug's first request, the oldest).
    pub(super) fn queue_write(&mut self, pfn: Pfn, slot: SwapSlot) {
        if self.inflight.writes.is_none() {
            return;
        }
        self.hold_request(slot, false);
        self.inflight.writing.insert(pfn.0, u64::MAX);
        if let Some(writes) = self.inflight.writes.as_mut() {
            writes.push((slot, pfn));
        }
    }

    /// Counts a swap read of `slot` queued while a plug is open (a swap fault's window
    /// is read inside the plug its reclaim's writes are held in) among the plug's
    /// requests: a small read first keeps the plug from sending the large writes
    /// after it before it holds [`PLUG_REQUESTS`] requests. Only the count is kept
    /// here: the window's read is timed when the window is sent.
    pub(super) fn note_plugged_read(&mut self, slot: SwapSlot) {
        if self.inflight.writes.is_some() {
            self.hold_request(slot, true);
        }
    }

    /// Adds a page to the plug's requests: to the last one when it is of the same
    /// kind, for the slot after its last and has room, as a bio merges into the
    /// plug's last request; else as a new request, which sends the held writes first
    /// when they make [`PLUG_REQUESTS`] already or the first request holds
    /// [`PLUG_FLUSH_BYTES`] or more.
    fn hold_request(&mut self, slot: SwapSlot, read: bool) {
        let (last, len) = self.inflight.held_last;
        let held = self.inflight.held_requests;
        let joins = held > 0
            && self.inflight.held_last_read == read
            && slot.0 == last.wrapping_add(1)
            && len < MAX_REQUEST_PAGES;
        let first_large =
            held > 0 && self.inflight.held_first as u64 * self.page_size() >= PLUG_FLUSH_BYTES;
        if !joins && (held >= PLUG_REQUESTS || first_large) {
            #[cfg(test)]
            if held < PLUG_REQUESTS {
                self.inflight.size_flushes += 1;
            }
            self.flush_writes();
        }
        if joins {
            self.inflight.held_last = (slot.0, len + 1);
            if held == 1 {
                self.inflight.held_first = len + 1;
            }
        } else {
            self.inflight.held_requests += 1;
            self.inflight.held_last = (slot.0, 1);
            self.inflight.held_last_read = read;
            if self.inflight.held_requests == 1 {
                self.inflight.held_first = 1;
            }
        }
    }

    /// Sends the pass's swap writes to the device, a request per run of adjacent
    /// slots (at most [`MAX_REQUEST_PAGES`] pages each), served side by side once the
    /// reads queued before them are done: each frame stays under writeback until its
    /// request is done.
    pub(super) fn send_writes(&mut self) {
        let Some(mut writes) = self.inflight.writes.take() else {
            return;
        };
        // The device takes the writes after the reads it has queued (see the module's
        // notes), so a write sent while a window is being read is done after it.
        let start = self.io_now().max(self.inflight.free_at);
        let page = self.page_size();
        let storage = self.config.storage;
        writes.sort_unstable_by_key(|&(slot, _)| slot.0);
        for run in writes.chunk_by(|a, b| b.0 .0 == a.0 .0 + 1) {
            for request in run.chunks(MAX_REQUEST_PAGES) {
                let done = start.saturating_add(storage.write_ns(request.len() as u64 * page));
                for &(_, pfn) in request {
                    self.inflight.writing.insert(pfn.0, done);
                    self.inflight.written.push(Reverse((done, pfn.0)));
                }
            }
        }
        writes.clear();
        self.inflight.write_scratch = writes;
        self.inflight.held_requests = 0;
    }

    /// Sends one writeback request from the flusher for `pfns`, adjacent page-cache
    /// pages of one file, to start no earlier than `earliest`. The flusher keeps
    /// [`FLUSH_DEPTH`] requests in flight: a request starts when the one that many
    /// before it is done, and shares the device with the others, so it takes the
    /// device's time for its bytes that many times over (this machine's flusher kept
    /// three or four 4 MiB writes in flight, each done in 6 to 9 ms), and no earlier
    /// than the reads the device has queued. Until it starts its pages are still
    /// dirty, not yet under writeback; from then until it is done they are. At
    /// completion a page reclaim set aside moves to the inactive tail. Reads do not
    /// queue behind it.
    pub(super) fn send_file_write(&mut self, pfns: &[Pfn], earliest: u64) {
        let q = &mut self.inflight.flush_done;
        let slot_free = if q.len() >= FLUSH_DEPTH {
            q.pop_front().unwrap_or(0)
        } else {
            0
        };
        let start = earliest.max(slot_free);
        let bytes = pfns.len() as u64 * FLUSH_DEPTH as u64 * self.page_size();
        // Under writeback from `start`, done after the reads the device has queued.
        let done = start
            .max(self.inflight.free_at)
            .saturating_add(self.config.storage.transfer_ns(bytes));
        self.inflight.flush_done.push_back(done);
        self.inflight.flush_free_at = self.inflight.flush_free_at.max(done);
        for &pfn in pfns {
            self.inflight.writing.insert(pfn.0, done);
            self.inflight.write_start.insert(pfn.0, start);
            self.inflight.written.push(Reverse((done, pfn.0)));
        }
    }

    /// Whether page-cache frame `pfn` waits in the flusher's queue at `now`: sent, but
    /// its request has not started (the page is still dirty).
    pub(super) fn write_queued_at(&self, pfn: Pfn, now: u64) -> bool {
        !self.inflight.write_start.is_empty()
            && self
                .inflight
                .write_start
                .get(&pfn.0)
                .is_some_and(|&t| t > now)
    }

    /// Whether the flusher has requests in flight.
    pub(super) fn flusher_busy(&self) -> bool {
        self.io_now() < self.inflight.flush_free_at
    }

    /// A swap-in's read of `bytes` (the faulting page and the pages read ahead with it,
    /// one request): it waits for the device to finish the reads queued before it, since
    /// the device serves reads one at a time, then keeps the device busy for its bytes
    /// (swap writes go side by side and hold no read up). The fault's own transfer time is in its cycles
    /// (`fault.rs`); the report's wait counts the queue and the whole request. Writes
    /// completed meanwhile put their pages at the tail.
    pub(super) fn read_swap(&mut self, bytes: u64) {
        let now = self.io_now();
        let queued = self.inflight.free_at.saturating_sub(now);
        self.inflight.waited += queued;
        self.log.counters.io_wait_ns += queued + self.config.storage.transfer_ns(bytes);
        self.inflight.free_at = now + queued + self.config.storage.bytes_ns(bytes);
        self.complete_writes();
    }

    /// Whether `pfn` is under writeback at `now`.
    pub(super) fn writing_at(&self, pfn: Pfn, now: u64) -> bool {
        !self.inflight.writing.is_empty()
            && self.inflight.writing.get(&pfn.0).is_some_and(|&t| t > now)
            && !self.write_queued_at(pfn, now)
    }

    /// Ends the writeback of every write completed by now: each page still on an
    /// inactive list moves to its tail, the next one reclaim takes.
    pub(super) fn complete_writes(&mut self) {
        let Some(&Reverse((first, _))) = self.inflight.written.peek() else {
            return;
        };
        let now = self.io_now();
        if first > now {
            return;
        }
        while let Some(&Reverse((done, pfn))) = self.inflight.written.peek() {
            if done > now {
                break;
            }
            self.inflight.written.pop();
            // A frame that left the swap cache since is not this write's any more.
            if self.inflight.writing.get(&pfn) == Some(&done) {
                self.inflight.writing.remove(&pfn);
                self.inflight.write_start.remove(&pfn);
                self.rotate_reclaimable(Pfn(pfn));
            }
        }
    }

    /// Sends the swap writes collected so far and goes on collecting (Linux flushes a
    /// task's plug when it sleeps).
    fn flush_writes(&mut self) {
        if self.inflight.writes.is_some() {
            self.send_writes();
            self.inflight.writes = Some(std::mem::take(&mut self.inflight.write_scratch));
        }
    }

    /// Waits for `pfn`'s write, if it is under writeback (sending it first if it is
    /// still held with the pass's writes).
    pub(super) fn wait_write(&mut self, pfn: Pfn) {
        if self.inflight.writing.get(&pfn.0) == Some(&u64::MAX) {
            self.flush_writes();
        }
        let now = self.io_now();
        if let Some(&done) = self.inflight.writing.get(&pfn.0) {
            if done != u64::MAX && done > now {
                self.log.counters.io_wait_ns += done - now;
                self.inflight.waited += done - now;
            }
        }
        self.complete_writes();
    }

    /// Holds the reclaimer until `pages` of the writes in flight have completed, or
    /// `max_ns` have passed (Linux's `reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)`,
    /// which cgroup v1's reclaim calls after waking the flusher: it is woken once
    /// `SWAP_CLUSTER_MAX` pages' writeback has ended, or after 100 ms). Completed writes
    /// then put their pages at the tail.
    pub(super) fn throttle_writeback(&mut self, pages: usize, max_ns: u64) {
        let now = self.io_now();
        let mut popped = Vec::with_capacity(pages);
        let mut until = now;
        let mut counted = 0;
        while counted < pages {
            let Some(Reverse((done, pfn))) = self.inflight.written.pop() else {
                break;
            };
            popped.push(Reverse((done, pfn)));
            // Only a write still in flight counts (not one whose frame has left).
            if done > now && self.inflight.writing.get(&pfn) == Some(&done) {
                until = done;
                counted += 1;
            }
        }
        self.inflight.written.extend(popped);
        let wait = (until - now).min(max_ns);
        self.log.counters.io_wait_ns += wait;
        self.inflight.waited += wait;
        self.complete_writes();
    }

    /// Writes whose completion reclaim has not seen yet.
    #[cfg(test)]
    pub(super) fn writes_in_flight(&self) -> usize {
        self.inflight.writing.len()
    }

    /// Forgets `pfn`'s write (its frame leaves the swap cache).
    pub(super) fn forget_write(&mut self, pfn: Pfn) {
        if !self.inflight.writing.is_empty() {
            self.inflight.writing.remove(&pfn.0);
            self.inflight.write_start.remove(&pfn.0);
        }
    }

    /// Locks the new page-cache frame `pfn` until its read is queued and completes.
    pub(super) fn lock_for_read(&mut self, pfn: Pfn) {
        self.inflight.done.insert(pfn.0, u64::MAX);
    }

    /// Unlocks frame `pfn`, locked by [`Kernel::lock_for_read`], when its read
    /// completes at `done` (nothing if it was forgotten meanwhile: its frame left the
    /// cache).
    pub(super) fn unlock_read_at(&mut self, pfn: Pfn, done: u64) {
        if let Some(t) = self.inflight.done.get_mut(&pfn.0) {
            *t = done;
        }
    }

    /// Whether `pfn`'s read is still in flight at `now`.
    pub(super) fn reading_at(&self, pfn: Pfn, now: u64) -> bool {
        self.inflight.done.get(&pfn.0).is_some_and(|&t| t > now)
    }

    /// Whether `pfn`'s read is still in flight now.
    pub(super) fn reading(&self, pfn: Pfn) -> bool {
        !self.inflight.done.is_empty() && self.reading_at(pfn, self.io_now())
    }

    /// Waits for `pfn`'s read, if it is in flight; true if it had to. A frame whose
    /// window is still being filled (not sent yet) is left locked.
    pub(super) fn wait_read(&mut self, pfn: Pfn) -> bool {
        let done = match self.inflight.done.get(&pfn.0) {
            Some(&t) if t != u64::MAX => t,
            _ => return false,
        };
        self.inflight.done.remove(&pfn.0);
        let now = self.io_now();
        if done <= now {
            return false;
        }
        self.log.counters.io_wait_ns += done - now;
        self.inflight.waited += done - now;
        true
    }

    /// Waits for the first read or swap write in flight to complete (an allocation
    /// that found nothing else to reclaim); false if none is (or none has been sent
    /// yet).
    pub(super) fn wait_first_io(&mut self) -> bool {
        let now = self.io_now();
        // Writes done by now whose pages are not at the inactive tail yet: no wait.
        if (self.inflight.written.peek()).is_some_and(|&Reverse((t, _))| t <= now) {
            self.complete_writes();
            return true;
        }
        let read = self
            .inflight
            .done
            .values()
            .copied()
            .filter(|&t| t > now && t != u64::MAX)
            .min();
        let write = self
            .inflight
            .written
            .iter()
            .map(|&Reverse((t, _))| t)
            .filter(|&t| t > now)
            .min();
        let Some(first) = read.into_iter().chain(write).min() else {
            return false;
        };
        self.log.counters.io_wait_ns += first - now;
        self.inflight.waited += first - now;
        self.complete_writes();
        true
    }

    /// The frames under writeback (or held to be written, `u64::MAX`) and when each
    /// write completes.
    #[cfg(test)]
    pub(super) fn writes_done(&self) -> FxHashMap<u64, u64> {
        self.inflight.writing.clone()
    }

    /// Moves the run's clock on by `ns`, as a wait would.
    #[cfg(test)]
    pub(super) fn advance_clock_for_test(&mut self, ns: u64) {
        self.inflight.waited += ns;
    }

    /// Forgets `pfn`'s read (its frame leaves the page cache or the swap cache).
    pub(super) fn forget_read(&mut self, pfn: Pfn) {
        self.inflight.done.remove(&pfn.0);
    }
}

/// Entries past which completed reads are dropped from the table.
const PRUNE_AT: usize = 1 << 16;

impl InFlight {
    /// Drops every read completed by `now` once the table has grown past `limit`, so
    /// that it holds about what is in flight.
    pub(super) fn prune(&mut self, now: u64, limit: usize) {
        if self.done.len() > limit {
            self.done.retain(|_, &mut t| t > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::addr::{Pfn, SwapSlot};
    use crate::os::test_support::*;

    /// Locks `n` frames and sends their reads as one window, as readahead does.
    fn send_window(k: &mut crate::os::Kernel, n: u64) {
        let mut batch = k.begin_reads();
        for i in 0..n {
            k.lock_for_read(Pfn(2000 + i));
            k.queue_read(&mut batch, Pfn(2000 + i));
        }
        k.send_reads(batch);
    }

    #[test]
    fn a_swap_read_waits_behind_what_the_device_has_queued() {
        let mut k = boot("x86-64");
        send_window(&mut k, 64);
        let storage = k.config.storage;
        let t0 = k.io_now();
        k.read_swap(8 * 4096);
        assert_eq!(
            k.io_now() - t0,
            storage.transfer_ns(64 * 4096),
            "behind the window's request, latency and bytes"
        );
        let t1 = k.io_now();
        k.read_swap(4096);
        assert_eq!(
            k.io_now() - t1,
            storage.bytes_ns(8 * 4096),
            "behind the swap read"
        );
        k.advance_clock_for_test(1_000_000);
        let t2 = k.io_now();
        k.read_swap(4096);
        assert_eq!(k.io_now(), t2, "an idle device does not keep it waiting");
    }

    #[test]
    fn the_flusher_keeps_its_requests_in_flight_a_few_at_a_time() {
        use crate::os::writeback::FLUSH_DEPTH;
        let mut k = boot("x86-64");
        let t0 = k.io_now();
        // Twice the requests the flusher keeps in flight, two pages each.
        let requests: Vec<[Pfn; 2]> = (0..2 * FLUSH_DEPTH as u64)
            .map(|i| [Pfn(5000 + 2 * i), Pfn(5001 + 2 * i)])
            .collect();
        for r in &requests {
            k.send_file_write(r, t0);
        }
        let one = k.config.storage.transfer_ns(2 * FLUSH_DEPTH as u64 * 4096);
        for (i, r) in requests.iter().enumerate() {
            let round = (i / FLUSH_DEPTH) as u64;
            let (start, done) = (t0 + round * one, t0 + (round + 1) * one);
            for &p in r {
                // Dirty and queued until its request starts, under writeback until done.
                assert_eq!(k.write_queued_at(p, t0), round > 0, "request {i}");
                assert!(!k.writing_at(p, start.saturating_sub(1)) || round == 0);
                assert!(k.writing_at(p, start) && k.writing_at(p, done - 1));
                assert!(!k.writing_at(p, done), "request {i} done at {done}");
            }
        }
        assert!(k.flusher_busy());
        // A reclaimer throttled waits for the first round, not for all of them.
        k.throttle_writeback(2, u64::MAX);
        assert_eq!(k.io_now(), t0 + one);
        assert_eq!(k.writes_in_flight(), 2 * FLUSH_DEPTH * 2 - 2 * FLUSH_DEPTH);
        // Or for no longer than its limit.
        k.throttle_writeback(1, one / 2);
        assert_eq!(k.io_now(), t0 + one + one / 2);
    }

    /// A pass's writes to adjacent slots are one request and a scattered one is its
    /// own, served side by side from when they are sent: the lone page's write is
    /// done first, and a swap read does not queue behind either.
    #[test]
    fn writes_are_requests_of_adjacent_slots_served_side_by_side() {
        let mut k = boot("x86-64");
        assert!(k.begin_writes());
        assert!(!k.begin_writes(), "one pass collects them");
        let run: Vec<Pfn> = (0..16).map(|i| Pfn(3000 + i)).collect();
        // Queued out of order: the slots, not the order, make the request.
        for (i, &p) in run.iter().enumerate().rev() {
            k.queue_write(p, SwapSlot(100 + i as u32));
        }
        let lone = Pfn(4000);
        k.queue_write(lone, SwapSlot(500));
        let t0 = k.io_now();
        k.send_writes();
        let storage = k.config.storage;
        let (lone_done, run_done) = (
            t0 + storage.write_ns(4096),
            t0 + storage.write_ns(16 * 4096),
        );
        assert!(lone_done < run_done);
        assert!(k.writing_at(lone, lone_done - 1) && !k.writing_at(lone, lone_done));
        for &p in &run {
            assert!(k.writing_at(p, run_done - 1) && !k.writing_at(p, run_done));
        }
        let t1 = k.io_now();
        k.read_swap(4096);
        assert_eq!(k.io_now(), t1, "the read did not wait for the writes");
        // Done writes are seen without a wait, the lone one first.
        k.advance_clock_for_test(lone_done - t1);
        assert!(k.wait_first_io());
        assert_eq!(k.io_now(), lone_done, "no wait for a write done");
        assert_eq!(k.writes_in_flight(), 16, "the lone write's page is seen");
        assert!(k.wait_first_io(), "the run is still being written");
        assert_eq!(k.io_now(), run_done, "waited for the run");
        assert_eq!(k.writes_in_flight(), 0);
        assert!(!k.wait_first_io(), "nothing left in flight");
    }

    /// The device takes a write after the reads queued before it: sent while a window
    /// is being read, a swap write or the flusher's is done that much later; sent to
    /// an idle device, it takes its own time alone.
    #[test]
    fn a_write_is_done_after_the_reads_queued_before_it() {
        let mut k = boot("x86-64");
        let t0 = k.io_now();
        send_window(&mut k, 64);
        let storage = k.config.storage;
        let reads_done = t0 + storage.transfer_ns(64 * 4096);
        assert!(k.begin_writes());
        k.queue_write(Pfn(3000), SwapSlot(7));
        k.send_writes();
        let done = reads_done + storage.write_ns(4096);
        assert!(k.writing_at(Pfn(3000), done - 1), "behind the window");
        assert!(!k.writing_at(Pfn(3000), done));
        k.send_file_write(&[Pfn(4000)], t0);
        assert!(
            k.writing_at(Pfn(4000), t0),
            "under writeback from its start"
        );
        assert!(
            k.writing_at(Pfn(4000), reads_done),
            "done only after the reads"
        );
        // Once the reads are done, a write waits for nothing but itself.
        k.advance_clock_for_test(reads_done - t0);
        let t1 = k.io_now();
        assert!(k.begin_writes());
        k.queue_write(Pfn(3001), SwapSlot(9));
        k.send_writes();
        let alone = t1 + storage.write_ns(4096);
        assert!(k.writing_at(Pfn(3001), alone - 1) && !k.writing_at(Pfn(3001), alone));
    }

    /// A run of adjacent slots longer than a request holds goes as several requests,
    /// side by side: the device's largest, then the rest.
    #[test]
    fn a_long_run_of_writes_is_split_into_requests_the_device_takes() {
        use super::MAX_REQUEST_PAGES;
        let mut k = boot("x86-64");
        assert!(k.begin_writes());
        let n = 2 * MAX_REQUEST_PAGES + 92;
        let pages: Vec<Pfn> = (0..n as u64).map(|i| Pfn(10_000 + i)).collect();
        for (i, &p) in pages.iter().enumerate() {
            k.queue_write(p, SwapSlot(1000 + i as u32));
        }
        let t0 = k.io_now();
        k.send_writes();
        let storage = k.config.storage;
        let full = t0 + storage.write_ns(MAX_REQUEST_PAGES as u64 * 4096);
        let rest = t0 + storage.write_ns(92 * 4096);
        for (i, &p) in pages.iter().enumerate() {
            let done = if i < 2 * MAX_REQUEST_PAGES {
                full
            } else {
                rest
            };
            assert!(
                k.writing_at(p, done - 1) && !k.writing_at(p, done),
                "page {i}"
            );
        }
    }

    /// A plug holds at most [`PLUG_REQUESTS`] requests: the write that would start
    /// one more sends those held first, and is held itself. A write to the slot after
    /// the last one's joins its request.
    #[test]
    fn a_plug_full_of_requests_sends_them_before_holding_another() {
        use super::PLUG_REQUESTS;
        let mut k = boot("x86-64");
        assert!(k.begin_writes());
        // Two adjacent slots (one request of two pages), then lone pages apart from
        // each other, up to a full plug: every request is under 128 KiB.
        let mut pages = Vec::new();
        for i in 0..2 {
            let p = Pfn(20_000 + i);
            k.queue_write(p, SwapSlot(1_000 + i as u32));
            pages.push(p);
        }
        for r in 1..PLUG_REQUESTS as u32 {
            let p = Pfn(30_000 + u64::from(r));
            k.queue_write(p, SwapSlot(10_000 + 10 * r));
            pages.push(p);
        }
        assert!(
            pages.iter().all(|&p| k.writing_at(p, u64::MAX - 1)),
            "all held"
        );
        let extra = Pfn(40_000);
        k.queue_write(extra, SwapSlot(50_000));
        let done = k.io_now() + k.config.storage.write_ns(2 * 4096);
        for &p in &pages {
            assert!(!k.writing_at(p, done), "sent when the plug filled");
        }
        assert!(k.writing_at(extra, u64::MAX - 1), "the new request is held");
        k.send_writes();
        assert!(!k.writing_at(extra, k.io_now() + k.config.storage.write_ns(4096)));
    }

    /// A plug whose first request has reached 128 KiB sends what it holds when the
    /// next request starts, as Linux's does (the 255th page of adjacent slots starts
    /// a request: the first 254 go at once). A small first request holds the plug,
    /// however large the requests after it: Linux 6.13 on looks at the first.
    #[test]
    fn a_large_first_request_goes_when_the_next_one_starts() {
        use super::{MAX_REQUEST_PAGES, PLUG_FLUSH_BYTES};
        let mut k = boot("x86-64");
        let t0 = k.io_now();
        let run = |k: &mut Kernel, pfn: u64, slot: u32, n: usize| -> Vec<Pfn> {
            (0..n)
                .map(|i| {
                    let p = Pfn(pfn + i as u64);
                    k.queue_write(p, SwapSlot(slot + i as u32));
                    p
                })
                .collect()
        };
        assert!(k.begin_writes());
        let first = run(&mut k, 20_000, 1_000, MAX_REQUEST_PAGES);
        assert!(first.iter().all(|&p| k.writing_at(p, u64::MAX - 1)), "held");
        let next = run(&mut k, 30_000, 1_000 + MAX_REQUEST_PAGES as u32, 1);
        let done = t0 + k.config.storage.write_ns(MAX_REQUEST_PAGES as u64 * 4096);
        for &p in &first {
            assert!(k.writing_at(p, done - 1) && !k.writing_at(p, done), "sent");
        }
        assert!(
            k.writing_at(next[0], u64::MAX - 1),
            "the new request is held"
        );
        k.send_writes();
        // One page short of 128 KiB first: the plug holds on.
        let small = (PLUG_FLUSH_BYTES / 4096) as usize - 1;
        assert!(k.begin_writes());
        let a = run(&mut k, 40_000, 5_000, small);
        let b = run(&mut k, 50_000, 9_000, MAX_REQUEST_PAGES);
        let c = run(&mut k, 60_000, 20_000, 1);
        assert!(
            a.iter()
                .chain(&b)
                .chain(&c)
                .all(|&p| k.writing_at(p, u64::MAX - 1)),
            "all held behind a small first request"
        );
        k.send_writes();
        // 128 KiB first: the next request sends it.
        assert!(k.begin_writes());
        let a = run(&mut k, 70_000, 30_000, small + 1);
        let b = run(&mut k, 80_000, 40_000, 1);
        assert!(a.iter().all(|&p| !k.writing_at(p, u64::MAX - 1)), "sent");
        assert!(k.writing_at(b[0], u64::MAX - 1), "held");
        k.send_writes();
    }

    /// A swap fault's window read inside the plug is a request of its own: when it is
    /// the plug's first, the large runs of writes its reclaim queues after it stay
    /// held, as Linux's plug judges by its first request; a write never joins it.
    #[test]
    fn a_window_read_first_keeps_the_writes_after_it_held() {
        use super::MAX_REQUEST_PAGES;
        let mut k = boot("x86-64");
        assert!(k.begin_writes());
        k.note_plugged_read(SwapSlot(999));
        let pages: Vec<Pfn> = (0..=MAX_REQUEST_PAGES as u32 + 1)
            .map(|i| {
                let p = Pfn(20_000 + u64::from(i));
                k.queue_write(p, SwapSlot(1_000 + i));
                p
            })
            .collect();
        assert!(
            pages.iter().all(|&p| k.writing_at(p, u64::MAX - 1)),
            "held behind the read"
        );
        k.send_writes();
        // No plug open: nothing is counted.
        k.note_plugged_read(SwapSlot(5));
        assert!(!k.collecting_writes());
    }

    /// A reclaimer that has to wait for a write it is still holding sends the writes
    /// it holds first (Linux flushes a task's plug when it sleeps), then waits for
    /// that one; it goes on holding the writes after.
    #[test]
    fn waiting_for_a_held_write_sends_the_held_writes() {
        let mut k = boot("x86-64");
        assert!(k.begin_writes());
        let (a, b) = (Pfn(3000), Pfn(3001));
        k.queue_write(a, SwapSlot(10));
        k.queue_write(b, SwapSlot(50));
        let t0 = k.io_now();
        k.wait_write(a);
        let done = t0 + k.config.storage.write_ns(4096);
        assert_eq!(k.io_now(), done, "waited for a's request");
        assert!(!k.writing_at(a, done));
        assert!(!k.writing_at(b, done), "b went with it, side by side");
        assert!(k.collecting_writes(), "still holding the pass's writes");
        let c = Pfn(3002);
        k.queue_write(c, SwapSlot(90));
        assert!(k.writing_at(c, u64::MAX - 1), "held until sent");
        k.send_writes();
        assert!(!k.writing_at(c, done + k.config.storage.write_ns(4096)));
    }

    #[test]
    fn a_queued_folio_is_locked_until_its_bytes_arrive_and_a_waiter_advances_the_clock() {
        let mut k = boot("x86-64");
        let (a, b) = (Pfn(1000), Pfn(1001));
        let mut batch = k.begin_reads();
        k.lock_for_read(a);
        k.queue_read(&mut batch, a);
        k.lock_for_read(b);
        assert!(k.reading(a) && k.reading(b), "locked from the start");
        k.queue_read(&mut batch, b);
        k.send_reads(batch);
        assert!(k.reading(a) && k.reading(b));
        let before = k.io_now();
        assert!(k.wait_read(a), "a's read was in flight");
        let storage = k.config.storage;
        assert_eq!(
            k.io_now() - before,
            storage.transfer_ns(2 * 4096),
            "a waited for the latency and the request's bytes"
        );
        // One request: b arrived with a.
        assert!(!k.reading(b));
        assert!(!k.wait_read(b), "done reads are not waited for");
        // The device is free again: the next batch starts now.
        let next = k.begin_reads();
        assert_eq!(next.start, k.io_now());
    }

    #[test]
    fn a_sleep_lets_a_read_in_flight_complete_without_a_wait() {
        let mut k = boot("x86-64");
        let a = Pfn(1000);
        let mut batch = k.begin_reads();
        k.lock_for_read(a);
        k.queue_read(&mut batch, a);
        k.send_reads(batch);
        let before = k.io_now();
        k.sleep(1_000).unwrap();
        assert_eq!(k.io_now(), before + 1_000);
        assert!(k.reading(a), "1 us is not enough for a read");
        k.sleep(k.config.storage.transfer_ns(4096)).unwrap();
        assert!(!k.reading(a), "done while the program slept");
        assert!(!k.wait_read(a));
        assert_eq!(k.log.counters.io_wait_ns, 0, "nobody waited");
        let slept = k.log.counters.sleep_ns;
        assert!(k.sleep(super::MAX_SLEEP_NS).is_err(), "past the most");
        assert!(k.sleep(u64::MAX).is_err());
        assert_eq!(
            k.log.counters.sleep_ns, slept,
            "a refused sleep takes no time"
        );
    }

    /// Puts pages `pages` of `f` in the page cache and sends their reads as one
    /// batch, as a readahead window does; returns their frames in order.
    fn read_pages_of(
        k: &mut crate::os::Kernel,
        pid: crate::os::Pid,
        f: crate::os::FileId,
        pages: impl Iterator<Item = u64>,
    ) -> Vec<Pfn> {
        let mut batch = k.begin_reads();
        let mut frames = Vec::new();
        for i in pages {
            let pfn = k.fill_cache_page(pid, false, f, i, Some(0), false).unwrap();
            k.queue_read(&mut batch, pfn);
            frames.push(pfn);
        }
        k.send_reads(batch);
        frames
    }

    #[test]
    fn a_window_goes_as_one_request_per_run_of_adjacent_pages() {
        let mut k = boot("x86-64");
        let f = k.create_file("/data", vec![1; 64 * 4096]);
        let pid = spawn(&mut k);
        // Page 8 cached already: the window 0..16 is read as two requests, one after
        // the other, each paying the device's latency.
        k.read_file(pid, f, 8 * 4096, 1);
        let page8 = k.cache.pages[&(f, 8)];
        k.wait_read(page8);
        let t0 = k.io_now();
        let frames = read_pages_of(&mut k, pid, f, (0..16).filter(|&i| i != 8));
        let storage = k.config.storage;
        let first = t0 + storage.transfer_ns(8 * 4096);
        let second = first + storage.transfer_ns(7 * 4096);
        for (n, &pfn) in frames.iter().enumerate() {
            let done = if n < 8 { first } else { second };
            assert_eq!(k.inflight.done[&pfn.0], done, "frame {n}");
        }
        assert_eq!(k.inflight.free_at, second);
    }

    #[test]
    fn a_long_window_is_split_at_the_device_s_segment_limit() {
        use super::MAX_REQUEST_PAGES;
        let mut k = boot("x86-64");
        let n = MAX_REQUEST_PAGES as u64 + 10;
        let f = k.create_file("/data", vec![1; (n * 4096) as usize]);
        let pid = spawn(&mut k);
        let t0 = k.io_now();
        let frames = read_pages_of(&mut k, pid, f, 0..n);
        let storage = k.config.storage;
        let full = t0 + storage.transfer_ns(MAX_REQUEST_PAGES as u64 * 4096);
        assert_eq!(k.inflight.done[&frames[0].0], full);
        assert_eq!(k.inflight.done[&frames[MAX_REQUEST_PAGES - 1].0], full);
        let rest = full + storage.transfer_ns(10 * 4096);
        assert_eq!(k.inflight.done[&frames[MAX_REQUEST_PAGES].0], rest);
    }
}
