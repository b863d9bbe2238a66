//! Simple segregated storage (Wilson, Johnstone, Neely and Boles, "Dynamic Storage
//! Allocation: A Survey and Critical Review", 1995, §3.6; the idea behind slab and
//! size-class allocators such as tcmalloc's and jemalloc's small bins): requests are
//! rounded up to a power-of-two size class (16 bytes to half a page), and each class
//! owns whole pages carved into blocks of exactly its size. A free block of a class is
//! on that class's free list (the link is in the block's first word); `malloc` pops
//! one, or carves a fresh page from `brk` when the list is empty. There are no
//! per-block headers: the class of a block is in its page's 16-byte header, found by
//! rounding the pointer down to the page. Blocks are never split or merged, and pages
//! never change class or go back to the kernel.
//!
//! Allocation and free are a handful of accesses, whatever the heap's size; the price
//! is rounding (internal fragmentation up to half a block) and memory stranded in one
//! class's pages while another class grows (external fragmentation). Requests bigger
//! than the largest class are not this heap's (the [`super::Heap`] maps them).

use super::{move_break, program_break, AllocError, OpCounters};
use crate::addr::VirtAddr;
use crate::user::Mem;

/// The smallest class, bytes.
pub const MIN_CLASS: u64 = 16;
/// Bytes of a page's header (its class).
pub const PAGE_HEADER: u64 = 16;
const NR_CLASSES: usize = 48;

/// A simple-segregated-storage allocator's globals: the heap's bounds and a free-list
/// head per class.
#[derive(Clone, Debug)]
pub struct SimpleSegregated {
    base: u64,
    end: u64,
    page: u64,
    heads: [u64; NR_CLASSES],
}

impl SimpleSegregated {
    /// An empty heap at the program break (rounded up to a page).
    pub fn new(m: &mut Mem<'_>) -> Result<SimpleSegregated, AllocError> {
        let page = m.page_size();
        let brk = program_break(m)?;
        let base = brk.div_ceil(page) * page;
        Ok(SimpleSegregated {
            base,
            end: base,
            page,
            heads: [0; NR_CLASSES],
        })
    }

    /// Bytes of heap.
    pub fn heap_bytes(&self) -> u64 {
        self.end - self.base
    }

    /// The class (block size) that holds `size` bytes, if any does.
    pub fn class_for(&self, size: u64) -> Option<u64> {
        let c = size.max(MIN_CLASS).checked_next_power_of_two()?;
        (c <= self.page.saturating_sub(PAGE_HEADER) / 2).then_some(c)
    }

    fn index(class: u64) -> usize {
        (class.ilog2() - MIN_CLASS.ilog2()) as usize
    }

    /// Allocates a block of class `class`. Returns its address and size.
    pub fn malloc(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        class: u64,
    ) -> Result<(u64, u64), AllocError> {
        let i = Self::index(class);
        if self.heads[i] == 0 {
            // A fresh page: header, then blocks threaded onto the list in address order.
            let page = self.end;
            let new_end = page
                .checked_add(self.page)
                .ok_or(AllocError::TooLarge(class))?;
            move_break(m, c, new_end, self.page)?;
            self.end = new_end;
            m.store(page, class)?;
            let first = page + PAGE_HEADER;
            let mut b = first;
            while b + class <= new_end {
                let next = if b + 2 * class <= new_end {
                    b + class
                } else {
                    0
                };
                m.store(b, next)?;
                c.splits += 1;
                b += class;
            }
            self.heads[i] = first;
        }
        c.search_steps += 1;
        let b = self.heads[i];
        if b < self.base || b >= self.end {
            return Err(AllocError::Corrupt {
                addr: VirtAddr(b),
                what: "size-class free list leaves the heap",
            });
        }
        self.heads[i] = m.load(b)?;
        Ok((b, class))
    }

    /// The class of the block at `b`, from its page's header.
    pub fn class_of(&self, m: &mut Mem<'_>, b: u64) -> Result<u64, AllocError> {
        let class = m.load(b / self.page * self.page)?;
        if !class.is_power_of_two() || class < MIN_CLASS || class > self.page / 2 {
            return Err(AllocError::Corrupt {
                addr: VirtAddr(b / self.page * self.page),
                what: "page header does not hold a size class",
            });
        }
        Ok(class)
    }

    /// Frees the block at `b`: on the front of its class's list.
    pub fn free(&mut self, m: &mut Mem<'_>, b: u64) -> Result<(), AllocError> {
        let class = self.class_of(m, b)?;
        let i = Self::index(class);
        m.store(b, self.heads[i])?;
        self.heads[i] = b;
        Ok(())
    }

    /// Every block of the heap in address order: (address, size, allocated). Walks the
    /// free lists to tell free from allocated.
    pub fn blocks(&self, m: &mut Mem<'_>) -> Result<Vec<(u64, u64, bool)>, AllocError> {
        let mut free = std::collections::BTreeSet::new();
        let limit = self.heap_bytes() / MIN_CLASS + 1;
        for &h in &self.heads {
            let mut b = h;
            while b != 0 {
                if !free.insert(b) || free.len() as u64 > limit {
                    return Err(AllocError::Corrupt {
                        addr: VirtAddr(b),
                        what: "size-class free list has a cycle",
                    });
                }
                b = m.load(b)?;
            }
        }
        let mut out = Vec::new();
        let mut page = self.base;
        while page < self.end {
            let class = self.class_of(m, page + PAGE_HEADER)?;
            let mut b = page + PAGE_HEADER;
            while b + class <= page + self.page {
                out.push((b, class, !free.contains(&b)));
                b += class;
            }
            page += self.page;
        }
        Ok(out)
    }
}
