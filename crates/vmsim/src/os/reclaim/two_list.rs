//! Two-list reclaim as Linux's `mm/vmscan.c` does it without the multi-generational
//! LRU: anonymous and file pages each on an inactive and an active list, and a
//! reclaim that asks for pages at falling *priorities* until it has them.
//!
//! - At priority `p` (12 down to 0), each list's scan target is its length shifted
//!   right by `p`, split between the kinds by `get_scan_count`: file pages only when
//!   swap is full, or in *cache trim* mode (enough inactive file pages, and no file
//!   refaults activated since the last reclaim, and the inactive file list not short);
//!   otherwise anonymous pages `swappiness` (60) parts and file pages 140, each part
//!   divided by its kind's reclaim cost (swap writes and refaults raise it, see
//!   `workingset.rs`); at priority 0 every list in full.
//! - The lists are scanned 32 pages at a time in turn. An inactive page whose mappings
//!   were used since the last look is activated if it was already `PG_referenced` (or
//!   used through two mappings, or is a program's text), else marked and kept; an
//!   unused one is evicted. An active list is scanned only while its inactive list is
//!   short (or refaults came): every page scanned moves to the inactive list, marked
//!   `PG_workingset`, except a program's text in use, which stays.
//! - A reclaim limited to a group or to kswapd, once it has its pages, stops scanning
//!   the kind with less left and trims the other in proportion.
//! - A group's pass holds the swap writes it starts until it ends (`inflight.rs`): a
//!   pass that finds nothing it can free at once goes down the priorities writing
//!   what it finds, and none of it comes back free before the pass is over.
//! - After each priority's pass, the shadow shrinker trims the page cache's nodes of
//!   shadow entries (`workingset.rs`), as `shrink_slab` does.
//!
//! The simulated policy `two-list` (`policy/two_list.rs`) is the textbook two lists;
//! this is the kernel's.

use super::{Evicted, Scope, FILE_LISTS, PG_RECLAIM, PG_REFERENCED, PG_WORKINGSET, RECLAIM_BATCH};
use crate::addr::{Pfn, VirtAddr};
use crate::hw::{PageTable, Paging, PhysMem};
use crate::os::frames::{FrameKind, FrameTable};
use crate::os::rmap::Rmap;
use crate::os::{Kernel, Pid};
use crate::policy::two_list::{ACTIVE, INACTIVE};

/// Linux's default `vm.swappiness`: anonymous pages' share of the scan, in 200.
const SWAPPINESS: u64 = 60;

/// The first (least urgent) priority: lists are scanned by their length over 2^12.
const DEF_PRIORITY: u32 = 12;

/// The longest a group's reclaim waits for writeback after waking the flusher
/// (`reclaim_throttle`'s `HZ/10`).
const WRITEBACK_THROTTLE_NS: u64 = 100_000_000;

/// The lists in the order Linux scans them: inactive anon, active anon, inactive
/// file, active file.
const LRUS: [u32; 4] = [INACTIVE, ACTIVE, FILE_LISTS + INACTIVE, FILE_LISTS + ACTIVE];

/// How many mappings of `pfn` were accessed since the last look, and whether one of
/// them is executable (Linux's `folio_referenced` gathers the `vm_flags` of the
/// mappings it found young); clears the bits. The entries are read and written where
/// the reverse map says they are (as Linux's `ptep_test_and_clear_young`, without a
/// TLB flush). A mapping `recency` refuses (by process and address) is passed over,
/// its bit neither read nor cleared; `exec` tells (by process and address) whether a
/// mapping is executable, and is asked only of young ones.
pub(super) fn young_refs(
    paging: &Paging,
    ram: &mut PhysMem,
    rmap: &Rmap,
    pfn: Pfn,
    recency: impl Fn(Pid, VirtAddr) -> bool,
    exec: impl Fn(Pid, VirtAddr) -> bool,
) -> Young {
    let mut young = Young::default();
    rmap.each(pfn, |p, va, pte| {
        if recency(p, va) && PageTable::test_and_clear_accessed_at(paging, ram, pte, pfn) {
            young.refs += 1;
            young.exec = young.exec || exec(p, va);
        }
    });
    young
}

/// What reclaim learns of a page's mappings from their Accessed bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(in crate::os) struct Young {
    /// Mappings accessed since the last look.
    pub(in crate::os) refs: u32,
    /// One of them maps it executable (`VM_EXEC`): a program's text in use.
    pub(in crate::os) exec: bool,
}

/// Whether reclaim in `scope` may take `pfn`.
pub(super) fn in_scope(frames: &FrameTable, rmap: &Rmap, pfn: Pfn, scope: Scope) -> bool {
    match scope {
        Scope::Global => true,
        Scope::Group(g) => frames.group(pfn) == g.0,
        Scope::Process(p) => {
            let mut mine = false;
            rmap.each(pfn, |q, _, _| mine |= q == p);
            mine
        }
    }
}

/// How `get_scan_count` splits a priority's scan between the kinds (Linux's
/// `scan_balance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Balance {
    /// Every list its full share.
    Equal,
    /// By swappiness over each kind's reclaim cost.
    Fract,
    /// Anonymous pages only.
    Anon,
    /// File pages only.
    File,
}

/// Whether an active list may be scanned (`may_deactivate`), per kind.
type Deactivate = [bool; 2];

impl Kernel {
    /// The group whose lists and costs a reclaim in `scope` goes by (the root's, which
    /// stand for the machine, for global and per-process reclaim).
    fn target(scope: Scope) -> u16 {
        match scope {
            Scope::Group(g) => g.0,
            _ => 0,
        }
    }

