//! Which slot a page going to swap gets: Linux's cluster allocator (`mm/swapfile.c`,
//! 6.12 on, as it runs for a device that is not an SSD, one cluster for the machine).
//!
//! - The device is cut into clusters of 512 slots. Its offset 0 is the header, so
//!   vmsim's slot `s` is Linux's offset `s + 1`, and the first cluster starts with a
//!   used slot.
//! - Slots are taken one after another from the current cluster, from where the last
//!   one was taken, skipping slots in use.
//! - When the current cluster has none left, the next comes from, in order: the
//!   clusters that had a slot freed since they were last taken from (`nonfull`), oldest
//!   first, each scanned from its start; a free cluster; one cluster that was taken from
//!   and left part used (`frag`).
//!
//! So once pages come back and free their slots, the pages that go out next fill the
//! holes among older ones: the aligned blocks of slots that swap readahead reads
//! (`readahead.rs`) hold pages of different ages, as Linux's do.

use crate::policy::list::{Lists, NONE};

/// Slots in a cluster (Linux's `SWAPFILE_CLUSTER`, a huge page's worth).
pub(super) const CLUSTER: u64 = 512;

/// The lists a cluster can be on (Linux's `CLUSTER_FLAG_*`); off every list while
/// it is being taken from.
const FREE: u32 = 0;
const NONFULL: u32 = 1;
const FRAG: u32 = 2;
const FULL: u32 = 3;

/// The clusters of one device, by how full they are.
#[derive(Clone, Debug)]
pub(super) struct SlotAlloc {
    /// Slots in use in each cluster (Linux's `ci->count`), the header and the offsets
    /// past the device's end included.
    count: Vec<u16>,
    /// Free, nonfull, fragmented and full clusters, each oldest at the tail.
    lists: Lists,
    /// The offset to take the next slot from, in the current cluster (0: none).
    next: u64,
    /// Offsets on the device, the header included.
    max: u64,
}

impl SlotAlloc {
    /// The clusters of a device of `slots` slots (plus its header), every slot free.
    pub(super) fn new(slots: u64) -> SlotAlloc {
        let max = slots + 1;
        let n = max.div_ceil(CLUSTER) as usize;
        let mut count = vec![0u16; n];
        // The header, and the offsets past the end of the last cluster, are in use.
        count[0] = 1;
        let past = n as u64 * CLUSTER - max;
        count[n - 1] += past as u16;
        let mut lists = Lists::new(n, 4);
        for (c, &k) in count.iter().enumerate() {
            let l = match u64::from(k) {
                0 => FREE,
                CLUSTER => FULL,
                _ => NONFULL,
            };
            lists.push_head(l, c as u32);
        }
        SlotAlloc {
            count,
            lists,
            next: 0,
            max,
        }
    }

    /// A free slot, by `is_free` (what the device says of a slot), or `None` when no
    /// cluster has one.
    pub(super) fn alloc(&mut self, is_free: impl Fn(u32) -> bool) -> Option<u32> {
        if self.next != 0 {
            let c = (self.next / CLUSTER) as u32;
            // A cluster emptied since is taken from its start.
            let from = if self.count[c as usize] == 0 {
                0
            } else {
                self.next
            };
            if let Some(s) = self.scan(c, from, &is_free) {
                return Some(s);
            }
        }
        while let Some(c) = self.lists.tail(NONFULL) {
            if let Some(s) = self.scan(c, 0, &is_free) {
                return Some(s);
            }
        }
        for l in [FREE, FRAG] {
            if let Some(s) = self.lists.tail(l).and_then(|c| self.scan(c, 0, &is_free)) {
                return Some(s);
            }
        }
        None
    }

