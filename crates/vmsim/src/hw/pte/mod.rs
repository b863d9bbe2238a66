//! Page-table entries: each hardware format in its own file, converted to and from one
//! architecture-neutral [`Pte`].
//!
//! The walker and the page-table editor speak only [`Pte`]; the bit layouts live in
//! [`x86_64`], [`riscv`] and [`textbook`].

pub mod riscv;
pub mod textbook;
pub mod x86_64;

use super::paging::{Format, Paging};
use crate::addr::{Pfn, SwapSlot};
use std::fmt;

/// Permission and status bits of an entry, independent of the format's layout.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// Readable.
    pub const READ: Flags = Flags(1 << 0);
    /// Writable.
    pub const WRITE: Flags = Flags(1 << 1);
    /// Executable.
    pub const EXEC: Flags = Flags(1 << 2);
    /// Accessible from user mode.
    pub const USER: Flags = Flags(1 << 3);
    /// Global: matches every address-space id in the TLB.
    pub const GLOBAL: Flags = Flags(1 << 4);
    /// Accessed (set by the walker on use).
    pub const ACCESSED: Flags = Flags(1 << 5);
    /// Dirty (set by the walker on a write).
    pub const DIRTY: Flags = Flags(1 << 6);
    /// Caching disabled (x86 PCD), for device memory.
    pub const NO_CACHE: Flags = Flags(1 << 7);
    /// Write-through caching (x86 PWT).
    pub const WRITE_THROUGH: Flags = Flags(1 << 8);
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Read, write and execute.
    pub const RWX: Flags = Flags(0b111);
    /// Read and write.
    pub const RW: Flags = Flags(0b011);
    /// Read and execute.
    pub const RX: Flags = Flags(0b101);

    /// Whether every flag of `other` is set.
    #[inline(always)]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether any flag of `other` is set.
    #[inline(always)]
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
    /// Both sets of flags.
    #[inline(always)]
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    /// The flags set in both.
    #[inline(always)]
    pub const fn intersection(self, other: Flags) -> Flags {
        Flags(self.0 & other.0)
    }
    /// `self` without the flags of `other`.
    #[inline(always)]
    pub const fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
    /// `self` with `other` set or cleared.
    #[inline(always)]
    pub const fn with(self, other: Flags, on: bool) -> Flags {
        if on {
            self.union(other)
        } else {
            self.difference(other)
        }
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

impl std::ops::Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags(!self.0)
    }
}

impl std::ops::BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        self.intersection(rhs)
    }
}

const FLAG_NAMES: [(Flags, char); 9] = [
    (Flags::READ, 'R'),
    (Flags::WRITE, 'W'),
    (Flags::EXEC, 'X'),
    (Flags::USER, 'U'),
    (Flags::GLOBAL, 'G'),
    (Flags::ACCESSED, 'A'),
    (Flags::DIRTY, 'D'),
    (Flags::NO_CACHE, 'C'),
    (Flags::WRITE_THROUGH, 'T'),
];

impl fmt::Display for Flags {
    /// Letters for the flags set, `-` for those clear: `RW-U-AD--`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for (flag, c) in FLAG_NAMES {
            f.write_char(if self.contains(flag) { c } else { '-' })?;
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({self})")
    }
}

/// One page-table entry, decoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pte {
    /// Not present (x86 P=0, RISC-V V=0). The other bits are free for the OS.
    Absent,
    /// Points to the next-level table. `flags` are the restrictions this entry places on
    /// everything below it (x86: W, U and X; RISC-V and textbook: none, so all set), plus
    /// GLOBAL where the format lets a table entry make its subtree global (RISC-V).
    Table {
        /// First frame of the next-level table.
        pfn: Pfn,
        /// Restrictions on the subtree.
        flags: Flags,
    },
    /// Maps a page of the size of its level.
    Leaf {
        /// First frame of the page.
        pfn: Pfn,
        /// Permissions and status.
        flags: Flags,
    },
    /// A present entry whose bits the hardware refuses (a reserved bit set, a misaligned
    /// huge page, a leaf where none may be): the walk faults.
    Reserved,
}

