//! Virtual memory areas (Linux's `vm_area_struct`): the ranges of an address space, what
//! backs them and what they allow. The set is kept sorted and non-overlapping; splitting
//! and merging keep it so.

use crate::addr::VirtAddr;
pub use crate::hw::mmio::Device;
use std::collections::BTreeMap;
use std::fmt;

/// Access a mapping allows (`PROT_READ`, `PROT_WRITE`, `PROT_EXEC`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Prot(pub u8);

impl Prot {
    /// No access.
    pub const NONE: Prot = Prot(0);
    /// Readable.
    pub const READ: Prot = Prot(1);
    /// Writable.
    pub const WRITE: Prot = Prot(2);
    /// Executable.
    pub const EXEC: Prot = Prot(4);
    /// Read and write.
    pub const RW: Prot = Prot(3);
    /// Read and execute.
    pub const RX: Prot = Prot(5);
    /// Everything.
    pub const RWX: Prot = Prot(7);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }

    /// Parses `rwx`-style text: any of `r`, `w`, `x` (or `-`), e.g. `rw-`, `r-x`, `none`.
    pub fn parse(text: &str) -> Option<Prot> {
        if text == "none" {
            return Some(Prot::NONE);
        }
        let mut p = 0;
        for c in text.chars() {
            p |= match c {
                'r' => 1,
                'w' => 2,
                'x' => 4,
                '-' => 0,
                _ => return None,
            };
        }
        Some(Prot(p))
    }
}

impl std::ops::BitOr for Prot {
    type Output = Prot;
    fn bitor(self, rhs: Prot) -> Prot {
        Prot(self.0 | rhs.0)
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |bit: u8, ch: char| if self.0 & bit != 0 { ch } else { '-' };
        write!(f, "{}{}{}", c(1, 'r'), c(2, 'w'), c(4, 'x'))
    }
}

impl fmt::Debug for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A file of the simulated file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A shared-memory object (a named one, or the object behind a shared anonymous mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShmId(pub u32);

/// What backs a VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous memory: zero-filled on first touch.
    Anon,
    /// A file, from this byte offset (page-aligned) at the VMA's start.
    File {
        /// The file.
        file: FileId,
        /// Offset of the VMA's first byte in the file.
        offset: u64,
    },
    /// A shared-memory object, from this byte offset at the VMA's start.
    Shm {
        /// The object.
        obj: ShmId,
        /// Offset of the VMA's first byte in the object.
        offset: u64,
    },
    /// A device's registers.
    Device(Device),
    /// Huge pages from a hugetlb pool (`MAP_HUGETLB`; see `hugetlb.rs`).
    HugeTlb {
        /// The pool's page size in bytes.
        page_bytes: u64,
        /// Whether the mapping reserved its pages (no `MAP_NORESERVE`).
        reserved: bool,
    },
}

impl Backing {
    /// The backing of the part of a VMA that starts `delta` bytes later.
    pub(super) fn advanced(self, delta: u64) -> Backing {
        match self {
            Backing::File { file, offset } => Backing::File {
                file,
                offset: offset + delta,
            },
            Backing::Shm { obj, offset } => Backing::Shm {
                obj,
                offset: offset + delta,
            },
            other => other,
        }
    }
}

/// What a VMA is for, for reports (`/proc/pid/maps`' last column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaRole {
    /// Program text.
    Text,
    /// Program data.
    Data,
    /// The heap (grown by `brk`).
    Heap,
    /// The stack (grows down on faults).
    Stack,
    /// Anything else `mmap` made.
    Mmap,
}

/// One virtual memory area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First byte.
    pub start: VirtAddr,
    /// One past the last byte.
    pub end: VirtAddr,
    /// The access it allows.
    pub prot: Prot,
    /// `MAP_SHARED` (writes are seen by every mapper) rather than `MAP_PRIVATE`.
    pub shared: bool,
    /// What backs it.
    pub backing: Backing,
    /// What it is for.
    pub role: VmaRole,
    /// Whether the range of addresses it commits (for overcommit accounting).
    pub accounted: bool,
    /// Its `madvise` advice on transparent huge pages (`VM_HUGEPAGE`, `VM_NOHUGEPAGE`).
    pub huge: super::thp::HugeAdvice,
    /// Its `madvise` advice on reading a file ahead (`VM_RAND_READ`, `VM_SEQ_READ`).
    pub access: super::readahead::AccessAdvice,
    /// Whether its pages are locked in RAM (`VM_LOCKED`, `VM_LOCKONFAULT`).
    pub locked: super::mlock::Mlock,
    /// What `fork` gives a child of it (`VM_DONTCOPY`, `VM_WIPEONFORK`).
    pub fork: super::fork::ForkAdvice,
    /// Its swap readahead state (`swap_readahead_info`), read and written by swap
    /// faults when swap reads ahead by VMA; not part of what makes two VMAs alike.
    pub swap_ra: super::swap::SwapReadaheadState,
}

