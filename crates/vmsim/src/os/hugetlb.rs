//! hugetlbfs: huge pages from pools reserved at boot, mapped with `MAP_HUGETLB`, as
//! Linux 6.x's `mm/hugetlb.c` does for anonymous mappings.
//!
//! - **Pools.** `--hugepages 2MiB:N,1GiB:M` (Linux's `hugepages=` boot parameters, or
//!   `nr_hugepages` per size) takes N blocks of each size from the buddy allocator at
//!   boot, one for every leaf size the machine's page tables allow above the base page
//!   (2 MiB and 1 GiB on x86-64 and Sv39, megapages and gigapages; whatever a textbook
//!   machine's geometry gives). Pool pages are never reclaimed, swapped or charged to
//!   a memory group (Linux charges them to the hugetlb controller, not to memory).
//! - **mmap.** `MAP_HUGETLB` with a pool's size: the length is rounded up to the huge
//!   page and the mapping placed on its boundary. Unless `MAP_NORESERVE`, the mapping
//!   reserves a pool page for each huge page it spans (`HugePages_Rsvd`) and fails with
//!   `ENOMEM` when the pool cannot promise them.
//! - **The fault** (`hugetlb_no_page`): a page from the pool, zeroed, mapped by one
//!   leaf of its level, a minor fault. A private mapping's read maps it read-only and a
//!   write then makes it writable (Linux's `hugetlb_wp` reusing the page: a second
//!   minor fault). With no page free that is not promised to another mapping, the
//!   access gets `SIGBUS`.
//! - **Fork** shares the pages: a shared mapping's stay writable, a private one's are
//!   write-protected on both sides, and a write copies the huge page from the pool
//!   (`SIGBUS` if none is free), or reuses it once only one mapping is left.
//! - **munmap, mprotect, madvise** must cover whole huge pages (`EINVAL` otherwise);
//!   `munmap` and exit give pages and unused reservations back to the pool;
//!   `MADV_DONTNEED` frees the pages; `mremap` of a hugetlb mapping is refused
//!   (`EINVAL`).
//! - **Counters** as `/proc/meminfo` has them for each size: `HugePages_Total`,
//!   `HugePages_Free`, `HugePages_Rsvd`; per process, `HugetlbPages`
//!   (`/proc/PID/status`), not part of the resident set.
//!
//! Where vmsim departs from Linux (docs/kernel.md): no surplus pages
//! (`nr_overcommit_hugepages` is 0), no hugetlbfs files (only `MAP_HUGETLB` anonymous
//! memory, private or shared), no `SHM_HUGETLB`; a private mapping's owner never
//! takes a page back from a child to satisfy its reservation.

use super::fault::{FaultKind, Violation};
use super::frames::FrameKind;
use super::vma::{Backing, Vma};
use super::{Errno, Kernel, Pid};
use crate::addr::{Pfn, VirtAddr};
use crate::hw::{Flags, TlbFlush};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// One pool's counters, as `/proc/meminfo` and
/// `/sys/kernel/mm/hugepages/hugepages-SIZEkB/` show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HugePoolStats {
    /// The pool's page size in bytes.
    pub page_bytes: u64,
    /// `HugePages_Total`: pages in the pool.
    pub total: u64,
    /// `HugePages_Free`: pages no mapping holds (reserved ones included; the length of
    /// the pool's free list).
    pub free: u64,
    /// `HugePages_Rsvd`: free pages promised to mappings that have not faulted them.
    pub rsvd: u64,
    /// Pages faulted in since boot.
    pub faults: u64,
    /// Accesses that got `SIGBUS` because the pool had no page to give.
    pub sigbus: u64,
}

/// One size's pool.
#[derive(Clone, Debug, Default)]
struct Pool {
    /// The page-table level whose leaf maps one of its pages.
    level: u32,
    /// Base pages in one of its pages.
    pages: u64,
    /// Its free pages' first frames.
    free: Vec<Pfn>,
    /// Counters.
    stats: HugePoolStats,
}

