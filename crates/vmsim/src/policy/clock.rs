//! CLOCK and its relatives: the frames form a ring swept by a hand; each page has a
//! small use counter. A hit raises the counter (up to its maximum); to find a victim
//! the hand passes pages whose counter is non-zero, lowering it, and takes the first
//! page whose counter is zero (Corbató, "A paging experiment with the Multics system",
//! 1968; the second-chance algorithm of Tanenbaum's *Modern Operating Systems* §3.4).
//!
//! Three policies are this one mechanism with different parameters:
//! - `clock`: one bit, set when the page is loaded, as the hardware sets the Accessed
//!   bit on the access that faulted it in.
//! - `fifo-reinsertion`: one bit, clear when the page is loaded (FIFO with second
//!   chance; libCacheSim calls it "Clock").
//! - `clockN` (multi-bit CLOCK, N = 2..8): an N-bit counter, 1 when loaded, aged by the
//!   hand one step per pass, so pages used often survive several sweeps.

use super::Policy;

/// How many frames past the hand its sweep prefetches a counter.
const HAND_AHEAD: usize = 8;

/// Counter value of a page that is not resident.
const OUT: u16 = u16::MAX;

/// A CLOCK with counters of up to `max`.
#[derive(Clone, Debug)]
pub struct Clock {
    ring: Vec<u32>,
    /// Each page's counter, or [`OUT`]: residency and use in one array.
    count: Vec<u16>,
    hand: usize,
    cap: usize,
    max: u8,
    init: u8,
}

impl Clock {
    /// `frames` frames over `pages` pages; counters saturate at `max` and start at
    /// `init` when a page is loaded (sized by [`super::frames_needed`]).
    pub fn new(frames: usize, pages: usize, max: u8, init: u8) -> Clock {
        Clock {
            ring: Vec::with_capacity(super::frames_needed(frames, pages)),
            count: vec![OUT; pages],
            hand: 0,
            cap: super::capacity(frames),
            max,
            init: init.min(max),
        }
    }
}

impl Policy for Clock {
    #[inline(always)]
    fn access(&mut self, p: u32, _t: usize, _prev: u32) -> bool {
        let c = &mut self.count[p as usize];
        if *c != OUT {
            if *c < self.max as u16 {
                *c += 1;
            }
            return true;
        }
        if self.ring.len() < self.cap {
            self.ring.push(p);
        } else {
            loop {
                let v = self.ring[self.hand] as usize;
                let slot = self.hand;
                // The counters the hand reaches next lie anywhere: ask for the one a
                // few frames on while this one is looked at.
                if let Some(&ahead) = self.ring.get(slot + HAND_AHEAD) {
                    crate::hw::ram::prefetch_at(&self.count, ahead as usize);
                }
                self.hand += 1;
                if self.hand == self.cap {
                    self.hand = 0;
                }
                if self.count[v] > 0 {
                    self.count[v] -= 1;
                } else {
                    self.count[v] = OUT;
                    self.ring[slot] = p;
                    break;
                }
            }
        }
        self.count[p as usize] = self.init as u16;
        false
    }

    #[inline(always)]
    fn prefetch(&self, p: u32) {
        crate::hw::ram::prefetch_at(&self.count, p as usize);
    }

    fn grow(&mut self, pages: usize) {
        self.count.resize(pages, OUT);
    }

    fn resident(&self) -> usize {
        self.ring.len()
    }
}
