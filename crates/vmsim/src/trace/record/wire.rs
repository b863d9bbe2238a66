//! The QEMU recorder's wire protocol: what the plugin inside every traced process
//! (`crates/vmsim-qemu`) sends to `vmsim record` over its own connection.
//!
//! Each traced process image (the first program, every forked child, every image an
//! exec starts) connects once to the recorder's listening socket (a Unix
//! `SOCK_SEQPACKET` socket with an abstract name) and sends messages of whole records.
//! A message is little-endian `u64` words: first [`MAGIC`], then the sender's host pid,
//! then records.
//!
//! A record's first word holds a 2-bit kind in bits 62–63:
//! - 0 load, 1 store: an access; bits 59–61 are log2 of its size in bytes and bits
//!   0–58 its virtual address;
//! - 2 instruction fetch: the part of one executed block on one page; bits 48–60 are
//!   its length in bytes (1 to 4,096) and bits 0–47 its virtual address;
//! - 3 control: bits 0–7 are the type ([`Ctl`]), bits 8–15 how many payload words
//!   follow (each a plain `u64`).
//!
//! A process's first record is [`Ctl::Hello`]. Accesses belong to the thread named by
//! the last [`Ctl::Thread`] (QEMU's vCPU index; a process starts on the vCPU its hello
//! names).

/// The first word of every message: "VMQP" and the protocol version (2: a fetch
/// carries its length).
pub const MAGIC: u64 = 0x0000_0002_504d_5156;
/// Bits of an access's virtual address.
pub const ADDR_BITS: u32 = 59;
/// Mask of an access's virtual address.
pub const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;
/// The most bytes the plugin puts in one message.
pub const MAX_MESSAGE: usize = 32 << 10;

/// Access kinds as the wire numbers them.
pub const LOAD: u64 = 0;
/// A store.
pub const STORE: u64 = 1;
/// An instruction fetch.
pub const FETCH: u64 = 2;
/// A control record.
pub const CONTROL: u64 = 3;

/// Encodes an access (`kind` is [`LOAD`], [`STORE`] or [`FETCH`]).
#[inline(always)]
pub fn access(kind: u64, size_log2: u64, va: u64) -> u64 {
    kind << 62 | (size_log2 & 7) << ADDR_BITS | (va & ADDR_MASK)
}

/// Bits of a fetch's virtual address.
pub const FETCH_ADDR_BITS: u32 = 48;
/// Mask of a fetch's virtual address.
pub const FETCH_ADDR_MASK: u64 = (1 << FETCH_ADDR_BITS) - 1;
/// Mask of a fetch's length, above its address (13 bits).
pub const FETCH_LEN_MASK: u64 = 0x1fff;
/// The most bytes one fetch record covers (a page).
pub const MAX_FETCH: u64 = 4096;

/// Encodes a fetch of `len` bytes (1 to [`MAX_FETCH`]) at `va`.
#[inline(always)]
pub fn fetch(len: u64, va: u64) -> u64 {
    FETCH << 62 | (len & FETCH_LEN_MASK) << FETCH_ADDR_BITS | (va & FETCH_ADDR_MASK)
}

/// The length and address of a fetch record (`w >> 62` is [`FETCH`]), or of a word
/// packed as one below bit 61 (the plugin's block data).
#[inline(always)]
pub fn fetch_of(w: u64) -> (u64, u64) {
    (w >> FETCH_ADDR_BITS & FETCH_LEN_MASK, w & FETCH_ADDR_MASK)
}

/// Encodes a control record's header.
#[inline]
pub fn control(ty: Ctl, payload: usize) -> u64 {
    CONTROL << 62 | (payload as u64 & 0xff) << 8 | ty as u64
}