impl Vma {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.0 - self.start.0
    }

    /// Whether it is empty (never, in a set).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The page of its file or shared-memory object that `va` maps, the object's
    /// bytes starting at `offset` at the VMA's start (Linux's `linear_page_index`).
    pub fn object_page(&self, offset: u64, va: VirtAddr, page_size: u64) -> u64 {
        (offset + (va.0 - self.start.0)) / page_size
    }

    /// Whether `va` lies inside.
    pub fn contains(&self, va: VirtAddr) -> bool {
        self.start <= va && va < self.end
    }

    /// Whether `next`, starting where this ends, could be the same VMA.
    fn mergeable(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.shared == next.shared
            && self.role == next.role
            && self.accounted == next.accounted
            && self.huge == next.huge
            && self.access == next.access
            && self.locked == next.locked
            && self.fork == next.fork
            && self.backing.advanced(self.len()) == next.backing
    }

    /// The part `[at, end)`, with its backing offset moved along.
    fn tail(&self, at: VirtAddr) -> Vma {
        Vma {
            start: at,
            backing: self.backing.advanced(at.0 - self.start.0),
            ..*self
        }
    }
}

/// The VMAs of one address space, sorted by start.
#[derive(Clone, Debug, Default)]
pub struct VmaSet {
    by_start: BTreeMap<u64, Vma>,
}

