//! The x86-64 long-mode PTE (Intel SDM vol. 3, 4.5): the same 64-bit layout at every
//! level, with PS selecting a 2 MiB or 1 GiB leaf at levels 2 and 3.
//!
//! | bit | name | meaning |
//! |---|---|---|
//! | 0 | P | present |
//! | 1 | R/W | writable |
//! | 2 | U/S | user accessible |
//! | 3 | PWT | write-through |
//! | 4 | PCD | cache disabled |
//! | 5 | A | accessed |
//! | 6 | D | dirty (leaves) |
//! | 7 | PS | page size: a leaf at level 2 or 3 (PAT at level 1) |
//! | 8 | G | global (leaves) |
//! | 12..M | address | frame of the page or next table (M = `pa_bits`) |
//! | 63 | XD/NX | execute disable |
//!
//! Bits from `pa_bits` to 51 are reserved: a present entry with one set faults, as does
//! PS at a level that cannot hold leaves or a huge leaf whose frame is misaligned.

use super::{bits_of, AdBits, FlagBit, Flags, Pte};
use crate::addr::Pfn;
use crate::hw::paging::Paging;

/// Present.
pub const P: u64 = 1 << 0;
/// Writable.
pub const RW: u64 = 1 << 1;
/// User accessible.
pub const US: u64 = 1 << 2;
/// Page-level write-through.
pub const PWT: u64 = 1 << 3;
/// Page-level cache disable.
pub const PCD: u64 = 1 << 4;
/// Accessed.
pub const A: u64 = 1 << 5;
/// Dirty.
pub const D: u64 = 1 << 6;
/// Page size (leaf at level 2 or 3).
pub const PS: u64 = 1 << 7;
/// Global.
pub const G: u64 = 1 << 8;
/// Execute disable.
pub const NX: u64 = 1 << 63;

const PAGE_SHIFT: u32 = 12;

/// The flags every entry carries, table or leaf, and their bits; EXEC apart, as NX is
/// its inverse.
const COMMON_BITS: [FlagBit; 5] = [
    (Flags::WRITE, RW),
    (Flags::USER, US),
    (Flags::ACCESSED, A),
    (Flags::WRITE_THROUGH, PWT),
    (Flags::NO_CACHE, PCD),
];

/// The flags only a leaf carries, and their bits.
const LEAF_BITS: [FlagBit; 2] = [(Flags::DIRTY, D), (Flags::GLOBAL, G)];

/// A on every entry the walker uses, and D on a leaf that is written.
pub const AD: AdBits = AdBits {
    accessed: A,
    dirty: D,
    on_tables: true,
};

fn addr_mask(p: &Paging) -> u64 {
    ((1u64 << p.pa_bits) - 1) & !((1u64 << PAGE_SHIFT) - 1)
}

fn reserved_mask(p: &Paging) -> u64 {
    // Address bits beyond MAXPHYADDR, up to bit 51.
    ((1u64 << 52) - 1) & !((1u64 << p.pa_bits) - 1)
}

// The decoder moves bits instead of testing them one by one: RW, A and D sit where
// WRITE, ACCESSED and DIRTY do, and the others are a shift away.
const _: () = assert!(
    Flags::WRITE.0 as u64 == RW
        && Flags::ACCESSED.0 as u64 == A
        && Flags::DIRTY.0 as u64 == D
        && Flags::USER.0 as u64 == US << 1
        && Flags::WRITE_THROUGH.0 as u64 == PWT << 5
        && Flags::NO_CACHE.0 as u64 == PCD << 3
        && Flags::GLOBAL.0 as u64 == G >> 4
        && Flags::EXEC.0 == 1 << 2
);

/// The flags of [`COMMON_BITS`] and EXEC (as [`super::flags_of`] would give them), in
/// a few shifts: a walk decodes every entry it reads.
#[inline(always)]
fn common_flags(raw: u64) -> Flags {
    let f = Flags::READ.0 as u64
        | (raw & (RW | A))
        | (raw & US) << 1
        | (raw & PWT) << 5
        | (raw & PCD) << 3
        | ((raw & NX == 0) as u64) << 2;
    Flags(f as u16)
}

/// The flags of a leaf: [`common_flags`] and those of [`LEAF_BITS`].
#[inline(always)]
fn leaf_flags(raw: u64) -> Flags {
    Flags(common_flags(raw).0 | (raw & D) as u16 | ((raw & G) >> 4) as u16)
}