    /// Takes the first free slot of cluster `c` at or after offset `from` (0: from the
    /// cluster's start); then the cluster goes on the list its count says, and the
    /// next slot is looked for after this one (Linux's `alloc_swap_scan_cluster` and
    /// `relocate_cluster`).
    fn scan(&mut self, c: u32, from: u64, is_free: &impl Fn(u32) -> bool) -> Option<u32> {
        let start = u64::from(c) * CLUSTER;
        let end = (start + CLUSTER).min(self.max);
        let ci = c as usize;
        self.next = 0;
        let mut found = None;
        if u64::from(self.count[ci]) < CLUSTER {
            for off in from.max(start).max(1)..end {
                let slot = (off - 1) as u32;
                if is_free(slot) {
                    self.count[ci] += 1;
                    if u64::from(self.count[ci]) < CLUSTER && off + 1 < end {
                        self.next = off + 1;
                    }
                    found = Some(slot);
                    break;
                }
            }
        }
        self.relocate(c);
        found
    }

    /// Puts cluster `c` on the list its count says, unless it is there already.
    fn relocate(&mut self, c: u32) {
        let l = match u64::from(self.count[c as usize]) {
            0 => FREE,
            CLUSTER => FULL,
            _ => FRAG,
        };
        self.move_to(c, l);
    }

    /// Moves cluster `c` to the newest end of list `l`, unless it is on `l`.
    fn move_to(&mut self, c: u32, l: u32) {
        if self.lists.list_of(c) != l {
            if self.lists.list_of(c) != NONE {
                self.lists.remove(c);
            }
            self.lists.push_head(l, c);
        }
    }

    /// `slot` is free again: its cluster goes on the free list if it is now empty, else
    /// on the nonfull one (Linux's `free_cluster` and `partial_free_cluster`).
    pub(super) fn free(&mut self, slot: u32) {
        let c = (u64::from(slot) + 1) / CLUSTER;
        let k = &mut self.count[c as usize];
        *k = k.saturating_sub(1);
        let l = if *k == 0 { FREE } else { NONFULL };
        self.move_to(c as u32, l);
    }

    /// The slot [`alloc`](Self::alloc) takes next if the current cluster's next
    /// offset is free (a hint for the host's caches).
    pub(super) fn next_hint(&self) -> Option<u32> {
        (self.next != 0).then(|| (self.next - 1) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_go_in_order_then_fill_holes_of_clusters_that_had_slots_freed() {
        let n = 3 * CLUSTER - 1; // three whole clusters with the header
        let mut a = SlotAlloc::new(n);
        let mut used = vec![false; n as usize];
        fn take(a: &mut SlotAlloc, used: &mut [bool]) -> u32 {
            let s = a.alloc(|s| !used[s as usize]).unwrap();
            used[s as usize] = true;
            s
        }
        // The first cluster, past the header, then the second.
        for i in 0..CLUSTER as u32 + 10 {
            assert_eq!(take(&mut a, &mut used), i);
        }
        // Slots freed in the first (full) cluster are taken once the current one is
        // used up, lowest first.
        for s in [300u32, 100] {
            used[s as usize] = false;
            a.free(s);
        }
        for i in CLUSTER as u32 + 10..2 * CLUSTER as u32 - 1 {
            assert_eq!(take(&mut a, &mut used), i);
        }
        assert_eq!(take(&mut a, &mut used), 100);
        assert_eq!(take(&mut a, &mut used), 300);
        // Then a free cluster.
        assert_eq!(take(&mut a, &mut used), 2 * CLUSTER as u32 - 1);
    }

    #[test]
    fn a_full_device_says_so_and_a_slot_freed_is_taken_again() {
        let n = 2 * CLUSTER - 1;
        let mut a = SlotAlloc::new(n);
        let mut used = vec![false; n as usize];
        for _ in 0..n {
            let s = a.alloc(|s| !used[s as usize]).unwrap();
            used[s as usize] = true;
        }
        assert_eq!(a.alloc(|s| !used[s as usize]), None);
        used[700] = false;
        a.free(700);
        assert_eq!(a.alloc(|s| !used[s as usize]), Some(700));
    }
}