    /// Whether the inactive list of a kind (0 anonymous, [`FILE_LISTS`] file) of
    /// group `g` is short of its active one (Linux's `inactive_is_low`: the ratio
    /// wanted grows with the square root of the lists' size in GiB), by the group's
    /// statistics as last flushed (`rstat.rs`).
    fn inactive_is_low(&self, g: u16, base: u32) -> bool {
        let inactive = self.seen_len(g, base + INACTIVE) as u64;
        let active = self.seen_len(g, base + ACTIVE) as u64;
        let gib = ((inactive + active) * self.page_size()) >> 30;
        let ratio = if gib > 0 { (10 * gib).isqrt() } else { 1 };
        inactive * ratio < active
    }

    /// Whether anonymous pages can go anywhere (a swap slot is free).
    pub(in crate::os) fn swap_room(&self) -> bool {
        self.swap
            .dev
            .as_ref()
            .is_some_and(|d| d.stats.used < d.stats.slots)
    }

    /// `get_scan_count`: the pages to scan on each list of group `g` at `priority`,
    /// indexed as the lists are.
    fn scan_count(&mut self, g: u16, global: bool, priority: u32, may: Deactivate) -> [usize; 4] {
        let l = &self.reclaim.lists;
        let size = |i: u32| l.len_in(g, i);
        let inactive_file = size(FILE_LISTS + INACTIVE);
        // Cache trim mode goes by the statistics as last flushed (`rstat.rs`).
        let trim = self.seen_len(g, FILE_LISTS + INACTIVE) >> priority > 0 && !may[1];
        // The machine almost out of file pages: anonymous pages go, or reclaim would
        // thrash a tiny page cache (global reclaim only).
        let file_is_tiny = global && {
            let file = (inactive_file + size(FILE_LISTS + ACTIVE)) as u64;
            file + self.frames.nr_free() <= self.reclaim.watermarks.high
                && !may[0]
                && size(INACTIVE) >> priority > 0
        };
        let v = *self.reclaim.lruvec(g);
        // Each kind's share: its weight over its cost (costs counted twice over the
        // total, so that neither share reaches zero).
        let total = v.anon_cost + v.file_cost;
        let (anon_cost, file_cost) = (total + v.anon_cost, total + v.file_cost);
        let total = anon_cost + file_cost;
        let ap = SWAPPINESS * (total + 1) / (anon_cost + 1);
        let fp = (200 - SWAPPINESS) * (total + 1) / (file_cost + 1);
        let balance = if !self.swap_room() {
            Balance::File
        } else if file_is_tiny {
            Balance::Anon
        } else if priority == 0 {
            Balance::Equal
        } else if trim {
            Balance::File
        } else {
            Balance::Fract
        };
        let l = &self.reclaim.lists;
        std::array::from_fn(|i| {
            let file = i as u32 >= FILE_LISTS;
            let scan = l.len_in(g, i as u32) >> priority;
            match balance {
                Balance::Equal => scan,
                Balance::Fract => {
                    let share = if file { fp } else { ap };
                    (scan as u64 * share / (ap + fp)) as usize
                }
                Balance::Anon if file => 0,
                Balance::File if !file => 0,
                Balance::Anon | Balance::File => scan,
            }
        })
    }

    /// Reclaim under two-list: priorities from 12 down until `want` pages went (Linux's
    /// `do_try_to_free_pages`). If nothing went because active lists were left alone,
    /// once more scanning them regardless.
    pub(super) fn shrink(&mut self, want: usize, scope: Scope) -> usize {
        let g = Self::target(scope);
        self.flush_stats_if_due();
        let mut freed = 0;
        let mut force = false;
        loop {
            let mut skipped = false;
            for priority in (0..=DEF_PRIORITY).rev() {
                let may = if force {
                    [true, true]
                } else {
                    let activated = self.seen_activations(g);
                    let seen = self.reclaim.lruvec(g).refaults;
                    [
                        activated[0] != seen[0] || self.inactive_is_low(g, 0),
                        activated[1] != seen[1] || self.inactive_is_low(g, FILE_LISTS),
                    ]
                };
                freed += self.shrink_lists(scope, g, priority, want, may, &mut skipped);
                self.shrink_slab(scope, priority);
                if freed >= want {
                    break;
                }
            }
            if freed > 0 || !skipped || force {
                break;
            }
            force = true;
        }
        let activated = self.seen_activations(g);
        self.reclaim.lruvec(g).refaults = activated;
        freed
    }

    /// What `shrink_slab` does after a priority's pass: the shadow shrinker of the
    /// group reclaimed, or of every group for the machine's reclaim (vmsim has no
    /// other shrinkable caches).
    fn shrink_slab(&mut self, scope: Scope, priority: u32) {
        match scope {
            Scope::Group(g) => {
                self.shrink_shadow_nodes(g.0, priority);
            }
            Scope::Global => {
                for g in 0..self.groups.list.len() as u16 {
                    self.shrink_shadow_nodes(g, priority);
                }
            }
            Scope::Process(_) => {}
        }
    }

