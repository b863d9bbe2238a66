//! The working set of a memory group, as Linux's `mm/workingset.c` measures it: when
//! reclaim evicts a page, a *shadow entry* is left where the page was (in the page
//! cache for a file page, in the swap slot for an anonymous one), stamped with the
//! group's *non-resident age* — a clock that ticks once per eviction and per
//! activation. When the page is read back (a *refault*), the ticks since are its
//! *refault distance*: how much more memory would have kept it. A page whose distance
//! is within the group's working set (its active pages, and its inactive ones of the
//! other kind while there is swap) comes back on the active list; one that was active
//! before it left (`PG_workingset`) also raises the cost of reclaiming its kind, which
//! turns reclaim towards the other kind (see `reclaim/two_list.rs`).
//!
//! A page added to the page cache for a write takes its shadow without counting a
//! refault (Linux's `filemap_add_folio` with `__GFP_WRITE`: caching data about to be
//! overwritten says nothing about the working set).
//!
//! **Shadow nodes.** Linux keeps a file's shadow entries in the page cache's radix
//! tree, whose leaf nodes hold 64 pages each. A node left holding shadows and no page
//! goes on a list (per memory group, oldest first), and a *shrinker* frees such nodes,
//! shadows and all, after each priority's pass of a group's reclaim
//! (`count_shadow_nodes`, `scan_shadow_nodes`, `do_shrink_slab` in mm/shrinker.c):
//! it keeps as many nodes as an eighth of the group's pages (its lists' lengths as
//! last flushed, `rstat.rs`), and frees half of those above that per call, plus work
//! it deferred, in batches of 128 nodes, once there are 128 to do or all of them. A
//! group made for a run sees its lists at zero until the first flush of its
//! statistics, so every node is above the limit: on this machine's Linux, programs
//! under a limit lost a half to two thirds of their file shadows this way, and read
//! those pages back without a refault. Shadows of swapped pages live in the swap
//! table on Linux 6.18, which no shrinker trims. vmsim counts a node per 64 aligned
//! pages of a file, also under a large folio's single multi-page entry (Linux puts
//! an entry of 64 pages or more in a node a level up).
//!
//! Counters as Linux names them: `workingset_refault_{anon,file}` (evicted pages read
//! back), `workingset_activate_{anon,file}` (of those, activated),
//! `workingset_restore_{anon,file}` (of those, active before eviction) and
//! `workingset_nodereclaim` (shadow nodes the shrinker freed).

use super::reclaim::{Evicted, ReclaimPolicy, FILE_LISTS, PG_WORKINGSET, RECLAIM_BATCH};
use super::{FileId, Kernel};
use crate::addr::{Pfn, SwapSlot};
use crate::policy::two_list::{ACTIVE, INACTIVE};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Pages per leaf node of the page cache's radix tree (`XA_CHUNK_SIZE`).
const NODE_PAGES: u64 = 64;

/// Nodes a shrinker call frees at a time (`SHRINK_BATCH`).
const SHRINK_BATCH: u64 = 128;

/// What reclaim remembers of an evicted page (Linux packs it into the shadow entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shadow {
    /// The memory group the page was charged to.
    group: u16,
    /// The group's non-resident age when the page left.
    eviction: u64,
    /// The page had `PG_workingset`.
    workingset: bool,
}

/// The shadow entries: in the page cache by (file, page) and in swap by slot.
#[derive(Debug, Default)]
pub(super) struct Shadows {
    file: FxHashMap<(FileId, u64), Shadow>,
    swap: SlotShadows,
    nodes: ShadowNodes,
}

/// The page cache's leaf nodes, by (file, page / 64), that hold shadow entries and no
/// page, oldest first per group (Linux's `shadow_nodes` list), for the shadow
/// shrinker. A node is listed when its last page leaves with a shadow and taken off
/// when a page comes back, so a listed node always holds shadows.
#[derive(Debug, Default)]
struct ShadowNodes {
    /// Nodes with shadows and no page, by (group, when listed).
    listed: BTreeMap<(u16, u64), (FileId, u64)>,
    /// Where each listed node is in `listed`.
    place: FxHashMap<(FileId, u64), (u16, u64)>,
    /// Listed nodes per group.
    per_group: Vec<u64>,
    /// The shrinker's deferred work per group (`nr_deferred`).
    deferred: Vec<u64>,
    /// The next listing's stamp.
    next: u64,
}

