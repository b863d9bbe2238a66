//! Reclaim: what the kernel does when free frames run low. Reclaimable frames (private
//! anonymous memory, shared memory and the page cache; not locked pages) sit on lists
//! kept by the chosen policy; the policy reads and clears the Accessed bits of every page-table entry that maps a
//! frame (through the reverse map), as a kernel does, and picks victims. An anonymous
//! victim is written to swap and every entry that mapped it is replaced by a swap entry;
//! a file page is written back if dirty and dropped. Every entry unmapped is flushed
//! from the TLBs.
//!
//! Watermarks, as Linux's per-zone ones: below `low` free frames after an allocation,
//! background reclaim (kswapd) frees frames up to `high`; an allocation that finds
//! `min` or fewer free reclaims directly. A group at its limit reclaims its own frames
//! first. Shared-memory pages are swap-backed: they share the anonymous lists and go to
//! swap (see `shm.rs`).

mod clock;
mod fifo;
mod two_list;

use super::frames::FrameKind;
use super::swap::SwapOut;
use super::{GroupId, Kernel, Pid};
use crate::addr::Pfn;
use crate::hw::ram::FrameArray;
use crate::policy::two_list::{Step, ACTIVE, INACTIVE};
use serde::Serialize;

/// How victims are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReclaimPolicy {
    /// The oldest resident frame.
    Fifo,
    /// CLOCK: a frame whose mappings were accessed since the last pass gets a second
    /// chance (its bits cleared); the first one found idle goes.
    Clock,
    /// Linux-like active and inactive lists (see `policy/two_list.rs`), with the
    /// Accessed bits read from the page tables.
    TwoList,
}

impl ReclaimPolicy {
    /// Every policy, in the order the documentation lists them.
    pub const ALL: [ReclaimPolicy; 3] = [
        ReclaimPolicy::Fifo,
        ReclaimPolicy::Clock,
        ReclaimPolicy::TwoList,
    ];

    /// The name flags and files use.
    pub fn name(self) -> &'static str {
        match self {
            ReclaimPolicy::Fifo => "fifo",
            ReclaimPolicy::Clock => "clock",
            ReclaimPolicy::TwoList => "two-list",
        }
    }

    /// Parses a name of [`ReclaimPolicy::name`] (or `linux`, for `two-list`).
    pub fn parse(s: &str) -> Option<ReclaimPolicy> {
        match s {
            "linux" => Some(ReclaimPolicy::TwoList),
            _ => Self::ALL.into_iter().find(|p| p.name() == s),
        }
    }
}

/// Lists of frames threaded through arrays indexed by frame number; every link is
/// stored plus one so that the arrays start zeroed (and cost no host memory for frames
/// never used). Each frame also records the memory group it was put on a list for, so
/// that a group's share of every list is known at once (Linux keeps a list set per
/// group; vmsim keeps one and counts per group).
#[derive(Clone, Debug)]
pub struct FrameLists {
    /// `[prev + 1, next + 1, list + 1, group]` per frame, then per sentinel.
    links: FrameArray<[u32; 4]>,
    lens: [usize; 4],
    /// Per memory group, its frames on each list.
    group_lens: Vec<[usize; 4]>,
    frames: u32,
    /// Frames that stand for more pages than themselves on the lists (a huge page's
    /// first frame: its other pages are not listed): the pages beyond the one. Lists
    /// count pages, as Linux's count `folio_nr_pages`.
    extra: rustc_hash::FxHashMap<u32, u32>,
}

/// Added to a list's number: the file pages' lists (two-list reclaim keeps anonymous
/// and file pages apart, as Linux's LRU does).
pub const FILE_LISTS: u32 = 2;

impl FrameLists {
    /// Four empty lists over `frames` frames: inactive and active, anonymous and file.
    pub fn new(frames: u64) -> FrameLists {
        let n = frames as u32;
        let mut links = FrameArray::new(frames + 4);
        for l in 0..4u32 {
            let s = n + l;
            links.set(s as u64, [s + 1, s + 1, l + 1, 0]);
        }
        FrameLists {
            links,
            lens: [0; 4],
            group_lens: Vec::new(),
            frames: n,
            extra: Default::default(),
        }
    }

    /// Pages frame `f` stands for on the lists.
    pub(in crate::os) fn weight(&self, f: u32) -> usize {
        if self.extra.is_empty() {
            1
        } else {
            1 + self.extra.get(&f).copied().unwrap_or(0) as usize
        }
    }

    /// Makes frame `f` stand for `1 + extra` pages (see `extra`), where it is listed now
    /// and wherever it moves.
    pub(in crate::os) fn set_extra(&mut self, f: u32, extra: u32) {
        let [_, _, l, g] = self.links.get(f as u64).unwrap_or([0; 4]);
        let old = self.weight(f);
        if extra == 0 {
            self.extra.remove(&f);
        } else {
            self.extra.insert(f, extra);
        }
        if l > 0 {
            let new = self.weight(f);
            let (l, g) = ((l - 1) as usize, g as usize);
            self.lens[l] = self.lens[l] + new - old;
            self.group_lens[g][l] = self.group_lens[g][l] + new - old;
        }
    }

    /// The list frame `f` is on, if any.
    pub(in crate::os) fn list_of(&self, f: u32) -> Option<u32> {
        self.links.get(f as u64)?[2].checked_sub(1)
    }

