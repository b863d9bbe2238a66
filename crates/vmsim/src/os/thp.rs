//! Transparent huge pages, as Linux 6.x makes them for anonymous memory.
//!
//! - **When.** `enabled` is `always` (every private anonymous VMA), `madvise` (those
//!   `madvise(MADV_HUGEPAGE)` marked; Linux's and vmsim's default) or `never`;
//!   `MADV_NOHUGEPAGE` and `prctl(PR_SET_THP_DISABLE)` refuse them.
//! - **The fault** (`do_huge_pmd_anonymous_page`). A fault with no entry, in such a
//!   VMA, whose aligned huge-page range lies inside the VMA and has no page table yet
//!   (`pmd_none`), takes one block of 2^9 frames (on x86-64; whatever a level-2 leaf
//!   holds on the machine) from the buddy allocator and maps it with one level-2 leaf
//!   (`thp_fault_alloc`). A read maps the huge zero page instead, made on first use
//!   (`thp_zero_page_alloc`). No free block, or a memory group that cannot take the
//!   charge: base pages (`thp_fault_fallback`, `thp_fault_fallback_charge`).
//! - **Splits** (`__split_huge_pmd`, `thp_split_pmd`): a range operation that covers a
//!   huge page in part (`munmap`, `mprotect`, `madvise`, `mremap`, a VMA split) first
//!   turns its leaf into a table of base-page entries for the same frames, Accessed
//!   and Dirty kept. One that covers it whole acts on the leaf: `munmap` and exit free
//!   it, `mprotect` rewrites it, fork shares it write-protected.
//! - **Copy-on-write** (`do_huge_pmd_wp_page`): a write to a huge page only this
//!   mapping holds makes it writable in place; to a shared one (after fork) splits the
//!   mapping and copies the one base page, as Linux 6.x does. A write to the huge zero
//!   page takes a fresh huge page (`do_huge_zero_wp_pmd`), or splits when none is free.
//! - **Reclaim** sees a huge page as one entry on the LRU (its first frame). To evict
//!   it, reclaim splits it into base pages (`thp_split_page`) and swaps those
//!   (`thp_swpout_fallback`): vmsim never swaps a huge page whole (`thp_swpout` stays
//!   0).
//!
//! Where vmsim departs from Linux (docs/kernel.md): once no huge mapping of a huge
//! page is left, its frames are base pages at once (Linux keeps the folio whole,
//! mapped by base-page entries, until its deferred split); `mprotect(PROT_NONE)`
//! splits the huge mappings it covers; compaction is not modelled (the defrag modes
//! decide only whether a fault may reclaim). khugepaged's collapses are in
//! `khugepaged.rs`.

use super::fault::{FaultKind, Violation};
use super::frames::FrameKind;
use super::reclaim::Scope;
use super::vma::{Backing, Vma};
use super::{Errno, Kernel, Pid};
use crate::addr::{Pfn, VirtAddr};
use crate::hw::{Flags, Slot, TlbFlush};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// When anonymous memory gets transparent huge pages
/// (`/sys/kernel/mm/transparent_hugepage/enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThpMode {
    /// Every private anonymous VMA, unless `MADV_NOHUGEPAGE` says otherwise.
    Always,
    /// Only VMAs `MADV_HUGEPAGE` marked.
    #[default]
    Madvise,
    /// Never.
    Never,
}

impl ThpMode {
    /// The mode called `s` (`always`, `madvise`, `never`).
    pub fn parse(s: &str) -> Option<ThpMode> {
        match s {
            "always" => Some(ThpMode::Always),
            "madvise" => Some(ThpMode::Madvise),
            "never" => Some(ThpMode::Never),
            _ => None,
        }
    }

    /// Its name, as the sysfs file shows it.
    pub fn name(self) -> &'static str {
        match self {
            ThpMode::Always => "always",
            ThpMode::Madvise => "madvise",
            ThpMode::Never => "never",
        }
    }
}

/// How hard a huge-page fault tries when memory is short
/// (`/sys/kernel/mm/transparent_hugepage/defrag`): whether it may reclaim (Linux: and
/// compact) for the huge page, by the VMA's advice. Without, it takes a huge page only
/// if one is free and its group has room for it, and falls back otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub enum ThpDefrag {
    /// Every fault reclaims (for VMAs not advised, one attempt: `__GFP_NORETRY`).
    Always,
    /// None reclaims (kswapd and kcompactd are woken).
    Defer,
    /// Advised VMAs reclaim; others wake kswapd.
    DeferMadvise,
    /// Advised VMAs reclaim; others do not (Linux's default).
    #[default]
    Madvise,
    /// None reclaims.
    Never,
}

impl ThpDefrag {
    /// The mode called `s` (`always`, `defer`, `defer+madvise`, `madvise`, `never`).
    pub fn parse(s: &str) -> Option<ThpDefrag> {
        match s {
            "always" => Some(ThpDefrag::Always),
            "defer" => Some(ThpDefrag::Defer),
            "defer+madvise" => Some(ThpDefrag::DeferMadvise),
            "madvise" => Some(ThpDefrag::Madvise),
            "never" => Some(ThpDefrag::Never),
            _ => None,
        }
    }