impl ShadowNodes {
    /// Puts `node` at the tail of group `g`'s list (moving it if it is listed).
    fn list(&mut self, node: (FileId, u64), g: u16) {
        self.unlist(node);
        let at = (g, self.next);
        self.next += 1;
        self.listed.insert(at, node);
        self.place.insert(node, at);
        let i = g as usize;
        if self.per_group.len() <= i {
            self.per_group.resize(i + 1, 0);
        }
        self.per_group[i] += 1;
    }

    /// Takes `node` off its list, if it is on one.
    fn unlist(&mut self, node: (FileId, u64)) {
        if let Some(at) = self.place.remove(&node) {
            self.listed.remove(&at);
            self.per_group[at.0 as usize] -= 1;
        }
    }

    /// Group `g`'s listed nodes.
    fn count(&self, g: u16) -> u64 {
        self.per_group.get(g as usize).copied().unwrap_or(0)
    }

    /// Group `g`'s oldest listed node, taken off the list.
    fn pop_oldest(&mut self, g: u16) -> Option<(FileId, u64)> {
        let (&at, &node) = self.listed.range((g, 0)..=(g, u64::MAX)).next()?;
        self.listed.remove(&at);
        self.place.remove(&node);
        self.per_group[g as usize] -= 1;
        Some(node)
    }

    /// Takes group `g`'s deferred work.
    fn take_deferred(&mut self, g: u16) -> u64 {
        self.deferred.get_mut(g as usize).map_or(0, std::mem::take)
    }

    /// Adds to group `g`'s deferred work.
    fn defer(&mut self, g: u16, n: u64) {
        let i = g as usize;
        if self.deferred.len() <= i {
            self.deferred.resize(i + 1, 0);
        }
        self.deferred[i] += n;
    }
}

/// Swap's shadow entries, one place per slot (as Linux keeps them in the swap cache's
/// slots): slots are small dense numbers, so a refault finds its shadow by index, with
/// no hashing, on the swap-in path of every major fault.
#[derive(Debug, Default)]
struct SlotShadows {
    /// By slot; [`SlotShadows::NONE`] where a slot holds no shadow. Grows to the
    /// highest slot that has held one.
    by_slot: Vec<Shadow>,
}

impl SlotShadows {
    /// An empty place (no group has this number: groups are counted in `u16` from 0
    /// and the last number is never handed out).
    const NONE: Shadow = Shadow {
        group: u16::MAX,
        eviction: 0,
        workingset: false,
    };

    /// Leaves `shadow` in `slot`, replacing any there.
    fn insert(&mut self, slot: u32, shadow: Shadow) {
        let i = slot as usize;
        if i >= self.by_slot.len() {
            self.by_slot.resize(i + 1, Self::NONE);
        }
        self.by_slot[i] = shadow;
    }

    /// Hints the host to cache `slot`'s place (see [`crate::hw::ram::prefetch_at`]).
    #[inline]
    fn prefetch(&self, slot: u32) {
        crate::hw::ram::prefetch_at(&self.by_slot, slot as usize);
    }

    /// Takes the shadow in `slot`, if any.
    fn remove(&mut self, slot: u32) -> Option<Shadow> {
        let place = self.by_slot.get_mut(slot as usize)?;
        let shadow = std::mem::replace(place, Self::NONE);
        (shadow.group != Self::NONE.group).then_some(shadow)
    }
}

impl Shadows {
    /// Hints the host to cache swap slot `slot`'s shadow: a swap-in asks for it as it
    /// starts, and reads it once a frame is found (which may reclaim), by which time it
    /// has come. Nothing computed changes.
    #[inline]
    pub(super) fn prefetch_swap(&self, slot: SwapSlot) {
        self.swap.prefetch(slot.0);
    }
}

