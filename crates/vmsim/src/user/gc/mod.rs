//! Garbage collection inside a simulated process.
//!
//! The object model: an object is a header of two words, then `nfields` pointer fields
//! (one word each, 0 is null), then `data_bytes` of plain data, rounded up to 16 bytes:
//!
//! ```text
//! word 0  nfields (16 bits) | data bytes (32 bits) | flags: mark, forwarded, remembered
//! word 1  aux: the reference count, or the forwarding address while collecting
//! fields  nfields words
//! data    data_bytes, padded
//! ```
//!
//! All of it lives in simulated memory, in a region the heap maps with `mmap` at
//! start; every header, mark bit, forwarding address and field the collector reads or
//! writes is an access through the MMU. The *root set* (the program's registers and
//! stack slots) is a row of slots on the host: the program names objects only through
//! root slots ([`GcHeap::alloc`] puts the new object in one, [`GcHeap::load_field`]
//! loads a field into one), so a moving collector can update every reference the
//! program holds.
//!
//! Collectors ([`CollectorKind`]): reference counting ([`refcount`]), mark-sweep
//! ([`mark_sweep`]), mark-compact ([`mark_compact`]), semispace copying
//! ([`copying`]) and generational ([`generational`]). Their shared pieces (the free-list
//! and bump spaces, marking) are here. See Jones, Hosking and Moss, *The Garbage
//! Collection Handbook* (2nd ed., 2023) for all five.

pub mod copying;
pub mod generational;
pub mod mark_compact;
pub mod mark_sweep;
pub mod refcount;

use crate::addr::VirtAddr;
use crate::os::{AccessError, Errno, Kernel, Pid};
use crate::user::Mem;
use serde::Serialize;
use std::fmt;
use thiserror::Error;

/// Bytes of an object's header.
pub const HEADER_BYTES: u64 = 16;
/// Objects (and free chunks) are multiples of this.
pub const GRANULE: u64 = 16;
/// Most pointer fields an object may have.
pub const MAX_FIELDS: u64 = 0xffff;
/// Most data bytes an object may have.
pub const MAX_DATA: u64 = 0xffff_ffff;

pub(crate) const MARK: u64 = 1 << 56;
pub(crate) const FORWARDED: u64 = 1 << 57;
pub(crate) const REMEMBERED: u64 = 1 << 58;
pub(crate) const FREE: u64 = 1 << 59;
const SIZE_MASK: u64 = (1 << 48) - 1;

/// The header word of an object with `nfields` fields and `data_bytes` of data.
pub fn encode_header(nfields: u64, data_bytes: u64) -> u64 {
    (nfields & MAX_FIELDS) | (data_bytes & MAX_DATA) << 16
}

/// Pointer fields of the object whose header word is `w`.
#[inline]
pub fn header_fields(w: u64) -> u64 {
    w & MAX_FIELDS
}

/// Data bytes of the object whose header word is `w`.
#[inline]
pub fn header_data(w: u64) -> u64 {
    (w >> 16) & MAX_DATA
}

/// Bytes an object with `nfields` fields and `data_bytes` of data takes.
pub fn object_size(nfields: u64, data_bytes: u64) -> u64 {
    (HEADER_BYTES + 8 * nfields + data_bytes).div_ceil(GRANULE) * GRANULE
}

/// Bytes of the object or free chunk whose header word is `w`.
#[inline]
pub(crate) fn chunk_size(w: u64) -> u64 {
    if w & FREE != 0 {
        w & SIZE_MASK
    } else {
        object_size(header_fields(w), header_data(w))
    }
}

/// What a walk of a bump space (objects only) reports of a header it cannot step over.
pub(crate) const BAD_OBJECT_SIZE: &str = "object header with an impossible size";
/// What a walk of a free-list space (objects and free chunks) reports of a header it
/// cannot step over.
pub(crate) const BAD_CHUNK_SIZE: &str = "chunk header with an impossible size";

