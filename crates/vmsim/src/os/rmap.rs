//! Reverse mappings (Linux's rmap): for every user frame, the page-table entries that
//! refer to it (the process, the virtual address, and the physical address of the
//! entry itself), so that reclaim can read their Accessed and Dirty bits and unmap the
//! frame everywhere before it goes without walking the tables. An entry's address is
//! stable while it maps the frame: a table is freed only once it maps nothing.
//!
//! Two mappings per frame are kept in a dense per-frame array (a [`FrameArray`],
//! allocated in chunks on first use, so untouched frames cost no host memory): one for
//! a private page, two for the common
//! copy-on-write pair after `fork`. Frames shared by more (shared memory, the page
//! cache, several forks) keep the rest in a map.

use super::Pid;
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::hw::ram::FrameArray;
use rustc_hash::FxHashMap;

/// Two dense slots per frame, side by side (reclaim reads both of a frame's at once,
/// so they share cache lines): `[pte, va, pid]` twice, pid 0 meaning none. Plain
/// integers, zero when unused, so untouched frames cost no host memory.
#[derive(Clone, Debug)]
struct Dense(FrameArray<[u64; 6]>);

impl Dense {
    fn new(n: u64) -> Dense {
        Dense(FrameArray::new(n))
    }

    fn len(&self) -> usize {
        self.0.len() as usize
    }

    #[inline]
    fn pid(&self, f: usize, i: usize) -> u32 {
        self.0.slot(f as u64).map_or(0, |m| m[3 * i + 2] as u32)
    }

    #[inline]
    fn get(&self, f: usize, i: usize) -> Option<(u32, u64, u64)> {
        let m = &self.0.slot(f as u64)?[3 * i..3 * i + 3];
        (m[2] != 0).then(|| (m[2] as u32, m[1], m[0]))
    }

    fn set(&mut self, f: usize, i: usize, m: Option<(u32, u64, u64)>) {
        if m.is_none() && self.0.slot(f as u64).is_none() {
            return; // nothing was ever recorded for this frame
        }
        let (pid, va, pte) = m.unwrap_or((0, 0, 0));
        self.0.get_mut(f as u64)[3 * i..3 * i + 3].copy_from_slice(&[pte, va, pid as u64]);
    }
}

/// Reverse mappings of every frame.
#[derive(Clone, Debug)]
pub struct Rmap {
    /// The first two mappings of each frame.
    dense: Dense,
    /// Further mappings: (pid, va, entry address).
    more: FxHashMap<u64, Vec<(u32, u64, u64)>>,
}

impl Rmap {
    /// No mappings, over `nr_frames` frames.
    pub fn new(nr_frames: u64) -> Rmap {
        Rmap {
            dense: Dense::new(nr_frames),
            more: FxHashMap::default(),
        }
    }

    /// Records that `pid` maps `pfn` at `va` through the entry at `pte`.
    pub fn add(&mut self, pfn: Pfn, pid: Pid, va: VirtAddr, pte: PhysAddr) {
        let f = pfn.0 as usize;
        if f >= self.dense.len() {
            return;
        }
        let m = Some((pid.0, va.0, pte.0));
        if self.dense.pid(f, 0) == 0 {
            self.dense.set(f, 0, m);
        } else if self.dense.pid(f, 1) == 0 {
            self.dense.set(f, 1, m);
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
        if f >= self.dense.len() {
            // A device page outside RAM: never tracked.
            return;
        }
        let is = |m: Option<(u32, u64, u64)>| m.is_some_and(|(p, a, _)| (p, a) == (pid.0, va.0));
        if is(self.dense.get(f, 0)) {
            // The second moves up; one of the rest, if any, takes its place.
            let second = self.dense.get(f, 1);
            self.dense.set(f, 0, second);
            let next = self.pop_more(pfn);
            self.dense.set(f, 1, next);
        } else if is(self.dense.get(f, 1)) {
            let next = self.pop_more(pfn);
            self.dense.set(f, 1, next);
        } else if let Some(v) = self.more.get_mut(&pfn.0) {
            if let Some(i) = v.iter().position(|&(p, a, _)| (p, a) == (pid.0, va.0)) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                self.more.remove(&pfn.0);
            }
        }
    }

    fn pop_more(&mut self, pfn: Pfn) -> Option<(u32, u64, u64)> {
        let v = self.more.get_mut(&pfn.0)?;
        let m = v.pop();
        if v.is_empty() {
            self.more.remove(&pfn.0);
        }
        m
    }

