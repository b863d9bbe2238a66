//! `malloc` inside a simulated process.
//!
//! A [`Heap`] is one process's allocator: `malloc`, `free`, `realloc`, `calloc` over
//! memory it gets from the simulated kernel. Small requests come from the heap that
//! `brk` grows, managed by one of the policies below; requests of at least
//! [`AllocConfig::mmap_threshold`] bytes get a mapping of their own (`mmap`, given back
//! with `munmap` on `free`), as glibc does. Every header, footer and free-list link is
//! in simulated memory and every access to it goes through the MMU.
//!
//! Policies ([`AllocatorKind`]): implicit free list with first, next or best fit
//! ([`implicit`]); explicit free list, LIFO or address-ordered ([`explicit`]);
//! segregated fits ([`segregated`]); simple segregated storage ([`simple`]); binary
//! buddy ([`buddy`]). The block format the first three share, boundary tags, is in
//! [`tags`]; the explicit lists the second and third share are in [`lists`].
//!
//! Errors are values ([`AllocError`]): a double free, a free of a pointer `malloc`
//! never returned, or memory the kernel will not give are reported, never a panic. The
//! heap keeps a host-side table of live blocks, like a checking allocator, so these are
//! caught exactly; the check costs no simulated accesses.

pub mod buddy;
pub mod explicit;
pub mod implicit;
pub mod lists;
pub mod segregated;
pub mod simple;
pub mod tags;

use crate::addr::VirtAddr;
use crate::os::{AccessError, Errno, Kernel, Pid};
use crate::user::Mem;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::fmt;
use thiserror::Error;

pub use explicit::Order;
pub use implicit::Fit;
use tags::TagAllocator;

/// Why an allocator call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AllocError {
    /// `free` (or `realloc`) of a block that was already freed.
    #[error("double free of {addr}: the block was already freed")]
    DoubleFree {
        /// The pointer passed.
        addr: VirtAddr,
    },
    /// `free` (or `realloc`) of a pointer that `malloc` never returned.
    #[error("invalid free of {addr}: not a pointer this heap returned")]
    InvalidFree {
        /// The pointer passed.
        addr: VirtAddr,
    },
    /// The kernel refused more memory (`brk` and `mmap` both failed).
    #[error("out of memory: the kernel refused {bytes} more bytes ({errno})")]
    OutOfMemory {
        /// Bytes asked for.
        bytes: u64,
        /// The kernel's answer.
        errno: Errno,
    },
    /// A request no block can describe (its size overflows).
    #[error("request of {0} bytes is too large")]
    TooLarge(u64),
    /// The allocator's metadata in simulated memory makes no sense (a program wrote
    /// over it).
    #[error("heap corrupted at {addr}: {what}")]
    Corrupt {
        /// Where.
        addr: VirtAddr,
        /// What was wrong.
        what: &'static str,
    },
    /// A load or store of the allocator was refused (the process was killed).
    #[error("access failed: {0}")]
    Access(#[from] AccessError),
}

/// Which allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum AllocatorKind {
    /// Implicit free list, first fit.
    FirstFit,
    /// Implicit free list, next fit.
    NextFit,
    /// Implicit free list, best fit.
    BestFit,
    /// Explicit free list, LIFO.
    ExplicitLifo,
    /// Explicit free list, address-ordered.
    ExplicitAddress,
    /// Segregated fits.
    Segregated,
    /// Simple segregated storage (size-class pages, no splitting or merging).
    SimpleSegregated,
    /// Binary buddy system.
    Buddy,
}

impl AllocatorKind {
    /// Every allocator, in the order reports list them.
    pub const ALL: [AllocatorKind; 8] = [
        AllocatorKind::FirstFit,
        AllocatorKind::NextFit,
        AllocatorKind::BestFit,
        AllocatorKind::ExplicitLifo,
        AllocatorKind::ExplicitAddress,
        AllocatorKind::Segregated,
        AllocatorKind::SimpleSegregated,
        AllocatorKind::Buddy,
    ];

