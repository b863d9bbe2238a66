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
//!
//! This is the textbook policy `vmsim policy -p two-list` runs on page traces. The
//! simulated kernel's reclaim (`os/reclaim/two_list.rs`) follows Linux's `vmscan.c`
//! more closely: scan priorities, anonymous and file lists balanced by cost, and
//! refaults measured by shadow entries.

use super::list::{Lists, NONE};
use super::Policy;

/// The inactive list.
pub const INACTIVE: u32 = 0;
/// The active list.
pub const ACTIVE: u32 = 1;

/// The list operations the scan needs (this module's [`Lists`] provide them).
pub trait TwoLists {
    /// Length of list `l`.
    fn len(&self, l: u32) -> usize;
    /// The page at the tail (least recent end) of list `l`.
    fn tail(&self, l: u32) -> Option<u32>;
    /// Moves `p` to the head of list `l`.
    fn move_to_head(&mut self, l: u32, p: u32);
}

impl TwoLists for Lists {
    #[inline(always)]
    fn len(&self, l: u32) -> usize {
        Lists::len(self, l)
    }
    #[inline(always)]
    fn tail(&self, l: u32) -> Option<u32> {
        Lists::tail(self, l)
    }
    #[inline(always)]
    fn move_to_head(&mut self, l: u32, p: u32) {
        Lists::move_to_head(self, l, p)
    }
}

/// What the scan asks of the pages: their Accessed bits (the hardware's, or a
/// simulated one), their `PG_referenced` flags, and whether one may be taken at all.
pub trait ScanPages {
    /// Whether `p` was used since the last look; clears the bit (Linux's
    /// `test_and_clear_young`).
    fn test_and_clear_young(&mut self, p: u32) -> bool;
    /// `p`'s `PG_referenced`.
    fn referenced(&self, p: u32) -> bool;
    /// Sets `p`'s `PG_referenced`.
    fn set_referenced(&mut self, p: u32, on: bool);
    /// Whether `p` may be evicted by this scan (a scan limited to one group or
    /// process passes over the others' pages). All may, by default.
    #[inline(always)]
    fn eligible(&mut self, _p: u32) -> bool {
        true
    }
    /// `p`, the active tail, moves to an empty inactive list without being looked at.
    #[inline(always)]
    fn demoted_unseen(&mut self, _p: u32) {}
}

/// What one step of the scan did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// This page, the inactive tail, is the victim: unused since the last look.
    Evict(u32),
    /// A page moved (rotated, activated or demoted): step again.
    Moved,
    /// Both lists are empty.
    Empty,
}

/// One step of the two-list scan (see the module's description): balance the lists,
/// then look at the inactive tail, over any lists and Accessed bits.
#[inline(always)]
pub fn scan_step(lists: &mut impl TwoLists, pages: &mut impl ScanPages) -> Step {
    while lists.len(INACTIVE) < lists.len(ACTIVE) {
        let Some(a) = lists.tail(ACTIVE) else {
            break;
        };
        if pages.test_and_clear_young(a) {
            lists.move_to_head(ACTIVE, a);
        } else {
            lists.move_to_head(INACTIVE, a);
            pages.set_referenced(a, false);
        }
    }
    let Some(v) = lists.tail(INACTIVE) else {
        // Everything is active: demote the active tail and go again.
        let Some(a) = lists.tail(ACTIVE) else {
            return Step::Empty;
        };
        pages.demoted_unseen(a);
        lists.move_to_head(INACTIVE, a);
        return Step::Moved;
    };
    if !pages.eligible(v) {
        lists.move_to_head(INACTIVE, v);
        return Step::Moved;
    }
    if pages.test_and_clear_young(v) {
        if pages.referenced(v) {
            pages.set_referenced(v, false);
            lists.move_to_head(ACTIVE, v);
        } else {
            pages.set_referenced(v, true);
            lists.move_to_head(INACTIVE, v);
        }
        return Step::Moved;
    }
    Step::Evict(v)
}

/// The simulated Accessed bits and `PG_referenced` flags, per page.
#[derive(Clone, Debug)]
struct Bits {
    accessed: Vec<bool>,
    referenced: Vec<bool>,
}

impl ScanPages for Bits {
    #[inline(always)]
    fn test_and_clear_young(&mut self, p: u32) -> bool {
        std::mem::take(&mut self.accessed[p as usize])
    }
    #[inline(always)]
    fn referenced(&self, p: u32) -> bool {
        self.referenced[p as usize]
    }
    #[inline(always)]
    fn set_referenced(&mut self, p: u32, on: bool) {
        self.referenced[p as usize] = on;
    }
    #[inline(always)]
    fn demoted_unseen(&mut self, p: u32) {
        self.accessed[p as usize] = false;
    }
}

/// The two-list policy.
#[derive(Clone, Debug)]
pub struct TwoList {
    lists: Lists,
    bits: Bits,
    cap: usize,
}

impl TwoList {
    /// `frames` frames over `pages` pages (sized by [`super::frames_needed`]).
    pub fn new(frames: usize, pages: usize) -> TwoList {
        TwoList {
            lists: Lists::new(pages, 2),
            bits: Bits {
                accessed: vec![false; pages],
                referenced: vec![false; pages],
            },
            cap: super::capacity(frames),
        }
    }

    fn evict_one(&mut self) {
        loop {
            match scan_step(&mut self.lists, &mut self.bits) {
                Step::Evict(v) => {
                    self.lists.remove(v);
                    self.bits.referenced[v as usize] = false;
                    return;
                }
                Step::Moved => {}
                Step::Empty => return,
            }
        }
    }
}

impl Policy for TwoList {
    #[inline(always)]
    fn access(&mut self, p: u32, _t: usize, _prev: u32) -> bool {
        if self.lists.list_of(p) != NONE {
            self.bits.accessed[p as usize] = true;
            return true;
        }
        if self.lists.len(INACTIVE) + self.lists.len(ACTIVE) == self.cap {
            self.evict_one();
        }
        self.lists.push_head(INACTIVE, p);
        self.bits.accessed[p as usize] = true;
        self.bits.referenced[p as usize] = false;
        false
    }

    #[inline(always)]
    fn prefetch(&self, p: u32) {
        self.lists.prefetch(p);
    }

    fn grow(&mut self, pages: usize) {
        self.lists.grow(pages);
        self.bits.accessed.resize(pages, false);
        self.bits.referenced.resize(pages, false);
    }

    fn resident(&self) -> usize {
        self.lists.len(INACTIVE) + self.lists.len(ACTIVE)
    }
}
