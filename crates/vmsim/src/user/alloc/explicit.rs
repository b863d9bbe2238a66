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

use super::lists::FreeLists;
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

/// An explicit-free-list allocator's globals: the heap bounds and the list head (one
/// list of [`FreeLists`]).
pub type ExplicitList = FreeLists<1>;

impl ExplicitList {
    /// Sets up an empty heap at the program break.
    pub fn new(
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        order: Order,
        trim_threshold: u64,
    ) -> Result<ExplicitList, AllocError> {
        FreeLists::init(m, c, order, trim_threshold)
    }
}
