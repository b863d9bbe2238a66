//! The working-set policy (Denning, "The working set model for program behavior", CACM
//! 11(5), 1968): a page stays resident while it has been referenced within the last
//! `window` references, and leaves when it falls out of the window. The number of
//! frames is not fixed; the report gives the mean and largest resident set.

use super::list::NONE;
use super::Policy;

/// The working-set policy with window τ.
#[derive(Clone, Debug)]
pub struct WorkingSet<'a> {
    refs: &'a [u32],
    last: Vec<u32>,
    window: usize,
    len: usize,
}

impl<'a> WorkingSet<'a> {
    /// Window `window` (τ, in references) over the trace `refs` with `pages` pages.
    pub fn new(window: usize, pages: usize, refs: &'a [u32]) -> WorkingSet<'a> {
        WorkingSet {
            refs,
            last: vec![NONE; pages],
            window: window.max(1),
            len: 0,
        }
    }
}

impl Policy for WorkingSet<'_> {
    const VARIABLE: bool = true;

    #[inline(always)]
    fn access(&mut self, p: u32, t: usize, _prev: u32) -> bool {
        let hit = self.last[p as usize] != NONE;
        if !hit {
            self.len += 1;
        }
        self.last[p as usize] = t as u32;
        // The reference made `window` steps ago leaves the window now: its page goes
        // unless it was referenced since.
        if t >= self.window {
            let old = t - self.window;
            let q = self.refs[old] as usize;
            if self.last[q] == old as u32 {
                self.last[q] = NONE;
                self.len -= 1;
            }
        }
        hit
    }

    /// Never called: this policy needs the whole trace, so it does not run on streams.
    fn grow(&mut self, _pages: usize) {}

    fn resident(&self) -> usize {
        self.len
    }
}