    fn remove(&mut self, f: u32) {
        let [p, n, l, g] = self.links.load(f as u64);
        if l == 0 {
            return;
        }
        self.links.get_mut((p - 1) as u64)[1] = n;
        self.links.get_mut((n - 1) as u64)[0] = p;
        self.links.set(f as u64, [0; 4]);
        let w = self.weight(f);
        self.lens[(l - 1) as usize] -= w;
        self.group_lens[g as usize][(l - 1) as usize] -= w;
    }

    /// Puts `f`, charged to group `g`, at the head of list `l`.
    fn push_head(&mut self, l: u32, f: u32, g: u16) {
        let s = self.frames + l;
        let first = self.links.load(s as u64)[1];
        self.link(l, f, g, s + 1, first);
    }

    fn move_to_head(&mut self, l: u32, f: u32) {
        let g = self.links.load(f as u64)[3] as u16;
        self.remove(f);
        self.push_head(l, f, g);
    }

    /// Puts `f` at the tail of list `l`, where reclaim looks first (Linux's
    /// `lru_move_tail`).
    fn move_to_tail(&mut self, l: u32, f: u32) {
        let g = self.links.load(f as u64)[3] as u16;
        self.remove(f);
        let s = self.frames + l;
        let last = self.links.load(s as u64)[0];
        self.link(l, f, g, last, s + 1);
    }

    /// Links the unlisted `f`, charged to group `g`, into list `l` between the
    /// entries `before` (towards the head) and `after` (towards the tail), both
    /// stored plus one, and counts it.
    fn link(&mut self, l: u32, f: u32, g: u16, before: u32, after: u32) {
        self.links.set(f as u64, [before, after, l + 1, g as u32]);
        self.links.get_mut((before - 1) as u64)[1] = f + 1;
        self.links.get_mut((after - 1) as u64)[0] = f + 1;
        let w = self.weight(f);
        self.lens[l as usize] += w;
        if self.group_lens.len() <= g as usize {
            self.group_lens.resize(g as usize + 1, [0; 4]);
        }
        self.group_lens[g as usize][l as usize] += w;
    }

    /// The frame before `f` in its list (towards the head): the next tail once `f`
    /// moves.
    fn prev(&self, f: u32) -> Option<u32> {
        let p = self.links.get(f as u64)?[0].checked_sub(1)?;
        (p < self.frames).then_some(p)
    }

    /// Hints the host to cache `f`'s links (see [`crate::hw::ram::prefetch_host`]).
    #[inline]
    fn prefetch(&self, f: u32) {
        if let Some(links) = self.links.slot(f as u64) {
            crate::hw::ram::prefetch_host(links);
        }
    }

    fn tail(&self, l: u32) -> Option<u32> {
        let t = self.links.load((self.frames + l) as u64)[0] - 1;
        (t < self.frames).then_some(t)
    }

    fn len(&self, l: u32) -> usize {
        self.lens[l as usize]
    }

    /// Frames of group `g` on list `l`; the root's count (group 0) is every frame's,
    /// as a root cgroup's lists hold its children's pages.
    pub(in crate::os) fn len_in(&self, g: u16, l: u32) -> usize {
        if g == 0 {
            return self.lens[l as usize];
        }
        self.group_lens.get(g as usize).map_or(0, |c| c[l as usize])
    }
}

/// Which frames a reclaim may take.
#[derive(Clone, Copy, Debug)]
pub(super) enum Scope {
    /// Any.
    Global,
    /// Frames charged to this group.
    Group(GroupId),
    /// Frames this process maps (local replacement).
    Process(Pid),
}

/// Free-frame thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Watermarks {
    /// Direct reclaim at or below this.
    pub min: u64,
    /// Background reclaim starts below this.
    pub low: u64,
    /// Background reclaim stops at this.
    pub high: u64,
}

impl Watermarks {
    /// Linux's proportions: `min` about sqrt(16 × RAM in KiB) KiB, clamped to
    /// 128 KiB..64 MiB and to a sixteenth of RAM; `low` = 5/4 `min`, `high` = 3/2 `min`.
    pub fn for_ram(frames: u64, page_size: u64) -> Watermarks {
        let kib = frames * page_size / 1024;
        let min_kib = ((16 * kib) as f64).sqrt() as u64;
        let min = (min_kib.clamp(128, 65536) * 1024 / page_size)
            .min(frames / 16)
            .max(1);
        Watermarks {
            min,
            low: min * 5 / 4 + 1,
            high: min * 3 / 2 + 2,
        }
    }
}

/// A page's `PG_referenced`: used once since it last moved (two-list reclaim).
pub(super) const PG_REFERENCED: u8 = 1;
/// A page's `PG_workingset`: it was on the active list once (deactivated since), or
/// it came back soon after being evicted from there.
pub(super) const PG_WORKINGSET: u8 = 2;
/// A page's `PG_mlocked`: a locked mapping maps it, and it is off the reclaim lists
/// (on Linux's unevictable list) until it is unlocked or freed.
pub(super) const PG_MLOCKED: u8 = 4;
/// A page-cache page's `PG_reclaim`: reclaim found it dirty and set it aside until
/// the flusher has written it (`writeback.rs`); its write's completion moves it to the
/// inactive tail.
pub(super) const PG_RECLAIM: u8 = 8;

