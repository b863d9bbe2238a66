//! khugepaged: the kernel thread that collapses ranges of base pages into huge pages,
//! as Linux 6.x's `mm/khugepaged.c` does for anonymous memory.
//!
//! - **When.** It wakes every `scan_sleep_millisecs` of simulated time (10 s), first
//!   one period after boot, while THP is not `never`; after a huge page it could not
//!   allocate it sleeps `alloc_sleep_millisecs` (60 s) instead. vmsim looks at the
//!   clock after every run of accesses ([`Kernel::access_run`]), so a wake lands at the
//!   first run that ends past its time; with `scan_sleep_millisecs` 0 it scans after
//!   every access.
//! - **What one wake scans.** `pages_to_scan` page-table entries (4096: eight huge-page
//!   ranges), resuming where the last wake stopped: processes in pid order, each one's
//!   VMAs in address order, in each VMA that may have huge pages (the THP mode and
//!   advice, as for a fault) every aligned huge-page range that lies inside it. A VMA
//!   that may not costs one entry. Past the last process it starts again at the
//!   first (`khugepaged_full_scans`).
//! - **Which ranges collapse** (`hpage_collapse_scan_pmd`): one with a page table
//!   (not one already huge, nor one with nothing mapped), whose entries are empty or
//!   the zero page at most `max_ptes_none` times (511), map a page others map too at
//!   most `max_ptes_shared` times (256), none out on swap or `PROT_NONE`, every mapped
//!   page anonymous; at least one entry writable and one young (Accessed).
//! - **The collapse** (`collapse_huge_page`): a huge page from the buddy allocator,
//!   charged to the process's group (reclaiming for it, as khugepaged's `defrag` 1
//!   lets it), the range checked again, every base page copied in (the empty ones
//!   zero), the base pages unmapped and freed, their page table freed, and one
//!   level-2 leaf mapping the huge page, dirty and writable as the VMA allows
//!   (`thp_collapse_alloc`; `thp_collapse_alloc_failed` when no huge page could be
//!   had).
//!
//! Where vmsim departs from Linux (docs/kernel.md): a range with a page out on swap is
//! left as it is (Linux swaps up to `max_ptes_swap` of them in first); every running
//! process is scanned, not only those Linux registered with khugepaged (a process
//! with no VMA that may have huge pages costs one entry a VMA); collapses of file and
//! shared memory are not modelled.

use super::frames::FrameKind;
use super::vma::Vma;
use super::{Kernel, Pid};
use crate::addr::VirtAddr;
use crate::hw::{Flags, Slot};
use serde::Serialize;

/// khugepaged's settings (`/sys/kernel/mm/transparent_hugepage/khugepaged/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KhugepagedConfig {
    /// Simulated milliseconds between wakes.
    pub scan_sleep_millisecs: u64,
    /// Simulated milliseconds to sleep after a huge page could not be allocated.
    pub alloc_sleep_millisecs: u64,
    /// Page-table entries one wake scans.
    pub pages_to_scan: u64,
    /// Empty (or zero-page) entries a range may have and still collapse.
    pub max_ptes_none: u64,
    /// Entries mapping pages others map too that a range may have and still collapse.
    pub max_ptes_shared: u64,
}

impl Default for KhugepagedConfig {
    /// Linux's defaults for 2 MiB huge pages of 4 KiB base pages.
    fn default() -> KhugepagedConfig {
        KhugepagedConfig {
            scan_sleep_millisecs: 10_000,
            alloc_sleep_millisecs: 60_000,
            pages_to_scan: 4096,
            max_ptes_none: 511,
            max_ptes_shared: 256,
        }
    }
}

impl KhugepagedConfig {
    /// The settings' names, as the sysfs files are called.
    pub const KEYS: [&'static str; 5] = [
        "scan_sleep_millisecs",
        "alloc_sleep_millisecs",
        "pages_to_scan",
        "max_ptes_none",
        "max_ptes_shared",
    ];

    /// Sets the setting `key` (see [`KhugepagedConfig::KEYS`]) to `value`.
    pub fn set(&mut self, key: &str, value: u64) -> Result<(), String> {
        let field = match key {
            "scan_sleep_millisecs" => &mut self.scan_sleep_millisecs,
            "alloc_sleep_millisecs" => &mut self.alloc_sleep_millisecs,
            "pages_to_scan" => &mut self.pages_to_scan,
            "max_ptes_none" => &mut self.max_ptes_none,
            "max_ptes_shared" => &mut self.max_ptes_shared,
            _ => {
                return Err(format!(
                    "unknown khugepaged setting `{key}` ({})",
                    Self::KEYS.join(", ")
                ))
            }
        };
        if key == "pages_to_scan" && value == 0 {
            return Err("pages_to_scan must be at least 1".into());
        }
        *field = value;
        Ok(())
    }
}

