//! vmsim's text trace format: one event per line, `#` comments, written by hand or by
//! `vmsim trace convert`.
//!
//! ```text
//! #vmsim-text 1
//! spawn 1
//! mmap 1 0x10000 16KiB rw-          # anonymous, private
//! mmap 1 0x20000 8KiB r-- file=3@0  # file 3 from offset 0
//! R 1 0x10008 8                     # load of 8 bytes (size optional, default 1)
//! W 1 0x10010
//! X 1 0x20000 4
//! mprotect 1 0x10000 4KiB r--
//! brk 1 0x60000
//! fork 1 2
//! switch 2
//! shm 2 7 0x40000 8KiB rw-
//! munmap 1 0x10000 16KiB
//! exec 2
//! exit 2 0
//! ```
//!
//! A recorder of real programs also writes threads, `execve` as an emptied address
//! space whose image follows as mappings, and the other memory calls:
//!
//! ```text
//! exec-image 3                      # pid 3's address space is emptied
//! mmap 3 0x400000 8KiB r-x file=4@0
//! brk 3 0x4a0000                    # the first brk of an image places its heap
//! thread 3 1                        # thread 1 of pid 3 runs what follows
//! W 3 0x4a0010 8
//! mremap 3 0x7f0000000000 8KiB 0x7f1000000000 16KiB
//! madvise 3 0x7f1000000000 4KiB dontneed   # advice by name, or its number
//! shmdt 3 0x30000000
//! syscall 3 msync                   # a call the model only counts: name or number
//! thp-disable 3 1
//! sleep 3 1000000                   # thread 1 of pid 3 slept 1 ms (nanoseconds)
//! populate 3 0x7f1000000000 16KiB   # MAP_POPULATE: the kernel faults it in
//! mlock 3 0x7f1000000000 16KiB      # locked in RAM (and faulted in); `onfault` after
//! munlock 3 0x7f1000000000 16KiB
//! mlockall 3 current,future         # MCL_* by name (current, future, onfault)
//! munlockall 3
//! thread-exit 3 1 0
//! ```
//!
//! Addresses and sizes are decimal or `0x` hex; lengths also take units (`4KiB`).

use super::{
    access_size, advice_name, advice_number, fadvice_name, fadvice_number, number, quote,
    syscall_name, syscall_number, Access, Event, MapKind, Mlock, TraceError, TracePid, TraceTid,
    MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT,
};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::Prot;
use std::io::{BufRead, Write};

/// The first line the writer emits (and detection recognises).
pub const HEADER: &str = "#vmsim-text";

const KEYWORDS: [&str; 21] = [
    "spawn",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "fork",
    "exec",
    "exit",
    "switch",
    "shm",
    "thread",
    "thread-exit",
    "exec-image",
    "mremap",
    "madvise",
    "shmdt",
    "syscall",
    "thp-disable",
    "R",
    "W",
    "X",
];

/// Whether `word` starts a vmsim text record.
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// Reads vmsim text.
pub struct TextReader<R> {
    lines: super::CommentedLines<R>,
}

impl<R: BufRead> TextReader<R> {
    /// A reader over `input`, called `name` in errors.
    pub fn new(input: R, name: String) -> Self {
        TextReader {
            lines: super::CommentedLines::new(input, name),
        }
    }

    /// Appends up to [`BATCH`] events to `out`.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        self.lines.read_records(out, parse_line)
    }
}

/// Field `i` of the record, or an error naming what is missing.
fn field<'a>(words: &[&'a str], i: usize, what: &str) -> Result<&'a str, String> {
    words
        .get(i)
        .copied()
        .ok_or_else(|| format!("{what} is missing: {} needs one", quote(words[0])))
}

fn num(words: &[&str], i: usize, what: &str) -> Result<u64, String> {
    number(what, field(words, i, what)?)
}

fn len(words: &[&str], i: usize) -> Result<u64, String> {
    let w = field(words, i, "the length")?;
    let n = crate::size::parse_size(w).map_err(|_| {
        format!(
            "length {} is not a size that fits in 64 bits (bytes, 0x hex, or with a unit: \
             16KiB, 2MiB)",
            quote(w)
        )
    })?;
    if n == 0 {
        return Err("length 0: a range holds at least one byte".into());
    }
    Ok(n)
}

/// A length that may be 0 (`madvise` of nothing succeeds; so may `mremap` of an old
/// length 0), with units as [`len`]'s.
fn len_or_0(words: &[&str], i: usize, what: &str) -> Result<u64, String> {
    let w = field(words, i, what)?;
    crate::size::parse_size(w).map_err(|_| {
        format!(
            "{what} {} is not a size that fits in 64 bits (bytes, 0x hex, or with a unit: \
             16KiB, 2MiB)",
            quote(w)
        )
    })
}

