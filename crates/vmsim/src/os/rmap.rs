//! Reverse mappings (Linux's rmap): for every user frame, the page-table entries that
//! refer to it (the process, the virtual address, and the physical address of the
//! entry itself), so that reclaim can read their Accessed and Dirty bits and unmap the
//! frame everywhere before it goes without walking the tables. An entry's address is
//! stable while it maps the frame: a table is freed only once it maps nothing. One mapping per frame is kept in dense arrays
//! (allocated zeroed, so untouched frames cost no host memory); frames shared by more
//! (copy-on-write after `fork`, shared memory, the page cache) keep the rest in a map.

use super::Pid;
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use rustc_hash::FxHashMap;

/// Reverse mappings of every frame.
#[derive(Clone, Debug)]
pub struct Rmap {
    /// The first mapping's process id (0: none).
    pid: Vec<u32>,
    /// The first mapping's virtual address.
    va: Vec<u64>,
    /// The first mapping's entry address.
    pte: Vec<u64>,
    /// Further mappings: (pid, va, entry address).
    more: FxHashMap<u64, Vec<(u32, u64, u64)>>,
}

impl Rmap {
    /// No mappings, over `nr_frames` frames.
    pub fn new(nr_frames: u64) -> Rmap {
        Rmap {
            pid: vec![0; nr_frames as usize],
            va: vec![0; nr_frames as usize],
            pte: vec![0; nr_frames as usize],
            more: FxHashMap::default(),
        }
    }

    /// Records that `pid` maps `pfn` at `va` through the entry at `pte`.
    pub fn add(&mut self, pfn: Pfn, pid: Pid, va: VirtAddr, pte: PhysAddr) {
        let f = pfn.0 as usize;
        if f >= self.pid.len() {
            return;
        }
        if self.pid[f] == 0 {
            self.pid[f] = pid.0;
            self.va[f] = va.0;
            self.pte[f] = pte.0;
        } else {
            self.more
                .entry(pfn.0)
                .or_default()
                .push((pid.0, va.0, pte.0));
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
                Some((p, a, e)) => {
                    self.pid[f] = p;
                    self.va[f] = a;
                    self.pte[f] = e;
                }
                None => self.pid[f] = 0,
            }
            if self.more.get(&pfn.0).is_some_and(|v| v.is_empty()) {
                self.more.remove(&pfn.0);
            }
            return;
        }
        if let Some(v) = self.more.get_mut(&pfn.0) {
            if let Some(i) = v.iter().position(|&(p, a, _)| (p, a) == (pid.0, va.0)) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                self.more.remove(&pfn.0);
            }
        }
    }

    /// Every mapping of `pfn`: (process, virtual address, entry address).
    pub fn of(&self, pfn: Pfn) -> Vec<(Pid, VirtAddr, PhysAddr)> {
        let mut out = Vec::new();
        self.each(pfn, |p, a, e| out.push((p, a, e)));
        out
    }

    /// Calls `f` with every mapping of `pfn` (without collecting them).
    #[inline]
    pub fn each(&self, pfn: Pfn, mut f: impl FnMut(Pid, VirtAddr, PhysAddr)) {
        let i = pfn.0 as usize;
        if self.pid.get(i).is_some_and(|&p| p != 0) {
            f(
                Pid(self.pid[i]),
                VirtAddr(self.va[i]),
                PhysAddr(self.pte[i]),
            );
            if let Some(v) = self.more.get(&pfn.0) {
                for &(p, a, e) in v {
                    f(Pid(p), VirtAddr(a), PhysAddr(e));
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
        r.add(f, Pid(1), VirtAddr(0x1000), PhysAddr(0x10));
        r.add(f, Pid(2), VirtAddr(0x1000), PhysAddr(0x20));
        r.add(f, Pid(3), VirtAddr(0x5000), PhysAddr(0x30));
        assert_eq!(r.of(f).len(), 3);
        r.remove(f, Pid(1), VirtAddr(0x1000));
        let mut left = r.of(f);
        left.sort();
        assert_eq!(
            left,
            [
                (Pid(2), VirtAddr(0x1000), PhysAddr(0x20)),
                (Pid(3), VirtAddr(0x5000), PhysAddr(0x30))
            ]
        );
        r.remove(f, Pid(3), VirtAddr(0x5000));
        r.remove(f, Pid(2), VirtAddr(0x1000));
        assert!(!r.is_mapped(f));
        assert!(r.of(f).is_empty());
        assert!(r.more.is_empty());
    }
}
