//! Boundary tags (Knuth, TAOCP vol. 1 §2.5): every block carries its size and an
//! allocated bit in a header word *and* a footer word, so a freed block can find both
//! neighbours in constant time and merge with them. The implicit, explicit and
//! segregated allocators share this block format; they differ only in how they find
//! a free block.
//!
//! The heap (from the initial program break, 16-byte aligned):
//!
//! ```text
//! base: pad | prologue hdr 16/a | prologue ftr 16/a | block | block | ... | epilogue hdr 0/a | brk
//! ```
//!
//! A block at `h` has its header at `h`, payload at `h + 8` (16-byte aligned), footer
//! at `h + size - 8`. Sizes are multiples of 16, at least [`MIN_BLOCK`] (room for the
//! two free-list links of an explicit list). The prologue and epilogue are allocated
//! sentinels, so coalescing needs no bounds checks. Free blocks may carry two links,
//! `next` at `h + 8` and `prev` at `h + 16` (0 is null), used by [`push_front`],
//! [`insert_by_address`] and [`unlink`].

use super::{move_break, program_break, AllocError, OpCounters};
use crate::addr::VirtAddr;
use crate::user::Mem;

/// Smallest block: header, two links, footer.
pub const MIN_BLOCK: u64 = 32;
/// Header plus footer.
pub const OVERHEAD: u64 = 16;
const ALLOC: u64 = 1;

/// The block size that holds a request of `size` bytes, or `None` if it overflows.
pub fn block_size(size: u64) -> Option<u64> {
    let s = size.checked_add(OVERHEAD + 15)? & !15;
    Some(s.max(MIN_BLOCK))
}

fn corrupt(addr: u64, what: &'static str) -> AllocError {
    AllocError::Corrupt {
        addr: VirtAddr(addr),
        what,
    }
}

/// The bounds of a boundary-tag heap (the allocator's globals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tags {
    /// Where the heap began (the break when it was set up).
    pub base: u64,
    /// The first block's header.
    pub first: u64,
    /// The epilogue header (one word before the break).
    pub epilogue: u64,
}

impl Tags {
    /// Sets up an empty heap at the current break: prologue and epilogue.
    pub fn init(m: &mut Mem<'_>, c: &mut OpCounters) -> Result<Tags, AllocError> {
        let brk = program_break(m)?;
        // Align so that headers sit at 8 mod 16 and payloads at 0 mod 16.
        let base = (brk + 15) & !15;
        let first = base + 24;
        move_break(m, c, first + 8, 32)?;
        m.store(base + 8, 16 | ALLOC)?;
        m.store(base + 16, 16 | ALLOC)?;
        m.store(first, ALLOC)?;
        Ok(Tags {
            base,
            first,
            epilogue: first,
        })
    }

    /// Bytes of heap (from the initial break to the break now).
    pub fn heap_bytes(&self) -> u64 {
        self.epilogue + 8 - self.base
    }

    /// Reads a header or footer: (size, allocated).
    #[inline]
    pub fn tag(&self, m: &mut Mem<'_>, at: u64) -> Result<(u64, bool), AllocError> {
        let w = m.load(at)?;
        Ok((w & !15, w & ALLOC != 0))
    }

    /// Reads the header of the block at `h` and checks it lies within the heap.
    #[inline]
    pub fn header(&self, m: &mut Mem<'_>, h: u64) -> Result<(u64, bool), AllocError> {
        let (size, alloc) = self.tag(m, h)?;
        if h == self.epilogue {
            return Ok((0, true));
        }
        if size < MIN_BLOCK || h.checked_add(size).is_none_or(|e| e > self.epilogue) {
            return Err(corrupt(h, "block header with an impossible size"));
        }
        Ok((size, alloc))
    }

    /// How many blocks a walk of a free list may visit: more than the heap can hold
    /// means the list has a cycle.
    pub fn list_budget(&self) -> u64 {
        self.heap_bytes() / MIN_BLOCK + 1
    }