/// The kernel's hugetlb pools and the pages mapped from them.
#[derive(Clone, Debug, Default)]
pub(super) struct HugeTlb {
    pools: Vec<Pool>,
    /// Pool pages mapped somewhere: first frame → (pool, how many leaves map it).
    mapped: FxHashMap<u64, (usize, u32)>,
    /// Whether any hugetlb VMA was ever made (runs without skip every check).
    ever_mapped: bool,
}

/// Why the pools could not be made at boot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HugePoolError {
    /// The machine has no leaf of that size.
    #[error("--hugepages: {size}: this machine's page tables have no leaf of that size (they have {sizes})")]
    NoSuchSize {
        /// The size asked for, as people write it.
        size: String,
        /// The sizes it has, as people write them.
        sizes: String,
    },
    /// RAM has too few free blocks of that size.
    #[error("--hugepages: {size}:{want}: RAM has room for only {got} such pages at boot")]
    TooFew {
        /// The size, as people write it.
        size: String,
        /// Pages asked for.
        want: u64,
        /// Pages there was room for.
        got: u64,
    },
}

impl Kernel {
    /// The levels whose leaves may map user memory above the base page, with their
    /// sizes in bytes.
    fn huge_leaf_sizes(&self) -> Vec<(u32, u64)> {
        let p = &self.machine.spec.paging;
        (2..=p.levels)
            .filter(|&l| p.leaf_allowed(l))
            .map(|l| (l, p.leaf_size(l)))
            .collect()
    }