/// khugepaged's state: when it wakes next and where its scan goes on.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Khugepaged {
    /// Simulated time of the next wake, in ns (`None`: not set yet).
    next_ns: Option<u64>,
    /// The process the scan is in (by pid) and the address it goes on from.
    cursor: (u32, u64),
    /// Runs of accesses since the clock was last read.
    runs: u32,
}

/// Runs of accesses between two looks at the clock (a look costs a sum over the
/// TLBs); with `scan_sleep_millisecs=0`, every access.
const RUNS_PER_LOOK: u32 = 64;

/// What the scan of one huge-page range found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// Left as it is.
    Skip,
    /// Collapsed into a huge page.
    Collapsed,
    /// Worth collapsing, but no huge page could be had.
    NoHugePage,
}

impl Kernel {
    /// khugepaged never sleeps (`scan_sleep_millisecs=0`) and may collapse something
    /// (THP not `never`, nor `madvise` before any advice): it scans after every
    /// access, so runs of accesses go one at a time.
    pub(super) fn khugepaged_continuous(&self) -> bool {
        self.config.khugepaged.scan_sleep_millisecs == 0
            && match self.config.thp {
                super::thp::ThpMode::Never => false,
                super::thp::ThpMode::Madvise => self.thp.advised,
                _ => true,
            }
    }

    /// Wakes khugepaged if its time has come (see the module's documentation); cheap
    /// when it has not.
    #[inline]
    pub(super) fn khugepaged_if_due(&mut self) {
        // Nothing may collapse: mode `never`, or `madvise` with no advice yet.
        match self.config.thp {
            super::thp::ThpMode::Never => return,
            super::thp::ThpMode::Madvise if !self.thp.advised => return,
            _ => {}
        }
        self.khugepaged.runs += 1;
        if self.khugepaged.runs < RUNS_PER_LOOK && self.config.khugepaged.scan_sleep_millisecs > 0 {
            return;
        }
        self.khugepaged.runs = 0;
        if self.hpage_pages() == 0 {
            return;
        }
        let now = self.now_ns();
        // The first look sets the clock: one period on (none with a sleep of 0).
        let sleep = self.config.khugepaged.scan_sleep_millisecs;
        let first = now.saturating_add(sleep.saturating_mul(MS));
        if now >= *self.khugepaged.next_ns.get_or_insert(first) {
            self.khugepaged_scan();
        }
    }

