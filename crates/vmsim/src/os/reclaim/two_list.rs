//! Two-list reclaim (Linux's active and inactive lists): the algorithm is
//! [`crate::policy::two_list::scan_step`], the one the simulated policy runs; here it
//! scans frames, whose Accessed bits are in the page tables.

use super::{FrameLists, Scope, FILE_LISTS};
use crate::addr::Pfn;
use crate::hw::ram::FrameArray;
use crate::hw::{PageTable, Paging, PhysMem};
use crate::os::frames::FrameTable;
use crate::os::rmap::Rmap;
use crate::os::Kernel;
use crate::policy::two_list::{self, ScanPages, Step, TwoLists};

/// Linux's default `vm.swappiness`: anonymous pages' share of the scan, in 200.
const SWAPPINESS: u32 = 60;

impl TwoLists for FrameLists {
    #[inline(always)]
    fn len(&self, l: u32) -> usize {
        FrameLists::len(self, l)
    }
    #[inline(always)]
    fn tail(&self, l: u32) -> Option<u32> {
        FrameLists::tail(self, l)
    }
    #[inline(always)]
    fn move_to_head(&mut self, l: u32, f: u32) {
        FrameLists::move_to_head(self, l, f)
    }
}

/// One pair of the kernel's lists (anonymous, or file from [`FILE_LISTS`]) as the
/// scan moves pages between them, counting the moves as Linux's `pgactivate`,
/// `pgdeactivate` and `pgrefill` do.
struct Counted<'a> {
    lists: &'a mut FrameLists,
    counters: &'a mut crate::os::KernelCounters,
    base: u32,
}

impl TwoLists for Counted<'_> {
    #[inline(always)]
    fn len(&self, l: u32) -> usize {
        self.lists.len(self.base + l)
    }
    #[inline(always)]
    fn tail(&self, l: u32) -> Option<u32> {
        self.lists.tail(self.base + l)
    }
    #[inline(always)]
    fn move_to_head(&mut self, l: u32, f: u32) {
        use crate::policy::two_list::{ACTIVE, INACTIVE};
        let from = self.lists.list_of(f).map(|x| x - self.base);
        match (from, l) {
            (Some(INACTIVE), ACTIVE) => self.counters.activations += 1,
            (Some(ACTIVE), INACTIVE) => {
                self.counters.deactivations += 1;
                self.counters.active_scanned += 1;
            }
            (Some(ACTIVE), ACTIVE) => self.counters.active_scanned += 1,
            _ => {}
        }
        self.lists.move_to_head(self.base + l, f)
    }
}

/// Whether any mapping of `pfn` was accessed since the last look; clears the bits.
/// The entries are read and written where the reverse map says they are (as Linux's
/// `ptep_test_and_clear_young`, without a TLB flush).
pub(super) fn young(paging: &Paging, ram: &mut PhysMem, rmap: &Rmap, pfn: Pfn) -> bool {
    let mut young = false;
    rmap.each(pfn, |_, _, pte| {
        young |= PageTable::test_and_clear_accessed_at(paging, ram, pte, pfn);
    });
    young
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

/// The frames as the two-list scan sees them: Accessed bits in the page tables (found
/// through the reverse map), `PG_referenced` per frame, and the reclaim's scope.
struct FramePages<'a> {
    paging: &'a Paging,
    ram: &'a mut PhysMem,
    rmap: &'a Rmap,
    frames: &'a FrameTable,
    referenced: &'a mut FrameArray<u8>,
    scope: Scope,
}

impl ScanPages for FramePages<'_> {
    fn test_and_clear_young(&mut self, f: u32) -> bool {
        young(self.paging, self.ram, self.rmap, Pfn(f as u64))
    }
    fn referenced(&self, f: u32) -> bool {
        self.referenced.load(f as u64) != 0
    }
    fn set_referenced(&mut self, f: u32, on: bool) {
        self.referenced.set(f as u64, on as u8);
    }
    fn eligible(&mut self, f: u32) -> bool {
        in_scope(self.frames, self.rmap, Pfn(f as u64), self.scope)
    }
}

impl Kernel {
    /// Which pair of lists the next two-list step scans, as Linux's `get_scan_count`
    /// balances them: file pages only while the inactive file list is at least as long
    /// as the active one (cache trim mode: a streaming reader's pages go first), or when
    /// anonymous pages cannot go (no swap room); otherwise anonymous pages `swappiness`
    /// (60) steps in 200 and file pages the rest. Cache trim needs the inactive file
    /// list's tail to be in `scope`, so that a group's reclaim never spends itself on
    /// file pages it may not take.
    fn scan_base(&mut self, scope: Scope) -> u32 {
        use crate::policy::two_list::{ACTIVE, INACTIVE};
        let l = &self.reclaim.lists;
        let file = l.len(FILE_LISTS + INACTIVE) + l.len(FILE_LISTS + ACTIVE);
        let anon = l.len(INACTIVE) + l.len(ACTIVE);
        let swap_room = self
            .swap
            .dev
            .as_ref()
            .is_some_and(|d| d.stats.used < d.stats.slots);
        if file == 0 || anon == 0 {
            return if file == 0 { 0 } else { FILE_LISTS };
        }
        let trim = l.len(FILE_LISTS + INACTIVE) >= l.len(FILE_LISTS + ACTIVE)
            && l.tail(FILE_LISTS + INACTIVE)
                .is_some_and(|t| in_scope(&self.frames, &self.rmap, Pfn(t as u64), scope));
        if trim || !swap_room {
            return FILE_LISTS;
        }
        self.reclaim.balance = (self.reclaim.balance + SWAPPINESS) % 200;
        if self.reclaim.balance < SWAPPINESS {
            0
        } else {
            FILE_LISTS
        }
    }

    /// One step of the two-list scan over the frames in `scope`.
    pub(super) fn two_list_step(&mut self, scope: Scope) -> Step {
        let base = self.scan_base(scope);
        let mut pages = FramePages {
            paging: &self.machine.spec.paging,
            ram: &mut self.machine.ram,
            rmap: &self.rmap,
            frames: &self.frames,
            referenced: &mut self.reclaim.referenced,
            scope,
        };
        let mut lists = Counted {
            lists: &mut self.reclaim.lists,
            counters: &mut self.log.counters,
            base,
        };
        two_list::scan_step(&mut lists, &mut pages)
    }
}

#[cfg(test)]
mod tests {
    use crate::os::test_support::*;

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
}
