//! Two-list reclaim (Linux's active and inactive lists): the algorithm is
//! [`crate::policy::two_list::scan_step`], the one the simulated policy runs; here it
//! scans frames, whose Accessed bits are in the page tables.

use super::{FrameLists, Scope};
use crate::addr::Pfn;
use crate::hw::ram::FrameArray;
use crate::hw::{PageTable, Paging, PhysMem};
use crate::os::frames::FrameTable;
use crate::os::rmap::Rmap;
use crate::os::Kernel;
use crate::policy::two_list::{self, ScanPages, Step, TwoLists};

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

/// The kernel's lists as the scan moves pages between them, counting the moves as
/// Linux's `pgactivate`, `pgdeactivate` and `pgrefill` do.
struct Counted<'a> {
    lists: &'a mut FrameLists,
    counters: &'a mut crate::os::KernelCounters,
}

impl TwoLists for Counted<'_> {
    #[inline(always)]
    fn len(&self, l: u32) -> usize {
        self.lists.len(l)
    }
    #[inline(always)]
    fn tail(&self, l: u32) -> Option<u32> {
        self.lists.tail(l)
    }
    #[inline(always)]
    fn move_to_head(&mut self, l: u32, f: u32) {
        use crate::policy::two_list::{ACTIVE, INACTIVE};
        match (self.lists.list_of(f), l) {
            (Some(INACTIVE), ACTIVE) => self.counters.activations += 1,
            (Some(ACTIVE), INACTIVE) => {
                self.counters.deactivations += 1;
                self.counters.active_scanned += 1;
            }
            (Some(ACTIVE), ACTIVE) => self.counters.active_scanned += 1,
            _ => {}
        }
        self.lists.move_to_head(l, f)
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
    /// One step of the two-list scan over the frames in `scope`.
    pub(super) fn two_list_step(&mut self, scope: Scope) -> Step {
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
        };
        two_list::scan_step(&mut lists, &mut pages)
    }
}