impl VmaSet {
    /// The VMA containing `va`.
    pub fn find(&self, va: VirtAddr) -> Option<&Vma> {
        self.by_start
            .range(..=va.0)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(va))
    }

    /// The VMA containing `va`, to change in place (a change that keeps its bounds).
    pub(super) fn find_mut(&mut self, va: VirtAddr) -> Option<&mut Vma> {
        self.by_start
            .range_mut(..=va.0)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(va))
    }

    /// The first VMA that ends after `va` (the one containing it, or the next above).
    pub fn find_from(&self, va: VirtAddr) -> Option<&Vma> {
        self.find(va)
            .or_else(|| self.by_start.range(va.0..).next().map(|(_, v)| v))
    }

    /// The last VMA that starts before `va`.
    pub fn before(&self, va: VirtAddr) -> Option<&Vma> {
        self.by_start.range(..va.0).next_back().map(|(_, v)| v)
    }

    /// Every VMA, in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.by_start.values()
    }

    /// Number of VMAs.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }

    /// Whether any VMA overlaps `[start, end)`.
    pub fn overlaps(&self, start: VirtAddr, end: VirtAddr) -> bool {
        self.find_from(start).is_some_and(|v| v.start < end)
    }

    /// The VMAs overlapping `[start, end)`.
    pub fn overlapping(&self, start: VirtAddr, end: VirtAddr) -> Vec<Vma> {
        let first = self.find_from(start).map_or(end.0, |v| v.start.0);
        if first >= end.0 {
            return Vec::new();
        }
        self.by_start.range(first..end.0).map(|(_, v)| *v).collect()
    }

    /// Inserts `vma` (which must not overlap any) and merges it with its neighbours
    /// where they are alike.
    pub fn insert(&mut self, vma: Vma) {
        debug_assert!(!self.overlaps(vma.start, vma.end));
        let mut vma = vma;
        if let Some(prev) = self.before(vma.start).copied() {
            if prev.mergeable(&vma) {
                // Linux grows `prev` over the new part: its state is the one kept.
                self.by_start.remove(&prev.start.0);
                vma.start = prev.start;
                vma.backing = prev.backing;
                vma.swap_ra = prev.swap_ra;
            }
        }
        if let Some(next) = self.by_start.get(&vma.end.0).copied() {
            if vma.mergeable(&next) {
                self.by_start.remove(&next.start.0);
                vma.end = next.end;
            }
        }
        self.by_start.insert(vma.start.0, vma);
    }

    /// Splits VMAs so that `at` is a boundary.
    pub fn split_at(&mut self, at: VirtAddr) {
        if let Some(v) = self.find(at).copied() {
            if v.start != at {
                let tail = v.tail(at);
                self.by_start.insert(v.start.0, Vma { end: at, ..v });
                self.by_start.insert(at.0, tail);
            }
        }
    }

    /// Removes the parts of VMAs inside `[start, end)`, splitting the ones that stick
    /// out; returns the removed parts.
    pub fn remove_range(&mut self, start: VirtAddr, end: VirtAddr) -> Vec<Vma> {
        self.split_at(start);
        self.split_at(end);
        let gone = self.overlapping(start, end);
        for v in &gone {
            self.by_start.remove(&v.start.0);
        }
        gone
    }

    /// Applies `f` to every VMA inside `[start, end)` (after splitting at both ends),
    /// then merges what became alike.
    pub fn update_range(&mut self, start: VirtAddr, end: VirtAddr, f: impl Fn(&mut Vma)) {
        let parts = self.remove_range(start, end);
        for mut v in parts {
            f(&mut v);
            self.insert(v);
        }
    }

    /// Unlocks every VMA, as a forked child's copy of its parent's areas is (Linux's
    /// `dup_mmap` clears `VM_LOCKED`); neighbours are left apart, as Linux leaves them.
    pub fn unlock_all(&mut self) {
        for v in self.by_start.values_mut() {
            v.locked = Default::default();
        }
    }

    /// Replaces the VMA that starts at `start` by `vma` (used to grow or shrink one in
    /// place); returns the old one.
    pub fn replace(&mut self, start: VirtAddr, vma: Vma) -> Option<Vma> {
        let old = self.by_start.remove(&start.0);
        self.by_start.insert(vma.start.0, vma);
        old
    }

    /// The highest gap of at least `len` bytes with its end at or below `top` and its
    /// start at or above `bottom`: where a top-down `mmap` places a mapping.
    pub fn gap_below(&self, top: VirtAddr, bottom: VirtAddr, len: u64) -> Option<VirtAddr> {
        let mut ceiling = top.0;
        for v in self.by_start.range(..top.0).rev().map(|(_, v)| v) {
            if v.end.0 < ceiling && ceiling - v.end.0 >= len {
                return Some(VirtAddr(ceiling - len)).filter(|a| a.0 >= bottom.0);
            }
            ceiling = ceiling.min(v.start.0);
        }
        (ceiling >= bottom.0 && ceiling - bottom.0 >= len).then(|| VirtAddr(ceiling - len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64, prot: Prot) -> Vma {
        Vma {
            start: VirtAddr(start),
            end: VirtAddr(end),
            prot,
            shared: false,
            backing: Backing::Anon,
            role: VmaRole::Mmap,
            accounted: false,
            huge: Default::default(),
            access: Default::default(),
            locked: Default::default(),
            fork: Default::default(),
            swap_ra: Default::default(),
        }
    }

    #[test]
    fn neighbours_alike_merge_and_splits_keep_file_offsets() {
        let mut s = VmaSet::default();
        s.insert(anon(0x1000, 0x3000, Prot::RW));
        s.insert(anon(0x3000, 0x5000, Prot::RW));
        assert_eq!(s.len(), 1);
        s.insert(anon(0x5000, 0x6000, Prot::READ));
        assert_eq!(s.len(), 2);
        s.update_range(VirtAddr(0x2000), VirtAddr(0x3000), |v| v.prot = Prot::READ);
        let spans: Vec<_> = s.iter().map(|v| (v.start.0, v.end.0, v.prot)).collect();
        assert_eq!(
            spans,
            [
                (0x1000, 0x2000, Prot::RW),
                (0x2000, 0x3000, Prot::READ),
                (0x3000, 0x5000, Prot::RW),
                (0x5000, 0x6000, Prot::READ)
            ]
        );
        let mut f = anon(0x10000, 0x14000, Prot::READ);
        f.backing = Backing::File {
            file: FileId(1),
            offset: 0x2000,
        };
        s.insert(f);
        let gone = s.remove_range(VirtAddr(0x11000), VirtAddr(0x12000));
        assert_eq!(gone.len(), 1);
        assert_eq!(
            s.find(VirtAddr(0x12000)).unwrap().backing,
            Backing::File {
                file: FileId(1),
                offset: 0x4000
            }
        );
        assert!(s.find(VirtAddr(0x11000)).is_none());
    }

    #[test]
    fn gaps_are_found_from_the_top() {
        let mut s = VmaSet::default();
        s.insert(anon(0x8000, 0x9000, Prot::RW));
        s.insert(anon(0x6000, 0x7000, Prot::READ));
        let top = VirtAddr(0x10000);
        assert_eq!(
            s.gap_below(top, VirtAddr(0), 0x1000),
            Some(VirtAddr(0xf000))
        );
        assert_eq!(
            s.gap_below(VirtAddr(0x9000), VirtAddr(0), 0x1000),
            Some(VirtAddr(0x7000))
        );
        assert_eq!(
            s.gap_below(VirtAddr(0x9000), VirtAddr(0), 0x2000),
            Some(VirtAddr(0x4000))
        );
        assert_eq!(
            s.gap_below(VirtAddr(0x9000), VirtAddr(0x5000), 0x2000),
            None
        );
    }
}