/// Where a page came back from, to find its shadow.
#[derive(Clone, Copy, Debug)]
pub(super) enum Refault {
    /// Read into the page cache: this file's page.
    File(FileId, u64),
    /// Read from swap: this slot.
    Swap(SwapSlot),
}

impl Kernel {
    /// Ticks group `g`'s non-resident clock, and the root's, which counts every group's
    /// (Linux's `workingset_age_nonresident`).
    pub(super) fn age_nonresident(&mut self, g: u16) {
        self.reclaim.lruvec(g).age += 1;
        if g != 0 {
            self.reclaim.lruvec(0).age += 1;
        }
    }

    /// The shadow `pfn` would leave if evicted now (the clock does not tick yet), or,
    /// for a page of a folio whose eviction began at `folio_age`, that age: Linux reads
    /// the clock once per folio and leaves one shadow for all of its pages, so every
    /// page of a folio refaults at least the folio's size away.
    pub(super) fn shadow_of(&mut self, pfn: Pfn, folio_age: Option<u64>) -> Shadow {
        let eviction = match folio_age {
            Some(age) => age,
            None => self.eviction_age(pfn),
        };
        Shadow {
            group: self.frames.group(pfn),
            eviction,
            workingset: self.reclaim.flag(pfn, PG_WORKINGSET),
        }
    }

    /// The non-resident clock of the group `pfn` is charged to: what a folio's
    /// shadow records when its eviction begins with `pfn`.
    pub(super) fn eviction_age(&mut self, pfn: Pfn) -> u64 {
        let group = self.frames.group(pfn);
        self.reclaim.lruvec(group).age
    }

    /// Leaves `shadow` where an evicted page went and ticks its group's clock (Linux's
    /// `workingset_eviction`). A discarded `MADV_FREE` page leaves none.
    pub(super) fn leave_shadow(&mut self, gone: Evicted, shadow: Shadow) {
        match gone {
            Evicted::File(file, idx) => {
                self.reclaim.shadows.file.insert((file, idx), shadow);
                // The node's last page just left: it holds shadows alone now.
                let node = idx / NODE_PAGES;
                let range = (file, node * NODE_PAGES)..(file, (node + 1) * NODE_PAGES);
                if self.cache.pages.range(range).next().is_none() {
                    self.reclaim.shadows.nodes.list((file, node), shadow.group);
                }
            }
            Evicted::Swap(slot) => {
                self.reclaim.shadows.swap.insert(slot.0, shadow);
            }
            Evicted::Discarded | Evicted::Writing => return,
        }
        self.age_nonresident(shadow.group);
    }

    /// A page just read back into `pfn` (on the inactive list): if it left a shadow,
    /// counts the refault and, under two-list reclaim, activates it when its refault
    /// distance is within the working set (Linux's `workingset_refault`).
    pub(super) fn refault(&mut self, pfn: Pfn, from: Refault) {
        let (shadow, file) = match from {
            Refault::File(f, i) => (self.take_file_shadow(f, i), true),
            Refault::Swap(slot) => (self.reclaim.shadows.swap.remove(slot.0), false),
        };
        let Some(shadow) = shadow else { return };
        let kind = file as usize;
        let g = self.frames.group(pfn);
        self.log.counters.workingset_refault[kind] += 1;
        let st = self.group_stat(g);
        *(if file {
            &mut st.workingset_refault_file
        } else {
            &mut st.workingset_refault_anon
        }) += 1;
        if self.config.reclaim != ReclaimPolicy::TwoList || !self.recent(shadow, file) {
            return;
        }
        self.lru_activate(pfn);
        self.age_nonresident(g);
        self.log.counters.workingset_activate[kind] += 1;
        let st = self.group_stat(g);
        *(if file {
            &mut st.workingset_activate_file
        } else {
            &mut st.workingset_activate_anon
        }) += 1;
        if shadow.workingset {
            self.reclaim.set_flag(pfn, PG_WORKINGSET, true);
            self.note_cost(g, file, 1, 0);
            self.log.counters.workingset_restore[kind] += 1;
        }
    }

