//! Events in, events out: the event model every trace format maps to, readers and
//! writers for the formats, format detection, and the synthetic workload generators.
//!
//! A trace is a sequence of [`Event`]s: memory accesses of a process, and the OS
//! events (spawn, mmap, fork, ...) that shape its address space. Readers fill a
//! caller's buffer in batches ([`EventReader::next_batch`]), so a replay loop touches
//! no allocator per event; formats are detected from magic bytes and names
//! ([`Format::detect`]).

pub mod batch;
pub mod binary;
pub mod champsim;
pub mod lackey;
pub mod lines;
pub mod mapped;
pub mod output;
pub mod pages;
pub mod plain;
pub mod record;
pub mod stat;
pub mod synth;
pub mod text;

use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::Prot;
pub use batch::{Batch, PlainRun};
pub use lines::{LineReader, MAX_LINE};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use thiserror::Error;

/// A process as a trace names it (the recording's pid, or any number a scenario picks).
pub type TracePid = u32;

/// A thread within a process, as a trace names it: 0 is the main thread, and any other
/// number a thread of the process that a [`Event::Thread`] started.
pub type TraceTid = u32;

/// One memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Who.
    pub pid: TracePid,
    /// Load, store or instruction fetch.
    pub kind: AccessKind,
    /// The virtual address.
    pub va: VirtAddr,
    /// Bytes (1 when a format does not say).
    pub size: u32,
}

/// The bytes of instructions `a` fetched: its size if it is a fetch, else 0.
#[inline(always)]
pub fn fetched_by(a: &Access) -> u64 {
    u64::from(a.size) * u64::from(a.kind == AccessKind::Execute)
}

impl Access {
    /// The address of its last byte (its first for a size of 0); an access that would
    /// run past the top of the 64-bit space ends there.
    #[inline(always)]
    pub fn last_byte(&self) -> u64 {
        self.va.0.saturating_add(u64::from(self.size.max(1)) - 1)
    }
}

/// What an `mmap` maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Anonymous memory.
    Anon,
    /// A file (numbered by the trace; its name is not recorded) from a byte offset.
    File {
        /// The trace's number for the file.
        file: u32,
        /// Byte offset of the mapping in the file.
        offset: u64,
    },
    /// Anonymous huge pages from a hugetlb pool (`MAP_HUGETLB`).
    HugeTlb {
        /// The pages' size in bytes (a power of two).
        page_bytes: u64,
        /// `MAP_NORESERVE`: no pages reserved at `mmap`.
        noreserve: bool,
    },
}

