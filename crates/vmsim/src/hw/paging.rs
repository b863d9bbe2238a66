//! The geometry of a paging format: how a virtual address splits into per-level
//! indices and a page offset, which levels may hold leaves, and how wide a PTE is.
//!
//! Levels are numbered from the leaf up, as x86 manuals do: level 1 holds the
//! entries that map base pages (x86 PT, RISC-V level 0), level `levels` is the
//! root (x86 PML4 or PML5, RISC-V's top table).

use crate::addr::{PhysAddr, VirtAddr};

/// The most levels a page table may have (a textbook machine with 16-byte pages
/// and a 64-bit address space and 8 bits per level needs 8).
pub const MAX_LEVELS: usize = 8;

/// A page-table entry format with its bit layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// x86-64 long mode (4-level, or 5-level with LA57).
    X86_64,
    /// RISC-V Sv39, Sv48 or Sv57.
    Riscv,
    /// vmsim's generic textbook format of any geometry (see `hw::pte::textbook`).
    Textbook,
}

/// How a virtual address maps onto page-table levels, for one paging format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// The PTE format.
    pub format: Format,
    /// The format's name as written in machine files (`x86-64`, `sv39`, `textbook`, ...).
    pub format_name: &'static str,
    /// Width of a virtual address in bits.
    pub va_bits: u32,
    /// Width of a physical address in bits.
    pub pa_bits: u32,
    /// log2 of the base page size.
    pub page_shift: u32,
    /// Number of page-table levels.
    pub levels: u32,
    /// Size of one PTE in bytes.
    pub pte_bytes: u32,
    /// Whether addresses must be sign-extended from bit `va_bits - 1` (x86-64, RISC-V);
    /// otherwise bits at and above `va_bits` must be zero.
    pub sign_extend: bool,
    /// Index bits per level, indexed by level number (entry 0 unused).
    pub(crate) bits: [u32; MAX_LEVELS + 1],
    /// Bit position of each level's index in a virtual address.
    pub(crate) shift: [u32; MAX_LEVELS + 1],
    /// Whether a leaf may sit at each level.
    pub(crate) leaf_ok: [bool; MAX_LEVELS + 1],
}

impl Paging {
    /// Builds a geometry. `bits_root_first` lists the index bits per level from the root down.
    ///
    /// The caller (machine-description validation) has already checked that the numbers
    /// are consistent; this only lays them out.
    #[allow(clippy::too_many_arguments)] // one value per field of the geometry
    pub(crate) fn new(
        format: Format,
        format_name: &'static str,
        va_bits: u32,
        pa_bits: u32,
        page_shift: u32,
        bits_root_first: &[u32],
        pte_bytes: u32,
        leaf_levels: &[u32],
        sign_extend: bool,
    ) -> Paging {
        let levels = bits_root_first.len() as u32;
        let mut bits = [0; MAX_LEVELS + 1];
        let mut shift = [0; MAX_LEVELS + 1];
        let mut leaf_ok = [false; MAX_LEVELS + 1];
        let mut s = page_shift;
        for level in 1..=levels as usize {
            bits[level] = bits_root_first[levels as usize - level];
            shift[level] = s;
            s += bits[level];
        }
        for &l in leaf_levels {
            leaf_ok[l as usize] = true;
        }
        leaf_ok[1] = true;
        Paging {
            format,
            format_name,
            va_bits,
            pa_bits,
            page_shift,
            levels,
            pte_bytes,
            sign_extend,
            bits,
            shift,
            leaf_ok,
        }
    }

    /// The base page size in bytes.
    #[inline(always)]
    pub fn page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// Index bits of `level`.
    #[inline(always)]
    pub fn level_bits(&self, level: u32) -> u32 {
        self.bits[level as usize]
    }

    /// Bit position of `level`'s index in a virtual address; also log2 of the size of a
    /// page mapped by a leaf at that level.
    #[inline(always)]
    pub fn level_shift(&self, level: u32) -> u32 {
        self.shift[level as usize]
    }

    /// Size in bytes of a page mapped by a leaf at `level`.
    #[inline(always)]
    pub fn leaf_size(&self, level: u32) -> u64 {
        1u64 << self.shift[level as usize]
    }

    /// Whether a leaf may sit at `level`.
    #[inline(always)]
    pub fn leaf_allowed(&self, level: u32) -> bool {
        (level as usize) <= MAX_LEVELS && self.leaf_ok[level as usize]
    }

