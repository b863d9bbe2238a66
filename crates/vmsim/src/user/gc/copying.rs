//! Semispace copying collection with Cheney's breadth-first scan (Fenichel and
//! Yochelson, 1969; Cheney, "A Nonrecursive List Compacting Algorithm", CACM 1970;
//! Jones, Hosking and Moss, *The Garbage Collection Handbook*, ch. 4): the heap is two
//! halves; allocation bumps through one (from-space). When it is full, every object
//! reachable from the roots is copied into the other half (to-space): the roots'
//! targets first, then the objects their fields reach, found by scanning the copies
//! left to right; the scan pointer chasing the allocation pointer is the whole work
//! list. A copied object leaves a forwarding address in its old header so later
//! references find the copy. Then the halves swap roles.
//!
//! The cost is proportional to the live data, not the heap, and the survivors end up
//! packed; the price is half the heap held in reserve, and every survivor copied at
//! every collection.

use super::{
    chunk_size, corrupt, field_addr, header_fields, pause, BumpSpace, GcError, GcStats, Tracing,
    FORWARDED,
};
use crate::user::Mem;

/// A semispace heap's globals: the two halves (allocation in `from`).
#[derive(Clone, Debug)]
pub struct Copying {
    pub(crate) from: BumpSpace,
    to: BumpSpace,
    /// Objects allocated in from-space since the last collection (a host counter).
    objects: u64,
}

impl Copying {
    /// Two halves of `start..end`.
    pub(crate) fn new(start: u64, end: u64) -> Copying {
        let mid = start + (end - start) / 2;
        Copying {
            from: BumpSpace::new(start, mid),
            to: BumpSpace::new(mid, end),
            objects: 0,
        }
    }
}

impl Tracing for Copying {
    /// `size` bytes from from-space, if they fit.
    fn try_alloc(&mut self, _m: &mut Mem<'_>, size: u64) -> Result<Option<u64>, GcError> {
        let p = self.from.bump(size);
        if p.is_some() {
            self.objects += 1;
        }
        Ok(p)
    }

    /// Copies the live objects to the other half and swaps.
    fn collect(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError> {
        let from = self.from;
        let mut to = BumpSpace::new(self.to.start, self.to.end);
        let copied = pause(m, st, |m, st| {
            let copied = cheney(m, roots, &mut to, |p| from.contains(p), st)?;
            st.collections += 1;
            st.major_collections += 1;
            Ok(copied)
        })?;
        st.objects_reclaimed += self.objects.saturating_sub(copied.0);
        st.bytes_reclaimed += from.used_bytes().saturating_sub(copied.1);
        self.objects = copied.0;
        self.to = BumpSpace::new(from.start, from.end);
        self.from = to;
        Ok(())
    }
}

/// Copies the object at `p` (if not copied already) to the top of `to`, leaving a
/// forwarding address; returns the copy's address.
pub(crate) fn forward(
    m: &mut Mem<'_>,
    p: u64,
    to: &mut BumpSpace,
    st: &mut GcStats,
    copied: &mut (u64, u64),
) -> Result<u64, GcError> {
    let w = m.load(p)?;
    if w & FORWARDED != 0 {
        let new = m.load(p + 8)?;
        if new < to.start || new >= to.top {
            return Err(corrupt(p, "forwarding address outside the copies"));
        }
        return Ok(new);
    }
    let size = chunk_size(w);
    let new = to
        .bump(size)
        .ok_or_else(|| corrupt(p, "survivors overflow the space they are copied to"))?;
    m.copy(new, p, size)?;
    m.store(p, w | FORWARDED)?;
    m.store(p + 8, new)?;
    st.objects_moved += 1;
    st.bytes_moved += size;
    copied.0 += 1;
    copied.1 += size;
    Ok(new)
}

/// Cheney's algorithm: forwards the roots' targets for which `condemned` holds into
/// `to` (from its top), then scans the copies, forwarding what their fields reach.
/// Returns (objects, bytes) copied.
pub(crate) fn cheney(
    m: &mut Mem<'_>,
    roots: &mut [u64],
    to: &mut BumpSpace,
    condemned: impl Fn(u64) -> bool,
    st: &mut GcStats,
) -> Result<(u64, u64), GcError> {
    let mut copied = (0, 0);
    let mut scan = to.top;
    forward_roots(m, roots, to, &condemned, st, &mut copied)?;
    scan_from(m, &mut scan, to, &condemned, st, &mut copied)?;
    Ok(copied)
}

/// Forwards the condemned targets of `roots` into `to`, updating the roots.
pub(crate) fn forward_roots(
    m: &mut Mem<'_>,
    roots: &mut [u64],
    to: &mut BumpSpace,
    condemned: &impl Fn(u64) -> bool,
    st: &mut GcStats,
    copied: &mut (u64, u64),
) -> Result<(), GcError> {
    for r in roots.iter_mut() {
        if *r != 0 && condemned(*r) {
            *r = forward(m, *r, to, st, copied)?;
        }
    }
    Ok(())
}

/// Forwards the condemned targets of the fields of the object at `p` (header word `w`)
/// into `to`, updating the fields.
pub(crate) fn forward_fields(
    m: &mut Mem<'_>,
    p: u64,
    w: u64,
    to: &mut BumpSpace,
    condemned: &impl Fn(u64) -> bool,
    st: &mut GcStats,
    copied: &mut (u64, u64),
) -> Result<(), GcError> {
    for i in 0..header_fields(w) {
        let a = field_addr(p, i);
        let v = m.load(a)?;
        if v != 0 && condemned(v) {
            let new = forward(m, v, to, st, copied)?;
            m.store(a, new)?;
        }
    }
    Ok(())
}

/// The scan loop: forwards the condemned targets of every field of the objects from
/// `scan` to the top of `to`, until the scan catches up.
pub(crate) fn scan_from(
    m: &mut Mem<'_>,
    scan: &mut u64,
    to: &mut BumpSpace,
    condemned: &impl Fn(u64) -> bool,
    st: &mut GcStats,
    copied: &mut (u64, u64),
) -> Result<(), GcError> {
    while *scan < to.top {
        let w = m.load(*scan)?;
        forward_fields(m, *scan, w, to, condemned, st, copied)?;
        *scan += chunk_size(w);
    }
    Ok(())
}
