//! The implicit free list: no list at all. Every block, free or allocated, is found by
//! walking the heap from its first block, header to header, using the sizes in the
//! boundary tags ([`super::tags`]); a free block is merged with free neighbours as
//! soon as it is freed. Three placement policies (Knuth, TAOCP vol. 1 §2.5; Wilson,
//! Johnstone, Neely and Boles, "Dynamic Storage Allocation: A Survey and Critical
//! Review", 1995, §3.4):
//!
//! - **first fit**: the first free block that is big enough, searching from the start;
//! - **next fit**: the same, but resuming where the last search stopped (a "roving
//!   pointer"), which spreads allocations over the heap;
//! - **best fit**: the smallest free block that is big enough (the whole heap is
//!   searched unless an exact fit turns up).
//!
//! Each step of the walk is a load of a header through the MMU, so the cost of a long
//! search over a large heap shows up as accesses, TLB misses and faults.

use super::tags::{TagAllocator, Tags};
use super::{AllocError, OpCounters};
use crate::user::Mem;

/// Which free block the search takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Fit {
    /// The first that fits, from the start of the heap.
    First,
    /// The first that fits, from where the last search ended.
    Next,
    /// The smallest that fits.
    Best,
}

/// An implicit-free-list allocator's state (its globals: the heap bounds and, for next
/// fit, the roving pointer). The blocks themselves are in simulated memory.
#[derive(Clone, Debug)]
pub struct ImplicitList {
    fit: Fit,
    tags: Tags,
    rover: u64,
    trim_threshold: u64,
}

impl ImplicitList {
    /// Sets up an empty heap at the program break.
    pub fn new(
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        fit: Fit,
        trim_threshold: u64,
    ) -> Result<ImplicitList, AllocError> {
        let tags = Tags::init(m, c)?;
        Ok(ImplicitList {
            fit,
            rover: tags.first,
            tags,
            trim_threshold,
        })
    }

    /// Finds a free block of at least `asize` bytes: (header, size).
    fn find(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        asize: u64,
    ) -> Result<Option<(u64, u64)>, AllocError> {
        let t = &self.tags;
        match self.fit {
            Fit::First => {
                let mut h = t.first;
                while h != t.epilogue {
                    c.search_steps += 1;
                    let (size, alloc) = t.header(m, h)?;
                    if !alloc && size >= asize {
                        return Ok(Some((h, size)));
                    }
                    h += size;
                }
                Ok(None)
            }
            Fit::Next => {
                // From the rover to the end, then from the start to the rover.
                let start = if self.rover >= t.epilogue {
                    t.first
                } else {
                    self.rover
                };
                for (from, to) in [(start, t.epilogue), (t.first, start)] {
                    let mut h = from;
                    while h < to {
                        c.search_steps += 1;
                        let (size, alloc) = t.header(m, h)?;
                        if !alloc && size >= asize {
                            self.rover = h;
                            return Ok(Some((h, size)));
                        }
                        h += size;
                    }
                }
                Ok(None)
            }
            Fit::Best => {
                let mut best: Option<(u64, u64)> = None;
                let mut h = t.first;
                while h != t.epilogue {
                    c.search_steps += 1;
                    let (size, alloc) = t.header(m, h)?;
                    if !alloc && size >= asize && best.is_none_or(|(_, b)| size < b) {
                        best = Some((h, size));
                        if size == asize {
                            break;
                        }
                    }
                    h += size;
                }
                Ok(best)
            }
        }
    }
}

impl TagAllocator for ImplicitList {
    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn malloc(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        asize: u64,
    ) -> Result<(u64, u64), AllocError> {
        let (h, size) = match self.find(m, c, asize)? {
            Some(f) => f,
            None => {
                let (h, size, _) = self.tags.extend(m, c, asize)?;
                (h, size)
            }
        };
        self.tags.place(m, c, h, size, asize)?;
        let (size, _) = self.tags.tag(m, h)?;
        if self.fit == Fit::Next {
            self.rover = h;
        }
        Ok((h, size))
    }

    fn free(&mut self, m: &mut Mem<'_>, c: &mut OpCounters, h: u64) -> Result<(), AllocError> {
        let (size, _) = self.tags.header(m, h)?;
        self.tags.set(m, h, size, false)?;
        let merged = self.tags.coalesce(m, c, h, size)?;
        if self.rover > merged.h && self.rover < merged.h + merged.size {
            self.rover = merged.h;
        }
        if self
            .tags
            .trim(m, c, merged.h, merged.size, self.trim_threshold)?
            && self.rover >= self.tags.epilogue
        {
            self.rover = self.tags.first;
        }
        Ok(())
    }
}