/// The size of the chunk at `p` with header word `w`, for a walk that must not pass
/// `limit`: an error saying `what` if the size is zero or runs past it.
#[inline]
pub(crate) fn walk_size(p: u64, w: u64, limit: u64, what: &'static str) -> Result<u64, GcError> {
    let size = chunk_size(w);
    if size == 0 || p + size > limit {
        return Err(corrupt(p, what));
    }
    Ok(size)
}

/// Pushes the objects (not the free chunks) from `start` to `limit` on `out`, in
/// address order; `what` is the error for a header the walk cannot step over.
fn objects_between(
    m: &mut Mem<'_>,
    start: u64,
    limit: u64,
    what: &'static str,
    out: &mut Vec<u64>,
) -> Result<(), GcError> {
    let mut p = start;
    while p < limit {
        let w = m.load(p)?;
        let size = walk_size(p, w, limit, what)?;
        if w & FREE == 0 {
            out.push(p);
        }
        p += size;
    }
    Ok(())
}

/// Address of field `i` of the object at `p`.
#[inline]
pub(crate) fn field_addr(p: u64, i: u64) -> u64 {
    p + HEADER_BYTES + 8 * i
}

/// Why a heap operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum GcError {
    /// No room for the object even after collecting.
    #[error("out of memory: no room for a {bytes}-byte object after collecting")]
    OutOfMemory {
        /// The object's size.
        bytes: u64,
    },
    /// The heap's region could not be mapped.
    #[error("the kernel refused the heap's {bytes} bytes ({errno})")]
    Kernel {
        /// Bytes asked for.
        bytes: u64,
        /// The kernel's answer.
        errno: Errno,
    },
    /// A root slot that does not exist.
    #[error("no root slot {0}")]
    NoSuchRoot(usize),
    /// An operation on a root slot that holds null.
    #[error("root slot {0} is null")]
    NullRoot(usize),
    /// A field index past the object's fields.
    #[error("field {field} of an object with {nfields} fields")]
    NoSuchField {
        /// The index asked for.
        field: u64,
        /// The object's fields.
        nfields: u64,
    },
    /// Data bytes outside the object's data.
    #[error("data bytes {offset}..+{len} of an object with {data_bytes}")]
    DataOutOfRange {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: u64,
        /// The object's data bytes.
        data_bytes: u64,
    },
    /// An object shape no header can describe.
    #[error("an object of {nfields} fields and {data_bytes} data bytes is too large")]
    TooLarge {
        /// Fields asked for.
        nfields: u64,
        /// Data bytes asked for.
        data_bytes: u64,
    },
    /// Metadata in simulated memory makes no sense.
    #[error("heap corrupted at {addr}: {what}")]
    Corrupt {
        /// Where.
        addr: VirtAddr,
        /// What was wrong.
        what: &'static str,
    },
    /// A load or store was refused (the process was killed).
    #[error("access failed: {0}")]
    Access(#[from] AccessError),
}

pub(crate) fn corrupt(addr: u64, what: &'static str) -> GcError {
    GcError::Corrupt {
        addr: VirtAddr(addr),
        what,
    }
}

/// Which collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum CollectorKind {
    /// Reference counting (cannot reclaim cycles).
    RefCount,
    /// Mark-sweep over a free-list heap.
    MarkSweep,
    /// Mark-compact (Lisp 2 sliding compaction).
    MarkCompact,
    /// Semispace copying (Cheney).
    Copying,
    /// A copying nursery promoting into a mark-compact old generation.
    Generational,
}

