//! Editing page tables that live in simulated RAM: the primitives a kernel uses to map,
//! unmap and change pages. Every change that removes or narrows access returns a
//! [`TlbFlush`] token that must be applied to the MMU; dropping one unapplied is a
//! compile-time warning (`#[must_use]`) and a debug-build panic.

use super::mmu::{AsidScope, Mmu};
use super::paging::Paging;
use super::pte::{Flags, Pte};
use super::ram::{OutOfRange, PhysMem};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use thiserror::Error;

/// Where page-table frames come from.
pub trait FrameAlloc {
    /// `n` physically contiguous free frames, or `None` if there are none.
    fn alloc_frames(&mut self, n: u64) -> Option<Pfn>;
    /// Gives back `n` frames from `pfn`.
    fn free_frames(&mut self, pfn: Pfn, n: u64);
}

/// A minimal frame allocator: a bump pointer over a range plus a free list of single
/// frames. For tests and hardware-only runs; the kernel brings a real allocator.
#[derive(Clone, Debug)]
pub struct SimpleFrames {
    next: u64,
    end: u64,
    free: Vec<u64>,
}

impl SimpleFrames {
    /// Hands out frames `start..end`.
    pub fn new(start: u64, end: u64) -> SimpleFrames {
        SimpleFrames {
            next: start,
            end,
            free: Vec::new(),
        }
    }
    /// Frames still available.
    pub fn available(&self) -> u64 {
        self.end - self.next + self.free.len() as u64
    }
}

impl FrameAlloc for SimpleFrames {
    fn alloc_frames(&mut self, n: u64) -> Option<Pfn> {
        if n == 1 {
            if let Some(f) = self.free.pop() {
                return Some(Pfn(f));
            }
        }
        if self.end - self.next < n {
            return None;
        }
        let f = self.next;
        self.next += n;
        Some(Pfn(f))
    }
    fn free_frames(&mut self, pfn: Pfn, n: u64) {
        self.free.extend(pfn.0..pfn.0 + n);
    }
}

/// Why a page-table edit was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MapError {
    /// The address is not canonical for this format.
    #[error("{va} is not a valid address for this machine")]
    NonCanonical {
        /// The address.
        va: VirtAddr,
    },
    /// Leaves cannot sit at that level.
    #[error("level {level} cannot hold a leaf")]
    NoLeafAtLevel {
        /// The level.
        level: u32,
    },
    /// Address or frame not aligned to the page size of the level.
    #[error("{va} / frame {pfn} is not aligned to the {size}-byte page of level {level}")]
    Misaligned {
        /// The address.
        va: VirtAddr,
        /// The frame.
        pfn: Pfn,
        /// The level.
        level: u32,
        /// The page size at that level.
        size: u64,
    },
    /// The frame number does not fit the format.
    #[error("frame {pfn} is beyond the machine's physical address width")]
    FrameTooHigh {
        /// The frame.
        pfn: Pfn,
    },
    /// Something is already mapped there.
    #[error("{va} is already mapped (entry at level {level})")]
    AlreadyMapped {
        /// The address.
        va: VirtAddr,
        /// The level of the existing entry.
        level: u32,
    },
    /// Nothing is mapped there.
    #[error("{va} is not mapped")]
    NotMapped {
        /// The address.
        va: VirtAddr,
    },
    /// A present entry with reserved bits is in the way.
    #[error("corrupt entry at level {level} on the way to {va}")]
    Corrupt {
        /// The address.
        va: VirtAddr,
        /// The level.
        level: u32,
    },
    /// No frame for a new table.
    #[error("out of frames for page tables")]
    OutOfFrames,
    /// A table lies outside RAM.
    #[error(transparent)]
    Ram(#[from] OutOfRange),
}

/// A pending TLB invalidation for a range of one address space. Apply it with
/// [`TlbFlush::apply`]; it cannot be silently dropped.
#[must_use = "a page-table change that narrows access must be followed by a TLB flush"]
#[derive(Debug)]
pub struct TlbFlush {
    start: VirtAddr,
    /// Exclusive end.
    end: VirtAddr,
    asid: u32,
    /// Whether a global entry was changed in the range.
    global: bool,
    /// Set when applied or merged, so that dropping it is fine.
    done: bool,
}

/// Ranges of more pages than this are flushed by flushing the whole address space, as
/// Linux does past `tlb_single_page_flush_ceiling` (33).
pub const FLUSH_CEILING_PAGES: u64 = 33;

impl TlbFlush {
    fn new(start: VirtAddr, end: VirtAddr, asid: u32, global: bool) -> TlbFlush {
        TlbFlush {
            start,
            end,
            asid,
            global,
            done: false,
        }
    }

    /// The range covered.
    pub fn range(&self) -> (VirtAddr, VirtAddr) {
        (self.start, self.end)
    }

    /// Combines two pending flushes of the same address space into one covering both.
    pub fn merge(mut self, mut other: TlbFlush) -> TlbFlush {
        debug_assert_eq!(self.asid, other.asid);
        other.done = true;
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.global |= other.global;
        self
    }