    /// First fit on the free list from `head` (linked as [`push_front`] links it): the
    /// first block of at least `asize` bytes, (header, size). Each block visited is a
    /// search step and spends one of `budget` (from [`Tags::list_budget`], shared by the
    /// walks of one search); a block that is not free, or a walk past the budget, is
    /// corruption.
    pub fn first_fit(
        &self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        head: u64,
        asize: u64,
        budget: &mut u64,
    ) -> Result<Option<(u64, u64)>, AllocError> {
        let mut h = head;
        while h != 0 {
            c.search_steps += 1;
            let (size, alloc) = self.header(m, h)?;
            if alloc || *budget == 0 {
                return Err(corrupt(h, "free list reaches a block that is not free"));
            }
            *budget -= 1;
            if size >= asize {
                return Ok(Some((h, size)));
            }
            h = next(m, h)?;
        }
        Ok(None)
    }

    /// Writes header and footer of a block.
    #[inline]
    pub fn set(&self, m: &mut Mem<'_>, h: u64, size: u64, alloc: bool) -> Result<(), AllocError> {
        let w = size | if alloc { ALLOC } else { 0 };
        m.store(h, w)?;
        m.store(h + size - 8, w)?;
        Ok(())
    }

    /// Allocates `asize` bytes of the free block `h` of `size` bytes, splitting off the
    /// rest as a free block if it is big enough. Returns the remainder's header, if any.
    pub fn place(
        &self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        h: u64,
        size: u64,
        asize: u64,
    ) -> Result<Option<(u64, u64)>, AllocError> {
        if size - asize >= MIN_BLOCK {
            self.set(m, h, asize, true)?;
            self.set(m, h + asize, size - asize, false)?;
            c.splits += 1;
            Ok(Some((h + asize, size - asize)))
        } else {
            self.set(m, h, size, true)?;
            Ok(None)
        }
    }

    /// Grows the heap so that a free block of at least `asize` bytes ends it. If the last
    /// block is free it is extended; otherwise a new block replaces the epilogue.
    /// Returns (header, size, whether the old last free block was absorbed).
    pub fn extend(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        asize: u64,
    ) -> Result<(u64, u64, bool), AllocError> {
        let (last_size, last_alloc) = self.tag(m, self.epilogue - 8)?;
        let absorb = !last_alloc && last_size >= MIN_BLOCK;
        let (h, have) = if absorb {
            (self.epilogue - last_size, last_size)
        } else {
            (self.epilogue, 0)
        };
        let grow = asize
            .checked_sub(have)
            .ok_or_else(|| corrupt(h, "a free block at the top that fits was not found"))?;
        let new_epilogue = self
            .epilogue
            .checked_add(grow)
            .ok_or(AllocError::TooLarge(asize))?;
        move_break(m, c, new_epilogue + 8, grow)?;
        self.epilogue = new_epilogue;
        m.store(self.epilogue, ALLOC)?;
        self.set(m, h, asize, false)?;
        Ok((h, asize, absorb))
    }

    /// Merges the free block `h` (already marked free) with free neighbours. Returns the
    /// merged block and the neighbours that were absorbed (so list-keeping allocators
    /// can unlink them).
    pub fn coalesce(
        &self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        h: u64,
        size: u64,
    ) -> Result<Merged, AllocError> {
        let (psize, palloc) = self.tag(m, h - 8)?;
        let (nsize, nalloc) = self.header(m, h + size)?;
        let mut out = Merged {
            h,
            size,
            prev: None,
            next: None,
        };
        if !palloc {
            if psize < MIN_BLOCK || psize > h - self.first {
                return Err(corrupt(h - 8, "footer with an impossible size"));
            }
            out.prev = Some(h - psize);
            out.h = h - psize;
            out.size += psize;
        }
        if !nalloc {
            out.next = Some(h + size);
            out.size += nsize;
        }
        if out.prev.is_some() || out.next.is_some() {
            c.coalesces += 1;
            self.set(m, out.h, out.size, false)?;
        }
        Ok(out)
    }