/// What Linux keeps per memory group beside its lists (its `lruvec`): the cost of
/// reclaiming anonymous and file pages, which sets the balance between them, the
/// age that refault distances are measured in, and the refault activations seen
/// when its last reclaim ended.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LruVec {
    /// Anonymous pages' reclaim cost (`anon_cost`): swap writes and refaults weigh
    /// [`RECLAIM_BATCH`] each, pages scanned but kept one.
    pub(super) anon_cost: u64,
    /// File pages' reclaim cost (`file_cost`).
    pub(super) file_cost: u64,
    /// Evictions and activations so far (`nonresident_age`): the clock shadow entries
    /// are stamped with.
    pub(super) age: u64,
    /// `workingset_activate_{anon,file}` when the last reclaim aimed at this group
    /// ended (`refaults[]`): more since means a new working set is forming.
    pub(super) refaults: [u64; 2],
}

/// Reclaim's state: the lists it scans, where the scan is, and its thresholds.
#[derive(Debug)]
pub(super) struct Reclaim {
    /// The inactive and active lists (one list for FIFO and CLOCK).
    pub(super) lists: FrameLists,
    /// The frame whose entry the scan last prefetched, a few ahead of the tail it
    /// takes pages from (a hint only: any frame is safe).
    pub(super) scan_hint: u32,
    /// Per frame, the flags two-list reclaim keeps: [`PG_REFERENCED`],
    /// [`PG_WORKINGSET`], [`PG_MLOCKED`] and [`PG_RECLAIM`].
    pub(super) flags: FrameArray<u8>,
    /// Per memory group (0: the root, which stands for the machine), its [`LruVec`].
    pub(super) lruvecs: Vec<LruVec>,
    /// Frames a fault in progress is using, which reclaim must leave alone.
    pub(super) pinned: Vec<Pfn>,
    /// Free-frame thresholds.
    pub(super) watermarks: Watermarks,
    /// Background reclaim is running (its scans and steals count as kswapd's).
    pub(super) in_kswapd: bool,
    /// Anonymous frames `madvise(MADV_FREE)` let go: reclaim discards one not written
    /// since instead of swapping it.
    pub(super) lazyfree: rustc_hash::FxHashSet<u64>,
    /// The shadow entries evicted pages left.
    pub(super) shadows: super::workingset::Shadows,
    /// The frames of the folio two-list reclaim is looking at (kept to reuse).
    pub(super) folio: Vec<Pfn>,
    /// Some area was advised `MADV_SEQUENTIAL` or `MADV_RANDOM`: looking for a page's
    /// uses must skip such mappings (see [`Kernel::young_refs`]).
    pub(super) advised: bool,
}

impl Reclaim {
    /// Nothing on the lists yet, for a machine of `frames` frames.
    pub(super) fn new(frames: u64, watermarks: Watermarks) -> Reclaim {
        Reclaim {
            lists: FrameLists::new(frames),
            scan_hint: u32::MAX,
            flags: FrameArray::new(frames),
            lruvecs: vec![LruVec::default()],
            in_kswapd: false,
            pinned: Vec::new(),
            watermarks,
            lazyfree: Default::default(),
            shadows: Default::default(),
            folio: Vec::new(),
            advised: false,
        }
    }

    /// Group `g`'s [`LruVec`].
    pub(super) fn lruvec(&mut self, g: u16) -> &mut LruVec {
        if self.lruvecs.len() <= g as usize {
            self.lruvecs.resize(g as usize + 1, LruVec::default());
        }
        &mut self.lruvecs[g as usize]
    }

    /// Whether frame `pfn` has flag `bit`.
    pub(super) fn flag(&self, pfn: Pfn, bit: u8) -> bool {
        self.flags.get(pfn.0).is_some_and(|f| f & bit != 0)
    }

    /// Sets or clears flag `bit` of frame `pfn`.
    pub(super) fn set_flag(&mut self, pfn: Pfn, bit: u8, on: bool) {
        if pfn.0 < self.flags.len() {
            let f = self.flags.load(pfn.0);
            self.flags.set(pfn.0, if on { f | bit } else { f & !bit });
        }
    }
}

/// Frames reclaimed per pass (Linux's `SWAP_CLUSTER_MAX`).
pub const RECLAIM_BATCH: usize = 32;

/// Reclaim passes in a row that may free nothing before an allocation that must
/// succeed calls the OOM killer (Linux's `MAX_RECLAIM_RETRIES`, which both the memory
/// group's charge and the page allocator's slow path count down). A pass that frees
/// nothing still ages the lists (clears referenced bits, deactivates), so the next
/// one may free what this one only moved.
pub const RECLAIM_RETRIES: u32 = 16;

/// What an eviction left behind: where the page's contents now are, for its shadow
/// entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Evicted {
    /// A page-cache page dropped: its file and page.
    File(super::FileId, u64),
    /// An anonymous page in this swap slot (written now, or before).
    Swap(crate::addr::SwapSlot),
    /// An anonymous page `MADV_FREE` let go, thrown away.
    Discarded,
    /// An anonymous page unmapped and being written to swap: still resident, in the
    /// swap cache, until its write completes.
    Writing,
}

impl Kernel {
    /// Puts a frame that just became resident on the reclaim lists (inactive, as
    /// Linux adds new pages).
    pub(super) fn lru_add(&mut self, pfn: Pfn) {
        let kind = self.frames.kind(pfn);
        if kind.is_user_page() {
            let g = self.frames.group(pfn);
            self.reclaim.lists.remove(pfn.0 as u32);
            self.reclaim
                .lists
                .push_head(INACTIVE + self.lists_of(kind), pfn.0 as u32, g);
            self.reclaim.flags.set(pfn.0, 0);
        }
    }

