//! Linux-like two lists (`mm/vmscan.c` before the multi-generational LRU, after
//! Johnson and Shasha's 2Q, VLDB 1994): an *inactive* list that new pages enter and an
//! *active* list of pages used more than once, each page with the hardware's Accessed
//! bit and the kernel's `PG_referenced` flag.
//!
//! - A new page enters the inactive list with Accessed set (the faulting access).
//! - A hit sets Accessed.
//! - To free a frame, the kernel first keeps the inactive list at least as long as the
//!   active one by demoting the active tail: if its Accessed bit is set, the bit is
//!   cleared and the page rotates to the active head; otherwise it moves to the inactive
//!   head. Then it scans the inactive tail: a page with Accessed set has the bit cleared
//!   and is activated if it was already `PG_referenced` (used in two scan periods), or
//!   marked `PG_referenced` and rotated to the inactive head; a page with Accessed clear
//!   is evicted.

use super::list::{Lists, NONE};
use super::Policy;

const INACTIVE: u32 = 0;
const ACTIVE: u32 = 1;

/// The two-list policy.
#[derive(Clone, Debug)]
pub struct TwoList {
    lists: Lists,
    accessed: Vec<bool>,
    referenced: Vec<bool>,
    cap: usize,
}

impl TwoList {
    /// `frames` frames over `pages` pages (sized by [`super::frames_needed`]).
    pub fn new(frames: usize, pages: usize) -> TwoList {
        TwoList {
            lists: Lists::new(pages, 2),
            accessed: vec![false; pages],
            referenced: vec![false; pages],
            cap: super::frames_needed(frames, pages),
        }
    }

    fn evict_one(&mut self) {
        loop {
            while self.lists.len(INACTIVE) < self.lists.len(ACTIVE) {
                let Some(a) = self.lists.tail(ACTIVE) else {
                    break;
                };
                if std::mem::take(&mut self.accessed[a as usize]) {
                    self.lists.move_to_head(ACTIVE, a);
                } else {
                    self.lists.move_to_head(INACTIVE, a);
                    self.referenced[a as usize] = false;
                }
            }
            let Some(v) = self.lists.tail(INACTIVE) else {
                // Everything is active: demote the active tail and go again.
                if let Some(a) = self.lists.tail(ACTIVE) {
                    self.accessed[a as usize] = false;
                    self.lists.move_to_head(INACTIVE, a);
                    continue;
                }
                return;
            };
            if std::mem::take(&mut self.accessed[v as usize]) {
                if std::mem::take(&mut self.referenced[v as usize]) {
                    self.lists.move_to_head(ACTIVE, v);
                } else {
                    self.referenced[v as usize] = true;
                    self.lists.move_to_head(INACTIVE, v);
                }
                continue;
            }
            self.lists.remove(v);
            self.referenced[v as usize] = false;
            return;
        }
    }
}

impl Policy for TwoList {
    #[inline(always)]
    fn access(&mut self, p: u32, _t: usize) -> bool {
        if self.lists.list_of(p) != NONE {
            self.accessed[p as usize] = true;
            return true;
        }
        if self.lists.len(INACTIVE) + self.lists.len(ACTIVE) == self.cap {
            self.evict_one();
        }
        self.lists.push_head(INACTIVE, p);
        self.accessed[p as usize] = true;
        self.referenced[p as usize] = false;
        false
    }

    fn resident(&self) -> usize {
        self.lists.len(INACTIVE) + self.lists.len(ACTIVE)
    }
}
