//! Physical memory: frames of the machine's base page size.
//!
//! Only the frames that hold something other than zeros have host memory behind them:
//! a frame's contents are materialised on its first non-zero write (page-table frames,
//! and data frames when a run tracks data). Reading a frame that was never written
//! gives zeros, as freshly cleared RAM does. The per-frame index is a `Vec<u32>`
//! allocated zeroed, so the host only commits the parts of it that are touched: 64 GiB
//! of simulated RAM costs nothing until it is used, and at most 64 MiB of index.

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

/// The machine's physical memory.
#[derive(Clone, Debug)]
pub struct PhysMem {
    page_shift: u32,
    nr_frames: u64,
    /// Per frame: 0 when the frame reads as zeros, otherwise 1 + its slot in `store`.
    slot_of: Vec<u32>,
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
            slot_of: vec![0; nr_frames as usize],
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

    /// Host bytes used for frame contents and the frame index (an upper bound: the
    /// index is counted whole, though the host commits only its touched pages).
    pub fn host_bytes(&self) -> u64 {
        self.store.capacity() as u64 + self.slot_of.len() as u64 * 4
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
        let slot = self.slot_of[pfn as usize];
        if slot == 0 {
            return None;
        }
        let start = ((slot - 1) as usize) << self.page_shift;
        Some(&self.store[start..start + (1 << self.page_shift)])
    }

    fn frame_bytes_mut(&mut self, pfn: u64) -> &mut [u8] {
        let mut slot = self.slot_of[pfn as usize];
        if slot == 0 {
            let s = match self.free_slots.pop() {
                Some(s) => {
                    let start = (s as usize) << self.page_shift;
                    self.store[start..start + (1 << self.page_shift)].fill(0);
                    s
                }
                None => {
                    let s = (self.store.len() >> self.page_shift) as u32;
                    self.store
                        .resize(self.store.len() + (1 << self.page_shift), 0);
                    s
                }
            };
            slot = s + 1;
            self.slot_of[pfn as usize] = slot;
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

    /// Reads `buf.len()` bytes starting at `pa`; the range may span frames.
    pub fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), OutOfRange> {
        self.check(pa, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let a = pa.0 + done as u64;
            let pfn = a >> self.page_shift;
            let off = (a & (self.frame_size() - 1)) as usize;
            let n = (buf.len() - done).min(self.frame_size() as usize - off);
            match self.frame_bytes(pfn) {
                Some(f) => buf[done..done + n].copy_from_slice(&f[off..off + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }

    /// Writes `data` starting at `pa`; the range may span frames. Writing zeros to a
    /// frame that reads as zeros materialises nothing.
    pub fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), OutOfRange> {
        self.check(pa, data.len() as u64)?;
        let mut done = 0usize;
        while done < data.len() {
            let a = pa.0 + done as u64;
            let pfn = a >> self.page_shift;
            let off = (a & (self.frame_size() - 1)) as usize;
            let n = (data.len() - done).min(self.frame_size() as usize - off);
            let chunk = &data[done..done + n];
            if self.slot_of[pfn as usize] != 0 || chunk.iter().any(|&b| b != 0) {
                self.frame_bytes_mut(pfn)[off..off + n].copy_from_slice(chunk);
            }
            done += n;
        }
        Ok(())
    }

    /// Hints the host to bring the bytes at `pa` into its cache (a PTE about to be
    /// read). No effect on what the simulation computes; nothing for frames that read
    /// as zeros or addresses beyond RAM.
    #[inline]
    pub fn prefetch(&self, pa: PhysAddr) {
        let pfn = pa.0 >> self.page_shift;
        let Some(&slot) = self.slot_of.get(pfn as usize) else {
            return;
        };
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
    #[inline]
    pub fn read_uint(&self, pa: PhysAddr, bytes: u32) -> Result<u64, OutOfRange> {
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
    #[inline]
    pub fn write_uint(&mut self, pa: PhysAddr, bytes: u32, value: u64) -> Result<(), OutOfRange> {
        self.check(pa, bytes as u64)?;
        let pfn = pa.0 >> self.page_shift;
        if value == 0 && self.slot_of[pfn as usize] == 0 {
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
            let slot = std::mem::take(&mut self.slot_of[f as usize]);
            if slot != 0 {
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
