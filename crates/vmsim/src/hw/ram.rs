//! Physical memory: frames of the machine's base page size.
//!
//! Only the frames that hold something other than zeros have host memory behind them:
//! a frame's contents are materialised on its first non-zero write (page-table frames,
//! and data frames when a run tracks data). Reading a frame that was never written
//! gives zeros, as freshly cleared RAM does. The per-frame index is a [`FrameArray`]:
//! its storage comes in chunks on first use, so RAM of any size the machine description
//! allows (up to 2^32 frames: 16 TiB of 4 KiB pages) costs the host a small directory
//! at boot and memory only for the frames a run uses.

use crate::addr::{Pfn, PhysAddr};
use thiserror::Error;

/// An access outside the machine's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("physical address {addr} (+{len} bytes) is outside RAM (0..{ram_bytes:#x})")]
pub struct OutOfRange {
    /// First byte of the access.
    pub addr: PhysAddr,
    /// Bytes accessed.
    pub len: u64,
    /// Size of RAM in bytes.
    pub ram_bytes: u64,
}

/// Hints the host CPU to bring the cache line holding `x` into its cache: for the
/// simulator's own data structures, a few steps before it needs them. No effect on
/// anything computed.
#[inline(always)]
pub(crate) fn prefetch_host<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86-64 baseline, so the instruction exists; a prefetch
    // never faults and reads nothing the program sees, and the pointer comes from a
    // live reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            x as *const T as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// [`prefetch_host`] of `v[i]`, if there is one.
#[inline(always)]
pub(crate) fn prefetch_at<T>(v: &[T], i: usize) {
    if let Some(x) = v.get(i) {
        prefetch_host(x);
    }
}