/// One event of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A memory access.
    Access(Access),
    /// A new process (its address space holds a small program; see docs/traces.md).
    Spawn {
        /// The new process.
        pid: TracePid,
    },
    /// `mmap` at a fixed address (the address the real call returned).
    Mmap {
        /// Who.
        pid: TracePid,
        /// Start (page-aligned).
        addr: VirtAddr,
        /// Bytes.
        len: u64,
        /// Protection.
        prot: Prot,
        /// `MAP_SHARED`.
        shared: bool,
        /// Anonymous or a file.
        kind: MapKind,
    },
    /// `munmap`.
    Munmap {
        /// Who.
        pid: TracePid,
        /// Start.
        addr: VirtAddr,
        /// Bytes.
        len: u64,
    },
    /// `mprotect`.
    Mprotect {
        /// Who.
        pid: TracePid,
        /// Start.
        addr: VirtAddr,
        /// Bytes.
        len: u64,
        /// New protection.
        prot: Prot,
    },
    /// `brk`: the program break moves to `addr`.
    Brk {
        /// Who.
        pid: TracePid,
        /// The new break.
        addr: VirtAddr,
    },
    /// `fork`.
    Fork {
        /// The parent.
        parent: TracePid,
        /// The child's trace pid.
        child: TracePid,
    },
    /// `vfork` (or `clone` with `CLONE_VFORK`, as `posix_spawn` makes): the child runs
    /// in its parent's address space, the parent waiting, until the child execs (an
    /// [`Event::ExecImage`] gives it its own) or exits.
    Vfork {
        /// The parent.
        parent: TracePid,
        /// The child's trace pid.
        child: TracePid,
    },
    /// `exec` of a new small program (the address space is replaced).
    Exec {
        /// Who.
        pid: TracePid,
    },
    /// The process exits.
    Exit {
        /// Who.
        pid: TracePid,
        /// Exit code.
        code: i32,
    },
    /// The CPU switches to this process.
    Switch {
        /// Who runs next.
        pid: TracePid,
    },
    /// Attaches the shared-memory object `key` at a fixed address.
    ShmAttach {
        /// Who.
        pid: TracePid,
        /// The object (one per key, shared by every process that attaches it).
        key: u32,
        /// Start.
        addr: VirtAddr,
        /// Bytes.
        len: u64,
        /// Protection.
        prot: Prot,
    },
    /// Thread `tid` of `pid` runs the accesses that follow (accesses name only the
    /// process: its current thread is the last `Thread` event's, 0 until one comes). A
    /// tid the process has not had is a new thread sharing its address space (a
    /// `clone` with `CLONE_VM`).
    Thread {
        /// The process.
        pid: TracePid,
        /// The thread.
        tid: TraceTid,
    },
    /// A thread that is not the process's last ends; the process lives on.
    ThreadExit {
        /// The process.
        pid: TracePid,
        /// The thread.
        tid: TraceTid,
        /// Its exit code.
        code: i32,
    },
    /// `execve` as a recorder sees it: the process's address space is emptied (made,
    /// empty, if the pid is new) and the new image's mappings follow as [`Event::Mmap`]
    /// events. Unlike [`Event::Exec`], no small program is installed, and nothing is
    /// inferred afterwards.
    ExecImage {
        /// Who.
        pid: TracePid,
    },
    /// `mremap`, as it returned: the `old_len` bytes at `old` are now the `new_len`
    /// bytes at `new` (`new == old` when resized in place).
    Mremap {
        /// Who.
        pid: TracePid,
        /// The old start.
        old: VirtAddr,
        /// The old length in bytes.
        old_len: u64,
        /// The new start.
        new: VirtAddr,
        /// The new length in bytes.
        new_len: u64,
    },
    /// `madvise`.
    Madvise {
        /// Who.
        pid: TracePid,
        /// Start.
        addr: VirtAddr,
        /// Bytes.
        len: u64,
        /// Linux's `MADV_*` number (x86-64 values; see [`advice_name`]).
        advice: u32,
    },
    /// `shmdt`: detaches the shared-memory attachment at `addr`.
    ShmDetach {
        /// Who.
        pid: TracePid,
        /// Where the attachment starts.
        addr: VirtAddr,
    },
    /// A memory-related system call the model does not act on (`msync`, `mincore`,
    /// `mbind`, ...), kept so that `vmsim trace stat` can count it.
    Syscall {
        /// Who.
        pid: TracePid,
        /// Its x86-64 number (see [`syscall_name`]).
        nr: u32,
    },
    /// `read` (or `pread`, `readv`, ...) of `len` bytes of a file from byte `offset`:
    /// the kernel copies them from the page cache, reading what is missing.
    FileRead {
        /// Who.
        pid: TracePid,
        /// The trace's number for the file (as an `mmap` of it gives).
        file: u32,
        /// Byte offset.
        offset: u64,
        /// Bytes read.
        len: u64,
        /// Where in the program's memory they go, when the kernel's stores there are
        /// part of the read (made page by page as each page is copied, as Linux's
        /// `copy_to_user` faults in the middle of the read); `None` when the trace
        /// holds them as accesses of their own after the read (`readv`, and traces
        /// recorded before 2026-12-06).
        buf: Option<VirtAddr>,
    },
    /// `write` (or `pwrite`, `writev`, ...) of `len` bytes of a file at byte `offset`:
    /// the kernel copies them into the page cache, where the pages are dirty.
    FileWrite {
        /// Who.
        pid: TracePid,
        /// The trace's number for the file (as an `mmap` of it gives).
        file: u32,
        /// Byte offset.
        offset: u64,
        /// Bytes written.
        len: u64,
    },
    /// `posix_fadvise` (`fadvise64`) of `len` bytes of a file from byte `offset` (0:
    /// to its end): `advice` is `POSIX_FADV_*`'s number (normal 0, random 1,
    /// sequential 2, willneed 3, dontneed 4, noreuse 5; see [`fadvice_name`]).
    Fadvise {
        /// Who.
        pid: TracePid,
        /// The trace's number for the file.
        file: u32,
        /// Byte offset.
        offset: u64,
        /// Bytes (0: to the end of the file).
        len: u64,
        /// The advice.
        advice: u32,
    },
    /// The readahead of the block device holding a file (its queue's
    /// `read_ahead_kb`), as the recorder found it on the machine: the kernel reads
    /// that file ahead by up to this much, unless `--readahead` says otherwise.
    FileReadahead {
        /// The process that used the file first.
        pid: TracePid,
        /// The trace's number for the file.
        file: u32,
        /// Most bytes read ahead at once.
        bytes: u64,
    },
    /// File `file` is on tmpfs (`/dev/shm`, `shm_open`, `memfd_create`), as the
    /// recorder found it (`fstatfs`) when it first saw the file: its pages are shared
    /// memory, swap-backed, never read from storage (see the kernel's
    /// `make_tmpfs_file`). Comes before the file's first use.
    FileShmem {
        /// The process that saw it first.
        pid: TracePid,
        /// The trace's number for the file.
        file: u32,
    },
    /// Process `pid` let go of tmpfs file `file`: it has no descriptor or mapping of
    /// it left, and the file has no name (unlinked, or a memfd). The file's pages go
    /// once no process holds or maps it (see the kernel's `drop_tmpfs_file`).
    FileDrop {
        /// The process.
        pid: TracePid,
        /// The trace's number for the file.
        file: u32,
    },
    /// The length of a file, as the recorder saw it when the program first mapped or
    /// read it (and again whenever it saw it longer): readahead stops at its end.
    FileSize {
        /// The process that saw it.
        pid: TracePid,
        /// The trace's number for the file.
        file: u32,
        /// Its length in bytes.
        bytes: u64,
    },
    /// `len` bytes of a file from byte `offset` were in the page cache before the
    /// program first used the file, as the recorder found them when it first saw the
    /// file opened or mapped; `len` 0 says none was. The events for one file come
    /// together, before its pages are used: the file starts with those pages cached
    /// and the rest not (under `--page-cache cold`).
    FileCached {
        /// The process that opened or mapped it.
        pid: TracePid,
        /// The trace's number for the file.
        file: u32,
        /// Byte offset (a multiple of the page size).
        offset: u64,
        /// Bytes cached from there (a multiple of the page size).
        len: u64,
    },
    /// The page at `addr` now holds bytes other than zeros: the recorder saw a store of
    /// such bytes to it, the first since it was mapped.
    Nonzero {
        /// Whose page.
        pid: TracePid,
        /// An address in the page.
        addr: VirtAddr,
    },
    /// From here on the trace marks every page that holds bytes other than zeros with
    /// a [`Event::Nonzero`]; a page without one holds zeros (as Linux's swap counts
    /// need, see docs/kernel.md).
    Values {
        /// The process whose recording said so first.
        pid: TracePid,
    },
    /// The kernel faults in the pages of a range as Linux's `get_user_pages` does for
    /// `mmap(MAP_POPULATE)` (and, in traces recorded before [`Event::Mlock`] existed,
    /// for `MAP_LOCKED` and `mlock`): written for a private writable mapping, read for
    /// any other (see the kernel's `populate`).
    Populate {
        /// Who.
        pid: TracePid,
        /// Start.
        addr: VirtAddr,
        /// Bytes.
        len: u64,
    },
    /// `mlock`, `mlock2` and `munlock` (and `mmap(MAP_LOCKED)`, as an `mlock` of the
    /// new mapping): the range's pages are locked in RAM, or unlocked (see the
    /// kernel's `mlock`).
    Mlock {
        /// Who.
        pid: TracePid,
        /// Start.
        addr: VirtAddr,
        /// Bytes.
        len: u64,
        /// Locked, locked on fault (`MLOCK_ONFAULT`), or unlocked (`munlock`).
        mode: Mlock,
    },
    /// `mlockall` with its `MCL_*` flags, or `munlockall` (no flags).
    Mlockall {
        /// Who.
        pid: TracePid,
        /// `MCL_CURRENT` (1), `MCL_FUTURE` (2), `MCL_ONFAULT` (4); 0 for `munlockall`.
        flags: u32,
    },
    /// `prctl(PR_SET_THP_DISABLE)`.
    ThpDisable {
        /// Who.
        pid: TracePid,
        /// Whether transparent huge pages are disabled (true) or allowed again.
        disable: bool,
    },
    /// The process's current thread slept `ns` nanoseconds in `nanosleep` or
    /// `clock_nanosleep`, as long as the recorder saw the call take: the machine's time
    /// moves on while the program does nothing (storage finishes its reads and writes,
    /// periodic work comes due).
    Sleep {
        /// Who.
        pid: TracePid,
        /// Nanoseconds asleep.
        ns: u64,
    },
    /// A path lookup of the process (an `open`, `stat`, `access`, `readlink`,
    /// `getdents` and the like) read `pages` pages of the file system's own blocks
    /// (inode tables, directories) into the block device's page cache, as the recorder
    /// saw /proc/meminfo's `Buffers` grow across the call: the replay reads as many
    /// pages into the process's group (see `os/fs_metadata.rs`).
    FsMetadata {
        /// Who looked the path up.
        pid: TracePid,
        /// Pages read.
        pages: u64,
    },
}

impl Event {
    /// The process the event is about (the parent, for a fork).
    pub fn pid(&self) -> TracePid {
        match *self {
            Event::Access(a) => a.pid,
            Event::Spawn { pid }
            | Event::Mmap { pid, .. }
            | Event::Munmap { pid, .. }
            | Event::Mprotect { pid, .. }
            | Event::Brk { pid, .. }
            | Event::Exec { pid }
            | Event::Exit { pid, .. }
            | Event::Switch { pid }
            | Event::ShmAttach { pid, .. }
            | Event::Thread { pid, .. }
            | Event::ThreadExit { pid, .. }
            | Event::ExecImage { pid }
            | Event::Mremap { pid, .. }
            | Event::Madvise { pid, .. }
            | Event::ShmDetach { pid, .. }
            | Event::Syscall { pid, .. }
            | Event::FileRead { pid, .. }
            | Event::FileWrite { pid, .. }
            | Event::FileReadahead { pid, .. }
            | Event::Fadvise { pid, .. }
            | Event::FileSize { pid, .. }
            | Event::FileShmem { pid, .. }
            | Event::FileDrop { pid, .. }
            | Event::FileCached { pid, .. }
            | Event::Nonzero { pid, .. }
            | Event::Values { pid }
            | Event::ThpDisable { pid, .. }
            | Event::Sleep { pid, .. }
            | Event::FsMetadata { pid, .. }
            | Event::Populate { pid, .. }
            | Event::Mlock { pid, .. }
            | Event::Mlockall { pid, .. } => pid,
            Event::Fork { parent, .. } | Event::Vfork { parent, .. } => parent,
        }
    }
}

