//! Reference counting (Collins, 1960; Jones, Hosking and Moss, *The Garbage Collection
//! Handbook*, ch. 5): every object counts the references to it, in its header's second
//! word. Storing a reference increments the new target's count and decrements the old
//! one's; an object whose count drops to zero is freed at once, and its fields'
//! targets are decremented in turn (a cascade, which is this collector's "pause").
//!
//! There are no collections, and memory is reused as soon as it is garbage, but every
//! pointer store costs two read-modify-writes of counts, and a *cycle* of objects
//! keeps its members' counts above zero forever: unreachable cycles are never
//! reclaimed (a test shows it). Objects live in a non-moving free-list space; freed
//! chunks go on the front of the free list, unmerged.

use super::{
    chunk_size, corrupt, field_addr, header_fields, pause, FreeListSpace, GcError, GcStats,
};
use crate::user::Mem;

/// A reference-counted heap's globals.
#[derive(Clone, Debug)]
pub struct RefCount {
    pub(crate) space: FreeListSpace,
    work: Vec<u64>,
}

impl RefCount {
    /// The range `start..end` as one free chunk.
    pub(crate) fn new(m: &mut Mem<'_>, start: u64, end: u64) -> Result<RefCount, GcError> {
        Ok(RefCount {
            space: FreeListSpace::new(m, start, end)?,
            work: Vec::new(),
        })
    }

    /// A chunk of `size` bytes; with no collector to run, a full heap is an error.
    pub(crate) fn alloc(
        &mut self,
        m: &mut Mem<'_>,
        _st: &mut GcStats,
        size: u64,
    ) -> Result<u64, GcError> {
        self.space
            .alloc(m, size)?
            .ok_or(GcError::OutOfMemory { bytes: size })
    }

    /// One more reference to `p` (null: nothing).
    pub(crate) fn inc(&mut self, m: &mut Mem<'_>, p: u64) -> Result<(), GcError> {
        if p != 0 {
            let c = m.load(p + 8)?;
            let c = c
                .checked_add(1)
                .ok_or_else(|| corrupt(p, "reference count overflows"))?;
            m.store(p + 8, c)?;
        }
        Ok(())
    }

    /// One reference fewer to `p`; frees it, and whatever only it kept, at zero.
    pub(crate) fn dec(&mut self, m: &mut Mem<'_>, st: &mut GcStats, p: u64) -> Result<(), GcError> {
        if p == 0 {
            return Ok(());
        }
        let c = m.load(p + 8)?;
        if c == 0 {
            return Err(corrupt(p, "reference count below zero"));
        }
        if c > 1 {
            return m.store(p + 8, c - 1).map_err(Into::into);
        }
        let mut work = std::mem::take(&mut self.work);
        work.clear();
        work.push(p);
        let space = &mut self.space;
        let r = pause(m, st, |m, st| {
            while let Some(p) = work.pop() {
                let w = m.load(p)?;
                for i in 0..header_fields(w) {
                    let q = m.load(field_addr(p, i))?;
                    if q == 0 {
                        continue;
                    }
                    let c = m.load(q + 8)?;
                    match c {
                        0 => return Err(corrupt(q, "reference count below zero")),
                        1 => work.push(q),
                        _ => m.store(q + 8, c - 1)?,
                    }
                }
                let size = chunk_size(w);
                space.free(m, p, size)?;
                st.objects_reclaimed += 1;
                st.bytes_reclaimed += size;
            }
            Ok(())
        });
        self.work = work;
        r
    }
}