fn pid(words: &[&str], i: usize) -> Result<TracePid, String> {
    let n = num(words, i, "the pid")?;
    TracePid::try_from(n).map_err(|_| format!("pid {n} does not fit in 32 bits"))
}

/// A file's number in the trace (as `mmap`'s `file=` numbers them).
fn file_no(words: &[&str], i: usize) -> Result<u32, String> {
    let n = num(words, i, "the file number")?;
    u32::try_from(n).map_err(|_| format!("file number {} is too large", quote(words[i])))
}

fn tid(words: &[&str], i: usize) -> Result<TraceTid, String> {
    let n = num(words, i, "the tid")?;
    TraceTid::try_from(n).map_err(|_| format!("tid {n} does not fit in 32 bits"))
}

/// An exit code field: a 32-bit integer, 0 when absent.
fn code(words: &[&str], i: usize) -> Result<i32, String> {
    match words.get(i) {
        None => Ok(0),
        Some(c) => c
            .parse::<i32>()
            .map_err(|_| format!("exit code {} is not a 32-bit integer", quote(c))),
    }
}

/// A name from a table of `kind`s (`lookup`), or a 32-bit number.
fn named_number(
    words: &[&str],
    i: usize,
    kind: &str,
    lookup: fn(&str) -> Option<u32>,
    examples: &str,
) -> Result<u32, String> {
    let w = field(words, i, &format!("the {kind}"))?;
    if let Some(n) = lookup(w) {
        return Ok(n);
    }
    let digits = w.starts_with(|c: char| c.is_ascii_digit());
    if !digits {
        return Err(format!(
            "{kind} {} is not a name ({examples}) or a number",
            quote(w)
        ));
    }
    let n = number(kind, w)?;
    u32::try_from(n).map_err(|_| format!("{kind} {n} does not fit in 32 bits"))
}

/// The pid, address and length of fields 1 to 3: the range a memory call names.
fn range(words: &[&str]) -> Result<(TracePid, u64, u64), String> {
    Ok((
        pid(words, 1)?,
        num(words, 2, "the address")?,
        len(words, 3)?,
    ))
}

fn prot(words: &[&str], i: usize) -> Result<Prot, String> {
    let w = field(words, i, "the protection (rwx, r--, none)")?;
    Prot::parse(w)
        .ok_or_else(|| format!("protection {} is not rwx-style (rw-, r-x, none)", quote(w)))
}

fn at_most(words: &[&str], n: usize) -> Result<(), String> {
    if words.len() > n {
        return Err(format!(
            "{} takes {} field{}; {} is one too many",
            quote(words[0]),
            n - 1,
            if n == 2 { "" } else { "s" },
            quote(words[n])
        ));
    }
    Ok(())
}