pub use crate::os::{Mlock, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT};
pub use crate::os::{
    MADV_COLD, MADV_DOFORK, MADV_DONTFORK, MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE,
    MADV_HUGEPAGE, MADV_KEEPONFORK, MADV_NOHUGEPAGE, MADV_NORMAL, MADV_PAGEOUT, MADV_POPULATE_READ,
    MADV_POPULATE_WRITE, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_WIPEONFORK,
};

/// Linux's `madvise` advice values (the same on x86-64 and every other architecture
/// but a few old ones) and the names the text format gives them.
const ADVICE: [(u32, &str); 25] = [
    (MADV_NORMAL, "normal"),
    (MADV_RANDOM, "random"),
    (MADV_SEQUENTIAL, "sequential"),
    (MADV_WILLNEED, "willneed"),
    (MADV_DONTNEED, "dontneed"),
    (MADV_FREE, "free"),
    (9, "remove"),
    (MADV_DONTFORK, "dontfork"),
    (MADV_DOFORK, "dofork"),
    (12, "mergeable"),
    (13, "unmergeable"),
    (MADV_HUGEPAGE, "hugepage"),
    (MADV_NOHUGEPAGE, "nohugepage"),
    (16, "dontdump"),
    (17, "dodump"),
    (MADV_WIPEONFORK, "wipeonfork"),
    (MADV_KEEPONFORK, "keeponfork"),
    (MADV_COLD, "cold"),
    (MADV_PAGEOUT, "pageout"),
    (MADV_POPULATE_READ, "populate_read"),
    (MADV_POPULATE_WRITE, "populate_write"),
    (MADV_DONTNEED_LOCKED, "dontneed_locked"),
    (25, "collapse"),
    (100, "hwpoison"),
    (101, "soft_offline"),
];

/// The name of `madvise` advice `advice` (`MADV_DONTNEED`, 4: `dontneed`), if Linux
/// has one of that number.
pub fn advice_name(advice: u32) -> Option<&'static str> {
    name_in(&ADVICE, advice)
}

/// The name table `table` gives number `n`.
fn name_in(table: &[(u32, &'static str)], n: u32) -> Option<&'static str> {
    table.iter().find(|a| a.0 == n).map(|a| a.1)
}

/// The number table `table` gives name `name`.
fn number_in(table: &[(u32, &str)], name: &str) -> Option<u32> {
    table.iter().find(|a| a.1 == name).map(|a| a.0)
}

/// The number of the `madvise` advice called `name` ([`advice_name`]'s inverse).
pub fn advice_number(name: &str) -> Option<u32> {
    number_in(&ADVICE, name)
}

/// `posix_fadvise`'s advice, by number (Linux's `POSIX_FADV_*` on x86-64).
const FADVICE: [(u32, &str); 6] = [
    (0, "normal"),
    (1, "random"),
    (2, "sequential"),
    (3, "willneed"),
    (4, "dontneed"),
    (5, "noreuse"),
];

/// The name of `posix_fadvise` advice `advice` (`POSIX_FADV_SEQUENTIAL`, 2:
/// `sequential`), if Linux has one of that number.
pub fn fadvice_name(advice: u32) -> Option<&'static str> {
    name_in(&FADVICE, advice)
}

/// The number of the `posix_fadvise` advice called `name` ([`fadvice_name`]'s
/// inverse).
pub fn fadvice_number(name: &str) -> Option<u32> {
    number_in(&FADVICE, name)
}

/// The x86-64 numbers and names of the memory-related system calls a recording names.
const SYSCALLS: [(u32, &str); 37] = [
    (9, "mmap"),
    (10, "mprotect"),
    (11, "munmap"),
    (12, "brk"),
    (25, "mremap"),
    (26, "msync"),
    (27, "mincore"),
    (28, "madvise"),
    (29, "shmget"),
    (30, "shmat"),
    (31, "shmctl"),
    (67, "shmdt"),
    (149, "mlock"),
    (150, "munlock"),
    (151, "mlockall"),
    (152, "munlockall"),
    (157, "prctl"),
    (216, "remap_file_pages"),
    (237, "mbind"),
    (238, "set_mempolicy"),
    (239, "get_mempolicy"),
    (256, "migrate_pages"),
    (279, "move_pages"),
    (310, "process_vm_readv"),
    (311, "process_vm_writev"),
    (319, "memfd_create"),
    (323, "userfaultfd"),
    (324, "membarrier"),
    (325, "mlock2"),
    (329, "pkey_mprotect"),
    (330, "pkey_alloc"),
    (331, "pkey_free"),
    (440, "process_madvise"),
    (448, "process_mrelease"),
    (450, "set_mempolicy_home_node"),
    (453, "map_shadow_stack"),
    (462, "mseal"),
];

/// The name of x86-64 system call `nr`, if it is one of the memory-related calls a
/// recording names (`msync`, `mlock`, `mbind`, ...; `mmap` and the other calls traces
/// have events of too).
pub fn syscall_name(nr: u32) -> Option<&'static str> {
    name_in(&SYSCALLS, nr)
}

/// The x86-64 number of the memory-related system call called `name`
/// ([`syscall_name`]'s inverse).
pub fn syscall_number(name: &str) -> Option<u32> {
    number_in(&SYSCALLS, name)
}

/// Where in the input a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A text line, from 1.
    Line(u64),
    /// A byte offset (of the decompressed stream).
    Byte(u64),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Byte(n) => write!(f, "byte {n}"),
        }
    }
}

/// Why a trace could not be read or written.
#[derive(Debug, Error)]
pub enum TraceError {
    /// The file could not be opened, read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The input could not be read on from a place: a truncated or corrupt compressed
    /// stream, or a device error.
    #[error("{path}: {at}: cannot read on: {error}")]
    ReadAt {
        /// The file.
        path: String,
        /// Where the reading stopped (a line, or a byte of the decompressed stream).
        at: Location,
        /// Why.
        error: std::io::Error,
    },
    /// The input is malformed at a place.
    #[error("{path}: {at}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// Where.
        at: Location,
        /// Why.
        reason: String,
    },
    /// The format cannot be told from the name or contents.
    #[error("{path}: cannot tell the trace format: {reason}; name it with --format")]
    UnknownFormat {
        /// The file.
        path: String,
        /// What was seen.
        reason: String,
    },
    /// The format cannot be written.
    #[error("{format} traces cannot be written; write vmsim-text or vmsim-binary")]
    NotWritable {
        /// The format's name.
        format: &'static str,
    },
    /// An event the format cannot hold.
    #[error("{path}: the {format} format cannot hold the event {event:?}")]
    Unrepresentable {
        /// The file.
        path: String,
        /// The format's name.
        format: &'static str,
        /// The event.
        event: Event,
    },
}

