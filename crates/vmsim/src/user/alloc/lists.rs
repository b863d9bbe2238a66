//! Explicit free lists in a boundary-tag heap ([`super::tags`]): the free blocks are
//! chained through links in their own payloads, and a search visits only free blocks.
//! The explicit free list ([`super::explicit`]) is one such list; segregated fits
//! ([`super::segregated`]) is one per size class. Everything else is the same for both
//! and is here: a request searches first fit from its own class up (with one list,
//! that list); the block found comes off its list and the remainder of a split goes on
//! the list of its size; a freed block is merged with free neighbours, which come off
//! their lists, and then either given back to the kernel (a large block at the top) or
//! put on its list.

use super::explicit::Order;
use super::segregated::class_of;
use super::tags::{self, TagAllocator, Tags};
use super::{AllocError, OpCounters};
use crate::user::Mem;

/// A boundary-tag heap with its free blocks on `N` explicit lists, by size class
/// ([`class_of`], the last class taking all larger blocks): the allocator's globals,
/// the heap bounds and a list head per class.
#[derive(Clone, Debug)]
pub struct FreeLists<const N: usize> {
    order: Order,
    tags: Tags,
    heads: [u64; N],
    trim_threshold: u64,
}

impl<const N: usize> FreeLists<N> {
    /// Sets up an empty heap at the program break; freed blocks go on their lists in
    /// `order`.
    pub(crate) fn init(
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        order: Order,
        trim_threshold: u64,
    ) -> Result<FreeLists<N>, AllocError> {
        Ok(FreeLists {
            order,
            tags: Tags::init(m, c)?,
            heads: [0; N],
            trim_threshold,
        })
    }

    /// The list of a block of `size` bytes.
    fn class(size: u64) -> usize {
        class_of(size).min(N - 1)
    }

    /// The sizes of the blocks before and after the block `h` of `size` bytes, to find
    /// their lists before a merge rewrites them. With one list there is nothing to find
    /// and nothing is read.
    fn neighbour_sizes(
        &self,
        m: &mut Mem<'_>,
        h: u64,
        size: u64,
    ) -> Result<(u64, u64), AllocError> {
        if N == 1 {
            return Ok((0, 0));
        }
        let (psize, _) = self.tags.tag(m, h - 8)?;
        let (nsize, _) = self.tags.header(m, h + size)?;
        Ok((psize, nsize))
    }

    /// Takes the free block `h` of `size` bytes off its list.
    fn remove(&mut self, m: &mut Mem<'_>, h: u64, size: u64) -> Result<(), AllocError> {
        tags::unlink(m, &mut self.heads[Self::class(size)], h)
    }

    /// Puts the free block `h` of `size` bytes on its list.
    fn insert(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        h: u64,
        size: u64,
    ) -> Result<(), AllocError> {
        let head = &mut self.heads[Self::class(size)];
        match self.order {
            Order::Lifo => tags::push_front(m, head, h),
            Order::Address => tags::insert_by_address(m, c, head, h),
        }
    }
}

impl<const N: usize> TagAllocator for FreeLists<N> {
    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn malloc(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        asize: u64,
    ) -> Result<(u64, u64), AllocError> {
        // Its own class first, then each larger one; one budget for the whole search.
        let mut found = None;
        let mut budget = self.tags.list_budget();
        for k in Self::class(asize)..N {
            found = self
                .tags
                .first_fit(m, c, self.heads[k], asize, &mut budget)?;
            if found.is_some() {
                break;
            }
        }
        let (h, size) = match found {
            Some((h, size)) => {
                self.remove(m, h, size)?;
                (h, size)
            }
            None => {
                // The last block's size, to find its list if it is free and absorbed.
                let (last, _) = if N == 1 {
                    (0, false)
                } else {
                    self.tags.tag(m, self.tags.epilogue - 8)?
                };
                let (h, size, absorbed) = self.tags.extend(m, c, asize)?;
                if absorbed {
                    // The old last block was on a list; it is now the start of `h`.
                    self.remove(m, h, last)?;
                }
                (h, size)
            }
        };
        if let Some((rest, rsize)) = self.tags.place(m, c, h, size, asize)? {
            self.insert(m, c, rest, rsize)?;
        }
        let (size, _) = self.tags.tag(m, h)?;
        Ok((h, size))
    }

    fn free(&mut self, m: &mut Mem<'_>, c: &mut OpCounters, h: u64) -> Result<(), AllocError> {
        let (size, _) = self.tags.header(m, h)?;
        let (psize, nsize) = self.neighbour_sizes(m, h, size)?;
        self.tags.set(m, h, size, false)?;
        let merged = self.tags.coalesce(m, c, h, size)?;
        if let Some(p) = merged.prev {
            self.remove(m, p, psize)?;
        }
        if let Some(n) = merged.next {
            self.remove(m, n, nsize)?;
        }
        if !self
            .tags
            .trim(m, c, merged.h, merged.size, self.trim_threshold)?
        {
            self.insert(m, c, merged.h, merged.size)?;
        }
        Ok(())
    }
}