/// Decodes an x86-64 entry read at `level`.
#[inline]
pub fn decode(p: &Paging, raw: u64, level: u32) -> Pte {
    if raw & P == 0 {
        return Pte::Absent;
    }
    if raw & reserved_mask(p) != 0 {
        return Pte::Reserved;
    }
    let addr = raw & addr_mask(p);
    let is_leaf = level == 1 || raw & PS != 0;
    if !is_leaf {
        return Pte::Table {
            pfn: Pfn(addr >> PAGE_SHIFT),
            flags: common_flags(raw),
        };
    }
    if !p.leaf_allowed(level) {
        return Pte::Reserved;
    }
    let mut frame_addr = addr;
    if level > 1 {
        // Bit 12 of a huge leaf is PAT; bits 13 up to the page size are reserved.
        let size = p.leaf_size(level);
        if addr & (size - 1) & !(1 << PAGE_SHIFT) != 0 {
            return Pte::Reserved;
        }
        frame_addr &= !(size - 1);
    }
    Pte::Leaf {
        pfn: Pfn(frame_addr >> PAGE_SHIFT),
        flags: leaf_flags(raw),
    }
}

fn encode_common(flags: Flags) -> u64 {
    let nx = if flags.contains(Flags::EXEC) { 0 } else { NX };
    P | bits_of(flags, &COMMON_BITS) | nx
}

/// Encodes an entry for a table at `level`.
pub fn encode(p: &Paging, pte: Pte, level: u32) -> u64 {
    match pte {
        Pte::Absent | Pte::Reserved => 0,
        Pte::Table { pfn, flags } => encode_common(flags) | ((pfn.0 << PAGE_SHIFT) & addr_mask(p)),
        Pte::Leaf { pfn, flags } => {
            let mut raw = encode_common(flags)
                | ((pfn.0 << PAGE_SHIFT) & addr_mask(p))
                | bits_of(flags, &LEAF_BITS);
            if level > 1 {
                raw |= PS;
            }
            raw
        }
    }
}

