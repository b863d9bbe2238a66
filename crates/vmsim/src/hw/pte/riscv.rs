//! The RISC-V Sv39/Sv48/Sv57 PTE (RISC-V privileged spec, 12.4-12.6): 64 bits, the same
//! layout at every level; an entry with R, W or X set is a leaf at any level.
//!
//! | bit | name | meaning |
//! |---|---|---|
//! | 0 | V | valid |
//! | 1 | R | readable |
//! | 2 | W | writable |
//! | 3 | X | executable |
//! | 4 | U | user accessible |
//! | 5 | G | global (on a pointer: the whole subtree) |
//! | 6 | A | accessed |
//! | 7 | D | dirty |
//! | 8..9 | RSW | for the OS |
//! | 10..53 | PPN | 44-bit frame number |
//! | 54..63 | | reserved (Svpbmt and Svnapot are not modelled): must be zero |
//!
//! W without R is reserved; so is a pointer at the last level and a superpage whose
//! PPN is not aligned to its size. The walker updates A and D in hardware (Svadu),
//! rather than trapping to let software do it.

use super::{bits_of, flags_of, leaf_frame_ok, AdBits, FlagBit, Flags, Pte};
use crate::addr::Pfn;
use crate::hw::paging::Paging;

/// Valid.
pub const V: u64 = 1 << 0;
/// Readable.
pub const R: u64 = 1 << 1;
/// Writable.
pub const W: u64 = 1 << 2;
/// Executable.
pub const X: u64 = 1 << 3;
/// User accessible.
pub const U: u64 = 1 << 4;
/// Global.
pub const G: u64 = 1 << 5;
/// Accessed.
pub const A: u64 = 1 << 6;
/// Dirty.
pub const D: u64 = 1 << 7;
/// First bit of the PPN.
pub const PPN_SHIFT: u32 = 10;
/// Width of the PPN field.
pub const PPN_BITS: u32 = 44;
const RESERVED: u64 = !((1u64 << (PPN_SHIFT + PPN_BITS)) - 1);

/// The flags of a leaf and their bits.
const LEAF_BITS: [FlagBit; 7] = [
    (Flags::READ, R),
    (Flags::WRITE, W),
    (Flags::EXEC, X),
    (Flags::USER, U),
    (Flags::GLOBAL, G),
    (Flags::ACCESSED, A),
    (Flags::DIRTY, D),
];

/// A and D: set in a leaf the walker uses (D on a write); pointers have no A/D in
/// hardware.
pub const AD: AdBits = AdBits {
    accessed: A,
    dirty: D,
    on_tables: false,
};

/// Decodes a RISC-V entry read at `level`.
pub fn decode(p: &Paging, raw: u64, level: u32) -> Pte {
    if raw & V == 0 {
        return Pte::Absent;
    }
    if raw & RESERVED != 0 || (raw & W != 0 && raw & R == 0) {
        return Pte::Reserved;
    }
    let ppn = (raw >> PPN_SHIFT) & ((1u64 << PPN_BITS) - 1);
    if ppn > p.max_pfn() {
        return Pte::Reserved;
    }
    if raw & (R | W | X) == 0 {
        if level == 1 {
            return Pte::Reserved;
        }
        return Pte::Table {
            pfn: Pfn(ppn),
            flags: Flags::RWX
                | Flags::USER
                | if raw & G != 0 {
                    Flags::GLOBAL
                } else {
                    Flags::NONE
                },
        };
    }
    if !leaf_frame_ok(p, ppn, level) {
        return Pte::Reserved;
    }
    Pte::Leaf {
        pfn: Pfn(ppn),
        flags: flags_of(raw, Flags::NONE, &LEAF_BITS),
    }
}

