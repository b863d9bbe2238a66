//! Mark-sweep (McCarthy, 1960; Jones, Hosking and Moss, *The Garbage Collection
//! Handbook*, ch. 2): when an allocation finds no free chunk big enough, mark every
//! object reachable from the roots (setting a bit in its header), then sweep the whole
//! heap in address order, turning every unmarked object into free space, merging
//! neighbouring free chunks and clearing the marks. Objects never move, so the heap
//! can fragment; the sweep touches every page of the heap, live or not.

use super::{mark, pause, FreeListSpace, GcError, GcStats};
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

    /// A chunk of `size` bytes, collecting if there is none.
    pub(crate) fn alloc(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
        size: u64,
    ) -> Result<u64, GcError> {
        if let Some(p) = self.space.alloc(m, size)? {
            return Ok(p);
        }
        self.collect(m, roots, st)?;
        self.space
            .alloc(m, size)?
            .ok_or(GcError::OutOfMemory { bytes: size })
    }

    /// Marks from the roots and sweeps.
    pub(crate) fn collect(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError> {
        let (space, stack) = (&mut self.space, &mut self.stack);
        pause(m, st, |m, st| {
            mark(m, roots, stack)?;
            let (objects, bytes) = space.sweep(m)?;
            st.collections += 1;
            st.major_collections += 1;
            st.objects_reclaimed += objects;
            st.bytes_reclaimed += bytes;
            Ok(())
        })
    }
}