    /// If the free block `h` of `size` bytes ends the heap and is at least `threshold`
    /// bytes, gives it back to the kernel by lowering the break. Returns whether it did.
    pub fn trim(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        h: u64,
        size: u64,
        threshold: u64,
    ) -> Result<bool, AllocError> {
        if h + size != self.epilogue || size < threshold {
            return Ok(false);
        }
        move_break(m, c, h + 8, 0)?;
        c.trims += 1;
        self.epilogue = h;
        m.store(h, ALLOC)?;
        Ok(true)
    }
}

/// An allocator over a boundary-tag heap: the implicit, explicit and segregated free
/// lists, which differ only in how they find and keep free blocks. What the block
/// format answers the same way for all of them is here.
pub trait TagAllocator: std::fmt::Debug {
    /// The heap's bounds.
    fn tags(&self) -> &Tags;

    /// Allocates a block of `asize` bytes (a [`block_size`]: a multiple of 16, at least
    /// [`MIN_BLOCK`]). Returns its header and size.
    fn malloc(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        asize: u64,
    ) -> Result<(u64, u64), AllocError>;

    /// Frees the allocated block at `h`, merging it with free neighbours, and gives a
    /// large enough free block at the top back to the kernel ([`Tags::trim`]).
    fn free(&mut self, m: &mut Mem<'_>, c: &mut OpCounters, h: u64) -> Result<(), AllocError>;

    /// Bytes of heap.
    fn heap_bytes(&self) -> u64 {
        self.tags().heap_bytes()
    }

    /// The size of the allocated block at `h`.
    fn block_size(&self, m: &mut Mem<'_>, h: u64) -> Result<u64, AllocError> {
        Ok(self.tags().header(m, h)?.0)
    }

    /// Every block of the heap, in address order: (header, size, allocated). For tests
    /// and reports; costs one load per block.
    fn blocks(&self, m: &mut Mem<'_>) -> Result<Vec<(u64, u64, bool)>, AllocError> {
        let t = self.tags();
        let mut out = Vec::new();
        let mut h = t.first;
        while h != t.epilogue {
            let (size, alloc) = t.header(m, h)?;
            out.push((h, size, alloc));
            h += size;
        }
        Ok(out)
    }
}

/// A block after coalescing, and the free neighbours it absorbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Merged {
    /// Header of the merged block.
    pub h: u64,
    /// Its size.
    pub size: u64,
    /// The free block before it that was absorbed.
    pub prev: Option<u64>,
    /// The free block after it that was absorbed.
    pub next: Option<u64>,
}

/// The `next` link of free block `h`.
#[inline]
pub fn next(m: &mut Mem<'_>, h: u64) -> Result<u64, AllocError> {
    Ok(m.load(h + 8)?)
}

/// Pushes free block `h` on the front of the list at `head`.
pub fn push_front(m: &mut Mem<'_>, head: &mut u64, h: u64) -> Result<(), AllocError> {
    m.store(h + 8, *head)?;
    m.store(h + 16, 0)?;
    if *head != 0 {
        m.store(*head + 16, h)?;
    }
    *head = h;
    Ok(())
}

/// Inserts free block `h` into the address-ordered list at `head`, walking it to find
/// the place (each step is a load).
pub fn insert_by_address(
    m: &mut Mem<'_>,
    c: &mut OpCounters,
    head: &mut u64,
    h: u64,
) -> Result<(), AllocError> {
    if *head == 0 || *head > h {
        return push_front(m, head, h);
    }
    let mut at = *head;
    loop {
        c.search_steps += 1;
        let n = next(m, at)?;
        if n == 0 || n > h {
            m.store(h + 8, n)?;
            m.store(h + 16, at)?;
            m.store(at + 8, h)?;
            if n != 0 {
                m.store(n + 16, h)?;
            }
            return Ok(());
        }
        if n <= at {
            return Err(corrupt(at, "free list out of address order"));
        }
        at = n;
    }
}

/// Takes free block `h` out of the list at `head`.
pub fn unlink(m: &mut Mem<'_>, head: &mut u64, h: u64) -> Result<(), AllocError> {
    let n = m.load(h + 8)?;
    let p = m.load(h + 16)?;
    if p == 0 {
        *head = n;
    } else {
        m.store(p + 8, n)?;
    }
    if n != 0 {
        m.store(n + 16, p)?;
    }
    Ok(())
}