    /// Page `idx` of `file` is back in the page cache: takes its shadow, if the
    /// shrinker left it, and takes its node off the list of nodes without pages.
    fn take_file_shadow(&mut self, file: FileId, idx: u64) -> Option<Shadow> {
        self.reclaim.shadows.nodes.unlist((file, idx / NODE_PAGES));
        self.reclaim.shadows.file.remove(&(file, idx))
    }

    /// A page of `file` at `idx` entered the page cache, in frame `pfn`, for a read
    /// (`read`), which counts a refault if it left a shadow, or to be written, which
    /// does not (see the module's notes).
    pub(super) fn file_page_added(&mut self, pfn: Pfn, file: FileId, idx: u64, read: bool) {
        if read {
            self.refault(pfn, Refault::File(file, idx));
        } else {
            self.take_file_shadow(file, idx);
        }
    }

    /// Linux's shadow-node shrinker for group `g` at reclaim priority `priority`, as
    /// `do_shrink_slab` runs it after each priority's pass over the group's lists (see
    /// the module's notes). Returns the nodes freed.
    pub(super) fn shrink_shadow_nodes(&mut self, g: u16, priority: u32) -> u64 {
        let nodes = self.reclaim.shadows.nodes.count(g);
        if nodes == 0 {
            return 0;
        }
        // `count_shadow_nodes`: an eighth of the group's pages as last flushed.
        self.flush_stats_if_due();
        let pages: usize = (0..4).map(|l| self.seen_len(g, l)).sum();
        let freeable = nodes.saturating_sub(pages as u64 >> 3);
        if freeable == 0 {
            return 0;
        }
        let sn = &mut self.reclaim.shadows.nodes;
        let deferred = sn.take_deferred(g);
        let delta = freeable / 2;
        let mut total = ((deferred >> priority) + delta).min(2 * freeable);
        let (mut scanned, mut freed) = (0, 0);
        while total >= SHRINK_BATCH || total >= freeable {
            let n = total.min(SHRINK_BATCH);
            for _ in 0..n {
                let Some((file, node)) = self.reclaim.shadows.nodes.pop_oldest(g) else {
                    break;
                };
                self.free_shadow_node(file, node);
                freed += 1;
            }
            total -= n;
            scanned += n;
        }
        let next = (deferred + delta).saturating_sub(scanned).min(2 * freeable);
        self.reclaim.shadows.nodes.defer(g, next);
        self.log.counters.workingset_nodereclaim += freed;
        freed
    }

    /// Drops every shadow entry of node `node` of `file` (which holds no page).
    fn free_shadow_node(&mut self, file: FileId, node: u64) {
        for idx in node * NODE_PAGES..(node + 1) * NODE_PAGES {
            self.reclaim.shadows.file.remove(&(file, idx));
        }
    }

    /// Whether a page that left `shadow` comes back soon enough to be part of the
    /// working set (Linux's `workingset_test_recent`): its refault distance is at most
    /// the evicting group's active file pages, plus its inactive file pages for an
    /// anonymous page, plus (while swap has room) its active anonymous pages, and its
    /// inactive ones for a file page.
    fn recent(&mut self, shadow: Shadow, file: bool) -> bool {
        let g = shadow.group;
        let distance = self.reclaim.lruvec(g).age.wrapping_sub(shadow.eviction);
        let swap_room = self.swap_room();
        self.flush_stats_if_due();
        // The group's lists as of its statistics' last flush (`rstat.rs`).
        let len = |l| self.seen_len(g, l);
        let mut size = len(FILE_LISTS + ACTIVE);
        if !file {
            size += len(FILE_LISTS + INACTIVE);
        }
        if swap_room {
            size += len(ACTIVE);
            if file {
                size += len(INACTIVE);
            }
        }
        distance <= size as u64
    }