/// What the kernel keeps in a not-present entry, which the hardware ignores: the
/// architecture-neutral form of a software entry (Linux's `swp_entry_t`). Each format
/// stores its [`SoftPte::value`] in the bits its walker ignores ([`Paging::encode_soft`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SoftPte {
    /// A page made inaccessible by `mprotect(PROT_NONE)`, keeping its frame.
    ProtNone(Pfn),
    /// A swapped-out page: the slot that holds its bytes.
    Swap(SwapSlot),
}

impl SoftPte {
    /// Tag of an entry that keeps a frame of a `PROT_NONE` page.
    pub const TAG_PROT_NONE: u64 = 1;
    /// Tag of an entry that names a swap slot.
    pub const TAG_SWAP: u64 = 2;

    /// The software value: the payload above a 2-bit tag (never 0, which is an empty entry).
    #[inline]
    pub const fn value(self) -> u64 {
        match self {
            SoftPte::ProtNone(pfn) => (pfn.0 << 2) | Self::TAG_PROT_NONE,
            SoftPte::Swap(slot) => ((slot.0 as u64) << 2) | Self::TAG_SWAP,
        }
    }

    /// The entry a software value names, if its tag is one of the kernel's.
    #[inline]
    pub const fn from_value(value: u64) -> Option<SoftPte> {
        match value & 3 {
            Self::TAG_PROT_NONE => Some(SoftPte::ProtNone(Pfn(value >> 2))),
            Self::TAG_SWAP => Some(SoftPte::Swap(SwapSlot((value >> 2) as u32))),
            _ => None,
        }
    }

    /// The swap slot, if this is a swap entry.
    #[inline]
    pub const fn swap_slot(self) -> Option<SwapSlot> {
        match self {
            SoftPte::Swap(slot) => Some(slot),
            SoftPte::ProtNone(_) => None,
        }
    }

    /// The kept frame, if this is a `PROT_NONE` entry.
    #[inline]
    pub const fn prot_none_frame(self) -> Option<Pfn> {
        match self {
            SoftPte::ProtNone(pfn) => Some(pfn),
            SoftPte::Swap(_) => None,
        }
    }
}

/// The effect of the hardware setting Accessed (and Dirty) on an entry it used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AdUpdate {
    /// Set Accessed (and Dirty on a write leaf) in the entry.
    Leaf {
        /// Whether the access is a write.
        write: bool,
    },
    /// Set Accessed on a table entry, where the format has one there (x86).
    Table,
}

impl Paging {
    /// Decodes a raw entry read from a table at `level`.
    #[inline]
    pub fn decode(&self, raw: u64, level: u32) -> Pte {
        match self.format {
            Format::X86_64 => x86_64::decode(self, raw, level),
            Format::Riscv => riscv::decode(self, raw, level),
            Format::Textbook => textbook::decode(self, raw, level),
        }
    }

    /// Encodes an entry for a table at `level`.
    ///
    /// The caller guarantees the entry is representable: a leaf only at a level that may
    /// hold one, its frame aligned to the page size, the frame number within `pa_bits`.
    #[inline]
    pub fn encode(&self, pte: Pte, level: u32) -> u64 {
        match self.format {
            Format::X86_64 => x86_64::encode(self, pte, level),
            Format::Riscv => riscv::encode(self, pte, level),
            Format::Textbook => textbook::encode(self, pte, level),
        }
    }

    /// The raw entry with Accessed (and Dirty) set as the hardware sets them when it
    /// uses the entry; unchanged where the format has no such bit for that entry.
    #[inline]
    pub fn set_accessed(&self, raw: u64, update: AdUpdate) -> u64 {
        self.ad_bits().set(raw, update)
    }

    /// Where this format keeps Accessed and Dirty.
    #[inline]
    pub fn ad_bits(&self) -> AdBits {
        match self.format {
            Format::X86_64 => x86_64::AD,
            Format::Riscv => riscv::AD,
            Format::Textbook => textbook::AD,
        }
    }