/// Asks the host kernel to back the bytes `start..start + len` of this process's memory
/// with transparent huge pages where it can (Linux's `MADV_HUGEPAGE`; nothing elsewhere,
/// or when the kernel says no), so that one host TLB entry covers 2 MiB instead of 4 KiB
/// of a large table the simulator reaches into at random. It takes effect on memory not
/// yet touched. No effect on anything computed.
fn advise_huge(start: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let (from, to) = (start.next_multiple_of(HUGE), (start + len) / HUGE * HUGE);
        if from < to {
            // SAFETY: the range lies inside an allocation this process owns (the
            // callers pass one); the advice only changes how the kernel backs it, never
            // its contents, and an error (an old kernel, THP off) leaves it as it was.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}

/// `len` zeroed elements in memory advised to be backed by huge pages ([`advise_huge`]).
/// Nothing is written: a large zeroed allocation comes straight from the host kernel
/// untouched, so the advice is in place before any page of it is first touched, and
/// the pages a run never touches cost nothing. That holds where `vec!` asks the
/// allocator for zeroed memory, which std does for integers and arrays of at most 16
/// of them (the callers' types) but not for structs, whose every element it writes
/// before the advice; and where the allocator maps the block fresh rather than
/// reusing (and clearing) freed heap memory, as glibc does for large blocks. Either
/// way the contents are zero; only the cost differs.
pub(crate) fn huge_zeroed_vec<T: Clone + Default>(len: usize) -> Vec<T> {
    let v = vec![T::default(); len];
    advise_huge(v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
    v
}

/// Frames per chunk of a [`FrameArray`], as a shift.
const CHUNK_SHIFT: u32 = 12;
/// Frames per chunk of a [`FrameArray`].
const CHUNK: usize = 1 << CHUNK_SHIFT;
/// Most entries a [`FrameArray`] holds in one flat allocation: 2^24 frames, 64 GiB of
/// 4 KiB pages.
const FLAT_MAX: u64 = 1 << 24;

/// Per-frame metadata for RAM of any size: an array indexed by frame number whose
/// entries read as zero (`T::default()`) until written.
///
/// Up to 2^24 entries (64 GiB of 4 KiB frames) it is one flat allocation, made zeroed
/// so the host commits only the pages that are written (and made fallibly: if the host
/// refuses it, the array is chunked instead). Beyond that, or when refused, storage
/// comes in chunks of 4096 entries on the first write of a value other than zero: the
/// host pays a directory of one pointer per chunk (8 MiB for 2^32 frames) and a chunk
/// per stretch of frames a run uses. So a machine with terabytes of simulated RAM boots
/// in a few megabytes and cannot fail for want of host memory, while the common sizes
/// keep the flat array's single load.
#[derive(Clone)]
pub struct FrameArray<T> {
    /// Every entry, when flat; empty when chunked.
    flat: Vec<T>,
    /// The chunks, when chunked (`None`: all zero).
    chunks: Vec<Option<Box<[T; CHUNK]>>>,
    len: u64,
}

impl<T> std::fmt::Debug for FrameArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameArray")
            .field("len", &self.len)
            .field("flat", &!self.flat.is_empty())
            .field("chunks_allocated", &self.chunks.iter().flatten().count())
            .finish()
    }
}

impl<T: Zeroed + Default + PartialEq> FrameArray<T> {
    /// `len` entries, all zero: flat up to 2^24 entries if the host gives the memory,
    /// else chunked with no chunk allocated.
    pub fn new(len: u64) -> FrameArray<T> {
        let flat = if len <= FLAT_MAX {
            try_zeroed_vec(len)
        } else {
            None
        };
        match flat {
            Some(flat) if len > 0 => FrameArray {
                flat,
                chunks: Vec::new(),
                len,
            },
            _ => Self::chunked(len),
        }
    }

    /// `len` entries, all zero, chunked (none allocated) whatever the size.
    pub fn chunked(len: u64) -> FrameArray<T> {
        let n = len.div_ceil(CHUNK as u64) as usize;
        FrameArray {
            flat: Vec::new(),
            chunks: std::iter::repeat_with(|| None).take(n).collect(),
            len,
        }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entry `i`, or `None` beyond the end.
    #[inline]
    pub fn get(&self, i: u64) -> Option<T> {
        (i < self.len).then(|| self.load(i))
    }

    /// Entry `i` (zero if never written, and beyond the end).
    #[inline(always)]
    pub fn load(&self, i: u64) -> T {
        match self.flat.get(i as usize) {
            Some(&v) => v,
            None => self.load_chunked(i),
        }
    }

    /// Entry `i` when the array is flat and `i` is within it; `None` otherwise (a
    /// chunked array, or beyond the end).
    #[inline(always)]
    pub fn load_flat(&self, i: u64) -> Option<T> {
        self.flat.get(i as usize).copied()
    }

    #[inline(always)]
    fn load_chunked(&self, i: u64) -> T {
        match self.chunks.get((i >> CHUNK_SHIFT) as usize) {
            Some(Some(c)) => c[i as usize & (CHUNK - 1)],
            _ => T::default(),
        }
    }

    /// A reference to entry `i` if it has storage (always when flat; when chunked, if
    /// its chunk is allocated): for prefetching, and to tell frames never written.
    #[inline]
    pub fn slot(&self, i: u64) -> Option<&T> {
        if let Some(v) = self.flat.get(i as usize) {
            return Some(v);
        }
        match self.chunks.get((i >> CHUNK_SHIFT) as usize) {
            Some(Some(c)) => Some(&c[i as usize & (CHUNK - 1)]),
            _ => None,
        }
    }

    /// Entry `i` to change, allocating its chunk if need be.
    ///
    /// # Panics
    /// If `i` is beyond the end (as indexing a slice would).
    #[inline(always)]
    pub fn get_mut(&mut self, i: u64) -> &mut T {
        if (i as usize) < self.flat.len() {
            return &mut self.flat[i as usize];
        }
        self.chunked_mut(i)
    }

    #[inline(never)]
    fn chunked_mut(&mut self, i: u64) -> &mut T {
        assert!(i < self.len, "entry {i} beyond {} entries", self.len);
        let c = self.chunks[(i >> CHUNK_SHIFT) as usize].get_or_insert_with(Self::chunk);
        &mut c[i as usize & (CHUNK - 1)]
    }

    /// Sets entry `i` to `v`; setting zero where nothing was written allocates nothing.
    ///
    /// # Panics
    /// If `i` is beyond the end.
    #[inline(always)]
    pub fn set(&mut self, i: u64, v: T) {
        if let Some(e) = self.flat.get_mut(i as usize) {
            *e = v;
            return;
        }
        self.set_chunked(i, v);
    }

    #[inline(never)]
    fn set_chunked(&mut self, i: u64, v: T) {
        if v == T::default() {
            assert!(i < self.len, "entry {i} beyond {} entries", self.len);
            if let Some(Some(c)) = self.chunks.get_mut((i >> CHUNK_SHIFT) as usize) {
                c[i as usize & (CHUNK - 1)] = v;
            }
            return;
        }
        *self.chunked_mut(i) = v;
    }

    #[cold]
    fn chunk() -> Box<[T; CHUNK]> {
        let v: Box<[T]> = vec![T::default(); CHUNK].into_boxed_slice();
        match v.try_into() {
            Ok(c) => c,
            Err(_) => unreachable!("a chunk has CHUNK entries"),
        }
    }

    /// Host bytes the array may use: the whole flat allocation (the host commits only
    /// its written pages), or the directory and the allocated chunks.
    pub fn host_bytes(&self) -> u64 {
        let size = std::mem::size_of::<T>() as u64;
        let chunk = CHUNK as u64 * size;
        self.flat.len() as u64 * size
            + self.chunks.len() as u64 * 8
            + self.chunks.iter().flatten().count() as u64 * chunk
    }
}

/// Plain integers (and arrays of them), for which all-zero bytes are a value: what a
/// [`FrameArray`] holds.
///
/// # Safety
/// Implement only for types whose all-zero bit pattern is a valid value.
pub unsafe trait Zeroed: Copy {}
// SAFETY: zero is a valid integer.
unsafe impl Zeroed for u8 {}
// SAFETY: as above.
unsafe impl Zeroed for u16 {}
// SAFETY: as above.
unsafe impl Zeroed for u32 {}
// SAFETY: as above.
unsafe impl Zeroed for u64 {}
// SAFETY: an array of integers is zero integers.
unsafe impl<T: Zeroed, const N: usize> Zeroed for [T; N] {}

/// `n` zeros, allocated zeroed (the host commits the pages only when they are
/// written) and advised to be backed by huge pages ([`advise_huge`]), or `None` when
/// the host cannot provide them: the fallible `vec![0; n]`.
pub fn try_zeroed_vec<T: Zeroed>(n: u64) -> Option<Vec<T>> {
    let n = usize::try_from(n).ok()?;
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).ok()?;
    // SAFETY: the layout's size is not zero (n > 0 and T is not zero-sized).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return None;
    }
    advise_huge(ptr as usize, layout.size());
    // SAFETY: `ptr` comes from the global allocator with the layout of `n` `T`s, so a
    // Vec of capacity `n` may own it; its `n` elements are zero bytes, a valid `T`
    // (`Zeroed`).
    Some(unsafe { Vec::from_raw_parts(ptr.cast::<T>(), n, n) })
}