impl CollectorKind {
    /// Every collector.
    pub const ALL: [CollectorKind; 5] = [
        CollectorKind::RefCount,
        CollectorKind::MarkSweep,
        CollectorKind::MarkCompact,
        CollectorKind::Copying,
        CollectorKind::Generational,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CollectorKind::RefCount => "refcount",
            CollectorKind::MarkSweep => "mark-sweep",
            CollectorKind::MarkCompact => "mark-compact",
            CollectorKind::Copying => "copying",
            CollectorKind::Generational => "generational",
        }
    }

    /// The collector called `name`, if any.
    pub fn from_name(name: &str) -> Option<CollectorKind> {
        CollectorKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether it moves objects.
    pub fn moves(self) -> bool {
        matches!(
            self,
            CollectorKind::MarkCompact | CollectorKind::Copying | CollectorKind::Generational
        )
    }
}

impl fmt::Display for CollectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sizes of a collected heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GcConfig {
    /// Bytes of the heap's region (both semispaces for copying; nursery and old
    /// generation together for generational).
    pub heap_bytes: u64,
    /// Bytes of the nursery (generational only).
    pub young_bytes: u64,
    /// Root slots.
    pub nr_roots: usize,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            heap_bytes: 1 << 20,
            young_bytes: 128 << 10,
            nr_roots: 64,
        }
    }
}

/// What a collector did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcStats {
    /// Objects allocated.
    pub nr_allocs: u64,
    /// Bytes allocated (object sizes).
    pub bytes_allocated: u64,
    /// Collections (minor and major; reference counting has none).
    pub collections: u64,
    /// Nursery collections (generational).
    pub minor_collections: u64,
    /// Whole-heap or old-generation collections.
    pub major_collections: u64,
    /// Objects reclaimed.
    pub objects_reclaimed: u64,
    /// Bytes reclaimed.
    pub bytes_reclaimed: u64,
    /// Objects moved (copied or slid).
    pub objects_moved: u64,
    /// Bytes moved.
    pub bytes_moved: u64,
    /// Objects promoted to the old generation.
    pub objects_promoted: u64,
    /// Old objects the write barrier put in the remembered set.
    pub barrier_records: u64,
    /// Pauses: collections, or for reference counting each cascade of frees.
    pub nr_pauses: u64,
    /// Simulated accesses of all pauses.
    pub pause_accesses: u64,
    /// Simulated accesses of the longest pause.
    pub max_pause_accesses: u64,
    /// Simulated accesses made outside pauses: the program's own loads and stores,
    /// allocation, barriers and reference-count updates.
    pub mutator_accesses: u64,
}

impl GcStats {
    /// Mean accesses per pause.
    pub fn mean_pause_accesses(&self) -> f64 {
        if self.nr_pauses == 0 {
            0.0
        } else {
            self.pause_accesses as f64 / self.nr_pauses as f64
        }
    }
}

