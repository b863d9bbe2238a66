//! valgrind lackey's memory trace (`valgrind --tool=lackey --trace-mem=yes`), with the
//! memory system calls that `--trace-syscalls=yes` adds to the same log.
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
//! store of the same bytes). Addresses are hex without `0x`. Every record belongs to
//! trace pid 1 (lackey traces one process). Of the system calls, `mmap`, `munmap`,
//! `mprotect`, `brk` and `exit_group` become OS events when they succeed; `openat`
//! results number the files that `mmap` maps (one number per path). Valgrind's own
//! `==pid==` and `--pid--` lines and other system calls are skipped.

use super::{Access, Event, Location, MapKind, TraceError, TracePid, BATCH};
use crate::addr::parse_u64;
use crate::hw::AccessKind;
use crate::os::Prot;
use rustc_hash::FxHashMap;
use std::io::BufRead;

/// The trace pid of every lackey record.
pub const PID: TracePid = 1;

/// Whether `line` is a lackey access record.
pub fn is_record(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 3 && matches!(&b[..3], b"I  " | b" L " | b" S " | b" M ") && line[3..].contains(',')
}

/// A system call waiting for its result (`[async]`).
#[derive(Clone, Debug)]
struct Pending {
    nr: u32,
    args: Vec<String>,
}

/// Reads lackey output.
pub struct LackeyReader<R> {
    input: R,
    name: String,
    line: String,
    lineno: u64,
    pending: FxHashMap<String, Pending>,
    /// Open file descriptors → file numbers.
    fds: FxHashMap<u64, u32>,
    /// Paths → file numbers.
    paths: FxHashMap<String, u32>,
    syscalls: u64,
}

fn access(kind: AccessKind, rest: &str) -> Result<Access, String> {
    let (a, s) = rest
        .trim()
        .split_once(',')
        .ok_or_else(|| format!("`{rest}` is not ADDRESS,SIZE"))?;
    let va = u64::from_str_radix(a, 16).map_err(|_| format!("address `{a}` is not hex"))?;
    let size: u32 = s
        .trim()
        .parse()
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| format!("size `{s}` is not a positive number"))?;
    Ok(Access {
        pid: PID,
        kind,
        va,
        size,
    })
}

impl<R: BufRead> LackeyReader<R> {
    /// A reader over `input`, called `name` in errors.
    pub fn new(input: R, name: String) -> Self {
        LackeyReader {
            input,
            name,
            line: String::new(),
            lineno: 0,
            pending: FxHashMap::default(),
            fds: FxHashMap::default(),
            paths: FxHashMap::default(),
            syscalls: 0,
        }
    }

    /// Memory system calls turned into events so far.
    pub fn syscalls(&self) -> u64 {
        self.syscalls
    }

    /// Appends up to [`BATCH`] events to `out`.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        while out.len() < BATCH {
            self.line.clear();
            let n = self
                .input
                .read_line(&mut self.line)
                .map_err(|e| TraceError::io(&self.name, e))?;
            if n == 0 {
                return Ok(());
            }
            self.lineno += 1;
            let at = Location::Line(self.lineno);
            let line = self.line.trim_end_matches(['\n', '\r']);
            let b = line.as_bytes();
            let r = if b.len() > 3 && &b[..3] == b"I  " {
                access(AccessKind::Execute, &line[3..]).map(|a| out.push(Event::Access(a)))
            } else if b.len() > 3 && &b[..3] == b" L " {
                access(AccessKind::Read, &line[3..]).map(|a| out.push(Event::Access(a)))
            } else if b.len() > 3 && &b[..3] == b" S " {
                access(AccessKind::Write, &line[3..]).map(|a| out.push(Event::Access(a)))
            } else if b.len() > 3 && &b[..3] == b" M " {
                access(AccessKind::Read, &line[3..]).map(|a| {
                    out.push(Event::Access(a));
                    out.push(Event::Access(Access {
                        kind: AccessKind::Write,
                        ..a
                    }));
                })
            } else if let Some(rest) = line.strip_prefix("SYSCALL[") {
                let rest = rest.to_string();
                self.syscall(&rest, out)
            } else if line.starts_with("==")
                || line.starts_with("--")
                || line.starts_with(" -->")
                || line.starts_with("**")
                || line.trim().is_empty()
            {
                Ok(())
            } else {
                Err(format!(
                    "`{}` is not a lackey record (I, L, S, M), a SYSCALL line or a valgrind message",
                    super::truncate(line, 60)
                ))
            };
            r.map_err(|reason| TraceError::at(&self.name, at, reason))?;
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

