//! The physical frame allocator and per-frame metadata (Linux's `struct page`, cut down to
//! what vmsim needs: a reference count, what the frame holds, and the memory group it is
//! charged to).
//!
//! Frames never handed out are free implicitly (a bump pointer walks through them), so a
//! machine with 64 GiB of RAM costs three small dense arrays, allocated zeroed and so
//! only touched where frames are used.

use crate::addr::Pfn;
use crate::hw::FrameAlloc;
use std::collections::BTreeMap;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FrameKind {
    /// Free.
    Free = 0,
    /// Never allocated: a device hole or firmware area.
    Reserved = 1,
    /// Kernel data (the zero page, boot structures).
    Kernel = 2,
    /// A page-table page.
    Table = 3,
    /// Anonymous memory of one or more processes (copy-on-write shares it).
    Anon = 4,
    /// A page of a file, in the page cache.
    File = 5,
    /// A page of a shared-memory object (shared anonymous mappings, named objects).
    Shm = 6,
}

impl FrameKind {
    fn from_u8(v: u8) -> FrameKind {
        match v {
            1 => FrameKind::Reserved,
            2 => FrameKind::Kernel,
            3 => FrameKind::Table,
            4 => FrameKind::Anon,
            5 => FrameKind::File,
            6 => FrameKind::Shm,
            _ => FrameKind::Free,
        }
    }
}

/// The frame allocator.
#[derive(Clone, Debug)]
pub struct FrameTable {
    refs: Vec<u32>,
    kind: Vec<u8>,
    group: Vec<u16>,
    /// Frames from here up have never been handed out.
    next_fresh: u64,
    /// Freed single frames, reused last-freed first.
    free: Vec<u64>,
    /// Freed runs of several frames, by length.
    free_runs: BTreeMap<u64, Vec<u64>>,
    nr_free: u64,
    nr_by_kind: [u64; 7],
}

impl FrameTable {
    /// All `nr_frames` frames free except those in `reserved` (half-open ranges).
    pub fn new(nr_frames: u64, reserved: &[(u64, u64)]) -> FrameTable {
        let n = nr_frames as usize;
        let mut t = FrameTable {
            refs: vec![0; n],
            kind: vec![0; n],
            group: vec![0; n],
            next_fresh: 0,
            free: Vec::new(),
            free_runs: BTreeMap::new(),
            nr_free: nr_frames,
            nr_by_kind: [0; 7],
        };
        t.nr_by_kind[0] = nr_frames;
        for &(a, b) in reserved {
            for f in a..b.min(nr_frames) {
                if t.kind[f as usize] == FrameKind::Free as u8 {
                    t.set_kind(f, FrameKind::Reserved);
                    t.nr_free -= 1;
                }
            }
        }
        t
    }

    /// Number of frames.
    pub fn nr_frames(&self) -> u64 {
        self.kind.len() as u64
    }

    /// Free frames.
    pub fn nr_free(&self) -> u64 {
        self.nr_free
    }

    /// Frames holding `kind`.
    pub fn nr_of(&self, kind: FrameKind) -> u64 {
        self.nr_by_kind[kind as usize]
    }

    fn set_kind(&mut self, f: u64, kind: FrameKind) {
        let old = self.kind[f as usize] as usize;
        self.nr_by_kind[old] -= 1;
        self.nr_by_kind[kind as usize] += 1;
        self.kind[f as usize] = kind as u8;
    }

    /// What frame `pfn` holds.
    pub fn kind(&self, pfn: Pfn) -> FrameKind {
        self.kind
            .get(pfn.0 as usize)
            .map_or(FrameKind::Reserved, |&k| FrameKind::from_u8(k))
    }

    /// References to frame `pfn` (mappings, plus one if the page cache or a shared-memory
    /// object holds it).
    pub fn refs(&self, pfn: Pfn) -> u32 {
        self.refs.get(pfn.0 as usize).copied().unwrap_or(0)
    }

    /// The memory group frame `pfn` is charged to.
    pub fn group(&self, pfn: Pfn) -> u16 {
        self.group[pfn.0 as usize]
    }

    /// Takes `n` contiguous free frames for `kind`, with one reference each, charged to
    /// `group`.
    pub fn alloc(&mut self, n: u64, kind: FrameKind, group: u16) -> Option<Pfn> {
        let start = self.take(n)?;
        for f in start..start + n {
            self.set_kind(f, kind);
            self.refs[f as usize] = 1;
            self.group[f as usize] = group;
        }
        self.nr_free -= n;
        Some(Pfn(start))
    }