/// Runs `f` as one pause: its accesses are counted as the collector's.
pub(crate) fn pause<T>(
    m: &mut Mem<'_>,
    st: &mut GcStats,
    f: impl FnOnce(&mut Mem<'_>, &mut GcStats) -> Result<T, GcError>,
) -> Result<T, GcError> {
    let before = m.nr_accesses;
    let r = f(m, st);
    let n = m.nr_accesses - before;
    st.nr_pauses += 1;
    st.pause_accesses += n;
    st.max_pause_accesses = st.max_pause_accesses.max(n);
    r
}

/// The allocation path of the tracing collectors: `size` bytes from `try_alloc`; if it
/// finds no room, one collection by `collect` and a second try, and out of memory if
/// that finds none either.
pub(crate) fn alloc_or_collect<C>(
    c: &mut C,
    m: &mut Mem<'_>,
    size: u64,
    mut try_alloc: impl FnMut(&mut C, &mut Mem<'_>) -> Result<Option<u64>, GcError>,
    collect: impl FnOnce(&mut C, &mut Mem<'_>) -> Result<(), GcError>,
) -> Result<u64, GcError> {
    if let Some(p) = try_alloc(c, m)? {
        return Ok(p);
    }
    collect(c, m)?;
    try_alloc(c, m)?.ok_or(GcError::OutOfMemory { bytes: size })
}

/// A collector of one space that allocates until the space is full, then collects it
/// whole (mark-sweep, mark-compact, semispace copying).
pub(crate) trait Tracing: Sized {
    /// `size` bytes if the space has room for them now, without collecting.
    fn try_alloc(&mut self, m: &mut Mem<'_>, size: u64) -> Result<Option<u64>, GcError>;

    /// A whole-heap collection.
    fn collect(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
    ) -> Result<(), GcError>;

    /// `size` bytes, collecting first if the space has no room for them.
    fn alloc(
        &mut self,
        m: &mut Mem<'_>,
        roots: &mut [u64],
        st: &mut GcStats,
        size: u64,
    ) -> Result<u64, GcError> {
        alloc_or_collect(
            self,
            m,
            size,
            |c, m| c.try_alloc(m, size),
            |c, m| c.collect(m, roots, st),
        )
    }
}

/// A contiguous space allocated by bumping a pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BumpSpace {
    pub start: u64,
    pub end: u64,
    pub top: u64,
}

impl BumpSpace {
    pub fn new(start: u64, end: u64) -> BumpSpace {
        BumpSpace {
            start,
            end,
            top: start,
        }
    }

    #[inline]
    pub fn contains(&self, p: u64) -> bool {
        p >= self.start && p < self.end
    }

    pub fn free_bytes(&self) -> u64 {
        self.end - self.top
    }

    pub fn used_bytes(&self) -> u64 {
        self.top - self.start
    }

    pub fn bump(&mut self, size: u64) -> Option<u64> {
        if self.free_bytes() >= size {
            let p = self.top;
            self.top += size;
            Some(p)
        } else {
            None
        }
    }

    /// The objects from `start` to `top`.
    pub fn objects(&self, m: &mut Mem<'_>, out: &mut Vec<u64>) -> Result<(), GcError> {
        objects_between(m, self.start, self.top, BAD_OBJECT_SIZE, out)
    }
}

/// A non-moving space: every chunk, free or an object, is parseable from the start
/// (headers give sizes), and free chunks are chained through their second word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FreeListSpace {
    pub start: u64,
    pub end: u64,
    pub head: u64,
}

impl FreeListSpace {
    /// The whole range as one free chunk.
    pub fn new(m: &mut Mem<'_>, start: u64, end: u64) -> Result<FreeListSpace, GcError> {
        let mut s = FreeListSpace {
            start,
            end,
            head: 0,
        };
        if end - start >= GRANULE {
            m.store(start, FREE | (end - start))?;
            m.store(start + 8, 0)?;
            s.head = start;
        }
        Ok(s)
    }

    #[inline]
    pub fn contains(&self, p: u64) -> bool {
        p >= self.start && p < self.end
    }

    /// First fit over the free list, splitting off the rest.
    pub fn alloc(&mut self, m: &mut Mem<'_>, size: u64) -> Result<Option<u64>, GcError> {
        let mut prev = 0u64;
        let mut c = self.head;
        let mut budget = (self.end - self.start) / GRANULE + 1;
        while c != 0 {
            if !self.contains(c) || budget == 0 {
                return Err(corrupt(c, "free list leaves the heap"));
            }
            budget -= 1;
            let w = m.load(c)?;
            if w & FREE == 0 {
                return Err(corrupt(c, "free list reaches an object"));
            }
            let csize = w & SIZE_MASK;
            let next = m.load(c + 8)?;
            if csize >= size {
                let replacement = if csize > size {
                    let rest = c + size;
                    m.store(rest, FREE | (csize - size))?;
                    m.store(rest + 8, next)?;
                    rest
                } else {
                    next
                };
                if prev == 0 {
                    self.head = replacement;
                } else {
                    m.store(prev + 8, replacement)?;
                }
                return Ok(Some(c));
            }
            prev = c;
            c = next;
        }
        Ok(None)
    }

    /// Puts the chunk at `p` of `size` bytes on the front of the free list.
    pub fn free(&mut self, m: &mut Mem<'_>, p: u64, size: u64) -> Result<(), GcError> {
        m.store(p, FREE | size)?;
        m.store(p + 8, self.head)?;
        self.head = p;
        Ok(())
    }

    /// Sweeps: every unmarked object becomes free, runs of free chunks merge, marks are
    /// cleared, and the free list is rebuilt in address order. Returns (objects, bytes)
    /// reclaimed.
    pub fn sweep(&mut self, m: &mut Mem<'_>) -> Result<(u64, u64), GcError> {
        let (mut objects, mut bytes) = (0, 0);
        let mut tail = 0u64;
        self.head = 0;
        let mut run: Option<u64> = None;
        let mut p = self.start;
        let mut close = |m: &mut Mem<'_>, head: &mut u64, run: u64, end: u64| {
            m.store(run, FREE | (end - run))?;
            m.store(run + 8, 0)?;
            if tail == 0 {
                *head = run;
            } else {
                m.store(tail + 8, run)?;
            }
            tail = run;
            Ok::<(), GcError>(())
        };
        while p < self.end {
            let w = m.load(p)?;
            let size = walk_size(p, w, self.end, BAD_CHUNK_SIZE)?;
            let free = if w & FREE != 0 {
                true
            } else if w & MARK != 0 {
                m.store(p, w & !MARK)?;
                false
            } else {
                objects += 1;
                bytes += size;
                true
            };
            match (free, run) {
                (true, None) => run = Some(p),
                (false, Some(r)) => {
                    close(m, &mut self.head, r, p)?;
                    run = None;
                }
                _ => {}
            }
            p += size;
        }
        if let Some(r) = run {
            close(m, &mut self.head, r, self.end)?;
        }
        Ok((objects, bytes))
    }

    /// The objects in the space, in address order.
    pub fn objects(&self, m: &mut Mem<'_>, out: &mut Vec<u64>) -> Result<(), GcError> {
        objects_between(m, self.start, self.end, BAD_CHUNK_SIZE, out)
    }
}

/// Marks every object reachable from `roots` (depth-first, with a mark stack on the
/// host), setting the mark bit in each header. Returns (objects, bytes) marked.
pub(crate) fn mark(
    m: &mut Mem<'_>,
    roots: &[u64],
    stack: &mut Vec<u64>,
) -> Result<(u64, u64), GcError> {
    let (mut objects, mut bytes) = (0, 0);
    stack.clear();
    let mut visit = |m: &mut Mem<'_>, p: u64, stack: &mut Vec<u64>| -> Result<(), GcError> {
        let w = m.load(p)?;
        if w & FREE != 0 {
            return Err(corrupt(p, "pointer to a free chunk"));
        }
        if w & MARK == 0 {
            m.store(p, w | MARK)?;
            objects += 1;
            bytes += chunk_size(w);
            stack.push(p);
        }
        Ok(())
    };
    for &r in roots {
        if r != 0 {
            visit(m, r, stack)?;
        }
    }
    while let Some(p) = stack.pop() {
        let n = header_fields(m.load(p)?);
        for i in 0..n {
            let v = m.load(field_addr(p, i))?;
            if v != 0 {
                visit(m, v, stack)?;
            }
        }
    }
    Ok((objects, bytes))
}