    /// Moves a frame on an inactive list to its active list (two-list reclaim); whether
    /// it moved.
    pub(super) fn lru_activate(&mut self, pfn: Pfn) -> bool {
        let f = pfn.0 as u32;
        if let Some(l) = self.reclaim.lists.list_of(f).filter(|l| l % 2 == INACTIVE) {
            self.reclaim.lists.move_to_head(l + ACTIVE, f);
            return true;
        }
        false
    }

    /// [`lru_activate`](Self::lru_activate), counted as `pgactivate`. A page that moves
    /// ages its group's non-resident clock, as every activation Linux counts does:
    /// reclaim's through `move_folios_to_lru`, which ages the clock for each active
    /// folio it puts back, a second use's through `workingset_activation`.
    pub(super) fn activate(&mut self, pfn: Pfn) {
        if self.lru_activate(pfn) {
            self.age_nonresident(self.frames.group(pfn));
        }
        self.log.counters.activations += 1;
    }

    /// A page-cache or tmpfs page a `read` or `write` used (Linux's
    /// `folio_mark_accessed`, of the folio the page is in): a first use sets its
    /// referenced flag; a second moves it to the active list (two-list), which ages
    /// the group's non-resident clock as an eviction does. A folio's flag is its
    /// pages' flags together, as reclaim reads them.
    pub(super) fn mark_accessed(&mut self, pfn: Pfn) {
        if pfn.0 >= self.reclaim.flags.len() {
            return;
        }
        let mut folio = std::mem::take(&mut self.reclaim.folio);
        folio.clear();
        self.folio_frames(pfn, &mut folio);
        if !folio.iter().any(|&p| self.reclaim.flag(p, PG_REFERENCED)) {
            self.reclaim.set_flag(pfn, PG_REFERENCED, true);
        } else if self.config.reclaim == ReclaimPolicy::TwoList
            && self
                .reclaim
                .lists
                .list_of(pfn.0 as u32)
                .is_some_and(|l| l % 2 == INACTIVE)
        {
            for &p in &folio {
                if self
                    .reclaim
                    .lists
                    .list_of(p.0 as u32)
                    .is_some_and(|l| l % 2 == INACTIVE)
                {
                    self.activate(p);
                }
                self.reclaim.set_flag(p, PG_REFERENCED, false);
            }
        }
        self.reclaim.folio = folio;
    }

    /// Marks anonymous page `pfn` let go by `MADV_FREE` (Linux's `folio_mark_lazyfree`,
    /// once per page, counted as `pglazyfree`). Under two-list reclaim it moves from
    /// its anonymous list to the head of the inactive file list, unreferenced
    /// (`lru_lazyfree`: such a folio is no longer swap-backed, and the file lists are
    /// where reclaim looks first), unless it is locked.
    pub(super) fn mark_lazyfree(&mut self, pfn: Pfn) {
        if !self.reclaim.lazyfree.insert(pfn.0) {
            return;
        }
        self.log.counters.lazyfree += self.reclaim.lists.weight(pfn.0 as u32) as u64;
        self.lru_lazyfree(pfn);
    }

    /// Moves a page `MADV_FREE` let go to the head of the inactive file list,
    /// unreferenced (two-list reclaim; a locked page stays off the lists).
    pub(super) fn lru_lazyfree(&mut self, pfn: Pfn) {
        let f = pfn.0 as u32;
        if self.config.reclaim != ReclaimPolicy::TwoList || self.is_mlocked(pfn) {
            return;
        }
        if self
            .reclaim
            .lists
            .list_of(f)
            .is_some_and(|l| l < FILE_LISTS)
        {
            self.reclaim.lists.move_to_head(FILE_LISTS + INACTIVE, f);
            self.reclaim.set_flag(pfn, PG_REFERENCED, false);
        }
    }

    /// A page `MADV_COLD` named (Linux's `folio_deactivate`): unreferenced, and under
    /// two-list reclaim, if active, at the head of its inactive list, marked
    /// workingset and counted in `pgdeactivate` (a huge page by its pages).
    pub(super) fn lru_deactivate(&mut self, pfn: Pfn) {
        if pfn.0 >= self.reclaim.flags.len() {
            return;
        }
        self.reclaim.set_flag(pfn, PG_REFERENCED, false);
        let f = pfn.0 as u32;
        if self.config.reclaim != ReclaimPolicy::TwoList || self.is_mlocked(pfn) {
            return;
        }
        if let Some(l) = self.reclaim.lists.list_of(f).filter(|l| l % 2 == ACTIVE) {
            self.reclaim.lists.move_to_head(l - ACTIVE, f);
            self.reclaim.set_flag(pfn, PG_WORKINGSET, true);
            self.log.counters.deactivations += self.reclaim.lists.weight(f) as u64;
        }
    }

    /// Which pair of lists frames of `kind` go on: file pages apart under two-list
    /// reclaim, one list for every frame under FIFO and CLOCK.
    fn lists_of(&self, kind: FrameKind) -> u32 {
        if kind == FrameKind::File && self.config.reclaim == ReclaimPolicy::TwoList {
            FILE_LISTS
        } else {
            0
        }
    }

