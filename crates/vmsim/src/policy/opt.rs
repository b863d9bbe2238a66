//! OPT, Belady's MIN ("A study of replacement algorithms for a virtual-storage
//! computer", IBM Systems Journal 5(2), 1966): evict the resident page whose next use is
//! farthest in the future (or never comes). It needs the future, so it runs in two
//! passes: the next use of every reference is computed first
//! ([`super::PageTrace::next_use`]). No policy faults less.

use super::list::NONE;
use super::Policy;
use std::collections::BinaryHeap;

/// OPT over a max-heap of (next use, page), with stale entries skipped lazily.
#[derive(Clone, Debug)]
pub struct Opt<'a> {
    next: &'a [u32],
    heap: BinaryHeap<(u32, u32)>,
    /// The next use of each resident page; `NONE` marks a page not resident (a page that
    /// is never used again has next use `NEVER`, which is also `u32::MAX`, so residency
    /// is kept apart).
    due: Vec<u32>,
    resident: Vec<bool>,
    slots: Vec<u32>,
    len: usize,
    cap: usize,
}

impl<'a> Opt<'a> {
    /// `frames` frames over `pages` pages; `next[t]` is the index of the next reference
    /// to the page referenced at `t`.
    /// Sized by [`super::frames_needed`].
    pub fn new(frames: usize, pages: usize, next: &'a [u32]) -> Opt<'a> {
        let frames = super::frames_needed(frames, pages);
        Opt {
            next,
            heap: BinaryHeap::with_capacity(frames * 2),
            due: vec![NONE; pages],
            resident: vec![false; pages],
            slots: Vec::new(),
            len: 0,
            cap: frames,
        }
    }

    fn rebuild(&mut self) {
        self.slots.retain(|&p| self.resident[p as usize]);
        let heap = self
            .slots
            .iter()
            .map(|&p| (self.due[p as usize], p))
            .collect();
        self.heap = heap;
    }
}

impl Policy for Opt<'_> {
    #[inline(always)]
    fn access(&mut self, p: u32, t: usize) -> bool {
        let due = self.next[t];
        if self.resident[p as usize] {
            self.due[p as usize] = due;
            self.heap.push((due, p));
            if self.heap.len() > 4 * self.cap + 1024 {
                self.rebuild();
            }
            return true;
        }
        if self.len == self.cap {
            while let Some((d, v)) = self.heap.pop() {
                if self.resident[v as usize] && self.due[v as usize] == d {
                    self.resident[v as usize] = false;
                    self.len -= 1;
                    break;
                }
            }
            // Keep `slots` (the resident pages, for rebuilding) short.
            if self.slots.len() > 2 * self.cap + 1024 {
                self.slots.retain(|&q| self.resident[q as usize]);
            }
        }
        self.resident[p as usize] = true;
        self.due[p as usize] = due;
        self.heap.push((due, p));
        self.slots.push(p);
        self.len += 1;
        false
    }

    fn resident(&self) -> usize {
        self.len
    }
}