/// Parses one record (comments and blanks already removed).
pub fn parse_line(text: &str) -> Result<Event, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let w = words.as_slice();
    Ok(match w[0] {
        "R" | "W" | "X" => {
            at_most(w, 4)?;
            let kind = match w[0] {
                "R" => AccessKind::Read,
                "W" => AccessKind::Write,
                _ => AccessKind::Execute,
            };
            let pid = pid(w, 1)?;
            let va = num(w, 2, "the address")?;
            let size = match w.get(3) {
                None => 1,
                Some(s) => access_size(s)?,
            };
            Event::Access(Access {
                pid,
                kind,
                va: VirtAddr(va),
                size,
            })
        }
        "spawn" => {
            at_most(w, 2)?;
            Event::Spawn { pid: pid(w, 1)? }
        }
        "exec" => {
            at_most(w, 2)?;
            Event::Exec { pid: pid(w, 1)? }
        }
        "switch" => {
            at_most(w, 2)?;
            Event::Switch { pid: pid(w, 1)? }
        }
        "exit" => {
            at_most(w, 3)?;
            Event::Exit {
                pid: pid(w, 1)?,
                code: code(w, 2)?,
            }
        }
        "thread" => {
            at_most(w, 3)?;
            Event::Thread {
                pid: pid(w, 1)?,
                tid: tid(w, 2)?,
            }
        }
        "thread-exit" => {
            at_most(w, 4)?;
            Event::ThreadExit {
                pid: pid(w, 1)?,
                tid: tid(w, 2)?,
                code: code(w, 3)?,
            }
        }
        "exec-image" => {
            at_most(w, 2)?;
            Event::ExecImage { pid: pid(w, 1)? }
        }
        "mremap" => {
            at_most(w, 6)?;
            Event::Mremap {
                pid: pid(w, 1)?,
                old: VirtAddr(num(w, 2, "the old address")?),
                old_len: len_or_0(w, 3, "the old length")?,
                new: VirtAddr(num(w, 4, "the new address")?),
                new_len: len_or_0(w, 5, "the new length")?,
            }
        }
        "madvise" => {
            at_most(w, 5)?;
            Event::Madvise {
                pid: pid(w, 1)?,
                addr: VirtAddr(num(w, 2, "the address")?),
                len: len_or_0(w, 3, "the length")?,
                advice: named_number(
                    w,
                    4,
                    "advice",
                    advice_number,
                    "dontneed, free, willneed, ...",
                )?,
            }
        }
        "shmdt" => {
            at_most(w, 3)?;
            Event::ShmDetach {
                pid: pid(w, 1)?,
                addr: VirtAddr(num(w, 2, "the address")?),
            }
        }
        "syscall" => {
            at_most(w, 3)?;
            Event::Syscall {
                pid: pid(w, 1)?,
                nr: named_number(w, 2, "syscall", syscall_number, "msync, mlock, mbind, ...")?,
            }
        }
        "read" => {
            at_most(w, 6)?;
            Event::FileRead {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
                offset: num(w, 3, "the offset")?,
                len: num(w, 4, "the length")?,
                buf: match w.len() {
                    6 => Some(VirtAddr(num(w, 5, "the buffer's address")?)),
                    _ => None,
                },
            }
        }
        "write" => {
            at_most(w, 5)?;
            Event::FileWrite {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
                offset: num(w, 3, "the offset")?,
                len: num(w, 4, "the length")?,
            }
        }
        "nonzero" => {
            at_most(w, 3)?;
            Event::Nonzero {
                pid: pid(w, 1)?,
                addr: VirtAddr(num(w, 2, "the address")?),
            }
        }
        "values" => {
            at_most(w, 2)?;
            Event::Values { pid: pid(w, 1)? }
        }
        "fadvise" => {
            at_most(w, 6)?;
            Event::Fadvise {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
                offset: num(w, 3, "the offset")?,
                len: num(w, 4, "the length")?,
                advice: named_number(
                    w,
                    5,
                    "advice",
                    fadvice_number,
                    "sequential, random, dontneed, ...",
                )?,
            }
        }
        "file-readahead" => {
            at_most(w, 4)?;
            Event::FileReadahead {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
                bytes: num(w, 3, "the readahead in bytes")?,
            }
        }
        "file-size" => {
            at_most(w, 4)?;
            Event::FileSize {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
                bytes: num(w, 3, "the file's length in bytes")?,
            }
        }
        "file-shmem" => {
            at_most(w, 3)?;
            Event::FileShmem {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
            }
        }
        "file-drop" => {
            at_most(w, 3)?;
            Event::FileDrop {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
            }
        }
        "file-cached" => {
            at_most(w, 5)?;
            Event::FileCached {
                pid: pid(w, 1)?,
                file: file_no(w, 2)?,
                offset: num(w, 3, "the byte offset")?,
                len: num(w, 4, "the bytes cached")?,
            }
        }
        "thp-disable" => {
            at_most(w, 3)?;
            let flag = field(w, 2, "the flag (0 or 1)")?;
            Event::ThpDisable {
                pid: pid(w, 1)?,
                disable: match flag {
                    "0" => false,
                    "1" => true,
                    _ => return Err(format!("thp-disable flag {} is not 0 or 1", quote(flag))),
                },
            }
        }
        "populate" => {
            at_most(w, 4)?;
            Event::Populate {
                pid: pid(w, 1)?,
                addr: VirtAddr(num(w, 2, "the address")?),
                len: len(w, 3)?,
            }
        }
        "mlock" | "munlock" => {
            let unlock = w[0] == "munlock";
            at_most(w, if unlock { 4 } else { 5 })?;
            let mode = match w.get(4) {
                _ if unlock => Mlock::Unlocked,
                None => Mlock::Locked,
                Some(&"onfault") => Mlock::OnFault,
                Some(other) => return Err(format!("`{other}` is not `onfault`")),
            };
            Event::Mlock {
                pid: pid(w, 1)?,
                addr: VirtAddr(num(w, 2, "the address")?),
                len: len(w, 3)?,
                mode,
            }
        }
        "mlockall" => {
            at_most(w, 3)?;
            let text = w
                .get(2)
                .ok_or("the flags (current, future, onfault) are missing")?;
            let mut flags = 0;
            for name in text.split(',') {
                if let Ok(n) = name.parse::<u32>() {
                    flags |= n;
                    continue;
                }
                flags |= match name {
                    "current" => MCL_CURRENT,
                    "future" => MCL_FUTURE,
                    "onfault" => MCL_ONFAULT,
                    _ => {
                        return Err(format!(
                            "mlockall flag `{name}` is not current, future or onfault"
                        ))
                    }
                };
            }
            Event::Mlockall {
                pid: pid(w, 1)?,
                flags,
            }
        }
        "munlockall" => {
            at_most(w, 2)?;
            Event::Mlockall {
                pid: pid(w, 1)?,
                flags: 0,
            }
        }
        "sleep" => {
            at_most(w, 3)?;
            Event::Sleep {
                pid: pid(w, 1)?,
                ns: num(w, 2, "the nanoseconds asleep")?,
            }
        }
        "fs-metadata" => {
            at_most(w, 3)?;
            Event::FsMetadata {
                pid: pid(w, 1)?,
                pages: num(w, 2, "the pages of metadata read")?,
            }
        }
        "fork" => {
            at_most(w, 3)?;
            Event::Fork {
                parent: pid(w, 1)?,
                child: pid(w, 2)?,
            }
        }
        "vfork" => {
            at_most(w, 3)?;
            Event::Vfork {
                parent: pid(w, 1)?,
                child: pid(w, 2)?,
            }
        }
        "brk" => {
            at_most(w, 3)?;
            Event::Brk {
                pid: pid(w, 1)?,
                addr: VirtAddr(num(w, 2, "the address")?),
            }
        }
        "munmap" => {
            at_most(w, 4)?;
            let (pid, addr, len) = range(w)?;
            Event::Munmap {
                pid,
                addr: VirtAddr(addr),
                len,
            }
        }
        "mprotect" => {
            at_most(w, 5)?;
            let (pid, addr, len) = range(w)?;
            let prot = prot(w, 4)?;
            Event::Mprotect {
                pid,
                addr: VirtAddr(addr),
                len,
                prot,
            }
        }
        "shm" => {
            at_most(w, 6)?;
            let key = num(w, 2, "the key")?;
            Event::ShmAttach {
                pid: pid(w, 1)?,
                key: u32::try_from(key)
                    .map_err(|_| format!("key {key} does not fit in 32 bits"))?,
                addr: VirtAddr(num(w, 3, "the address")?),
                len: len(w, 4)?,
                prot: prot(w, 5)?,
            }
        }
        "mmap" => {
            let mut shared = false;
            let mut kind = MapKind::Anon;
            let mut noreserve = false;
            for opt in w.iter().skip(5) {
                if *opt == "shared" {
                    shared = true;
                } else if *opt == "private" {
                    shared = false;
                } else if *opt == "noreserve" {
                    noreserve = true;
                } else if let Some(size) = opt.strip_prefix("hugetlb=") {
                    let page_bytes = crate::size::parse_size(size)
                        .ok()
                        .filter(|b| b.is_power_of_two() && (13..=40).contains(&b.trailing_zeros()))
                        .ok_or_else(|| {
                            format!(
                                "hugetlb page size {} is not a power of two from 8KiB to 1TiB",
                                quote(size)
                            )
                        })?;
                    kind = MapKind::HugeTlb {
                        page_bytes,
                        noreserve: false,
                    };
                } else if let Some(f) = opt.strip_prefix("file=") {
                    let (id, off) = f.split_once('@').unwrap_or((f, "0"));
                    let file = number("file number", id)?;
                    let file = u32::try_from(file)
                        .map_err(|_| format!("file number {file} does not fit in 32 bits"))?;
                    let offset = number("file offset", off)?;
                    kind = MapKind::File { file, offset };
                } else {
                    return Err(format!(
                        "mmap option {} is not `shared`, `private`, `file=N[@OFFSET]`, `hugetlb=SIZE` or `noreserve`",
                        quote(opt)
                    ));
                }
            }
            match (&mut kind, noreserve) {
                (MapKind::HugeTlb { noreserve: n, .. }, true) => *n = true,
                (_, true) => return Err("mmap option `noreserve` needs `hugetlb=SIZE`".into()),
                _ => {}
            }
            if matches!(kind, MapKind::HugeTlb { .. })
                && w.iter().skip(5).any(|o| o.starts_with("file="))
            {
                return Err("an mmap is `file=` or `hugetlb=`, not both".into());
            }
            let (pid, addr, len) = range(w)?;
            Event::Mmap {
                pid,
                addr: VirtAddr(addr),
                len,
                prot: prot(w, 4)?,
                shared,
                kind,
            }
        }
        other => {
            return Err(format!(
                "{} is not a record (R, W, X, {})",
                quote(other),
                KEYWORDS[..KEYWORDS.len() - 3].join(", ")
            ))
        }
    })
}

