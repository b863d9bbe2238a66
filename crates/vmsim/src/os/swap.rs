//! The swap device: a real file (a temporary one by default, removed when the kernel
//! goes) divided into page-sized slots, a slot allocator, and the time the device takes.
//!
//! A slot holds one swapped-out page. Its count is the number of page-table entries
//! that name it (a page swapped out while shared copy-on-write by several processes is
//! named by each). A page that read as zeros is recorded as such and not written.

use crate::addr::Pfn;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Storage the swap device (and the files) sit on: latency plus transfer time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Storage {
    /// An NVMe SSD: 20 µs, 2 GB/s.
    Nvme,
    /// A SATA SSD: 100 µs, 500 MB/s.
    SataSsd,
    /// A hard disk: 8 ms (seek and rotation), 150 MB/s.
    Hdd,
}

impl Storage {
    /// Nanoseconds to read or write `bytes` in one request.
    pub fn transfer_ns(self, bytes: u64) -> u64 {
        let (latency, bytes_per_s) = match self {
            Storage::Nvme => (20_000, 2_000_000_000u64),
            Storage::SataSsd => (100_000, 500_000_000),
            Storage::Hdd => (8_000_000, 150_000_000),
        };
        latency + bytes.saturating_mul(1_000_000_000) / bytes_per_s
    }

    /// Parses `nvme`, `sata-ssd` or `hdd`.
    pub fn parse(s: &str) -> Option<Storage> {
        match s {
            "nvme" => Some(Storage::Nvme),
            "sata-ssd" | "ssd" => Some(Storage::SataSsd),
            "hdd" => Some(Storage::Hdd),
            _ => None,
        }
    }
}

/// Counters of the swap device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SwapStats {
    /// Slots.
    pub slots: u64,
    /// Slots in use.
    pub used: u64,
    /// Most slots in use at once.
    pub peak_used: u64,
    /// Pages written out.
    pub outs: u64,
    /// Pages read back in.
    pub ins: u64,
    /// Bytes written to the file.
    pub bytes_written: u64,
    /// Bytes read from the file.
    pub bytes_read: u64,
}

/// The swap device.
#[derive(Debug)]
pub struct SwapDevice {
    file: File,
    path: PathBuf,
    temporary: bool,
    page_size: u64,
    next: u32,
    free: Vec<u32>,
    /// Each slot's [`SlotState`], packed in a word so that the array is allocated
    /// zeroed (a large device costs no host memory until its slots are used).
    slots: Vec<u64>,
    /// The swap cache by frame: the slot each cached frame holds, plus one (0 = none).
    slot_of_frame: Vec<u32>,
    /// Frames in the swap cache.
    cached: usize,
    /// Its counters.
    pub stats: SwapStats,
}

/// What the device knows of one slot, in one word: a fault that brings a page back
/// reads all of it, so it should cost one cache miss, not three.
#[derive(Clone, Copy, Debug, Default)]
struct SlotState {
    /// The frame that holds a copy of the slot's page in the swap cache, plus one.
    frame: u32,
    /// Page-table entries that name the slot.
    count: u16,
    /// Whether the slot's bytes are in the file (a page of zeros is not written).
    has_data: bool,
}

impl SlotState {
    fn unpack(w: u64) -> SlotState {
        SlotState {
            frame: w as u32,
            count: (w >> 32) as u16,
            has_data: w >> 48 & 1 != 0,
        }
    }