/// The machine's physical memory.
#[derive(Clone, Debug)]
pub struct PhysMem {
    page_shift: u32,
    nr_frames: u64,
    /// Per frame: 0 when the frame reads as zeros, otherwise 1 + its slot in `store`.
    slot_of: FrameArray<u32>,
    /// Materialised frames, `page_size` bytes each.
    store: Vec<u8>,
    /// Slots of `store` no frame uses any more.
    free_slots: Vec<u32>,
}

impl PhysMem {
    /// RAM of `nr_frames` frames of `1 << page_shift` bytes, all zero.
    ///
    /// # Panics
    /// If `nr_frames` exceeds `u32::MAX` (machine-description validation rejects that).
    pub fn new(page_shift: u32, nr_frames: u64) -> PhysMem {
        assert!(nr_frames <= u32::MAX as u64, "too many frames");
        PhysMem {
            page_shift,
            nr_frames,
            slot_of: FrameArray::new(nr_frames),
            store: Vec::new(),
            free_slots: Vec::new(),
        }
    }

    /// Number of frames.
    #[inline]
    pub fn nr_frames(&self) -> u64 {
        self.nr_frames
    }

    /// Size of RAM in bytes.
    #[inline]
    pub fn size(&self) -> u64 {
        self.nr_frames << self.page_shift
    }

