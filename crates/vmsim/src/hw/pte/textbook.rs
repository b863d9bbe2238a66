//! vmsim's textbook PTE, for machines of any geometry: `pte_bytes` wide, eight flag
//! bits at the bottom and the frame number above them.
//!
//! | bit | name | meaning |
//! |---|---|---|
//! | 0 | V | valid (a valid entry is readable) |
//! | 1 | W | writable |
//! | 2 | X | executable |
//! | 3 | U | user accessible |
//! | 4 | A | accessed |
//! | 5 | D | dirty |
//! | 6 | L | leaf at an upper level (a huge page), like x86's PS |
//! | 7 | G | global |
//! | 8.. | PPN | frame number (up to the entry's width) |
//!
//! Pointers to the next table carry no permissions: only the leaf's count, as on RISC-V.
//! A frame number wider than `pa_bits` allows, L at a level that may not hold leaves,
//! or a misaligned huge page is reserved and faults.

use super::{bits_of, flags_of, leaf_frame_ok, AdBits, FlagBit, Flags, Pte};
use crate::addr::Pfn;
use crate::hw::paging::Paging;

/// Valid.
pub const V: u64 = 1 << 0;
/// Writable.
pub const W: u64 = 1 << 1;
/// Executable.
pub const X: u64 = 1 << 2;
/// User accessible.
pub const U: u64 = 1 << 3;
/// Accessed.
pub const A: u64 = 1 << 4;
/// Dirty.
pub const D: u64 = 1 << 5;
/// Leaf at an upper level.
pub const L: u64 = 1 << 6;
/// Global.
pub const G: u64 = 1 << 7;
/// First bit of the frame number.
pub const PPN_SHIFT: u32 = 8;

/// The flags of a leaf and their bits (a valid leaf is readable: no bit for that).
const LEAF_BITS: [FlagBit; 6] = [
    (Flags::WRITE, W),
    (Flags::EXEC, X),
    (Flags::USER, U),
    (Flags::ACCESSED, A),
    (Flags::DIRTY, D),
    (Flags::GLOBAL, G),
];

/// A and D: set in a leaf the walker uses (D on a write).
pub const AD: AdBits = AdBits {
    accessed: A,
    dirty: D,
    on_tables: false,
};

/// Bits of frame number a `pte_bytes`-wide entry can hold.
pub fn ppn_bits(pte_bytes: u32) -> u32 {
    (pte_bytes * 8).saturating_sub(PPN_SHIFT)
}

/// Decodes a textbook entry read at `level`.
pub fn decode(p: &Paging, raw: u64, level: u32) -> Pte {
    if raw & V == 0 {
        return Pte::Absent;
    }
    let ppn = raw >> PPN_SHIFT;
    if ppn > p.max_pfn() {
        return Pte::Reserved;
    }
    if level > 1 && raw & L == 0 {
        return Pte::Table {
            pfn: Pfn(ppn),
            flags: Flags::RWX | Flags::USER,
        };
    }
    if !leaf_frame_ok(p, ppn, level) {
        return Pte::Reserved;
    }
    Pte::Leaf {
        pfn: Pfn(ppn),
        flags: flags_of(raw, Flags::READ, &LEAF_BITS),
    }
}

/// Encodes an entry for a table at `level`.
pub fn encode(_p: &Paging, pte: Pte, level: u32) -> u64 {
    match pte {
        Pte::Absent | Pte::Reserved => 0,
        Pte::Table { pfn, .. } => V | (pfn.0 << PPN_SHIFT),
        Pte::Leaf { pfn, flags } => {
            let raw = V | (pfn.0 << PPN_SHIFT) | bits_of(flags, &LEAF_BITS);
            if level > 1 {
                raw | L
            } else {
                raw
            }
        }
    }
}

// Software entries: V is bit 0, so the value sits in the bits above it, which the
// hardware ignores in a not-present entry.
pub use super::present_bit_0::{encode_soft, max_soft, soft_value};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::paging::Format;
    use crate::hw::pte::test_util::{check_flag_bits, check_round_trips};

    fn csapp() -> Paging {
        Paging::new(Format::Textbook, "textbook", 14, 12, 6, &[8], 2, &[], false)
    }

    #[test]
    fn every_bit_decodes() {
        let p = csapp();
        let raw = V | W | X | U | A | D | G | (0x2d << PPN_SHIFT);
        assert_eq!(
            decode(&p, raw, 1),
            Pte::Leaf {
                pfn: Pfn(0x2d),
                flags: Flags::RWX | Flags::USER | Flags::ACCESSED | Flags::DIRTY | Flags::GLOBAL
            }
        );
        assert_eq!(decode(&p, 0x2d << PPN_SHIFT, 1), Pte::Absent);
        // 12-bit PA with 64-byte pages: 6-bit PPN; 0x40 is out of range.
        assert_eq!(decode(&p, V | (0x40 << PPN_SHIFT), 1), Pte::Reserved);
    }

    #[test]
    fn each_flag_encodes_to_its_bit() {
        let cases = [
            (Flags::WRITE, W),
            (Flags::EXEC, X),
            (Flags::USER, U),
            (Flags::ACCESSED, A),
            (Flags::DIRTY, D),
            (Flags::GLOBAL, G),
        ];
        let base = check_flag_bits(&csapp(), 5, Flags::READ, &cases);
        assert_eq!(base, V | (5 << PPN_SHIFT));
    }

    #[test]
    fn upper_level_leaves_need_l_and_permission() {
        // 16-bit VA, 16-byte pages, two levels of 6 bits, huge leaves at level 2.
        let p = Paging::new(
            Format::Textbook,
            "textbook",
            16,
            16,
            4,
            &[6, 6],
            4,
            &[2],
            false,
        );
        assert!(matches!(
            decode(&p, V | (3 << PPN_SHIFT), 2),
            Pte::Table { pfn: Pfn(3), .. }
        ));
        assert!(matches!(
            decode(&p, V | L | (64 << PPN_SHIFT), 2),
            Pte::Leaf { pfn: Pfn(64), .. }
        ));
        assert_eq!(decode(&p, V | L | (65 << PPN_SHIFT), 2), Pte::Reserved);
        let no_huge = Paging::new(
            Format::Textbook,
            "textbook",
            16,
            16,
            4,
            &[6, 6],
            4,
            &[],
            false,
        );
        assert_eq!(
            decode(&no_huge, V | L | (64 << PPN_SHIFT), 2),
            Pte::Reserved
        );
        check_round_trips(
            &p,
            &[0, 1, 64, 0xfff],
            &[Flags::READ, Flags::RWX | Flags::USER],
        );
    }

    #[test]
    fn round_trips() {
        let flag_sets = [
            Flags::READ,
            Flags::RW | Flags::USER,
            Flags::RWX | Flags::ACCESSED | Flags::DIRTY,
        ];
        check_round_trips(&csapp(), &[0, 1, 0x3f], &flag_sets);
        assert_eq!(ppn_bits(2), 8);
        assert_eq!(ppn_bits(8), 56);
    }
}