/// Control record types, with their payload words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Ctl {
    /// A process image starts: `[how (0 first program, 1 forked child, 2 exec), parent
    /// host pid, vCPU]`.
    Hello = 1,
    /// The accesses that follow are by vCPU `[vcpu]`.
    Thread = 2,
    /// A new vCPU, a thread sharing the address space: `[vcpu]`.
    ThreadNew = 3,
    /// The current thread calls `exit`: `[code]`.
    ThreadExit = 4,
    /// A mapping: `[addr, len, prot, flags, dev, inode, offset, file size]` (dev and
    /// inode 0: anonymous). Also the image's segments and stack at start.
    Mmap = 5,
    /// `[addr, len]`.
    Munmap = 6,
    /// `[addr, len, prot]`.
    Mprotect = 7,
    /// The break moved to (or was read as) `[addr]`.
    Brk = 8,
    /// `[old, old_len, new, new_len]`.
    Mremap = 9,
    /// `[addr, len, advice]`.
    Madvise = 10,
    /// `[shmid, addr, len, prot]`.
    Shmat = 11,
    /// `[addr]`.
    Shmdt = 12,
    /// A fork returned in the parent: `[child host pid, 1 if it was a vfork else 0]`.
    Fork = 13,
    /// `exit_group`: `[code]`.
    Exit = 14,
    /// `wait4`/`waitid` reaped a child: `[child host pid, wait status]`.
    Reap = 15,
    /// A memory syscall the model does not act on: `[number]`.
    Syscall = 16,
    /// `prctl(PR_SET_THP_DISABLE)`: `[value]`.
    ThpDisable = 17,
    /// An exec the plugin could not follow (not an x86-64 ELF, or a form it does not
    /// handle); the image runs untraced: `[]`.
    Untraced = 18,
    /// The process is ending (QEMU's exit hook): `[]`.
    End = 19,
    /// `read`, `pread64`, `readv` or `preadv` of a regular file returned: `[dev, inode,
    /// offset, bytes, file size, buffer]`, the buffer the address the bytes went to
    /// when the plugin sends no stores of the kernel's copy for them (0: it does).
    FileRead = 20,
    /// A store put bytes other than zeros in a page, the first since the page was
    /// mapped (or the kernel copied such bytes into it): `[page address]`.
    Nonzero = 21,
    /// The plugin reads the values stores write, so pages without a [`Ctl::Nonzero`]
    /// hold zeros: `[]`.
    Values = 22,
    /// `write`, `pwrite64`, `writev`, `pwritev` or `pwritev2` of a regular file
    /// returned: `[dev, inode, offset, bytes, file size after, file size before]`.
    FileWrite = 23,
    /// What of a file the page cache held when the plugin first saw it mapped
    /// executable (a program or a library), before the program used it: `[dev, inode,
    /// file size, first page, pages]`, one record per run of cached pages (one with 0
    /// pages if none was cached).
    Cached = 24,
    /// `nanosleep` or `clock_nanosleep` returned: `[nanoseconds the call took]`.
    Sleep = 25,
    /// The kernel faulted a range in (`mmap` with `MAP_POPULATE`): `[addr, len]`.
    Populate = 26,
    /// `mlock`, `mlock2`, `munlock`, or `mmap` with `MAP_LOCKED` returned: `[addr,
    /// len, mode]`, the mode 0 for `munlock`, 1 locked, 2 locked on fault.
    Mlock = 27,
    /// `mlockall` or `munlockall` returned: `[flags]` (`MCL_*`; 0 for `munlockall`).
    Mlockall = 28,
    /// A file on tmpfs (`fstatfs` says `TMPFS_MAGIC`), the first time this process
    /// sees it, before the record that uses it: `[dev, inode, file size]`.
    Tmpfs = 29,
    /// This process let go of a tmpfs file whose name is gone (no descriptor or
    /// mapping of it left): `[dev, inode]`.
    TmpfsDrop = 30,
    /// `posix_fadvise` of a regular file: `[dev, inode, file size, offset, length,
    /// advice]`.
    Fadvise = 31,
    /// A path lookup (`open`, `stat`, `access`, `readlink`, `getdents`, ...) returned
    /// and /proc/meminfo's `Buffers` grew across it: `[pages]`.
    FsMetadata = 32,
}

impl Ctl {
    /// The type numbered `n`.
    pub fn from_u8(n: u8) -> Option<Ctl> {
        use Ctl::*;
        Some(match n {
            1 => Hello,
            2 => Thread,
            3 => ThreadNew,
            4 => ThreadExit,
            5 => Mmap,
            6 => Munmap,
            7 => Mprotect,
            8 => Brk,
            9 => Mremap,
            10 => Madvise,
            11 => Shmat,
            12 => Shmdt,
            13 => Fork,
            14 => Exit,
            15 => Reap,
            16 => Syscall,
            17 => ThpDisable,
            18 => Untraced,
            19 => End,
            20 => FileRead,
            21 => Nonzero,
            22 => Values,
            23 => FileWrite,
            24 => Cached,
            25 => Sleep,
            26 => Populate,
            27 => Mlock,
            28 => Mlockall,
            29 => Tmpfs,
            30 => TmpfsDrop,
            31 => Fadvise,
            32 => FsMetadata,
            _ => return None,
        })
    }

    /// Payload words this type carries.
    pub fn payload(self) -> usize {
        use Ctl::*;
        match self {
            Untraced | End | Values => 0,
            Thread | ThreadNew | ThreadExit | Brk | Shmdt | Exit | Syscall | ThpDisable
            | Nonzero | Sleep | Mlockall | FsMetadata => 1,
            Munmap | Reap | Fork | Populate | TmpfsDrop => 2,
            Hello | Mprotect | Madvise | Mlock | Tmpfs => 3,
            Mremap | Shmat => 4,
            Cached => 5,
            FileRead | FileWrite | Fadvise => 6,
            Mmap => 8,
        }
    }
}

/// The page size of the pages [`Ctl::Cached`] counts (the host's, x86-64's).
pub const PAGE: u64 = 4096;

/// How a process image came to be ([`Ctl::Hello`]'s first word).
pub const HELLO_FIRST: u64 = 0;
/// A forked child.
pub const HELLO_FORK: u64 = 1;
/// An image an exec started.
pub const HELLO_EXEC: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_and_access_words_keep_their_fields() {
        for n in 0..=255u8 {
            if let Some(c) = Ctl::from_u8(n) {
                assert_eq!(c as u8, n);
                let h = control(c, c.payload());
                assert_eq!(h >> 62, CONTROL);
                assert_eq!((h & 0xff) as u8, n);
                assert_eq!((h >> 8 & 0xff) as usize, c.payload());
            }
        }
        let w = access(STORE, 3, 0x7fff_ffff_f000);
        assert_eq!(w >> 62, STORE);
        assert_eq!(w >> ADDR_BITS & 7, 3);
        assert_eq!(w & ADDR_MASK, 0x7fff_ffff_f000);
    }
}