    fn pack(self) -> u64 {
        self.frame as u64 | (self.count as u64) << 32 | (self.has_data as u64) << 48
    }
}

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl SwapDevice {
    /// A device of `bytes` (rounded down to pages) in the file `path`, or in a new
    /// temporary file.
    pub fn create(path: Option<&Path>, bytes: u64, page_size: u64) -> std::io::Result<SwapDevice> {
        let (path, temporary) = match path {
            Some(p) => (p.to_path_buf(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "vmsim-swap-{}-{}",
                    std::process::id(),
                    NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
                )),
                true,
            ),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let slots = (bytes / page_size).min(u32::MAX as u64 >> 2) as usize;
        file.set_len(slots as u64 * page_size)?;
        Ok(SwapDevice {
            file,
            path,
            temporary,
            page_size,
            next: 0,
            free: Vec::new(),
            slots: vec![0; slots],
            slot_of_frame: Vec::new(),
            cached: 0,
            stats: SwapStats {
                slots: slots as u64,
                ..SwapStats::default()
            },
        })
    }

    fn state(&self, slot: u32) -> SlotState {
        SlotState::unpack(self.slots[slot as usize])
    }

    /// Changes `slot`'s state with `f`; returns the new state.
    fn update(&mut self, slot: u32, f: impl FnOnce(&mut SlotState)) -> SlotState {
        let w = &mut self.slots[slot as usize];
        let mut st = SlotState::unpack(*w);
        f(&mut st);
        *w = st.pack();
        st
    }

    /// Number of slots.
    pub fn nr_slots(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The file behind it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A free slot, with a count of 0, or `None` when the device is full.
    pub fn alloc(&mut self) -> Option<u32> {
        let s = match self.free.pop() {
            Some(s) => s,
            None if (self.next as usize) < self.slots.len() => {
                self.next += 1;
                self.next - 1
            }
            None => return None,
        };
        self.stats.used += 1;
        self.stats.peak_used = self.stats.peak_used.max(self.stats.used);
        Some(s)
    }

    /// Writes a page into `slot` (`None`: the page reads as zeros).
    pub fn write(&mut self, slot: u32, data: Option<&[u8]>) -> std::io::Result<()> {
        self.stats.outs += 1;
        self.update(slot, |st| st.has_data = data.is_some());
        if let Some(d) = data {
            self.file.write_all_at(d, slot as u64 * self.page_size)?;
            self.stats.bytes_written += d.len() as u64;
        }
        Ok(())
    }

    /// Reads `slot` into `buf`; returns false (and leaves `buf` alone) when the page
    /// was all zeros.
    pub fn read(&mut self, slot: u32, buf: &mut [u8]) -> std::io::Result<bool> {
        self.stats.ins += 1;
        if !self.state(slot).has_data {
            return Ok(false);
        }
        self.file.read_exact_at(buf, slot as u64 * self.page_size)?;
        self.stats.bytes_read += buf.len() as u64;
        Ok(true)
    }

    /// Whether `slot` holds bytes (false: the page read as zeros when it went out).
    pub fn has_data(&self, slot: u32) -> bool {
        self.state(slot).has_data
    }

    /// Counts a swap-in of a page that was all zeros (nothing to read).
    pub fn note_zero_read(&mut self) {
        self.stats.ins += 1;
    }

    /// Adds a reference to `slot`.
    pub fn get(&mut self, slot: u32) {
        self.update(slot, |st| st.count += 1);
    }

    /// References to `slot`.
    pub fn count(&self, slot: u32) -> u16 {
        self.state(slot).count
    }

    /// Drops a reference to `slot`, freeing it with the last.
    pub fn put(&mut self, slot: u32) {
        let st = self.update(slot, |st| {
            st.count = st.count.saturating_sub(1);
            if st.count == 0 {
                st.has_data = false;
            }
        });
        if st.count == 0 {
            self.free.push(slot);
            self.stats.used -= 1;
        }
    }
}

/// The swap cache (Linux's swap address space): frames that hold a copy of a slot's
/// page, found by slot when a fault brings a page back and by frame when reclaim looks
/// at one again. Both directions are arrays, so the fault path does no hashing.
impl SwapDevice {
    /// The frame caching `slot`.
    #[inline]
    pub fn cached(&self, slot: u32) -> Option<Pfn> {
        let f = SlotState::unpack(*self.slots.get(slot as usize)?).frame;
        f.checked_sub(1).map(|f| Pfn(f as u64))
    }

    /// The slot `pfn` caches.
    #[inline]
    pub fn cached_slot(&self, pfn: Pfn) -> Option<u32> {
        self.slot_of_frame.get(pfn.0 as usize)?.checked_sub(1)
    }

    /// Records that `pfn` caches `slot`, replacing what either was paired with.
    /// Slots beyond the device and frames beyond `u32` are ignored.
    pub fn cache(&mut self, slot: u32, pfn: Pfn) {
        let f = pfn.0 as usize;
        if slot as usize >= self.slots.len() || pfn.0 >= u32::MAX as u64 {
            return;
        }
        self.uncache(slot);
        if let Some(old) = self.cached_slot(pfn) {
            self.uncache(old);
        }
        if f >= self.slot_of_frame.len() {
            self.slot_of_frame
                .resize((f + 1).max(2 * self.slot_of_frame.len()), 0);
        }
        self.update(slot, |st| st.frame = pfn.0 as u32 + 1);
        self.slot_of_frame[f] = slot + 1;
        self.cached += 1;
    }

    /// Takes `slot` out of the swap cache; returns the frame that cached it.
    pub fn uncache(&mut self, slot: u32) -> Option<Pfn> {
        let pfn = self.cached(slot)?;
        self.update(slot, |st| st.frame = 0);
        self.slot_of_frame[pfn.0 as usize] = 0;
        self.cached -= 1;
        Some(pfn)
    }

    /// Pages in the swap cache.
    pub fn nr_cached(&self) -> usize {
        self.cached
    }

    /// The frames in the swap cache, by frame number.
    pub fn cached_frames(&self) -> impl Iterator<Item = Pfn> + '_ {
        self.slot_of_frame
            .iter()
            .enumerate()
            .filter(|(_, &s)| s != 0)
            .map(|(f, _)| Pfn(f as u64))
    }
}