    /// Its name, as the sysfs file shows it.
    pub fn name(self) -> &'static str {
        match self {
            ThpDefrag::Always => "always",
            ThpDefrag::Defer => "defer",
            ThpDefrag::DeferMadvise => "defer+madvise",
            ThpDefrag::Madvise => "madvise",
            ThpDefrag::Never => "never",
        }
    }

    /// How many times a fault in a VMA (`advised`: `MADV_HUGEPAGE`) may reclaim for a
    /// huge page before it falls back (Linux's `vma_thp_gfp_mask`, and the memory
    /// group's `MAX_RECLAIM_RETRIES` of 16 without `__GFP_NORETRY`).
    pub fn reclaim_tries(self, advised: bool) -> u32 {
        match (self, advised) {
            (ThpDefrag::Always, true)
            | (ThpDefrag::DeferMadvise, true)
            | (ThpDefrag::Madvise, true) => 16,
            (ThpDefrag::Always, false) => 1,
            _ => 0,
        }
    }
}

/// Why no huge page could be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NoHugePage {
    /// The memory group could not take its charge.
    Charge,
    /// No aligned block of frames is free.
    Block,
}

/// A VMA's `madvise` advice on huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HugeAdvice {
    /// None given: the mode decides.
    #[default]
    Default,
    /// `MADV_HUGEPAGE` (`VM_HUGEPAGE`).
    Huge,
    /// `MADV_NOHUGEPAGE` (`VM_NOHUGEPAGE`).
    NoHuge,
}

/// `/proc/vmstat`'s `thp_*` events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ThpCounters {
    /// Huge pages a fault allocated.
    pub fault_alloc: u64,
    /// Faults that wanted a huge page and fell back to base pages.
    pub fault_fallback: u64,
    /// Of those, the ones whose memory group could not take the charge.
    pub fault_fallback_charge: u64,
    /// Huge mappings turned into tables of base-page entries.
    pub split_pmd: u64,
    /// Huge pages split into base pages (by reclaim).
    pub split_page: u64,
    /// Huge zero pages made.
    pub zero_page_alloc: u64,
    /// Huge pages reclaim split to swap them out page by page.
    pub swpout_fallback: u64,
    /// Huge pages khugepaged allocated for a collapse.
    pub collapse_alloc: u64,
    /// Collapses khugepaged gave up for want of a huge page.
    pub collapse_alloc_failed: u64,
    /// Times khugepaged's scan went past the last process (`khugepaged/full_scans`).
    pub khugepaged_full_scans: u64,
    /// Huge pages mapped whole now (a gauge: `nr_anon_transparent_hugepages`).
    pub anon_huge_pages: u64,
}

/// The kernel's huge pages.
#[derive(Clone, Debug, Default)]
pub(super) struct Thp {
    /// Huge pages mapped whole somewhere: first frame → how many level-2 leaves map it.
    whole: FxHashMap<u64, u32>,
    /// The huge zero page's first frame, once made.
    zero: Option<Pfn>,
    /// Level-2 leaves mapping the huge zero page.
    zero_maps: u64,
    /// Whether any VMA was ever advised `MADV_HUGEPAGE` (in mode `madvise`, khugepaged
    /// has nothing to look at before).
    pub(super) advised: bool,
}

impl Kernel {
    /// Base pages in a huge page: what one level-2 leaf maps (512 on x86-64 and Sv39);
    /// 0 where the machine has no such leaf.
    pub(super) fn hpage_pages(&self) -> u64 {
        let p = &self.machine.spec.paging;
        if p.levels >= 2 && p.leaf_allowed(2) {
            p.leaf_size(2) >> p.page_shift
        } else {
            0
        }
    }

    /// Whether any level-2 leaf may map user memory: huge pages or the huge zero page
    /// were ever made (base-page runs skip every split check).
    fn has_huge_mappings(&self) -> bool {
        !self.thp.whole.is_empty() || self.thp.zero.is_some()
    }

    /// Huge pages mapped whole now (`nr_anon_transparent_hugepages`).
    pub fn nr_anon_huge_pages(&self) -> u64 {
        self.thp.whole.len() as u64
    }

    /// Whether `vma` of `pid` may have transparent huge pages (at a fault, or by
    /// khugepaged's collapse): the mode and the advice, private anonymous memory, huge
    /// pages not refused by the process.
    pub(super) fn thp_allowed(&self, pid: Pid, vma: &Vma) -> bool {
        // The mode and the advice first: a base-page run stops here.
        let allowed = match (self.config.thp, vma.huge) {
            (_, HugeAdvice::NoHuge) | (ThpMode::Never, _) => false,
            (ThpMode::Always, _) | (ThpMode::Madvise, HugeAdvice::Huge) => true,
            (ThpMode::Madvise, HugeAdvice::Default) => false,
        };
        allowed
            && !vma.shared
            && vma.backing == Backing::Anon
            && self.process(pid).is_some_and(|p| !p.thp_disabled)
    }

    /// Whether `page` of `vma` of `pid` may be backed by a huge page, and where it
    /// would start.
    fn thp_range(&self, pid: Pid, vma: &Vma, page: VirtAddr) -> Option<VirtAddr> {
        let n = self.hpage_pages();
        if !self.thp_allowed(pid, vma) || n == 0 {
            return None;
        }
        let size = n * self.page_size();
        let start = VirtAddr(page.0 & !(size - 1));
        (start >= vma.start && start.0 + size <= vma.end.0).then_some(start)
    }

