//! The binary buddy system (Knowlton 1965; Knuth, TAOCP vol. 1 §2.5, Algorithms R and
//! S): the heap is a row of top-level blocks of `2^top` bytes, each split in halves on
//! demand, so every block is a power of two in size and sits at a multiple of its size
//! from the heap's base. A block's *buddy* (the other half of its parent) is found by
//! flipping one bit of its offset, so merging on free needs no search: if the buddy is
//! free and whole, the two become their parent, and so on up.
//!
//! Block format (in simulated memory): a 16-byte header whose first word is the order
//! with an allocated bit, the payload after it. A free block also holds `next` and
//! `prev` links of its order's free list in its second and third words. Requests round
//! up to a power of two (internal fragmentation up to half a block, the price of the
//! cheap merge); requests bigger than a top-level block are not the buddy heap's (the
//! [`super::Heap`] maps them). Top-level blocks come from `brk`; when the last one is
//! wholly free again it is given back by lowering the break.

use super::{move_break, program_break, AllocError, OpCounters};
use crate::addr::VirtAddr;
use crate::user::Mem;

/// Bytes before the payload.
pub const HEADER: u64 = 16;
/// The smallest block's order (32 bytes: header and two links).
pub const MIN_ORDER: u32 = 5;
const ALLOC: u64 = 1 << 8;
const ORDER_MASK: u64 = 0xff;

/// A buddy allocator's globals: the heap's base and end, and a free-list head per
/// order.
#[derive(Clone, Debug)]
pub struct BuddyHeap {
    base: u64,
    end: u64,
    top: u32,
    heads: [u64; 64],
}

impl BuddyHeap {
    /// An empty buddy heap at the program break, with top-level blocks of `2^top` bytes
    /// (`top` is clamped to `MIN_ORDER..=40`).
    pub fn new(m: &mut Mem<'_>, top: u32) -> Result<BuddyHeap, AllocError> {
        let brk = program_break(m)?;
        let base = (brk + 15) & !15;
        Ok(BuddyHeap {
            base,
            end: base,
            top: top.clamp(MIN_ORDER, 40),
            heads: [0; 64],
        })
    }

    /// Bytes of heap.
    pub fn heap_bytes(&self) -> u64 {
        self.end - self.base
    }

    /// The largest request a block can hold.
    pub fn max_request(&self) -> u64 {
        (1u64 << self.top) - HEADER
    }

    /// The order of the block that holds `size` bytes, if one can.
    pub fn order_for(&self, size: u64) -> Option<u32> {
        let need = size.checked_add(HEADER)?.max(1 << MIN_ORDER);
        let order = need.checked_next_power_of_two()?.ilog2();
        (order <= self.top).then_some(order)
    }

    fn push(&mut self, m: &mut Mem<'_>, b: u64, order: u32) -> Result<(), AllocError> {
        let head = self.heads[order as usize];
        m.store(b, order as u64)?;
        m.store(b + 8, head)?;
        m.store(b + 16, 0)?;
        if head != 0 {
            m.store(head + 16, b)?;
        }
        self.heads[order as usize] = b;
        Ok(())
    }

    fn unlink(&mut self, m: &mut Mem<'_>, b: u64, order: u32) -> Result<(), AllocError> {
        let n = m.load(b + 8)?;
        let p = m.load(b + 16)?;
        if p == 0 {
            self.heads[order as usize] = n;
        } else {
            m.store(p + 8, n)?;
        }
        if n != 0 {
            m.store(n + 16, p)?;
        }
        Ok(())
    }

    /// Allocates a block of order `order`. Returns its address and size.
    pub fn malloc(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        order: u32,
    ) -> Result<(u64, u64), AllocError> {
        let mut j = order;
        while j <= self.top && self.heads[j as usize] == 0 {
            c.search_steps += 1;
            j += 1;
        }
        let b = if j <= self.top {
            let b = self.heads[j as usize];
            self.unlink(m, b, j)?;
            b
        } else {
            // A new top-level block from the kernel.
            j = self.top;
            let b = self.end;
            let new_end = b
                .checked_add(1 << self.top)
                .ok_or(AllocError::TooLarge(1 << self.top))?;
            move_break(m, c, new_end, 1 << self.top)?;
            self.end = new_end;
            b
        };
        while j > order {
            j -= 1;
            self.push(m, b + (1 << j), j)?;
            c.splits += 1;
        }
        m.store(b, order as u64 | ALLOC)?;
        Ok((b, 1 << order))
    }

    /// The order of the allocated block at `b`, checking its header.
    pub fn order_of(&self, m: &mut Mem<'_>, b: u64) -> Result<u32, AllocError> {
        let w = m.load(b)?;
        let order = (w & ORDER_MASK) as u32;
        if w & ALLOC == 0 || !(MIN_ORDER..=self.top).contains(&order) {
            return Err(AllocError::Corrupt {
                addr: VirtAddr(b),
                what: "buddy block header is not an allocated block's",
            });
        }
        Ok(order)
    }

    /// Frees the block at `b`, merging it with its buddy as far up as it goes, and
    /// gives wholly free top-level blocks at the end of the heap back to the kernel.
    pub fn free(&mut self, m: &mut Mem<'_>, c: &mut OpCounters, b: u64) -> Result<(), AllocError> {
        let mut order = self.order_of(m, b)?;
        let mut b = b;
        while order < self.top {
            let buddy = self.base + ((b - self.base) ^ (1 << order));
            if buddy >= self.end {
                break;
            }
            if m.load(buddy)? != order as u64 {
                break;
            }
            self.unlink(m, buddy, order)?;
            b = b.min(buddy);
            order += 1;
            c.coalesces += 1;
        }
        self.push(m, b, order)?;
        // Give back whole free top-level blocks at the end.
        let size = 1u64 << self.top;
        let mut trimmed = false;
        while self.end > self.base {
            let last = self.end - size;
            if m.load(last)? != self.top as u64 {
                break;
            }
            self.unlink(m, last, self.top)?;
            self.end = last;
            trimmed = true;
        }
        if trimmed {
            move_break(m, c, self.end, 0)?;
            c.trims += 1;
        }
        Ok(())
    }

    /// Every block of the heap, in address order: (address, size, allocated).
    pub fn blocks(&self, m: &mut Mem<'_>) -> Result<Vec<(u64, u64, bool)>, AllocError> {
        let mut out = Vec::new();
        let mut b = self.base;
        while b < self.end {
            let w = m.load(b)?;
            let order = (w & ORDER_MASK) as u32;
            if !(MIN_ORDER..=self.top).contains(&order) {
                return Err(AllocError::Corrupt {
                    addr: VirtAddr(b),
                    what: "buddy block header with an impossible order",
                });
            }
            out.push((b, 1 << order, w & ALLOC != 0));
            b += 1 << order;
        }
        Ok(out)
    }
}