    /// Size of a frame in bytes.
    #[inline]
    pub fn frame_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// Number of frames whose contents are held in host memory.
    pub fn nr_materialised(&self) -> u64 {
        (self.store.len() as u64 >> self.page_shift) - self.free_slots.len() as u64
    }

    /// Host bytes used for frame contents and the frame index.
    pub fn host_bytes(&self) -> u64 {
        self.store.capacity() as u64 + self.slot_of.host_bytes()
    }

    #[inline]
    fn check(&self, pa: PhysAddr, len: u64) -> Result<(), OutOfRange> {
        match pa.0.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(OutOfRange {
                addr: pa,
                len,
                ram_bytes: self.size(),
            }),
        }
    }

    #[inline]
    fn frame_bytes(&self, pfn: u64) -> Option<&[u8]> {
        let slot = self.slot_of.load(pfn);
        if slot == 0 {
            return None;
        }
        let start = ((slot - 1) as usize) << self.page_shift;
        Some(&self.store[start..start + (1 << self.page_shift)])
    }

    fn frame_bytes_mut(&mut self, pfn: u64) -> &mut [u8] {
        let mut slot = self.slot_of.load(pfn);
        if slot == 0 {
            let s = match self.free_slots.pop() {
                Some(s) => {
                    let start = (s as usize) << self.page_shift;
                    self.store[start..start + (1 << self.page_shift)].fill(0);
                    s
                }
                None => {
                    let s = (self.store.len() >> self.page_shift) as u32;
                    let cap = self.store.capacity();
                    self.store
                        .resize(self.store.len() + (1 << self.page_shift), 0);
                    if self.store.capacity() != cap {
                        // Grown (and perhaps moved): the tables in it are read at
                        // random, so one host TLB entry should cover 2 MiB of them.
                        advise_huge(self.store.as_ptr() as usize, self.store.capacity());
                    }
                    s
                }
            };
            slot = s + 1;
            self.slot_of.set(pfn, slot);
        }
        let start = ((slot - 1) as usize) << self.page_shift;
        &mut self.store[start..start + (1 << self.page_shift)]
    }

    /// The contents of frame `pfn`, or `None` if it reads as zeros (never written with
    /// anything else since it was last zeroed) or lies outside RAM.
    pub fn frame_contents(&self, pfn: u64) -> Option<&[u8]> {
        if pfn >= self.nr_frames {
            return None;
        }
        self.frame_bytes(pfn)
    }

    /// The `len` bytes from `pa` cut at frame boundaries, in order: each piece's frame,
    /// its offset in the frame, its offset in the range and its length.
    fn pieces(&self, pa: PhysAddr, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
        let (shift, size) = (self.page_shift, self.frame_size());
        let mut done = 0usize;
        std::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let a = pa.0 + done as u64;
            let off = (a & (size - 1)) as usize;
            let n = (len - done).min(size as usize - off);
            let piece = (a >> shift, off, done, n);
            done += n;
            Some(piece)
        })
    }

    /// Reads `buf.len()` bytes starting at `pa`; the range may span frames.
    pub fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), OutOfRange> {
        self.check(pa, buf.len() as u64)?;
        for (pfn, off, at, n) in self.pieces(pa, buf.len()) {
            let dst = &mut buf[at..at + n];
            match self.frame_bytes(pfn) {
                Some(f) => dst.copy_from_slice(&f[off..off + n]),
                None => dst.fill(0),
            }
        }
        Ok(())
    }

    /// Writes `data` starting at `pa`; the range may span frames. Writing zeros to a
    /// frame that reads as zeros materialises nothing.
    pub fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), OutOfRange> {
        self.check(pa, data.len() as u64)?;
        for (pfn, off, at, n) in self.pieces(pa, data.len()) {
            let chunk = &data[at..at + n];
            if self.slot_of.load(pfn) != 0 || chunk.iter().any(|&b| b != 0) {
                self.frame_bytes_mut(pfn)[off..off + n].copy_from_slice(chunk);
            }
        }
        Ok(())
    }

    /// Hints the host to fetch where frame `pfn`'s contents are kept, which clearing
    /// it for its next use reads ([`PhysMem::zero_frames`]). No effect on what the
    /// simulation computes.
    #[inline]
    pub fn prefetch_frame_index(&self, pfn: Pfn) {
        if let Some(s) = self.slot_of.slot(pfn.0) {
            prefetch_host(s);
        }
    }

    /// Hints the host to bring the bytes at `pa` into its cache (a PTE about to be
    /// read). No effect on what the simulation computes; nothing for frames that read
    /// as zeros or addresses beyond RAM.
    #[inline]
    pub fn prefetch(&self, pa: PhysAddr) {
        let pfn = pa.0 >> self.page_shift;
        let slot = self.slot_of.load(pfn);
        if slot == 0 {
            return;
        }
        let at =
            (((slot - 1) as usize) << self.page_shift) + (pa.0 & (self.frame_size() - 1)) as usize;
        if let Some(b) = self.store.get(at) {
            prefetch_host(b);
        }
    }

    /// Reads a little-endian value of `bytes` bytes (1 to 8) at `pa`, which must not
    /// cross a frame boundary (PTEs are naturally aligned).
    #[inline(always)]
    pub fn read_uint(&self, pa: PhysAddr, bytes: u32) -> Result<u64, OutOfRange> {
        if bytes == 8 {
            if let Some(v) = self.read_u64_flat(pa) {
                return Ok(v);
            }
        }
        self.read_uint_any(pa, bytes)
    }

    /// An aligned eight-byte read where the frame index is flat (every common machine):
    /// what [`PhysMem::read_uint`] gives, in a dozen instructions instead of a call. A
    /// page walk reads four or five entries per TLB miss this way. `None` for anything
    /// else (misaligned, beyond RAM, a chunked index), which the general read handles.
    #[inline(always)]
    fn read_u64_flat(&self, pa: PhysAddr) -> Option<u64> {
        let slot = self.flat_slot(pa)?;
        if slot == 0 {
            return Some(0);
        }
        let at = self.store_at(slot, pa);
        let b = self.store.get(at..at + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// The frame slot (0: the frame reads as zeros) of an eight-byte aligned `pa` whose
    /// frame the flat index covers, so below `nr_frames`: the eight bytes lie in RAM.
    /// `None` for a misaligned address, one beyond RAM, or a chunked index.
    #[inline(always)]
    fn flat_slot(&self, pa: PhysAddr) -> Option<u32> {
        if pa.0 & 7 != 0 {
            return None;
        }
        self.slot_of.load_flat(pa.0 >> self.page_shift)
    }

    /// Where `pa`'s byte lies in `store`, its frame being in slot `slot` (not 0).
    #[inline(always)]
    fn store_at(&self, slot: u32, pa: PhysAddr) -> usize {
        (((slot - 1) as usize) << self.page_shift) + (pa.0 & (self.frame_size() - 1)) as usize
    }

    /// [`PhysMem::read_uint`] for any width and index.
    #[inline(never)]
    fn read_uint_any(&self, pa: PhysAddr, bytes: u32) -> Result<u64, OutOfRange> {
        self.check(pa, bytes as u64)?;
        let pfn = pa.0 >> self.page_shift;
        let off = (pa.0 & (self.frame_size() - 1)) as usize;
        let Some(f) = self.frame_bytes(pfn) else {
            return Ok(0);
        };
        // Eight-byte entries (x86-64, RISC-V) as one load; other widths byte by byte
        // (a variable-length copy would be a call to memmove).
        if bytes == 8 {
            if let Some(b) = f
                .get(off..off + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
            {
                return Ok(u64::from_le_bytes(b));
            }
        }
        let mut v = 0u64;
        for (i, &b) in f[off..off + bytes as usize].iter().enumerate() {
            v |= (b as u64) << (8 * i);
        }
        Ok(v)
    }

    /// Writes the low `bytes` bytes (1 to 8) of `value` little-endian at `pa`, which must
    /// not cross a frame boundary.
    #[inline(always)]
    pub fn write_uint(&mut self, pa: PhysAddr, bytes: u32, value: u64) -> Result<(), OutOfRange> {
        if bytes == 8 && self.write_u64_flat(pa, value) {
            return Ok(());
        }
        self.write_uint_any(pa, bytes, value)
    }

    /// An aligned eight-byte write into a frame that holds bytes already, where the
    /// frame index is flat (as [`PhysMem::read_u64_flat`] reads): true if done, false
    /// for anything else (which the general write handles, making the frame if need
    /// be).
    #[inline(always)]
    fn write_u64_flat(&mut self, pa: PhysAddr, value: u64) -> bool {
        let slot = match self.flat_slot(pa) {
            Some(s) if s != 0 => s,
            _ => return false,
        };
        let at = self.store_at(slot, pa);
        match self.store.get_mut(at..at + 8) {
            Some(dst) => {
                dst.copy_from_slice(&value.to_le_bytes());
                true
            }
            None => false,
        }
    }

    /// [`PhysMem::write_uint`] for any width, index and frame.
    #[inline(never)]
    fn write_uint_any(&mut self, pa: PhysAddr, bytes: u32, value: u64) -> Result<(), OutOfRange> {
        self.check(pa, bytes as u64)?;
        let pfn = pa.0 >> self.page_shift;
        if value == 0 && self.slot_of.load(pfn) == 0 {
            return Ok(());
        }
        let off = (pa.0 & (self.frame_size() - 1)) as usize;
        let v = value.to_le_bytes();
        let f = self.frame_bytes_mut(pfn);
        if bytes == 8 {
            if let Some(dst) = f.get_mut(off..off + 8) {
                dst.copy_from_slice(&v);
                return Ok(());
            }
        }
        for (d, &b) in f[off..off + bytes as usize].iter_mut().zip(&v) {
            *d = b;
        }
        Ok(())
    }

    /// Makes `n` frames from `pfn` read as zeros again and returns their host memory to
    /// the pool (what a kernel does when it clears a frame it hands out).
    pub fn zero_frames(&mut self, pfn: Pfn, n: u64) -> Result<(), OutOfRange> {
        self.check(pfn.addr(self.page_shift), n << self.page_shift)?;
        for f in pfn.0..pfn.0 + n {
            let slot = self.slot_of.load(f);
            if slot != 0 {
                self.slot_of.set(f, 0);
                self.free_slots.push(slot - 1);
            }
        }
        Ok(())
    }

    /// Copies the contents of frame `src` to frame `dst` (a copy-on-write break).
    pub fn copy_frame(&mut self, src: Pfn, dst: Pfn) -> Result<(), OutOfRange> {
        self.check(src.addr(self.page_shift), self.frame_size())?;
        self.check(dst.addr(self.page_shift), self.frame_size())?;
        match self.frame_bytes(src.0) {
            None => self.zero_frames(dst, 1),
            Some(_) => {
                let mut buf = vec![0u8; self.frame_size() as usize];
                self.read(src.addr(self.page_shift), &mut buf)?;
                self.frame_bytes_mut(dst.0).copy_from_slice(&buf);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An eight-byte read gives what the general read gives, on a flat index and a
    /// chunked one, aligned or not, in frames written and not, at the end of RAM and
    /// beyond it.
    #[test]
    fn the_fast_eight_byte_read_is_the_general_one() {
        for chunked in [false, true] {
            let mut ram = PhysMem::new(12, 64);
            if chunked {
                ram.slot_of = FrameArray::chunked(64);
            }
            for f in [0u64, 3, 63] {
                ram.write_uint(PhysAddr(f * 4096 + 8), 8, 0x0123_4567_89ab_cdef ^ f)
                    .unwrap();
                ram.write_uint(PhysAddr(f * 4096 + 4088), 8, u64::MAX - f)
                    .unwrap();
            }
            let size = ram.size();
            for pa in [0, 8, 5, 16, 4088, 3 * 4096 + 8, 3 * 4096 + 9, 7 * 4096]
                .into_iter()
                .chain([size - 8, size - 4, size, size + 8, u64::MAX - 7])
            {
                let pa = PhysAddr(pa);
                assert_eq!(
                    ram.read_uint(pa, 8),
                    ram.read_uint_any(pa, 8),
                    "{pa:?} chunked {chunked}"
                );
            }
            assert_eq!(ram.read_uint(PhysAddr(8), 8), Ok(0x0123_4567_89ab_cdef));
            assert_eq!(ram.read_uint(PhysAddr(size - 8), 8), Ok(u64::MAX - 63));
            assert!(ram.read_uint(PhysAddr(size), 8).is_err());
        }
    }

    /// An eight-byte write leaves what the general write leaves: into frames with
    /// bytes and without (zero or not), aligned or not, flat or chunked, and refused
    /// beyond RAM.
    #[test]
    fn the_fast_eight_byte_write_is_the_general_one() {
        for chunked in [false, true] {
            let mut fast = PhysMem::new(12, 16);
            if chunked {
                fast.slot_of = FrameArray::chunked(16);
            }
            let mut slow = fast.clone();
            let writes = [
                (8u64, 7u64),
                (4096 + 16, 0),
                (2 * 4096, 0),
                (8, 0),
                (13, 0xabcd),
            ]
            .into_iter()
            .chain([(4096 + 16, u64::MAX), (15 * 4096 + 4088, 1), (16 * 4096, 1)]);
            for (pa, v) in writes {
                let pa = PhysAddr(pa);
                assert_eq!(
                    fast.write_uint(pa, 8, v),
                    slow.write_uint_any(pa, 8, v),
                    "{pa:?}"
                );
                assert_eq!(fast.nr_materialised(), slow.nr_materialised(), "{pa:?}");
                for f in 0..16u64 {
                    for off in (0..4096).step_by(8) {
                        let at = PhysAddr(f * 4096 + off);
                        assert_eq!(fast.read_uint(at, 8), slow.read_uint(at, 8));
                    }
                }
            }
            assert_eq!(fast.read_uint(PhysAddr(4096 + 16), 8), Ok(u64::MAX));
        }
    }

    #[test]
    fn unwritten_memory_reads_zero_and_costs_nothing() {
        let ram = PhysMem::new(12, 1 << 20);
        assert_eq!(ram.read_uint(PhysAddr(0x1234_5000), 8), Ok(0));
        assert_eq!(ram.nr_materialised(), 0);
        assert_eq!(ram.size(), 4 << 30);
    }

    #[test]
    fn writes_read_back_across_frames() {
        let mut ram = PhysMem::new(4, 16); // 16-byte frames
        let data: Vec<u8> = (1..=40).collect();
        ram.write(PhysAddr(10), &data).unwrap();
        let mut back = vec![0; 40];
        ram.read(PhysAddr(10), &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(ram.nr_materialised(), 4);
        ram.write_uint(PhysAddr(0x80), 2, 0xbeef).unwrap();
        assert_eq!(ram.read_uint(PhysAddr(0x80), 2), Ok(0xbeef));
        assert_eq!(ram.read_uint(PhysAddr(0x80), 1), Ok(0xef));
    }

    #[test]
    fn zeroing_frees_and_reuses_host_memory() {
        let mut ram = PhysMem::new(12, 8);
        ram.write_uint(PhysAddr(0x1000), 8, 42).unwrap();
        ram.zero_frames(Pfn(1), 1).unwrap();
        assert_eq!(ram.nr_materialised(), 0);
        assert_eq!(ram.read_uint(PhysAddr(0x1000), 8), Ok(0));
        ram.write_uint(PhysAddr(0x3008), 8, 7).unwrap();
        assert_eq!(ram.nr_materialised(), 1);
        assert_eq!(
            ram.read_uint(PhysAddr(0x3000), 8),
            Ok(0),
            "reused slot must be cleared"
        );
        ram.copy_frame(Pfn(3), Pfn(5)).unwrap();
        assert_eq!(ram.read_uint(PhysAddr(0x5008), 8), Ok(7));
        ram.copy_frame(Pfn(0), Pfn(5)).unwrap();
        assert_eq!(ram.read_uint(PhysAddr(0x5008), 8), Ok(0));
    }

    #[test]
    fn the_largest_ram_costs_a_directory_until_used() {
        // 2^32 - 1 frames of 4 KiB: 16 TiB, the most a machine description allows.
        let frames = u32::MAX as u64;
        let mut ram = PhysMem::new(12, frames);
        let empty = ram.host_bytes();
        assert!(empty <= 9 << 20, "{empty} bytes before any use");
        let last = PhysAddr((frames - 1) << 12);
        assert_eq!(ram.read_uint(last, 8), Ok(0));
        ram.write_uint(last, 8, 0x1234).unwrap();
        assert_eq!(ram.read_uint(last, 8), Ok(0x1234));
        // One chunk of the index and one frame of contents more.
        assert_eq!(ram.host_bytes() - empty, 4096 * 4 + 4096);
        ram.zero_frames(Pfn(frames - 1), 1).unwrap();
        assert_eq!(ram.read_uint(last, 8), Ok(0));
    }

    #[test]
    fn frame_arrays_read_zero_until_written() {
        let mut a: FrameArray<u16> = FrameArray::chunked(10_000);
        assert_eq!(
            (a.len(), a.get(9_999), a.get(10_000)),
            (10_000, Some(0), None)
        );
        a.set(5_000, 0);
        assert_eq!(a.host_bytes(), 3 * 8, "zero writes allocate nothing");
        a.set(5_000, 7);
        *a.get_mut(9_999) += 2;
        assert_eq!((a.load(5_000), a.load(9_999), a.load(4_999)), (7, 2, 0));
        assert_eq!(a.host_bytes(), 3 * 8 + 2 * 4096 * 2);
        assert!(a.slot(0).is_none() && a.slot(5_000) == Some(&7));
        let z: Vec<u32> = try_zeroed_vec(1000).unwrap();
        assert!(z.len() == 1000 && z.iter().all(|&v| v == 0));
        assert!(
            try_zeroed_vec::<u64>(u64::MAX / 4).is_none(),
            "the host cannot give 2^65 bytes"
        );
        // Small arrays are flat: every entry has storage, zero until written.
        let mut f: FrameArray<u16> = FrameArray::new(10_000);
        assert!(f.slot(0).is_some() && f.get(10_000).is_none());
        f.set(9_999, 3);
        assert_eq!((f.load(9_999), f.load(0), f.host_bytes()), (3, 0, 20_000));
    }

    #[test]
    fn out_of_range_is_an_error() {
        let mut ram = PhysMem::new(12, 2);
        let e = ram.read_uint(PhysAddr(0x2000), 8).unwrap_err();
        assert_eq!(e.ram_bytes, 0x2000);
        assert!(e.to_string().contains("outside RAM"));
        assert!(ram.write(PhysAddr(0x1ffc), &[1; 8]).is_err());
        assert!(ram.read(PhysAddr(u64::MAX), &mut [0; 2]).is_err());
        assert!(ram.zero_frames(Pfn(1), 2).is_err());
    }
}