    /// One priority's pass over the lists (Linux's `shrink_lruvec`); returns the pages
    /// freed.
    fn shrink_lists(
        &mut self,
        scope: Scope,
        g: u16,
        priority: u32,
        want: usize,
        may: Deactivate,
        skipped: &mut bool,
    ) -> usize {
        let global = matches!(scope, Scope::Global);
        let targets = self.scan_count(g, global, priority, may);
        let mut nr = targets;
        // Direct reclaim of the machine at the first priority scans its whole share;
        // kswapd and a group's reclaim stop once they have their pages.
        let proportional = global && !self.reclaim.in_kswapd && priority == DEF_PRIORITY;
        // A group's pass holds its swap writes until it ends (Linux's plug around
        // `shrink_lruvec`), or until it waits for one of them. The machine's reclaim
        // sends them batch by batch: vmsim has no writeback throttling of kswapd and
        // direct reclaim, which keeps Linux's from spinning while they are in flight.
        let plugged = matches!(scope, Scope::Group(_)) && self.begin_writes();
        let mut freed = 0;
        while nr[0] + nr[2] + nr[3] > 0 {
            for (i, &lru) in LRUS.iter().enumerate() {
                if nr[i] == 0 {
                    continue;
                }
                let n = nr[i].min(RECLAIM_BATCH);
                nr[i] -= n;
                let file = lru >= FILE_LISTS;
                if lru % 2 == ACTIVE {
                    if may[file as usize] {
                        self.shrink_active(lru, n, scope);
                    } else {
                        *skipped = true;
                    }
                } else {
                    freed += self.shrink_inactive(lru, n, scope, g);
                }
            }
            if freed < want || proportional {
                continue;
            }
            let left_file = nr[2] + nr[3];
            let left_anon = nr[0] + nr[1];
            if left_file == 0 || left_anon == 0 {
                break;
            }
            // Stop the kind with less left; cut the other to the share of its target
            // the first kind had done.
            let (stop, other) = if left_file > left_anon {
                (0, 2)
            } else {
                (2, 0)
            };
            let done = (nr[stop] + nr[stop + 1]) * 100 / (targets[stop] + targets[stop + 1] + 1);
            nr[stop] = 0;
            nr[stop + 1] = 0;
            for i in [other, other + 1] {
                let scanned = targets[i] - nr[i];
                nr[i] = (targets[i] * (100 - done) / 100).saturating_sub(scanned);
            }
        }
        // Keep the anonymous lists in proportion even when only file pages went.
        if self.swap_room() && self.inactive_is_low(g, 0) {
            self.shrink_active(ACTIVE, RECLAIM_BATCH, scope);
        }
        if plugged {
            self.send_writes();
        }
        freed
    }

    /// The tail of list `lru` that reclaim in `scope` may take; pages of others move
    /// to the head (Linux keeps a list per group; vmsim one list for all). `None` when
    /// the list has none in scope.
    fn isolate(&mut self, lru: u32, scope: Scope) -> Option<u32> {
        for _ in 0..self.reclaim.lists.len(lru) {
            let f = self.reclaim.lists.tail(lru)?;
            if self.in_scope(Pfn(f as u64), scope) {
                return Some(f);
            }
            self.reclaim.lists.move_to_head(lru, f);
        }
        None
    }

    /// The frames reclaim takes together with `pfn`, the tail of list `lru`: a file
    /// page's folio (its pages on the same list and in `scope`), as Linux's lists hold
    /// a folio as one entry; any other frame alone. Returned in a buffer to hand back
    /// to `self.reclaim.folio`.
    fn folio_on(&mut self, pfn: Pfn, lru: u32, scope: Scope) -> Vec<Pfn> {
        let mut folio = std::mem::take(&mut self.reclaim.folio);
        folio.clear();
        if lru < FILE_LISTS {
            folio.push(pfn);
            return folio;
        }
        self.folio_frames(pfn, &mut folio);
        let lists = &self.reclaim.lists;
        folio.retain(|&p| {
            p == pfn
                || (lists.list_of(p.0 as u32) == Some(lru)
                    && in_scope(&self.frames, &self.rmap, p, scope))
        });
        folio
    }

    /// Puts every page of `folio` back at the head of inactive list `lru`, whole and
    /// not activated: a folio reclaim passed over (`shrink_folio_list`'s `keep`).
    fn keep_inactive(&mut self, lru: u32, folio: &[Pfn]) {
        for &pfn in folio {
            self.reclaim.lists.move_to_head(lru, pfn.0 as u32);
        }
    }