    /// Its name on the command line (`first-fit`, `segregated`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AllocatorKind::FirstFit => "first-fit",
            AllocatorKind::NextFit => "next-fit",
            AllocatorKind::BestFit => "best-fit",
            AllocatorKind::ExplicitLifo => "explicit-lifo",
            AllocatorKind::ExplicitAddress => "explicit-address",
            AllocatorKind::Segregated => "segregated",
            AllocatorKind::SimpleSegregated => "simple-segregated",
            AllocatorKind::Buddy => "buddy",
        }
    }

    /// The allocator called `name`, if any.
    pub fn from_name(name: &str) -> Option<AllocatorKind> {
        AllocatorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for AllocatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Tunables shared by all allocators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AllocConfig {
    /// Requests of at least this many bytes get their own `mmap` (glibc's
    /// `M_MMAP_THRESHOLD`, 128 KiB). `u64::MAX`: never.
    pub mmap_threshold: u64,
    /// A free block at the top of the heap at least this big is given back with `brk`
    /// (glibc's `M_TRIM_THRESHOLD`, 128 KiB).
    pub trim_threshold: u64,
}

impl Default for AllocConfig {
    fn default() -> Self {
        AllocConfig {
            mmap_threshold: 128 << 10,
            trim_threshold: 128 << 10,
        }
    }
}

/// What the allocator's code did, counted as it went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpCounters {
    /// Blocks (or lists) looked at while searching for a fit.
    pub search_steps: u64,
    /// Blocks split.
    pub splits: u64,
    /// Merges of free neighbours (or buddies).
    pub coalesces: u64,
    /// `brk` calls that moved the break.
    pub brk_calls: u64,
    /// Times the heap shrank.
    pub trims: u64,
}

/// An allocator's counters and sizes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AllocStats {
    /// `malloc` calls (including those made by `realloc` and `calloc`).
    pub nr_malloc: u64,
    /// `free` calls that freed a block.
    pub nr_free: u64,
    /// `realloc` calls.
    pub nr_realloc: u64,
    /// `calloc` calls.
    pub nr_calloc: u64,
    /// Requests that failed for want of memory.
    pub nr_failed: u64,
    /// Double and invalid frees reported.
    pub nr_errors: u64,
    /// Blocks given their own mapping.
    pub nr_mmap: u64,
    /// Mappings given back.
    pub nr_munmap: u64,
    /// What the policy's code did.
    pub ops: OpCounters,
    /// Simulated accesses made by the allocator (metadata, zeroing, copying).
    pub accesses: u64,
    /// Bytes requested and not yet freed.
    pub live_bytes: u64,
    /// Bytes of the blocks holding them (headers and rounding included).
    pub live_block_bytes: u64,
    /// Bytes of heap now: the `brk` heap plus mapped blocks.
    pub heap_bytes: u64,
    /// Most `live_bytes` at once.
    pub peak_live_bytes: u64,
    /// Most `heap_bytes` at once.
    pub peak_heap_bytes: u64,
    /// `live_block_bytes` when `live_bytes` peaked.
    pub block_bytes_at_peak_live: u64,
    /// `heap_bytes` when `live_bytes` peaked.
    pub heap_bytes_at_peak_live: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl AllocStats {
    /// Peak utilisation: most bytes live at once over the most heap at once (1 is
    /// perfect; Bryant and O'Hallaron's U_k).
    pub fn utilisation(&self) -> f64 {
        ratio(self.peak_live_bytes, self.peak_heap_bytes)
    }

    /// Internal fragmentation at peak load: the share of the heap inside allocated
    /// blocks but not requested (headers, rounding, unsplit remainders).
    pub fn internal_fragmentation(&self) -> f64 {
        ratio(
            self.block_bytes_at_peak_live
                .saturating_sub(self.peak_live_bytes),
            self.heap_bytes_at_peak_live,
        )
    }

    /// External fragmentation at peak load: the share of the heap in free blocks.
    pub fn external_fragmentation(&self) -> f64 {
        ratio(
            self.heap_bytes_at_peak_live
                .saturating_sub(self.block_bytes_at_peak_live),
            self.heap_bytes_at_peak_live,
        )
    }
}