    /// Moves `pfn`, if it is on a reclaim list, to the tail of its kind's inactive
    /// list: a page whose write reclaim started is taken first once the write is
    /// done, as Linux's `folio_rotate_reclaimable` does at the end of writeback. A
    /// page reclaim activated while it was being written goes too (`lru_move_tail`
    /// clears `PG_active`).
    pub(super) fn rotate_reclaimable(&mut self, pfn: Pfn) {
        let f = pfn.0 as u32;
        // The flusher writes page-cache pages reclaim did not ask for: they stay.
        if self.frames.kind(pfn) == FrameKind::File {
            if pfn.0 >= self.reclaim.flags.len() || !self.reclaim.flag(pfn, PG_RECLAIM) {
                return;
            }
            self.reclaim.set_flag(pfn, PG_RECLAIM, false);
        }
        if let Some(l) = self
            .reclaim
            .lists
            .list_of(f)
            .filter(|&l| l < 2 * FILE_LISTS)
        {
            self.reclaim.lists.move_to_tail(l - l % 2 + INACTIVE, f);
            self.log.counters.rotated += 1;
        }
    }

    /// Takes a freed frame off the reclaim lists (a locked one is `cleared`, as Linux
    /// counts `unevictable_pgs_cleared`).
    pub(super) fn lru_del(&mut self, pfn: Pfn) {
        if pfn.0 < self.reclaim.flags.len() {
            if self.reclaim.flag(pfn, PG_MLOCKED) {
                self.reclaim.set_flag(pfn, PG_MLOCKED, false);
                self.log.counters.mlock.cleared += 1;
            }
            self.reclaim.lists.remove(pfn.0 as u32);
        }
    }

    /// Takes an anonymous, shared-memory or page-cache frame that a locked mapping maps
    /// off the reclaim lists, where reclaim cannot find it (Linux's `mlock_folio` moves
    /// it to the unevictable list). Returns the pages it stands for, or 0 if it was locked
    /// already or is of another kind.
    pub(super) fn lru_mlock(&mut self, pfn: Pfn) -> u64 {
        if pfn.0 >= self.reclaim.flags.len()
            || self.reclaim.flag(pfn, PG_MLOCKED)
            || !self.frames.kind(pfn).is_user_page()
        {
            return 0;
        }
        let f = pfn.0 as u32;
        let pages = self.reclaim.lists.weight(f) as u64;
        self.reclaim.lists.remove(f);
        self.reclaim.set_flag(pfn, PG_MLOCKED, true);
        pages
    }

    /// Puts a locked frame back on the reclaim lists, at the head of its inactive
    /// list (Linux's `munlock_folio` puts it back on the LRU). Returns the pages it
    /// stands for, or 0 if it was not locked.
    pub(super) fn lru_munlock(&mut self, pfn: Pfn) -> u64 {
        if !self.reclaim.flag(pfn, PG_MLOCKED) {
            return 0;
        }
        self.reclaim.set_flag(pfn, PG_MLOCKED, false);
        let f = pfn.0 as u32;
        let l = INACTIVE + self.lists_of(self.frames.kind(pfn));
        self.reclaim.lists.push_head(l, f, self.frames.group(pfn));
        self.reclaim.lists.weight(f) as u64
    }

    /// Whether frame `pfn` is locked (off the reclaim lists).
    pub(super) fn is_mlocked(&self, pfn: Pfn) -> bool {
        self.reclaim.flag(pfn, PG_MLOCKED)
    }

    /// Whether any mapping of `pfn` was accessed since the last look; clears the bits.
    pub(super) fn young(&mut self, pfn: Pfn) -> bool {
        self.young_refs(pfn) > 0
    }

    /// How many mappings of `pfn` were accessed since the last look (Linux's
    /// `folio_referenced`); clears their bits. A huge mapping found young is also
    /// flushed from the TLBs (x86's `pmdp_clear_flush_young`), so its next use sets the
    /// bit again; base-page entries are not (`ptep_clear_flush_young` skips it).
    ///
    /// A mapping in an area advised `MADV_SEQUENTIAL` or `MADV_RANDOM` is passed over,
    /// its bit neither read nor cleared: Linux 6.3 on gives such areas no recency
    /// (`vma_has_recency`, checked by `invalid_folio_referenced_vma`), so a page used
    /// only there looks unused to reclaim.
    pub(super) fn young_refs(&mut self, pfn: Pfn) -> u32 {
        self.young_of(pfn, false).refs
    }

    /// [`young_refs`](Self::young_refs), and with `exec` whether one of the mappings
    /// found accessed is executable (`VM_EXEC`), which keeps a file page as a
    /// program's text: each young mapping's area is looked up for it.
    pub(super) fn young_of(&mut self, pfn: Pfn, exec: bool) -> two_list::Young {
        // Areas are looked up only once some area has had the advice.
        let advised = self.reclaim.advised;
        let tasks = &self.tasks;
        let vma = |p: Pid, va: crate::addr::VirtAddr| {
            tasks
                .get(p)
                .and_then(|pr| pr.mm.as_ref())
                .and_then(|mm| mm.vmas.find(va))
        };
        let m = &mut self.machine;
        let young = two_list::young_refs(
            &m.spec.paging,
            &mut m.ram,
            &self.rmap,
            pfn,
            |p, va| {
                !advised
                    || vma(p, va).is_none_or(|v| v.access == super::readahead::AccessAdvice::Normal)
            },
            |p, va| exec && vma(p, va).is_some_and(|v| v.prot.contains(super::vma::Prot::EXEC)),
        );
        if young.refs > 0 && self.is_huge_head(pfn) {
            self.flush_huge_mappings(pfn);
        }
        young
    }

    fn in_scope(&self, pfn: Pfn, scope: Scope) -> bool {
        two_list::in_scope(&self.frames, &self.rmap, pfn, scope)
    }

