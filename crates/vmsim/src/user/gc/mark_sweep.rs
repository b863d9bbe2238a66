//! Mark-sweep (McCarthy, 1960; Jones, Hosking and Moss, *The Garbage Collection
//! Handbook*, ch. 2): when an allocation finds no free chunk big enough, mark every
//! object reachable from the roots (setting a bit in its header), then sweep the whole
//! heap in address order, turning every unmarked object into free space, merging
//! neighbouring free chunks and clearing the marks. Objects never move, so the heap
//! can fragment; the sweep touches every page of the heap, live or not.

use super::{major_collection, FreeListSpace, GcError, GcStats, Tracing};
use crate::user::Mem;

/// A mark-sweep heap's globals.
#[derive(Clone, Debug)]
pub struct MarkSweep {
    pub(crate) space: FreeListSpace,
    stack: Vec<u64>,
}

impl MarkSweep {
    /// The range `start..end` as one free chunk.
    pub(crate) fn new(m: &mut Mem<'_>, start: u64, end: u64) -> Result<MarkSweep, GcError> {
        Ok(MarkSweep {
            space: FreeListSpace::new(m, start, end)?,
            stack: Vec::new(),
        })
    }
}

impl Tracing for MarkSweep {
    /// A chunk of `size` bytes from the free list, if one is big enough.
    fn try_alloc(&mut self, m: &mut Mem<'_>, size: u64) -> Result<Option<u64>, GcError> {
        self.space.alloc(m, size)
    }

    /// Marks from the roots and sweeps.
    fn collect(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError> {
        let space = &mut self.space;
        major_collection(m, roots, &mut self.stack, st, |m, _, st| {
            let (objects, bytes) = space.sweep(m)?;
            st.objects_reclaimed += objects;
            st.bytes_reclaimed += bytes;
            Ok(())
        })
    }
}
