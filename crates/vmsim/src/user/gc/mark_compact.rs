//! Mark-compact with the Lisp 2 sliding algorithm (Knuth, TAOCP vol. 1 §2.3.5; Jones,
//! Hosking and Moss, *The Garbage Collection Handbook*, ch. 3): allocation bumps a
//! pointer through one contiguous space; when it reaches the end, mark from the roots,
//! then make three passes over the space in address order:
//!
//! 1. give each marked object its new address (the running total of the live bytes
//!    before it), stored in its header's second word;
//! 2. rewrite every root and every field of a live object to its target's new address;
//! 3. slide each live object down to its new address, clearing its mark.
//!
//! Live objects keep their order and end up packed at the bottom, so the free space is
//! one block again and allocation stays a bump; the price is three passes over the
//! whole space and a word per object for the forwarding address.

use super::{
    field_addr, header_fields, major_collection, walk_size, BumpSpace, GcError, GcStats, Tracing,
    BAD_OBJECT_SIZE, MARK, REMEMBERED,
};
use crate::user::Mem;

/// A mark-compact heap's globals.
#[derive(Clone, Debug)]
pub struct MarkCompact {
    pub(crate) space: BumpSpace,
    stack: Vec<u64>,
}

impl MarkCompact {
    /// An empty space over `start..end`.
    pub(crate) fn new(start: u64, end: u64) -> MarkCompact {
        MarkCompact {
            space: BumpSpace::new(start, end),
            stack: Vec::new(),
        }
    }
}

impl Tracing for MarkCompact {
    /// `size` bytes from the top of the space, if they fit.
    fn try_alloc(&mut self, _m: &mut Mem<'_>, size: u64) -> Result<Option<u64>, GcError> {
        Ok(self.space.bump(size))
    }

    /// Marks and compacts.
    fn collect(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError> {
        let space = &mut self.space;
        major_collection(m, roots, &mut self.stack, st, |m, roots, st| {
            compact(m, space, roots, None, st)
        })
    }
}

/// Pointer holders outside the compacted space (a generational nursery): their marked
/// objects' fields into the space are updated too, and old objects left pointing into
/// the nursery are collected in `remembered`.
pub(crate) struct Outside<'a> {
    /// The other space.
    pub space: BumpSpace,
    /// The remembered set to rebuild (new addresses of old objects that point into
    /// `space`).
    pub remembered: &'a mut Vec<u64>,
}

/// The three Lisp 2 passes over `space`, whose live objects are already marked.
/// Updates `roots`; clears the marks of the space's objects.
pub(crate) fn compact(
    m: &mut Mem<'_>,
    space: &mut BumpSpace,
    roots: &mut [u64],
    mut outside: Option<Outside<'_>>,
    st: &mut GcStats,
) -> Result<(), GcError> {
    // 1. New addresses.
    let mut free = space.start;
    let mut p = space.start;
    while p < space.top {
        let w = m.load(p)?;
        let size = walk_size(p, w, space.top, BAD_OBJECT_SIZE)?;
        if w & MARK != 0 {
            m.store(p + 8, free)?;
            free += size;
        } else {
            st.objects_reclaimed += 1;
            st.bytes_reclaimed += size;
        }
        p += size;
    }
    // 2. Update references.
    let inside = *space;
    for r in roots.iter_mut() {
        if inside.start <= *r && *r < inside.top {
            *r = m.load(*r + 8)?;
        }
    }
    let young_space = outside.as_ref().map(|o| o.space);
    let update_fields = |m: &mut Mem<'_>, p: u64, w: u64| -> Result<bool, GcError> {
        let mut young = false;
        for i in 0..header_fields(w) {
            let a = field_addr(p, i);
            let v = m.load(a)?;
            if inside.start <= v && v < inside.top {
                let new = m.load(v + 8)?;
                m.store(a, new)?;
            } else if let Some(y) = &young_space {
                young |= y.contains(v);
            }
        }
        Ok(young)
    };
    let mut p = space.start;
    while p < space.top {
        let w = m.load(p)?;
        let size = walk_size(p, w, space.top, BAD_OBJECT_SIZE)?;
        if w & MARK != 0 {
            let young = update_fields(m, p, w)?;
            if let Some(o) = outside.as_mut() {
                // Keep the remembered bit and the set in step with the new layout.
                let want = if young {
                    w | REMEMBERED
                } else {
                    w & !REMEMBERED
                };
                if want != w {
                    m.store(p, want)?;
                }
                if young {
                    o.remembered.push(m.load(p + 8)?);
                }
            }
        }
        p += size;
    }
    if let Some(o) = &outside {
        let mut p = o.space.start;
        while p < o.space.top {
            let w = m.load(p)?;
            let size = walk_size(p, w, o.space.top, BAD_OBJECT_SIZE)?;
            if w & MARK != 0 {
                update_fields(m, p, w)?;
                m.store(p, w & !MARK)?;
            }
            p += size;
        }
    }
    // 3. Slide.
    let mut p = space.start;
    while p < space.top {
        let w = m.load(p)?;
        let size = walk_size(p, w, space.top, BAD_OBJECT_SIZE)?;
        if w & MARK != 0 {
            let to = m.load(p + 8)?;
            if to != p {
                m.copy(to, p, size)?;
                st.objects_moved += 1;
                st.bytes_moved += size;
            }
            m.store(to, w & !MARK)?;
        }
        p += size;
    }
    space.top = free;
    Ok(())
}