/// The program break now, where an allocator sets up its heap; the kernel's refusal is
/// out of memory.
fn program_break(m: &mut Mem<'_>) -> Result<u64, AllocError> {
    m.brk()
        .map_err(|errno| AllocError::OutOfMemory { bytes: 0, errno })
}

/// Moves the program break to `new`, `bytes` further up (0 when it moves down), and
/// counts the call; the kernel's refusal is out of memory.
fn move_break(m: &mut Mem<'_>, c: &mut OpCounters, new: u64, bytes: u64) -> Result<(), AllocError> {
    m.set_brk(new)
        .map_err(|errno| AllocError::OutOfMemory { bytes, errno })?;
    c.brk_calls += 1;
    Ok(())
}

/// The policy that manages the `brk` heap.
#[derive(Debug)]
enum Policy {
    /// The implicit, explicit and segregated lists, which share the block format.
    Tags(Box<dyn TagAllocator>),
    Simple(Box<simple::SimpleSegregated>),
    Buddy(Box<buddy::BuddyHeap>),
}

/// Payload offset of tag blocks and of mapped blocks.
const TAG_PAYLOAD: u64 = 8;
const MMAP_HEADER: u64 = 16;

/// A live block, as the checking table knows it.
#[derive(Clone, Copy, Debug)]
struct Live {
    requested: u64,
    block: u64,
    mapped: bool,
}

/// One process's allocator: `malloc` and friends over the simulated kernel.
pub struct Heap<'k> {
    mem: Mem<'k>,
    kind: AllocatorKind,
    config: AllocConfig,
    policy: Policy,
    live: FxHashMap<u64, Live>,
    ever: FxHashSet<u64>,
    mapped_bytes: u64,
    stats: AllocStats,
}