    /// One wake of khugepaged: scans `pages_to_scan` entries from where the last wake
    /// stopped, collapsing what qualifies, and sets the time of the next wake. Returns
    /// how many ranges it collapsed.
    pub fn khugepaged_scan(&mut self) -> u64 {
        let cfg = self.config.khugepaged;
        let n = self.hpage_pages();
        let mut sleep = cfg.scan_sleep_millisecs;
        let mut collapsed = 0;
        if n > 0 && self.config.thp != super::thp::ThpMode::Never {
            let size = n * self.page_size();
            let mut budget = cfg.pages_to_scan;
            let mut wrapped = false;
            'scan: while budget > 0 {
                let (pid, from) = self.khugepaged.cursor;
                let next = self
                    .tasks
                    .procs
                    .iter()
                    .find(|p| p.pid.0 >= pid && p.is_running())
                    .map(|p| p.pid);
                let Some(p) = next else {
                    self.log.counters.thp.khugepaged_full_scans += 1;
                    self.khugepaged.cursor = (0, 0);
                    if wrapped {
                        break;
                    }
                    wrapped = true;
                    continue;
                };
                // The address goes with the process it was left in.
                let from = if p.0 == pid { from } else { 0 };
                let vmas: Vec<Vma> = match self.mm(p) {
                    Ok(mm) => mm.vmas.iter().filter(|v| v.end.0 > from).cloned().collect(),
                    Err(_) => Vec::new(),
                };
                for vma in vmas {
                    if !self.thp_allowed(p, &vma) {
                        budget = budget.saturating_sub(1);
                        if budget == 0 {
                            self.khugepaged.cursor = (p.0, vma.end.0);
                            break 'scan;
                        }
                        continue;
                    }
                    let first = (vma.start.0.max(from) + size - 1) & !(size - 1);
                    let mut at = first;
                    while at + size <= vma.end.0 {
                        budget = budget.saturating_sub(n);
                        match self.khugepaged_scan_range(p, &vma, VirtAddr(at)) {
                            Scan::Collapsed => collapsed += 1,
                            Scan::NoHugePage => {
                                sleep = cfg.alloc_sleep_millisecs;
                                self.khugepaged.cursor = (p.0, at);
                                break 'scan;
                            }
                            Scan::Skip => {}
                        }
                        at += size;
                        if budget == 0 {
                            self.khugepaged.cursor = (p.0, at);
                            break 'scan;
                        }
                    }
                }
                self.khugepaged.cursor = (p.0 + 1, 0);
            }
        }
        let now = self.now_ns();
        self.khugepaged.next_ns = Some(now.saturating_add(sleep.saturating_mul(MS)));
        collapsed
    }

    /// Whether the huge-page range at `start` of `pid` qualifies for a collapse (see
    /// the module's documentation).
    fn khugepaged_qualifies(&self, pid: Pid, start: VirtAddr) -> bool {
        let cfg = &self.config.khugepaged;
        let paging = self.machine.spec.paging;
        let Ok(pt) = self.mm(pid).map(|m| m.pt) else {
            return false;
        };
        if pt.empty_at(&paging, &self.machine.ram, start, 2) {
            return false;
        }
        if matches!(pt.slot(&paging, &self.machine.ram, start), Some(Slot::Leaf(m)) if m.level > 1)
        {
            return false;
        }
        let n = self.hpage_pages();
        let end = VirtAddr(start.0 + n * self.page_size());
        let entries = pt.entries(&paging, &self.machine.ram, start, end);
        let mut none = n - entries.len() as u64;
        let (mut shared, mut writable, mut young) = (0, false, false);
        for (_, slot) in &entries {
            let Slot::Leaf(m) = slot else {
                return false;
            };
            if m.level != 1 {
                return false;
            }
            if m.pfn == self.space.zero_pfn {
                none += 1;
                continue;
            }
            if self.frames.kind(m.pfn) != FrameKind::Anon {
                return false;
            }
            if self.frames.refs(m.pfn) > 1 {
                shared += 1;
            }
            writable |= m.flags.contains(Flags::WRITE);
            young |= m.flags.contains(Flags::ACCESSED);
        }
        none <= cfg.max_ptes_none && shared <= cfg.max_ptes_shared && writable && young
    }

    /// Scans the huge-page range at `start` of `vma` of `pid`, and collapses it if it
    /// qualifies.
    fn khugepaged_scan_range(&mut self, pid: Pid, vma: &Vma, start: VirtAddr) -> Scan {
        if !self.khugepaged_qualifies(pid, start) {
            return Scan::Skip;
        }
        let Ok(head) = self.alloc_huge_page(pid, MAX_RECLAIM_RETRIES) else {
            self.log.counters.thp.collapse_alloc_failed += 1;
            return Scan::NoHugePage;
        };
        // Reclaim for the huge page may have taken pages of the range: look again.
        if !self.khugepaged_qualifies(pid, start) {
            self.free_huge(head);
            return Scan::Skip;
        }
        let paging = self.machine.spec.paging;
        let Ok(pt) = self.mm(pid).map(|m| m.pt) else {
            self.free_huge(head);
            return Scan::Skip;
        };
        let ps = self.page_size();
        let end = VirtAddr(start.0 + self.hpage_pages() * ps);
        for (va, slot) in pt.entries(&paging, &self.machine.ram, start, end) {
            if let Slot::Leaf(m) = slot {
                if m.pfn != self.space.zero_pfn {
                    let dst = crate::addr::Pfn(head.0 + (va.0 - start.0) / ps);
                    self.copy_frame(m.pfn, dst);
                }
            }
        }
        if self.zap(pid, start, end).is_err() {
            self.free_huge(head);
            return Scan::Skip;
        }
        self.free_tables_in(pid, start, end);
        let flags = self.user_flags(vma.prot, true, false) | Flags::DIRTY;
        if self.map_huge(pid, start, head, flags).is_err() {
            // The table just freed is there for the taking: this cannot fail for want
            // of memory, but if it did, the range would read back as zeros.
            debug_assert!(false, "no room for the huge mapping at {start}");
            self.free_huge(head);
            return Scan::Skip;
        }
        if vma.locked.is_locked() {
            self.mlock_frame(head);
        }
        self.log.counters.thp.collapse_alloc += 1;
        Scan::Collapsed
    }
}

