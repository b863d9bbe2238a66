//! valgrind lackey's memory trace (`valgrind --tool=lackey --trace-mem=yes`), with the
//! system calls that `--trace-syscalls=yes` adds to the same log.
//!
//! ```text
//! ==1599== Lackey, an example Valgrind tool
//! I  0401ab70,3
//!  S 1fff000778,8
//!  L 04222cac,4
//!  M 0421f6c0,4
//! SYSCALL[1599,1](9) sys_mmap ( 0x0, 8192, 3, 34, 4294967295, 0 ) --> [pre-success] Success(0x4835000)
//! SYSCALL[1599,1](11) sys_munmap ( 0x4a2a000, 1048576 )[sync] --> Success(0x0)
//! ```
//!
//! `I` is an instruction fetch, `L` a load, `S` a store and `M` a modify (a load then a
//! store of the same bytes). Addresses are hex without `0x`; sizes are decimal and at
//! least 1. Every record belongs to trace pid 1 (the memory records do not say which
//! process or thread made them). Lines are read by the shared [`LineReader`]: at most
//! [`super::MAX_LINE`] bytes each.
//!
//! System call lines are `SYSCALL[PID,TID](NR) CALL --> RESULT`, where TID is
//! valgrind's thread number (1 for the first thread) and NR an x86-64 Linux system call
//! number. The process the log traces is the first one it names (the `==PID==` banner
//! or the first `SYSCALL` line); the calls of any other process (a child after `fork`,
//! whose memory records cannot be told apart) are skipped. Of the traced process's
//! calls, successful `mmap` (9), `munmap` (11), `mprotect` (10) and `brk` (12) become
//! OS events, `open` (2) and `openat` (257) number the files `mmap` maps (one number per
//! path), and the process ends (an `exit` event) at `exit_group` (231) or when `exit`
//! (60) ends the last of its threads: the threads are those its `SYSCALL` lines name,
//! plus those `clone` (56) with `CLONE_THREAD` started that have not been named yet. An
//! `exit` of one thread of several ends only that thread. The arguments and result of
//! these calls must be well formed (an error names the line and the field); other calls
//! are skipped whatever their arguments. Valgrind's own `==pid==`, `--pid--` and `**`
//! lines are skipped.

use super::{access_size, hex_number, number, quote, Access, Event, LineReader, MapKind};
use super::{TraceError, TracePid, BATCH};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::Prot;
use rustc_hash::{FxHashMap, FxHashSet};
use std::io::BufRead;

/// The trace pid of every lackey record.
pub const PID: TracePid = 1;

/// x86-64 Linux system call numbers the reader interprets.
mod nr {
    pub const OPEN: u32 = 2;
    pub const MMAP: u32 = 9;
    pub const MPROTECT: u32 = 10;
    pub const MUNMAP: u32 = 11;
    pub const BRK: u32 = 12;
    pub const CLONE: u32 = 56;
    pub const EXIT: u32 = 60;
    pub const EXIT_GROUP: u32 = 231;
    pub const OPENAT: u32 = 257;
}

/// `clone`'s flag for a new thread of the same process (not a new process).
const CLONE_THREAD: u64 = 0x10000;
/// `mmap` flags.
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_TYPE: u64 = 0x3;
const MAP_SHARED: u64 = 0x1;
const MAP_SHARED_VALIDATE: u64 = 0x3;

/// Whether `line` is a lackey access record.
pub fn is_record(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 3 && matches!(&b[..3], b"I  " | b" L " | b" S " | b" M ") && line[3..].contains(',')
}

/// Whether `line` is a line of a lackey log: an access record, a `SYSCALL[` line or a
/// valgrind message (`==pid==`, `--pid--`, `**`).
pub fn is_line(line: &str) -> bool {
    is_record(line)
        || line.starts_with("SYSCALL[")
        || line.starts_with("==")
        || line.starts_with("--")
        || line.starts_with("**")
}

/// A system call the reader interprets, with the arguments it needs.
#[derive(Clone, Debug)]
enum Call {
    /// `open` or `openat` of a path.
    Open {
        path: String,
    },
    Mmap {
        len: u64,
        prot: u64,
        flags: u64,
        fd: u64,
        offset: u64,
    },
    Munmap {
        addr: u64,
        len: u64,
    },
    Mprotect {
        addr: u64,
        len: u64,
        prot: u64,
    },
    Brk,
    Clone {
        flags: u64,
    },
    Exit {
        code: i32,
    },
    ExitGroup {
        code: i32,
    },
    /// Any other call: skipped.
    Other,
}

/// A started call: its process, thread, number and arguments.
#[derive(Clone, Debug)]
struct Started {
    pid: u32,
    tid: u32,
    nr: u32,
    call: Call,
}