/// Encodes an entry for a table at `level`. A leaf must have R or X (W needs R).
pub fn encode(_p: &Paging, pte: Pte, _level: u32) -> u64 {
    match pte {
        Pte::Absent | Pte::Reserved => 0,
        Pte::Table { pfn, flags } => {
            V | (pfn.0 << PPN_SHIFT) | if flags.contains(Flags::GLOBAL) { G } else { 0 }
        }
        Pte::Leaf { pfn, flags } => {
            debug_assert!(
                flags.intersects(Flags::READ | Flags::EXEC),
                "RISC-V leaf needs R or X"
            );
            V | (pfn.0 << PPN_SHIFT) | bits_of(flags, &LEAF_BITS)
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
    use crate::hw::pte::AdUpdate;

    fn sv(levels: usize) -> Paging {
        let bits = vec![9; levels];
        let va = 12 + 9 * levels as u32;
        let leaves: Vec<u32> = (1..=levels as u32).collect();
        Paging::new(Format::Riscv, "sv", va, 56, 12, &bits, 8, &leaves, true)
    }

    #[test]
    fn every_bit_decodes() {
        let p = sv(3);
        let raw = V | R | W | X | U | G | A | D | (0xabc << PPN_SHIFT);
        assert_eq!(
            decode(&p, raw, 1),
            Pte::Leaf {
                pfn: Pfn(0xabc),
                flags: Flags::RWX | Flags::USER | Flags::GLOBAL | Flags::ACCESSED | Flags::DIRTY
            }
        );
        assert_eq!(
            decode(&p, V | X | (1 << PPN_SHIFT), 1),
            Pte::Leaf {
                pfn: Pfn(1),
                flags: Flags::EXEC
            }
        );
        assert_eq!(decode(&p, R | W | (1 << PPN_SHIFT), 1), Pte::Absent);
    }

    #[test]
    fn each_flag_encodes_to_its_bit() {
        let p = sv(3);
        let cases = [
            (Flags::WRITE, W),
            (Flags::EXEC, X),
            (Flags::USER, U),
            (Flags::GLOBAL, G),
            (Flags::ACCESSED, A),
            (Flags::DIRTY, D),
        ];
        let base = check_flag_bits(&p, 3, Flags::READ, &cases);
        assert_eq!(base, V | R | (3 << PPN_SHIFT));
        let t = encode(
            &p,
            Pte::Table {
                pfn: Pfn(9),
                flags: Flags::RWX | Flags::USER,
            },
            2,
        );
        assert_eq!(t, V | (9 << PPN_SHIFT));
    }

    #[test]
    fn reserved_encodings_fault() {
        let p = sv(3);
        // W without R.
        assert_eq!(decode(&p, V | W | (1 << PPN_SHIFT), 1), Pte::Reserved);
        // Pointer at the last level.
        assert_eq!(decode(&p, V | (1 << PPN_SHIFT), 1), Pte::Reserved);
        // Misaligned megapage (level 2 = 2 MiB needs PPN aligned to 512).
        assert_eq!(decode(&p, V | R | (1 << PPN_SHIFT), 2), Pte::Reserved);
        assert!(matches!(
            decode(&p, V | R | (512 << PPN_SHIFT), 2),
            Pte::Leaf { .. }
        ));
        // Gigapage at level 3.
        assert!(matches!(
            decode(&p, V | R | (1 << 18 << PPN_SHIFT), 3),
            Pte::Leaf { .. }
        ));
        // Bits 54..63 (PBMT, N) are not modelled.
        assert_eq!(decode(&p, V | R | (1 << 63), 1), Pte::Reserved);
        // A global pointer makes its subtree global.
        let Pte::Table { flags, .. } = decode(&p, V | G | (4 << PPN_SHIFT), 2) else {
            panic!("not a table");
        };
        assert!(flags.contains(Flags::GLOBAL));
    }

    #[test]
    fn accessed_and_dirty_only_on_leaves() {
        assert_eq!(AD.set(V, AdUpdate::Table), V);
        assert_eq!(AD.set(V | R, AdUpdate::Leaf { write: false }), V | R | A);
        assert_eq!(
            AD.set(V | R | W, AdUpdate::Leaf { write: true }),
            V | R | W | A | D
        );
    }

    #[test]
    fn round_trips() {
        let flag_sets = [
            Flags::READ,
            Flags::EXEC,
            Flags::RW | Flags::USER,
            Flags::RWX | Flags::USER | Flags::ACCESSED | Flags::DIRTY,
            Flags::RX | Flags::GLOBAL,
        ];
        for levels in [3, 4, 5] {
            check_round_trips(
                &sv(levels),
                &[0, 1, 0x200, 0x40000, 0xfff_ffff_ffff],
                &flag_sets,
            );
        }
    }
}