    /// Invalidates the range in `mmu`: page by page up to [`FLUSH_CEILING_PAGES`]
    /// base pages; past that the whole address space (and everything, if a global entry
    /// was in the range).
    pub fn apply(mut self, mmu: &mut Mmu) {
        self.done = true;
        let page = mmu.paging().page_size();
        let pages = (self.end.0.wrapping_sub(self.start.0)).div_ceil(page);
        if pages > FLUSH_CEILING_PAGES {
            if self.global {
                mmu.flush_all();
            } else {
                mmu.flush_asid(self.asid);
            }
            return;
        }
        let mut va = self.start;
        for _ in 0..pages {
            mmu.invalidate_page(va, AsidScope::One(self.asid));
            va = VirtAddr(va.0.wrapping_add(page));
        }
    }
}

impl Drop for TlbFlush {
    fn drop(&mut self) {
        debug_assert!(
            self.done || std::thread::panicking(),
            "TlbFlush dropped without being applied"
        );
    }
}

/// A leaf found by a software walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First frame of the page.
    pub pfn: Pfn,
    /// Its level (1 = base page).
    pub level: u32,
    /// Its flags (permissions, Accessed, Dirty, ...).
    pub flags: Flags,
    /// Where its PTE lives.
    pub pte_addr: PhysAddr,
}

/// One address space's page tables: the root and the id its TLB entries carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTable {
    root: PhysAddr,
    asid: u32,
}

impl PageTable {
    /// Allocates an empty root table.
    pub fn new(
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        asid: u32,
    ) -> Result<PageTable, MapError> {
        let root = alloc_table(paging, ram, alloc, paging.levels)?;
        Ok(PageTable { root, asid })
    }

    /// A handle on an existing table tree.
    pub fn from_root(root: PhysAddr, asid: u32) -> PageTable {
        PageTable { root, asid }
    }

    /// Physical address of the root table.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The address-space id.
    pub fn asid(&self) -> u32 {
        self.asid
    }

    fn entry_addr(paging: &Paging, table: PhysAddr, va: VirtAddr, level: u32) -> PhysAddr {
        PhysAddr(table.0 + paging.index(va, level) * paging.pte_bytes as u64)
    }

    /// Maps the page of `level` at `va` to frame `pfn` with `flags`. Missing tables on the
    /// way are allocated and linked with `table_flags` (x86: the widest access the subtree
    /// may grant; ignored by formats whose table entries carry no permissions); existing
    /// links are widened to include them. Mapping where something is mapped is refused:
    /// unmap first, which yields the flush.
    #[allow(clippy::too_many_arguments)]
    pub fn map(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        alloc: &mut impl FrameAlloc,
        va: VirtAddr,
        pfn: Pfn,
        level: u32,
        flags: Flags,
        table_flags: Flags,
    ) -> Result<(), MapError> {
        if !paging.is_canonical(va) {
            return Err(MapError::NonCanonical { va });
        }
        if level == 0 || level > paging.levels || !paging.leaf_allowed(level) {
            return Err(MapError::NoLeafAtLevel { level });
        }
        let size = paging.leaf_size(level);
        let align = size >> paging.page_shift;
        if !va.is_aligned(size) || pfn.0 & (align - 1) != 0 {
            return Err(MapError::Misaligned {
                va,
                pfn,
                level,
                size,
            });
        }
        if pfn.0 > paging.max_pfn() {
            return Err(MapError::FrameTooHigh { pfn });
        }
        let mut table = self.root;
        for l in (level + 1..=paging.levels).rev() {
            let addr = Self::entry_addr(paging, table, va, l);
            let raw = ram.read_uint(addr, paging.pte_bytes)?;
            table = match paging.decode(raw, l) {
                Pte::Absent => {
                    let t = alloc_table(paging, ram, alloc, l - 1)?;
                    let e = Pte::Table {
                        pfn: t.pfn(paging.page_shift),
                        flags: table_flags,
                    };
                    ram.write_uint(addr, paging.pte_bytes, paging.encode(e, l))?;
                    t
                }
                Pte::Table { pfn, flags: old } => {
                    let want = old | table_flags;
                    if want != old {
                        let e = Pte::Table { pfn, flags: want };
                        ram.write_uint(addr, paging.pte_bytes, paging.encode(e, l))?;
                    }
                    pfn.addr(paging.page_shift)
                }
                Pte::Leaf { .. } => return Err(MapError::AlreadyMapped { va, level: l }),
                Pte::Reserved => return Err(MapError::Corrupt { va, level: l }),
            };
        }
        let addr = Self::entry_addr(paging, table, va, level);
        let raw = ram.read_uint(addr, paging.pte_bytes)?;
        match paging.decode(raw, level) {
            Pte::Absent => {}
            Pte::Reserved => return Err(MapError::Corrupt { va, level }),
            _ => return Err(MapError::AlreadyMapped { va, level }),
        }
        ram.write_uint(
            addr,
            paging.pte_bytes,
            paging.encode(Pte::Leaf { pfn, flags }, level),
        )?;
        Ok(())
    }

