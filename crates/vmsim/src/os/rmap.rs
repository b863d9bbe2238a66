//! Reverse mappings (Linux's rmap): for every user frame, the page-table slots that
//! refer to it, so that reclaim can read their Accessed and Dirty bits and unmap the
//! frame everywhere before it goes. One mapping per frame is kept in dense arrays
//! (allocated zeroed, so untouched frames cost no host memory); frames shared by more
//! (copy-on-write after `fork`, shared memory, the page cache) keep the rest in a map.

use super::Pid;
use crate::addr::{Pfn, VirtAddr};
use rustc_hash::FxHashMap;

/// Reverse mappings of every frame.
#[derive(Clone, Debug)]
pub struct Rmap {
    /// The first mapping's process id (0: none).
    pid: Vec<u32>,
    /// The first mapping's virtual address.
    va: Vec<u64>,
    /// Further mappings.
    more: FxHashMap<u64, Vec<(u32, u64)>>,
}

impl Rmap {
    /// No mappings, over `nr_frames` frames.
    pub fn new(nr_frames: u64) -> Rmap {
        Rmap {
            pid: vec![0; nr_frames as usize],
            va: vec![0; nr_frames as usize],
            more: FxHashMap::default(),
        }
    }

    /// Records that `pid` maps `pfn` at `va`.
    pub fn add(&mut self, pfn: Pfn, pid: Pid, va: VirtAddr) {
        let f = pfn.0 as usize;
        if f >= self.pid.len() {
            return;
        }
        if self.pid[f] == 0 {
            self.pid[f] = pid.0;
            self.va[f] = va.0;
        } else {
            self.more.entry(pfn.0).or_default().push((pid.0, va.0));
        }
    }

    /// Forgets that `pid` maps `pfn` at `va`.
    pub fn remove(&mut self, pfn: Pfn, pid: Pid, va: VirtAddr) {
        let f = pfn.0 as usize;
        if f >= self.pid.len() {
            // A device page outside RAM: never tracked.
            return;
        }
        if self.pid[f] == pid.0 && self.va[f] == va.0 {
            match self.more.get_mut(&pfn.0).and_then(|v| v.pop()) {
                Some((p, a)) => {
                    self.pid[f] = p;
                    self.va[f] = a;
                }
                None => self.pid[f] = 0,
            }
            if self.more.get(&pfn.0).is_some_and(|v| v.is_empty()) {
                self.more.remove(&pfn.0);
            }
            return;
        }
        if let Some(v) = self.more.get_mut(&pfn.0) {
            if let Some(i) = v.iter().position(|&m| m == (pid.0, va.0)) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                self.more.remove(&pfn.0);
            }
        }
    }

    /// Every mapping of `pfn`.
    pub fn of(&self, pfn: Pfn) -> Vec<(Pid, VirtAddr)> {
        let f = pfn.0 as usize;
        let mut out = Vec::new();
        if self.pid.get(f).is_some_and(|&p| p != 0) {
            out.push((Pid(self.pid[f]), VirtAddr(self.va[f])));
            if let Some(v) = self.more.get(&pfn.0) {
                out.extend(v.iter().map(|&(p, a)| (Pid(p), VirtAddr(a))));
            }
        }
        out
    }

    /// Calls `f` with every mapping of `pfn` (without collecting them).
    #[inline]
    pub fn each(&self, pfn: Pfn, mut f: impl FnMut(Pid, VirtAddr)) {
        let i = pfn.0 as usize;
        if self.pid.get(i).is_some_and(|&p| p != 0) {
            f(Pid(self.pid[i]), VirtAddr(self.va[i]));
            if let Some(v) = self.more.get(&pfn.0) {
                for &(p, a) in v {
                    f(Pid(p), VirtAddr(a));
                }
            }
        }
    }

    /// Whether anything maps `pfn`.
    pub fn is_mapped(&self, pfn: Pfn) -> bool {
        self.pid.get(pfn.0 as usize).is_some_and(|&p| p != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_come_and_go_in_any_order() {
        let mut r = Rmap::new(4);
        let f = Pfn(2);
        r.add(f, Pid(1), VirtAddr(0x1000));
        r.add(f, Pid(2), VirtAddr(0x1000));
        r.add(f, Pid(3), VirtAddr(0x5000));
        assert_eq!(r.of(f).len(), 3);
        r.remove(f, Pid(1), VirtAddr(0x1000));
        let mut left = r.of(f);
        left.sort();
        assert_eq!(
            left,
            [(Pid(2), VirtAddr(0x1000)), (Pid(3), VirtAddr(0x5000))]
        );
        r.remove(f, Pid(3), VirtAddr(0x5000));
        r.remove(f, Pid(2), VirtAddr(0x1000));
        assert!(!r.is_mapped(f));
        assert!(r.of(f).is_empty());
        assert!(r.more.is_empty());
    }
}