impl TraceError {
    pub(crate) fn io(path: &str, error: std::io::Error) -> TraceError {
        TraceError::Io {
            path: path.to_string(),
            error,
        }
    }

    pub(crate) fn read_at(path: &str, at: Location, error: std::io::Error) -> TraceError {
        TraceError::ReadAt {
            path: path.to_string(),
            at,
            error,
        }
    }

    pub(crate) fn at(path: &str, at: Location, reason: impl Into<String>) -> TraceError {
        TraceError::Malformed {
            path: path.to_string(),
            at,
            reason: reason.into(),
        }
    }
}

/// A trace format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// vmsim's text format: one event per line (docs/traces.md).
    Text,
    /// vmsim's binary format: a versioned header, chunks of varint records, optionally
    /// zstd-compressed.
    Binary,
    /// valgrind lackey's `--trace-mem=yes` output, with `--trace-syscalls=yes` lines.
    Lackey,
    /// ChampSim's 64-byte `input_instr` records.
    ChampSim,
    /// `R 0x1234` / `W 0x1234` lines, as course simulators read.
    Plain,
    /// libCacheSim's oracleGeneral records: object ids read as page numbers.
    OracleGeneral,
}

impl Format {
    /// Every format, in the order the docs list them.
    pub const ALL: [Format; 6] = [
        Format::Text,
        Format::Binary,
        Format::Lackey,
        Format::ChampSim,
        Format::Plain,
        Format::OracleGeneral,
    ];

    /// The name used by `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "vmsim-text",
            Format::Binary => "vmsim-binary",
            Format::Lackey => "lackey",
            Format::ChampSim => "champsim",
            Format::Plain => "plain",
            Format::OracleGeneral => "oracle-general",
        }
    }

    /// The format named `name` (as [`Format::name`] gives it; `text` and `binary` too).
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "text" => Some(Format::Text),
            "binary" | "bin" => Some(Format::Binary),
            _ => Format::ALL.into_iter().find(|f| f.name() == name),
        }
    }

    /// Tells the format of a trace from its name and its first (decompressed) bytes.
    ///
    /// Binary formats are told by magic (vmsim binary) or by name (ChampSim: a name
    /// containing `champsim`; oracleGeneral: containing `oracleGeneral`). Text formats
    /// are told by their first meaningful line, read as every text trace is read (lines
    /// of at most [`MAX_LINE`] bytes): valgrind's `==pid==` banner, a lackey record or
    /// `SYSCALL[` line; a vmsim keyword; or an operation (`R`, `W`, `X`, `L`, `S`, `I`)
    /// with at most two more fields (plain; vmsim text puts a pid before the address,
    /// and plain addresses with more fields are `0x` hex). The shape decides, not the
    /// values: `R 0xzz` is plain, and its reader says what is wrong with the address.
    pub fn detect(name: &str, head: &[u8]) -> Result<Format, String> {
        if head.starts_with(&binary::MAGIC) {
            return Ok(Format::Binary);
        }
        let lower = name.to_ascii_lowercase();
        if lower.contains("champsim") {
            return Ok(Format::ChampSim);
        }
        if lower.contains("oraclegeneral") {
            return Ok(Format::OracleGeneral);
        }
        if head.is_empty() {
            return Err("the file is empty".into());
        }
        // A sample of at most one line's length: a line in it is never too long.
        let head = &head[..head.len().min(MAX_LINE)];
        let binary = |what: String| {
            format!(
                "it holds binary data ({what}) but does not start with the vmsim binary \
                 magic `VMSIMTRC`, and ChampSim and oracleGeneral traces are told by \
                 `champsim` or `oracleGeneral` in their names"
            )
        };
        let text_len = match std::str::from_utf8(head) {
            Ok(_) => head.len(),
            // A cut in the middle of a UTF-8 sequence at the end of the sample.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                let at = e.valid_up_to();
                return Err(binary(format!(
                    "byte {:#04x} at offset {at} is not UTF-8 text",
                    head[at]
                )));
            }
        };
        let head = &head[..text_len];
        if let Some(at) = head
            .iter()
            .position(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
        {
            return Err(binary(format!(
                "control byte {:#04x} at offset {at}",
                head[at]
            )));
        }
        if head.len() >= MAX_LINE && !head.contains(&b'\n') {
            return Err(format!(
                "its first line is longer than {MAX_LINE} bytes, the most a line of a text \
                 trace may hold"
            ));
        }
        let mut lines = LineReader::new(head, name.to_string());
        while let Some(line) = lines.next_line().map_err(|e| e.to_string())? {
            if lackey::is_line(line.text) {
                return Ok(Format::Lackey);
            }
            if line.text.starts_with(text::HEADER) {
                return Ok(Format::Text);
            }
            let l = line.text.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            let words: Vec<&str> = l.split_whitespace().take(3).collect();
            if matches!(words[0], "R" | "W" | "X") {
                // `R`, `R 0x10` and `R 0x10 8` are plain; `R 1 0x10` is vmsim text.
                let plain_like = words.len() <= 2 || words[1].starts_with("0x");
                return Ok(if plain_like {
                    Format::Plain
                } else {
                    Format::Text
                });
            }
            if text::is_keyword(words[0]) {
                return Ok(Format::Text);
            }
            if plain::is_op(words[0]) {
                return Ok(Format::Plain);
            }
            return Err(format!(
                "its first record (line {}), {}, is none of a vmsim text record, an R/W/X \
                 access, a lackey record or a valgrind line",
                line.number,
                quote(l)
            ));
        }
        Err(format!(
            "its first {} bytes hold only blank lines and comments",
            head.len()
        ))
    }
}

/// The most characters of input text an error message quotes (see [`quote`]).
pub const QUOTE_CHARS: usize = 48;

/// Input text as every error message quotes it: in backticks, at most [`QUOTE_CHARS`]
/// characters (longer text is cut and ends with `…`), with characters that do not
/// print (NUL, escape, ...) written as Rust escapes (`\0`, `\u{1b}`).
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(QUOTE_CHARS) + 8);
    out.push('`');
    let mut shown = 0;
    for c in text.chars() {
        let plain = matches!(c, '\\' | '\'' | '"') || c.escape_debug().nth(1).is_none();
        let width = if plain { 1 } else { c.escape_debug().count() };
        if shown + width > QUOTE_CHARS {
            out.push('…');
            break;
        }
        shown += width;
        if plain {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    out.push('`');
    out
}

/// [`quote`] of bytes that may not be UTF-8 (invalid sequences show as `�`).
pub fn quote_bytes(bytes: &[u8]) -> String {
    quote(&String::from_utf8_lossy(
        &bytes[..bytes.len().min(4 * QUOTE_CHARS)],
    ))
}

/// What is wrong with a word that is not a u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberProblem {
    /// Empty.
    Missing,
    /// Digits after a `-`.
    Negative,
    /// Digits, too many of them.
    TooLarge,
    /// Not digits.
    NotANumber,
}