    /// The raw not-present entry holding the software value `value` (1 to
    /// [`Paging::max_soft`]), in the bits this format's walker ignores.
    #[inline]
    pub fn encode_soft(&self, value: u64) -> u64 {
        match self.format {
            Format::X86_64 => x86_64::encode_soft(value),
            Format::Riscv => riscv::encode_soft(value),
            Format::Textbook => textbook::encode_soft(value),
        }
    }

    /// The software value held by a raw entry that decodes as [`Pte::Absent`] (0 when
    /// the entry is empty).
    #[inline]
    pub fn soft_value(&self, raw: u64) -> u64 {
        match self.format {
            Format::X86_64 => x86_64::soft_value(raw),
            Format::Riscv => riscv::soft_value(raw),
            Format::Textbook => textbook::soft_value(raw),
        }
    }

    /// The largest software value a not-present entry of this format can hold.
    pub fn max_soft(&self) -> u64 {
        match self.format {
            Format::X86_64 => x86_64::max_soft(self),
            Format::Riscv => riscv::max_soft(self),
            Format::Textbook => textbook::max_soft(self),
        }
    }

    /// The raw leaf entry with Accessed cleared and every other bit kept.
    #[inline]
    pub fn clear_accessed(&self, raw: u64) -> u64 {
        self.ad_bits().clear_accessed(raw)
    }

    /// The largest frame number this format can store in an entry.
    pub fn max_pfn(&self) -> u64 {
        (1u64 << (self.pa_bits - self.page_shift)) - 1
    }
}

/// One flag of a leaf entry and the bit of a format's entry that holds it. A format
/// lists its flags in one such table, which both its encoder and its decoder read.
pub type FlagBit = (Flags, u64);

/// `base` with each flag of `table` set or cleared as its bit is in `raw`.
#[inline(always)]
pub(crate) fn flags_of(raw: u64, base: Flags, table: &[FlagBit]) -> Flags {
    let mut flags = base;
    for &(flag, bit) in table {
        flags = flags.with(flag, raw & bit != 0);
    }
    flags
}

/// The bits of `table` whose flags are set in `flags`.
#[inline(always)]
pub(crate) fn bits_of(flags: Flags, table: &[FlagBit]) -> u64 {
    let mut raw = 0;
    for &(flag, bit) in table {
        if flags.contains(flag) {
            raw |= bit;
        }
    }
    raw
}

/// Whether a leaf at `level` may map frame `ppn`: the level holds leaves and the frame
/// is aligned to the level's page size. (x86-64 checks its huge leaves its own way: bit
/// 12 of one is PAT, not address.)
#[inline(always)]
pub(crate) fn leaf_frame_ok(p: &Paging, ppn: u64, level: u32) -> bool {
    p.leaf_allowed(level) && ppn & ((p.leaf_size(level) >> p.page_shift) - 1) == 0
}

/// Where a format keeps Accessed and Dirty, and whether the walker sets Accessed in the
/// table entries it uses as well as in the leaf.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AdBits {
    /// The Accessed bit.
    pub accessed: u64,
    /// The Dirty bit (leaves only).
    pub dirty: u64,
    /// Whether table entries have Accessed too (x86).
    pub on_tables: bool,
}

impl AdBits {
    /// The raw entry with Accessed (and Dirty) set as the walker sets them when it uses
    /// the entry; unchanged where the format has no such bit for that entry.
    #[inline(always)]
    pub const fn set(self, raw: u64, update: AdUpdate) -> u64 {
        match update {
            AdUpdate::Leaf { write: true } => raw | self.accessed | self.dirty,
            AdUpdate::Leaf { write: false } => raw | self.accessed,
            AdUpdate::Table if self.on_tables => raw | self.accessed,
            AdUpdate::Table => raw,
        }
    }

    /// The raw entry with Accessed cleared, all else as it was.
    #[inline(always)]
    pub const fn clear_accessed(self, raw: u64) -> u64 {
        raw & !self.accessed
    }
}

