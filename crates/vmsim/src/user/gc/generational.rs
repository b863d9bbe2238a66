//! Generational collection (Lieberman and Hewitt, 1983; Ungar, "Generation
//! Scavenging", 1984; Jones, Hosking and Moss, *The Garbage Collection Handbook*,
//! ch. 9): most objects die young, so new objects go in a small nursery that is
//! collected often, by copying, at a cost proportional to its few survivors.
//!
//! - **Nursery**: bump allocation. A *minor* collection copies the nursery's live
//!   objects Cheney-style straight into the old generation (every survivor is promoted
//!   at once: no aging) and empties the nursery.
//! - **Old generation**: bump allocation of promoted objects, collected by mark-compact
//!   ([`super::mark_compact`]) in a *major* collection when it cannot hold the next
//!   promotion. Objects too big for the nursery are allocated there directly.
//! - **Write barrier and remembered set**: a minor collection looks only at the
//!   nursery, so pointers from old objects into the nursery must be found without
//!   scanning the old generation. Every pointer store checks (host-side: an address
//!   comparison) whether an old object now points into the nursery; if so and the
//!   object is not yet remembered (a header bit, one load), the bit is set and the
//!   object goes in the remembered set, whose objects' fields are roots of the next
//!   minor collection. Remembered objects are scanned whole (object-granularity
//!   remembering, not card marking).
//!
//! Promotion cannot fail halfway: a minor collection first makes sure the old
//! generation could take the whole nursery, running a major collection if not, and
//! reports out of memory if even that leaves too little room.
//!
//! A minor collection treats remembered old objects as live even if they are garbage
//! (they die at the next major collection), so some dead young objects are promoted:
//! the usual price of collecting part of the heap.

use super::copying::{forward_fields, forward_roots, scan_from};
use super::mark_compact::{compact, Outside};
use super::{alloc_or_collect, major_collection, pause, BumpSpace, GcError, GcStats, REMEMBERED};
use crate::user::Mem;

/// A generational heap's globals.
#[derive(Clone, Debug)]
pub struct Generational {
    pub(crate) nursery: BumpSpace,
    pub(crate) old: BumpSpace,
    remembered: Vec<u64>,
    stack: Vec<u64>,
    /// Objects allocated in the nursery since the last minor collection.
    young_objects: u64,
}

impl Generational {
    /// A nursery of `young` bytes at the top of `start..end`, the old generation below.
    pub(crate) fn new(start: u64, end: u64, young: u64) -> Generational {
        Generational {
            nursery: BumpSpace::new(end - young, end),
            old: BumpSpace::new(start, end - young),
            remembered: Vec::new(),
            stack: Vec::new(),
            young_objects: 0,
        }
    }

    /// `size` bytes in the nursery (or the old generation if it is too big),
    /// collecting first if needed.
    pub(crate) fn alloc(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
        size: u64,
    ) -> Result<u64, GcError> {
        let capacity = self.nursery.end - self.nursery.start;
        if size > capacity / 2 {
            return alloc_or_collect(
                self,
                m,
                size,
                |g, _| Ok(g.old.bump(size)),
                |g, m| g.collect_full(m, roots, st),
            );
        }
        // The nursery's bump fails exactly when it has too little room left, which is
        // when a minor collection is due.
        alloc_or_collect(
            self,
            m,
            size,
            |g, _| {
                let p = g.nursery.bump(size);
                if p.is_some() {
                    g.young_objects += 1;
                }
                Ok(p)
            },
            |g, m| g.minor(m, roots, st),
        )
    }

    /// The write barrier, after `p`'s field was set to `v`.
    #[inline]
    pub(crate) fn barrier(
        &mut self,
        m: &mut Mem<'_>,
        st: &mut GcStats,
        p: u64,
        v: u64,
    ) -> Result<(), GcError> {
        if self.old.contains(p) && self.nursery.contains(v) {
            let w = m.load(p)?;
            if w & REMEMBERED == 0 {
                m.store(p, w | REMEMBERED)?;
                self.remembered.push(p);
                st.barrier_records += 1;
            }
        }
        Ok(())
    }

    /// A minor collection: promotes the nursery's live objects (those reachable from
    /// the roots and the remembered set) into the old generation. Runs a major
    /// collection first if the old generation might not hold them all.
    pub(crate) fn minor(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError> {
        if self.old.free_bytes() < self.nursery.used_bytes() {
            self.major(m, roots, st)?;
            if self.old.free_bytes() < self.nursery.used_bytes() {
                return Err(GcError::OutOfMemory {
                    bytes: self.nursery.used_bytes(),
                });
            }
        }
        let nursery = self.nursery;
        let old = &mut self.old;
        let remembered = &mut self.remembered;
        let young = |p: u64| nursery.contains(p);
        let copied = pause(m, st, |m, st| {
            let mut copied = (0, 0);
            let mut scan = old.top;
            forward_roots(m, roots, old, &young, st, &mut copied)?;
            for &p in remembered.iter() {
                let w = m.load(p)?;
                m.store(p, w & !REMEMBERED)?;
                forward_fields(m, p, w, old, &young, st, &mut copied)?;
            }
            remembered.clear();
            scan_from(m, &mut scan, old, &young, st, &mut copied)?;
            st.collections += 1;
            st.minor_collections += 1;
            Ok(copied)
        })?;
        st.objects_promoted += copied.0;
        st.objects_reclaimed += self.young_objects.saturating_sub(copied.0);
        st.bytes_reclaimed += nursery.used_bytes().saturating_sub(copied.1);
        self.young_objects = 0;
        self.nursery.top = self.nursery.start;
        Ok(())
    }

    /// A major collection: marks from the roots through both generations, compacts
    /// the old generation (updating the nursery's pointers into it) and rebuilds the
    /// remembered set. The nursery is left as it is.
    pub(crate) fn major(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError> {
        let (old, remembered) = (&mut self.old, &mut self.remembered);
        let nursery = self.nursery;
        major_collection(m, roots, &mut self.stack, st, |m, roots, st| {
            remembered.clear();
            let outside = Outside {
                space: nursery,
                remembered,
            };
            compact(m, old, roots, Some(outside), st)
        })
    }

    /// A whole-heap collection: major, then minor, which leaves exactly the reachable
    /// objects, all in the old generation.
    pub(crate) fn collect_full(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError> {
        self.major(m, roots, st)?;
        self.minor(m, roots, st)
    }
}