/// What is wrong with `word`, which is not a u64 in `radix` (16 for lackey's bare hex,
/// else decimal or `0x` hex as [`crate::addr::parse_u64`] reads).
pub(crate) fn number_problem(word: &str, radix: u32) -> NumberProblem {
    let t = word.trim();
    if t.is_empty() {
        return NumberProblem::Missing;
    }
    // Digits of `radix`, at least one, with `_` separators where parse_u64 takes them.
    let digits = |s: &str, radix: u32, sep: bool| {
        s.chars().any(|c| c.is_digit(radix))
            && s.chars().all(|c| c.is_digit(radix) || (sep && c == '_'))
    };
    let body = t.strip_prefix('-').unwrap_or(t);
    let shape = if radix == 16 {
        digits(body, 16, false)
    } else if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        digits(h, 16, true)
    } else {
        digits(body, 10, true)
    };
    match (t.starts_with('-'), shape) {
        (true, true) => NumberProblem::Negative,
        (false, true) => NumberProblem::TooLarge,
        _ => NumberProblem::NotANumber,
    }
}

/// `{what} {quoted word} {problem}`.
fn number_error(what: &str, word: &str, radix: u32) -> String {
    let problem = match number_problem(word, radix) {
        NumberProblem::Missing => "is missing",
        NumberProblem::Negative => "is negative",
        NumberProblem::TooLarge => "does not fit in 64 bits",
        NumberProblem::NotANumber if radix == 16 => "is not a hex number",
        NumberProblem::NotANumber => "is not a number (decimal or 0x hex)",
    };
    format!("{what} {} {problem}", quote(word))
}

/// A number field of a text trace (decimal or `0x` hex); the error names the field
/// (`what`), quotes the text and says whether it is negative, too large or no number.
pub(crate) fn number(what: &str, word: &str) -> Result<u64, String> {
    crate::addr::parse_u64(word).ok_or_else(|| number_error(what, word, 10))
}

/// An access size field: 1 to 2^32-1 bytes (an access touches at least one byte).
pub(crate) fn access_size(word: &str) -> Result<u32, String> {
    let n = number("access size", word)?;
    if n == 0 {
        return Err("access size 0: an access touches at least one byte".into());
    }
    u32::try_from(n).map_err(|_| format!("access size {n} does not fit in 32 bits"))
}

/// A hex number without `0x` (lackey's addresses); errors as [`number`]'s.
pub(crate) fn hex_number(what: &str, word: &str) -> Result<u64, String> {
    match u64::from_str_radix(word, 16) {
        Ok(n) if !word.starts_with('+') => Ok(n),
        _ => Err(number_error(what, word, 16)),
    }
}

/// Compression wrapped around a trace file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Tells the compression from the first bytes.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A decompressor whose errors say which compression failed (a truncated `.gz` should
/// not read as a bare "unexpected end of file").
struct Decoding<R> {
    inner: R,
    what: &'static str,
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "{} decompression failed: {e} (a truncated or corrupt file?)",
                    self.what
                ),
            )
        })
    }
}

/// Opens `path` and undoes its compression (told by magic bytes).
pub fn open_decompressed(path: &Path) -> Result<Box<dyn BufRead + Send>, TraceError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| TraceError::io(&name, e))?;
    let mut raw = BufReader::with_capacity(1 << 16, file);
    let head = raw
        .fill_buf()
        .map_err(|e| TraceError::io(&name, e))?
        .to_vec();
    let decoding = |inner: Box<dyn Read + Send>, what| -> Box<dyn BufRead + Send> {
        Box::new(BufReader::with_capacity(1 << 16, Decoding { inner, what }))
    };
    Ok(match Compression::detect(&head) {
        // Mapped windows read from the file's start, whatever `raw` has read.
        Compression::None => match raw
            .get_ref()
            .try_clone()
            .ok()
            .and_then(mapped::MappedFile::new)
        {
            Some(m) => Box::new(m),
            None => Box::new(raw),
        },
        Compression::Gzip => decoding(Box::new(flate2::bufread::MultiGzDecoder::new(raw)), "gzip"),
        Compression::Xz => decoding(
            Box::new(xz2::bufread::XzDecoder::new_multi_decoder(raw)),
            "xz",
        ),
        Compression::Zstd => decoding(
            Box::new(
                zstd::stream::read::Decoder::with_buffer(raw)
                    .map_err(|e| TraceError::io(&name, e))?,
            ),
            "zstd",
        ),
    })
}

/// A source of events: one of the format readers.
pub enum EventReader {
    /// vmsim text.
    Text(text::TextReader<Box<dyn BufRead + Send>>),
    /// vmsim binary.
    Binary(binary::BinaryReader<Box<dyn BufRead + Send>>),
    /// valgrind lackey.
    Lackey(lackey::LackeyReader<Box<dyn BufRead + Send>>),
    /// ChampSim.
    ChampSim(champsim::ChampSimReader<Box<dyn BufRead + Send>>),
    /// `R`/`W` lines.
    Plain(plain::PlainReader<Box<dyn BufRead + Send>>),
    /// oracleGeneral.
    OracleGeneral(plain::OracleReader<Box<dyn BufRead + Send>>),
    /// A synthetic workload.
    Synth(Box<synth::Generator>),
}

/// Events per batch a reader hands out.
pub const BATCH: usize = 4096;

impl EventReader {
    /// Opens a trace file, detecting its compression and (unless `format` names it) its
    /// format. `page_size` turns oracleGeneral's page numbers into addresses.
    pub fn open(
        path: &Path,
        format: Option<Format>,
        page_size: u64,
    ) -> Result<EventReader, TraceError> {
        let name = path.display().to_string();
        let mut input = open_decompressed(path)?;
        let format = match format {
            Some(f) => f,
            None => {
                let head = input
                    .fill_buf()
                    .map_err(|e| TraceError::read_at(&name, Location::Byte(0), e))?;
                let sample = head[..head.len().min(4096)].to_vec();
                Format::detect(&name, &sample).map_err(|reason| TraceError::UnknownFormat {
                    path: name.clone(),
                    reason,
                })?
            }
        };
        EventReader::new(format, input, name, page_size)
    }

    /// A reader of `format` over `input` (already decompressed); `name` names it in
    /// errors.
    pub fn new(
        format: Format,
        input: Box<dyn BufRead + Send>,
        name: String,
        page_size: u64,
    ) -> Result<EventReader, TraceError> {
        Ok(match format {
            Format::Text => EventReader::Text(text::TextReader::new(input, name)),
            Format::Binary => EventReader::Binary(binary::BinaryReader::new(input, name)?),
            Format::Lackey => EventReader::Lackey(lackey::LackeyReader::new(input, name)),
            Format::ChampSim => EventReader::ChampSim(champsim::ChampSimReader::new(input, name)),
            Format::Plain => EventReader::Plain(plain::PlainReader::new(input, name)),
            Format::OracleGeneral => {
                EventReader::OracleGeneral(plain::OracleReader::new(input, name, page_size))
            }
        })
    }

    /// The format.
    pub fn format(&self) -> Option<Format> {
        Some(match self {
            EventReader::Text(_) => Format::Text,
            EventReader::Binary(_) => Format::Binary,
            EventReader::Lackey(_) => Format::Lackey,
            EventReader::ChampSim(_) => Format::ChampSim,
            EventReader::Plain(_) => Format::Plain,
            EventReader::OracleGeneral(_) => Format::OracleGeneral,
            EventReader::Synth(_) => return None,
        })
    }