/// Software entries of a format whose Present (or Valid) bit is bit 0: the value in
/// the bits above it, which the hardware ignores while the entry is not present. Each
/// format's file says whether it uses this layout.
pub mod present_bit_0 {
    use crate::hw::Paging;

    /// The raw not-present entry holding the software value `value` (1 to
    /// [`max_soft`]): bit 0 clear, the value above it.
    #[inline]
    pub fn encode_soft(value: u64) -> u64 {
        value << 1
    }

    /// The software value a raw not-present entry holds (0 for an empty entry).
    #[inline]
    pub fn soft_value(raw: u64) -> u64 {
        raw >> 1
    }

    /// The largest software value an entry of `p`'s width can hold.
    pub fn max_soft(p: &Paging) -> u64 {
        (u64::MAX >> (64 - p.pte_bytes * 8)) >> 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_entries_round_trip_through_their_value() {
        for e in [
            SoftPte::ProtNone(Pfn(0)),
            SoftPte::ProtNone(Pfn(0x12_3456)),
            SoftPte::Swap(SwapSlot(0)),
            SoftPte::Swap(SwapSlot(u32::MAX)),
        ] {
            assert_ne!(e.value(), 0);
            assert_eq!(SoftPte::from_value(e.value()), Some(e));
        }
        assert_eq!(SoftPte::from_value(0), None);
        assert_eq!(SoftPte::from_value(3), None);
        assert_eq!(SoftPte::Swap(SwapSlot(5)).swap_slot(), Some(SwapSlot(5)));
        assert_eq!(SoftPte::Swap(SwapSlot(5)).prot_none_frame(), None);
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// Encodes a base-page leaf of frame `pfn` with the flags `base`, then with each
    /// flag of `cases` added, and checks that each adds its bit and nothing else;
    /// returns the entry with `base` alone.
    pub fn check_flag_bits(p: &Paging, pfn: u64, base: Flags, cases: &[FlagBit]) -> u64 {
        let leaf = |flags| {
            p.encode(
                Pte::Leaf {
                    pfn: Pfn(pfn),
                    flags,
                },
                1,
            )
        };
        let raw = leaf(base);
        for &(flag, bit) in cases {
            assert_eq!(leaf(base | flag), raw | bit, "{flag:?}");
        }
        raw
    }

    /// Round-trips every representable leaf and table entry at every level.
    pub fn check_round_trips(p: &Paging, pfns: &[u64], flag_sets: &[Flags]) {
        for level in 1..=p.levels {
            let align = (p.leaf_size(level) >> p.page_shift).max(1);
            for &pfn in pfns {
                let pfn = (pfn & p.max_pfn()) & !(align - 1);
                for &flags in flag_sets {
                    if p.leaf_allowed(level) {
                        let leaf = Pte::Leaf {
                            pfn: Pfn(pfn),
                            flags,
                        };
                        let raw = p.encode(leaf, level);
                        assert_eq!(
                            p.decode(raw, level),
                            leaf,
                            "leaf level {level} raw {raw:#x}"
                        );
                    }
                    if level > 1 {
                        let t = Pte::Table {
                            pfn: Pfn(pfn & p.max_pfn()),
                            flags,
                        };
                        let raw = p.encode(t, level);
                        let Pte::Table { pfn: got, .. } = p.decode(raw, level) else {
                            panic!("table entry at level {level} did not decode as a table");
                        };
                        assert_eq!(got.0, pfn & p.max_pfn());
                    }
                }
            }
            assert_eq!(p.decode(p.encode(Pte::Absent, level), level), Pte::Absent);
        }
        // Software entries are not present at level 1 and give their value back.
        for value in [1, 2, 0x1234 & p.max_soft(), p.max_soft()] {
            let raw = p.encode_soft(value);
            assert_eq!(p.decode(raw, 1), Pte::Absent, "soft {value:#x}");
            assert_eq!(p.soft_value(raw), value);
        }
    }
}
