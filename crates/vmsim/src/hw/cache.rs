//! Physically indexed, physically tagged data caches, for the explain mode: where the
//! machine describes them, a translated address is split into tag, set index and block
//! offset, and looked up, as course exercises ask (CS:APP 9.6.4).
//!
//! The model keeps tags, valid bits, LRU order and, for lines a state file preloads,
//! their bytes. It is used by `Machine::explain` only: the translation fast path never
//! touches it, so it costs nothing when unused. Timing and write policy are not
//! modelled (a store looks up and fills like a load).

use crate::addr::PhysAddr;
use serde::Serialize;

/// A cache's geometry, from a machine description's `[[cache]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CacheSpec {
    /// Its name (`L1d`).
    pub name: String,
    /// Number of sets (a power of two).
    pub sets: u32,
    /// Lines per set.
    pub ways: u32,
    /// Bytes per line (a power of two).
    pub line_bytes: u32,
}

impl CacheSpec {
    /// Total bytes of data it holds.
    pub fn size(&self) -> u64 {
        self.sets as u64 * self.ways as u64 * self.line_bytes as u64
    }

    /// Splits a physical address into (tag, set index, block offset).
    pub fn split(&self, pa: PhysAddr) -> (u64, u64, u64) {
        let off_bits = self.line_bytes.trailing_zeros();
        let set_bits = self.sets.trailing_zeros();
        let offset = pa.0 & (self.line_bytes as u64 - 1);
        let set = (pa.0 >> off_bits) & (self.sets as u64 - 1);
        let tag = pa.0 >> (off_bits + set_bits);
        (tag, set, offset)
    }
}

/// One line of a cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheLine {
    /// Whether it holds a block.
    pub valid: bool,
    /// The block's tag.
    pub tag: u64,
    /// The block's bytes, when known (preloaded by a state file).
    pub bytes: Option<Vec<u8>>,
    #[serde(skip)]
    used: u64,
}

/// What one lookup found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CacheAccess {
    /// The cache.
    pub cache: String,
    /// Tag bits of the address.
    pub tag: u64,
    /// Set index.
    pub index: u64,
    /// Offset in the block.
    pub offset: u64,
    /// Whether a valid line with the tag was there.
    pub hit: bool,
    /// The way that hit, or that was filled on a miss.
    pub way: u32,
    /// The byte at the address, when the line's bytes are known.
    pub byte: Option<u8>,
}

/// A data cache.
#[derive(Clone, Debug)]
pub struct DataCache {
    /// Its geometry.
    pub spec: CacheSpec,
    lines: Vec<CacheLine>,
    clock: u64,
}

impl DataCache {
    /// An empty cache.
    pub fn new(spec: CacheSpec) -> DataCache {
        let n = spec.sets as usize * spec.ways as usize;
        DataCache {
            spec,
            lines: vec![CacheLine::default(); n],
            clock: 0,
        }
    }

    /// The lines of set `set`, way by way.
    pub fn set(&self, set: u64) -> &[CacheLine] {
        let w = self.spec.ways as usize;
        let start = set as usize * w;
        self.lines.get(start..start + w).unwrap_or(&[])
    }

    /// Puts a line in `set` (way `way`, or the first invalid or least recent one).
    /// Returns false if the set or way is out of range.
    pub fn preload(
        &mut self,
        set: u64,
        way: Option<u32>,
        tag: u64,
        valid: bool,
        bytes: Option<Vec<u8>>,
    ) -> bool {
        if set >= self.spec.sets as u64 || way.is_some_and(|w| w >= self.spec.ways) {
            return false;
        }
        let w = way.unwrap_or_else(|| self.victim(set));
        self.clock += 1;
        let clock = self.clock;
        let line = &mut self.lines[set as usize * self.spec.ways as usize + w as usize];
        *line = CacheLine {
            valid,
            tag,
            bytes,
            used: clock,
        };
        true
    }

    fn victim(&self, set: u64) -> u32 {
        let lines = self.set(set);
        if let Some(i) = lines.iter().position(|l| !l.valid) {
            return i as u32;
        }
        lines
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| l.used)
            .map_or(0, |(i, _)| i as u32)
    }

    /// Looks `pa` up; on a miss the least recently used line of the set is filled
    /// (its bytes unknown).
    pub fn access(&mut self, pa: PhysAddr) -> CacheAccess {
        let (tag, set, offset) = self.spec.split(pa);
        self.clock += 1;
        let ways = self.spec.ways as usize;
        let base = set as usize * ways;
        let hit_way = self.lines[base..base + ways]
            .iter()
            .position(|l| l.valid && l.tag == tag);
        let (way, hit) = match hit_way {
            Some(w) => (w, true),
            None => (self.victim(set) as usize, false),
        };
        let line = &mut self.lines[base + way];
        if !hit {
            *line = CacheLine {
                valid: true,
                tag,
                bytes: None,
                used: 0,
            };
        }
        line.used = self.clock;
        let byte = line
            .bytes
            .as_ref()
            .and_then(|b| b.get(offset as usize).copied());
        CacheAccess {
            cache: self.spec.name.clone(),
            tag,
            index: set,
            offset,
            hit,
            way: way as u32,
            byte,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csapp() -> DataCache {
        // CS:APP 9.6.4: 16 sets, direct-mapped, 4-byte blocks, 12-bit physical addresses.
        DataCache::new(CacheSpec {
            name: "L1d".into(),
            sets: 16,
            ways: 1,
            line_bytes: 4,
        })
    }

    #[test]
    fn splits_addresses_into_tag_index_and_offset() {
        let c = csapp();
        // PA 0x354 = 0b0011_0101_0100: offset 0, set 5, tag 0x0d.
        assert_eq!(c.spec.split(PhysAddr(0x354)), (0x0d, 5, 0));
        assert_eq!(c.spec.split(PhysAddr(0x357)), (0x0d, 5, 3));
        assert_eq!(c.spec.size(), 64);
    }

    #[test]
    fn a_preloaded_line_hits_with_its_byte_and_a_conflict_evicts_it() {
        let mut c = csapp();
        assert!(c.preload(5, None, 0x0d, true, Some(vec![0x36, 0x72, 0xf0, 0x1d])));
        let a = c.access(PhysAddr(0x356));
        assert!(a.hit && a.byte == Some(0xf0), "{a:?}");
        // Same set, other tag: a miss that replaces the only line.
        let b = c.access(PhysAddr(0x154));
        assert!(!b.hit && b.index == 5 && b.tag == 0x05);
        assert!(!c.access(PhysAddr(0x354)).hit);
        assert!(!c.preload(16, None, 0, true, None), "set out of range");
    }

    #[test]
    fn lru_keeps_the_recently_used_way() {
        let mut c = DataCache::new(CacheSpec {
            name: "L1d".into(),
            sets: 1,
            ways: 2,
            line_bytes: 16,
        });
        c.access(PhysAddr(0x000));
        c.access(PhysAddr(0x100));
        c.access(PhysAddr(0x000)); // 0x100 is now the least recent
        c.access(PhysAddr(0x200));
        assert!(c.access(PhysAddr(0x000)).hit);
        assert!(!c.access(PhysAddr(0x100)).hit);
    }
}