    /// Frees up to `want` frames in `scope`; returns how many went.
    pub(super) fn reclaim(&mut self, want: usize, scope: Scope) -> usize {
        // Other CPUs hear of the pass's unmaps once, at its end, and the running CPU
        // flushes its whole TLB then (`try_to_unmap_flush`, see `shootdown.rs`).
        let freed = self.gathered_unmaps(|k| {
            if k.config.reclaim == ReclaimPolicy::TwoList {
                k.shrink(want, scope)
            } else {
                k.reclaim_one_list(want, scope)
            }
        });
        self.log.counters.pages_reclaimed += freed as u64;
        if self.reclaim.in_kswapd {
            self.log.counters.pages_reclaimed_kswapd += freed as u64;
        }
        freed
    }

    /// FIFO and CLOCK reclaim: victims one at a time from the policy's one list.
    fn reclaim_one_list(&mut self, want: usize, scope: Scope) -> usize {
        let mut freed = 0;
        // Every frame may be looked at twice (once to clear its bits): then give up.
        let mut budget = 2 * (0..4).map(|l| self.reclaim.lists.len(l)).sum::<usize>() + 2;
        while freed < want && budget > 0 {
            let Some(victim) = self.pick_victim(scope, &mut budget) else {
                break;
            };
            if self.steal(Pfn(victim as u64), scope, None).is_some() {
                freed += 1;
            } else {
                // Not evictable now (no swap space): keep it, behind the others.
                let l = self.reclaim.lists.list_of(victim).unwrap_or(INACTIVE);
                self.reclaim.lists.move_to_head(l, victim);
            }
        }
        freed
    }

    /// Counts one page looked at by reclaim in `scope`, as `pgscan` does.
    fn note_scan(&mut self, scope: Scope) {
        self.log.counters.pages_scanned += 1;
        self.log.counters.pages_scanned_kswapd += self.reclaim.in_kswapd as u64;
        if let Scope::Group(g) = scope {
            self.log.counters.pages_scanned_group += 1;
            self.group_stat(g.0).pgscan += 1;
        }
    }

    /// Evicts `pfn` for reclaim in `scope` and counts the steal; leaves a shadow
    /// entry where the page was (Linux's `workingset_eviction`), stamped `folio_age`
    /// for a page of a folio evicted whole. `None` if it cannot go now.
    fn steal(&mut self, pfn: Pfn, scope: Scope, folio_age: Option<u64>) -> Option<Evicted> {
        let group = self.frames.group(pfn);
        let gone = self.page_out(pfn, folio_age)?;
        if gone == Evicted::Writing {
            // Not reclaimed yet: the page leaves when its write is done.
            return Some(gone);
        }
        self.group_stat(group).pgsteal += 1;
        if matches!(scope, Scope::Group(_)) {
            self.log.counters.pages_reclaimed_group += 1;
        }
        Some(gone)
    }

    /// Evicts `pfn` (see [`Kernel::evict`]) at the kernel's cost for a page (its share
    /// of its folio's, [`Kernel::cost_shift`]), leaving a
    /// shadow entry where it was once it is gone (Linux's `workingset_eviction`),
    /// stamped `folio_age` for a page of a folio evicted whole. `None` if it cannot go
    /// now.
    pub(super) fn page_out(&mut self, pfn: Pfn, folio_age: Option<u64>) -> Option<Evicted> {
        let shadow = self.shadow_of(pfn, folio_age);
        let shift = self.cost_shift(pfn);
        let gone = self.evict(pfn)?;
        self.log.counters.paging_cycles += self.config.page_out_cycles >> shift;
        if gone != Evicted::Writing {
            self.leave_shadow(gone, shadow);
        }
        Some(gone)
    }

    /// The next victim the policy offers in `scope`, spending scan budget.
    fn pick_victim(&mut self, scope: Scope, budget: &mut usize) -> Option<u32> {
        while *budget > 0 {
            *budget -= 1;
            self.note_scan(scope);
            let step = match self.config.reclaim {
                ReclaimPolicy::Fifo => self.fifo_step(scope),
                _ => self.clock_step(scope),
            };
            match step {
                Step::Evict(f) => return Some(f),
                Step::Moved => {}
                Step::Empty => return None,
            }
        }
        None
    }

    /// Unmaps `pfn` from every entry that maps it (reclaim's unmap of a page that
    /// leaves without swap entries: a page-cache or shared-memory page), telling the
    /// TLBs. Returns whether any entry was dirty and writable.
    pub(in crate::os) fn unmap_everywhere(&mut self, pfn: Pfn) -> bool {
        let paging = self.machine.spec.paging;
        let mut dirty = false;
        let mut pending = Vec::new();
        for (pid, va, pte) in self.rmap.of(pfn) {
            let Ok(mm) = self.mm(pid) else { continue };
            let pt = mm.pt;
            // A PROT_NONE entry that keeps the frame is cleared (it is not present:
            // no flush is owed). Anything else there (changed since the reverse map
            // recorded it) is left alone, but the frame's mapping is still dropped.
            match pt.unmap_frame_at(&paging, &mut self.machine.ram, pte, va, pfn) {
                Ok((flags, flush)) => {
                    dirty |= flags.contains(crate::hw::Flags::DIRTY)
                        && flags.contains(crate::hw::Flags::WRITE);
                    pending.push((pid, flush));
                }
                Err(_) => {
                    let held = crate::hw::PageTable::slot_at(&paging, &self.machine.ram, pte)
                        .and_then(|s| s.soft())
                        .and_then(crate::hw::SoftPte::prot_none_frame);
                    if held == Some(pfn) {
                        let _ = crate::hw::PageTable::clear_soft_at(
                            &paging,
                            &mut self.machine.ram,
                            pte,
                        );
                    }
                }
            }
            self.uncount(pid, pfn);
            self.rmap.remove(pfn, pid, va);
            self.put_frame(pfn);
        }
        for (pid, flush) in pending {
            self.flush_for(pid, flush);
        }
        dirty
    }

