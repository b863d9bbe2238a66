//! The physical frame allocator and per-frame metadata (Linux's `struct page`, cut down to
//! what vmsim needs: a reference count, what the frame holds, and the memory group it is
//! charged to).
//!
//! Free frames are managed by a buddy allocator ([`super::buddy`]). The metadata is
//! three per-frame arrays and the buddy's one, each a [`FrameArray`] whose storage comes
//! in chunks on first use: a machine with terabytes of RAM boots in a few megabytes of
//! host memory, and the host pays only for the frames a run uses.

use super::buddy::{Buddy, Fragmentation};
use crate::addr::Pfn;
use crate::hw::ram::FrameArray;
use crate::hw::FrameAlloc;

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
    /// Whether frames of this kind are reclaimable user pages: on the reclaim lists
    /// and in the reverse map (anonymous, page-cache and shared-memory pages).
    pub fn is_user_page(self) -> bool {
        matches!(self, FrameKind::Anon | FrameKind::File | FrameKind::Shm)
    }

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
    refs: FrameArray<u32>,
    kind: FrameArray<u8>,
    group: FrameArray<u16>,
    /// 1 where a trace marked the frame's page as holding bytes other than zeros.
    nonzero: FrameArray<u8>,
    buddy: Buddy,
    nr_by_kind: [u64; 7],
}

impl FrameTable {
    /// All `nr_frames` frames free except those in `reserved` (half-open ranges), in
    /// buddy blocks of up to 2^`max_order` frames.
    pub fn new(nr_frames: u64, reserved: &[(u64, u64)], max_order: u32) -> FrameTable {
        let mut t = FrameTable {
            refs: FrameArray::new(nr_frames),
            kind: FrameArray::new(nr_frames),
            group: FrameArray::new(nr_frames),
            nonzero: FrameArray::new(nr_frames),
            buddy: Buddy::new(nr_frames, reserved, max_order),
            nr_by_kind: [0; 7],
        };
        t.nr_by_kind[0] = nr_frames;
        for &(a, b) in reserved {
            for f in a..b.min(nr_frames) {
                if t.kind.load(f) == FrameKind::Free as u8 {
                    t.set_kind(f, FrameKind::Reserved);
                }
            }
        }
        t
    }

    /// Free blocks per order and the unusable-free-space index for `order`.
    pub fn fragmentation(&self, order: u32) -> Fragmentation {
        self.buddy.fragmentation(order)
    }

    /// Number of frames.
    pub fn nr_frames(&self) -> u64 {
        self.kind.len()
    }

    /// Free frames.
    pub fn nr_free(&self) -> u64 {
        self.buddy.nr_free()
    }

    /// Frames holding `kind`.
    pub fn nr_of(&self, kind: FrameKind) -> u64 {
        self.nr_by_kind[kind as usize]
    }

    /// Frame `pfn`, in use, holds `kind` from now on (a page read ahead into the swap
    /// cache that shared memory takes).
    pub(super) fn retype(&mut self, pfn: Pfn, kind: FrameKind) {
        self.set_kind(pfn.0, kind);
    }

    fn set_kind(&mut self, f: u64, kind: FrameKind) {
        let old = self.kind.load(f) as usize;
        self.nr_by_kind[old] -= 1;
        self.nr_by_kind[kind as usize] += 1;
        self.kind.set(f, kind as u8);
    }

    /// What frame `pfn` holds.
    pub fn kind(&self, pfn: Pfn) -> FrameKind {
        self.kind
            .get(pfn.0)
            .map_or(FrameKind::Reserved, FrameKind::from_u8)
    }

    /// References to frame `pfn` (mappings, plus one if the page cache or a shared-memory
    /// object holds it).
    pub fn refs(&self, pfn: Pfn) -> u32 {
        self.refs.get(pfn.0).unwrap_or(0)
    }

    /// Hints the host to fetch `pfn`'s reference count and group, which freeing it
    /// reads (reclaim, a few frames ahead).
    #[inline]
    pub fn prefetch(&self, pfn: Pfn) {
        if let Some(r) = self.refs.slot(pfn.0) {
            crate::hw::ram::prefetch_host(r);
        }
        if let Some(g) = self.group.slot(pfn.0) {
            crate::hw::ram::prefetch_host(g);
        }
    }

    /// Whether a trace marked `pfn`'s page as holding bytes other than zeros.
    pub fn nonzero(&self, pfn: Pfn) -> bool {
        self.nonzero.get(pfn.0).is_some_and(|b| b != 0)
    }

    /// Marks (or unmarks) `pfn` as holding bytes other than zeros (a trace's mark; the
    /// simulated RAM holds no values for a replayed trace).
    pub fn set_nonzero(&mut self, pfn: Pfn, on: bool) {
        if pfn.0 < self.nonzero.len() {
            self.nonzero.set(pfn.0, on as u8);
        }
    }