    /// A fault with no entry at `page` of private anonymous `vma`: a huge page where
    /// one may go (a write: a fresh one; a read: the huge zero page). `None`: base
    /// pages it is.
    pub(super) fn thp_demand(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        write: bool,
    ) -> Result<Option<FaultKind>, Violation> {
        let Some(start) = self.thp_range(pid, vma, page) else {
            return Ok(None);
        };
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid).map_err(|_| Violation::NoVma)?.pt;
        if !pt.empty_at(&paging, &self.machine.ram, start, 2) {
            return Ok(None);
        }
        if !write && self.config.zero_page {
            let Some(zero) = self.huge_zero_page() else {
                return Ok(None);
            };
            let flags = self.user_flags(vma.prot, false, false);
            return Ok(self
                .map_huge(pid, start, zero, flags)
                .is_ok()
                .then_some(FaultKind::ZeroPage));
        }
        let Some(head) = self.alloc_huge(pid, vma) else {
            self.log.counters.thp.fault_fallback += 1;
            return Ok(None);
        };
        let flags = self.user_flags(vma.prot, true, false);
        if self.map_huge(pid, start, head, flags).is_err() {
            self.free_huge(head);
            self.log.counters.thp.fault_fallback += 1;
            return Ok(None);
        }
        self.log.counters.thp.fault_alloc += 1;
        Ok(Some(FaultKind::DemandZero))
    }

    /// The huge zero page, made on first use; `None` if no block is free.
    fn huge_zero_page(&mut self) -> Option<Pfn> {
        if let Some(z) = self.thp.zero {
            return Some(z);
        }
        let n = self.hpage_pages();
        let z = self.frames.alloc(n, FrameKind::Kernel, 0)?;
        let r = self.machine.ram.zero_frames(z, n);
        debug_assert!(r.is_ok(), "huge zero page outside RAM");
        self.thp.zero = Some(z);
        self.log.counters.thp.zero_page_alloc += 1;
        Some(z)
    }

    /// A huge page for a fault in `vma` of `pid` ([`Kernel::alloc_huge_page`], as hard
    /// as the defrag mode lets the fault try); `None`, with `thp_fault_fallback_charge`
    /// counted when the group could not take it.
    fn alloc_huge(&mut self, pid: Pid, vma: &Vma) -> Option<Pfn> {
        let tries = self
            .config
            .thp_defrag
            .reclaim_tries(vma.huge == HugeAdvice::Huge);
        match self.alloc_huge_page(pid, tries) {
            Ok(head) => Some(head),
            Err(why) => {
                if why == NoHugePage::Charge {
                    self.log.counters.thp.fault_fallback_charge += 1;
                }
                None
            }
        }
    }

    /// A zeroed huge page for `pid`, charged to its group, on the reclaim lists as one
    /// entry (its first frame); an error if the group cannot take it or no aligned
    /// block is free. It may reclaim `tries` times (see [`ThpDefrag::reclaim_tries`]):
    /// for the group's charge (Linux's `try_charge_memcg`, which never calls the OOM
    /// killer for a huge page), and once for free memory below the `low` watermark.
    /// vmsim does not compact: a free aligned block must exist.
    pub(super) fn alloc_huge_page(&mut self, pid: Pid, tries: u32) -> Result<Pfn, NoHugePage> {
        let n = self.hpage_pages();
        self.kswapd();
        let g = self.process(pid).ok_or(NoHugePage::Block)?.group;
        let mut left = tries;
        loop {
            let grp = &self.groups.list[g.0 as usize];
            match grp.max_pages {
                Some(max) if grp.charged + n > max => {
                    if left == 0 {
                        return Err(NoHugePage::Charge);
                    }
                    left -= 1;
                    self.reclaim(n as usize, Scope::Group(g));
                }
                _ => break,
            }
        }
        let low = self.reclaim.watermarks.low;
        if self.frames.nr_free() < n + low && tries > 0 {
            self.reclaim(n as usize, Scope::Global);
        }
        if self.frames.nr_free() < n + low {
            return Err(NoHugePage::Block);
        }
        let head = self
            .frames
            .alloc(n, FrameKind::Anon, g.0)
            .ok_or(NoHugePage::Block)?;
        let r = self.machine.ram.zero_frames(head, n);
        debug_assert!(r.is_ok(), "huge page outside RAM");
        self.groups.list[g.0 as usize].charge(FrameKind::Anon, n);
        self.lru_add(head);
        self.reclaim.lists.set_extra(head.0 as u32, n as u32 - 1);
        Ok(head)
    }

    /// Gives back a huge page no one maps.
    pub(super) fn free_huge(&mut self, head: Pfn) {
        self.reclaim.lists.set_extra(head.0 as u32, 0);
        for i in 0..self.hpage_pages() {
            self.put_frame(Pfn(head.0 + i));
        }
    }

    /// Maps the huge page at `head` (or the huge zero page) at `start` in `pid` with
    /// one level-2 leaf; every frame gains the mapping (a reference, the reverse map,
    /// the resident count).
    pub(super) fn map_huge(
        &mut self,
        pid: Pid,
        start: VirtAddr,
        head: Pfn,
        flags: Flags,
    ) -> Result<(), Errno> {
        let pt = self.mm(pid)?.pt;
        let pte = self.map_user_leaf(pt, start, head, 2, flags)?;
        if Some(head) == self.thp.zero {
            self.thp.zero_maps += 1;
            return Ok(());
        }
        let ps = self.page_size();
        let n = self.hpage_pages();
        for i in 0..n {
            self.installed(pid, VirtAddr(start.0 + i * ps), Pfn(head.0 + i), pte);
        }
        self.count_anon_huge(pid, n as i64);
        *self.thp.whole.entry(head.0).or_insert(0) += 1;
        self.log.counters.thp.anon_huge_pages = self.thp.whole.len() as u64;
        Ok(())
    }

    /// Fork: the child maps the huge page at `head` too, at `va` with `flags`
    /// (write-protected on both sides: Linux's `copy_huge_pmd`).
    pub(super) fn share_huge(
        &mut self,
        child: Pid,
        va: VirtAddr,
        head: Pfn,
        flags: Flags,
    ) -> Result<(), Errno> {
        let n = self.hpage_pages();
        for i in 0..n {
            self.frames.get(Pfn(head.0 + i));
        }
        let r = self.map_huge(child, va, head, flags);
        if r.is_err() {
            for i in 0..n {
                self.put_frame(Pfn(head.0 + i));
            }
        }
        r
    }

    /// One level-2 leaf of the huge page at `head` is gone: when it was the last, the
    /// frames that still live are base pages from now on, each on the reclaim lists.
    fn huge_unmapped(&mut self, head: Pfn) {
        let Some(c) = self.thp.whole.get_mut(&head.0) else {
            return;
        };
        *c -= 1;
        if *c > 0 {
            return;
        }
        self.huge_to_base(head);
    }

    /// The huge page at `head` is whole nowhere any more: its frames that still live
    /// are base pages, each on the reclaim lists (and let go by `MADV_FREE` if the
    /// huge page was).
    fn huge_to_base(&mut self, head: Pfn) {
        if self.thp.whole.remove(&head.0).is_none() {
            return;
        }
        self.log.counters.thp.anon_huge_pages = self.thp.whole.len() as u64;
        self.reclaim.lists.set_extra(head.0 as u32, 0);
        let lazy = self.reclaim.lazyfree.contains(&head.0);
        // The base pages of a locked huge page stay locked.
        let locked = self.is_mlocked(head);
        for i in 1..self.hpage_pages() {
            let f = Pfn(head.0 + i);
            if self.frames.kind(f) == FrameKind::Anon {
                self.lru_add(f);
                if locked {
                    self.lru_mlock(f);
                }
                if lazy {
                    self.reclaim.lazyfree.insert(f.0);
                    self.lru_lazyfree(f);
                }
            }
        }
    }

    /// Removes the level-2 leaf `m` mapping `start` in `pid` (a `munmap` or exit that
    /// covers it whole): its frames lose this mapping. Returns the flush owed.
    pub(super) fn zap_huge(
        &mut self,
        pid: Pid,
        start: VirtAddr,
        head: Pfn,
    ) -> Result<TlbFlush, Errno> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let (_, flush) = pt
            .unmap(&paging, &mut self.machine.ram, start)
            .map_err(|_| Errno::EFAULT)?;
        if Some(head) == self.thp.zero {
            self.thp.zero_maps -= 1;
            return Ok(flush);
        }
        let ps = self.page_size();
        let n = self.hpage_pages();
        for i in 0..n {
            let f = Pfn(head.0 + i);
            self.uncount(pid, f);
            self.rmap.remove(f, pid, VirtAddr(start.0 + i * ps));
        }
        self.count_anon_huge(pid, -(n as i64));
        self.huge_unmapped(head);
        for i in 0..n {
            self.put_frame(Pfn(head.0 + i));
        }
        Ok(flush)
    }

    /// Turns the level-2 leaf mapping `va` in `pid`, if there is one, into a table of
    /// base-page entries for the same frames, Accessed and Dirty kept (the huge zero
    /// page becomes entries for the base zero page), and counts `thp_split_pmd`.
    pub(super) fn split_huge_pmd(&mut self, pid: Pid, va: VirtAddr) -> Result<(), Errno> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let Some(Slot::Leaf(m)) = pt.slot(&paging, &self.machine.ram, va) else {
            return Ok(());
        };
        if m.level != 2 {
            return Ok(());
        }
        if self.is_hugetlb_page(m.pfn) {
            // A hugetlb page is never split: the range must respect it.
            return Err(Errno::EINVAL);
        }
        // The new table must not find memory exhausted (Linux deposits one with every
        // huge mapping); reclaim must not take the page being split meanwhile. With no
        // room for it, nothing is touched.
        self.reclaim.pinned.push(m.pfn);
        while self.frames.nr_free() < paging.table_frames(1) {
            if self.reclaim(super::reclaim::RECLAIM_BATCH, Scope::Global) == 0 {
                break;
            }
        }
        self.reclaim.pinned.pop();
        if self.frames.nr_free() < paging.table_frames(1) {
            return Err(Errno::ENOMEM);
        }
        let n = self.hpage_pages();
        let ps = self.page_size();
        let start = VirtAddr(va.0 & !(n * ps - 1));
        let (old, flush) = pt
            .unmap(&paging, &mut self.machine.ram, start)
            .map_err(|_| Errno::EFAULT)?;
        self.flush_for(pid, flush);
        let zero = Some(m.pfn) == self.thp.zero;
        self.thp.zero_maps -= u64::from(zero);
        for i in 0..n {
            let at = VirtAddr(start.0 + i * ps);
            let f = if zero {
                self.space.zero_pfn
            } else {
                Pfn(m.pfn.0 + i)
            };
            let pte = self.map_user_leaf(pt, at, f, 1, old.flags)?;
            if !zero {
                self.rmap.remove(f, pid, at);
                self.rmap.add(f, pid, at, pte);
            }
        }
        self.log.counters.thp.split_pmd += 1;
        if !zero {
            self.count_anon_huge(pid, -(n as i64));
            self.huge_unmapped(m.pfn);
        }
        Ok(())
    }

    /// Adds `delta` pages to `pid`'s `AnonHugePages`.
    fn count_anon_huge(&mut self, pid: Pid, delta: i64) {
        if let Ok(mm) = self.mm_mut(pid) {
            mm.rss.anon_huge = mm.rss.anon_huge.saturating_add_signed(delta);
        }
    }

    /// Splits the huge mappings of `pid` that `[start, end)` covers in part, so that
    /// an operation on the range meets only whole ones.
    pub(super) fn split_huge_edges(
        &mut self,
        pid: Pid,
        start: VirtAddr,
        end: VirtAddr,
    ) -> Result<(), Errno> {
        let n = self.hpage_pages();
        if !self.has_huge_mappings() {
            return Ok(());
        }
        let size = n * self.page_size();
        for edge in [start, end] {
            if edge.0 % size != 0 {
                self.split_huge_pmd(pid, edge)?;
            }
        }
        Ok(())
    }

    /// Splits every huge mapping of `pid` in `[start, end)`.
    pub(super) fn split_huge_range(
        &mut self,
        pid: Pid,
        start: VirtAddr,
        end: VirtAddr,
    ) -> Result<(), Errno> {
        self.split_huge_where(pid, start, end, |_, _| true)
    }

    /// Splits the huge mappings of `pid` that `[start, end)` covers in part, and those
    /// inside it at whose start `split(kernel, va)` holds.
    fn split_huge_where(
        &mut self,
        pid: Pid,
        start: VirtAddr,
        end: VirtAddr,
        split: impl Fn(&Kernel, VirtAddr) -> bool,
    ) -> Result<(), Errno> {
        if !self.has_huge_mappings() {
            return Ok(());
        }
        self.split_huge_edges(pid, start, end)?;
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        for (va, slot) in pt.entries(&paging, &self.machine.ram, start, end) {
            if matches!(slot, Slot::Leaf(m) if m.level == 2) && split(self, va) {
                self.split_huge_pmd(pid, va)?;
            }
        }
        Ok(())
    }

    /// Before `mremap` moves `[from, end)` of `pid` to `to`: splits the huge mappings
    /// that cannot move whole (their new place is not on a huge-page boundary, or
    /// already has a table).
    pub(super) fn split_huge_unmovable(
        &mut self,
        pid: Pid,
        from: VirtAddr,
        end: VirtAddr,
        to: VirtAddr,
    ) -> Result<(), Errno> {
        let size = self.hpage_pages() * self.page_size();
        let pt = self.mm(pid)?.pt;
        self.split_huge_where(pid, from, end, |k, va| {
            let dst = VirtAddr(to.0 + (va.0 - from.0));
            dst.0 % size != 0 || !pt.empty_at(&k.machine.spec.paging, &k.machine.ram, dst, 2)
        })
    }

    /// Moves the level-2 leaf `m` of `pid` from `va` to `dst` (a huge-page boundary
    /// with nothing mapped below it), frames, flags and counts unchanged (Linux's
    /// `move_huge_pmd`). Returns the flush owed for the old place.
    pub(super) fn move_huge(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        dst: VirtAddr,
        m: crate::hw::Mapping,
    ) -> Result<TlbFlush, Errno> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let (last, flush) = pt
            .unmap(&paging, &mut self.machine.ram, va)
            .map_err(|_| Errno::EFAULT)?;
        let pte = self.map_user_leaf(pt, dst, m.pfn, 2, last.flags);
        let pte = match pte {
            Ok(p) => p,
            Err(e) => {
                // Back where it was: its table is still there, so this needs no memory.
                let back = self.map_user_leaf(pt, va, m.pfn, 2, last.flags);
                debug_assert!(back.is_ok(), "{back:?}");
                self.flush_for(pid, flush);
                return Err(e.into());
            }
        };
        if Some(m.pfn) != self.thp.zero {
            let ps = self.page_size();
            for i in 0..self.hpage_pages() {
                let f = Pfn(m.pfn.0 + i);
                self.rmap.remove(f, pid, VirtAddr(va.0 + i * ps));
                self.rmap.add(f, pid, VirtAddr(dst.0 + i * ps), pte);
            }
        }
        Ok(flush)
    }

    /// A write fault on the read-only level-2 leaf `m` at `page` of `pid`
    /// (`do_huge_pmd_wp_page`). Returns the fault's kind, or `None` when the mapping
    /// was split and the write is for the base-page path.
    pub(super) fn thp_write_protect_fault(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        m: crate::hw::Mapping,
    ) -> Result<Option<FaultKind>, Violation> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid).map_err(|_| Violation::NoVma)?.pt;
        let n = self.hpage_pages();
        let start = VirtAddr(page.0 & !(n * self.page_size() - 1));
        if Some(m.pfn) == self.thp.zero {
            // A fresh huge page for the huge zero page, where one is free.
            if let Some(head) = self.alloc_huge(pid, vma) {
                let (_, flush) = pt
                    .unmap(&paging, &mut self.machine.ram, start)
                    .map_err(|_| Violation::NoVma)?;
                self.flush_for(pid, flush);
                self.thp.zero_maps -= 1;
                let flags = self.user_flags(vma.prot, true, false);
                if self.map_huge(pid, start, head, flags).is_ok() {
                    self.log.counters.thp.fault_alloc += 1;
                    return Ok(Some(FaultKind::ZeroPageCopy));
                }
                self.free_huge(head);
                return Err(Violation::OutOfMemory);
            }
            self.log.counters.thp.fault_fallback += 1;
        } else if (0..n).all(|i| self.frames.refs(Pfn(m.pfn.0 + i)) == 1) {
            // Only this mapping holds it: writable in place.
            let flags = m.flags | Flags::WRITE;
            let flush = pt
                .set_flags(&paging, &mut self.machine.ram, start, flags)
                .map_err(|_| Violation::NoVma)?;
            self.flush_for(pid, flush);
            return Ok(Some(FaultKind::CowReuse));
        }
        self.split_huge_pmd(pid, start)
            .map_err(|_| Violation::OutOfMemory)?;
        Ok(None)
    }

    /// Reclaim chose the huge page at `head`: split every mapping of it and the page
    /// itself, so that its frames go one by one (`thp_split_page`, and
    /// `thp_swpout_fallback` for a page swap takes).
    pub(super) fn split_huge_for_reclaim(&mut self, head: Pfn) {
        if !self.thp.whole.contains_key(&head.0) {
            return;
        }
        let maps: Vec<(Pid, VirtAddr)> = self.rmap.of(head).map(|(p, va, _)| (p, va)).collect();
        for (pid, va) in maps {
            // A mapping the walk cannot split (its process gone) stays as it is.
            let _ = self.split_huge_pmd(pid, va);
        }
        self.huge_to_base(head);
        self.log.counters.thp.split_page += 1;
        if self.swap.dev.is_some() {
            self.log.counters.thp.swpout_fallback += 1;
        }
    }

    /// Flushes every huge mapping of the huge page at `head` from the TLBs.
    pub(super) fn flush_huge_mappings(&mut self, head: Pfn) {
        let paging = self.machine.spec.paging;
        let maps: Vec<(Pid, VirtAddr, crate::addr::PhysAddr)> = self.rmap.of(head).collect();
        for (pid, va, pte) in maps {
            let Ok(pt) = self.mm(pid).map(|m| m.pt) else {
                continue;
            };
            if pt
                .slot(&paging, &self.machine.ram, va)
                .is_some_and(|s| matches!(s, Slot::Leaf(m) if m.level == 2 && m.pte_addr == pte))
            {
                let flush = pt.flush_leaf(&paging, va, 2, false);
                self.flush_for(pid, flush);
            }
        }
    }

    /// Frees the huge zero page if nothing maps it (Linux's shrinker does so when memory
    /// is wanted, and `drop_caches` runs it).
    pub(super) fn release_huge_zero_page(&mut self) {
        if let (Some(z), 0) = (self.thp.zero, self.thp.zero_maps) {
            self.frames.release(z, self.hpage_pages());
            self.thp.zero = None;
        }
    }

    /// Whether frame `pfn` is the first of a huge page mapped whole somewhere.
    pub(super) fn is_huge_head(&self, pfn: Pfn) -> bool {
        !self.thp.whole.is_empty() && self.thp.whole.contains_key(&pfn.0)
    }

    /// `madvise(MADV_HUGEPAGE)` / `MADV_NOHUGEPAGE` on `[addr, addr + len)`: the VMAs'
    /// advice, split where the range ends inside one (huge mappings straddling its
    /// ends split first). The range must be mapped throughout.
    pub fn madvise_huge(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        len: u64,
        advice: HugeAdvice,
    ) -> Result<(), Errno> {
        self.advise_vmas(pid, addr, len, |v| v.huge = advice)?;
        self.thp.advised |= advice == HugeAdvice::Huge;
        Ok(())
    }

    /// `prctl(PR_SET_THP_DISABLE)`: `pid` gets no more huge pages (or may again).
    pub fn set_thp_disabled(&mut self, pid: Pid, disabled: bool) -> Result<(), Errno> {
        let p = self
            .proc_mut(pid)
            .filter(|p| p.is_running())
            .ok_or(Errno::ESRCH)?;
        p.thp_disabled = disabled;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::os::fault::{FaultClass, FaultKind};
    use crate::os::test_support::*;
    use crate::os::thp::{HugeAdvice, ThpMode};

    const HUGE: u64 = 2 << 20;

    /// A private anonymous mapping of `n` huge pages, 2 MiB-aligned (a free aligned
    /// hint, below the others), advised huge.
    fn huge_area(k: &mut Kernel, pid: Pid, n: u64) -> VirtAddr {
        let hint = VirtAddr(0x10_0000_0000 + k.process(pid).unwrap().rss().total() * HUGE);
        let args = MmapArgs {
            addr: Some(hint),
            ..MmapArgs::anon(n * HUGE, Prot::RW)
        };
        let start = k.mmap(pid, args).unwrap();
        assert_eq!(start.0 % HUGE, 0);
        k.madvise_huge(pid, start, n * HUGE, HugeAdvice::Huge)
            .unwrap();
        start
    }

    #[test]
    fn in_always_mode_lengths_of_2mib_multiples_are_placed_on_2mib_boundaries() {
        let mut k = boot_with("x86-64", |c| c.thp = ThpMode::Always);
        let a = spawn(&mut k);
        for n in 1..4 {
            let at = k.mmap(a, MmapArgs::anon(n * HUGE, Prot::RW)).unwrap();
            assert_eq!(at.0 % HUGE, 0);
            let odd = k
                .mmap(a, MmapArgs::anon(n * HUGE + 4096, Prot::RW))
                .unwrap();
            // Top-down, just below the aligned one: not aligned.
            assert_eq!(odd.0 + n * HUGE + 4096, at.0);
        }
    }

    #[test]
    fn madv_free_of_a_whole_huge_page_lets_it_go_without_a_split() {
        let mut k = boot_with("x86-64", |c| {
            c.swap_bytes = 64 << 20;
            c.memory_max = Some(3 << 20);
        });
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 2);
        k.write_u64(a, at, 1).unwrap();
        k.madvise_free(a, at, HUGE).unwrap();
        assert_eq!(k.counters().thp.split_pmd, 0);
        // Room for the second: reclaim takes the first, splits it and discards every
        // page of it (nothing written since), swapping none.
        k.write_u64(a, VirtAddr(at.0 + HUGE), 1).unwrap();
        assert_eq!(k.counters().swap_outs, 0);
        assert!(k.counters().lazyfree_discards >= 1);
        assert_eq!(k.read_u64(a, at).unwrap(), 0);
    }

    #[test]
    fn a_huge_page_counts_all_its_pages_on_the_reclaim_lists() {
        let (mut k, a) = booted();
        let at = huge_area(&mut k, a, 1);
        let before = k.reclaim.lists.len_in(0, 0);
        k.write_u64(a, at, 1).unwrap();
        assert_eq!(k.reclaim.lists.len_in(0, 0), before + 512);
        k.munmap(a, VirtAddr(at.0 + 4096), 4096).unwrap();
        assert_eq!(k.reclaim.lists.len_in(0, 0), before + 511);
        k.munmap(a, at, HUGE).unwrap();
        assert_eq!(k.reclaim.lists.len_in(0, 0), before);
    }

    #[test]
    fn drop_caches_frees_the_huge_zero_page_once_nothing_maps_it() {
        let (mut k, a) = booted();
        let at = huge_area(&mut k, a, 1);
        let free = k.frames().nr_free();
        k.read_u64(a, at).unwrap();
        k.drop_caches();
        assert!(free - k.frames().nr_free() >= 512, "still mapped: kept");
        k.munmap(a, at, HUGE).unwrap();
        k.drop_caches();
        assert!(k.frames().nr_free() + 3 >= free);
        let again = huge_area(&mut k, a, 1);
        k.read_u64(a, again).unwrap();
        assert_eq!(k.counters().thp.zero_page_alloc, 2);
    }

    #[test]
    fn a_write_in_an_advised_range_maps_one_huge_page() {
        let mut k = boot("x86-64");
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 2);
        let free = k.frames().nr_free();
        k.write_u64(a, VirtAddr(at.0 + 4096 * 7), 42).unwrap();
        let c = &k.counters().thp;
        assert_eq!(c.fault_alloc, 1);
        assert_eq!(k.counters().faults_of(FaultKind::DemandZero), 1);
        // The huge page, and the tables above its leaf.
        assert!((512..=515).contains(&(free - k.frames().nr_free())));
        // Every base page of it is there without another fault.
        for i in 0..512 {
            k.read_u64(a, VirtAddr(at.0 + 4096 * i)).unwrap();
        }
        assert_eq!(k.counters().faults_in(FaultClass::Minor), 1);
        assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * 7)).unwrap(), 42);
        assert_eq!(k.nr_anon_huge_pages(), 1);
        assert_eq!(k.process(a).unwrap().rss().anon, 512);
        assert_eq!(k.process(a).unwrap().rss().anon_huge, 512);
    }

    #[test]
    fn unadvised_memory_and_never_mode_get_base_pages() {
        for (mode, advise, huge) in [
            (ThpMode::Madvise, false, 0),
            (ThpMode::Never, true, 0),
            (ThpMode::Always, false, 1),
        ] {
            let mut k = boot_with("x86-64", |c| c.thp = mode);
            let a = spawn(&mut k);
            let at = huge_area(&mut k, a, 1);
            if !advise {
                k.madvise_huge(a, at, HUGE, HugeAdvice::Default).unwrap();
            }
            k.write_u64(a, at, 1).unwrap();
            assert_eq!(k.counters().thp.fault_alloc, huge, "{mode:?}");
        }
    }

    #[test]
    fn a_partial_munmap_splits_and_keeps_the_bytes() {
        let mut k = boot("x86-64");
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 1);
        for i in 0..512u64 {
            k.write_u64(a, VirtAddr(at.0 + 4096 * i), i).unwrap();
        }
        k.munmap(a, VirtAddr(at.0 + 4096 * 3), 4096).unwrap();
        assert_eq!(k.counters().thp.split_pmd, 1);
        assert_eq!(k.nr_anon_huge_pages(), 0);
        for i in (0..512u64).filter(|&i| i != 3) {
            assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * i)).unwrap(), i);
        }
        assert_eq!(k.process(a).unwrap().rss().anon, 511);
        assert_eq!(k.process(a).unwrap().rss().anon_huge, 0);
        // The rest goes whole with its mapping, and every frame comes back.
        let base = k.frames().nr_free();
        k.munmap(a, at, HUGE).unwrap();
        assert!(k.frames().nr_free() >= base + 511);
    }

    #[test]
    fn a_whole_munmap_frees_without_a_split() {
        let mut k = boot("x86-64");
        let base = k.frame_baseline();
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 2);
        k.write_u64(a, at, 1).unwrap();
        k.write_u64(a, VirtAddr(at.0 + HUGE), 1).unwrap();
        k.munmap(a, at, 2 * HUGE).unwrap();
        assert_eq!(k.counters().thp.split_pmd, 0);
        k.exit(a, 0).unwrap();
        assert_eq!(k.frame_baseline(), base);
    }

    #[test]
    fn mprotect_of_one_page_splits_and_the_tlb_forgets_write_access() {
        let mut k = boot_with("x86-64", |c| c.kill_on_violation = false);
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 1);
        k.write_u64(a, at, 1).unwrap();
        k.write_u64(a, VirtAddr(at.0 + 4096 * 9), 1).unwrap();
        k.mprotect(a, VirtAddr(at.0 + 4096 * 9), 4096, Prot::READ)
            .unwrap();
        assert_eq!(k.counters().thp.split_pmd, 1);
        assert!(k.write_u64(a, VirtAddr(at.0 + 4096 * 9), 2).is_err());
        k.write_u64(a, VirtAddr(at.0 + 4096 * 8), 2).unwrap();
    }

    #[test]
    fn fork_shares_a_huge_page_and_a_write_splits_one_side() {
        let mut k = boot("x86-64");
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 1);
        k.write_u64(a, at, 7).unwrap();
        let b = k.fork(a).unwrap();
        assert_eq!(k.nr_anon_huge_pages(), 1);
        k.write_u64(b, VirtAddr(at.0 + 4096 * 5), 9).unwrap();
        assert_eq!(k.counters().thp.split_pmd, 1);
        assert_eq!(k.counters().faults_of(FaultKind::CowCopy), 1);
        assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * 5)).unwrap(), 0);
        assert_eq!(k.read_u64(b, VirtAddr(at.0 + 4096 * 5)).unwrap(), 9);
        assert_eq!(k.read_u64(b, at).unwrap(), 7);
        // The parent still maps it whole; once the child is gone its write reuses it.
        k.exit(b, 0).unwrap();
        k.write_u64(a, at, 8).unwrap();
        assert_eq!(k.counters().faults_of(FaultKind::CowReuse), 1);
        assert_eq!(k.counters().thp.split_pmd, 1);
        assert_eq!(k.read_u64(a, at).unwrap(), 8);
    }

    #[test]
    fn mremap_moves_an_aligned_huge_mapping_whole_and_splits_a_misaligned_one() {
        let (mut k, a) = booted();
        let at = huge_area(&mut k, a, 2);
        k.write_u64(a, at, 5).unwrap();
        k.write_u64(a, VirtAddr(at.0 + HUGE + 4096), 6).unwrap();
        // To a 2 MiB boundary: both move whole.
        let to = VirtAddr(0x20_0000_0000);
        k.mremap(a, at, 2 * HUGE, to, 2 * HUGE).unwrap();
        assert_eq!(k.counters().thp.split_pmd, 0);
        assert_eq!(k.nr_anon_huge_pages(), 2);
        assert_eq!(k.read_u64(a, to).unwrap(), 5);
        assert_eq!(k.read_u64(a, VirtAddr(to.0 + HUGE + 4096)).unwrap(), 6);
        assert_eq!(k.process(a).unwrap().rss().anon_huge, 1024);
        // Off a boundary: split, moved page by page, bytes kept.
        let off = VirtAddr(0x30_0000_0000 + 4096);
        k.mremap(a, to, 2 * HUGE, off, 2 * HUGE).unwrap();
        assert_eq!(k.counters().thp.split_pmd, 2);
        assert_eq!(k.read_u64(a, off).unwrap(), 5);
        assert_eq!(k.read_u64(a, VirtAddr(off.0 + HUGE + 4096)).unwrap(), 6);
        let base = k.frame_baseline();
        k.exit(a, 0).unwrap();
        assert!(k.frame_baseline().free >= base.free + 1024);
    }

    #[test]
    fn a_read_maps_the_huge_zero_page_and_a_write_replaces_it() {
        let mut k = boot("x86-64");
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 1);
        let free = k.frames().nr_free();
        assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * 3)).unwrap(), 0);
        assert_eq!(k.counters().thp.zero_page_alloc, 1);
        assert_eq!(k.counters().thp.fault_alloc, 0);
        assert_eq!(k.process(a).unwrap().rss().anon, 0);
        k.write_u64(a, VirtAddr(at.0 + 4096 * 3), 5).unwrap();
        assert_eq!(k.counters().thp.fault_alloc, 1);
        assert!((1024..=1027).contains(&(free - k.frames().nr_free())));
        assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * 3)).unwrap(), 5);
    }

    #[test]
    fn a_limit_too_small_for_the_charge_falls_back() {
        let mut k = boot_with("x86-64", |c| c.memory_max = Some(1 << 20));
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 1);
        k.write_u64(a, at, 1).unwrap();
        let c = k.counters().thp;
        assert_eq!(
            (c.fault_alloc, c.fault_fallback, c.fault_fallback_charge),
            (0, 1, 1)
        );
    }

    #[test]
    fn reclaim_splits_a_huge_page_and_swaps_its_pages() {
        let mut k = boot_with("x86-64", |c| {
            c.swap_bytes = 64 << 20;
            c.memory_max = Some(3 << 20);
        });
        let a = spawn(&mut k);
        let at = huge_area(&mut k, a, 2);
        for i in 0..512u64 {
            k.write_u64(a, VirtAddr(at.0 + 4096 * i), i + 1).unwrap();
        }
        // The second huge page does not fit beside the first: the first is split and
        // swapped out in part.
        for i in 0..512u64 {
            k.write_u64(a, VirtAddr(at.0 + HUGE + 4096 * i), i + 1)
                .unwrap();
        }
        let c = k.counters().thp;
        assert!(c.split_page >= 1, "{c:?}");
        for i in 0..512u64 {
            assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * i)).unwrap(), i + 1);
        }
    }
}
