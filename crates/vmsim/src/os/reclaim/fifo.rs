//! FIFO reclaim: the frame resident longest goes, used or not.

use super::Scope;
use crate::addr::Pfn;
use crate::os::Kernel;
use crate::policy::two_list::{Step, INACTIVE};

impl Kernel {
    /// One step of FIFO: the list's tail, if reclaim may take it; else it goes to the
    /// head.
    pub(super) fn fifo_step(&mut self, scope: Scope) -> Step {
        let Some(f) = self.reclaim.lists.tail(INACTIVE) else {
            return Step::Empty;
        };
        if self.in_scope(Pfn(f as u64), scope) {
            return Step::Evict(f);
        }
        self.reclaim.lists.move_to_head(INACTIVE, f);
        Step::Moved
    }
}
