//! Page-fault frequency (Chu and Opderbeck, "The page fault frequency replacement
//! algorithm", AFIPS FJCC 1972): the resident set grows on every fault; when a fault
//! comes more than `threshold` references after the previous one (faults are rare, so
//! the set is larger than needed), every page not referenced since the previous fault
//! is evicted. Use bits are cleared at each fault.

use super::list::NONE;
use super::Policy;

/// PFF with an inter-fault threshold in references. Use bits are kept as the number of
/// the inter-fault period of a page's last use, so clearing them all is one increment.
#[derive(Clone, Debug)]
pub struct Pff {
    slots: Vec<u32>,
    pos: Vec<u32>,
    used: Vec<u32>,
    period: u32,
    threshold: usize,
    last_fault: usize,
}

impl Pff {
    /// Threshold `threshold` references over `pages` pages.
    pub fn new(threshold: usize, pages: usize) -> Pff {
        Pff {
            slots: Vec::new(),
            pos: vec![NONE; pages],
            used: vec![0; pages],
            period: 0,
            threshold,
            last_fault: 0,
        }
    }
}

impl Policy for Pff {
    const VARIABLE: bool = true;

    #[inline(always)]
    fn access(&mut self, p: u32, t: usize, _prev: u32) -> bool {
        if self.pos[p as usize] != NONE {
            self.used[p as usize] = self.period;
            return true;
        }
        if t - self.last_fault > self.threshold {
            let (pos, used, period) = (&mut self.pos, &self.used, self.period);
            self.slots.retain(|&q| {
                let keep = used[q as usize] == period;
                if !keep {
                    pos[q as usize] = NONE;
                }
                keep
            });
            for (i, &q) in self.slots.iter().enumerate() {
                pos[q as usize] = i as u32;
            }
        }
        self.period += 1;
        self.pos[p as usize] = self.slots.len() as u32;
        self.slots.push(p);
        self.used[p as usize] = self.period;
        self.last_fault = t;
        false
    }

    #[inline(always)]
    fn prefetch(&self, p: u32) {
        crate::hw::ram::prefetch_at(&self.pos, p as usize);
    }

    fn grow(&mut self, pages: usize) {
        self.pos.resize(pages, NONE);
        self.used.resize(pages, 0);
    }

    fn resident(&self) -> usize {
        self.slots.len()
    }
}