    /// Clears `out` and fills it with up to [`BATCH`] events; an empty batch is the
    /// end of the trace.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        out.clear();
        match self {
            EventReader::Text(r) => r.next_batch(out),
            EventReader::Binary(r) => r.next_batch(out),
            EventReader::Lackey(r) => r.next_batch(out),
            EventReader::ChampSim(r) => r.next_batch(out),
            EventReader::Plain(r) => r.next_batch(out),
            EventReader::OracleGeneral(r) => r.next_batch(out),
            EventReader::Synth(g) => {
                g.next_batch(out);
                Ok(())
            }
        }
    }

    /// Reads every remaining event (for tests and small traces).
    pub fn read_all(&mut self) -> Result<Vec<Event>, TraceError> {
        read_batches(|b| self.next_batch(b))
    }
}

/// Hands `f` each batch that `next_batch` (any reader's) appends to a buffer cleared
/// before each call, up to the empty batch that ends the trace; stops at the first
/// error of either.
pub(crate) fn for_each_batch<E: From<TraceError>>(
    mut next_batch: impl FnMut(&mut Vec<Event>) -> Result<(), TraceError>,
    mut f: impl FnMut(&[Event]) -> Result<(), E>,
) -> Result<(), E> {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        next_batch(&mut batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        f(&batch)?;
    }
}

/// [`for_each_batch`] with the reading on a thread of its own: `reader` decodes (or
/// generates) the next batches while `f` takes this one, so a replay's wall time is
/// the slower of the two rather than their sum. Batches reach `f` in order, holding
/// the same events as [`for_each_batch`] hands out; a reader error reaches the caller
/// after the batches before it. When `f` fails, the reader is stopped. With
/// `pack_pages` (a page size), the reader thread also [`Batch::pack`]s each batch.
pub fn for_each_batch_pipelined<E: From<TraceError>>(
    reader: &mut EventReader,
    pack_pages: Option<u64>,
    mut f: impl FnMut(&Batch) -> Result<(), E>,
) -> Result<(), E> {
    // Batches the reader may have ready beyond those on their way back: enough that
    // neither side waits on a hiccup of the other, few enough (with the ones below,
    // BATCHES in flight) to stay in the caches.
    const DEPTH: usize = 3;
    // Used batches go back to the reader this many at a time: a reader faster than
    // the replay waits for each one it gets back, and waking it costs the replay a
    // system call (50 ms of 750 in an all-hit run of 100 million accesses when every
    // batch went back alone).
    const RETURN: usize = 4;
    // Every batch fits in the queue of full ones, so the reader never waits to hand
    // one over, only for one to fill (which comes back in a group of RETURN).
    const BATCHES: usize = DEPTH + RETURN + 1;
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<Result<Batch, TraceError>>(BATCHES);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
        for _ in 0..BATCHES {
            // The receiver is alive here: the send cannot fail.
            let _ = empty_tx.send(Batch::with_capacity(BATCH));
        }
        scope.spawn(move || {
            // Ends when the trace does, on an error, or when the consumer hangs up.
            let mut wait = Waiter::new();
            while let Ok(mut batch) = wait.recv(&empty_rx) {
                let events = batch.events_mut();
                events.clear();
                let r = reader.next_batch(events).map(|()| {
                    if let Some(page_size) = pack_pages {
                        batch.pack(page_size);
                    }
                    batch
                });
                let last = !matches!(&r, Ok(b) if !b.events().is_empty());
                if full_tx.send(r).is_err() || last {
                    return;
                }
            }
        });
        let mut consume = || -> Result<(), E> {
            let mut used: Vec<Batch> = Vec::with_capacity(RETURN);
            let mut wait = Waiter::new();
            // The reader may have finished already: its hang-up is no error.
            let give_back = |used: &mut Vec<Batch>| {
                for b in used.drain(..) {
                    let _ = empty_tx.send(b);
                }
            };
            loop {
                let r = match full_rx.try_recv() {
                    Ok(r) => r,
                    Err(mpsc::TryRecvError::Empty) => {
                        // Nothing ready: the reader may be waiting for batches this
                        // side holds, so they go back before this side waits.
                        give_back(&mut used);
                        match wait.recv(&full_rx) {
                            Ok(r) => r,
                            Err(_) => break,
                        }
                    }
                    Err(mpsc::TryRecvError::Disconnected) => break,
                };
                let batch = r?;
                if batch.events().is_empty() {
                    break;
                }
                f(&batch)?;
                used.push(batch);
                if used.len() >= RETURN {
                    give_back(&mut used);
                }
            }
            Ok(())
        };
        let result = consume();
        // Hang up both ways, so a reader blocked on either channel returns.
        drop(full_rx);
        drop(empty_tx);
        result
    })
}

/// How long a side of [`for_each_batch_pipelined`] polls its channel before it
/// sleeps on it.
const SPIN: std::time::Duration = std::time::Duration::from_micros(500);

/// How one side of [`for_each_batch_pipelined`] waits for the other: polling the
/// channel for up to [`SPIN`] before it sleeps, while its waits are that short. Waking
/// a sleeping thread costs the sender a system call and the other CPU an interrupt
/// (in a virtual machine, 14% of an all-hit replay's samples when the reader slept
/// between every group of batches it got back), and the gaps between batches of a
/// fast replay are tens of microseconds; a slow replay's are milliseconds, and
/// polling through them would only take cycles from the other side.
struct Waiter {
    /// The last wait was shorter than [`SPIN`].
    poll: bool,
}

impl Waiter {
    fn new() -> Waiter {
        Waiter { poll: true }
    }

    /// The next item of `rx`.
    fn recv<T>(&mut self, rx: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
        use mpsc::TryRecvError;
        let start = std::time::Instant::now();
        while self.poll && start.elapsed() < SPIN {
            match rx.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(mpsc::RecvError),
                // Lets the other side run first when both share one CPU.
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
        let r = rx.recv();
        self.poll = start.elapsed() < SPIN;
        r
    }
}

/// Every event that `next_batch` hands out, up to the end of the trace.
pub(crate) fn read_batches(
    next_batch: impl FnMut(&mut Vec<Event>) -> Result<(), TraceError>,
) -> Result<Vec<Event>, TraceError> {
    let mut all = Vec::new();
    for_each_batch(next_batch, |batch| {
        all.extend_from_slice(batch);
        Ok::<_, TraceError>(())
    })?;
    Ok(all)
}

/// Writes every event that `next_batch` hands out to `writer`; returns how many.
pub(crate) fn copy_events<W: std::io::Write>(
    next_batch: impl FnMut(&mut Vec<Event>) -> Result<(), TraceError>,
    writer: &mut EventWriter<W>,
) -> Result<u64, TraceError> {
    let mut n = 0;
    for_each_batch(next_batch, |batch| {
        for e in batch {
            writer.write(e)?;
        }
        n += batch.len() as u64;
        Ok::<_, TraceError>(())
    })?;
    Ok(n)
}

/// A writer of one of the writable formats.
pub enum EventWriter<W: std::io::Write> {
    /// vmsim text.
    Text(text::TextWriter<W>),
    /// vmsim binary.
    Binary(binary::BinaryWriter<W>),
}

impl<W: std::io::Write> EventWriter<W> {
    /// A writer of `format` (text or binary; binary compressed with zstd when `zstd`).
    pub fn new(format: Format, out: W, name: &str, zstd: bool) -> Result<Self, TraceError> {
        match format {
            Format::Text => Ok(EventWriter::Text(text::TextWriter::new(out, name)?)),
            Format::Binary => Ok(EventWriter::Binary(binary::BinaryWriter::new(
                out, name, zstd,
            )?)),
            f => Err(TraceError::NotWritable { format: f.name() }),
        }
    }