    /// Scans up to `n` pages at the tail of inactive list `lru` (Linux's
    /// `shrink_inactive_list` and `folio_check_references`), a folio at a time;
    /// returns the pages freed.
    fn shrink_inactive(&mut self, lru: u32, n: usize, scope: Scope, g: u16) -> usize {
        let file = lru >= FILE_LISTS;
        let (mut scanned, mut freed, mut written) = (0u64, 0usize, 0u64);
        // Pages of dirty file folios not yet being written (`nr_unqueued_dirty`).
        let mut unqueued_dirty = 0usize;
        // `n` pages: a huge page or a folio takes all of its pages' share (Linux's
        // `isolate_lru_folios` counts `folio_nr_pages`).
        let mut left = n;
        // Writes done since the last pass put their pages at the tail.
        self.complete_writes();
        let mut now = self.io_now();
        // The pass's swap writes go as one request.
        let batch_writes = !file && self.begin_writes();
        while left > 0 {
            let Some(f) = self.isolate(lru, scope) else {
                break;
            };
            self.prefetch_ahead(lru, f);
            let folio = self.folio_on(Pfn(f as u64), lru, scope);
            for &pfn in &folio {
                left = left.saturating_sub(self.reclaim.lists.weight(pfn.0 as u32));
                scanned += 1;
                self.note_scan(scope);
            }
            if folio.iter().any(|&p| self.reading_at(p, now)) {
                // Locked for a read in flight: passed over, kept where it goes back.
                self.keep_inactive(lru, &folio);
                self.reclaim.folio = folio;
                continue;
            }
            if folio.iter().any(|&p| self.writing_at(p, now)) {
                // Reclaim asked for the write (a swap write, or a dirty file folio it
                // set aside), or the flusher wrote it on its own.
                let asked = !file || self.reclaim.flag(folio[0], PG_RECLAIM);
                if asked && matches!(scope, Scope::Group(_)) {
                    // cgroup v1's reclaim waits for the write, then takes the page.
                    for &pfn in &folio {
                        self.wait_write(pfn);
                    }
                    now = self.io_now();
                } else {
                    // Out of the way while its write completes.
                    for &pfn in &folio {
                        self.reclaim.set_flag(pfn, PG_RECLAIM, file);
                        self.activate(pfn);
                    }
                    self.reclaim.folio = folio;
                    continue;
                }
            }
            // Dirty and not yet being written, whatever its references decide below:
            // Linux counts `nr_unqueued_dirty` before `folio_check_references`.
            if file
                && folio
                    .iter()
                    .any(|&p| self.file_page_dirty(p) || self.write_queued_at(p, now))
            {
                unqueued_dirty += folio.len();
            }
            let mut refs = 0;
            let mut exec = false;
            let mut referenced = false;
            for &pfn in &folio {
                // Every mapping's bits are read and cleared; the folio counts as used
                // through as many mappings as its most used page, and as text if one
                // of them is executable.
                let young = self.young_of(pfn, file);
                refs = refs.max(young.refs);
                exec |= young.exec;
                referenced |= self.reclaim.flag(pfn, PG_REFERENCED);
                self.reclaim.set_flag(pfn, PG_REFERENCED, false);
            }
            if refs > 0 {
                let activate = referenced || refs > 1 || (file && exec);
                for &pfn in &folio {
                    self.reclaim.set_flag(pfn, PG_REFERENCED, true);
                    if activate {
                        self.activate(pfn);
                    } else {
                        self.reclaim.lists.move_to_head(lru, pfn.0 as u32);
                    }
                }
            } else if folio.len() > 1 && folio.iter().any(|p| self.reclaim.pinned.contains(p)) {
                // A fault or a read holds one of its pages: the folio stays whole where
                // it goes back, not activated, as `shrink_folio_list` keeps a folio it
                // cannot lock, or cannot free for a reference held (`__remove_mapping`).
                self.keep_inactive(lru, &folio);
            } else if file
                && self.frames.kind(folio[0]) == FrameKind::File
                && self.set_aside_if_dirty(&folio, now)
            {
                // Dirty: unmapped, kept for the flusher to write.
            } else {
                // One shadow age for the folio's pages (a single page: its own).
                let age = (folio.len() > 1).then(|| self.eviction_age(folio[0]));
                for &pfn in &folio {
                    let outs = self.log.counters.swap_outs;
                    match self.steal(pfn, scope, age) {
                        Some(Evicted::Writing) => {
                            // Kept where it goes back until its write is done.
                            written += 1;
                            self.reclaim.lists.move_to_head(lru, pfn.0 as u32);
                        }
                        Some(_) => {
                            freed += 1;
                            // Written to swap now (not a clean page whose slot held
                            // its bytes).
                            written += (self.log.counters.swap_outs > outs) as u64;
                        }
                        None if self.reclaim.pinned.contains(&pfn) => {
                            // A fault holds it (locked, on Linux): kept where it goes
                            // back, as `shrink_folio_list` keeps a folio it cannot
                            // lock, not activated.
                            self.reclaim.lists.move_to_head(lru, pfn.0 as u32);
                        }
                        None => {
                            // It cannot go now (no swap slot): keep it active.
                            self.activate(pfn);
                        }
                    }
                }
            }
            self.reclaim.folio = folio;
        }
        if batch_writes {
            self.send_writes();
        }
        // Every page taken was dirty and none was being written: the flushers are
        // behind (`shrink_inactive_list` wakes them).
        if file && scanned > 0 && unqueued_dirty as u64 == scanned {
            self.wakeup_flusher();
            // cgroup v1 has no dirty throttling: its reclaim waits for writeback here.
            if matches!(scope, Scope::Group(_)) {
                self.throttle_writeback(RECLAIM_BATCH, WRITEBACK_THROTTLE_NS);
            }
        }
        self.note_cost(g, file, written, scanned - freed as u64);
        self.log.counters.lru_scanned[file as usize] += scanned;
        self.log.counters.lru_reclaimed[file as usize] += freed as u64;
        freed
    }

    /// If file folio `folio` (off the inactive list, unreferenced) is dirty, or a
    /// mapping wrote it: unmaps it, marks it dirty and `PG_reclaim`, and activates it,
    /// for the flusher to write (reclaim writes no file page, as Linux's direct and
    /// memory-group reclaim do not). Whether it was.
    fn set_aside_if_dirty(&mut self, folio: &[Pfn], now: u64) -> bool {
        if folio.iter().any(|p| self.reclaim.pinned.contains(p)) {
            return false;
        }
        // Queued by the flusher but not yet being written: still dirty on Linux.
        let queued = folio.iter().any(|&p| self.write_queued_at(p, now));
        let mut dirty = folio.iter().any(|&p| self.file_page_dirty(p));
        for &pfn in folio {
            dirty |= self.unmap_everywhere(pfn);
        }
        if !dirty && !queued {
            return false;
        }
        for &pfn in folio {
            if dirty {
                self.cache.dirty.insert(pfn.0);
            }
            self.reclaim.set_flag(pfn, PG_RECLAIM, true);
            self.activate(pfn);
        }
        true
    }