    /// Evicts one frame: swaps out anonymous and shared memory, writes back and drops
    /// file pages.
    /// Returns where it went, or `None` when it cannot go (no swap space, or a kind
    /// that stays resident).
    pub(super) fn evict(&mut self, pfn: Pfn) -> Option<Evicted> {
        if self.reclaim.pinned.contains(&pfn) {
            return None;
        }
        if self.is_huge_head(pfn) {
            self.split_huge_for_reclaim(pfn);
        }
        match self.frames.kind(pfn) {
            FrameKind::Anon => {
                if self.reclaim.lazyfree.remove(&pfn.0) {
                    if self.discard_lazyfree(pfn) {
                        return Some(Evicted::Discarded);
                    }
                    // Written since the advice: swap-backed again (Linux's
                    // `try_to_unmap_one` fails and sets it so). Off a file list, it
                    // goes back to its own, kept this time (`shrink_folio_list`
                    // activates it).
                    let f = pfn.0 as u32;
                    if self
                        .reclaim
                        .lists
                        .list_of(f)
                        .is_some_and(|l| (FILE_LISTS..2 * FILE_LISTS).contains(&l))
                    {
                        self.reclaim.lists.move_to_head(INACTIVE, f);
                        return None;
                    }
                }
                match self.swap_out(pfn)? {
                    SwapOut::Gone(slot) => Some(Evicted::Swap(slot)),
                    SwapOut::Writing => Some(Evicted::Writing),
                }
            }
            FrameKind::File => {
                let at = self.cache.owner.get(&pfn.0).copied();
                let (file, idx) = at?;
                self.evict_file(pfn).then_some(Evicted::File(file, idx))
            }
            FrameKind::Shm => self.shm_swap_out(pfn),
            _ => None,
        }
    }

    /// Background reclaim: when free frames fell below `low`, reclaim up to `high`.
    pub(super) fn kswapd(&mut self) {
        let w = self.reclaim.watermarks;
        if self.frames.nr_free() >= w.low {
            return;
        }
        self.log.counters.kswapd_runs += 1;
        self.reclaim.in_kswapd = true;
        while self.frames.nr_free() < w.high {
            let before = self.frames.nr_free();
            let want = ((w.high - before) as usize).min(RECLAIM_BATCH);
            if self.reclaim(want, Scope::Global) == 0 || self.frames.nr_free() <= before {
                break;
            }
        }
        self.reclaim.in_kswapd = false;
    }
}

/// How many frames ahead of a list's tail reclaim's prefetch hint stays; the
/// page-table entries it fetches are those of the frame a step nearer.
const SCAN_AHEAD: usize = 5;

