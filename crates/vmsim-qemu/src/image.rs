//! The address space an exec built, as Linux's ELF loader would describe it: the
//! program's and its interpreter's segments (file, offset, protection), their bss, and
//! the stack.
//!
//! QEMU loads the guest before the plugin sees its first block, into the host's own
//! address space (guest addresses are host addresses), but with host protections of its
//! own (code pages read-only, segments merged). So the plugin takes from the host's
//! `/proc/self/maps` only where each file was loaded and where the stack is, and reads
//! the segments and their protections from the ELF files themselves.

use std::collections::HashSet;

/// One line of `/proc/self/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapLine {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// `rwxp` as printed.
    pub perms: [u8; 4],
    /// File offset.
    pub offset: u64,
    /// The file's path ("" for anonymous memory).
    pub path: String,
    /// The file as `(dev, inode)` (`st_dev`'s encoding of the `major:minor` printed;
    /// inode 0 for anonymous memory).
    pub file: (u64, u64),
}

/// Parses `/proc/self/maps`' text.
pub fn parse_maps(text: &str) -> Vec<MapLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(off), Some(dev), Some(ino)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = f.collect::<Vec<_>>().join(" ");
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            u64::from_str_radix(a, 16),
            u64::from_str_radix(b, 16),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        let p = perms.as_bytes();
        if p.len() < 4 {
            continue;
        }
        out.push(MapLine {
            start,
            end,
            perms: [p[0], p[1], p[2], p[3]],
            offset,
            path,
            file: (parse_dev(dev).unwrap_or(0), ino.parse().unwrap_or(0)),
        });
    }
    out
}

/// A maps line's device, `major:minor` in hexadecimal, as `st_dev` encodes it.
fn parse_dev(dev: &str) -> Option<u64> {
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    Some(libc::makedev(major, minor))
}

/// The files `(dev, inode)` a `/proc/PID/maps` text maps.
pub fn mapped_files(maps: &str) -> HashSet<(u64, u64)> {
    parse_maps(maps)
        .into_iter()
        .filter(|l| l.file.1 != 0)
        .map(|l| l.file)
        .collect()
}

/// The host's mappings now.
pub fn read_maps() -> Vec<MapLine> {
    parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap_or_default())
}

/// A mapping to report: the payload of a `Mmap` control record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Start.
    pub addr: u64,
    /// Bytes.
    pub len: u64,
    /// PROT_* bits.
    pub prot: u64,
    /// MAP_* flags.
    pub flags: u64,
    /// The file's device (0: anonymous).
    pub dev: u64,
    /// The file's inode.
    pub ino: u64,
    /// Offset in the file.
    pub offset: u64,
    /// The file's length in bytes (0: anonymous memory).
    pub size: u64,
}

const PAGE: u64 = 4096;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;

impl Mapping {
    /// Whether this is the stack [`image`] found.
    pub fn is_stack(&self) -> bool {
        self.flags & MAP_GROWSDOWN != 0
    }
}

/// The lines of `now` that `before` did not have: what was mapped in between.
fn new_lines<'a>(before: &[MapLine], now: &'a [MapLine]) -> Vec<&'a MapLine> {
    let old: HashSet<(u64, u64)> = before.iter().map(|m| (m.start, m.end)).collect();
    now.iter()
        .filter(|m| !old.contains(&(m.start, m.end)))
        .collect()
}

/// The guest pages QEMU itself made before the program's first instruction that Linux
/// has no counterpart of: on x86-64, the descriptor tables QEMU keeps in guest memory
/// (`target_cpu_copy_regs` maps a page for the GDT and one for the IDT). QEMU's own
/// helpers read them (the GDT when `rt_sigreturn` reloads the segment registers), and
/// QEMU 7.2 can report those reads as the program's. They are the new anonymous
/// read-write mapping of at most two pages that holds none of the image's mappings
/// (`image`, the program's bss and stack among them); QEMU's allocations for itself
/// are larger. Returns its range as `(start, end)`: the highest such mapping, should
/// the two tables lie apart (the GDT, mapped first, lies highest).
pub fn emulator_pages(
    before: &[MapLine],
    now: &[MapLine],
    image: &[Mapping],
) -> Option<(u64, u64)> {
    new_lines(before, now)
        .into_iter()
        .filter(|m| {
            m.path.is_empty()
                && &m.perms[..3] == b"rw-"
                && m.end - m.start <= 2 * PAGE
                && !image
                    .iter()
                    .any(|i| i.addr < m.end && m.start < i.addr.saturating_add(i.len))
        })
        .map(|m| (m.start, m.end))
        .max()
}