    /// Writes one event.
    #[inline]
    pub fn write(&mut self, e: &Event) -> Result<(), TraceError> {
        match (self, e) {
            (EventWriter::Binary(w), Event::Access(a)) => w.write_access(*a),
            (EventWriter::Text(w), e) => w.write(e),
            (EventWriter::Binary(w), e) => w.write(e),
        }
    }

    /// Flushes and ends the trace, returning the output.
    pub fn finish(self) -> Result<W, TraceError> {
        match self {
            EventWriter::Text(w) => w.finish(),
            EventWriter::Binary(w) => w.finish(),
        }
    }
}

/// Copies every event of `reader` to `writer`; returns how many.
pub fn convert<W: std::io::Write>(
    reader: &mut EventReader,
    writer: &mut EventWriter<W>,
) -> Result<u64, TraceError> {
    copy_events(|b| reader.next_batch(b), writer)
}

/// Reads up to `buf.len()` bytes, stopping early only at the end of the input; returns
/// how many were read (less than asked: the input ended inside a record).
pub(crate) fn read_exact_or<R: std::io::Read + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Input cut into fixed-size binary records (ChampSim, oracleGeneral), with the byte
/// offset that errors name.
pub(crate) struct Records<R> {
    input: R,
    name: String,
    offset: u64,
}

impl<R: std::io::Read> Records<R> {
    /// Records of `input`, called `name` in errors.
    pub(crate) fn new(input: R, name: String) -> Self {
        Records {
            input,
            name,
            offset: 0,
        }
    }

    /// The input's name, as errors give it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Bytes read so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Fills `rec` with the next record: false at the end of the input; an error where
    /// the read fails or the input ends inside a record, which `what` names (`record`).
    pub(crate) fn next(&mut self, rec: &mut [u8], what: &str) -> Result<bool, TraceError> {
        let got = read_exact_or(&mut self.input, rec)
            .map_err(|e| TraceError::read_at(&self.name, Location::Byte(self.offset), e))?;
        if got == 0 {
            return Ok(false);
        }
        if got < rec.len() {
            return Err(TraceError::at(
                &self.name,
                Location::Byte(self.offset),
                format!(
                    "the trace ends {got} bytes into a {}-byte {what}",
                    rec.len()
                ),
            ));
        }
        self.offset += rec.len() as u64;
        Ok(true)
    }
}

/// The page stream of a trace's accesses: each access's page (`va / page_size`) of its
/// process, only process `pid`'s with `Some(pid)`. Pages of different processes are
/// different pages (separate address spaces). An access that spans pages references
/// each.
pub fn page_trace(
    reader: &mut EventReader,
    page_size: u64,
    pid: Option<TracePid>,
) -> Result<crate::policy::PageTrace, TraceError> {
    let shift = page_size.max(1).trailing_zeros();
    let mut pages = Vec::new();
    for_each_batch(
        |b| reader.next_batch(b),
        |batch| {
            for e in batch {
                let Event::Access(a) = e else { continue };
                if pid.is_some_and(|p| p != a.pid) {
                    continue;
                }
                let first = a.va.vpn(shift).0;
                let last = a.last_byte() >> shift;
                for page in first..=last {
                    // Process in the top 12 bits: pages of different processes differ.
                    pages.push((a.pid as u64) << 52 ^ page);
                }
            }
            Ok::<_, TraceError>(())
        },
    )?;
    Ok(crate::policy::PageTrace::from_pages(pages))
}

/// Line-oriented input where `#` starts a comment and blank lines are skipped: the
/// reading loop that vmsim text and plain traces share, over the one [`LineReader`].
pub(crate) struct CommentedLines<R> {
    lines: LineReader<R>,
}

impl<R: BufRead> CommentedLines<R> {
    pub(crate) fn new(input: R, name: String) -> Self {
        CommentedLines {
            lines: LineReader::new(input, name),
        }
    }

