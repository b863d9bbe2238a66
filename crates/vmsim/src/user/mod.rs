//! User space: programs' own memory managers, running inside a simulated process.
//!
//! A `malloc` and a garbage collector are ordinary user code: they ask the kernel for
//! memory (`brk`, `mmap`), keep their bookkeeping (headers, footers, free-list links,
//! mark bits, forwarding addresses) in that memory, and give it back (`brk` down,
//! `munmap`). Here they do exactly that on a [`crate::os::Kernel`]: every word of
//! metadata they read or write is a load or store of the simulated process, translated
//! by the simulated MMU, so their TLB misses, page faults and resident set are counted
//! like any program's. A best-fit search that walks a long free list shows up as
//! accesses and faults, not just as host time.
//!
//! - [`alloc`]: allocators behind one [`alloc::Heap`] handle (`malloc`, `free`,
//!   `realloc`, `calloc`): implicit free lists with boundary tags (first, next and best
//!   fit), explicit free lists (LIFO and address-ordered), segregated fits, and a
//!   binary buddy system.
//! - [`gc`]: collectors over one object model behind one [`gc::GcHeap`] handle:
//!   reference counting, mark-sweep, mark-compact, semispace copying (Cheney) and a
//!   generational collector.
//! - [`workload`]: seeded allocation traces and object-graph mutators that drive them,
//!   and the reports ([`workload::AllocReport`], [`workload::GcReport`]).
//!
//! ```
//! use vmsim::hw::MachineSpec;
//! use vmsim::os::{Kernel, KernelConfig, Program};
//! use vmsim::user::alloc::{AllocConfig, AllocError, AllocatorKind, Heap};
//! use vmsim::user::gc::{CollectorKind, GcConfig, GcHeap};
//!
//! let mut k = Kernel::boot(MachineSpec::preset("x86-64").unwrap(), KernelConfig::default());
//! let pid = k.spawn(&Program::small("app", k.page_size())).unwrap();
//! let mut heap = Heap::new(&mut k, pid, AllocatorKind::BestFit, AllocConfig::default()).unwrap();
//! let p = heap.malloc(100).unwrap();
//! heap.mem().write(p.0, b"hello").unwrap();
//! heap.free(p).unwrap();
//! assert_eq!(heap.free(p), Err(AllocError::DoubleFree { addr: p }));
//! assert!(heap.stats().accesses > 0);
//! drop(heap);
//!
//! let pid = k.spawn(&Program::small("lisp", k.page_size())).unwrap();
//! let mut h = GcHeap::new(&mut k, pid, CollectorKind::Copying, GcConfig::default()).unwrap();
//! h.alloc(0, 1, 8).unwrap();              // root 0 = a new object, one field
//! h.alloc(1, 0, 8).unwrap();              // root 1 = another
//! h.store_field(0, 0, Some(1)).unwrap();  // root0.field0 = root1
//! h.set_root(1, None).unwrap();
//! h.collect().unwrap();                   // both survive, moved to the other half
//! assert_eq!(h.objects().unwrap().len(), 2);
//! assert_eq!(h.stats().objects_moved, 2);
//! ```
//!
//! What stays on the host: the few "global variables" of each manager (list heads,
//! the heap's bounds, the root set, which plays the part of registers and stack
//! slots), scratch stacks for marking, and a checking table of live blocks that lets
//! [`alloc::Heap`] report double and invalid frees exactly (as a debugging malloc
//! would). None of those cost simulated accesses; everything else does.

pub mod alloc;
pub mod gc;
#[cfg(test)]
mod test_support;
pub mod workload;

use crate::addr::VirtAddr;
use crate::os::{AccessError, Errno, Kernel, MmapArgs, Pid, Prot};

/// A simulated process's memory as its user code sees it: word loads and stores
/// through the MMU, and the syscalls that grow and shrink it. Counts the accesses it
/// makes, so a caller can charge them to an operation (a search, a collection pause).
pub struct Mem<'k> {
    kernel: &'k mut Kernel,
    pid: Pid,
    /// Simulated accesses made so far (one per word, one per page of a block copy).
    pub nr_accesses: u64,
    scratch: Vec<u8>,
}