/// The state the system call lines build: files, threads, calls waiting for results.
#[derive(Default)]
struct Syscalls {
    /// Calls waiting for an `[async]` completion line, by (pid, tid).
    pending: FxHashMap<(u32, u32), Started>,
    /// The last call whose line ended before its result, which a ` --> ` line gives.
    open: Option<Started>,
    /// Open file descriptors → file numbers.
    fds: FxHashMap<u64, u32>,
    /// Paths → file numbers.
    paths: FxHashMap<String, u32>,
    /// The traced process (its real pid).
    main: Option<u32>,
    /// Its threads (valgrind's numbers) seen in `SYSCALL` lines and not exited.
    threads: FxHashSet<u32>,
    /// Threads `clone` started that no line has named yet.
    unnamed: u32,
    /// Whether the traced process has ended.
    ended: bool,
    /// Calls turned into events.
    events: u64,
    /// Interpreted calls of other processes, or of the traced one after its end.
    skipped: u64,
}

/// Reads lackey output.
pub struct LackeyReader<R> {
    lines: LineReader<R>,
    sys: Syscalls,
}

fn access(kind: AccessKind, rest: &str) -> Result<Access, String> {
    let (a, s) = rest
        .trim()
        .split_once(',')
        .ok_or_else(|| format!("{} is not ADDRESS,SIZE", quote(rest.trim())))?;
    let va = hex_number("address", a.trim())?;
    let size = access_size(s.trim())?;
    Ok(Access {
        pid: PID,
        kind,
        va: VirtAddr(va),
        size,
    })
}

impl<R: BufRead> LackeyReader<R> {
    /// A reader over `input`, called `name` in errors.
    pub fn new(input: R, name: String) -> Self {
        LackeyReader {
            lines: LineReader::new(input, name),
            sys: Syscalls::default(),
        }
    }

    /// System calls turned into events so far.
    pub fn syscalls(&self) -> u64 {
        self.sys.events
    }

    /// System calls of the kinds the reader interprets that it skipped so far: those of
    /// other processes than the traced one, and those after the traced one ended.
    pub fn skipped_syscalls(&self) -> u64 {
        self.sys.skipped
    }

    /// Appends up to [`BATCH`] events to `out`.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        while out.len() < BATCH {
            let Some(line) = self.lines.next_line()? else {
                return Ok(());
            };
            let r = record(&mut self.sys, line.text, out);
            r.map_err(|reason| line.error(reason))?;
        }
        Ok(())
    }
}

/// One record of the log: an access, a system call line or a valgrind message.
fn record(sys: &mut Syscalls, text: &str, out: &mut Vec<Event>) -> Result<(), String> {
    {
        // Valgrind ends a system call line with the next message's newline, so a
        // record another thread printed meanwhile can follow its result on the line:
        // `... --> [pre-success] Success(0x3487) I  0494eb42,3`.
        if let Some((call, next)) = record_after_result(text) {
            record(sys, call, out)?;
            return record(sys, next, out);
        }
        // `  clone(fork): process 24457 created child 24471`: valgrind's note of a fork,
        // on its own line or after the clone call that made it (parent and child write
        // to one log); the child's own records are not told apart in this log.
        if let Some(at) = text.find("clone(fork): process") {
            let before = text[..at].trim_end();
            return if before.trim().is_empty() {
                Ok(())
            } else {
                record(sys, before, out)
            };
        }
        let b = text.as_bytes();
        if b.len() >= 3 && &b[..3] == b"I  " {
            access(AccessKind::Execute, &text[3..]).map(|a| out.push(Event::Access(a)))
        } else if b.len() >= 3 && &b[..3] == b" L " {
            access(AccessKind::Read, &text[3..]).map(|a| out.push(Event::Access(a)))
        } else if b.len() >= 3 && &b[..3] == b" S " {
            access(AccessKind::Write, &text[3..]).map(|a| out.push(Event::Access(a)))
        } else if b.len() >= 3 && &b[..3] == b" M " {
            access(AccessKind::Read, &text[3..]).map(|a| {
                out.push(Event::Access(a));
                out.push(Event::Access(Access {
                    kind: AccessKind::Write,
                    ..a
                }));
            })
        } else if let Some(rest) = text.strip_prefix("SYSCALL[") {
            sys.line(rest, out)
        } else if let Some(result) = continuation(text) {
            sys.continued(result, out)
        } else if text.starts_with("==") || text.starts_with("--") || text.starts_with("**") {
            if sys.main.is_none() {
                sys.main = banner_pid(text);
            }
            Ok(())
        } else if text.trim().is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} is not a lackey record (I, L, S, M), a SYSCALL line or a valgrind message",
                quote(text)
            ))
        }
    }
}