fn prot_text(p: Prot) -> String {
    let b = |bit: Prot, c: char| if p.contains(bit) { c } else { '-' };
    [b(Prot::READ, 'r'), b(Prot::WRITE, 'w'), b(Prot::EXEC, 'x')]
        .iter()
        .collect()
}

/// Formats one event as a line of the text format (without the newline).
pub fn format_event(e: &Event) -> String {
    match *e {
        Event::Access(a) => {
            let k = match a.kind {
                AccessKind::Read => 'R',
                AccessKind::Write => 'W',
                AccessKind::Execute => 'X',
            };
            if a.size == 1 {
                format!("{k} {} {:#x}", a.pid, a.va)
            } else {
                format!("{k} {} {:#x} {}", a.pid, a.va, a.size)
            }
        }
        Event::Spawn { pid } => format!("spawn {pid}"),
        Event::Exec { pid } => format!("exec {pid}"),
        Event::Switch { pid } => format!("switch {pid}"),
        Event::Exit { pid, code } => format!("exit {pid} {code}"),
        Event::Fork { parent, child } => format!("fork {parent} {child}"),
        Event::Vfork { parent, child } => format!("vfork {parent} {child}"),
        Event::FileRead {
            pid,
            file,
            offset,
            len,
            buf,
        } => match buf {
            None => format!("read {pid} {file} {offset:#x} {len:#x}"),
            Some(buf) => format!("read {pid} {file} {offset:#x} {len:#x} {buf:#x}"),
        },
        Event::FileWrite {
            pid,
            file,
            offset,
            len,
        } => format!("write {pid} {file} {offset:#x} {len:#x}"),
        Event::Nonzero { pid, addr } => format!("nonzero {pid} {addr:#x}"),
        Event::Values { pid } => format!("values {pid}"),
        Event::FileReadahead { pid, file, bytes } => {
            format!("file-readahead {pid} {file} {bytes:#x}")
        }
        Event::Fadvise {
            pid,
            file,
            offset,
            len,
            advice,
        } => match fadvice_name(advice) {
            Some(name) => format!("fadvise {pid} {file} {offset:#x} {len:#x} {name}"),
            None => format!("fadvise {pid} {file} {offset:#x} {len:#x} {advice}"),
        },
        Event::FileSize { pid, file, bytes } => format!("file-size {pid} {file} {bytes:#x}"),
        Event::FileShmem { pid, file } => format!("file-shmem {pid} {file}"),
        Event::FileDrop { pid, file } => format!("file-drop {pid} {file}"),
        Event::FileCached {
            pid,
            file,
            offset,
            len,
        } => format!("file-cached {pid} {file} {offset:#x} {len:#x}"),
        Event::Brk { pid, addr } => format!("brk {pid} {addr:#x}"),
        Event::Munmap { pid, addr, len } => format!("munmap {pid} {addr:#x} {len:#x}"),
        Event::Mprotect {
            pid,
            addr,
            len,
            prot,
        } => format!("mprotect {pid} {addr:#x} {len:#x} {}", prot_text(prot)),
        Event::ShmAttach {
            pid,
            key,
            addr,
            len,
            prot,
        } => format!("shm {pid} {key} {addr:#x} {len:#x} {}", prot_text(prot)),
        Event::Thread { pid, tid } => format!("thread {pid} {tid}"),
        Event::ThreadExit { pid, tid, code } => format!("thread-exit {pid} {tid} {code}"),
        Event::ExecImage { pid } => format!("exec-image {pid}"),
        Event::Mremap {
            pid,
            old,
            old_len,
            new,
            new_len,
        } => format!("mremap {pid} {old:#x} {old_len:#x} {new:#x} {new_len:#x}"),
        Event::Madvise {
            pid,
            addr,
            len,
            advice,
        } => match advice_name(advice) {
            Some(name) => format!("madvise {pid} {addr:#x} {len:#x} {name}"),
            None => format!("madvise {pid} {addr:#x} {len:#x} {advice}"),
        },
        Event::ShmDetach { pid, addr } => format!("shmdt {pid} {addr:#x}"),
        Event::Syscall { pid, nr } => match syscall_name(nr) {
            Some(name) => format!("syscall {pid} {name}"),
            None => format!("syscall {pid} {nr}"),
        },
        Event::ThpDisable { pid, disable } => format!("thp-disable {pid} {}", disable as u8),
        Event::Sleep { pid, ns } => format!("sleep {pid} {ns}"),
        Event::FsMetadata { pid, pages } => format!("fs-metadata {pid} {pages}"),
        Event::Populate { pid, addr, len } => format!("populate {pid} {addr:#x} {len:#x}"),
        Event::Mlock {
            pid,
            addr,
            len,
            mode,
        } => match mode {
            Mlock::Unlocked => format!("munlock {pid} {addr:#x} {len:#x}"),
            Mlock::Locked => format!("mlock {pid} {addr:#x} {len:#x}"),
            Mlock::OnFault => format!("mlock {pid} {addr:#x} {len:#x} onfault"),
        },
        Event::Mlockall { pid, flags: 0 } => format!("munlockall {pid}"),
        Event::Mlockall { pid, flags }
            if flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 =>
        {
            format!("mlockall {pid} {flags}")
        }
        Event::Mlockall { pid, flags } => {
            let names: Vec<String> = [
                (MCL_CURRENT, "current"),
                (MCL_FUTURE, "future"),
                (MCL_ONFAULT, "onfault"),
            ]
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, n)| n.to_string())
            .collect();
            format!("mlockall {pid} {}", names.join(","))
        }
        Event::Mmap {
            pid,
            addr,
            len,
            prot,
            shared,
            kind,
        } => {
            let mut s = format!("mmap {pid} {addr:#x} {len:#x} {}", prot_text(prot));
            if shared {
                s.push_str(" shared");
            }
            match kind {
                MapKind::File { file, offset } => s.push_str(&format!(" file={file}@{offset:#x}")),
                MapKind::HugeTlb {
                    page_bytes,
                    noreserve,
                } => {
                    s.push_str(&format!(
                        " hugetlb={}",
                        crate::size::format_size(page_bytes).replace(' ', "")
                    ));
                    if noreserve {
                        s.push_str(" noreserve");
                    }
                }
                MapKind::Anon => {}
            }
            s
        }
    }
}