/// One major collection of a marking collector, as one pause: marks what `roots` reach
/// (with `stack` as the mark stack), lets `reclaim` take back the rest (a sweep, a
/// compaction), and counts the collection.
pub(crate) fn major_collection(
    m: &mut Mem<'_>,
    roots: &mut [u64],
    stack: &mut Vec<u64>,
    st: &mut GcStats,
    reclaim: impl FnOnce(&mut Mem<'_>, &mut [u64], &mut GcStats) -> Result<(), GcError>,
) -> Result<(), GcError> {
    pause(m, st, |m, st| {
        mark(m, roots, stack)?;
        reclaim(m, roots, st)?;
        st.collections += 1;
        st.major_collections += 1;
        Ok(())
    })
}

/// The collector behind a heap.
#[derive(Clone, Debug)]
enum Collector {
    RefCount(refcount::RefCount),
    MarkSweep(mark_sweep::MarkSweep),
    MarkCompact(mark_compact::MarkCompact),
    Copying(copying::Copying),
    Generational(generational::Generational),
}

/// An object as a walk of the heap finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its address.
    pub addr: VirtAddr,
    /// Its pointer fields (`VirtAddr(0)` is null).
    pub fields: Vec<VirtAddr>,
    /// Its data bytes.
    pub data_bytes: u64,
}