/// Nanoseconds in a millisecond.
const MS: u64 = 1_000_000;

/// How often a charge or an allocation may reclaim before it fails (Linux's
/// `MAX_RECLAIM_RETRIES`): khugepaged's allocations may (its `defrag` is 1).
const MAX_RECLAIM_RETRIES: u32 = 16;

#[cfg(test)]
mod tests {
    use super::KhugepagedConfig;
    use crate::os::test_support::*;
    use crate::os::thp::{HugeAdvice, ThpMode};

    const HUGE: u64 = 2 << 20;

    /// A private anonymous mapping of `n` huge-page ranges on a 2 MiB boundary, with
    /// `pages` of each range written (page i holds i + 1), then advised huge: base
    /// pages that khugepaged may collapse.
    fn written_area(k: &mut Kernel, pid: Pid, n: u64, pages: u64) -> VirtAddr {
        let args = MmapArgs {
            addr: Some(VirtAddr(0x10_0000_0000)),
            ..MmapArgs::anon(n * HUGE, Prot::RW)
        };
        let at = k.mmap(pid, args).unwrap();
        assert_eq!(at.0 % HUGE, 0);
        for r in 0..n {
            for i in 0..pages {
                let va = VirtAddr(at.0 + r * HUGE + i * 4096);
                k.write_u64(pid, va, r * 1000 + i + 1).unwrap();
            }
        }
        k.madvise_huge(pid, at, n * HUGE, HugeAdvice::Huge).unwrap();
        at
    }

    fn level_at(k: &Kernel, pid: Pid, va: VirtAddr) -> Option<u32> {
        let pt = k.mm(pid).unwrap().pt;
        match pt.slot(&k.machine.spec.paging, &k.machine.ram, va) {
            Some(crate::hw::Slot::Leaf(m)) => Some(m.level),
            _ => None,
        }
    }