impl<'k> Heap<'k> {
    /// An allocator of kind `kind` for process `pid`, starting at its program break.
    pub fn new(
        kernel: &'k mut Kernel,
        pid: Pid,
        kind: AllocatorKind,
        config: AllocConfig,
    ) -> Result<Heap<'k>, AllocError> {
        let mut mem = Mem::new(kernel, pid);
        let mut ops = OpCounters::default();
        let t = config.trim_threshold;
        let policy = match kind {
            AllocatorKind::FirstFit | AllocatorKind::NextFit | AllocatorKind::BestFit => {
                let fit = match kind {
                    AllocatorKind::FirstFit => Fit::First,
                    AllocatorKind::NextFit => Fit::Next,
                    _ => Fit::Best,
                };
                let list = implicit::ImplicitList::new(&mut mem, &mut ops, fit, t)?;
                Policy::Tags(Box::new(list))
            }
            AllocatorKind::ExplicitLifo | AllocatorKind::ExplicitAddress => {
                let order = if kind == AllocatorKind::ExplicitLifo {
                    Order::Lifo
                } else {
                    Order::Address
                };
                let list = explicit::ExplicitList::new(&mut mem, &mut ops, order, t)?;
                Policy::Tags(Box::new(list))
            }
            AllocatorKind::Segregated => {
                let lists = segregated::SegregatedFits::new(&mut mem, &mut ops, t)?;
                Policy::Tags(Box::new(lists))
            }
            AllocatorKind::SimpleSegregated => {
                Policy::Simple(Box::new(simple::SimpleSegregated::new(&mut mem)?))
            }
            AllocatorKind::Buddy => {
                // Top-level blocks just big enough for the largest brk request.
                let top = config
                    .mmap_threshold
                    .saturating_add(buddy::HEADER)
                    .clamp(4096, 1 << 22)
                    .next_power_of_two()
                    .ilog2();
                Policy::Buddy(Box::new(buddy::BuddyHeap::new(&mut mem, top)?))
            }
        };
        let mut heap = Heap {
            mem,
            kind,
            config,
            policy,
            live: FxHashMap::default(),
            ever: FxHashSet::default(),
            mapped_bytes: 0,
            stats: AllocStats::default(),
        };
        heap.stats.ops = ops;
        heap.account();
        Ok(heap)
    }

    /// Which allocator this is.
    pub fn kind(&self) -> AllocatorKind {
        self.kind
    }

    /// Its tunables.
    pub fn config(&self) -> AllocConfig {
        self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> &AllocStats {
        &self.stats
    }

    /// The process's memory (to read and write the blocks, as the program would).
    pub fn mem(&mut self) -> &mut Mem<'k> {
        &mut self.mem
    }

    /// The kernel (for its counters).
    pub fn kernel(&self) -> &Kernel {
        self.mem.kernel()
    }

    fn brk_heap_bytes(&self) -> u64 {
        match &self.policy {
            Policy::Tags(p) => p.heap_bytes(),
            Policy::Simple(p) => p.heap_bytes(),
            Policy::Buddy(p) => p.heap_bytes(),
        }
    }

    /// Updates sizes and peaks after an operation.
    fn account(&mut self) {
        let brk = self.brk_heap_bytes();
        let s = &mut self.stats;
        s.heap_bytes = brk + self.mapped_bytes;
        s.peak_heap_bytes = s.peak_heap_bytes.max(s.heap_bytes);
        if s.live_bytes > s.peak_live_bytes || s.peak_live_bytes == 0 {
            s.peak_live_bytes = s.live_bytes;
            s.block_bytes_at_peak_live = s.live_block_bytes;
            s.heap_bytes_at_peak_live = s.heap_bytes;
        }
    }

    /// Runs `f` on the policy and the memory, charging its accesses and counters.
    fn with_policy<T>(
        &mut self,
        f: impl FnOnce(&mut Policy, &mut Mem<'k>, &mut OpCounters) -> Result<T, AllocError>,
    ) -> Result<T, AllocError> {
        let before = self.mem.nr_accesses;
        let r = f(&mut self.policy, &mut self.mem, &mut self.stats.ops);
        self.stats.accesses += self.mem.nr_accesses - before;
        r
    }

    /// A block from the `brk` heap: (payload, block bytes), or `None` if the policy does
    /// not serve requests this big.
    fn heap_malloc(&mut self, size: u64) -> Result<Option<(u64, u64)>, AllocError> {
        self.with_policy(|p, m, c| {
            Ok(Some(match p {
                Policy::Tags(p) => {
                    let a = tags::block_size(size).ok_or(AllocError::TooLarge(size))?;
                    let (h, b) = p.malloc(m, c, a)?;
                    (h + TAG_PAYLOAD, b)
                }
                Policy::Simple(p) => {
                    let Some(class) = p.class_for(size) else {
                        return Ok(None);
                    };
                    p.malloc(m, c, class)?
                }
                Policy::Buddy(p) => {
                    let Some(order) = p.order_for(size) else {
                        return Ok(None);
                    };
                    let (b, s) = p.malloc(m, c, order)?;
                    (b + buddy::HEADER, s)
                }
            }))
        })
    }

    fn heap_free(&mut self, payload: u64) -> Result<(), AllocError> {
        self.with_policy(|p, m, c| match p {
            Policy::Tags(p) => p.free(m, c, payload - TAG_PAYLOAD),
            Policy::Simple(p) => p.free(m, payload),
            Policy::Buddy(p) => p.free(m, c, payload - buddy::HEADER),
        })
    }

    /// A block with a mapping of its own: a 16-byte header holding the mapping's length
    /// (in simulated memory, as glibc keeps it in the chunk header), then the payload.
    fn map_malloc(&mut self, size: u64) -> Result<(u64, u64), AllocError> {
        let ps = self.mem.page_size();
        let len = size
            .checked_add(MMAP_HEADER + ps - 1)
            .ok_or(AllocError::TooLarge(size))?
            & !(ps - 1);
        let va = self
            .mem
            .mmap(len)
            .map_err(|errno| AllocError::OutOfMemory { bytes: len, errno })?;
        self.stats.accesses += 1;
        self.mem.store(va, len)?;
        self.stats.nr_mmap += 1;
        self.mapped_bytes += len;
        Ok((va + MMAP_HEADER, len))
    }

    /// `malloc(size)`: a pointer to at least `size` bytes, 16-byte aligned. `malloc(0)`
    /// returns a unique pointer, as glibc's does.
    pub fn malloc(&mut self, size: u64) -> Result<VirtAddr, AllocError> {
        self.stats.nr_malloc += 1;
        let r = self.malloc_inner(size);
        match r {
            Ok((p, block, mapped)) => {
                self.live.insert(
                    p,
                    Live {
                        requested: size,
                        block,
                        mapped,
                    },
                );
                self.ever.insert(p);
                self.stats.live_bytes += size;
                self.stats.live_block_bytes += block;
                self.account();
                Ok(VirtAddr(p))
            }
            Err(e) => {
                if matches!(e, AllocError::OutOfMemory { .. } | AllocError::TooLarge(_)) {
                    self.stats.nr_failed += 1;
                }
                self.account();
                Err(e)
            }
        }
    }

    fn malloc_inner(&mut self, size: u64) -> Result<(u64, u64, bool), AllocError> {
        if size < self.config.mmap_threshold {
            match self.heap_malloc(size) {
                Ok(Some((p, b))) => return Ok((p, b, false)),
                Ok(None) => {}
                // glibc too falls back to mmap when the break cannot move.
                Err(AllocError::OutOfMemory { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let (p, b) = self.map_malloc(size)?;
        Ok((p, b, true))
    }

    /// Checks that `ptr` is a live block; the error says why not.
    fn check_live(&mut self, ptr: u64) -> Result<Live, AllocError> {
        match self.live.get(&ptr) {
            Some(l) => Ok(*l),
            None => {
                self.stats.nr_errors += 1;
                let addr = VirtAddr(ptr);
                Err(if self.ever.contains(&ptr) {
                    AllocError::DoubleFree { addr }
                } else {
                    AllocError::InvalidFree { addr }
                })
            }
        }
    }

    /// `free(ptr)`. Freeing null does nothing; a double free or a pointer this heap did
    /// not return is an error and changes nothing.
    pub fn free(&mut self, ptr: VirtAddr) -> Result<(), AllocError> {
        if ptr.0 == 0 {
            return Ok(());
        }
        let l = self.check_live(ptr.0)?;
        self.live.remove(&ptr.0);
        self.stats.nr_free += 1;
        self.stats.live_bytes -= l.requested;
        self.stats.live_block_bytes -= l.block;
        let r = if l.mapped {
            let va = ptr.0 - MMAP_HEADER;
            self.stats.accesses += 1;
            match self.mem.load(va) {
                Ok(len) if len == l.block => {
                    self.stats.nr_munmap += 1;
                    self.mapped_bytes -= len;
                    self.mem
                        .munmap(va, len)
                        .map_err(|errno| AllocError::OutOfMemory { bytes: 0, errno })
                }
                Ok(_) => Err(AllocError::Corrupt {
                    addr: VirtAddr(va),
                    what: "mapped block's header does not hold its length",
                }),
                Err(e) => Err(e.into()),
            }
        } else {
            self.heap_free(ptr.0)
        };
        self.account();
        r
    }

    /// The bytes the block at `ptr` can hold (`malloc_usable_size`).
    pub fn usable_size(&mut self, ptr: VirtAddr) -> Result<u64, AllocError> {
        let l = self.check_live(ptr.0)?;
        Ok(l.block
            - if l.mapped {
                MMAP_HEADER
            } else if self.kind == AllocatorKind::Buddy {
                buddy::HEADER
            } else if self.kind == AllocatorKind::SimpleSegregated {
                0
            } else {
                tags::OVERHEAD
            })
    }

    /// `realloc(ptr, size)`: null `ptr` is `malloc`; `size` 0 frees and returns null.
    /// A block that is big enough already, and would be at least half full, stays
    /// where it is; otherwise the contents move to a new block (copied through the
    /// MMU) and the old one is freed. On failure the old block is untouched.
    pub fn realloc(&mut self, ptr: VirtAddr, size: u64) -> Result<VirtAddr, AllocError> {
        self.stats.nr_realloc += 1;
        if ptr.0 == 0 {
            return self.malloc(size);
        }
        let l = self.check_live(ptr.0)?;
        if size == 0 {
            self.free(ptr)?;
            return Ok(VirtAddr(0));
        }
        let usable = self.usable_size(ptr)?;
        // In place if the block fits and would not be more than half empty (a block
        // shrunk further moves, so its memory goes back to smaller requests and a
        // size-class allocator keeps every block in its own class).
        if size <= usable && size > usable / 2 && (!l.mapped || size >= self.config.mmap_threshold)
        {
            // In place: only the requested size changes.
            self.stats.live_bytes = self.stats.live_bytes - l.requested + size;
            if let Some(e) = self.live.get_mut(&ptr.0) {
                e.requested = size;
            }
            self.account();
            return Ok(ptr);
        }
        let new = self.malloc(size)?;
        let before = self.mem.nr_accesses;
        let r = self.mem.copy(new.0, ptr.0, l.requested.min(size));
        self.stats.accesses += self.mem.nr_accesses - before;
        r?;
        self.free(ptr)?;
        Ok(new)
    }

    /// `calloc(n, size)`: `n * size` zeroed bytes (an error if the product overflows).
    /// Mapped blocks are fresh zero pages and are not written, as in glibc.
    pub fn calloc(&mut self, n: u64, size: u64) -> Result<VirtAddr, AllocError> {
        self.stats.nr_calloc += 1;
        let bytes = n.checked_mul(size).ok_or(AllocError::TooLarge(u64::MAX))?;
        let p = self.malloc(bytes)?;
        if !self.live.get(&p.0).is_some_and(|l| l.mapped) {
            let before = self.mem.nr_accesses;
            let r = self.mem.fill(p.0, bytes, 0);
            self.stats.accesses += self.mem.nr_accesses - before;
            r?;
        }
        Ok(p)
    }

    /// The live blocks: (pointer, bytes requested), in address order.
    pub fn live_blocks(&self) -> Vec<(VirtAddr, u64)> {
        let mut v: Vec<(VirtAddr, u64)> = self
            .live
            .iter()
            .map(|(&p, l)| (VirtAddr(p), l.requested))
            .collect();
        v.sort_unstable();
        v
    }

    /// Every block of the `brk` heap in address order, as its headers describe it:
    /// (block start, bytes, allocated). Walks the heap (one load per block); for tests
    /// and teaching.
    pub fn heap_blocks(&mut self) -> Result<Vec<(VirtAddr, u64, bool)>, AllocError> {
        let m = &mut self.mem;
        let v = match &self.policy {
            Policy::Tags(p) => p.blocks(m)?,
            Policy::Simple(p) => p.blocks(m)?,
            Policy::Buddy(p) => p.blocks(m)?,
        };
        Ok(v.into_iter()
            .map(|(a, s, al)| (VirtAddr(a), s, al))
            .collect())
    }

    /// Bytes of the `brk` heap now (without mapped blocks).
    pub fn brk_bytes(&self) -> u64 {
        self.brk_heap_bytes()
    }
}

#[cfg(test)]
mod tests;
