//! CLOCK reclaim (second chance): the hand passes frames whose Accessed bit is set,
//! clearing it, and takes the first whose bit is clear. The frames are one list whose
//! tail is the hand. The scan prefetches the entries of the frames a few ahead of the
//! hand, so it does not wait on each in turn.

use super::Scope;
use crate::addr::Pfn;
use crate::os::Kernel;
use crate::policy::two_list::{Step, INACTIVE};

/// How many frames ahead of the CLOCK hand the scan prefetches entries.
const SCAN_AHEAD: usize = 4;

impl Kernel {
    /// One step of CLOCK: the frame under the hand goes if unused since the last pass
    /// (and in scope); else its bit is cleared and the hand moves on.
    pub(super) fn clock_step(&mut self, scope: Scope) -> Step {
        let Some(f) = self.reclaim.lists.tail(INACTIVE) else {
            return Step::Empty;
        };
        let pfn = Pfn(f as u64);
        // The hand's next frames: start fetching their entries now, so the scan does not
        // wait on each one in turn. The frame last fetched moves one step, as the hand
        // did; only when it has left the list (or reached its head) is it found again
        // from the hand.
        let hint = self.reclaim.scan_hint;
        let next = match self.reclaim.lists.list_of(hint) {
            Some(INACTIVE) if hint != f => self.reclaim.lists.prev(hint),
            _ => None,
        };
        let ahead = next.unwrap_or_else(|| {
            let mut a = f;
            for _ in 0..SCAN_AHEAD {
                let Some(n) = self.reclaim.lists.prev(a) else {
                    break;
                };
                a = n;
            }
            a
        });
        self.reclaim.scan_hint = ahead;
        if let Some(pte) = self.rmap.first_pte(Pfn(ahead as u64)) {
            self.machine.ram.prefetch(pte);
        }
        // And the reverse map of the frame after it, whose entry is fetched next time.
        if let Some(after) = self.reclaim.lists.prev(ahead) {
            self.rmap.prefetch(Pfn(after as u64));
        }
        if !self.in_scope(pfn, scope) || self.young(pfn) {
            self.reclaim.lists.move_to_head(INACTIVE, f);
            return Step::Moved;
        }
        Step::Evict(f)
    }
}