    /// Scans up to `n` pages at the tail of active list `lru` (Linux's
    /// `shrink_active_list`), a folio at a time: each moves to the inactive list with
    /// `PG_workingset`, its Accessed bits cleared, except a program's text in use,
    /// which goes round the active list again.
    fn shrink_active(&mut self, lru: u32, n: usize, scope: Scope) {
        let mut left = n;
        while left > 0 {
            let Some(f) = self.isolate(lru, scope) else {
                break;
            };
            self.prefetch_ahead(lru, f);
            let folio = self.folio_on(Pfn(f as u64), lru, scope);
            // Text used since the last look goes round the active list again.
            let mut keep = false;
            for &pfn in &folio {
                left = left.saturating_sub(self.reclaim.lists.weight(pfn.0 as u32));
                self.log.counters.active_scanned += 1;
                if let Scope::Group(g) = scope {
                    self.log.counters.active_scanned_group += 1;
                    self.group_stat(g.0).pgrefill += 1;
                }
                keep |= self.young_of(pfn, lru >= FILE_LISTS).exec;
            }
            for &pfn in &folio {
                if keep {
                    // Put back active: the clock ages (`move_folios_to_lru`).
                    self.reclaim.lists.move_to_head(lru, pfn.0 as u32);
                    self.age_nonresident(self.frames.group(pfn));
                    continue;
                }
                self.reclaim.lists.move_to_head(lru - ACTIVE, pfn.0 as u32);
                self.reclaim.set_flag(pfn, PG_WORKINGSET, true);
                self.log.counters.deactivations += 1;
            }
            self.reclaim.folio = folio;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::os::reclaim::{Scope, RECLAIM_BATCH};
    use crate::os::test_support::*;
    use crate::policy::two_list::{ACTIVE, INACTIVE};

    /// Two-list reclaim with swap and no swap readahead, and a process that wrote `n`
    /// pages (page `i` holds `i + 1`: none is a page of zeros) which two passes over
    /// the inactive list then sent to swap: the first found them used and cleared
    /// their Accessed bits, the second unmapped them and sent their writes. No time
    /// has passed since.
    fn written_out(n: u64) -> (Kernel, Pid, VirtAddr) {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.swap_bytes = 64 << 20;
            c.swap_readahead = 1;
        });
        let pid = spawn(&mut k);
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        let outs = k.log.counters.swap_outs;
        let total = k.reclaim.lists.len(INACTIVE);
        for _ in 0..2 {
            k.shrink_inactive(INACTIVE, total, Scope::Global, 0);
        }
        assert!(k.log.counters.swap_outs - outs >= n, "the area was written");
        (k, pid, a)
    }

    /// A memory group's pass holds its swap writes until the pass ends, as Linux's
    /// plug around `shrink_lruvec` does: however long the pass takes (each page
    /// written costs the kernel time), they go to the device together, one request of
    /// adjacent slots, so none completes before the others. The machine's reclaim
    /// sends them batch by batch, as the pass goes.
    #[test]
    fn a_groups_pass_sends_its_swap_writes_when_it_ends() {
        for group in [true, false] {
            let mut k = boot_with("x86-64", |c| {
                c.reclaim = ReclaimPolicy::TwoList;
                c.swap_bytes = 64 << 20;
                c.swap_readahead = 1;
                // Writes slower than the pass, so that none is done before it ends.
                c.storage = crate::os::Storage::Vm.with_writes(600_000, 400_000_000);
            });
            let pid = spawn(&mut k);
            let g = k.create_group("/g", None).unwrap();
            k.set_group(pid, g).unwrap();
            let scope = if group {
                Scope::Group(g)
            } else {
                Scope::Global
            };
            let n = 200;
            let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
            write_pages(&mut k, pid, a, n, |i| i + 1);
            // The first look clears the Accessed bits; the pass finds them clear.
            let total = k.reclaim.lists.len(INACTIVE);
            k.shrink_inactive(INACTIVE, total, scope, g.0);
            let (outs, t0) = (k.log.counters.swap_outs, k.io_now());
            let mut skipped = false;
            k.shrink_lists(scope, g.0, 0, usize::MAX, [false, false], &mut skipped);
            let written = k.log.counters.swap_outs - outs;
            assert!(
                written > 4 * RECLAIM_BATCH as u64,
                "{written} pages written"
            );
            assert!(k.io_now() > t0, "the pass took time");
            assert_eq!(k.writes_in_flight(), written as usize);
            assert!(k.wait_first_io());
            let left = k.writes_in_flight();
            if group {
                assert_eq!(left, 0, "one request, sent as the pass ended");
            } else {
                assert!(left > 0, "the first batch's write came first");
            }
        }
    }

