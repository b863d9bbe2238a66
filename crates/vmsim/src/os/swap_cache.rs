//! The swap cache (Linux's `swapper_spaces`): frames that hold a copy of a swap slot's
//! page, found by slot when a fault brings a page back and by frame when reclaim looks
//! at it again. Both directions are dense arrays (allocated zeroed, so the host commits
//! only the parts touched), so the fault path does no hashing.

use crate::addr::Pfn;

/// Slot → frame and frame → slot, each stored plus one (0 = none).
#[derive(Clone, Debug, Default)]
pub struct SwapCache {
    frame_of_slot: Vec<u32>,
    slot_of_frame: Vec<u32>,
    len: usize,
}

impl SwapCache {
    /// An empty cache over `slots` swap slots and `frames` frames.
    pub fn new(slots: u32, frames: u64) -> SwapCache {
        SwapCache {
            frame_of_slot: vec![0; slots as usize],
            slot_of_frame: vec![0; frames as usize],
            len: 0,
        }
    }

    /// The frame caching `slot`.
    #[inline]
    pub fn frame(&self, slot: u32) -> Option<Pfn> {
        let f = *self.frame_of_slot.get(slot as usize)?;
        f.checked_sub(1).map(|f| Pfn(f as u64))
    }

    /// The slot `pfn` caches.
    #[inline]
    pub fn slot(&self, pfn: Pfn) -> Option<u32> {
        self.slot_of_frame.get(pfn.0 as usize)?.checked_sub(1)
    }

    /// Records that `pfn` caches `slot` (replacing what either was paired with).
    pub fn insert(&mut self, slot: u32, pfn: Pfn) {
        let (s, f) = (slot as usize, pfn.0 as usize);
        if s >= self.frame_of_slot.len() || f >= self.slot_of_frame.len() {
            return;
        }
        self.remove(slot);
        if let Some(old) = self.slot(pfn) {
            self.remove(old);
        }
        self.frame_of_slot[s] = pfn.0 as u32 + 1;
        self.slot_of_frame[f] = slot + 1;
        self.len += 1;
    }

    /// Forgets `slot`; returns the frame that cached it.
    pub fn remove(&mut self, slot: u32) -> Option<Pfn> {
        let pfn = self.frame(slot)?;
        self.frame_of_slot[slot as usize] = 0;
        self.slot_of_frame[pfn.0 as usize] = 0;
        self.len -= 1;
        Some(pfn)
    }

    /// Pages in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frames in the cache, by frame number.
    pub fn frames(&self) -> impl Iterator<Item = Pfn> + '_ {
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
    fn pairs_stay_consistent_both_ways() {
        let mut c = SwapCache::new(8, 4);
        c.insert(5, Pfn(2));
        assert_eq!(
            (c.frame(5), c.slot(Pfn(2)), c.len()),
            (Some(Pfn(2)), Some(5), 1)
        );
        // Re-pairing the frame drops its old slot.
        c.insert(6, Pfn(2));
        assert_eq!((c.frame(5), c.frame(6), c.len()), (None, Some(Pfn(2)), 1));
        c.insert(1, Pfn(0));
        assert_eq!(c.frames().collect::<Vec<_>>(), vec![Pfn(0), Pfn(2)]);
        assert_eq!(c.remove(6), Some(Pfn(2)));
        assert_eq!((c.remove(6), c.slot(Pfn(2)), c.len()), (None, None, 1));
        // Out of range: ignored, never a panic.
        c.insert(99, Pfn(0));
        c.insert(0, Pfn(99));
        assert_eq!((c.frame(99), c.slot(Pfn(99)), c.len()), (None, None, 1));
    }
}