    /// `rest` follows `SYSCALL[`: `pid,tid](nr) sys_name ( args ) ... --> result`.
    fn syscall(&mut self, rest: &str, out: &mut Vec<Event>) -> Result<(), String> {
        let bad = || {
            format!(
                "`SYSCALL[{}` is not a valgrind syscall line",
                super::truncate(rest, 60)
            )
        };
        let (who, rest) = rest.split_once(']').ok_or_else(bad)?;
        let rest = rest.strip_prefix('(').ok_or_else(bad)?;
        let (nr, rest) = rest.split_once(')').ok_or_else(bad)?;
        let nr: u32 = nr.parse().map_err(|_| bad())?;
        let result = rest.rsplit_once("--> ").map(|(_, r)| r.trim());
        let call = rest.split_once("-->").map_or(rest, |(c, _)| c).trim();
        let pending = if call.starts_with("...") {
            // The completion of an [async] call: its arguments came earlier.
            match self.pending.remove(who) {
                Some(p) if p.nr == nr => p,
                _ => return Ok(()),
            }
        } else {
            let args = match (call.find('('), call.rfind(')')) {
                (Some(a), Some(b)) if a < b => call[a + 1..b]
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect(),
                _ => Vec::new(),
            };
            Pending { nr, args }
        };
        let Some(result) = result else {
            return Ok(());
        };
        if result.starts_with("[async]") || result.ends_with("...") {
            self.pending.insert(who.to_string(), pending);
            return Ok(());
        }
        let Some(ret) = result
            .split_once("Success(")
            .and_then(|(_, r)| r.split_once(')'))
            .and_then(|(v, _)| parse_u64(v))
        else {
            return Ok(()); // a failure, or a result this reader does not need
        };
        let arg = |i: usize| -> Result<u64, String> {
            let a = pending
                .args
                .get(i)
                .ok_or_else(|| format!("syscall {nr} has no argument {i}"))?;
            // `0x4034bb0(/path)`: the pointer, then what it points to.
            let a = a.split('(').next().unwrap_or(a);
            parse_u64(a).ok_or_else(|| format!("syscall {nr}: argument `{a}` is not a number"))
        };
        let ev = match pending.nr {
            // openat: remember which path the descriptor names.
            257 | 2 => {
                let idx = if pending.nr == 257 { 1 } else { 0 };
                if let Some(path) = pending
                    .args
                    .get(idx)
                    .and_then(|a| a.split_once('('))
                    .map(|(_, p)| p.trim_end_matches(')').to_string())
                {
                    let next = self.paths.len() as u32;
                    let f = *self.paths.entry(path).or_insert(next);
                    self.fds.insert(ret, f);
                }
                None
            }
            9 => {
                let (len, prot, flags, fd, off) = (arg(1)?, arg(2)?, arg(3)?, arg(4)?, arg(5)?);
                let kind = if flags & 0x20 != 0 {
                    MapKind::Anon
                } else {
                    MapKind::File {
                        file: self.file_for_fd(fd),
                        offset: off,
                    }
                };
                Some(Event::Mmap {
                    pid: PID,
                    addr: ret,
                    len,
                    prot: Prot((prot & 7) as u8),
                    shared: flags & 3 == 1,
                    kind,
                })
            }
            11 => Some(Event::Munmap {
                pid: PID,
                addr: arg(0)?,
                len: arg(1)?,
            }),
            10 => Some(Event::Mprotect {
                pid: PID,
                addr: arg(0)?,
                len: arg(1)?,
                prot: Prot((arg(2)? & 7) as u8),
            }),
            12 => Some(Event::Brk {
                pid: PID,
                addr: ret,
            }),
            231 | 60 => Some(Event::Exit {
                pid: PID,
                code: arg(0)? as i32,
            }),
            _ => None,
        };
        if let Some(e) = ev {
            // Zero-length calls fail in Linux; a trace keeps only what took effect.
            if !matches!(
                e,
                Event::Munmap { len: 0, .. } | Event::Mprotect { len: 0, .. }
            ) {
                self.syscalls += 1;
                out.push(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Event>, TraceError> {
        let mut r = LackeyReader::new(text.as_bytes(), "lk.txt".into());
        let mut all = Vec::new();
        loop {
            let mut b = Vec::new();
            r.next_batch(&mut b)?;
            if b.is_empty() {
                return Ok(all);
            }
            all.extend(b);
        }
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
                acc(AccessKind::Execute, 0x401ab70, 3),
                acc(AccessKind::Write, 0x1fff000778, 8),
                acc(AccessKind::Read, 0x4222cac, 4),
                acc(AccessKind::Read, 0x421f6c0, 4),
                acc(AccessKind::Write, 0x421f6c0, 4),
                Event::Brk {
                    pid: PID,
                    addr: 0x4035000
                },
                Event::Mmap {
                    pid: PID,
                    addr: 0x486b000,
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
                    addr: 0x4835000,
                    len: 8192,
                    prot: Prot::RW,
                    shared: false,
                    kind: MapKind::Anon
                },
                Event::Mprotect {
                    pid: PID,
                    addr: 0x4a14000,
                    len: 16384,
                    prot: Prot::READ
                },
                Event::Munmap {
                    pid: PID,
                    addr: 0x4a2a000,
                    len: 1048576
                },
                Event::Exit { pid: PID, code: 0 },
            ]
        );
    }

    #[test]
    fn a_bad_record_names_its_line() {
        let e = read("I  0401ab70,3\n L zz,4\n").unwrap_err().to_string();
        assert!(e.contains("lk.txt: line 2") && e.contains("`zz`"), "{e}");
        let e = read("I  0401ab70,0\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("size `0`"), "{e}");
        let e = read("hello\n").unwrap_err().to_string();
        assert!(e.contains("`hello` is not a lackey record"), "{e}");
    }
}