    #[test]
    fn a_page_a_fault_holds_is_passed_over_and_kept_inactive() {
        // Linux's reclaim cannot lock a folio a fault holds (locked for its read) and
        // keeps it on the inactive list; activating it would grow the active list
        // with pages nobody used twice.
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.swap_bytes = 64 << 20;
        });
        let pid = spawn(&mut k);
        let n = 16;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        let total = k.reclaim.lists.len(INACTIVE);
        // The first pass clears the Accessed bits; the second would take every page.
        k.shrink_inactive(INACTIVE, total, Scope::Global, 0);
        let held = k.reclaim.lists.tail(INACTIVE).unwrap();
        k.reclaim.pinned.push(Pfn(held as u64));
        let activations = k.log.counters.activations;
        k.shrink_inactive(INACTIVE, total, Scope::Global, 0);
        k.reclaim.pinned.pop();
        assert_eq!(k.reclaim.lists.list_of(held), Some(INACTIVE));
        assert_eq!(k.log.counters.activations, activations);
        assert!(k.log.counters.swap_outs > 0, "the others went");
    }

    #[test]
    fn a_large_folio_a_reader_holds_is_kept_inactive_whole() {
        // Linux's reclaim cannot free a folio a `read` holds a reference to
        // (`__remove_mapping` fails) or a fault has locked: it goes back to the
        // inactive list, whole. Activating it would fill the active file list with
        // pages nobody used twice, at the expense of everything else.
        let mut k = boot_with("x86-64", |c| c.reclaim = ReclaimPolicy::TwoList);
        let f = k.create_file("/data", vec![1; 4096 * 4096]);
        k.set_file_readahead(f, 8 << 20);
        let pid = spawn(&mut k);
        for i in 0..2048u64 {
            k.read_file(pid, f, i * 8192, 8192);
        }
        k.advance_clock_for_test(1_000_000_000);
        // A page of a large folio at the tail, held.
        let lru = super::FILE_LISTS + INACTIVE;
        let held = loop {
            let t = k.reclaim.lists.tail(lru).unwrap();
            if k.folio_of(Pfn(t as u64)) > 0 {
                break t;
            }
            k.reclaim.lists.move_to_head(lru, t);
        };
        let mut folio = Vec::new();
        k.folio_frames(Pfn(held as u64), &mut folio);
        assert!(folio.len() > 1);
        k.reclaim.pinned.push(Pfn(held as u64));
        let activations = k.log.counters.activations;
        k.shrink_inactive(lru, folio.len(), Scope::Global, 0);
        k.reclaim.pinned.pop();
        for p in &folio {
            assert_eq!(k.reclaim.lists.list_of(p.0 as u32), Some(lru));
            assert!(k.cache.owner.contains_key(&p.0), "still cached");
        }
        assert_eq!(k.log.counters.activations, activations);
    }

    #[test]
    fn an_activation_by_reclaim_ages_the_non_resident_clock() {
        // Linux's `move_folios_to_lru` ages the clock for every active folio reclaim
        // puts back, so refault distances count reclaim's activations too.
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.swap_bytes = 64 << 20;
        });
        let pid = spawn(&mut k);
        let n = 64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        let total = k.reclaim.lists.len(INACTIVE);
        // The first pass finds each page used once: kept, marked referenced.
        k.shrink_inactive(INACTIVE, total, Scope::Global, 0);
        assert_eq!(k.reclaim.lists.len(ACTIVE), 0);
        // Used again after their TLB entries went, so their Accessed bits are set.
        k.machine.mmu.flush_all();
        write_pages(&mut k, pid, a, n, |i| i + 2);
        let (age, activations) = (k.reclaim.lruvec(0).age, k.log.counters.activations);
        // The second finds them used again: every one goes active.
        k.shrink_inactive(INACTIVE, total, Scope::Global, 0);
        assert_eq!(k.log.counters.activations - activations, n);
        assert_eq!(k.reclaim.lists.len(ACTIVE) as u64, n);
        assert_eq!(k.reclaim.lruvec(0).age - age, n, "one tick per activation");
    }

    #[test]
    fn a_page_written_after_madv_free_is_anonymous_again_and_activated_not_dropped() {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.swap_bytes = 64 << 20;
        });
        let pid = spawn(&mut k);
        let n = 32;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i + 1);
        k.madvise_free(pid, a, n * 4096).unwrap();
        // Written again after the advice.
        write_pages(&mut k, pid, a, n, |i| i + 7);
        let lru = super::FILE_LISTS + INACTIVE;
        assert_eq!(k.reclaim.lists.len(lru) as u64, n);
        let (outs, active) = (k.log.counters.swap_outs, k.reclaim.lists.len(ACTIVE) as u64);
        // The first pass finds them used: kept a round.
        k.shrink_inactive(lru, n as usize, Scope::Global, 0);
        assert_eq!(k.reclaim.lists.len(lru) as u64, n);
        // The second finds them written: back on the anonymous lists, active.
        k.shrink_inactive(lru, n as usize, Scope::Global, 0);
        assert_eq!(k.reclaim.lists.len(lru), 0);
        assert_eq!(k.reclaim.lists.len(ACTIVE) as u64 - active, n);
        assert_eq!(k.log.counters.swap_outs, outs, "nothing written");
        assert_eq!(k.log.counters.lazyfree_discards, 0, "nothing dropped");
        for i in 0..n {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 7);
        }
    }

    #[test]
    fn a_page_being_written_to_swap_stays_in_the_swap_cache_and_comes_back_minor() {
        let n = 64;
        let (mut k, pid, a) = written_out(n);
        assert!(k.writes_in_flight() as u64 >= n);
        let ins = k.log.counters.swap_ins;
        for i in 0..n {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
        }
        assert_eq!(k.log.counters.swap_ins, ins, "nothing read from swap");
        assert_eq!(faults(&k, FaultKind::SwapCache), n, "each a swap-cache hit");
    }

    #[test]
    fn a_page_written_to_swap_goes_first_once_its_write_is_done_and_is_not_written_again() {
        let mut k = boot_with("x86-64", |c| {
            c.reclaim = ReclaimPolicy::TwoList;
            c.swap_bytes = 64 << 20;
        });
        let pid = spawn(&mut k);
        // 32 pages, then 64 newer ones; a pass over all of them clears their
        // Accessed bits, and a pass over the oldest 32 sends them to swap.
        let old = k.mmap(pid, MmapArgs::anon(32 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, old, 32, |i| i + 1);
        let new = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, new, 64, |i| i + 1);
        let all = k.reclaim.lists.len(INACTIVE);
        k.shrink_inactive(INACTIVE, all, Scope::Global, 0);
        let outs = k.log.counters.swap_outs;
        k.shrink_inactive(INACTIVE, 32, Scope::Global, 0);
        let writing = k.writes_in_flight();
        assert_eq!(writing, 32);
        assert_eq!(k.log.counters.swap_outs - outs, 32);
        // Their pages went back to the head, the newer ones are at the tail; once
        // the writes are done their pages move to the tail: a scan of 32 pages frees
        // exactly them, and writes nothing.
        let rotated = k.log.counters.rotated;
        k.advance_clock_for_test(1_000_000_000);
        let freed = k.shrink_inactive(INACTIVE, writing, Scope::Global, 0);
        assert_eq!(freed, writing);
        assert_eq!(k.log.counters.rotated - rotated, writing as u64);
        assert_eq!(
            k.log.counters.swap_outs,
            outs + 32,
            "freed without another write"
        );
        assert_eq!(k.writes_in_flight(), 0);
        for i in 0..32 {
            assert_eq!(k.read_u64(pid, VirtAddr(old.0 + i * 4096)).unwrap(), i + 1);
        }
    }

    #[test]
    fn machine_reclaim_sets_a_page_being_written_aside_where_a_group_at_its_limit_waits() {
        let (mut k, _, _) = written_out(64);
        let writing = k.writes_in_flight();
        let active = k.reclaim.lists.len(ACTIVE);
        assert_eq!(k.shrink_inactive(INACTIVE, writing, Scope::Global, 0), 0);
        assert_eq!(k.writes_in_flight(), writing, "still being written");
        assert_eq!(k.reclaim.lists.len(ACTIVE), active + writing, "activated");
        // Once written they go to the inactive tail (`lru_move_tail` clears
        // `PG_active`), and the next look frees them.
        k.advance_clock_for_test(1_000_000_000);
        k.complete_writes();
        assert_eq!(k.writes_in_flight(), 0);
        assert_eq!(k.reclaim.lists.len(ACTIVE), active, "inactive again");
        assert_eq!(
            k.shrink_inactive(INACTIVE, writing, Scope::Global, 0),
            writing
        );

        let (mut k, pid, a) = written_out(64);
        let (waited, outs) = (k.log.counters.io_wait_ns, k.log.counters.swap_outs);
        // A group's reclaim (here the root's) that meets them waits for their writes,
        // as cgroup v1's does, and frees them.
        let writing = k.writes_in_flight();
        let freed = k.shrink_inactive(INACTIVE, writing, Scope::Group(GroupId(0)), 0);
        assert_eq!(freed, writing);
        assert!(
            k.log.counters.io_wait_ns > waited,
            "it waited for the writes"
        );
        assert_eq!(k.log.counters.swap_outs, outs);
        for i in 0..64 {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i + 1);
        }
    }

    #[test]
    fn reclaim_passes_over_pages_whose_read_is_in_flight() {
        let mut k = boot_small(8 << 20, 0, ReclaimPolicy::TwoList);
        let f = k.create_file("/data", vec![1; 64 * 4096]);
        let pid = spawn(&mut k);
        let args = MmapArgs {
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(64 * 4096, Prot::READ)
        };
        let va = k.mmap(pid, args).unwrap();
        // `MADV_WILLNEED` reads the first 32 pages in one request and waits for none.
        k.madvise_willneed(pid, va, 32 * 4096).unwrap();
        let window: Vec<_> = (0..32).map(|i| k.cache.pages[&(f, i)]).collect();
        assert!(window.iter().all(|&p| k.reading(p)));
        let evicted = k.log.counters.file_evictions;
        k.reclaim(64, Scope::Global);
        assert_eq!(k.log.counters.file_evictions, evicted, "all locked");
        assert!((0..32).all(|i| k.cache.pages.contains_key(&(f, i))));
        // Once the read is done (the program waited for it), they can go.
        assert!(k.wait_read(window[0]));
        assert!(!k.reading(window[31]), "one request: all arrived together");
        k.reclaim(64, Scope::Global);
        assert!(k.log.counters.file_evictions >= evicted + 32);
    }

    #[test]
    fn a_streaming_reader_pushes_out_file_pages_not_anonymous_ones() {
        let mut k = boot_small(4 << 20, 16 << 20, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let n = 256u64; // 1 MiB of anonymous memory in use
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i);
        let f = k.create_file("/stream", vec![3; 16 << 20]);
        for pass in 0..2u64 {
            for i in 0..256u64 {
                k.read_file(pid, f, i * 65536, 65536);
                // The program keeps using its memory meanwhile.
                let p = (i + pass) % n;
                assert_eq!(k.read_u64(pid, VirtAddr(a.0 + p * 4096)).unwrap(), p);
            }
        }
        assert!(
            k.log.counters.file_evictions > 3000,
            "the file streamed through"
        );
        assert_eq!(
            k.log.counters.swap_outs, 0,
            "cache trim: file pages went first"
        );
    }

    #[test]
    fn a_file_page_used_once_is_text_only_through_an_executable_mapping() {
        // Linux's `folio_check_references` activates a file page used once only if a
        // mapping that used it has `VM_EXEC`: a program's headers and read-only data,
        // mapped without it, are kept for a second look like any data.
        let mut k = boot_with("x86-64", |c| c.reclaim = ReclaimPolicy::TwoList);
        let f = k.create_file("/prog", vec![1; 8 * 4096]);
        let pid = spawn(&mut k);
        let map = |k: &mut Kernel, offset: u64, prot: Prot| {
            let args = MmapArgs {
                source: MapSource::File(f, offset),
                ..MmapArgs::anon(4 * 4096, prot)
            };
            k.mmap(pid, args).unwrap()
        };
        // Pages 0-3 read-only, pages 4-7 executable, as a program's segments.
        let data = map(&mut k, 0, Prot::READ);
        let text = map(&mut k, 4 * 4096, Prot::READ | Prot::EXEC);
        let mut b = [0u8];
        k.read(pid, data, &mut b).unwrap();
        k.read(pid, text, &mut b).unwrap();
        let (d, t) = (k.cache.pages[&(f, 0)], k.cache.pages[&(f, 4)]);
        let lru = crate::os::reclaim::FILE_LISTS + INACTIVE;
        for &p in &[d, t] {
            assert_eq!(k.reclaim.lists.list_of(p.0 as u32), Some(lru));
        }
        let n = k.reclaim.lists.len(lru);
        k.shrink_inactive(lru, n, Scope::Global, 0);
        assert_eq!(
            k.reclaim.lists.list_of(t.0 as u32),
            Some(lru + ACTIVE),
            "text"
        );
        assert_eq!(k.reclaim.lists.list_of(d.0 as u32), Some(lru), "data kept");
        assert!(
            k.reclaim.flag(d, crate::os::reclaim::PG_REFERENCED),
            "data marked for next time"
        );
    }

    #[test]
    fn reclaim_takes_a_file_folio_whole() {
        // A sequential reader of a file four times the RAM, with 2 MiB readahead: the
        // windows come in folios of up to 512 pages, and reclaim must drop each one
        // whole (Linux's lists hold a folio as one entry), never part of one.
        let mut k = boot_small(8 << 20, 0, ReclaimPolicy::TwoList);
        k.config.readahead_pages = 512;
        let pages = 8192u64;
        let f = k.create_file("/big", vec![1; (pages * 4096) as usize]);
        let pid = spawn(&mut k);
        let args = MmapArgs {
            source: MapSource::File(f, 0),
            ..MmapArgs::anon(pages * 4096, Prot::READ)
        };
        let va = k.mmap(pid, args).unwrap();
        let mut largest = 0;
        let mut b = [0u8];
        for i in 0..pages {
            k.read(pid, VirtAddr(va.0 + i * 4096), &mut b).unwrap();
            assert_eq!(b, [1]);
            if i % 64 != 0 {
                continue;
            }
            for (&(file, idx), &pfn) in &k.cache.pages {
                let order = k.folio_of(pfn);
                largest = largest.max(order);
                let head = crate::os::readahead::folio_start(idx, order);
                let whole = (head..head + (1 << order)).all(|j| {
                    k.cache
                        .pages
                        .get(&(file, j))
                        .is_some_and(|&p| k.folio_of(p) == order)
                });
                assert!(
                    whole,
                    "page {idx}'s folio of order {order} is cut, at page {i}"
                );
            }
        }
        assert!(largest >= 6, "readahead made large folios: order {largest}");
        // Everything but what RAM holds at the end went.
        assert!(
            k.log.counters.file_evictions > 3 * 2048,
            "the file streamed through: {} evictions",
            k.log.counters.file_evictions
        );
    }

    /// Moves every page of group `g` on inactive list `lru` to its active list.
    fn activate_all(k: &mut Kernel, g: u16, lru: u32) {
        for pfn in 0..k.frames.nr_frames() {
            let f = pfn as u32;
            if k.reclaim.lists.list_of(f) == Some(lru) && k.frames.group(Pfn(pfn)) == g {
                k.activate(Pfn(pfn));
            }
        }
    }

    #[test]
    fn a_group_whose_pages_are_all_active_reclaims_again_rather_than_killing() {
        let mut k = boot_with("x86-64", |c| {
            c.memory_max = Some(64 * 4096);
            c.swap_bytes = 16 << 20;
            c.reclaim = ReclaimPolicy::TwoList;
        });
        let pid = spawn(&mut k);
        let g = k.process(pid).unwrap().group.0;
        // A file's page and anonymous pages up to the limit, flushed to the group's
        // statistics while they are inactive.
        let f = k.create_file("/data", vec![1; 4096]);
        k.read_file(pid, f, 0, 4096);
        let a = k.mmap(pid, MmapArgs::anon(128 * 4096, Prot::RW)).unwrap();
        let limit = k.groups()[g as usize].max_pages.unwrap();
        let mut n = 0;
        while k.groups()[g as usize].charged < limit {
            write_pages(&mut k, pid, VirtAddr(a.0 + n * 4096), 1, |_| n);
            n += 1;
        }
        k.advance_clock_for_test(crate::os::rstat::STATS_FLUSH_NS / 2);
        k.flush_stats_if_due();
        // Then all of them go active (which the statistics do not show yet), and
        // refaults since the last reclaim let it deactivate pages of both kinds.
        activate_all(&mut k, g, INACTIVE);
        activate_all(&mut k, g, super::FILE_LISTS + INACTIVE);
        assert_eq!(k.reclaim.lists.len_in(g, INACTIVE), 0);
        assert!(k.seen_len(g, INACTIVE) > 0);
        k.reclaim.lruvec(g).refaults = [1, 1];
        // The next page's first reclaim pass frees nothing: with the inactive lists
        // empty it scans only at priority 0, driven by the file page, and deactivates
        // a batch of anonymous pages, clearing their Accessed bits. The next pass
        // sends them to swap.
        write_pages(&mut k, pid, VirtAddr(a.0 + n * 4096), 1, |_| n);
        assert!(k.process(pid).unwrap().is_running());
        assert_eq!(k.log.counters.oom_kills, 0);
        assert!(k.log.counters.swap_outs > 0);
        for i in 0..=n {
            assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        }
    }
}