    /// Appends up to [`BATCH`] events, each parsed from one line by `parse`; a parse
    /// error becomes an error naming the file and the line.
    pub(crate) fn read_records(
        &mut self,
        out: &mut Vec<Event>,
        parse: impl Fn(&str) -> Result<Event, String>,
    ) -> Result<(), TraceError> {
        while out.len() < BATCH {
            let Some(line) = self.lines.next_line()? else {
                return Ok(());
            };
            let text = line.text.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            out.push(parse(text).map_err(|r| line.error(r))?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text trace of `good` loads, then a line that is not an event.
    fn text_reader(good: usize) -> EventReader {
        let mut t = String::from("#vmsim-text 1\n");
        for i in 0..good {
            t += &format!("R 1 {:#x}\n", 0x1000 + 8 * i);
        }
        t += "bogus line\n";
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(t.into_bytes()));
        EventReader::new(Format::Text, input, "t.vmt".into(), 4096).unwrap()
    }

    #[test]
    fn pipelined_reading_hands_out_what_reading_in_turn_does_then_its_error() {
        let good = 3 * BATCH + 17;
        let mut seen = Vec::new();
        let mut packed = 0;
        let e = for_each_batch_pipelined(&mut text_reader(good), Some(4096), |b| {
            seen.extend_from_slice(b.events());
            // Every event is a load of process 1 within a page: one run a batch.
            assert_eq!(b.runs().len(), 1);
            let (vas, _) = b.packed(&b.runs()[0]);
            packed += vas.len();
            Ok::<_, TraceError>(())
        })
        .unwrap_err();
        assert_eq!(packed, 3 * BATCH);
        assert!(e.to_string().contains("bogus"), "{e}");
        let mut r = text_reader(good);
        let mut want = Vec::new();
        let e2 = for_each_batch(
            |b| r.next_batch(b),
            |b| {
                want.extend_from_slice(b);
                Ok::<_, TraceError>(())
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), e2.to_string());
        // The batch the error cut short is not handed out, either way.
        assert_eq!(seen.len(), 3 * BATCH);
        assert_eq!(seen, want);
    }

    /// Many more batches than are in flight, the used ones going back in groups: every
    /// event arrives, in order, with the consumer slower than the reader and faster.
    #[test]
    fn pipelined_reading_of_many_batches_keeps_their_order() {
        for slow_consumer in [false, true] {
            let good = 30 * BATCH + 5;
            let mut seen = Vec::new();
            let e = for_each_batch_pipelined(&mut text_reader(good), None, |b| {
                if slow_consumer {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                assert!(b.runs().is_empty());
                seen.extend(b.events().iter().map(|e| match e {
                    Event::Access(a) => a.va.0,
                    _ => 0,
                }));
                Ok::<_, TraceError>(())
            })
            .unwrap_err();
            assert!(e.to_string().contains("bogus"), "{e}");
            let want: Vec<u64> = (0..30 * BATCH as u64).map(|i| 0x1000 + 8 * i).collect();
            assert_eq!(seen, want, "slow consumer {slow_consumer}");
        }
    }

    #[test]
    fn a_waiter_stops_polling_after_a_long_wait() {
        let (tx, rx) = mpsc::channel();
        let mut wait = Waiter::new();
        std::thread::scope(|s| {
            s.spawn(move || {
                std::thread::sleep(SPIN * 10);
                tx.send(7).unwrap();
            });
            assert_eq!(wait.recv(&rx), Ok(7));
        });
        assert!(!wait.poll);
        // The sender is gone: an error, polling or not.
        assert!(wait.recv(&rx).is_err());
        wait.poll = true;
        assert!(wait.recv(&rx).is_err());
    }

    #[test]
    fn a_failing_consumer_stops_the_pipelined_reader() {
        let mut calls = 0;
        let e = for_each_batch_pipelined(&mut text_reader(20 * BATCH), None, |_| {
            calls += 1;
            Err(TraceError::NotWritable { format: "enough" })
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(e.to_string().contains("enough"), "{e}");
    }

    #[test]
    fn advice_and_syscall_names_go_both_ways() {
        assert_eq!(advice_name(4), Some("dontneed"));
        assert_eq!(advice_name(25), Some("collapse"));
        assert_eq!(advice_name(7), None);
        assert_eq!(advice_number("populate_write"), Some(23));
        assert_eq!(advice_number("DONTNEED"), None);
        for (n, name) in ADVICE {
            assert_eq!(advice_number(name), Some(n));
        }
        assert_eq!(syscall_name(462), Some("mseal"));
        assert_eq!(syscall_name(0), None, "read is not a memory syscall");
        assert_eq!(syscall_number("msync"), Some(26));
        for (n, name) in SYSCALLS {
            assert_eq!(syscall_number(name), Some(n));
            assert_eq!(syscall_name(n), Some(name));
        }
    }

    #[test]
    fn quote_cuts_long_text_and_escapes_what_does_not_print() {
        assert_eq!(quote("abc"), "`abc`");
        assert_eq!(quote(""), "``");
        let exact = "x".repeat(QUOTE_CHARS);
        assert_eq!(quote(&exact), format!("`{exact}`"));
        let long = "y".repeat(50_000_000);
        assert_eq!(quote(&long), format!("`{}…`", &long[..QUOTE_CHARS]));
        assert_eq!(quote("a\0b\u{1b}"), "`a\\0b\\u{1b}`");
        assert_eq!(quote("\0".repeat(100).as_str()).matches("\\0").count(), 24);
        assert_eq!(quote("it's \"x\" \\ ü"), "`it's \"x\" \\ ü`");
        assert_eq!(quote_bytes(b"ab\xffc"), "`ab\u{fffd}c`");
    }

    #[test]
    fn number_errors_tell_negative_too_large_and_not_a_number() {
        assert_eq!(number("size", "0x10"), Ok(16));
        for (word, why) in [
            ("-12", "is negative"),
            ("18446744073709551616", "does not fit in 64 bits"),
            ("0x10000000000000000", "does not fit in 64 bits"),
            ("12ab", "is not a number (decimal or 0x hex)"),
        ] {
            let e = number("size", word).unwrap_err();
            assert_eq!(e, format!("size `{word}` {why}"));
        }
        assert_eq!(hex_number("address", "ff"), Ok(255));
        for (word, why) in [("+ff", "is not a hex number"), ("", "is missing")] {
            let e = hex_number("address", word).unwrap_err();
            assert_eq!(e, format!("address `{word}` {why}"));
        }
        assert_eq!(access_size("4294967295"), Ok(u32::MAX));
        assert!(access_size("4294967296").unwrap_err().contains("32 bits"));
        assert!(access_size("0").unwrap_err().contains("size 0"));
    }

    #[test]
    fn detection_by_the_first_record() {
        let d = |head: &str| Format::detect("t", head.as_bytes());
        assert_eq!(d("#vmsim-text 1\nspawn 1\n"), Ok(Format::Text));
        assert_eq!(d("# c\n\nspawn 1\n"), Ok(Format::Text));
        assert_eq!(d("R 1 0x10 8\n"), Ok(Format::Text));
        assert_eq!(d("R 0x10 8\n"), Ok(Format::Plain));
        assert_eq!(d("w 4096\n"), Ok(Format::Plain));
        // The shape decides: the readers say what is wrong with the fields.
        assert_eq!(d("R\n"), Ok(Format::Plain));
        assert_eq!(d("R 0xzz\n"), Ok(Format::Plain));
        assert_eq!(d("L zz 8 # a comment\n"), Ok(Format::Plain));
        assert_eq!(d("==12== Lackey\n"), Ok(Format::Lackey));
        assert_eq!(d("I  0401ab70,3\n"), Ok(Format::Lackey));
        assert_eq!(
            d("SYSCALL[1599,1](12) sys_brk ( 0x0 ) --> [pre-success] Success(0x4035000)\n"),
            Ok(Format::Lackey)
        );
        assert_eq!(Format::detect("t", b"VMSIMTRC\x01\x00"), Ok(Format::Binary));
        assert_eq!(
            Format::detect("a.champsim.xz", b"\0\0"),
            Ok(Format::ChampSim)
        );
    }

    #[test]
    fn detection_errors_say_what_was_seen() {
        let d = |head: &[u8]| Format::detect("t", head).unwrap_err();
        assert_eq!(d(b""), "the file is empty");
        assert!(d(&[0; 4096]).contains("control byte 0x00 at offset 0"));
        assert!(d(b"ab\xff\xfecd").contains("byte 0xff at offset 2 is not UTF-8"));
        assert!(d(&[b'R'; 4096]).contains("first line is longer than 4096 bytes"));
        assert!(d(b"# only\n\n").contains("only blank lines and comments"));
        let e = d(format!("\nhello {}\n", "z".repeat(10_000)).as_bytes());
        assert!(
            e.starts_with("its first record (line 2), `hello zzz"),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
        // A UTF-8 sequence cut by the end of the sample is not binary.
        assert_eq!(
            Format::detect("t", "R 0x10 # é".as_bytes().split_last().unwrap().1),
            Ok(Format::Plain)
        );
    }

    fn write_tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vmsim-trace-mod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A compressed trace cut short is an error naming the compression and the place,
    /// not a shorter trace.
    #[test]
    fn a_truncated_compressed_trace_is_an_error() {
        use std::io::Write;
        let text: String = (0..20_000)
            .map(|i| format!("R {:#x}\n", i * 4096))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let xz = {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(text.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(text.as_bytes(), 1).unwrap();
        for (name, bytes, what) in [
            ("t.gz", gz, "gzip"),
            ("t.xz", xz, "xz"),
            ("t.zst", zst, "zstd"),
        ] {
            let whole = write_tmp(name, &bytes);
            let mut r = EventReader::open(&whole, None, 4096).unwrap();
            assert_eq!(r.read_all().unwrap().len(), 20_000);
            let cut = write_tmp(name, &bytes[..bytes.len() * 2 / 3]);
            let e = EventReader::open(&cut, None, 4096)
                .and_then(|mut r| r.read_all())
                .unwrap_err()
                .to_string();
            let path = cut.display().to_string();
            assert!(e.starts_with(&format!("{path}: ")), "{e}");
            assert!(e.contains(&format!("{what} decompression failed")), "{e}");
            std::fs::remove_file(&cut).unwrap();
        }
        let _ = std::fs::remove_dir(
            std::env::temp_dir().join(format!("vmsim-trace-mod-{}", std::process::id())),
        );
    }
}