    /// The levels that may hold leaves, from the smallest page up.
    pub fn leaf_levels(&self) -> impl Iterator<Item = u32> + '_ {
        (1..=self.levels).filter(|&l| self.leaf_ok[l as usize])
    }

    /// The level whose leaves map pages of `size` bytes, if any.
    pub fn level_of_page_size(&self, size: u64) -> Option<u32> {
        self.leaf_levels().find(|&l| self.leaf_size(l) == size)
    }

    /// The index into the table at `level` that `va` selects.
    #[inline(always)]
    pub fn index(&self, va: VirtAddr, level: u32) -> u64 {
        let l = level as usize;
        (va.0 >> self.shift[l]) & ((1u64 << self.bits[l]) - 1)
    }

    /// Where the entry that `va` selects lies in the table at `level` that starts at
    /// `table`.
    #[inline(always)]
    pub fn entry_addr(&self, table: PhysAddr, va: VirtAddr, level: u32) -> PhysAddr {
        PhysAddr(table.0 + self.index(va, level) * self.pte_bytes as u64)
    }

    /// Number of entries in a table at `level`.
    #[inline]
    pub fn entries(&self, level: u32) -> u64 {
        1u64 << self.bits[level as usize]
    }

    /// Size in bytes of one table at `level`.
    #[inline]
    pub fn table_bytes(&self, level: u32) -> u64 {
        self.entries(level) * self.pte_bytes as u64
    }

    /// Number of contiguous base frames a table at `level` occupies (a textbook table can
    /// be larger or smaller than a page; real formats use exactly one page).
    #[inline]
    pub fn table_frames(&self, level: u32) -> u64 {
        self.table_bytes(level).div_ceil(self.page_size())
    }

    /// Whether `va` is a valid address for this format: sign-extended (canonical) for
    /// x86-64 and RISC-V, below `2^va_bits` for textbook machines.
    #[inline(always)]
    pub fn is_canonical(&self, va: VirtAddr) -> bool {
        // Shifting left by 64 - va_bits and back (arithmetically when sign-extending)
        // reproduces the address exactly when the bits above va_bits are right.
        let s = 64 - self.va_bits;
        let back = if self.sign_extend {
            (((va.0 << s) as i64) >> s) as u64
        } else {
            (va.0 << s) >> s
        };
        back == va.0
    }

    /// The lowest and highest address of the upper (kernel) half for sign-extended formats.
    pub fn upper_half_start(&self) -> Option<VirtAddr> {
        self.sign_extend
            .then(|| VirtAddr(!((1u64 << (self.va_bits - 1)) - 1)))
    }

    /// Conventional name of the table at `level` for this format (PML4, PT, L2, ...).
    pub fn table_name(&self, level: u32) -> String {
        match self.format {
            Format::X86_64 => match level {
                1 => "PT".into(),
                2 => "PD".into(),
                3 => "PDPT".into(),
                4 => "PML4".into(),
                5 => "PML5".into(),
                _ => format!("L{level}"),
            },
            Format::Riscv => format!("level {}", level - 1),
            Format::Textbook => format!("L{level}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86() -> Paging {
        Paging::new(
            Format::X86_64,
            "x86-64",
            48,
            52,
            12,
            &[9, 9, 9, 9],
            8,
            &[1, 2, 3],
            true,
        )
    }

    #[test]
    fn x86_geometry() {
        let p = x86();
        assert_eq!(p.level_shift(1), 12);
        assert_eq!(p.level_shift(2), 21);
        assert_eq!(p.level_shift(4), 39);
        assert_eq!(p.leaf_size(2), 2 << 20);
        assert_eq!(p.leaf_size(3), 1 << 30);
        assert!(!p.leaf_allowed(4));
        assert_eq!(p.level_of_page_size(2 << 20), Some(2));
        assert_eq!(p.level_of_page_size(512 << 30), None);
        let va = VirtAddr(0x0000_7fff_ffff_f123);
        assert_eq!(p.index(va, 4), 255);
        assert_eq!(p.index(va, 1), 511);
        assert_eq!(p.table_frames(1), 1);
        assert!(p.is_canonical(VirtAddr(0x0000_7fff_ffff_ffff)));
        assert!(p.is_canonical(VirtAddr(0xffff_8000_0000_0000)));
        assert!(!p.is_canonical(VirtAddr(0x0000_8000_0000_0000)));
        assert!(!p.is_canonical(VirtAddr(0xfff0_0000_0000_0000)));
        assert_eq!(p.upper_half_start(), Some(VirtAddr(0xffff_8000_0000_0000)));
        assert_eq!(p.table_name(4), "PML4");
    }

    #[test]
    fn textbook_tables_may_span_frames() {
        // 14-bit VA, 64-byte pages, one level of 8 bits, 2-byte PTEs: 512-byte table.
        let p = Paging::new(Format::Textbook, "textbook", 14, 12, 6, &[8], 2, &[], false);
        assert_eq!(p.table_bytes(1), 512);
        assert_eq!(p.table_frames(1), 8);
        assert!(p.is_canonical(VirtAddr(0x3fff)));
        assert!(!p.is_canonical(VirtAddr(0x4000)));
    }
}