/// The runs of pages of `[addr, addr + len)` (page-aligned) that hold bytes other
/// than zeros, as `(start, bytes)`, reading each page with `read` (which fails for a
/// page it cannot read, taken as zeros).
///
/// What exec wrote on the new stack (the argument and environment strings, then the
/// auxiliary vector and the pointer arrays) Linux's exec writes from the kernel:
/// `copy_strings` faults each page of strings in through `get_user_pages`, and
/// `create_elf_tables` its tables through `copy_to_user`, and both count as the new
/// program's minor faults before its first instruction. QEMU lays out the same
/// strings and tables; the pages that hold them are the pages exec populated.
pub fn nonzero_runs(addr: u64, len: u64, read: impl Fn(u64, &mut [u8]) -> bool) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut page = [0u8; PAGE as usize];
    let mut at = down(addr);
    while at < addr.saturating_add(len) {
        if read(at, &mut page) && page.iter().any(|&b| b != 0) {
            match runs.last_mut() {
                Some((s, n)) if *s + *n == at => *n += PAGE,
                _ => runs.push((at, PAGE)),
            }
        }
        at += PAGE;
    }
    runs
}

fn down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

fn up(x: u64) -> u64 {
    x.saturating_add(PAGE - 1) & !(PAGE - 1)
}

/// A loadable segment of an ELF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// p_offset.
    pub offset: u64,
    /// p_vaddr.
    pub vaddr: u64,
    /// p_filesz.
    pub filesz: u64,
    /// p_memsz.
    pub memsz: u64,
    /// p_flags (PF_X 1, PF_W 2, PF_R 4).
    pub flags: u32,
}

/// The little-endian `u16` at byte `at` of `b`, if `b` holds it.
pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u64)
}

/// The little-endian `u32` at byte `at` of `b`, if `b` holds it.
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as u64)
}

/// The little-endian `u64` at byte `at` of `b`, if `b` holds it.
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The PT_LOAD segments of an x86-64 ELF file's bytes (its header and program headers
/// must be within them).
pub fn load_segments(elf: &[u8]) -> Option<Vec<Segment>> {
    if !crate::elf::is_x86_64_elf(elf) {
        return None;
    }
    let phoff = u64_at(elf, 32)? as usize;
    let phentsize = u16_at(elf, 54)? as usize;
    let phnum = u16_at(elf, 56)? as usize;
    let mut out = Vec::new();
    for i in 0..phnum {
        let p = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(elf, p)? != 1 {
            continue;
        }
        out.push(Segment {
            flags: u32_at(elf, p + 4)? as u32,
            offset: u64_at(elf, p + 8)?,
            vaddr: u64_at(elf, p + 16)?,
            filesz: u64_at(elf, p + 32)?,
            memsz: u64_at(elf, p + 40)?,
        });
    }
    (!out.is_empty()).then_some(out)
}

fn prot_of(flags: u32) -> u64 {
    (if flags & 4 != 0 { 1 } else { 0 })
        | (if flags & 2 != 0 { 2 } else { 0 })
        | (if flags & 1 != 0 { 4 } else { 0 })
}

/// The mappings Linux's loader makes for `segments` loaded `bias` bytes above their
/// link addresses: each segment's file pages, then anonymous pages for the bss beyond.
/// The file is `(dev, ino)`, `size` bytes long.
pub fn segment_mappings(
    segments: &[Segment],
    bias: u64,
    (dev, ino, size): (u64, u64, u64),
) -> Vec<Mapping> {
    let mut out = Vec::new();
    for s in segments {
        let prot = prot_of(s.flags);
        let start = bias.wrapping_add(down(s.vaddr));
        let file_end = bias.wrapping_add(up(s.vaddr.saturating_add(s.filesz)));
        let mem_end = bias.wrapping_add(up(s.vaddr.saturating_add(s.memsz)));
        if s.filesz > 0 && file_end > start {
            out.push(Mapping {
                addr: start,
                len: file_end - start,
                prot,
                flags: MAP_PRIVATE | MAP_FIXED,
                dev,
                ino,
                offset: down(s.offset),
                size,
            });
        }
        let anon = if s.filesz > 0 { file_end } else { start };
        if mem_end > anon {
            out.push(Mapping {
                addr: anon,
                len: mem_end - anon,
                prot,
                flags: MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS,
                dev: 0,
                ino: 0,
                offset: 0,
                size: 0,
            });
        }
    }
    out
}