/// Writes vmsim text.
pub struct TextWriter<W: Write> {
    out: std::io::BufWriter<W>,
    name: String,
}

impl<W: Write> TextWriter<W> {
    /// A writer to `out` (called `name` in errors); writes the header line.
    pub fn new(out: W, name: &str) -> Result<Self, TraceError> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        writeln!(out, "{HEADER} 1").map_err(|e| TraceError::io(name, e))?;
        Ok(TextWriter {
            out,
            name: name.to_string(),
        })
    }

    /// Writes one event.
    pub fn write(&mut self, e: &Event) -> Result<(), TraceError> {
        writeln!(self.out, "{}", format_event(e)).map_err(|err| TraceError::io(&self.name, err))
    }

    /// Flushes, returning the output.
    pub fn finish(self) -> Result<W, TraceError> {
        let name = self.name;
        self.out
            .into_inner()
            .map_err(|e| TraceError::io(&name, e.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::VirtAddr;

    fn read(text: &str) -> Result<Vec<Event>, TraceError> {
        let mut r = TextReader::new(text.as_bytes(), "t.vmt".into());
        crate::trace::read_batches(|b| r.next_batch(b))
    }

    #[test]
    fn parses_the_documented_example() {
        let doc = include_str!("text.rs");
        let start = doc.find("//! #vmsim-text 1").unwrap();
        let block: String = doc[start..]
            .lines()
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        let events = read(&block).unwrap();
        assert_eq!(events.len(), 14);
        let start = doc.find("//! exec-image 3").unwrap();
        let block: String = doc[start..]
            .lines()
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        let recorded = read(&block).unwrap();
        assert_eq!(recorded.len(), 17);
        assert_eq!(recorded[0], Event::ExecImage { pid: 3 });
        assert_eq!(
            recorded[6],
            Event::Madvise {
                pid: 3,
                addr: VirtAddr(0x7f10_0000_0000),
                len: 4096,
                advice: 4
            }
        );
        assert_eq!(recorded[8], Event::Syscall { pid: 3, nr: 26 });
        assert_eq!(
            events[2],
            Event::Mmap {
                pid: 1,
                addr: VirtAddr(0x20000),
                len: 8192,
                prot: Prot::READ,
                shared: false,
                kind: MapKind::File { file: 3, offset: 0 }
            }
        );
        assert_eq!(
            events[3],
            Event::Access(Access {
                pid: 1,
                kind: AccessKind::Read,
                va: VirtAddr(0x10008),
                size: 8
            })
        );
        assert_eq!(events[13], Event::Exit { pid: 2, code: 0 });
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let e = read("spawn 1\n\nR 1 0xzz\n").unwrap_err().to_string();
        assert!(e.contains("t.vmt: line 3"), "{e}");
        assert!(e.contains("`0xzz`"), "{e}");
        let e = read("mmap 1 0x1000 4KiB rwq\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("`rwq`"), "{e}");
        let e = read("jump 1\n").unwrap_err().to_string();
        assert!(e.contains("`jump` is not a record"), "{e}");
        let e = read("R 1 0x10 0\n").unwrap_err().to_string();
        assert!(e.contains("size 0"), "{e}");
        let e = read("spawn 1 2\n").unwrap_err().to_string();
        assert!(e.contains("one too many"), "{e}");
        let cases = [
            ("R 1\n", "line 1: the address is missing: `R` needs one"),
            ("R 1 -16\n", "the address `-16` is negative"),
            (
                "R 1 0x10 0x100000000\n",
                "access size 4294967296 does not fit in 32 bits",
            ),
            (
                "spawn 4294967296\n",
                "pid 4294967296 does not fit in 32 bits",
            ),
            ("mmap 1 0x1000 0 rw-\n", "length 0"),
            (
                "mmap 1 0x1000 20000000TiB rw-\n",
                "length `20000000TiB` is not a size that fits",
            ),
            ("mmap 1 0x1000\n", "the length is missing: `mmap` needs one"),
            (
                "exit 1 99999999999\n",
                "exit code `99999999999` is not a 32-bit integer",
            ),
        ];
        for (text, want) in cases {
            let e = read(text).unwrap_err().to_string();
            assert!(
                e.starts_with("t.vmt: line 1: ") && e.contains(want),
                "{e}\n{want}"
            );
        }
    }

    #[test]
    fn new_records_read_and_write_both_ways() {
        let text = "thread 1 0\nthread 4294967295 4294967295\nthread-exit 1 2 -9\n\
                    thread-exit 1 3\nexec-image 2\nmremap 2 0x1000 0 0x2000 3MiB\n\
                    madvise 2 0x1000 0 free\nmadvise 2 0x1000 4KiB 7\n\
                    madvise 2 0x1000 4KiB 4\nshmdt 2 0x30000000\nsyscall 2 mseal\n\
                    syscall 2 0\nsyscall 2 4000000000\nthp-disable 2 0\nthp-disable 2 1\n\
                    file-cached 2 5 8192 0x3000\nsleep 2 1000000\n\
                    populate 2 0x1000 8KiB\nmlock 2 0x1000 4KiB\n\
                    mlock 2 0x1000 4KiB onfault\nmunlock 2 0x1000 4KiB\n\
                    mlockall 2 future,current\nmlockall 2 current,onfault\nmunlockall 2\n\
                    mlockall 2 9\n";
        let events = read(text).unwrap();
        assert_eq!(events.len(), 25);
        assert_eq!(
            events[19],
            Event::Mlock {
                pid: 2,
                addr: VirtAddr(0x1000),
                len: 4096,
                mode: Mlock::OnFault
            }
        );
        assert_eq!(
            events[21],
            Event::Mlockall {
                pid: 2,
                flags: MCL_CURRENT | MCL_FUTURE
            }
        );
        assert_eq!(events[23], Event::Mlockall { pid: 2, flags: 0 });
        assert_eq!(
            events[17],
            Event::Populate {
                pid: 2,
                addr: VirtAddr(0x1000),
                len: 8192
            }
        );
        assert_eq!(
            events[16],
            Event::Sleep {
                pid: 2,
                ns: 1_000_000
            }
        );
        assert_eq!(
            events[15],
            Event::FileCached {
                pid: 2,
                file: 5,
                offset: 8192,
                len: 0x3000
            }
        );
        assert_eq!(
            events[2],
            Event::ThreadExit {
                pid: 1,
                tid: 2,
                code: -9
            }
        );
        assert_eq!(
            events[3],
            Event::ThreadExit {
                pid: 1,
                tid: 3,
                code: 0
            }
        );
        assert_eq!(
            events[5],
            Event::Mremap {
                pid: 2,
                old: VirtAddr(0x1000),
                old_len: 0,
                new: VirtAddr(0x2000),
                new_len: 3 << 20
            }
        );
        assert!(matches!(events[7], Event::Madvise { advice: 7, .. }));
        assert!(matches!(events[8], Event::Madvise { advice: 4, .. }));
        assert_eq!(events[11], Event::Syscall { pid: 2, nr: 0 });
        assert_eq!(
            events[12],
            Event::Syscall {
                pid: 2,
                nr: 4_000_000_000
            }
        );
        assert_eq!(
            events[14],
            Event::ThpDisable {
                pid: 2,
                disable: true
            }
        );
        let lines: Vec<String> = events.iter().map(format_event).collect();
        assert_eq!(lines[6], "madvise 2 0x1000 0x0 free");
        assert_eq!(lines[7], "madvise 2 0x1000 0x1000 7");
        assert_eq!(lines[8], "madvise 2 0x1000 0x1000 dontneed");
        assert_eq!(lines[10], "syscall 2 mseal");
        assert_eq!(lines[11], "syscall 2 0");
        assert_eq!(lines[13], "thp-disable 2 0");
        assert_eq!(lines[15], "file-cached 2 5 0x2000 0x3000");
        assert_eq!(lines[16], "sleep 2 1000000");
        assert_eq!(lines[17], "populate 2 0x1000 0x2000");
        assert_eq!(lines[18], "mlock 2 0x1000 0x1000");
        assert_eq!(lines[19], "mlock 2 0x1000 0x1000 onfault");
        assert_eq!(lines[20], "munlock 2 0x1000 0x1000");
        assert_eq!(lines[21], "mlockall 2 current,future");
        assert_eq!(lines[22], "mlockall 2 current,onfault");
        assert_eq!(lines[23], "munlockall 2");
        assert_eq!(lines[24], "mlockall 2 9", "unknown flags as a number");
        let mut w = TextWriter::new(Vec::new(), "out").unwrap();
        for e in &events {
            w.write(e).unwrap();
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(read(&out).unwrap(), events);
        for word in [
            "thread",
            "thread-exit",
            "exec-image",
            "mremap",
            "madvise",
            "shmdt",
        ] {
            assert!(is_keyword(word), "{word}");
        }
        assert_eq!(
            crate::trace::Format::detect("t", b"thread 1 2\n"),
            Ok(crate::trace::Format::Text)
        );
    }

    #[test]
    fn errors_in_new_records_name_the_line_and_the_field() {
        let cases = [
            ("thread 1\n", "the tid is missing: `thread` needs one"),
            (
                "thread 1 4294967296\n",
                "tid 4294967296 does not fit in 32 bits",
            ),
            (
                "thread 1 2 3\n",
                "`thread` takes 2 fields; `3` is one too many",
            ),
            (
                "thread-exit 1 2 x\n",
                "exit code `x` is not a 32-bit integer",
            ),
            ("exec-image\n", "the pid is missing"),
            ("mremap 1 0x1000 4KiB 0x2000\n", "the new length is missing"),
            (
                "mremap 1 0x1000 4KiB 0xzz 4KiB\n",
                "the new address `0xzz` is not a number",
            ),
            (
                "mremap 1 0x1000 4XiB 0x2000 4KiB\n",
                "the old length `4XiB` is not a size",
            ),
            (
                "madvise 1 0x1000 4KiB sideways\n",
                "advice `sideways` is not a name (dontneed, free, willneed, ...) or a number",
            ),
            (
                "madvise 1 0x1000 4KiB 5000000000\n",
                "advice 5000000000 does not fit in 32 bits",
            ),
            ("madvise 1 0x1000 4KiB -4\n", "advice `-4` is not a name"),
            (
                "madvise 1 0x1000 4KiB\n",
                "the advice is missing: `madvise` needs one",
            ),
            ("shmdt 1\n", "the address is missing"),
            (
                "syscall 1 read\n",
                "syscall `read` is not a name (msync, mlock, mbind, ...)",
            ),
            ("syscall 1 12x\n", "syscall `12x` is not a number"),
            ("thp-disable 1 2\n", "thp-disable flag `2` is not 0 or 1"),
            ("thp-disable 1\n", "the flag (0 or 1) is missing"),
            ("sleep 1\n", "the nanoseconds asleep is missing"),
            ("sleep 1 1ms\n", "the nanoseconds asleep `1ms` is not"),
            ("populate 1 0x1000 0\n", "length 0"),
            ("populate 1 0x1000\n", "the length is missing"),
            ("mlock 1 0x1000 4KiB always\n", "`always` is not `onfault`"),
            (
                "munlock 1 0x1000 4KiB onfault\n",
                "`onfault` is one too many",
            ),
            ("mlock 1 0x1000 0\n", "length 0"),
            (
                "mlockall 1\n",
                "the flags (current, future, onfault) are missing",
            ),
            ("mlockall 1 now\n", "mlockall flag `now` is not current"),
            ("munlockall 1 current\n", "`current` is one too many"),
        ];
        for (text, want) in cases {
            let e = read(text).unwrap_err().to_string();
            assert!(
                e.starts_with("t.vmt: line 1: ") && e.contains(want),
                "{e}\n{want}"
            );
        }
    }

    /// Whatever the input's length, an error quotes at most a few dozen characters.
    #[test]
    fn errors_quote_input_cut_short() {
        let long = "9".repeat(4000);
        for text in [
            format!("R 1 {long}\n"),
            format!("{long}\n"),
            format!("mmap 1 0x1000 4KiB {long}\n"),
            format!("spawn 1 {long}\n"),
        ] {
            let e = read(&text).unwrap_err().to_string();
            // The quote is cut; the rest is at most the list of record keywords.
            assert!(e.contains("…`") && e.len() < 300, "{e}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let text =
            "spawn 7\nmmap 7 0x1000 0x3000 rw- shared file=2@0x1000\nX 7 0x1000 4\nexit 7 -3\n";
        let events = read(text).unwrap();
        let mut w = TextWriter::new(Vec::new(), "out").unwrap();
        for e in &events {
            w.write(e).unwrap();
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert!(out.starts_with("#vmsim-text 1\n"));
        assert_eq!(read(&out).unwrap(), events);
    }
}