    /// Finds the leaf that maps `va`, without touching Accessed or Dirty.
    pub fn lookup(&self, paging: &Paging, ram: &PhysMem, va: VirtAddr) -> Option<Mapping> {
        if !paging.is_canonical(va) {
            return None;
        }
        let mut table = self.root;
        for level in (1..=paging.levels).rev() {
            let addr = Self::entry_addr(paging, table, va, level);
            let raw = ram.read_uint(addr, paging.pte_bytes).ok()?;
            match paging.decode(raw, level) {
                Pte::Leaf { pfn, flags } => {
                    return Some(Mapping {
                        pfn,
                        level,
                        flags,
                        pte_addr: addr,
                    })
                }
                Pte::Table { pfn, .. } => table = pfn.addr(paging.page_shift),
                Pte::Absent | Pte::Reserved => return None,
            }
        }
        None
    }

    /// Removes the leaf that maps `va` and returns what it mapped (with its final
    /// Accessed and Dirty bits) and the flush to apply.
    pub fn unmap(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        va: VirtAddr,
    ) -> Result<(Mapping, TlbFlush), MapError> {
        let m = self
            .lookup(paging, ram, va)
            .ok_or(MapError::NotMapped { va })?;
        ram.write_uint(
            m.pte_addr,
            paging.pte_bytes,
            paging.encode(Pte::Absent, m.level),
        )?;
        let start = va.align_down(paging.leaf_size(m.level));
        let end = VirtAddr(start.0.wrapping_add(paging.leaf_size(m.level)));
        Ok((
            m,
            TlbFlush::new(start, end, self.asid, m.flags.contains(Flags::GLOBAL)),
        ))
    }

    /// Replaces the flags of the leaf that maps `va` (Accessed and Dirty included: pass
    /// the old ones through to keep them) and returns the flush to apply.
    pub fn set_flags(
        &self,
        paging: &Paging,
        ram: &mut PhysMem,
        va: VirtAddr,
        flags: Flags,
    ) -> Result<TlbFlush, MapError> {
        let m = self
            .lookup(paging, ram, va)
            .ok_or(MapError::NotMapped { va })?;
        let raw = paging.encode(Pte::Leaf { pfn: m.pfn, flags }, m.level);
        ram.write_uint(m.pte_addr, paging.pte_bytes, raw)?;
        let start = va.align_down(paging.leaf_size(m.level));
        let end = VirtAddr(start.0.wrapping_add(paging.leaf_size(m.level)));
        Ok(TlbFlush::new(
            start,
            end,
            self.asid,
            (m.flags | flags).contains(Flags::GLOBAL),
        ))
    }

    /// Frees every table frame of the tree, root included (not the pages the leaves map).
    /// Returns how many tables were freed. The caller flushes the address space's id.
    pub fn destroy(self, paging: &Paging, ram: &mut PhysMem, alloc: &mut impl FrameAlloc) -> u64 {
        free_tree(paging, ram, alloc, self.root, paging.levels)
    }

    /// Number of table frames in the tree, root included.
    pub fn table_frames(&self, paging: &Paging, ram: &PhysMem) -> u64 {
        count_tree(paging, ram, self.root, paging.levels)
    }
}

fn alloc_table(
    paging: &Paging,
    ram: &mut PhysMem,
    alloc: &mut impl FrameAlloc,
    level: u32,
) -> Result<PhysAddr, MapError> {
    let n = paging.table_frames(level);
    let pfn = alloc.alloc_frames(n).ok_or(MapError::OutOfFrames)?;
    ram.zero_frames(pfn, n)?;
    Ok(pfn.addr(paging.page_shift))
}

fn children(paging: &Paging, ram: &PhysMem, table: PhysAddr, level: u32) -> Vec<PhysAddr> {
    if level == 1 {
        return Vec::new();
    }
    (0..paging.entries(level))
        .filter_map(|i| {
            let raw = ram
                .read_uint(
                    PhysAddr(table.0 + i * paging.pte_bytes as u64),
                    paging.pte_bytes,
                )
                .ok()?;
            match paging.decode(raw, level) {
                Pte::Table { pfn, .. } => Some(pfn.addr(paging.page_shift)),
                _ => None,
            }
        })
        .collect()
}

fn free_tree(
    paging: &Paging,
    ram: &mut PhysMem,
    alloc: &mut impl FrameAlloc,
    table: PhysAddr,
    level: u32,
) -> u64 {
    let mut n = 1;
    for child in children(paging, ram, table, level) {
        n += free_tree(paging, ram, alloc, child, level - 1);
    }
    let frames = paging.table_frames(level);
    let pfn = table.pfn(paging.page_shift);
    let _ = ram.zero_frames(pfn, frames);
    alloc.free_frames(pfn, frames);
    n
}

fn count_tree(paging: &Paging, ram: &PhysMem, table: PhysAddr, level: u32) -> u64 {
    1 + children(paging, ram, table, level)
        .into_iter()
        .map(|c| count_tree(paging, ram, c, level - 1))
        .sum::<u64>()
}
