//! The swap device: a real file divided into page-sized slots and a slot allocator
//! (what its reads and writes cost is `storage.rs`'s).
//!
//! The file is a temporary one by default, unlinked as soon as it is open (so nothing
//! is left behind, whatever happens to the process, and no report names it). A named
//! swap file is never a file vmsim did not make: a new path is created with a header
//! page that says vmsim made it (as `mkswap` writes Linux's), and an existing file is
//! reused only if it has that header, unless the caller forces it.
//!
//! A slot holds one swapped-out page. Its count is the number of page-table entries
//! that name it (a page swapped out while shared copy-on-write by several processes is
//! named by each). A page that read as zeros is recorded as such and not written.

mod alloc;
mod readahead;
mod transfer;

pub use readahead::{SwapReadahead, SwapReadaheadState};
pub(super) use transfer::SwapOut;

use crate::addr::{Pfn, SwapSlot};
use rustc_hash::FxHashSet;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Whether a page holds only zero bytes (Linux's `is_folio_zero_filled`).
pub fn is_zero_filled(page: &[u8]) -> bool {
    let words = page.chunks_exact(8);
    let rest = words.remainder();
    words
        .into_iter()
        .all(|w| w.iter().fold(0, |a, &b| a | b) == 0)
        && rest.iter().all(|&b| b == 0)
}

/// What the first page of a swap file vmsim made starts with.
pub const SWAP_SIGNATURE: &[u8] = b"vmsim swap file, version 1\n";

/// Why a swap file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SwapFileError {
    /// The file exists and vmsim did not make it.
    #[error("swap file {path}: the file exists and is not a swap file vmsim made; name a new path (or force its use, losing its contents)")]
    NotOurs {
        /// The file.
        path: String,
    },
    /// The file is not a regular file.
    #[error("swap file {path}: not a regular file")]
    NotAFile {
        /// The file.
        path: String,
    },
    /// The system refused.
    #[error("swap file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A page could not be written to its slot or read back during the run: the
    /// simulated page would be lost (or come back as zeros), so the run's counts
    /// cannot be trusted.
    #[error("swap file {path}: could not {op} slot {slot} ({source}); the run's counts are not trustworthy")]
    Transfer {
        /// The file.
        path: String,
        /// `write` or `read`.
        op: &'static str,
        /// The slot.
        slot: u32,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Swap as the kernel holds it: the device (with its swap cache), if there is one,
/// and the readahead state.
#[derive(Debug)]
pub(super) struct Swap {
    /// The device.
    pub(super) dev: Option<SwapDevice>,
    /// Most pages one swap fault reads, its own included (`1 << page-cluster`).
    pub(super) ra_max: u32,
    /// The machine's readahead state for [`SwapReadahead::Cluster`].
    cluster: SwapReadaheadState,
    /// Swap-cache frames read ahead and not yet found by a fault (`PG_readahead`).
    pub(super) ra_marked: FxHashSet<u64>,
    /// The frames read ahead for the swap fault in progress, locked until its window's
    /// read is sent ([`Kernel::read_swap_window`]).
    pub(super) window: Vec<crate::addr::Pfn>,
    /// The trace marks the pages that hold bytes other than zeros (a `values` event):
    /// an unmarked page goes out as a page of zeros.
    pub(super) zero_marks: bool,
    /// The first write or read of the device that failed, for the run to report.
    pub(super) failed: Option<SwapFileError>,
}

/// The readahead hits swap readahead starts from, before any swap fault has read: Linux
/// starts its machine-wide count (`swapin_readahead_hits`) and every VMA's at 4 "to
/// start up with a small window", so the first swap fault reads a window of 8 pages
/// (at `page-cluster` 3), and the faults after it shrink from there by halves.
pub(super) const START_HITS: u32 = 4;

impl Swap {
    /// `dev` with readahead of up to `readahead` pages a fault (at least 1).
    pub(super) fn new(dev: Option<SwapDevice>, readahead: u32) -> Swap {
        Swap {
            dev,
            ra_max: readahead.max(1),
            cluster: Default::default(),
            ra_marked: FxHashSet::default(),
            window: Vec::new(),
            zero_marks: false,
            failed: None,
        }
    }

    /// Notes that `op` (`write` or `read`) of `slot` failed with `source`, unless an
    /// earlier failure is noted already (the first is the one to fix).
    pub(super) fn note_failure(
        &mut self,
        op: &'static str,
        slot: SwapSlot,
        source: std::io::Error,
    ) {
        if self.failed.is_some() {
            return;
        }
        let path = self
            .dev
            .as_ref()
            .and_then(|d| d.path())
            .map_or("(temporary)".into(), |p| p.display().to_string());
        self.failed = Some(SwapFileError::Transfer {
            path,
            op,
            slot: slot.0,
            source,
        });
    }
}

/// The swap device.
#[derive(Debug)]
pub struct SwapDevice {
    file: File,
    /// The named file, or `None` for a temporary one.
    path: Option<PathBuf>,
    /// Where slot 0 starts in the file (past the header page of a named file).
    base: u64,
    page_size: u64,
    /// Which slot goes next (`alloc.rs`).
    alloc: alloc::SlotAlloc,
    /// Each slot's [`SlotState`], packed in a word so that the array is allocated
    /// zeroed (a large device costs no host memory until its slots are used).
    slots: Vec<u64>,
    /// The swap cache by frame: the slot each cached frame holds, plus one (0 = none).
    slot_of_frame: Vec<u32>,
    /// Frames in the swap cache.
    cached: usize,
    /// Slots the swap cache owns (see [`SwapDevice::own`]).
    owned: u64,
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
    /// The page went out as a page of zeros (Linux's zeromap: no I/O, no `pswpout`).
    zero: bool,
    /// The slot's one reference is the swap cache's: a page read back by a read fault
    /// keeps its slot, so that it leaves again without a write if it stays clean.
    owned: bool,
}

impl SlotState {
    fn unpack(w: u64) -> SlotState {
        SlotState {
            frame: w as u32,
            count: (w >> 32) as u16,
            has_data: w >> 48 & 1 != 0,
            zero: w >> 49 & 1 != 0,
            owned: w >> 50 & 1 != 0,
        }
    }

    fn pack(self) -> u64 {
        self.frame as u64
            | (self.count as u64) << 32
            | (self.has_data as u64) << 48
            | (self.zero as u64) << 49
            | (self.owned as u64) << 50
    }
}

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A new file in the system's temporary folder, unlinked at once.
fn open_temporary() -> Result<File, SwapFileError> {
    let dir = std::env::temp_dir();
    loop {
        let p = dir.join(format!(
            "vmsim-swap-{}-{}",
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                // Unlinked while open, so it goes when the device does; if unlinking
                // fails the file stays behind in the temporary folder, harmlessly.
                let _ = std::fs::remove_file(&p);
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(SwapFileError::Io {
                    path: dir.display().to_string(),
                    source,
                })
            }
        }
    }
}

/// Opens (or makes) the named swap file and writes its header page.
fn open_named(p: &Path, page_size: u64, force: bool) -> Result<File, SwapFileError> {
    let name = || p.display().to_string();
    let io = |source| SwapFileError::Io {
        path: name(),
        source,
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(p)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .map_err(io)?;
            if !f.metadata().map_err(io)?.file_type().is_file() {
                return Err(SwapFileError::NotAFile { path: name() });
            }
            let mut head = vec![0u8; SWAP_SIGNATURE.len()];
            let ours = f.read_exact_at(&mut head, 0).is_ok() && head == SWAP_SIGNATURE;
            if !ours && !force {
                return Err(SwapFileError::NotOurs { path: name() });
            }
            f.set_len(0).map_err(io)?;
            f
        }
        Err(e) => return Err(io(e)),
    };
    let mut header = vec![0u8; page_size as usize];
    header[..SWAP_SIGNATURE.len()].copy_from_slice(SWAP_SIGNATURE);
    file.write_all_at(&header, 0).map_err(io)?;
    Ok(file)
}

impl SwapDevice {
    /// A device of `bytes` (whole pages) in the file `path`, or in a new temporary file.
    /// Its first page is the header, as in a Linux swap file of that size, so it has
    /// a slot fewer than pages (a named file holds the header; a temporary one leaves
    /// it out). An existing `path` is used only if vmsim made it, or if `force`.
    pub fn create(
        path: Option<&Path>,
        bytes: u64,
        page_size: u64,
        force: bool,
    ) -> Result<SwapDevice, SwapFileError> {
        let slots = (bytes / page_size)
            .saturating_sub(1)
            .min(u32::MAX as u64 >> 2) as usize;
        let (file, base) = match path {
            Some(p) => (open_named(p, page_size, force)?, page_size),
            None => (open_temporary()?, 0),
        };
        let err = |source| SwapFileError::Io {
            path: path.map_or("(temporary)".into(), |p| p.display().to_string()),
            source,
        };
        file.set_len(base + slots as u64 * page_size).map_err(err)?;
        Ok(SwapDevice {
            file,
            path: path.map(Path::to_path_buf),
            base,
            page_size,
            alloc: alloc::SlotAlloc::new(slots as u64),
            slots: crate::hw::ram::huge_zeroed_vec(slots),
            slot_of_frame: Vec::new(),
            cached: 0,
            owned: 0,
            stats: SwapStats {
                slots: slots as u64,
                ..SwapStats::default()
            },
        })
    }

    fn state(&self, slot: SwapSlot) -> SlotState {
        SlotState::unpack(self.slots[slot.0 as usize])
    }

    /// Changes `slot`'s state with `f`; returns the new state.
    fn update(&mut self, slot: SwapSlot, f: impl FnOnce(&mut SlotState)) -> SlotState {
        let w = &mut self.slots[slot.0 as usize];
        let mut st = SlotState::unpack(*w);
        f(&mut st);
        *w = st.pack();
        st
    }

    /// Swaps the file for one open read-only on a file of nothing, so that every
    /// write fails and every read finds no bytes (tests of what a failing disk does).
    #[cfg(test)]
    pub(crate) fn break_file(&mut self) {
        self.file = File::open("/dev/null").expect("/dev/null");
    }

    /// Number of slots.
    pub fn nr_slots(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The named file behind it (`None`: a temporary file, already unlinked).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A free slot, with a count of 0 and no page cached, or `None` when the device is
    /// full. Slots are taken in order through a cluster of 512, and the next cluster is
    /// one that had slots freed, else a free one (`alloc.rs`, Linux's allocator): pages
    /// swapped out one after another sit side by side, among older pages once slots
    /// have been freed, which is what readahead of the slots around a fault meets.
    pub fn alloc(&mut self) -> Option<SwapSlot> {
        let slots = &self.slots;
        let s = self.alloc.alloc(|s| {
            let st = SlotState::unpack(slots[s as usize]);
            st.count == 0 && st.frame == 0
        })?;
        self.stats.used += 1;
        self.stats.peak_used = self.stats.peak_used.max(self.stats.used);
        Some(SwapSlot(s))
    }

    /// The slot the next [`SwapDevice::alloc`] is likely to hand out.
    #[inline]
    pub fn next_slot(&self) -> Option<SwapSlot> {
        self.alloc.next_hint().map(SwapSlot)
    }

    /// Hints the host to cache `slot`'s state: once slots are freed, pages going out
    /// fill the holes, scattered over the device, each a miss unless fetched early.
    #[inline]
    pub fn prefetch_slot(&self, slot: SwapSlot) {
        crate::hw::ram::prefetch_at(&self.slots, slot.0 as usize);
    }

    /// Hints the host to cache which slot `pfn` caches (looked up when it is evicted).
    #[inline]
    pub fn prefetch_frame(&self, pfn: Pfn) {
        crate::hw::ram::prefetch_at(&self.slot_of_frame, pfn.0 as usize);
    }

    /// Writes a page into `slot` (`None`: nothing is written and the slot reads as
    /// zeros).
    pub fn write(&mut self, slot: SwapSlot, data: Option<&[u8]>) -> std::io::Result<()> {
        self.stats.outs += 1;
        self.update(slot, |st| st.has_data = data.is_some());
        if let Some(d) = data {
            self.file
                .write_all_at(d, self.base + slot.0 as u64 * self.page_size)?;
            self.stats.bytes_written += d.len() as u64;
        }
        Ok(())
    }

    /// Reads `slot` into `buf`; returns false (and leaves `buf` alone) when the page
    /// was all zeros.
    pub fn read(&mut self, slot: SwapSlot, buf: &mut [u8]) -> std::io::Result<bool> {
        self.stats.ins += 1;
        if !self.state(slot).has_data {
            return Ok(false);
        }
        self.file
            .read_exact_at(buf, self.base + slot.0 as u64 * self.page_size)?;
        self.stats.bytes_read += buf.len() as u64;
        Ok(true)
    }

    /// Whether `slot` holds bytes (false: the page read as zeros when it went out).
    pub fn has_data(&self, slot: SwapSlot) -> bool {
        self.state(slot).has_data
    }

    /// Records whether the page in `slot` went out as a page of zeros.
    pub fn set_zero(&mut self, slot: SwapSlot, zero: bool) {
        self.update(slot, |st| st.zero = zero);
    }

    /// Whether the page in `slot` went out as a page of zeros.
    pub fn is_zero(&self, slot: SwapSlot) -> bool {
        self.state(slot).zero
    }

    /// Counts a swap-in of a page that was all zeros (nothing to read).
    pub fn note_zero_read(&mut self) {
        self.stats.ins += 1;
    }

    /// Adds a reference to `slot`.
    pub fn get(&mut self, slot: SwapSlot) {
        self.update(slot, |st| st.count += 1);
    }

    /// References to `slot`.
    pub fn count(&self, slot: SwapSlot) -> u16 {
        self.state(slot).count
    }

    /// Drops a reference to `slot`, freeing it with the last.
    pub fn put(&mut self, slot: SwapSlot) {
        let st = self.update(slot, |st| {
            st.count = st.count.saturating_sub(1);
            if st.count == 0 {
                st.has_data = false;
            }
        });
        if st.count == 0 {
            self.alloc.free(slot.0);
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
    pub fn cached(&self, slot: SwapSlot) -> Option<Pfn> {
        let f = SlotState::unpack(*self.slots.get(slot.0 as usize)?).frame;
        f.checked_sub(1).map(|f| Pfn(f as u64))
    }

    /// Marks `slot`'s one reference as the swap cache's: a page read back by a read
    /// fault keeps its slot, so that it leaves again without a write if it stays clean.
    pub fn own(&mut self, slot: SwapSlot) {
        if !self.state(slot).owned {
            self.update(slot, |st| st.owned = true);
            self.owned += 1;
        }
    }

    /// Takes the swap cache's ownership of `slot` away; whether it had it (its
    /// reference is then the caller's to put).
    pub fn disown(&mut self, slot: SwapSlot) -> bool {
        let owned = self.state(slot).owned;
        if owned {
            self.update(slot, |st| st.owned = false);
            self.owned -= 1;
        }
        owned
    }

    /// Whether the swap cache owns `slot`.
    pub fn owns(&self, slot: SwapSlot) -> bool {
        self.state(slot).owned
    }

    /// Whether the swap cache owns any slot.
    pub fn owns_any(&self) -> bool {
        self.owned > 0
    }

    /// The slot `pfn` caches.
    #[inline]
    pub fn cached_slot(&self, pfn: Pfn) -> Option<SwapSlot> {
        let s = self.slot_of_frame.get(pfn.0 as usize)?.checked_sub(1)?;
        Some(SwapSlot(s))
    }

    /// Records that `pfn` caches `slot`, replacing what either was paired with.
    /// Slots beyond the device and frames beyond `u32` are ignored.
    pub fn cache(&mut self, slot: SwapSlot, pfn: Pfn) {
        let f = pfn.0 as usize;
        if slot.0 as usize >= self.slots.len() || pfn.0 >= u32::MAX as u64 {
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
        self.slot_of_frame[f] = slot.0 + 1;
        self.cached += 1;
    }

    /// Takes `slot` out of the swap cache; returns the frame that cached it.
    pub fn uncache(&mut self, slot: SwapSlot) -> Option<Pfn> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_go_out_and_come_back_through_a_real_file() {
        // Five pages: a header and four slots.
        let mut d = SwapDevice::create(None, 5 * 4096, 4096, false).unwrap();
        assert_eq!(d.path(), None, "a temporary file has no name");
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
        // Slots in order; then, the cluster used up, the freed ones, lowest first.
        assert_eq!(d.alloc(), Some(SwapSlot(2)));
        assert_eq!(d.alloc(), Some(SwapSlot(3)));
        d.put(b);
        assert_eq!(d.alloc(), Some(a), "freed slots are reused");
        assert_eq!(d.alloc(), Some(b));
        assert_eq!(d.alloc(), None, "full");
    }

    #[test]
    fn a_named_swap_file_is_never_a_file_vmsim_did_not_make() {
        let dir = std::env::temp_dir().join(format!("vmsim-swapfile-{}", std::process::id()));
        // Leftovers of an earlier run, if any: absent is fine.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let theirs = dir.join("notes.txt");
        std::fs::write(&theirs, "keep me").unwrap();
        let e = SwapDevice::create(Some(&theirs), 4 * 4096, 4096, false).unwrap_err();
        assert!(matches!(e, SwapFileError::NotOurs { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "keep me");
        // A new path is made with a header page, and can be used again.
        let ours = dir.join("swap");
        let mut d = SwapDevice::create(Some(&ours), 4 * 4096, 4096, false).unwrap();
        let page = vec![7u8; 4096];
        let s = d.alloc().unwrap();
        d.write(s, Some(&page)).unwrap();
        let mut back = vec![0u8; 4096];
        assert!(d.read(s, &mut back).unwrap());
        assert_eq!(back, page);
        drop(d);
        assert_eq!(std::fs::metadata(&ours).unwrap().len(), 4 * 4096);
        assert!(std::fs::read(&ours).unwrap().starts_with(SWAP_SIGNATURE));
        assert!(SwapDevice::create(Some(&ours), 4 * 4096, 4096, false).is_ok());
        // Forced, a foreign file is taken.
        assert!(SwapDevice::create(Some(&theirs), 4 * 4096, 4096, true).is_ok());
        assert!(SwapDevice::create(Some(&dir), 4096, 4096, true).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_swap_cache_pairs_stay_consistent_both_ways() {
        let mut c = SwapDevice::create(None, 8 * 4096, 4096, false).unwrap();
        c.cache(SwapSlot(5), Pfn(2));
        assert_eq!(
            (c.cached(SwapSlot(5)), c.cached_slot(Pfn(2)), c.nr_cached()),
            (Some(Pfn(2)), Some(SwapSlot(5)), 1)
        );
        // Re-pairing the frame drops its old slot.
        c.cache(SwapSlot(6), Pfn(2));
        assert_eq!(
            (c.cached(SwapSlot(5)), c.cached(SwapSlot(6)), c.nr_cached()),
            (None, Some(Pfn(2)), 1)
        );
        c.cache(SwapSlot(1), Pfn(0));
        assert_eq!(c.cached_frames().collect::<Vec<_>>(), vec![Pfn(0), Pfn(2)]);
        assert_eq!(c.uncache(SwapSlot(6)), Some(Pfn(2)));
        assert_eq!(
            (c.uncache(SwapSlot(6)), c.cached_slot(Pfn(2)), c.nr_cached()),
            (None, None, 1)
        );
        // Beyond the device: ignored, never a panic.
        c.cache(SwapSlot(99), Pfn(0));
        assert_eq!(
            (
                c.cached(SwapSlot(99)),
                c.cached_slot(Pfn(99)),
                c.nr_cached()
            ),
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
                zero: true,
                owned: true,
            },
            SlotState {
                frame: 7,
                count: 1,
                has_data: false,
                zero: false,
                owned: false,
            },
            SlotState {
                zero: true,
                ..SlotState::default()
            },
            SlotState {
                owned: true,
                ..SlotState::default()
            },
        ] {
            let back = SlotState::unpack(st.pack());
            assert_eq!(
                (back.frame, back.count, back.has_data, back.zero, back.owned),
                (st.frame, st.count, st.has_data, st.zero, st.owned)
            );
        }
    }

    #[test]
    fn the_cache_owns_a_slot_once_and_gives_it_back_once() {
        let mut d = SwapDevice::create(None, 4 * 4096, 4096, false).unwrap();
        let (a, b) = (d.alloc().unwrap(), d.alloc().unwrap());
        assert!(!d.owns_any());
        d.own(a);
        d.own(a);
        assert!(d.owns(a) && !d.owns(b) && d.owns_any());
        assert!(d.disown(a), "owned, so the caller puts its reference");
        assert!(!d.disown(a), "only once");
        assert!(!d.owns_any(), "owning twice counted once");
    }

    #[test]
    fn a_full_device_says_so() {
        let mut d = SwapDevice::create(None, 3 * 4096, 4096, false).unwrap();
        assert!(d.alloc().is_some() && d.alloc().is_some());
        assert_eq!(d.alloc(), None);
    }
}