/// The size QEMU gives the guest's stack: `RLIMIT_STACK`'s soft limit when finite
/// (and above QEMU's minimum), else 8 MiB.
pub fn guest_stack_size() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0;
    if ok && lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur > 16 * PAGE {
        lim.rlim_cur
    } else {
        8 << 20
    }
}

/// The guest's image: the mappings in `now` that were not in `before` (QEMU's own
/// state before it loaded the guest). Files are described from their ELF headers at
/// the address QEMU loaded them; the stack is the read-write anonymous mapping of
/// `stack` bytes just above a no-access guard page, as QEMU makes it (the lowest, if
/// QEMU's own allocations happen to look alike), or the first `stack` bytes of a longer
/// one: where the host kernel chose the stack's place ([`crate::brk`]), it merges the
/// stack with anonymous memory of QEMU's just above.
pub fn image(before: &[MapLine], now: &[MapLine], stack: u64) -> Vec<Mapping> {
    let new = new_lines(before, now);
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &new {
        if !m.path.starts_with('/') || seen.contains(&m.path.as_str()) {
            continue;
        }
        seen.push(&m.path);
        out.extend(file_image(&m.path, &new));
    }
    let found = new.windows(2).find(|w| {
        let (guard, s) = (w[0], w[1]);
        guard.path.is_empty()
            && s.path.is_empty()
            && &guard.perms[..3] == b"---"
            && &s.perms[..3] == b"rw-"
            && guard.end == s.start
            && s.end - s.start >= stack
    });
    if let Some(w) = found {
        out.push(Mapping {
            addr: w[1].start,
            len: stack,
            prot: 3,
            flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
            dev: 0,
            ino: 0,
            offset: 0,
            size: 0,
        });
    }
    out
}

fn file_image(path: &str, new: &[&MapLine]) -> Vec<Mapping> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Some(segs) = read_head(path, 64 << 10).and_then(|b| load_segments(&b)) else {
        return Vec::new();
    };
    let first = segs[0];
    // Where QEMU put the page holding the first segment's first byte.
    let Some(at) = new
        .iter()
        .filter(|m| m.path == path && m.offset == down(first.offset))
        .map(|m| m.start)
        .min()
    else {
        return Vec::new();
    };
    let bias = at.wrapping_sub(down(first.vaddr));
    segment_mappings(&segs, bias, (meta.dev(), meta.ino(), meta.len()))
}

