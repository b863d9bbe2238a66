//! CLOCK reclaim (second chance): the hand passes frames whose Accessed bit is set,
//! clearing it, and takes the first whose bit is clear. The frames are one list whose
//! tail is the hand. The scan prefetches the entries of the frames a few ahead of the
//! hand (`Kernel::prefetch_ahead`), so it does not wait on each in turn.

use super::Scope;
use crate::addr::Pfn;
use crate::os::Kernel;
use crate::policy::two_list::{Step, INACTIVE};

impl Kernel {
    /// One step of CLOCK: the frame under the hand goes if unused since the last pass
    /// (and in scope); else its bit is cleared and the hand moves on.
    pub(super) fn clock_step(&mut self, scope: Scope) -> Step {
        let Some(f) = self.reclaim.lists.tail(INACTIVE) else {
            return Step::Empty;
        };
        let pfn = Pfn(f as u64);
        self.prefetch_ahead(INACTIVE, f);
        if !self.in_scope(pfn, scope) || self.young(pfn) {
            self.reclaim.lists.move_to_head(INACTIVE, f);
            return Step::Moved;
        }
        Step::Evict(f)
    }
}