    fn take(&mut self, n: u64) -> Option<u64> {
        if n == 1 {
            if let Some(f) = self.free.pop() {
                return Some(f);
            }
        } else if let Some(f) = self.free_runs.get_mut(&n).and_then(|v| v.pop()) {
            return Some(f);
        }
        // Fresh frames: skip reserved ones; a run must not straddle one.
        let end = self.nr_frames();
        let mut start = self.next_fresh;
        loop {
            if start.checked_add(n)? > end {
                return None;
            }
            match (start..start + n).find(|&f| self.kind[f as usize] != FrameKind::Free as u8) {
                None => break,
                Some(bad) => {
                    // Frames skipped over stay free: remember them.
                    self.free.extend(start..bad);
                    start = bad + 1;
                }
            }
        }
        self.next_fresh = start + n;
        Some(start)
    }

    /// Adds a reference to `pfn`.
    pub fn get(&mut self, pfn: Pfn) {
        self.refs[pfn.0 as usize] += 1;
    }

    /// Drops a reference to `pfn`; frees it when it was the last. Returns whether it was
    /// freed (and so whether its group must be uncharged).
    pub fn put(&mut self, pfn: Pfn) -> bool {
        let r = &mut self.refs[pfn.0 as usize];
        debug_assert!(*r > 0, "frame {pfn} released more often than taken");
        *r = r.saturating_sub(1);
        if *r == 0 {
            self.release(pfn, 1);
            true
        } else {
            false
        }
    }

    /// Frees `n` frames from `pfn` whatever their counts.
    pub fn release(&mut self, pfn: Pfn, n: u64) {
        for f in pfn.0..pfn.0 + n {
            self.refs[f as usize] = 0;
            self.set_kind(f, FrameKind::Free);
            self.group[f as usize] = 0;
        }
        self.nr_free += n;
        if n == 1 {
            self.free.push(pfn.0);
        } else {
            self.free_runs.entry(n).or_default().push(pfn.0);
        }
    }
}

impl FrameAlloc for FrameTable {
    fn alloc_frames(&mut self, n: u64) -> Option<Pfn> {
        self.alloc(n, FrameKind::Table, 0)
    }
    fn free_frames(&mut self, pfn: Pfn, n: u64) {
        self.release(pfn, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_frames_are_never_handed_out() {
        let mut t = FrameTable::new(8, &[(2, 4)]);
        assert_eq!(t.nr_free(), 6);
        let got: Vec<u64> = (0..6)
            .map(|_| t.alloc(1, FrameKind::Anon, 0).unwrap().0)
            .collect();
        assert!(!got.contains(&2) && !got.contains(&3), "{got:?}");
        assert_eq!(t.alloc(1, FrameKind::Anon, 0), None);
        assert_eq!(t.nr_free(), 0);
    }

    #[test]
    fn references_free_on_the_last_put() {
        let mut t = FrameTable::new(4, &[]);
        let f = t.alloc(1, FrameKind::Anon, 3).unwrap();
        assert_eq!(t.group(f), 3);
        t.get(f);
        assert!(!t.put(f));
        assert_eq!(t.kind(f), FrameKind::Anon);
        assert!(t.put(f));
        assert_eq!(t.kind(f), FrameKind::Free);
        assert_eq!(t.nr_free(), 4);
        assert_eq!(
            t.alloc(1, FrameKind::Anon, 0),
            Some(f),
            "freed frames are reused"
        );
    }

    #[test]
    fn runs_do_not_straddle_reserved_frames() {
        let mut t = FrameTable::new(10, &[(3, 4)]);
        let a = t.alloc(2, FrameKind::Table, 0).unwrap();
        assert_eq!(a, Pfn(0));
        let b = t.alloc(2, FrameKind::Table, 0).unwrap();
        assert_eq!(b, Pfn(4), "frame 2 alone, then 3 reserved");
        assert_eq!(t.alloc(1, FrameKind::Anon, 0), Some(Pfn(2)));
        t.release(a, 2);
        assert_eq!(t.alloc(2, FrameKind::Table, 0), Some(a));
        assert_eq!(t.nr_of(FrameKind::Table), 4);
    }
}
