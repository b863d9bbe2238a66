//! The buddy allocator (Knowlton, "A fast storage allocator", CACM 8(10), 1965; Linux's
//! `mm/page_alloc.c`): free frames are kept in blocks of 2^order frames, aligned to
//! their size, one free list per order. An allocation takes the smallest block that
//! fits and splits it, returning the unused halves to the lists below; a freed block
//! merges with its buddy (the block it was split from) for as long as the buddy is
//! free, so large contiguous runs come back.
//!
//! Free lists are stacks; a block merged away leaves a stale entry behind, recognised
//! and skipped when popped (each block's head frame records the order of the free
//! block it heads). The per-frame array is a [`FrameArray`], allocated in chunks on
//! first use, so a large machine costs host memory only where frames are used.

use crate::hw::ram::FrameArray;
use serde::Serialize;

/// Free-space figures, for reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fragmentation {
    /// Free blocks of each order (index = order).
    pub free_blocks: Vec<u64>,
    /// Free frames.
    pub free_frames: u64,
    /// The unusable-free-space index for the largest huge page's order: the share of
    /// free frames that lie in blocks too small for it (0: none, 1: all).
    pub unusable_index: f64,
    /// The order that index is for.
    pub index_order: u32,
}

/// A buddy allocator over frames `0..nr_frames`.
#[derive(Clone, Debug)]
pub struct Buddy {
    /// Per frame: 1 + the order of the free block it heads, or 0.
    head_of: FrameArray<u8>,
    /// Free block heads, per order (may hold stale entries).
    lists: Vec<Vec<u64>>,
    /// Valid free blocks per order.
    counts: Vec<u64>,
    free: u64,
    max_order: u32,
}

impl Buddy {
    /// Everything free but the `reserved` ranges (half-open), with blocks up to
    /// 2^`max_order` frames.
    pub fn new(nr_frames: u64, reserved: &[(u64, u64)], max_order: u32) -> Buddy {
        let max_order = max_order.min(30);
        let mut b = Buddy {
            head_of: FrameArray::new(nr_frames),
            lists: vec![Vec::new(); max_order as usize + 1],
            counts: vec![0; max_order as usize + 1],
            free: 0,
            max_order,
        };
        let mut ranges: Vec<(u64, u64)> = reserved
            .iter()
            .map(|&(a, z)| (a.min(nr_frames), z.min(nr_frames)))
            .filter(|r| r.0 < r.1)
            .collect();
        ranges.sort();
        let mut at = 0;
        for (a, z) in ranges.into_iter().chain([(nr_frames, nr_frames)]) {
            if a > at {
                b.add_range(at, a);
            }
            at = at.max(z);
        }
        b
    }

    /// Adds the free frames `[a, z)` as the largest aligned blocks that fit.
    fn add_range(&mut self, mut a: u64, z: u64) {
        while a < z {
            let align = if a == 0 { 63 } else { a.trailing_zeros() };
            let fit = 63 - (z - a).leading_zeros();
            let order = align.min(fit).min(self.max_order);
            self.push(a, order);
            self.free += 1 << order;
            a += 1 << order;
        }
    }

    fn push(&mut self, head: u64, order: u32) {
        self.head_of.set(head, order as u8 + 1);
        self.lists[order as usize].push(head);
        self.counts[order as usize] += 1;
    }

    fn pop(&mut self, order: u32) -> Option<u64> {
        while let Some(h) = self.lists[order as usize].pop() {
            if self.head_of.load(h) == order as u8 + 1 {
                self.head_of.set(h, 0);
                self.counts[order as usize] -= 1;
                return Some(h);
            }
        }
        None
    }

    /// Free frames.
    pub fn nr_free(&self) -> u64 {
        self.free
    }

    /// A block of 2^`order` frames, or `None`.
    pub fn alloc(&mut self, order: u32) -> Option<u64> {
        let from = (order..=self.max_order).find(|&o| self.counts[o as usize] > 0)?;
        let head = self.pop(from)?;
        // Split down: the upper halves go back.
        for o in (order..from).rev() {
            self.push(head + (1 << o), o);
        }
        self.free -= 1 << order;
        Some(head)
    }