impl Drop for SwapDevice {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_go_out_and_come_back_through_a_real_file() {
        let mut d = SwapDevice::create(None, 4 * 4096, 4096).unwrap();
        let path = d.path().to_path_buf();
        assert!(path.exists());
        let a = d.alloc().unwrap();
        let b = d.alloc().unwrap();
        d.get(a);
        d.get(b);
        let page: Vec<u8> = (0..4096).map(|i| i as u8).collect();
        d.write(a, Some(&page)).unwrap();
        d.write(b, None).unwrap();
        let mut back = vec![0u8; 4096];
        assert!(d.read(a, &mut back).unwrap());
        assert_eq!(back, page);
        assert!(!d.read(b, &mut back).unwrap(), "a zero page is not stored");
        assert_eq!(d.stats.bytes_written, 4096);
        d.put(a);
        assert_eq!(d.stats.used, 1);
        assert_eq!(d.alloc(), Some(a), "freed slots are reused");
        drop(d);
        assert!(!path.exists(), "the temporary file goes with the device");
    }

    #[test]
    fn the_swap_cache_pairs_stay_consistent_both_ways() {
        let mut c = SwapDevice::create(None, 8 * 4096, 4096).unwrap();
        c.cache(5, Pfn(2));
        assert_eq!(
            (c.cached(5), c.cached_slot(Pfn(2)), c.nr_cached()),
            (Some(Pfn(2)), Some(5), 1)
        );
        // Re-pairing the frame drops its old slot.
        c.cache(6, Pfn(2));
        assert_eq!(
            (c.cached(5), c.cached(6), c.nr_cached()),
            (None, Some(Pfn(2)), 1)
        );
        c.cache(1, Pfn(0));
        assert_eq!(c.cached_frames().collect::<Vec<_>>(), vec![Pfn(0), Pfn(2)]);
        assert_eq!(c.uncache(6), Some(Pfn(2)));
        assert_eq!(
            (c.uncache(6), c.cached_slot(Pfn(2)), c.nr_cached()),
            (None, None, 1)
        );
        // Beyond the device: ignored, never a panic.
        c.cache(99, Pfn(0));
        assert_eq!(
            (c.cached(99), c.cached_slot(Pfn(99)), c.nr_cached()),
            (None, None, 1)
        );
    }

    #[test]
    fn a_slot_state_keeps_every_field_when_packed() {
        for st in [
            SlotState::default(),
            SlotState {
                frame: u32::MAX,
                count: u16::MAX,
                has_data: true,
            },
            SlotState {
                frame: 7,
                count: 1,
                has_data: false,
            },
        ] {
            let back = SlotState::unpack(st.pack());
            assert_eq!(
                (back.frame, back.count, back.has_data),
                (st.frame, st.count, st.has_data)
            );
        }
    }

    #[test]
    fn a_full_device_says_so() {
        let mut d = SwapDevice::create(None, 2 * 4096, 4096).unwrap();
        assert!(d.alloc().is_some() && d.alloc().is_some());
        assert_eq!(d.alloc(), None);
    }

    #[test]
    fn storage_costs_latency_plus_transfer() {
        assert_eq!(Storage::Nvme.transfer_ns(4096), 20_000 + 2_048);
        assert!(Storage::Hdd.transfer_ns(4096) > 100 * Storage::Nvme.transfer_ns(4096));
    }
}