/// A system call line (or its continuation) whose result is followed by another
/// record: the call's part and the record.
fn record_after_result(text: &str) -> Option<(&str, &str)> {
    if !text.starts_with("SYSCALL[") && continuation(text).is_none() {
        return None;
    }
    // The first result: after a fork, the child's result of the same call can follow
    // the parent's on the line (` --> Success(0x6715)  --> Success(0x0)`).
    let (_, result) = text.split_once("-->")?;
    let start = text.len() - result.len();
    let end = ["Success(", "Failure("]
        .iter()
        .filter_map(|k| result.find(k).map(|i| (i, k.len())))
        .min()
        .and_then(|(i, k)| result[i + k..].find(')').map(|j| i + k + j + 1))
        .or_else(|| {
            result
                .find("NoWriteResult")
                .map(|i| i + "NoWriteResult".len())
        })?;
    // Valgrind puts one space after the result; a data record starts with its own.
    let after = &result[end..];
    let next = after.strip_prefix(' ').unwrap_or(after);
    if next.trim().is_empty() {
        return None;
    }
    Some((&text[..start + end], next))
}

/// The pid of a `==1599== ...` line.
fn banner_pid(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("==")?;
    let (pid, _) = rest.split_once("==")?;
    pid.parse().ok()
}

/// The result part of a line that continues a system call line cut short by a
/// valgrind message: ` --> [pre-fail] Failure(0x26)` or `[sync] --> Success(0x0)`.
fn continuation(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("[sync]").map_or(t, str::trim_start);
    t.strip_prefix("-->")
}

/// The arguments between the first `(` of a call and its last `)`, split at the commas
/// outside parentheses (a path argument is `0x4835540(/a/path)`).
fn split_args(call: &str) -> Option<Vec<&str>> {
    let (a, b) = (call.find('(')?, call.rfind(')')?);
    if a >= b {
        return None;
    }
    let inner = &call[a + 1..b];
    let mut args = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(inner[start..].trim());
    if args.len() == 1 && args[0].is_empty() {
        args.clear();
    }
    Some(args)
}

/// A numeric argument as valgrind prints them: decimal, negative decimal (`%ld`, kept
/// as its two's complement) or `0x` hex.
fn int_arg(what: &str, word: &str) -> Result<u64, String> {
    match word.strip_prefix('-') {
        Some(d) => d
            .parse::<u64>()
            .ok()
            .filter(|&v| v <= 1 << 63)
            .map(|v| v.wrapping_neg())
            .ok_or_else(|| format!("{what} {} is not a 64-bit integer", quote(word))),
        None => number(what, word),
    }
}