    /// Adds a reclaim cost to group `g`'s kind of pages, and the root's (Linux's
    /// `lru_note_cost`): pages that took I/O weigh [`RECLAIM_BATCH`] each, pages
    /// scanned but kept weigh one. Both costs halve once they pass a quarter of the
    /// group's pages, so that old costs fade.
    pub(super) fn note_cost(&mut self, g: u16, file: bool, io: u64, rotated: u64) {
        let cost = io * RECLAIM_BATCH as u64 + rotated;
        let groups: &[u16] = if g == 0 { &[0] } else { &[g, 0] };
        for &g in groups {
            let size: usize = (0..4).map(|l| self.reclaim.lists.len_in(g, l)).sum();
            let v = self.reclaim.lruvec(g);
            if file {
                v.file_cost += cost;
            } else {
                v.anon_cost += cost;
            }
            if v.file_cost + v.anon_cost > size as u64 / 4 {
                v.file_cost /= 2;
                v.anon_cost /= 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Shadow, SlotShadows};
    use crate::os::test_support::*;
    use crate::os::Kernel;

    #[test]
    fn a_slot_gives_back_the_last_shadow_left_in_it_once() {
        let mut s = SlotShadows::default();
        let a = Shadow {
            group: 0,
            eviction: 7,
            workingset: true,
        };
        let b = Shadow {
            group: 3,
            eviction: 9,
            workingset: false,
        };
        assert_eq!(s.remove(5), None, "never held one");
        s.insert(5, a);
        s.insert(5, b);
        s.insert(2, a);
        assert_eq!(s.remove(4), None, "a slot below the highest, never used");
        assert_eq!(s.remove(5), Some(b), "the later shadow replaced the first");
        assert_eq!(s.remove(5), None, "taken once");
        assert_eq!(s.remove(2), Some(a));
    }

    #[test]
    fn a_file_page_read_back_soon_comes_back_active_and_one_read_late_does_not() {
        // 4 MiB of RAM: a 2 MiB file read twice (active: the working set), a 256 KiB
        // file read once, then a stream pushes that one out. Read back after a 2 MiB
        // stream, its refault distance is within the working set; after a 16 MiB
        // one, more than all of RAM.
        for (stream_mib, activated) in [(2u64, true), (16, false)] {
            let mut k = boot_small(4 << 20, 8 << 20, ReclaimPolicy::TwoList);
            let pid = spawn(&mut k);
            let hot = k.create_file("/hot", vec![1; 2 << 20]);
            let once = k.create_file("/once", vec![2; 256 << 10]);
            let stream = k.create_file("/stream", vec![3; (stream_mib << 20) as usize]);
            k.read_file(pid, hot, 0, 2 << 20);
            k.read_file(pid, hot, 0, 2 << 20);
            k.read_file(pid, once, 0, 256 << 10);
            for i in 0..stream_mib * 16 {
                k.read_file(pid, stream, i * 65536, 65536);
            }
            let c = k.log.counters.clone();
            k.read_file(pid, once, 0, 256 << 10);
            let d = &k.log.counters;
            let refaults = d.workingset_refault[1] - c.workingset_refault[1];
            let activations = d.workingset_activate[1] - c.workingset_activate[1];
            assert_eq!(refaults, 64, "{stream_mib} MiB: every page was evicted");
            let want = if activated { refaults } else { 0 };
            assert_eq!(activations, want, "{stream_mib} MiB stream");
            assert_eq!(d.workingset_refault[0], 0, "no anonymous page left");
        }
    }

    #[test]
    fn a_folio_leaves_one_shadow_age_so_each_page_refaults_the_folio_away() {
        // 16 active pages of one file; a 32-page folio of another, evicted whole, then
        // read back at once: every page left the same clock reading, so each is 32
        // evictions away, past the 16 active pages (no swap: anonymous pages do not
        // count), and none comes back active. Stamped page by page, the folio's last
        // 16 pages would be within the working set.
        let mut k = boot_small(4 << 20, 0, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let hot = k.create_file("/hot", vec![1; 16 * 4096]);
        k.read_file(pid, hot, 0, 16 * 4096);
        k.read_file(pid, hot, 0, 16 * 4096);
        let f = k.create_file("/folio", vec![2; 32 * 4096]);
        k.read_file(pid, f, 0, 32 * 4096);
        for i in 0..32 {
            let pfn = k.cache.pages[&(f, i)];
            k.cache.folio_order.insert(pfn.0, 5);
        }
        k.reclaim(32, super::super::reclaim::Scope::Global);
        let ages: std::collections::BTreeSet<u64> = (0..32)
            .map(|i| k.reclaim.shadows.file[&(f, i)].eviction)
            .collect();
        assert_eq!(ages.len(), 1, "one age for the folio: {ages:?}");
        let before = k.log.counters.workingset_activate[1];
        k.read_file(pid, f, 0, 32 * 4096);
        assert_eq!(k.log.counters.workingset_refault[1], 32);
        assert_eq!(
            k.log.counters.workingset_activate[1], before,
            "none activated"
        );
    }

    /// A group whose statistics were never flushed sees no pages, so the shadow
    /// shrinker keeps none of its nodes without pages: its reclaim frees some as the
    /// group reads, calls at priority 0 free the rest, and the file's pages then come
    /// back with no refault. Read as they are (an eighth of 256 pages: 32 nodes, more
    /// than the file's 16), the group's lists keep every node, and every page read
    /// back refaults.
    #[test]
    fn a_groups_shadow_nodes_go_while_its_statistics_are_stale() {
        let mut refaults = Vec::new();
        for (flush_ns, stale) in [(u64::MAX / 4, true), (0, false)] {
            let mut k = boot_with("x86-64", |c| {
                c.reclaim = ReclaimPolicy::TwoList;
                c.readahead_pages = 0;
                c.stats_flush_ns = flush_ns;
            });
            let g = k.create_group("/reader", Some(256 * 4096)).unwrap();
            let pid = spawn(&mut k);
            k.set_group(pid, g).unwrap();
            let f = k.create_file("/data", vec![1; 1024 * 4096]);
            // Another file pushes every page of /data out.
            let other = k.create_file("/other", vec![2; 512 * 4096]);
            k.read_file(pid, f, 0, 1024 * 4096);
            k.read_file(pid, other, 0, 512 * 4096);
            let freed = k.log.counters.workingset_nodereclaim;
            for _ in 0..3 {
                k.shrink_shadow_nodes(g.0, 0);
            }
            let left = k.reclaim.shadows.nodes.count(g.0);
            if stale {
                assert!(freed > 0, "reclaim's own calls freed none");
                assert_eq!(left, 0, "priority 0 frees every node above none");
                assert!(k.reclaim.shadows.file.keys().all(|&(file, _)| file != f));
            } else {
                assert_eq!(freed, 0);
                assert!(
                    left >= 16,
                    "{left} nodes listed: within an eighth of the pages"
                );
            }
            let before = k.log.counters.workingset_refault[1];
            k.read_file(pid, f, 0, 1024 * 4096);
            refaults.push(k.log.counters.workingset_refault[1] - before);
        }
        assert_eq!(refaults, [0, 1024], "stale, then flushed");
    }

    /// A page brought into the page cache to be overwritten takes its shadow without
    /// counting a refault; one read back counts.
    #[test]
    fn a_page_cached_for_a_write_is_no_refault() {
        let mut k = boot_small(4 << 20, 0, ReclaimPolicy::TwoList);
        let pid = spawn(&mut k);
        let a = k.create_file("/a", vec![1; 64 * 4096]);
        let b = k.create_file("/b", vec![2; 64 * 4096]);
        let stream = k.create_file("/stream", vec![3; 2048 * 4096]);
        k.read_file(pid, a, 0, 64 * 4096);
        k.read_file(pid, b, 0, 64 * 4096);
        k.read_file(pid, stream, 0, 2048 * 4096);
        let shadows = |k: &Kernel, f| {
            (0..64)
                .filter(|&i| k.reclaim.shadows.file.contains_key(&(f, i)))
                .count()
        };
        assert_eq!(
            (shadows(&k, a), shadows(&k, b)),
            (64, 64),
            "both pushed out"
        );
        let before = k.log.counters.workingset_refault[1];
        assert_eq!(k.write_file(pid, a, 0, 64 * 4096), 64);
        assert_eq!(k.log.counters.workingset_refault[1], before, "a write");
        assert_eq!(shadows(&k, a), 0, "the write took the shadows");
        k.read_file(pid, b, 0, 64 * 4096);
        assert_eq!(k.log.counters.workingset_refault[1], before + 64, "a read");
    }

    /// The shadow-node bookkeeping agrees with the shadows and the page cache: a node
    /// is listed, once, under one group, exactly when it holds shadows and no cached
    /// page.
    fn check_shadow_nodes(k: &Kernel) -> Result<(), String> {
        let sh = &k.reclaim.shadows;
        let n = &sh.nodes;
        let holding: std::collections::BTreeSet<(super::FileId, u64)> = sh
            .file
            .keys()
            .map(|&(f, i)| (f, i / super::NODE_PAGES))
            .collect();
        if let Some(node) = n.place.keys().find(|node| !holding.contains(node)) {
            return Err(format!("{node:?} listed without a shadow"));
        }
        let mut per_group = vec![0u64; n.per_group.len()];
        for (&at, &node) in &n.listed {
            if n.place.get(&node) != Some(&at) {
                return Err(format!("{node:?} listed at {at:?}, placed elsewhere"));
            }
            per_group[at.0 as usize] += 1;
        }
        if per_group != n.per_group || n.place.len() != n.listed.len() {
            return Err(format!("per group {:?} against {per_group:?}", n.per_group));
        }
        for &(f, node) in &holding {
            let first = node * super::NODE_PAGES;
            let range = (f, first)..(f, first + super::NODE_PAGES);
            let has_page = k.cache.pages.range(range).next().is_some();
            let listed = n.place.contains_key(&(f, node));
            if has_page == listed {
                return Err(format!(
                    "node {node} of {f:?}: a page {has_page}, listed {listed}"
                ));
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Reads, writes and shrinker calls on three files in a group of 64 pages keep
        /// the shadow nodes consistent, whatever their order.
        #[test]
        fn shadow_nodes_stay_consistent(
            ops in proptest::collection::vec((0u8..4, 0usize..3, 0u64..300, 1u64..48), 1..40),
            stale in proptest::bool::ANY,
        ) {
            let mut k = boot_with("x86-64", |c| {
                c.reclaim = ReclaimPolicy::TwoList;
                c.readahead_pages = 16;
                c.stats_flush_ns = if stale { u64::MAX / 4 } else { 0 };
            });
            let g = k.create_group("/g", Some(64 * 4096)).unwrap();
            let pid = spawn(&mut k);
            k.set_group(pid, g).unwrap();
            let files: Vec<_> = (0..3)
                .map(|i| k.create_file(&format!("/f{i}"), vec![i as u8 + 1; 300 * 4096]))
                .collect();
            for (op, f, page, len) in ops {
                let f = files[f];
                match op {
                    0 | 1 => k.read_file(pid, f, page * 4096, len * 4096),
                    2 => {
                        k.write_file(pid, f, page * 4096, len * 4096);
                    }
                    _ => {
                        k.shrink_shadow_nodes(g.0, (len % 13) as u32);
                    }
                }
                if let Err(e) = check_shadow_nodes(&k) {
                    proptest::prop_assert!(false, "after op {op}: {e}");
                }
            }
        }
    }

    #[test]
    fn an_anonymous_page_back_from_swap_counts_as_a_refault() {
        let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Clock);
        let pid = spawn(&mut k);
        let n = 1024u64;
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, pid, a, n, |i| i);
        write_pages(&mut k, pid, a, n, |i| i + 1);
        let c = &k.log.counters;
        assert!(c.swap_outs > 0);
        assert!(c.workingset_refault[0] > 0 && c.workingset_refault[0] <= c.swap_outs);
        assert_eq!(c.workingset_refault[1], 0, "no file page left");
        assert_eq!(c.workingset_activate, [0, 0], "CLOCK activates nothing");
    }
}