/// A garbage-collected heap in a simulated process, and the program's root slots.
pub struct GcHeap<'k> {
    mem: Mem<'k>,
    kind: CollectorKind,
    config: GcConfig,
    collector: Collector,
    roots: Vec<u64>,
    stats: GcStats,
}

impl<'k> GcHeap<'k> {
    /// A heap for process `pid` collected by `kind`: maps its region (pages arrive on
    /// first touch) and sets up the spaces.
    pub fn new(
        kernel: &'k mut Kernel,
        pid: Pid,
        kind: CollectorKind,
        config: GcConfig,
    ) -> Result<GcHeap<'k>, GcError> {
        let mut mem = Mem::new(kernel, pid);
        let bytes = config
            .heap_bytes
            .div_ceil(GRANULE * 2)
            .checked_mul(GRANULE * 2)
            .ok_or(GcError::Kernel {
                bytes: config.heap_bytes,
                errno: Errno::ENOMEM,
            })?;
        let start = mem
            .mmap(bytes)
            .map_err(|errno| GcError::Kernel { bytes, errno })?;
        let end = start + bytes;
        let collector = match kind {
            CollectorKind::RefCount => {
                Collector::RefCount(refcount::RefCount::new(&mut mem, start, end)?)
            }
            CollectorKind::MarkSweep => {
                Collector::MarkSweep(mark_sweep::MarkSweep::new(&mut mem, start, end)?)
            }
            CollectorKind::MarkCompact => {
                Collector::MarkCompact(mark_compact::MarkCompact::new(start, end))
            }
            CollectorKind::Copying => Collector::Copying(copying::Copying::new(start, end)),
            CollectorKind::Generational => {
                let young = (config.young_bytes / GRANULE * GRANULE).clamp(GRANULE, bytes / 2);
                Collector::Generational(generational::Generational::new(start, end, young))
            }
        };
        let stats = GcStats::default();
        Ok(GcHeap {
            mem,
            kind,
            config,
            collector,
            roots: vec![0; config.nr_roots],
            stats,
        })
    }

    /// Which collector.
    pub fn kind(&self) -> CollectorKind {
        self.kind
    }

    /// Its sizes.
    pub fn config(&self) -> GcConfig {
        self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> GcStats {
        let mut s = self.stats.clone();
        s.mutator_accesses = self.mem.nr_accesses - s.pause_accesses;
        s
    }

    /// The kernel (for its counters).
    pub fn kernel(&self) -> &Kernel {
        self.mem.kernel()
    }

    /// The process's memory.
    pub fn mem(&mut self) -> &mut Mem<'k> {
        &mut self.mem
    }

    /// Number of root slots.
    pub fn nr_roots(&self) -> usize {
        self.roots.len()
    }

    fn slot(&self, i: usize) -> Result<u64, GcError> {
        self.roots.get(i).copied().ok_or(GcError::NoSuchRoot(i))
    }

    fn object_in(&self, i: usize) -> Result<u64, GcError> {
        match self.slot(i)? {
            0 => Err(GcError::NullRoot(i)),
            p => Ok(p),
        }
    }

    /// The object in root slot `i` (`None`: null).
    pub fn root(&self, i: usize) -> Result<Option<VirtAddr>, GcError> {
        Ok(match self.slot(i)? {
            0 => None,
            p => Some(VirtAddr(p)),
        })
    }

    /// Allocates an object with `nfields` null fields and `data_bytes` zero bytes, and
    /// puts it in root slot `root`. May collect first. Returns its address (valid until
    /// the next allocation or collection, which may move it).
    pub fn alloc(
        &mut self,
        root: usize,
        nfields: u64,
        data_bytes: u64,
    ) -> Result<VirtAddr, GcError> {
        self.slot(root)?;
        if nfields > MAX_FIELDS || data_bytes > MAX_DATA {
            return Err(GcError::TooLarge {
                nfields,
                data_bytes,
            });
        }
        let size = object_size(nfields, data_bytes);
        let m = &mut self.mem;
        let st = &mut self.stats;
        let roots = &mut self.roots;
        let p = match &mut self.collector {
            Collector::RefCount(c) => c.alloc(m, st, size)?,
            Collector::MarkSweep(c) => c.alloc(m, roots, st, size)?,
            Collector::MarkCompact(c) => c.alloc(m, roots, st, size)?,
            Collector::Copying(c) => c.alloc(m, roots, st, size)?,
            Collector::Generational(c) => c.alloc(m, roots, st, size)?,
        };
        m.store(p, encode_header(nfields, data_bytes))?;
        m.store(p + 8, 0)?;
        for i in 0..nfields {
            m.store(field_addr(p, i), 0)?;
        }
        if data_bytes > 0 {
            m.fill(field_addr(p, nfields), data_bytes, 0)?;
        }
        st.nr_allocs += 1;
        st.bytes_allocated += size;
        self.put_root(root, p)?;
        Ok(VirtAddr(p))
    }

    /// Stores `p` in root slot `i`, keeping reference counts.
    fn put_root(&mut self, i: usize, p: u64) -> Result<(), GcError> {
        let old = self.slot(i)?;
        if let Collector::RefCount(c) = &mut self.collector {
            c.inc(&mut self.mem, p)?;
            self.roots[i] = p;
            c.dec(&mut self.mem, &mut self.stats, old)?;
        } else {
            self.roots[i] = p;
        }
        Ok(())
    }

    /// Root slot `dst` takes what root slot `src` holds, or null.
    pub fn set_root(&mut self, dst: usize, src: Option<usize>) -> Result<(), GcError> {
        let p = match src {
            Some(s) => self.slot(s)?,
            None => 0,
        };
        self.put_root(dst, p)
    }

    /// Reads the header of the object at `p` and checks field `field` exists.
    fn check_field(&mut self, p: u64, field: u64) -> Result<u64, GcError> {
        let w = self.mem.load(p)?;
        let nfields = header_fields(w);
        if field >= nfields {
            return Err(GcError::NoSuchField { field, nfields });
        }
        Ok(field_addr(p, field))
    }

    /// Root slot `dst` takes field `field` of the object in root slot `src`.
    pub fn load_field(&mut self, dst: usize, src: usize, field: u64) -> Result<(), GcError> {
        self.slot(dst)?;
        let p = self.object_in(src)?;
        let a = self.check_field(p, field)?;
        let v = self.mem.load(a)?;
        self.put_root(dst, v)
    }

    /// Field `field` of the object in root slot `obj` takes the object in root slot
    /// `value` (or null). Runs the collector's write barrier.
    pub fn store_field(
        &mut self,
        obj: usize,
        field: u64,
        value: Option<usize>,
    ) -> Result<(), GcError> {
        let p = self.object_in(obj)?;
        let v = match value {
            Some(s) => self.slot(s)?,
            None => 0,
        };
        let a = self.check_field(p, field)?;
        match &mut self.collector {
            Collector::RefCount(c) => {
                let old = self.mem.load(a)?;
                c.inc(&mut self.mem, v)?;
                self.mem.store(a, v)?;
                c.dec(&mut self.mem, &mut self.stats, old)?;
            }
            Collector::Generational(c) => {
                self.mem.store(a, v)?;
                c.barrier(&mut self.mem, &mut self.stats, p, v)?;
            }
            _ => self.mem.store(a, v)?,
        }
        Ok(())
    }

    fn data_range(&mut self, p: u64, offset: u64, len: u64) -> Result<u64, GcError> {
        let w = self.mem.load(p)?;
        let data_bytes = header_data(w);
        if offset.checked_add(len).is_none_or(|e| e > data_bytes) {
            return Err(GcError::DataOutOfRange {
                offset,
                len,
                data_bytes,
            });
        }
        Ok(field_addr(p, header_fields(w)) + offset)
    }

    /// Writes `data` into the data bytes of the object in root slot `obj`.
    pub fn write_data(&mut self, obj: usize, offset: u64, data: &[u8]) -> Result<(), GcError> {
        let p = self.object_in(obj)?;
        let a = self.data_range(p, offset, data.len() as u64)?;
        Ok(self.mem.write(a, data)?)
    }

    /// Reads data bytes of the object in root slot `obj`.
    pub fn read_data(&mut self, obj: usize, offset: u64, buf: &mut [u8]) -> Result<(), GcError> {
        let p = self.object_in(obj)?;
        self.read_data_at(VirtAddr(p), offset, buf)
    }

    /// Reads data bytes of the object at `addr` (an address from [`GcHeap::objects`] or
    /// [`GcHeap::object`]).
    pub fn read_data_at(
        &mut self,
        addr: VirtAddr,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), GcError> {
        let a = self.data_range(addr.0, offset, buf.len() as u64)?;
        Ok(self.mem.read(a, buf)?)
    }

    /// The object at `addr`: its fields and size.
    pub fn object(&mut self, addr: VirtAddr) -> Result<ObjectInfo, GcError> {
        let w = self.mem.load(addr.0)?;
        if w & FREE != 0 {
            return Err(corrupt(addr.0, "not an object: a free chunk"));
        }
        let n = header_fields(w);
        let mut fields = Vec::with_capacity(n as usize);
        for i in 0..n {
            fields.push(VirtAddr(self.mem.load(field_addr(addr.0, i))?));
        }
        Ok(ObjectInfo {
            addr,
            fields,
            data_bytes: header_data(w),
        })
    }

    /// Collects now: a whole-heap collection (for generational, old generation and
    /// nursery). Reference counting has nothing to do: it reclaims as counts drop.
    pub fn collect(&mut self) -> Result<(), GcError> {
        let m = &mut self.mem;
        let st = &mut self.stats;
        let roots = &mut self.roots;
        match &mut self.collector {
            Collector::RefCount(_) => Ok(()),
            Collector::MarkSweep(c) => c.collect(m, roots, st),
            Collector::MarkCompact(c) => c.collect(m, roots, st),
            Collector::Copying(c) => c.collect(m, roots, st),
            Collector::Generational(c) => c.collect_full(m, roots, st),
        }
    }

    /// Every object the heap holds now (live or not yet reclaimed), by walking the
    /// spaces (one load per object).
    pub fn objects(&mut self) -> Result<Vec<VirtAddr>, GcError> {
        let mut out = Vec::new();
        let m = &mut self.mem;
        match &self.collector {
            Collector::RefCount(c) => c.space.objects(m, &mut out)?,
            Collector::MarkSweep(c) => c.space.objects(m, &mut out)?,
            Collector::MarkCompact(c) => c.space.objects(m, &mut out)?,
            Collector::Copying(c) => c.from.objects(m, &mut out)?,
            Collector::Generational(c) => {
                c.old.objects(m, &mut out)?;
                c.nursery.objects(m, &mut out)?;
            }
        }
        Ok(out.into_iter().map(VirtAddr).collect())
    }
}

#[cfg(test)]
mod tests;