    /// Makes the pools `want` asks for ((page size in bytes, pages) pairs), taking
    /// their pages from the buddy allocator.
    pub(super) fn make_huge_pools(&mut self, want: &[(u64, u64)]) -> Result<(), HugePoolError> {
        let sizes = self.huge_leaf_sizes();
        let fmt = crate::size::format_size;
        // Every size the machine has a pool, empty unless asked for (Linux's hstates).
        for &(level, bytes) in &sizes {
            self.hugetlb.pools.push(Pool {
                level,
                pages: bytes >> self.machine.spec.paging.page_shift,
                stats: HugePoolStats {
                    page_bytes: bytes,
                    ..HugePoolStats::default()
                },
                ..Pool::default()
            });
        }
        for &(bytes, n) in want {
            let Some(&(level, _)) = sizes.iter().find(|(_, s)| *s == bytes) else {
                let names: Vec<String> = sizes.iter().map(|(_, s)| fmt(*s)).collect();
                return Err(HugePoolError::NoSuchSize {
                    size: fmt(bytes),
                    sizes: if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    },
                });
            };
            let pages = bytes >> self.machine.spec.paging.page_shift;
            let Some(i) = self.hugetlb.pools.iter().position(|p| p.level == level) else {
                continue;
            };
            for got in 0..n {
                let Some(head) = self.frames.alloc(pages, FrameKind::Kernel, 0) else {
                    return Err(HugePoolError::TooFew {
                        size: fmt(bytes),
                        want: n,
                        got,
                    });
                };
                let pool = &mut self.hugetlb.pools[i];
                pool.free.push(head);
                pool.stats.total += 1;
            }
            // Low addresses first, as Linux's free lists hand them out after boot.
            self.hugetlb.pools[i].free.sort_by(|a, b| b.cmp(a));
        }
        Ok(())
    }

    /// The hugetlb pools' counters, smallest page first.
    pub fn huge_pools(&self) -> Vec<HugePoolStats> {
        let mut v: Vec<HugePoolStats> = (self.hugetlb.pools.iter())
            .map(|p| HugePoolStats {
                free: p.free.len() as u64,
                ..p.stats
            })
            .collect();
        v.sort_by_key(|s| s.page_bytes);
        v
    }

    /// The pool of `page_bytes` pages, if there is one.
    fn pool_of(&self, page_bytes: u64) -> Option<usize> {
        self.hugetlb
            .pools
            .iter()
            .position(|p| p.stats.page_bytes == page_bytes)
    }

    /// `mmap(MAP_HUGETLB)`'s checks and reservation: the pool for `page_bytes`, the
    /// length rounded up to its pages, and (unless `noreserve`) a page reserved for
    /// each. Returns the backing and the length.
    pub(super) fn hugetlb_reserve(
        &mut self,
        page_bytes: u64,
        len: u64,
        noreserve: bool,
    ) -> Result<(Backing, u64), Errno> {
        let pool = self.pool_of(page_bytes).ok_or(Errno::EINVAL)?;
        self.hugetlb.ever_mapped = true;
        let len = len
            .checked_next_multiple_of(page_bytes)
            .filter(|&l| l > 0)
            .ok_or(Errno::EINVAL)?;
        if !noreserve {
            let n = len / page_bytes;
            let p = &mut self.hugetlb.pools[pool];
            if p.free.len() as u64 - p.stats.rsvd < n {
                return Err(Errno::ENOMEM);
            }
            p.stats.rsvd += n;
        }
        Ok((
            Backing::HugeTlb {
                page_bytes,
                reserved: !noreserve,
            },
            len,
        ))
    }

    /// Gives back the reservation `hugetlb_reserve` made for `len` bytes of
    /// `page_bytes` pages (an `mmap` that failed after it).
    pub(super) fn hugetlb_release(&mut self, page_bytes: u64, len: u64) {
        if let Some(i) = self.pool_of(page_bytes) {
            let s = &mut self.hugetlb.pools[i].stats;
            s.rsvd = s.rsvd.saturating_sub(len / page_bytes);
        }
    }

    /// Whether `[start, end)` of `pid` cuts no hugetlb page: `EINVAL` where it ends
    /// inside one.
    pub(super) fn hugetlb_aligned(
        &self,
        pid: Pid,
        start: VirtAddr,
        end: VirtAddr,
    ) -> Result<(), Errno> {
        if !self.hugetlb.ever_mapped {
            return Ok(());
        }
        let mm = self.mm(pid)?;
        for edge in [start, end] {
            if let Some(v) = mm.vmas.find(edge) {
                if let Backing::HugeTlb { page_bytes, .. } = v.backing {
                    if edge.0 % page_bytes != 0 {
                        return Err(Errno::EINVAL);
                    }
                }
            }
        }
        Ok(())
    }

    /// Gives back the reservations of the huge pages of reserved hugetlb VMAs in
    /// `[start, end)` of `pid` that were never faulted in (before they are unmapped).
    pub(super) fn hugetlb_unreserve(&mut self, pid: Pid, start: VirtAddr, end: VirtAddr) {
        if !self.hugetlb.ever_mapped {
            return;
        }
        let Ok(mm) = self.mm(pid) else { return };
        let pt = mm.pt;
        let paging = self.machine.spec.paging;
        let mut back = Vec::new();
        for v in mm.vmas.overlapping(start, end) {
            let Backing::HugeTlb {
                page_bytes,
                reserved: true,
            } = v.backing
            else {
                continue;
            };
            let (a, b) = (v.start.max(start), v.end.min(end));
            let mut at = a.0;
            let mut unused = 0;
            while at < b.0 {
                if pt.empty_at(&paging, &self.machine.ram, VirtAddr(at), 1) {
                    unused += 1;
                }
                at += page_bytes;
            }
            back.push((page_bytes, unused));
        }
        for (bytes, n) in back {
            if let Some(i) = self.pool_of(bytes) {
                let s = &mut self.hugetlb.pools[i].stats;
                s.rsvd = s.rsvd.saturating_sub(n);
            }
        }
    }

    /// A fault with no entry at `page` of hugetlb `vma`: a pool page, zeroed, mapped
    /// by one leaf (read-only for a private mapping's read); `SIGBUS` when the pool has
    /// none to give.
    pub(super) fn hugetlb_fault(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        write: bool,
    ) -> Result<FaultKind, Violation> {
        let Backing::HugeTlb {
            page_bytes,
            reserved,
        } = vma.backing
        else {
            return Err(Violation::NoVma);
        };
        let pool = self.pool_of(page_bytes).ok_or(Violation::NoVma)?;
        let start = VirtAddr(page.0 & !(page_bytes - 1));
        let promised = reserved && self.hugetlb.pools[pool].stats.rsvd > 0;
        let head = self.take_pool_page(pool, promised)?;
        let n = self.hugetlb.pools[pool].pages;
        let r = self.machine.ram.zero_frames(head, n);
        debug_assert!(r.is_ok(), "hugetlb page outside RAM");
        let flags = self.user_flags(vma.prot, write || vma.shared, false);
        let level = self.hugetlb.pools[pool].level;
        let pt = self.mm(pid).map_err(|_| Violation::NoVma)?.pt;
        if self.map_user_leaf(pt, start, head, level, flags).is_err() {
            self.hugetlb.pools[pool].free.push(head);
            return Err(Violation::OutOfMemory);
        }
        if promised {
            self.hugetlb.pools[pool].stats.rsvd -= 1;
        }
        self.pool_page_mapped(pool, head);
        self.count_hugetlb(pid, n as i64);
        Ok(FaultKind::DemandZero)
    }

    /// Whether `pfn` is the first frame of a mapped hugetlb page.
    pub(super) fn is_hugetlb_page(&self, pfn: Pfn) -> bool {
        !self.hugetlb.mapped.is_empty() && self.hugetlb.mapped.contains_key(&pfn.0)
    }

    /// A write to the read-only hugetlb leaf `m` at `page` of private `vma` of `pid`:
    /// the page made writable where only this mapping holds it, else copied into a
    /// page of the pool (`SIGBUS` if none is free).
    pub(super) fn hugetlb_write_fault(
        &mut self,
        pid: Pid,
        vma: &Vma,
        page: VirtAddr,
        m: crate::hw::Mapping,
    ) -> Result<FaultKind, Violation> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid).map_err(|_| Violation::NoVma)?.pt;
        let Some(&(pool, maps)) = self.hugetlb.mapped.get(&m.pfn.0) else {
            return Err(Violation::NoVma);
        };
        let bytes = self.hugetlb.pools[pool].stats.page_bytes;
        let start = VirtAddr(page.0 & !(bytes - 1));
        if maps == 1 {
            let flush = pt
                .set_flags(
                    &paging,
                    &mut self.machine.ram,
                    start,
                    m.flags | Flags::WRITE,
                )
                .map_err(|_| Violation::NoVma)?;
            self.flush_for(pid, flush);
            return Ok(FaultKind::CowReuse);
        }
        let new = self.take_pool_page(pool, false)?;
        let n = self.hugetlb.pools[pool].pages;
        for i in 0..n {
            let r = self
                .machine
                .ram
                .copy_frame(Pfn(m.pfn.0 + i), Pfn(new.0 + i));
            debug_assert!(r.is_ok(), "hugetlb page outside RAM");
        }
        let (_, flush) = pt
            .unmap(&paging, &mut self.machine.ram, start)
            .map_err(|_| Violation::NoVma)?;
        self.flush_for(pid, flush);
        self.hugetlb_put(m.pfn);
        let flags = self.user_flags(vma.prot, true, false);
        let level = self.hugetlb.pools[pool].level;
        if self.map_user_leaf(pt, start, new, level, flags).is_err() {
            self.hugetlb.pools[pool].free.push(new);
            self.count_hugetlb(pid, -(n as i64));
            return Err(Violation::OutOfMemory);
        }
        self.pool_page_mapped(pool, new);
        Ok(FaultKind::CowCopy)
    }

    /// A free page of `pool`: any free one if it was `promised` to the mapping (a
    /// reservation), else one no reservation holds; `SIGBUS` (counted) if none is.
    fn take_pool_page(&mut self, pool: usize, promised: bool) -> Result<Pfn, Violation> {
        let p = &mut self.hugetlb.pools[pool];
        let spare = p.free.len() as u64 > if promised { 0 } else { p.stats.rsvd };
        match spare.then(|| p.free.pop()).flatten() {
            Some(head) => Ok(head),
            None => {
                p.stats.sigbus += 1;
                Err(Violation::HugePoolEmpty)
            }
        }
    }

    /// The page at `head` of `pool`, taken by [`Kernel::take_pool_page`], is mapped
    /// once now.
    fn pool_page_mapped(&mut self, pool: usize, head: Pfn) {
        self.hugetlb.pools[pool].stats.faults += 1;
        self.hugetlb.mapped.insert(head.0, (pool, 1));
    }

    /// Fork: the child maps the hugetlb page at `head` too, at `va` with `flags`.
    pub(super) fn hugetlb_share(
        &mut self,
        child: Pid,
        va: VirtAddr,
        head: Pfn,
        flags: Flags,
    ) -> Result<(), Errno> {
        let Some(&(pool, _)) = self.hugetlb.mapped.get(&head.0) else {
            return Err(Errno::EFAULT);
        };
        let level = self.hugetlb.pools[pool].level;
        let pt = self.mm(child)?.pt;
        self.map_user_leaf(pt, va, head, level, flags)?;
        if let Some(e) = self.hugetlb.mapped.get_mut(&head.0) {
            e.1 += 1;
        }
        let n = self.hugetlb.pools[pool].pages;
        self.count_hugetlb(child, n as i64);
        Ok(())
    }

    /// Removes the hugetlb leaf mapping `va` of `pid` (munmap, exit, `MADV_DONTNEED`):
    /// the page goes back to its pool when no mapping is left. Returns the flush owed.
    pub(super) fn zap_hugetlb(
        &mut self,
        pid: Pid,
        va: VirtAddr,
        head: Pfn,
    ) -> Result<TlbFlush, Errno> {
        let paging = self.machine.spec.paging;
        let pt = self.mm(pid)?.pt;
        let (_, flush) = pt
            .unmap(&paging, &mut self.machine.ram, va)
            .map_err(|_| Errno::EFAULT)?;
        if let Some(&(pool, _)) = self.hugetlb.mapped.get(&head.0) {
            let n = self.hugetlb.pools[pool].pages;
            self.count_hugetlb(pid, -(n as i64));
        }
        self.hugetlb_put(head);
        Ok(flush)
    }

    /// One mapping of the hugetlb page at `head` is gone.
    fn hugetlb_put(&mut self, head: Pfn) {
        let Some(e) = self.hugetlb.mapped.get_mut(&head.0) else {
            return;
        };
        e.1 -= 1;
        if e.1 > 0 {
            return;
        }
        let pool = e.0;
        self.hugetlb.mapped.remove(&head.0);
        self.hugetlb.pools[pool].free.push(head);
    }

    /// Adds `delta` pages to `pid`'s `HugetlbPages`.
    fn count_hugetlb(&mut self, pid: Pid, delta: i64) {
        if let Ok(mm) = self.mm_mut(pid) {
            mm.rss.hugetlb = mm.rss.hugetlb.saturating_add_signed(delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HugePoolStats;
    use crate::os::fault::FaultKind;
    use crate::os::mmap::MapSource;
    use crate::os::test_support::*;

    const MB2: u64 = 2 << 20;
    const GB1: u64 = 1 << 30;

    fn pooled(pools: &[(u64, u64)]) -> (Kernel, Pid) {
        let mut k = boot_with("x86-64", |c| c.hugepages = pools.to_vec());
        let a = spawn(&mut k);
        (k, a)
    }

    fn huge_map(
        k: &mut Kernel,
        pid: Pid,
        bytes: u64,
        len: u64,
        noreserve: bool,
    ) -> Result<VirtAddr, Errno> {
        k.mmap(
            pid,
            MmapArgs {
                source: MapSource::HugeTlb {
                    page_bytes: bytes,
                    noreserve,
                },
                ..MmapArgs::anon(len, Prot::RW)
            },
        )
    }

    fn pool(k: &Kernel, bytes: u64) -> HugePoolStats {
        *k.huge_pools()
            .iter()
            .find(|p| p.page_bytes == bytes)
            .unwrap()
    }

    #[test]
    fn a_pool_is_taken_at_boot_and_a_fault_maps_one_leaf_of_its_size() {
        let (mut k, a) = pooled(&[(MB2, 4), (GB1, 1)]);
        let p = pool(&k, MB2);
        assert_eq!((p.total, p.free, p.rsvd), (4, 4, 0));
        let at = huge_map(&mut k, a, MB2, 3 << 20, false).unwrap();
        assert_eq!(at.0 % MB2, 0);
        // 3 MiB rounds up to two pages, both reserved.
        assert_eq!(pool(&k, MB2).rsvd, 2);
        k.write_u64(a, VirtAddr(at.0 + 4096 * 3), 5).unwrap();
        let p = pool(&k, MB2);
        assert_eq!((p.free, p.rsvd, p.faults), (3, 1, 1));
        assert_eq!(k.counters().faults_of(FaultKind::DemandZero), 1);
        for i in 0..512 {
            assert_eq!(
                k.read_u64(a, VirtAddr(at.0 + 4096 * i)).unwrap(),
                u64::from(i == 3) * 5
            );
        }
        let r = k.process(a).unwrap().rss();
        assert_eq!((r.hugetlb, r.anon), (512, 0), "not in the resident set");
        // A 1 GiB page: one level-3 leaf.
        let g = huge_map(&mut k, a, GB1, GB1, false).unwrap();
        assert_eq!(g.0 % GB1, 0);
        k.write_u64(a, VirtAddr(g.0 + 12345 * 4096), 9).unwrap();
        assert_eq!(k.read_u64(a, VirtAddr(g.0 + 12345 * 4096)).unwrap(), 9);
        assert_eq!(pool(&k, GB1).free, 0);
        // munmap gives the page and the unused reservation back.
        k.munmap(a, at, 2 * MB2).unwrap();
        let p = pool(&k, MB2);
        assert_eq!((p.free, p.rsvd), (4, 0));
        k.exit(a, 0).unwrap();
        assert_eq!(pool(&k, GB1).free, 1);
    }

    #[test]
    fn reservations_refuse_what_the_pool_cannot_promise_and_noreserve_gets_sigbus() {
        let mut k = boot_with("x86-64", |c| {
            c.hugepages = vec![(MB2, 2)];
            c.kill_on_violation = false;
        });
        let a = spawn(&mut k);
        assert_eq!(huge_map(&mut k, a, MB2, 3 * MB2, false), Err(Errno::ENOMEM));
        assert_eq!(pool(&k, MB2).rsvd, 0);
        let r = huge_map(&mut k, a, MB2, 2 * MB2, false).unwrap();
        // Everything is promised: a MAP_NORESERVE mapping maps, but its fault finds
        // no page to take.
        let n = huge_map(&mut k, a, MB2, MB2, true).unwrap();
        assert!(k.write_u64(a, n, 1).is_err());
        assert_eq!(k.counters().faults_of(FaultKind::Bus), 1);
        assert_eq!(pool(&k, MB2).sigbus, 1);
        // The reserved mapping still gets both of its pages.
        k.write_u64(a, r, 1).unwrap();
        k.write_u64(a, VirtAddr(r.0 + MB2), 2).unwrap();
        assert_eq!(pool(&k, MB2).free, 0);
        // A size the machine has no leaf for; a leaf size whose pool is empty.
        assert_eq!(huge_map(&mut k, a, 4 << 20, MB2, false), Err(Errno::EINVAL));
        assert_eq!(huge_map(&mut k, a, GB1, GB1, false), Err(Errno::ENOMEM));
    }

    #[test]
    fn ranges_must_cover_whole_huge_pages() {
        let (mut k, a) = pooled(&[(MB2, 2)]);
        let at = huge_map(&mut k, a, MB2, 2 * MB2, false).unwrap();
        k.write_u64(a, at, 7).unwrap();
        let mid = VirtAddr(at.0 + 4096);
        assert_eq!(k.munmap(a, mid, 4096), Err(Errno::EINVAL));
        assert_eq!(k.mprotect(a, mid, 4096, Prot::READ), Err(Errno::EINVAL));
        assert_eq!(k.madvise_dontneed(a, mid, 4096), Err(Errno::EINVAL));
        assert_eq!(k.madvise_free(a, at, MB2), Err(Errno::EINVAL));
        assert_eq!(
            k.mremap(a, at, MB2, VirtAddr(0x30_0000_0000), MB2),
            Err(Errno::EINVAL)
        );
        assert_eq!(k.read_u64(a, at).unwrap(), 7, "nothing touched");
        // A whole page may go.
        k.madvise_dontneed(a, at, MB2).unwrap();
        assert_eq!(k.read_u64(a, at).unwrap(), 0);
        k.mprotect(a, at, MB2, Prot::READ).unwrap();
        assert!(k.write_u64(a, at, 1).is_err());
    }

    #[test]
    fn fork_shares_shared_pages_and_copies_private_ones_on_write() {
        let (mut k, a) = pooled(&[(MB2, 3)]);
        let private = huge_map(&mut k, a, MB2, MB2, false).unwrap();
        let shared = k
            .mmap(
                a,
                MmapArgs {
                    shared: true,
                    source: MapSource::HugeTlb {
                        page_bytes: MB2,
                        noreserve: false,
                    },
                    ..MmapArgs::anon(MB2, Prot::RW)
                },
            )
            .unwrap();
        k.write_u64(a, private, 1).unwrap();
        k.write_u64(a, shared, 2).unwrap();
        let b = k.fork(a).unwrap();
        assert_eq!(pool(&k, MB2).free, 1);
        // Shared: one page, both see each other's writes.
        k.write_u64(b, VirtAddr(shared.0 + 8), 3).unwrap();
        assert_eq!(k.read_u64(a, VirtAddr(shared.0 + 8)).unwrap(), 3);
        // Private: the child's write copies the huge page from the pool.
        k.write_u64(b, private, 4).unwrap();
        assert_eq!(k.counters().faults_of(FaultKind::CowCopy), 1);
        assert_eq!(
            (
                k.read_u64(a, private).unwrap(),
                k.read_u64(b, private).unwrap()
            ),
            (1, 4)
        );
        assert_eq!(pool(&k, MB2).free, 0);
        // The parent's page is its own again: its write reuses it.
        k.write_u64(a, private, 5).unwrap();
        assert_eq!(k.counters().faults_of(FaultKind::CowReuse), 1);
        k.exit(b, 0).unwrap();
        assert_eq!(pool(&k, MB2).free, 1);
        k.exit(a, 0).unwrap();
        assert_eq!(pool(&k, MB2).free, 3);
    }

    #[test]
    fn risc_v_megapages_and_gigapages_and_a_textbook_machines_4mib_pages() {
        for (preset, pools) in [
            ("sv39", vec![(MB2, 1), (GB1, 1)]),
            ("textbook-2level", vec![(4 << 20, 2)]),
        ] {
            let mut k = boot_with(preset, |c| c.hugepages = pools.clone());
            let a = spawn(&mut k);
            for &(bytes, _) in &pools {
                let at = huge_map(&mut k, a, bytes, bytes, false).unwrap();
                let va = VirtAddr(at.0 + bytes - 8);
                k.write_u64(a, va, bytes).unwrap();
                assert_eq!(k.read_u64(a, va).unwrap(), bytes, "{preset}");
                assert_eq!(pool(&k, bytes).faults, 1, "{preset}");
                assert_eq!(k.process(a).unwrap().rss().hugetlb, bytes / k.page_size());
                k.munmap(a, at, bytes).unwrap();
            }
        }
    }

    #[test]
    fn a_pool_that_does_not_fit_or_a_size_the_machine_lacks_is_refused_at_boot() {
        let spec = crate::hw::MachineSpec::load("x86-64").unwrap();
        let cfg = |pools: Vec<(u64, u64)>| crate::os::KernelConfig {
            hugepages: pools,
            ..Default::default()
        };
        let e = Kernel::try_boot(spec.clone(), cfg(vec![(4 << 20, 1)])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--hugepages: 4 MiB: this machine's page tables have no leaf of that size (they have 2 MiB, 1 GiB)"
        );
        let e = Kernel::try_boot(spec, cfg(vec![(GB1, 100)])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--hugepages: 1 GiB:100: RAM has room for only "),
            "{e}"
        );
    }
}