    /// The memory group `pfn` is charged to.
    pub fn group(&self, pfn: Pfn) -> u16 {
        self.group.get(pfn.0).unwrap_or(0)
    }

    /// Takes `n` contiguous free frames for `kind`, with one reference each, charged to
    /// `group`.
    pub fn alloc(&mut self, n: u64, kind: FrameKind, group: u16) -> Option<Pfn> {
        let start = if n == 1 {
            self.buddy.alloc(0)?
        } else {
            self.buddy.alloc_frames(n)?
        };
        for f in start..start + n {
            self.set_kind(f, kind);
            self.refs.set(f, 1);
            self.group.set(f, group);
            self.nonzero.set(f, 0);
        }
        Some(Pfn(start))
    }

    /// Adds a reference to `pfn`. Frames that are not counted (outside RAM, as a
    /// device's; reserved; the kernel's) are left alone.
    pub fn get(&mut self, pfn: Pfn) {
        if matches!(self.kind(pfn), FrameKind::Reserved | FrameKind::Kernel) {
            return;
        }
        *self.refs.get_mut(pfn.0) += 1;
    }

    /// Drops a reference to `pfn`; frees it when it was the last. Returns whether it was
    /// freed (and so whether its group must be uncharged).
    pub fn put(&mut self, pfn: Pfn) -> bool {
        if matches!(self.kind(pfn), FrameKind::Reserved | FrameKind::Kernel) {
            return false;
        }
        let r = self.refs.get_mut(pfn.0);
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
            self.refs.set(f, 0);
            self.set_kind(f, FrameKind::Free);
            self.group.set(f, 0);
        }
        if n == 1 {
            self.buddy.free(pfn.0, 0);
        } else {
            self.buddy.free_range(pfn.0, n);
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
        let mut t = FrameTable::new(8, &[(2, 4)], 3);
        assert_eq!(t.nr_free(), 6);
        let got: Vec<u64> = (0..6)
            .map(|_| t.alloc(1, FrameKind::Anon, 0).unwrap().0)
            .collect();
        assert!(!got.contains(&2) && !got.contains(&3), "{got:?}");
        assert_eq!(t.alloc(1, FrameKind::Anon, 0), None);
        assert_eq!(t.nr_free(), 0);
        assert_eq!(t.nr_of(FrameKind::Reserved), 2);
    }

    #[test]
    fn references_free_on_the_last_put() {
        let mut t = FrameTable::new(4, &[], 2);
        let f = t.alloc(1, FrameKind::Anon, 3).unwrap();
        assert_eq!(t.group(f), 3);
        t.get(f);
        assert!(!t.put(f));
        assert_eq!(t.kind(f), FrameKind::Anon);
        assert!(t.put(f));
        assert_eq!(t.kind(f), FrameKind::Free);
        assert_eq!(t.nr_free(), 4);
        assert_eq!(
            t.fragmentation(2).free_blocks,
            [0, 0, 1],
            "merged back whole"
        );
    }

    #[test]
    fn sixteen_tib_of_frames_boot_in_little_host_memory() {
        // 2^32 - 1 frames with a hole near the bottom, as on a PC.
        let n = u32::MAX as u64;
        let mut t = FrameTable::new(n, &[(0, 1), (0xa0, 0x100)], 18);
        assert_eq!(t.nr_frames(), n);
        assert_eq!(t.nr_free(), n - 1 - 0x60);
        let f = t.alloc(1, FrameKind::Anon, 2).unwrap();
        assert_eq!((t.kind(f), t.refs(f), t.group(f)), (FrameKind::Anon, 1, 2));
        assert_eq!(t.kind(Pfn(n)), FrameKind::Reserved, "beyond RAM");
        let other = if f.0 == n - 1 { Pfn(1) } else { Pfn(n - 1) };
        assert_eq!(t.kind(other), FrameKind::Free);
        let host = t.refs.host_bytes() + t.kind.host_bytes() + t.group.host_bytes();
        assert!(host < 32 << 20, "{host} bytes of metadata");
    }

    #[test]
    fn runs_do_not_straddle_reserved_frames() {
        let mut t = FrameTable::new(16, &[(3, 4)], 4);
        let a = t.alloc(2, FrameKind::Table, 0).unwrap();
        let b = t.alloc(2, FrameKind::Table, 0).unwrap();
        for run in [a, b] {
            assert!(!(run.0..run.0 + 2).contains(&3), "{run:?}");
        }
        t.release(a, 2);
        t.release(b, 2);
        assert_eq!(t.nr_free(), 15);
        assert_eq!(t.nr_of(FrameKind::Table), 0);
    }
}
