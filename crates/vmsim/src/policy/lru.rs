//! Exact LRU: evict the page whose last use is oldest. The stack algorithm against which
//! the others are measured (Mattson, Gecsei, Slutz and Traiger, "Evaluation techniques
//! for storage hierarchies", IBM Systems Journal 9(2), 1970): it never shows Belady's
//! anomaly. Kept as one recency list threaded through arrays by page id.

use super::list::{Lists, NONE};
use super::Policy;

/// LRU over a recency list.
#[derive(Clone, Debug)]
pub struct Lru {
    list: Lists,
    cap: usize,
}

impl Lru {
    /// `frames` frames over `pages` pages (sized by [`super::frames_needed`]).
    pub fn new(frames: usize, pages: usize) -> Lru {
        Lru {
            list: Lists::new(pages, 1),
            cap: super::frames_needed(frames, pages),
        }
    }
}

impl Policy for Lru {
    #[inline(always)]
    fn access(&mut self, p: u32, _t: usize) -> bool {
        if self.list.list_of(p) != NONE {
            self.list.move_to_head(0, p);
            return true;
        }
        if self.list.len(0) == self.cap {
            self.list.pop_tail(0);
        }
        self.list.push_head(0, p);
        false
    }

    fn resident(&self) -> usize {
        self.list.len(0)
    }
}