impl Kernel {
    /// Hints the host to fetch what the scan of list `lru` will read a few pages on,
    /// as it takes `f` from the tail. A hint frame moves one step a call, as the tail
    /// does, [`SCAN_AHEAD`] frames ahead of it. For the frame the hint leaves (a step
    /// nearer the tail): its page-table entry, reference count, group and contents'
    /// index, and the state and shadow of the swap slot it caches, if any, found
    /// through its reverse map and cached slot, which were fetched two calls ago. For
    /// the frame beyond the new hint: its links, reverse map and cached slot. Each
    /// candidate's entries lie at random host addresses; fetched steps early, the
    /// misses overlap with the steps' work. Only when the hint has left the list (or
    /// reached its head) is it found again from the tail. The scans of every list
    /// share the one hint, so a change of list also finds it again. Nothing computed
    /// changes.
    #[inline]
    pub(super) fn prefetch_ahead(&mut self, lru: u32, f: u32) {
        let lists = &self.reclaim.lists;
        let hint = self.reclaim.scan_hint;
        let next = match lists.list_of(hint) {
            Some(l) if l == lru && hint != f => lists.prev(hint),
            _ => None,
        };
        let ahead = next.unwrap_or_else(|| {
            let mut a = f;
            for _ in 0..SCAN_AHEAD {
                let Some(n) = lists.prev(a) else { break };
                a = n;
            }
            a
        });
        // The frame a step nearer, whose reverse map and cached slot were fetched two
        // steps ago (one step is too short a wait when its page is only rotated).
        let near = Pfn(if next.is_some() { hint } else { ahead } as u64);
        if let Some(pte) = self.rmap.first_pte(near) {
            self.machine.ram.prefetch(pte);
        }
        self.frames.prefetch(near);
        self.machine.ram.prefetch_frame_index(near);
        let dev = self.swap.dev.as_ref();
        // Evicting a page of the swap cache takes a reference on its slot and leaves
        // a shadow there, both at random places in large arrays.
        if let Some((dev, slot)) = dev.and_then(|d| Some((d, d.cached_slot(near)?))) {
            dev.prefetch_slot(slot);
            self.reclaim.shadows.prefetch_swap(slot);
        }
        if let Some(after) = lists.prev(ahead) {
            lists.prefetch(after);
            self.rmap.prefetch(Pfn(after as u64));
            if let Some(dev) = dev {
                dev.prefetch_frame(Pfn(after as u64));
            }
        }
        self.reclaim.scan_hint = ahead;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::test_support::*;

    #[test]
    fn frame_lists_start_zeroed_and_keep_order() {
        let mut l = FrameLists::new(8);
        assert!((0..8).all(|i| l.links.load(i) == [0; 4]));
        for f in [3, 5, 7] {
            l.push_head(INACTIVE, f, 0);
        }
        assert_eq!(l.tail(INACTIVE), Some(3));
        l.move_to_head(ACTIVE, 3);
        assert_eq!(l.tail(INACTIVE), Some(5));
        assert_eq!((l.len(INACTIVE), l.len(ACTIVE)), (2, 1));
        l.remove(5);
        l.remove(5);
        assert_eq!(l.tail(INACTIVE), Some(7));
        assert_eq!(l.list_of(3), Some(ACTIVE));
        assert_eq!(l.list_of(5), None);
        // To the tail: the next one reclaim takes, wherever it was.
        l.push_head(INACTIVE, 5, 0);
        l.move_to_tail(INACTIVE, 5);
        assert_eq!(l.tail(INACTIVE), Some(5));
        assert_eq!(l.prev(5), Some(7));
        l.move_to_tail(INACTIVE, 3);
        assert_eq!((l.tail(INACTIVE), l.prev(3)), (Some(3), Some(5)));
        assert_eq!(
            (l.len(INACTIVE), l.len(ACTIVE), l.len_in(0, INACTIVE)),
            (3, 0, 3)
        );
    }

    #[test]
    fn watermarks_scale_with_ram() {
        let w = Watermarks::for_ram(4 << 20, 4096); // 16 GiB
        assert!(w.min > 1000 && w.min < w.low && w.low < w.high);
        let small = Watermarks::for_ram(64, 64);
        assert!(small.min >= 1 && small.high < 64);
    }

    /// The leaf entry that maps `a` in `pid`.
    fn leaf_of(k: &Kernel, pid: Pid, a: VirtAddr) -> crate::hw::Mapping {
        let paging = k.machine.spec.paging;
        k.mm(pid)
            .unwrap()
            .pt
            .lookup(&paging, &k.machine.ram, a)
            .unwrap()
    }

    #[test]
    fn reclaim_reads_and_clears_the_accessed_bit_in_the_entry_itself() {
        for preset in ["x86-64", "sv39", "textbook"] {
            let mut k = boot(preset);
            let pid = spawn(&mut k);
            let ps = k.page_size();
            let a = k.mmap(pid, MmapArgs::anon(ps, Prot::RW)).unwrap();
            k.write_u64(pid, a, 1).unwrap();
            let leaf = |k: &Kernel| leaf_of(k, pid, a);
            let m = leaf(&k);
            assert!(m.flags.contains(Flags::ACCESSED), "{preset}");
            let raw = k
                .machine
                .ram
                .read_uint(m.pte_addr, k.machine.spec.paging.pte_bytes);
            // Young once; the bit is cleared in RAM and nothing else in the entry moves.
            assert!(k.young(m.pfn), "{preset}");
            let after = leaf(&k);
            assert!(!after.flags.contains(Flags::ACCESSED), "{preset}");
            assert_eq!((after.pfn, after.flags | Flags::ACCESSED), (m.pfn, m.flags));
            assert_ne!(
                raw,
                k.machine
                    .ram
                    .read_uint(m.pte_addr, k.machine.spec.paging.pte_bytes)
            );
            assert!(!k.young(m.pfn), "{preset}: no access since");
            // A walk sets it again (the TLB entry goes first, as a shootdown would).
            k.machine.mmu.flush_all();
            k.read_u64(pid, a).unwrap();
            assert!(k.young(m.pfn), "{preset}");
        }
    }

    /// A page mapped in an area advised `MADV_SEQUENTIAL` or `MADV_RANDOM` looks
    /// unused to reclaim, and its accessed bit stays set; shared with an unadvised
    /// mapping (a forked child's), it is young through that one.
    #[test]
    fn reclaim_passes_over_the_accessed_bits_of_advised_areas() {
        use crate::os::readahead::AccessAdvice;
        for advice in [
            AccessAdvice::Normal,
            AccessAdvice::Sequential,
            AccessAdvice::Random,
        ] {
            let mut k = boot("x86-64");
            let pid = spawn(&mut k);
            let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
            k.write_u64(pid, a, 1).unwrap();
            k.madvise_access(pid, a, 4096, advice).unwrap();
            let leaf = |k: &Kernel, p| leaf_of(k, p, a);
            let pfn = leaf(&k, pid).pfn;
            let normal = advice == AccessAdvice::Normal;
            assert_eq!(k.young_refs(pfn), normal as u32, "{advice:?}");
            assert_eq!(
                leaf(&k, pid).flags.contains(Flags::ACCESSED),
                !normal,
                "{advice:?}: the bit is left where the area is passed over"
            );
            // A child shares the page with its own, unadvised, copy of the area.
            let child = k.fork(pid).unwrap();
            k.madvise_access(child, a, 4096, AccessAdvice::Normal)
                .unwrap();
            k.machine.mmu.flush_all();
            k.read_u64(child, a).unwrap();
            assert_eq!(
                k.young_refs(pfn),
                1,
                "{advice:?}: through the child's mapping"
            );
        }
    }
}
