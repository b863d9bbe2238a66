//! Doubly-linked lists threaded through arrays indexed by dense page id: the building
//! block of LRU, the two-list policy and ARC. Each list is circular around a sentinel
//! slot past the pages, so linking and unlinking never branch on an empty list.

/// "Not in any list".
pub const NONE: u32 = u32::MAX;

/// Several lists over the same pages; a page is in at most one.
#[derive(Clone, Debug)]
pub struct Lists {
    /// `[prev, next, list]` of every page (list `NONE`: in none), then of every
    /// sentinel: one entry per page, so a lookup and a relink touch one cache line.
    links: Vec<[u32; 3]>,
    /// Length of each list.
    lens: Vec<usize>,
    pages: u32,
}

impl Lists {
    /// `n` empty lists over `pages` pages.
    pub fn new(pages: usize, n: usize) -> Lists {
        let mut links = vec![[NONE, NONE, NONE]; pages + n];
        for l in 0..n {
            let s = (pages + l) as u32;
            links[s as usize] = [s, s, l as u32];
        }
        Lists {
            links,
            lens: vec![0; n],
            pages: pages as u32,
        }
    }

    /// The list page `p` is in.
    #[inline(always)]
    pub fn list_of(&self, p: u32) -> u32 {
        self.links[p as usize][2]
    }

    /// Hints the host to cache page `p`'s links (see [`super::Policy::prefetch`]).
    #[inline(always)]
    pub fn prefetch(&self, p: u32) {
        crate::hw::ram::prefetch_at(&self.links, p as usize);
    }

    /// Makes room for pages `0..pages`: the sentinels move to the new end.
    pub fn grow(&mut self, pages: usize) {
        let old = self.pages as usize;
        if pages <= old {
            return;
        }
        let n = self.lens.len();
        let sentinels: Vec<[u32; 3]> = self.links.drain(old..).collect();
        self.links.resize(pages + n, [NONE, NONE, NONE]);
        self.pages = pages as u32;
        for (l, mut s) in sentinels.into_iter().enumerate() {
            let (from, to) = ((old + l) as u32, (pages + l) as u32);
            if s[1] == from {
                s = [to, to, l as u32];
            } else {
                self.links[s[1] as usize][0] = to;
                self.links[s[0] as usize][1] = to;
            }
            self.links[to as usize] = s;
        }
    }

    /// Length of list `l`.
    #[inline(always)]
    pub fn len(&self, l: u32) -> usize {
        self.lens[l as usize]
    }

    /// Whether list `l` is empty.
    #[inline(always)]
    pub fn is_empty(&self, l: u32) -> bool {
        self.lens[l as usize] == 0
    }

    /// The page at the tail (least recent end) of list `l`.
    #[inline(always)]
    pub fn tail(&self, l: u32) -> Option<u32> {
        let t = self.links[(self.pages + l) as usize][0];
        (t < self.pages).then_some(t)
    }

    /// Takes `p` out of its list.
    #[inline(always)]
    pub fn remove(&mut self, p: u32) {
        let [prev, next, l] = self.links[p as usize];
        debug_assert_ne!(l, NONE);
        self.links[prev as usize][1] = next;
        self.links[next as usize][0] = prev;
        self.links[p as usize][2] = NONE;
        self.lens[l as usize] -= 1;
    }

    /// Puts `p` (in no list) at the head (most recent end) of list `l`.
    #[inline(always)]
    pub fn push_head(&mut self, l: u32, p: u32) {
        debug_assert_eq!(self.links[p as usize][2], NONE);
        let s = self.pages + l;
        let first = self.links[s as usize][1];
        self.links[p as usize] = [s, first, l];
        self.links[first as usize][0] = p;
        self.links[s as usize][1] = p;
        self.lens[l as usize] += 1;
    }

    /// Moves `p` to the head of list `l` (from whatever list it is in).
    #[inline(always)]
    pub fn move_to_head(&mut self, l: u32, p: u32) {
        self.remove(p);
        self.push_head(l, p);
    }

    /// Takes the tail of list `l` out, if any.
    #[inline(always)]
    pub fn pop_tail(&mut self, l: u32) -> Option<u32> {
        let t = self.tail(l)?;
        self.remove(t);
        Some(t)
    }
}

/// The order every list set keeps, checked on `$l`, two empty lists over at least
/// four pages: pages leave a list's tail in the order they came to its head, and a
/// move to another list's head takes a page out of its own. [`Lists`] and
/// [`super::queues::Queues`] have the same methods and are checked alike.
#[cfg(test)]
macro_rules! check_moves_between_lists {
    ($l:expr) => {{
        let l = &mut $l;
        for p in 0..4 {
            l.push_head(0, p);
        }
        assert_eq!(l.tail(0), Some(0));
        l.move_to_head(1, 0);
        l.move_to_head(1, 2);
        assert_eq!((l.len(0), l.len(1)), (2, 2));
        assert_eq!(l.pop_tail(0), Some(1));
        assert_eq!(l.pop_tail(1), Some(0));
        assert_eq!(l.list_of(2), 1);
        assert_eq!(l.list_of(0), $crate::policy::list::NONE);
        assert_eq!(l.pop_tail(0), Some(3));
        assert_eq!(l.pop_tail(0), None);
        assert!(l.is_empty(0));
    }};
}
#[cfg(test)]
pub(crate) use check_moves_between_lists;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_move_between_lists_in_order() {
        let mut l = Lists::new(5, 2);
        check_moves_between_lists!(l);
    }
}