// Software entries: P is bit 0, so the value sits in the bits above it, which the
// hardware ignores in a not-present entry.
pub use super::present_bit_0::{encode_soft, max_soft, soft_value};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::paging::Format;
    use crate::hw::pte::flags_of;
    use crate::hw::pte::test_util::{check_flag_bits, check_round_trips};
    use crate::hw::pte::AdUpdate;

    fn paging(levels: usize, pa_bits: u32) -> Paging {
        let bits = vec![9; levels];
        let va = 12 + 9 * levels as u32;
        Paging::new(
            Format::X86_64,
            "x86-64",
            va,
            pa_bits,
            12,
            &bits,
            8,
            &[1, 2, 3],
            true,
        )
    }

    /// The shifts of `common_flags` and `leaf_flags` give what the tables say, for
    /// every combination of the bits they read.
    #[test]
    fn decoded_flags_are_the_tables() {
        let bits = [RW, US, PWT, PCD, A, D, PS, G, NX, 1 << 9, 1 << 11];
        for m in 0u32..1 << bits.len() {
            let raw = P | bits
                .iter()
                .enumerate()
                .filter(|(i, _)| m >> i & 1 != 0)
                .fold(0, |r, (_, b)| r | b);
            let common = flags_of(raw, Flags::READ, &COMMON_BITS).with(Flags::EXEC, raw & NX == 0);
            assert_eq!(common_flags(raw), common, "{raw:#x}");
            assert_eq!(
                leaf_flags(raw),
                flags_of(raw, common, &LEAF_BITS),
                "{raw:#x}"
            );
        }
    }

    #[test]
    fn every_bit_decodes() {
        let p = paging(4, 52);
        let raw = P | RW | US | PWT | PCD | A | D | G | (0x1234 << 12);
        let Pte::Leaf { pfn, flags } = decode(&p, raw, 1) else {
            panic!("not a leaf");
        };
        assert_eq!(pfn, Pfn(0x1234));
        for f in [
            Flags::READ,
            Flags::WRITE,
            Flags::USER,
            Flags::WRITE_THROUGH,
            Flags::NO_CACHE,
            Flags::ACCESSED,
            Flags::DIRTY,
            Flags::GLOBAL,
            Flags::EXEC,
        ] {
            assert!(flags.contains(f), "{f:?} missing from {flags}");
        }
        let Pte::Leaf { flags, .. } = decode(&p, P | NX | (1 << 12), 1) else {
            panic!("not a leaf");
        };
        assert_eq!(flags, Flags::READ);
        assert_eq!(decode(&p, RW | US | (5 << 12), 1), Pte::Absent);
    }

    #[test]
    fn each_flag_encodes_to_its_bit() {
        let p = paging(4, 52);
        let cases = [
            (Flags::WRITE, RW),
            (Flags::USER, US),
            (Flags::WRITE_THROUGH, PWT),
            (Flags::NO_CACHE, PCD),
            (Flags::ACCESSED, A),
            (Flags::DIRTY, D),
            (Flags::GLOBAL, G),
        ];
        let base = check_flag_bits(&p, 7, Flags::READ, &cases);
        assert_eq!(base, P | NX | (7 << 12));
        let exec = encode(
            &p,
            Pte::Leaf {
                pfn: Pfn(7),
                flags: Flags::RX,
            },
            1,
        );
        assert_eq!(exec, P | (7 << 12));
        assert_eq!(
            encode(
                &p,
                Pte::Leaf {
                    pfn: Pfn(512),
                    flags: Flags::RX
                },
                2
            ),
            P | PS | (512 << 12)
        );
    }

    #[test]
    fn ps_makes_huge_leaves_only_where_allowed() {
        let p = paging(5, 52);
        let two_m = P | PS | (0x200 << 12);
        assert!(matches!(
            decode(&p, two_m, 2),
            Pte::Leaf {
                pfn: Pfn(0x200),
                ..
            }
        ));
        let one_g = P | PS | (0x40000 << 12);
        assert!(matches!(
            decode(&p, one_g, 3),
            Pte::Leaf {
                pfn: Pfn(0x40000),
                ..
            }
        ));
        assert_eq!(decode(&p, P | PS | (0x40000 << 12), 4), Pte::Reserved);
        assert_eq!(decode(&p, P | PS | (0x40000 << 12), 5), Pte::Reserved);
        // Misaligned 2 MiB frame: bit 13 set.
        assert_eq!(decode(&p, P | PS | (0x202 << 12), 2), Pte::Reserved);
        // Bit 12 of a huge leaf is PAT, not address.
        assert!(matches!(
            decode(&p, P | PS | (0x201 << 12), 2),
            Pte::Leaf {
                pfn: Pfn(0x200),
                ..
            }
        ));
        // PS at level 1 is PAT: still a 4 KiB leaf.
        assert!(matches!(
            decode(&p, P | PS | (3 << 12), 1),
            Pte::Leaf { pfn: Pfn(3), .. }
        ));
        // Without PS, level 2 points to a table.
        assert!(matches!(
            decode(&p, P | RW | (9 << 12), 2),
            Pte::Table { pfn: Pfn(9), .. }
        ));
    }

    #[test]
    fn address_bits_beyond_maxphyaddr_are_reserved() {
        let p = paging(4, 46);
        assert_eq!(decode(&p, P | (1 << 47), 1), Pte::Reserved);
        assert!(matches!(decode(&p, P | (1 << 45), 1), Pte::Leaf { .. }));
        // Bits 52..62 are ignored by the hardware.
        assert!(matches!(
            decode(&p, P | (1 << 55), 1),
            Pte::Leaf { pfn: Pfn(0), .. }
        ));
    }

    #[test]
    fn accessed_and_dirty() {
        assert_eq!(AD.set(P, AdUpdate::Table), P | A);
        assert_eq!(AD.set(P, AdUpdate::Leaf { write: false }), P | A);
        assert_eq!(AD.set(P, AdUpdate::Leaf { write: true }), P | A | D);
    }

    #[test]
    fn round_trips() {
        let flag_sets = [
            Flags::READ,
            Flags::RW | Flags::USER,
            Flags::RWX | Flags::USER | Flags::ACCESSED | Flags::DIRTY,
            Flags::RX | Flags::GLOBAL,
            Flags::RW | Flags::NO_CACHE | Flags::WRITE_THROUGH,
        ];
        for levels in [4, 5] {
            let p = paging(levels, 52);
            check_round_trips(&p, &[0, 1, 0x200, 0x40000, 0xf_ffff_ffff], &flag_sets);
        }
    }
}
