//! Random: evict a page chosen uniformly at random among the resident ones (seeded, so
//! runs repeat). The baseline of Belady's 1966 study ("A study of replacement algorithms
//! for a virtual-storage computer", IBM Systems Journal 5(2)).

use super::list::NONE;
use super::Policy;

/// Random replacement.
#[derive(Clone, Debug)]
pub struct Random {
    slots: Vec<u32>,
    pos: Vec<u32>,
    cap: usize,
    state: u64,
}

impl Random {
    /// `frames` frames over `pages` pages, choices drawn from `seed` (sized by
    /// [`super::frames_needed`]).
    pub fn new(frames: usize, pages: usize, seed: u64) -> Random {
        Random {
            slots: Vec::with_capacity(super::frames_needed(frames, pages)),
            pos: vec![NONE; pages],
            cap: super::capacity(frames),
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Policy for Random {
    #[inline(always)]
    fn access(&mut self, p: u32, _t: usize, _prev: u32) -> bool {
        if self.pos[p as usize] != NONE {
            return true;
        }
        let i = if self.slots.len() < self.cap {
            self.slots.push(p);
            self.slots.len() - 1
        } else {
            let i = ((self.next() >> 32) % self.cap as u64) as usize;
            let victim = std::mem::replace(&mut self.slots[i], p);
            self.pos[victim as usize] = NONE;
            i
        };
        self.pos[p as usize] = i as u32;
        false
    }

    #[inline(always)]
    fn prefetch(&self, p: u32) {
        crate::hw::ram::prefetch_at(&self.pos, p as usize);
    }

    fn grow(&mut self, pages: usize) {
        self.pos.resize(pages, NONE);
    }

    fn resident(&self) -> usize {
        self.slots.len()
    }
}
