//! Room for the program's heap, as Linux leaves it.
//!
//! QEMU 7.2 loads a position-independent program (one with an interpreter) at the
//! first free guest address, keeps [`QEMU_BRK_ROOM`] after it for the break, and only
//! then places the dynamic loader and the stack, right after that room. So under QEMU
//! a heap grown by `brk` stops at 32 MiB, where glibc's malloc falls back to pieces of
//! `mmap`ed memory, which it never gives back by lowering the break; a recording of a
//! program whose heap is larger is not what the program does on Linux, whose heap
//! grows far from every other mapping (and shrinks as `free` trims its top).
//!
//! So at install, before QEMU loads the program, the plugin holds the address range
//! just past that room with an inaccessible mapping that reserves no memory: QEMU
//! finds its usual next address taken, and the host kernel puts the loader and the
//! stack high up, as Linux does. The plugin lets the range go before the program's
//! first instruction runs, and the break can then grow into it.

use crate::image::{load_segments, u16_at, u32_at, u64_at};

/// What QEMU 7.2 keeps after a program with an interpreter for its break (its
/// `reserve_brk` for 64-bit guests).
pub const QEMU_BRK_ROOM: u64 = 32 << 20;

/// How much address space the plugin holds past that room: what the heap can then
/// grow to (an inaccessible mapping of no memory, gone before the program runs).
pub const HELD: u64 = 1 << 40;

const PAGE: u64 = 4096;
const ET_DYN: u64 = 3;
const PT_INTERP: u64 = 3;

/// Where QEMU 7.2 will put the first mapping after a program's break room, when it
/// loads the program (its ELF header and program headers, `elf`) at `base`: `None`
/// unless the program is position-independent with an interpreter (a program at a
/// fixed address has its break far below QEMU's mappings; one without an
/// interpreter gets no room).
pub fn after_brk_room(elf: &[u8], base: u64) -> Option<u64> {
    if u16_at(elf, 16)? != ET_DYN {
        return None;
    }
    let phoff = u64_at(elf, 32)? as usize;
    let phentsize = u16_at(elf, 54)? as usize;
    let phnum = u16_at(elf, 56)? as usize;
    let has_interp = (0..phnum).any(|i| {
        i.checked_mul(phentsize)
            .and_then(|o| phoff.checked_add(o))
            .and_then(|p| u32_at(elf, p))
            == Some(PT_INTERP)
    });
    if !has_interp {
        return None;
    }
    // QEMU's `load_elf_image`: from the lowest segment's file start to the highest
    // segment's end, plus the room, in whole pages.
    let segs = load_segments(elf)?;
    let lo = segs.iter().map(|s| s.vaddr.wrapping_sub(s.offset)).min()?;
    let hi = segs.iter().map(|s| s.vaddr.saturating_add(s.memsz)).max()?;
    let span = hi.checked_sub(lo)?.checked_add(QEMU_BRK_ROOM)?;
    base.checked_add(span.checked_add(PAGE - 1)? & !(PAGE - 1))
}

/// The [`HELD`] bytes of host address space the plugin holds, from `at`.
#[derive(Debug)]
pub struct Held {
    at: u64,
}

/// Holds [`HELD`] bytes of address space past the break room QEMU will leave after
/// the program `exe`, where QEMU's next mapping would start at `next` (its
/// `mmap_next_start`, guest addresses being host ones until QEMU loads the program):
/// `None` where the program gets no room or the range is not free.
pub fn hold(exe: &str, next: u64) -> Option<Held> {
    let head = crate::image::read_head(exe, 1 << 16)?;
    let at = after_brk_room(&head, next)?;
    // SAFETY: a new inaccessible anonymous mapping at a range nothing holds
    // (MAP_FIXED_NOREPLACE fails rather than replace a mapping); it reserves no memory.
    // The raw call: this plugin's own `mmap` ([`crate::align`]) has nothing to do here.
    let p = unsafe {
        crate::align::sys_mmap(
            at as *mut libc::c_void,
            HELD as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    if p as u64 != at {
        // A kernel without MAP_FIXED_NOREPLACE took it as a hint.
        // SAFETY: unmapping the mapping just made.
        unsafe { libc::munmap(p, HELD as usize) };
        return None;
    }
    Some(Held { at })
}

impl Held {
    /// Lets the range go (before the program's first instruction).
    pub fn release(self) {
        // SAFETY: unmapping the plugin's own mapping, which nothing else uses.
        unsafe { libc::munmap(self.at as *mut libc::c_void, HELD as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header of `kind` with the given program headers `(type, offset, vaddr,
    /// memsz)`.
    fn elf(kind: u16, phdrs: &[(u32, u64, u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * phdrs.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&kind.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(t, off, va, mem)) in phdrs.iter().enumerate() {
            let p = 64 + 56 * i;
            b[p..p + 4].copy_from_slice(&t.to_le_bytes());
            b[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            b[p + 16..p + 24].copy_from_slice(&va.to_le_bytes());
            b[p + 32..p + 40].copy_from_slice(&mem.to_le_bytes());
            b[p + 40..p + 48].copy_from_slice(&mem.to_le_bytes());
        }
        b
    }

    /// The range starts where QEMU 7.2 put the stack of a recorded program: the image
    /// (0x5000 bytes at 0x40_0000_0000) and 32 MiB after it.
    #[test]
    fn the_held_range_starts_past_the_image_and_qemus_room() {
        let pie = elf(
            ET_DYN as u16,
            &[
                (6, 64, 64, 0x2d8),
                (PT_INTERP as u32, 0x318, 0x318, 0x1c),
                (1, 0, 0, 0x1000),
                (1, 0x3000, 0x3000, 0x1f00),
            ],
        );
        assert_eq!(after_brk_room(&pie, 0x40_0000_0000), Some(0x40_0200_5000));
        // No interpreter, or a program at a fixed address: no room to hold.
        let static_pie = elf(ET_DYN as u16, &[(1, 0, 0, 0x1000)]);
        assert_eq!(after_brk_room(&static_pie, 0x40_0000_0000), None);
        let fixed = elf(
            2,
            &[
                (PT_INTERP as u32, 0x318, 0x318, 0x1c),
                (1, 0, 0x40_0000, 0x1000),
            ],
        );
        assert_eq!(after_brk_room(&fixed, 0x40_0000_0000), None);
    }
}