/// The name of system call `nr` and of its arguments, for errors.
fn signature(nr: u32) -> (&'static str, &'static [&'static str]) {
    match nr {
        nr::OPEN => ("open", &["path", "flags", "mode"]),
        nr::OPENAT => ("openat", &["dirfd", "path", "flags", "mode"]),
        nr::MMAP => ("mmap", &["addr", "length", "prot", "flags", "fd", "offset"]),
        nr::MPROTECT => ("mprotect", &["addr", "length", "prot"]),
        nr::MUNMAP => ("munmap", &["addr", "length"]),
        nr::BRK => ("brk", &["addr"]),
        nr::CLONE => (
            "clone",
            &["flags", "stack", "parent_tid", "tls", "child_tid"],
        ),
        nr::EXIT => ("exit", &["status"]),
        nr::EXIT_GROUP => ("exit_group", &["status"]),
        _ => ("?", &[]),
    }
}

/// Parses the arguments of call `nr` (the text after `SYSCALL[..](NR) `) into what the
/// reader needs; errors name the call, the argument and its text.
fn parse_call(nr: u32, text: &str) -> Result<Call, String> {
    let (name, params) = signature(nr);
    if params.is_empty() {
        return Ok(Call::Other);
    }
    let args = split_args(text).ok_or_else(|| {
        format!(
            "the {name} call {} has no parenthesised arguments",
            quote(text.trim())
        )
    })?;
    let needed = match nr {
        nr::OPEN => 1,
        nr::OPENAT => 2,
        nr::CLONE => 1,
        _ => params.len(),
    };
    if args.len() < needed {
        return Err(format!(
            "the {name} call has {} argument(s), not {needed} ({})",
            args.len(),
            params[..needed].join(", ")
        ));
    }
    let what = |i: usize| format!("{name} argument {} ({})", i + 1, params[i]);
    let int = |i: usize| int_arg(&what(i), args[i]);
    let path = |i: usize| -> Result<String, String> {
        let a = args[i];
        match (a.find('('), a.ends_with(')')) {
            (Some(p), true) if number("", &a[..p]).is_ok() => Ok(a[p + 1..a.len() - 1].to_string()),
            _ => Err(format!("{} {} is not POINTER(PATH)", what(i), quote(a))),
        }
    };
    Ok(match nr {
        nr::OPEN => Call::Open { path: path(0)? },
        nr::OPENAT => {
            int(0)?;
            Call::Open { path: path(1)? }
        }
        nr::MMAP => {
            int(0)?;
            Call::Mmap {
                len: int(1)?,
                prot: int(2)?,
                flags: int(3)?,
                fd: int(4)?,
                offset: int(5)?,
            }
        }
        nr::MPROTECT => Call::Mprotect {
            addr: int(0)?,
            len: int(1)?,
            prot: int(2)?,
        },
        nr::MUNMAP => Call::Munmap {
            addr: int(0)?,
            len: int(1)?,
        },
        nr::BRK => {
            int(0)?;
            Call::Brk
        }
        // valgrind prints clone's flags as bare hex (`%lx`).
        nr::CLONE => {
            let f = args[0];
            let f = f.strip_prefix("0x").unwrap_or(f);
            Call::Clone {
                flags: hex_number(&what(0), f)?,
            }
        }
        // The kernel takes an int: the low 32 bits.
        nr::EXIT => Call::Exit {
            code: int(0)? as i32,
        },
        _ => Call::ExitGroup {
            code: int(0)? as i32,
        },
    })
}

/// A call's outcome.
enum Outcome {
    /// Succeeded, returning this (`None`: valgrind wrote no result).
    Success(Option<u64>),
    /// Failed.
    Failure,
    /// Not known yet (`[async] ...`).
    Later,
}

/// Parses a result: `[pre-success] Success(0x4835000)`, `[pre-fail] Failure(0x26)`,
/// `Success(0x0)`, `[pre-success] NoWriteResult`, `[async] ...`.
fn parse_result(text: &str) -> Result<Outcome, String> {
    let t = text.trim();
    if t.starts_with("[async]") {
        return Ok(Outcome::Later);
    }
    let t = t
        .strip_prefix("[pre-success]")
        .or_else(|| t.strip_prefix("[pre-fail]"))
        .map_or(t, str::trim_start);
    if t == "NoWriteResult" {
        return Ok(Outcome::Success(None));
    }
    let value = |inner: &str| number("the result", inner);
    if let Some(v) = t.strip_prefix("Success(").and_then(|r| r.strip_suffix(')')) {
        return Ok(Outcome::Success(Some(value(v)?)));
    }
    if let Some(v) = t.strip_prefix("Failure(").and_then(|r| r.strip_suffix(')')) {
        value(v)?;
        return Ok(Outcome::Failure);
    }
    Err(format!(
        "the result {} is not Success(VALUE) or Failure(ERRNO)",
        quote(t)
    ))
}

impl Syscalls {
    /// `rest` follows `SYSCALL[`: `pid,tid](nr) CALL --> RESULT`, or the completion of
    /// an `[async]` call: `pid,tid](nr) ... [async] --> RESULT`.
    fn line(&mut self, rest: &str, out: &mut Vec<Event>) -> Result<(), String> {
        self.open = None;
        let (who, rest) = rest.split_once(']').ok_or_else(|| {
            format!(
                "SYSCALL line {}: no `]` ends its [PID,TID]",
                quote(&format!("SYSCALL[{rest}"))
            )
        })?;
        let ids = who.split_once(',').and_then(|(p, t)| {
            Some((p.trim().parse::<u32>().ok()?, t.trim().parse::<u32>().ok()?))
        });
        let (pid, tid) =
            ids.ok_or_else(|| format!("SYSCALL [PID,TID] {} is not two numbers", quote(who)))?;
        let nr_text = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| format!("SYSCALL line: {} does not start with (NUMBER)", quote(rest)))?;
        let (nr_text, body) = nr_text;
        let nr: u32 = nr_text
            .trim()
            .parse()
            .map_err(|_| format!("SYSCALL number {} is not a number", quote(nr_text)))?;
        if self.main.is_none() {
            self.main = Some(pid);
        }
        if self.main == Some(pid) && !self.ended && self.threads.insert(tid) {
            // A thread named for the first time: one of those clone started, if any.
            self.unnamed = self.unnamed.saturating_sub(1);
        }
        let (call_text, result) = match body.rsplit_once("-->") {
            Some((c, r)) => (c, Some(r)),
            None => (body, None),
        };
        let started = if call_text.trim_start().starts_with("...") {
            // The completion of an [async] call: its arguments came earlier.
            match self.pending.remove(&(pid, tid)) {
                Some(s) if s.nr == nr => s,
                Some(s) => {
                    return Err(format!(
                        "thread {tid} of process {pid} completes syscall {nr} while its \
                         syscall {} is in progress",
                        s.nr
                    ))
                }
                None if signature(nr).1.is_empty() => return Ok(()),
                None => {
                    return Err(format!(
                        "thread {tid} of process {pid} completes an [async] {} call it did \
                         not start",
                        signature(nr).0
                    ))
                }
            }
        } else {
            Started {
                pid,
                tid,
                nr,
                call: parse_call(nr, call_text)?,
            }
        };
        match result {
            Some(r) => self.finish(started, r, out),
            None => {
                // The result comes on a later ` --> ` line.
                self.open = Some(started);
                Ok(())
            }
        }
    }

    /// A ` --> RESULT` line completing the last system call line.
    fn continued(&mut self, result: &str, out: &mut Vec<Event>) -> Result<(), String> {
        match self.open.take() {
            Some(s) => self.finish(s, result, out),
            None => Ok(()),
        }
    }

    fn finish(&mut self, s: Started, result: &str, out: &mut Vec<Event>) -> Result<(), String> {
        if matches!(s.call, Call::Other) {
            return Ok(());
        }
        let ret = match parse_result(result)? {
            Outcome::Later => {
                self.pending.insert((s.pid, s.tid), s);
                return Ok(());
            }
            Outcome::Failure => return Ok(()),
            Outcome::Success(v) => v,
        };
        if self.main != Some(s.pid) || self.ended {
            self.skipped += 1;
            return Ok(());
        }
        let name = signature(s.nr).0;
        let ret = || ret.ok_or_else(|| format!("the {name} call succeeded without a result"));
        let ev = match s.call {
            Call::Open { path } => {
                let next = self.paths.len() as u32;
                let f = *self.paths.entry(path).or_insert(next);
                self.fds.insert(ret()?, f);
                None
            }
            Call::Mmap {
                len,
                prot,
                flags,
                fd,
                offset,
            } => {
                if len == 0 {
                    return Err("an mmap of length 0 succeeded (Linux refuses it)".into());
                }
                let kind = if flags & MAP_ANONYMOUS != 0 {
                    MapKind::Anon
                } else {
                    MapKind::File {
                        file: self.file_for_fd(fd),
                        offset,
                    }
                };
                Some(Event::Mmap {
                    pid: PID,
                    addr: VirtAddr(ret()?),
                    len,
                    prot: Prot((prot & 7) as u8),
                    // MAP_SHARED (1) and MAP_SHARED_VALIDATE (3) share.
                    shared: matches!(flags & MAP_TYPE, MAP_SHARED | MAP_SHARED_VALIDATE),
                    kind,
                })
            }
            Call::Munmap { addr, len } => {
                if len == 0 {
                    return Err("a munmap of length 0 succeeded (Linux refuses it)".into());
                }
                Some(Event::Munmap {
                    pid: PID,
                    addr: VirtAddr(addr),
                    len,
                })
            }
            // A zero-length mprotect succeeds and changes nothing.
            Call::Mprotect { len: 0, .. } => None,
            Call::Mprotect { addr, len, prot } => Some(Event::Mprotect {
                pid: PID,
                addr: VirtAddr(addr),
                len,
                prot: Prot((prot & 7) as u8),
            }),
            Call::Brk => Some(Event::Brk {
                pid: PID,
                addr: VirtAddr(ret()?),
            }),
            Call::Clone { flags } => {
                if flags & CLONE_THREAD != 0 {
                    self.unnamed = self.unnamed.saturating_add(1);
                }
                None
            }
            Call::Exit { code } => {
                self.threads.remove(&s.tid);
                if self.threads.is_empty() && self.unnamed == 0 {
                    self.ended = true;
                    Some(Event::Exit { pid: PID, code })
                } else {
                    None
                }
            }
            Call::ExitGroup { code } => {
                self.ended = true;
                Some(Event::Exit { pid: PID, code })
            }
            Call::Other => None,
        };
        if let Some(e) = ev {
            self.events += 1;
            out.push(e);
        }
        Ok(())
    }

    fn file_for_fd(&mut self, fd: u64) -> u32 {
        if let Some(&f) = self.fds.get(&fd) {
            return f;
        }
        // A descriptor opened before tracing started: a file of its own.
        let f = self.paths.len() as u32;
        self.paths.insert(format!("<fd {fd}>"), f);
        self.fds.insert(fd, f);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::VirtAddr;

    fn read(text: &str) -> Result<Vec<Event>, TraceError> {
        let mut r = LackeyReader::new(text.as_bytes(), "lk.txt".into());
        crate::trace::read_batches(|b| r.next_batch(b))
    }

    const SAMPLE: &str = "==1599== Lackey, an example Valgrind tool
==1599== Command: ./t
I  0401ab70,3
 S 1fff000778,8
 L 04222cac,4
 M 0421f6c0,4
SYSCALL[1599,1](12) sys_brk ( 0x0 ) --> [pre-success] Success(0x4035000) 
SYSCALL[1599,1](257) sys_openat ( 4294967196, 0x4835540(/lib/x86_64-linux-gnu/libc.so.6), 524288 ) --> [async] ... 
SYSCALL[1599,1](257) ... [async] --> Success(0x4) 
SYSCALL[1599,1](9) sys_mmap ( 0x486b000, 1400832, 5, 2066, 4, 155648 ) --> [pre-success] Success(0x486b000) 
SYSCALL[1599,1](9) sys_mmap ( 0x0, 8192, 3, 34, 4294967295, 0 ) --> [pre-success] Success(0x4835000) 
SYSCALL[1599,1](21) sys_access ( 0x402a2a0(/etc/ld.so.preload), 4 )[sync] --> Failure(0x2) 
SYSCALL[1599,1](10) sys_mprotect ( 0x4a14000, 16384, 1 )[sync] --> Success(0x0) 
SYSCALL[1599,1](334) unimplemented (by the kernel) syscall: 334! (ni_syscall)
 --> [pre-fail] Failure(0x26) 
SYSCALL[1599,1](11) sys_munmap ( 0x4a2a000, 1048576 )[sync] --> Success(0x0) 
SYSCALL[1599,1](231) exit_group( 0 ) --> [pre-success] Success(0x0) 
==1599== Exit code:       0
";

    #[test]
    fn reads_records_and_memory_syscalls() {
        let ev = read(SAMPLE).unwrap();
        let acc = |kind, va, size| {
            Event::Access(Access {
                pid: PID,
                kind,
                va,
                size,
            })
        };
        assert_eq!(
            ev,
            vec![
                acc(AccessKind::Execute, VirtAddr(0x401ab70), 3),
                acc(AccessKind::Write, VirtAddr(0x1fff000778), 8),
                acc(AccessKind::Read, VirtAddr(0x4222cac), 4),
                acc(AccessKind::Read, VirtAddr(0x421f6c0), 4),
                acc(AccessKind::Write, VirtAddr(0x421f6c0), 4),
                Event::Brk {
                    pid: PID,
                    addr: VirtAddr(0x4035000)
                },
                Event::Mmap {
                    pid: PID,
                    addr: VirtAddr(0x486b000),
                    len: 1400832,
                    prot: Prot::RX,
                    shared: false,
                    kind: MapKind::File {
                        file: 0,
                        offset: 155648
                    }
                },
                Event::Mmap {
                    pid: PID,
                    addr: VirtAddr(0x4835000),
                    len: 8192,
                    prot: Prot::RW,
                    shared: false,
                    kind: MapKind::Anon
                },
                Event::Mprotect {
                    pid: PID,
                    addr: VirtAddr(0x4a14000),
                    len: 16384,
                    prot: Prot::READ
                },
                Event::Munmap {
                    pid: PID,
                    addr: VirtAddr(0x4a2a000),
                    len: 1048576
                },
                Event::Exit { pid: PID, code: 0 },
            ]
        );
    }

    #[test]
    fn a_bad_record_names_its_line() {
        for (log, says) in [
            (
                "I  0401ab70,3\n L zz,4\n",
                "lk.txt: line 2: address `zz` is not a hex number",
            ),
            ("I  0401ab70,0\n", "line 1: access size 0"),
            (
                "I  0401ab70,4294967296\n",
                "access size 4294967296 does not fit in 32 bits",
            ),
            (
                " S 10000000000000000,4\n",
                "address `10000000000000000` does not fit in 64 bits",
            ),
            (" S 1000,-4\n", "access size `-4` is negative"),
            ("hello\n", "`hello` is not a lackey record"),
        ] {
            let e = read(log).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    /// A long record is quoted cut short, not whole.
    #[test]
    fn a_long_bad_record_is_quoted_short() {
        let junk = "x".repeat(4000);
        let e = read(&format!("==1== a\n{junk}\n")).unwrap_err().to_string();
        assert!(e.starts_with("lk.txt: line 2: `xxx"), "{e}");
        assert!(e.contains("…`") && e.len() < 200, "{}", e.len());
    }

    fn exits(ev: &[Event]) -> Vec<(usize, i32)> {
        ev.iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::Exit { code, .. } => Some((i, *code)),
                _ => None,
            })
            .collect()
    }

    /// Valgrind notes a fork on a line of its own; it is no record and no error.
    #[test]
    fn a_fork_note_is_passed_over() {
        let log = "SYSCALL[9,1](57) sys_fork ( ) --> [pre-success] Success(0x10)
  clone(fork): process 9 created child 16
 L 1000,8
SYSCALL[9,1](56) sys_clone ( 1200011, 0x0, 0x0, 0x4a28a10, 0x0 )   clone(fork): process 9 created child 17
 --> [pre-success] Success(0x6715)  --> [pre-success] Success(0x0) 
   clone(fork): process 9 created child 18
 S 2000,8
SYSCALL[9,1](231) exit_group( 0 ) --> [pre-success] Success(0x0)
";
        let ev = read(log).unwrap();
        let accesses = ev.iter().filter(|e| matches!(e, Event::Access(_))).count();
        assert_eq!(accesses, 2, "{ev:?}");
        assert_eq!(exits(&ev), vec![(ev.len() - 1, 0)], "{ev:?}");
    }

    /// A record printed by another thread while a call was under way follows the
    /// call's result on its line, as valgrind writes it after a clone.
    #[test]
    fn a_record_after_a_result_on_the_same_line_is_read() {
        let log = "SYSCALL[9,1](56) sys_clone ( 3d0f00, 0x0, 0x0, 0x0, 0x0 ) --> [pre-success] Success(0x3487) I  0494eb42,3
SYSCALL[9,2](273) sys_set_robust_list ( 0x0, 24 )[sync] --> Success(0x0)  S 2000,8
SYSCALL[9,1](231) exit_group( 0 ) --> [pre-success] Success(0x0)
";
        let ev = read(log).unwrap();
        let kinds: Vec<AccessKind> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Access(a) => Some(a.kind),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, [AccessKind::Execute, AccessKind::Write], "{ev:?}");
        assert_eq!(exits(&ev), vec![(2, 0)], "{ev:?}");
    }

    /// Thread 2 ends with exit (60); the process goes on until exit_group (231).
    #[test]
    fn a_thread_exit_does_not_end_the_process() {
        let log = "==500== Lackey
SYSCALL[500,1](56) sys_clone ( 3d0f00, 0x5a7ffb0, 0x5a809d0, 0x5a80700, 0x5a809d0 ) --> [pre-success] Success(0x1f5)
SYSCALL[500,2](273) sys_set_robust_list ( 0x5a809e0, 24 ) --> [pre-success] Success(0x0)
 L 1000,8
SYSCALL[500,2](60) exit( 0 ) --> [pre-success] Success(0x0)
 S 2000,8
SYSCALL[500,1](11) sys_munmap ( 0x4a2a000, 4096 )[sync] --> Success(0x0)
 L 3000,8
SYSCALL[500,1](231) exit_group( 3 ) --> [pre-success] Success(0x0)
";
        let ev = read(log).unwrap();
        assert_eq!(exits(&ev), vec![(4, 3)], "{ev:?}");
        assert!(matches!(ev[2], Event::Munmap { len: 4096, .. }));
    }

    /// Without exit_group, the process ends when its last thread exits, and not before;
    /// a thread that clone started but no line named yet counts.
    #[test]
    fn the_last_thread_exit_ends_the_process() {
        let log = "SYSCALL[7,1](56) sys_clone ( 3d0f00, 0x0, 0x0, 0x0, 0x0 ) --> [pre-success] Success(0x8)
SYSCALL[7,1](60) exit( 0 ) --> [pre-success] Success(0x0)
 L 1000,8
SYSCALL[7,2](12) sys_brk ( 0x0 ) --> [pre-success] Success(0x4035000)
 L 2000,8
SYSCALL[7,2](60) exit( 9 ) --> [pre-success] Success(0x0)
";
        let ev = read(log).unwrap();
        assert_eq!(exits(&ev), vec![(3, 9)], "{ev:?}");
        // A clone without CLONE_THREAD is a new process, not a thread of this one.
        let log = "SYSCALL[7,1](56) sys_clone ( 1200011, 0x0, 0x0, 0x0, 0x0 ) --> [pre-success] Success(0x8)
SYSCALL[7,1](60) exit( 1 ) --> [pre-success] Success(0x0)
";
        assert_eq!(exits(&read(log).unwrap()), vec![(0, 1)]);
    }

    /// A forked child's calls (another pid in the same log) are not the traced
    /// process's: its exit_group does not end it, its munmap does not unmap its memory.
    #[test]
    fn other_processes_calls_are_skipped() {
        let log = "==40== Lackey
SYSCALL[41,1](11) sys_munmap ( 0x4a2a000, 4096 )[sync] --> Success(0x0)
SYSCALL[41,1](231) exit_group( 0 ) --> [pre-success] Success(0x0)
 L 1000,8
SYSCALL[40,1](231) exit_group( 2 ) --> [pre-success] Success(0x0)
";
        let mut r = LackeyReader::new(log.as_bytes(), "lk".into());
        let mut ev = Vec::new();
        r.next_batch(&mut ev).unwrap();
        assert_eq!(exits(&ev), vec![(1, 2)], "{ev:?}");
        assert_eq!(ev.len(), 2);
        assert_eq!((r.syscalls(), r.skipped_syscalls()), (1, 2));
    }

    #[test]
    fn malformed_syscall_fields_are_errors_naming_the_field() {
        let cases = [
            (
                "SYSCALL[1,1](9) sys_mmap ( 0x0, zz, 3, 34, -1, 0 ) --> [pre-success] Success(0x4835000)",
                "mmap argument 2 (length) `zz` is not a number",
            ),
            (
                "SYSCALL[1,1](11) sys_munmap ( 0x4a2a000 )[sync] --> Success(0x0)",
                "the munmap call has 1 argument(s), not 2 (addr, length)",
            ),
            (
                "SYSCALL[1,1](10) sys_mprotect ( 0x1000, 4096, 1 )[sync] --> Success(0xzz)",
                "the result `0xzz` is not a number",
            ),
            (
                "SYSCALL[1,1](12) sys_brk ( 0x0 ) --> [pre-success] Sucess(0x1)",
                "the result `Sucess(0x1)` is not Success(VALUE) or Failure(ERRNO)",
            ),
            (
                "SYSCALL[1,x](39) sys_getpid() --> [pre-success] Success(0x1)",
                "SYSCALL [PID,TID] `1,x` is not two numbers",
            ),
            (
                "SYSCALL[1,1](nine) sys_mmap ( ) --> Success(0x1)",
                "SYSCALL number `nine` is not a number",
            ),
            (
                "SYSCALL[1,1](257) sys_openat ( -100, 0x4835540, 0 ) --> Success(0x3)",
                "openat argument 2 (path) `0x4835540` is not POINTER(PATH)",
            ),
            (
                "SYSCALL[1,1](231) exit_group( 1x ) --> [pre-success] Success(0x0)",
                "exit_group argument 1 (status) `1x` is not a number",
            ),
            (
                "SYSCALL[1,1](56) sys_clone ( 3q0f00, 0x0, 0x0, 0x0, 0x0 ) --> Success(0x2)",
                "clone argument 1 (flags) `3q0f00` is not a hex number",
            ),
            (
                "SYSCALL[1,1](257) ... [async] --> Success(0x4)",
                "completes an [async] openat call it did not start",
            ),
            (
                "SYSCALL[1,1](9) sys_mmap ( 0x0, 0, 3, 34, -1, 0 ) --> Success(0x4835000)",
                "an mmap of length 0 succeeded",
            ),
        ];
        for (line, want) in cases {
            let e = read(&format!("==1== x\n{line}\n")).unwrap_err().to_string();
            assert!(
                e.starts_with("lk.txt: line 2: ") && e.contains(want),
                "{e}\n{want}"
            );
        }
        // Calls the reader does not interpret are not examined.
        assert!(read("SYSCALL[1,1](39) sys_getpid(zz) --> Success(0x1)\n").is_ok());
    }

    /// Newer valgrind prints mmap's fd as `-1` and a negative exit status as such.
    #[test]
    fn negative_arguments_read_as_valgrind_prints_them() {
        let log = "SYSCALL[1,1](9) sys_mmap ( 0x0, 8192, 3, 34, -1, 0 ) --> [pre-success] Success(0x4835000)
SYSCALL[1,1](10) sys_mprotect ( 0x1000, -9223372036854775808, 1 ) --> Failure(0x16)
SYSCALL[1,1](231) exit_group( -1 ) --> [pre-success] Success(0x0)
";
        let ev = read(log).unwrap();
        assert!(matches!(
            ev[0],
            Event::Mmap {
                kind: MapKind::Anon,
                len: 8192,
                ..
            }
        ));
        assert_eq!(ev[1], Event::Exit { pid: PID, code: -1 });
    }

    /// A call whose result valgrind wrote on a later line (after a message of its own)
    /// takes its result from that line.
    #[test]
    fn a_result_on_its_own_line_completes_the_call() {
        let log = "SYSCALL[1,1](11) sys_munmap ( 0x4a2a000, 4096 )
==1== Warning: something
[sync] --> Success(0x0)
SYSCALL[1,1](11) sys_munmap ( 0x5000, 4096 )
 --> [pre-fail] Failure(0x16)
";
        let ev = read(log).unwrap();
        assert_eq!(
            ev,
            vec![Event::Munmap {
                pid: PID,
                addr: VirtAddr(0x4a2a000),
                len: 4096
            }]
        );
    }

    /// MAP_SHARED_VALIDATE (3) maps shared, as MAP_SHARED (1) does.
    #[test]
    fn shared_validate_maps_shared() {
        let log = "SYSCALL[1,1](9) sys_mmap ( 0x0, 4096, 3, 3, 5, 0 ) --> [pre-success] Success(0x5000)\n";
        assert!(matches!(
            read(log).unwrap()[0],
            Event::Mmap { shared: true, .. }
        ));
    }
}