    /// Every mapping of `pfn`: (process, virtual address, entry address).
    pub fn of(&self, pfn: Pfn) -> impl Iterator<Item = (Pid, VirtAddr, PhysAddr)> {
        let i = pfn.0 as usize;
        let (two, more) = if i < self.dense.len() {
            // Only frames with more than two mappings allocate (a copy of the rest).
            let more = match self.dense.pid(i, 1) {
                0 => Vec::new(),
                _ => self.more.get(&pfn.0).cloned().unwrap_or_default(),
            };
            ([self.dense.get(i, 0), self.dense.get(i, 1)], more)
        } else {
            ([None, None], Vec::new())
        };
        two.into_iter()
            .flatten()
            .chain(more)
            .map(|(p, a, e)| (Pid(p), VirtAddr(a), PhysAddr(e)))
    }

    /// The entry of the first mapping of `pfn`, if any (a cheap look for prefetching).
    #[inline]
    pub fn first_pte(&self, pfn: Pfn) -> Option<PhysAddr> {
        let f = pfn.0 as usize;
        (f < self.dense.len())
            .then(|| self.dense.get(f, 0))
            .flatten()
            .map(|(_, _, e)| PhysAddr(e))
    }

    /// Hints the host to fetch `pfn`'s dense mappings (reclaim, a few frames ahead).
    #[inline]
    pub fn prefetch(&self, pfn: Pfn) {
        if let Some(m) = self.dense.0.slot(pfn.0) {
            // A 48-byte record straddles two host lines for half the frames: fetch
            // the line of its first word and that of its last.
            crate::hw::ram::prefetch_host(&m[0]);
            crate::hw::ram::prefetch_host(&m[5]);
        }
    }

    /// Calls `f` with every mapping of `pfn` (without collecting them).
    #[inline]
    pub fn each(&self, pfn: Pfn, mut f: impl FnMut(Pid, VirtAddr, PhysAddr)) {
        let i = pfn.0 as usize;
        if i >= self.dense.len() {
            return;
        }
        for (p, a, e) in [self.dense.get(i, 0), self.dense.get(i, 1)]
            .into_iter()
            .flatten()
        {
            f(Pid(p), VirtAddr(a), PhysAddr(e));
        }
        if self.dense.pid(i, 1) != 0 {
            if let Some(v) = self.more.get(&pfn.0) {
                for &(p, a, e) in v {
                    f(Pid(p), VirtAddr(a), PhysAddr(e));
                }
            }
        }
    }

    /// Whether anything maps `pfn`.
    pub fn is_mapped(&self, pfn: Pfn) -> bool {
        let f = pfn.0 as usize;
        f < self.dense.len() && self.dense.pid(f, 0) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_machine_costs_only_the_frames_mapped() {
        // 2^29 frames: the 2 TiB machine whose flat array (24 GiB) could not be had.
        let mut r = Rmap::new(1 << 29);
        let f = Pfn((1 << 29) - 1);
        r.add(f, Pid(1), VirtAddr(0x1000), PhysAddr(0x10));
        assert_eq!(r.first_pte(f), Some(PhysAddr(0x10)));
        assert!(!r.is_mapped(Pfn(5)));
        r.remove(Pfn(5), Pid(1), VirtAddr(0x1000));
        assert!(
            r.dense.0.host_bytes() < 2 << 20,
            "{}",
            r.dense.0.host_bytes()
        );
    }

    #[test]
    fn mappings_come_and_go_in_any_order() {
        let mut r = Rmap::new(4);
        let f = Pfn(2);
        r.add(f, Pid(1), VirtAddr(0x1000), PhysAddr(0x10));
        r.add(f, Pid(2), VirtAddr(0x1000), PhysAddr(0x20));
        r.add(f, Pid(3), VirtAddr(0x5000), PhysAddr(0x30));
        assert_eq!(r.of(f).count(), 3);
        r.remove(f, Pid(1), VirtAddr(0x1000));
        let mut left: Vec<_> = r.of(f).collect();
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
        assert_eq!(r.of(f).count(), 0);
        assert!(r.more.is_empty());
        // Beyond two, the rest spill into the map and come back in when slots free.
        for p in 1..=5 {
            r.add(f, Pid(p), VirtAddr(0x1000), PhysAddr(p as u64));
        }
        assert_eq!(r.more[&2].len(), 3);
        for p in [2, 1, 5, 3] {
            r.remove(f, Pid(p), VirtAddr(0x1000));
            assert!(r.is_mapped(f));
        }
        assert_eq!(
            r.of(f).collect::<Vec<_>>(),
            [(Pid(4), VirtAddr(0x1000), PhysAddr(4))]
        );
        assert!(r.more.is_empty());
    }
}
