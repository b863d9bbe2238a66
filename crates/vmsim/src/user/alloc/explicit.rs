//! The explicit free list: the free blocks are chained through links kept in their
//! own payloads (a free block is not in use, so its first words are free to hold a
//! `next` and a `prev` pointer), and a search visits only free blocks. Blocks carry
//! boundary tags ([`super::tags`]) and are merged with free neighbours on `free`.
//! Two orders of the list (Wilson et al. 1995, §3.4 and §4.2):
//!
//! - **LIFO**: a freed block goes on the front, so `free` is constant-time and
//!   recently freed (likely cached and resident) memory is reused first;
//! - **address-ordered**: the list is kept sorted by address, so first fit behaves
//!   like best fit in practice and fragments less, at the cost of a walk on `free`.
//!
//! Both search the list first-fit.

use super::tags::{self, TagAllocator, Tags};
use super::{AllocError, OpCounters};
use crate::user::Mem;

/// How freed blocks are put on the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Order {
    /// On the front.
    Lifo,
    /// In address order.
    Address,
}

/// An explicit-free-list allocator's globals: the heap bounds and the list head.
#[derive(Clone, Debug)]
pub struct ExplicitList {
    order: Order,
    tags: Tags,
    head: u64,
    trim_threshold: u64,
}

impl ExplicitList {
    /// Sets up an empty heap at the program break.
    pub fn new(
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        order: Order,
        trim_threshold: u64,
    ) -> Result<ExplicitList, AllocError> {
        Ok(ExplicitList {
            order,
            tags: Tags::init(m, c)?,
            head: 0,
            trim_threshold,
        })
    }

    fn insert(&mut self, m: &mut Mem<'_>, c: &mut OpCounters, h: u64) -> Result<(), AllocError> {
        match self.order {
            Order::Lifo => tags::push_front(m, &mut self.head, h),
            Order::Address => tags::insert_by_address(m, c, &mut self.head, h),
        }
    }
}

impl TagAllocator for ExplicitList {
    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn malloc(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        asize: u64,
    ) -> Result<(u64, u64), AllocError> {
        let mut budget = self.tags.list_budget();
        let found = self.tags.first_fit(m, c, self.head, asize, &mut budget)?;
        let (h, size) = match found {
            Some(f) => {
                tags::unlink(m, &mut self.head, f.0)?;
                f
            }
            None => {
                let (h, size, absorbed) = self.tags.extend(m, c, asize)?;
                if absorbed {
                    // The old last block was on the list; it is now the start of `h`.
                    tags::unlink(m, &mut self.head, h)?;
                }
                (h, size)
            }
        };
        if let Some((rest, _)) = self.tags.place(m, c, h, size, asize)? {
            self.insert(m, c, rest)?;
        }
        let (size, _) = self.tags.tag(m, h)?;
        Ok((h, size))
    }

    fn free(&mut self, m: &mut Mem<'_>, c: &mut OpCounters, h: u64) -> Result<(), AllocError> {
        let (size, _) = self.tags.header(m, h)?;
        self.tags.set(m, h, size, false)?;
        let merged = self.tags.coalesce(m, c, h, size)?;
        for n in [merged.prev, merged.next].into_iter().flatten() {
            tags::unlink(m, &mut self.head, n)?;
        }
        if !self
            .tags
            .trim(m, c, merged.h, merged.size, self.trim_threshold)?
        {
            self.insert(m, c, merged.h)?;
        }
        Ok(())
    }
}