    /// `n` contiguous frames (any count): the block of the next power of two, with the
    /// frames past `n` given back.
    pub fn alloc_frames(&mut self, n: u64) -> Option<u64> {
        let order = n.max(1).next_power_of_two().trailing_zeros();
        if order > self.max_order {
            return None;
        }
        let head = self.alloc(order)?;
        let extra = (1u64 << order) - n.max(1);
        if extra > 0 {
            self.free_range(head + n.max(1), extra);
        }
        Some(head)
    }

    /// Frees one block of 2^`order` frames at `head`, merging with free buddies.
    pub fn free(&mut self, mut head: u64, mut order: u32) {
        self.free += 1 << order;
        while order < self.max_order {
            let buddy = head ^ (1 << order);
            if self.head_of.get(buddy) != Some(order as u8 + 1) {
                break;
            }
            // Take the buddy off its list (its stack entry turns stale).
            self.head_of.set(buddy, 0);
            self.counts[order as usize] -= 1;
            head = head.min(buddy);
            order += 1;
        }
        self.push(head, order);
    }

    /// Frees the frames `[a, a + n)`, as blocks aligned to their size.
    pub fn free_range(&mut self, mut a: u64, n: u64) {
        let z = a + n;
        while a < z {
            let align = if a == 0 { 63 } else { a.trailing_zeros() };
            let fit = 63 - (z - a).leading_zeros();
            let order = align.min(fit).min(self.max_order);
            self.free(a, order);
            a += 1 << order;
        }
    }

    /// Free blocks per order and the unusable-free-space index for `order`.
    pub fn fragmentation(&self, order: u32) -> Fragmentation {
        let order = order.min(self.max_order);
        let usable: u64 = (order..=self.max_order)
            .map(|o| self.counts[o as usize] << o)
            .sum();
        Fragmentation {
            free_blocks: self.counts.clone(),
            free_frames: self.free,
            unusable_index: if self.free == 0 {
                0.0
            } else {
                (self.free - usable) as f64 / self.free as f64
            },
            index_order: order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_and_merge_back() {
        let mut b = Buddy::new(16, &[], 4);
        assert_eq!(b.fragmentation(4).free_blocks, [0, 0, 0, 0, 1]);
        let a = b.alloc(0).unwrap();
        assert_eq!(a, 0);
        // 16 = 1 (taken) + 1 + 2 + 4 + 8.
        assert_eq!(b.fragmentation(0).free_blocks, [1, 1, 1, 1, 0]);
        let c = b.alloc(2).unwrap();
        assert_eq!(c, 4);
        b.free(a, 0);
        b.free(c, 2);
        assert_eq!(b.fragmentation(4).free_blocks, [0, 0, 0, 0, 1]);
        assert_eq!(b.nr_free(), 16);
    }

    #[test]
    fn reserved_ranges_are_left_out_and_fragment() {
        let mut b = Buddy::new(32, &[(5, 6)], 5);
        assert_eq!(b.nr_free(), 31);
        let f = b.fragmentation(3);
        // Blocks: [0,4) [4,5) [6,8) [8,16) [16,32).
        assert_eq!(f.free_blocks, [1, 1, 1, 1, 1, 0]);
        assert!((f.unusable_index - 7.0 / 31.0).abs() < 1e-9);
        let got: Vec<u64> = (0..31).map(|_| b.alloc(0).unwrap()).collect();
        assert!(!got.contains(&5));
        assert_eq!(b.alloc(0), None);
    }

    #[test]
    fn odd_runs_give_their_tail_back() {
        let mut b = Buddy::new(16, &[], 4);
        let a = b.alloc_frames(3).unwrap();
        assert_eq!(a, 0);
        assert_eq!(b.nr_free(), 13);
        b.free_range(a, 3);
        assert_eq!(b.fragmentation(4).free_blocks, [0, 0, 0, 0, 1]);
    }
}