impl<'k> Mem<'k> {
    /// The memory of process `pid` of `kernel`.
    pub fn new(kernel: &'k mut Kernel, pid: Pid) -> Mem<'k> {
        Mem {
            kernel,
            pid,
            nr_accesses: 0,
            scratch: Vec::new(),
        }
    }

    /// The process.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The kernel (for its counters).
    pub fn kernel(&self) -> &Kernel {
        self.kernel
    }

    /// The kernel, mutably (to run other processes or syscalls in between).
    pub fn kernel_mut(&mut self) -> &mut Kernel {
        self.kernel
    }

    /// The machine's page size.
    pub fn page_size(&self) -> u64 {
        self.kernel.page_size()
    }

    /// Loads the little-endian word at `va`.
    #[inline]
    pub fn load(&mut self, va: u64) -> Result<u64, AccessError> {
        self.nr_accesses += 1;
        self.kernel.read_u64(self.pid, VirtAddr(va))
    }

    /// Stores the little-endian word `v` at `va`.
    #[inline]
    pub fn store(&mut self, va: u64, v: u64) -> Result<(), AccessError> {
        self.nr_accesses += 1;
        self.kernel.write_u64(self.pid, VirtAddr(va), v)
    }

    /// Reads bytes at `va` (one access per page touched).
    pub fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        self.nr_accesses += self.pages_touched(va, buf.len() as u64);
        self.kernel.read(self.pid, VirtAddr(va), buf)
    }

    /// Writes bytes at `va` (one access per page touched).
    pub fn write(&mut self, va: u64, data: &[u8]) -> Result<(), AccessError> {
        self.nr_accesses += self.pages_touched(va, data.len() as u64);
        self.kernel.write(self.pid, VirtAddr(va), data)
    }

    /// Fills `len` bytes at `va` with `byte`, a page at a time.
    pub fn fill(&mut self, va: u64, len: u64, byte: u8) -> Result<(), AccessError> {
        let ps = self.page_size();
        let mut buf = std::mem::take(&mut self.scratch);
        let mut at = va;
        let end = va.saturating_add(len);
        let mut r = Ok(());
        while at < end {
            let n = (ps - at % ps).min(end - at) as usize;
            buf.clear();
            buf.resize(n, byte);
            if let Err(e) = self.write(at, &buf) {
                r = Err(e);
                break;
            }
            at += n as u64;
        }
        self.scratch = buf;
        r
    }

    /// Copies `len` bytes from `src` to `dst` (as `memmove`: overlap is fine), a page at
    /// a time.
    pub fn copy(&mut self, dst: u64, src: u64, len: u64) -> Result<(), AccessError> {
        if dst == src || len == 0 {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.resize(len.min(1 << 24) as usize, 0);
        let mut r = Ok(());
        let mut done = 0;
        // Forward copies are safe when dst < src; otherwise copy from the end.
        let chunk = buf.len() as u64;
        while done < len {
            let n = chunk.min(len - done);
            let off = if dst < src { done } else { len - done - n };
            let b = &mut buf[..n as usize];
            if let Err(e) = self.read(src + off, b) {
                r = Err(e);
                break;
            }
            let b = &buf[..n as usize];
            if let Err(e) = self.write(dst + off, b) {
                r = Err(e);
                break;
            }
            done += n;
        }
        self.scratch = buf;
        r
    }

    fn pages_touched(&self, va: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let ps = self.page_size();
        (va.saturating_add(len - 1) / ps) - va / ps + 1
    }

    /// The program break now.
    pub fn brk(&mut self) -> Result<u64, Errno> {
        self.kernel.brk(self.pid, None).map(|v| v.0)
    }

    /// Moves the program break to `new`.
    pub fn set_brk(&mut self, new: u64) -> Result<u64, Errno> {
        self.kernel.brk(self.pid, Some(VirtAddr(new))).map(|v| v.0)
    }

    /// Maps `len` bytes of private anonymous read-write memory.
    pub fn mmap(&mut self, len: u64) -> Result<u64, Errno> {
        self.kernel
            .mmap(self.pid, MmapArgs::anon(len, Prot::RW))
            .map(|v| v.0)
    }

    /// Unmaps `len` bytes at `va`.
    pub fn munmap(&mut self, va: u64, len: u64) -> Result<(), Errno> {
        self.kernel.munmap(self.pid, VirtAddr(va), len)
    }
}
