//! FIFO: evict the page that has been resident longest, whatever its use. The simplest
//! policy, and the one that shows Belady's anomaly (more frames, more faults: Belady,
//! Nelson and Shedler, "An anomaly in space-time characteristics of certain programs
//! running in a paging machine", CACM 12(6), 1969).

use super::Policy;

/// FIFO over a ring of frames.
#[derive(Clone, Debug)]
pub struct Fifo {
    ring: Vec<u32>,
    resident: Vec<bool>,
    hand: usize,
    cap: usize,
}

impl Fifo {
    /// `frames` frames over `pages` pages (sized by [`super::frames_needed`]).
    pub fn new(frames: usize, pages: usize) -> Fifo {
        Fifo {
            ring: Vec::with_capacity(super::frames_needed(frames, pages)),
            resident: vec![false; pages],
            hand: 0,
            cap: super::capacity(frames),
        }
    }
}

impl Policy for Fifo {
    #[inline(always)]
    fn access(&mut self, p: u32, _t: usize, _prev: u32) -> bool {
        if self.resident[p as usize] {
            return true;
        }
        if self.ring.len() < self.cap {
            self.ring.push(p);
        } else {
            let victim = std::mem::replace(&mut self.ring[self.hand], p);
            self.resident[victim as usize] = false;
            self.hand += 1;
            if self.hand == self.cap {
                self.hand = 0;
            }
        }
        self.resident[p as usize] = true;
        false
    }

    #[inline(always)]
    fn prefetch(&self, p: u32) {
        crate::hw::ram::prefetch_at(&self.resident, p as usize);
    }

    fn grow(&mut self, pages: usize) {
        self.resident.resize(pages, false);
    }

    fn resident(&self) -> usize {
        self.ring.len()
    }
}