/// Up to `n` bytes from the start of `path`.
pub fn read_head(path: &str, n: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(n.min(1 << 16));
    f.take(n as u64).read_to_end(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maps_line_names_its_file_by_device_and_inode() {
        let maps = "7f00-7f10 r-xp 00000000 fd:01 1234 /usr/lib/x.so\n\
                    7f10-7f20 rw-p 00000000 00:00 0 \n\
                    7f20-7f30 r--p 00001000 103:02 99 /data (deleted)\n\
                    garbage\n";
        let got = mapped_files(maps);
        let want: HashSet<_> = [
            (libc::makedev(0xfd, 1), 1234),
            (libc::makedev(0x103, 2), 99),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn maps_lines_parse_with_and_without_paths() {
        let m = parse_maps(
            "4000000000-4000003000 r--p 00000000 fe:00 5660704   /work/a b\n\
             4002005000-4002006000 ---p 00000000 00:00 0 \n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].path, "/work/a b");
        assert_eq!((m[1].start, m[1].end), (0x4002005000, 0x4002006000));
        assert_eq!(&m[1].perms, b"---p");
    }

    #[test]
    fn segments_map_their_file_pages_then_their_bss() {
        let segs = [
            Segment {
                offset: 0,
                vaddr: 0,
                filesz: 0x1234,
                memsz: 0x1234,
                flags: 5,
            },
            Segment {
                offset: 0x2e10,
                vaddr: 0x3e10,
                filesz: 0x200,
                memsz: 0x3000,
                flags: 6,
            },
        ];
        let m = segment_mappings(&segs, 0x40_0000_0000, (7, 9, 1 << 20));
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].addr, m[0].len, m[0].prot),
            (0x40_0000_0000, 0x2000, 5)
        );
        assert_eq!(
            (m[1].addr, m[1].len, m[1].offset),
            (0x40_0000_3000, 0x2000, 0x2000)
        );
        assert_eq!(m[1].prot, 3);
        assert_eq!((m[2].addr, m[2].len, m[2].dev), (0x40_0000_5000, 0x2000, 0));
        assert_eq!((m[0].size, m[1].size, m[2].size), (1 << 20, 1 << 20, 0));
    }

    #[test]
    fn qemus_descriptor_tables_are_told_from_the_image_and_qemus_own_memory() {
        let line = |start: u64, end: u64, perms: &[u8; 4], path: &str| MapLine {
            start,
            end,
            perms: *perms,
            offset: 0,
            path: path.into(),
            file: (0, 0),
        };
        let before = [line(0x1000, 0x3000, b"rw-p", "")];
        let now = [
            // There before the image: not QEMU's for the guest.
            line(0x1000, 0x3000, b"rw-p", ""),
            // The program's bss (in the image).
            line(0x10000, 0x11000, b"rw-p", ""),
            // QEMU's own: too large; inaccessible; a file.
            line(0x20000, 0x40000, b"rw-p", ""),
            line(0x40000, 0x41000, b"---p", ""),
            line(0x50000, 0x51000, b"rw-p", "/lib/x.so"),
            // The GDT and the IDT.
            line(0x7f000, 0x81000, b"rw-p", ""),
        ];
        let bss = Mapping {
            addr: 0x10000,
            len: 0x1000,
            prot: 3,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            dev: 0,
            ino: 0,
            offset: 0,
            size: 0,
        };
        assert_eq!(
            emulator_pages(&before, &now, &[bss]),
            Some((0x7f000, 0x81000))
        );
    }

    #[test]
    fn runs_of_pages_holding_bytes_are_found_and_unreadable_pages_are_zeros() {
        // Pages 0x1000..0x9000: 2, 3 and 4 hold bytes, 6 cannot be read, 7 holds bytes.
        let read = |va: u64, buf: &mut [u8]| {
            buf.fill(0);
            match va >> 12 {
                6 => false,
                2 | 3 | 7 => {
                    buf[4095] = 1;
                    true
                }
                4 => {
                    buf[0] = 1;
                    true
                }
                _ => true,
            }
        };
        assert_eq!(
            nonzero_runs(0x1000, 0x8000, read),
            [(0x2000, 0x3000), (0x7000, 0x1000)]
        );
        assert_eq!(nonzero_runs(0x1000, 0x1000, read), []);
    }

    #[test]
    fn this_test_binary_has_load_segments_and_the_stack_pattern_is_found() {
        let exe = std::env::current_exe().unwrap();
        let head = read_head(exe.to_str().unwrap(), 64 << 10).unwrap();
        let segs = load_segments(&head).expect("an x86-64 ELF");
        assert!(segs.iter().any(|s| s.flags & 1 != 0), "a code segment");
        let before = parse_maps("1000-2000 rw-p 00000000 00:00 0\n");
        // A malloc arena's reserve and heap look alike but are not the stack's size.
        let now = parse_maps(
            "1000-2000 rw-p 00000000 00:00 0\n\
             3000-4000 ---p 00000000 00:00 0\n\
             4000-5000 rw-p 00000000 00:00 0\n\
             5000-6000 ---p 00000000 00:00 0\n\
             6000-806000 rw-p 00000000 00:00 0\n\
             900000-a00000 rwxp 00000000 00:00 0\n",
        );
        let img = image(&before, &now, 0x800000);
        assert_eq!(img.len(), 1);
        assert_eq!(
            (img[0].addr, img[0].len, img[0].prot),
            (0x6000, 0x800000, 3)
        );
    }
}