    #[test]
    fn a_scan_collapses_written_base_pages_into_a_huge_page_bytes_kept() {
        let (mut k, a) = booted();
        let at = written_area(&mut k, a, 2, 100);
        let free = k.frames().nr_free();
        assert_eq!(k.khugepaged_scan(), 2);
        let c = k.counters().thp;
        assert_eq!((c.collapse_alloc, c.collapse_alloc_failed), (2, 0));
        assert_eq!(k.nr_anon_huge_pages(), 2);
        assert_eq!(level_at(&k, a, at), Some(2));
        // Two huge pages in, 200 base pages and two page tables out.
        assert_eq!(free + 200 + 2, k.frames().nr_free() + 1024);
        for r in 0..2 {
            for i in 0..512 {
                let want = if i < 100 { r * 1000 + i + 1 } else { 0 };
                let va = VirtAddr(at.0 + r * HUGE + i * 4096);
                assert_eq!(k.read_u64(a, va).unwrap(), want, "range {r} page {i}");
            }
        }
        let rss = k.process(a).unwrap().rss();
        assert_eq!((rss.anon, rss.anon_huge), (1024, 1024));
        // Writes go to the huge page, not to a frame the TLB remembered.
        k.write_u64(a, VirtAddr(at.0 + 4096), 77).unwrap();
        assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096)).unwrap(), 77);
        // Nothing left to do: a second scan collapses nothing.
        assert_eq!(k.khugepaged_scan(), 0);
        let base = k.frame_baseline();
        k.exit(a, 0).unwrap();
        assert!(k.frame_baseline().free >= base.free + 1024);
    }

    #[test]
    fn too_many_empty_entries_shared_pages_or_swapped_ones_keep_a_range_as_it_is() {
        // max_ptes_none: one written page leaves 511 empty.
        for (none, collapsed) in [(510, 0), (511, 1)] {
            let mut k = boot_with("x86-64", |c| c.khugepaged.max_ptes_none = none);
            let a = spawn(&mut k);
            written_area(&mut k, a, 1, 1);
            assert_eq!(k.khugepaged_scan(), collapsed, "max_ptes_none {none}");
        }
        // max_ptes_shared: after fork every page is shared and read-only; the parent's
        // write to one makes it its own, and writable, so that the range may go.
        for (shared, collapsed) in [(98, 0), (99, 1)] {
            let mut k = boot_with("x86-64", |c| c.khugepaged.max_ptes_shared = shared);
            let a = spawn(&mut k);
            let at = written_area(&mut k, a, 1, 100);
            let b = k.fork(a).unwrap();
            assert_eq!(k.khugepaged_scan(), 0, "no entry writable");
            k.write_u64(a, at, 1).unwrap();
            assert_eq!(k.khugepaged_scan(), collapsed, "max_ptes_shared {shared}");
            // Each side reads its own bytes.
            assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * 5)).unwrap(), 6);
            k.write_u64(b, VirtAddr(at.0 + 4096 * 5), 9).unwrap();
            assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * 5)).unwrap(), 6);
        }
        // Pages out on swap: pushed out by 400 pages written under a 1 MiB limit.
        let mut k = boot_with("x86-64", |c| {
            c.swap_bytes = 64 << 20;
            c.memory_max = Some(1 << 20);
        });
        let a = spawn(&mut k);
        let at = written_area(&mut k, a, 1, 8);
        let other = k.mmap(a, MmapArgs::anon(400 * 4096, Prot::RW)).unwrap();
        write_pages(&mut k, a, other, 400, |i| i);
        assert!(k.counters().swap_outs >= 8);
        assert_eq!(k.khugepaged_scan(), 0);
        assert_eq!(k.counters().thp.collapse_alloc_failed, 0, "not even tried");
        assert_eq!(k.read_u64(a, at).unwrap(), 1);
    }

    #[test]
    fn the_mode_and_advice_decide_as_for_a_fault() {
        for (mode, advice, collapsed) in [
            (ThpMode::Madvise, HugeAdvice::Default, 0),
            (ThpMode::Madvise, HugeAdvice::Huge, 1),
            (ThpMode::Always, HugeAdvice::Default, 1),
            (ThpMode::Always, HugeAdvice::NoHuge, 0),
            (ThpMode::Never, HugeAdvice::Huge, 0),
        ] {
            let mut k = boot_with("x86-64", |c| c.thp = mode);
            let a = spawn(&mut k);
            let at = written_area(&mut k, a, 1, 50);
            // In always mode the writes above took a huge page: split it first.
            k.mprotect(a, at, 4096, Prot::READ).unwrap();
            k.mprotect(a, at, 4096, Prot::RW).unwrap();
            k.madvise_huge(a, at, HUGE, advice).unwrap();
            assert_eq!(k.khugepaged_scan(), collapsed, "{mode:?} {advice:?}");
        }
    }

    #[test]
    fn khugepaged_wakes_by_simulated_time() {
        let mut k = boot_with("x86-64", |c| {
            c.khugepaged = KhugepagedConfig {
                scan_sleep_millisecs: 1,
                ..KhugepagedConfig::default()
            }
        });
        let a = spawn(&mut k);
        let at = written_area(&mut k, a, 1, 64);
        let pages: Vec<VirtAddr> = (0..64).map(|i| VirtAddr(at.0 + i * 4096)).collect();
        let mut out = vec![crate::addr::PhysAddr(0); pages.len()];
        let mut runs = 0;
        while k.counters().thp.collapse_alloc == 0 {
            k.access_run(a, &pages, AccessKind::Read, &mut out).unwrap();
            runs += 1;
            assert!(runs < 1_000_000, "khugepaged never woke");
        }
        // 1 ms at 3 GHz: millions of cycles of TLB hits, not one run.
        assert!(runs > 100, "{runs}");
        assert!(k.now_ns() >= 1_000_000);
        assert_eq!(k.read_u64(a, VirtAddr(at.0 + 4096 * 63)).unwrap(), 64);
    }

    #[test]
    fn settings_parse_by_their_sysfs_names() {
        let c = crate::options::khugepaged("pages_to_scan=8192, max_ptes_none=0").unwrap();
        assert_eq!((c.pages_to_scan, c.max_ptes_none), (8192, 0));
        assert_eq!(c.scan_sleep_millisecs, 10_000);
        assert_eq!(
            crate::options::khugepaged("").unwrap(),
            KhugepagedConfig::default()
        );
        let e = |s: &str| crate::options::khugepaged(s).unwrap_err();
        assert!(e("max_ptes=1").contains("unknown khugepaged setting `max_ptes`"));
        assert!(e("pages_to_scan").contains("not KEY=VALUE"));
        assert!(e("pages_to_scan=0").contains("at least 1"));
        assert!(e("max_ptes_none=x").starts_with("max_ptes_none: "));
    }
}
