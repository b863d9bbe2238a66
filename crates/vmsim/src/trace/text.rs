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
//! Addresses and sizes are decimal or `0x` hex; lengths also take units (`4KiB`).

use super::{Access, Event, MapKind, TraceError, TracePid};
use crate::addr::parse_u64;
use crate::hw::AccessKind;
use crate::os::Prot;
use std::io::{BufRead, Write};

/// The first line the writer emits (and detection recognises).
pub const HEADER: &str = "#vmsim-text";

const KEYWORDS: [&str; 13] = [
    "spawn", "mmap", "munmap", "mprotect", "brk", "fork", "exec", "exit", "switch", "shm", "R",
    "W", "X",
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

fn num(words: &[&str], i: usize, what: &str) -> Result<u64, String> {
    let w = words
        .get(i)
        .ok_or_else(|| format!("`{}` needs {what}", words[0]))?;
    parse_u64(w).ok_or_else(|| format!("{what} `{w}` is not a number (decimal or 0x hex)"))
}

fn len(words: &[&str], i: usize) -> Result<u64, String> {
    let w = words
        .get(i)
        .ok_or_else(|| format!("`{}` needs a length", words[0]))?;
    let n = crate::size::parse_size(w).map_err(|e| format!("length: {e}"))?;
    if n == 0 {
        return Err("a length of 0".into());
    }
    Ok(n)
}

fn pid(words: &[&str], i: usize) -> Result<TracePid, String> {
    let n = num(words, i, "a pid")?;
    TracePid::try_from(n).map_err(|_| format!("pid {n} does not fit in 32 bits"))
}

fn prot(words: &[&str], i: usize) -> Result<Prot, String> {
    let w = words
        .get(i)
        .ok_or_else(|| format!("`{}` needs a protection (rwx, r--, none)", words[0]))?;
    Prot::parse(w).ok_or_else(|| format!("protection `{w}` is not rwx-style (rw-, r-x, none)"))
}

fn at_most(words: &[&str], n: usize) -> Result<(), String> {
    if words.len() > n {
        return Err(format!(
            "`{}` takes {} fields; `{}` is one too many",
            words[0],
            n - 1,
            words[n]
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
            let size = match w.get(3) {
                None => 1,
                Some(_) => {
                    let s = num(w, 3, "a size")?;
                    u32::try_from(s)
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| format!("access size {s} is not between 1 and 2^32-1"))?
                }
            };
            Event::Access(Access {
                pid: pid(w, 1)?,
                kind,
                va: num(w, 2, "an address")?,
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
            let code = match w.get(2) {
                None => 0,
                Some(c) => c
                    .parse::<i32>()
                    .map_err(|_| format!("exit code `{c}` is not a 32-bit integer"))?,
            };
            Event::Exit {
                pid: pid(w, 1)?,
                code,
            }
        }
        "fork" => {
            at_most(w, 3)?;
            Event::Fork {
                parent: pid(w, 1)?,
                child: pid(w, 2)?,
            }
        }
        "brk" => {
            at_most(w, 3)?;
            Event::Brk {
                pid: pid(w, 1)?,
                addr: num(w, 2, "an address")?,
            }
        }
        "munmap" => {
            at_most(w, 4)?;
            Event::Munmap {
                pid: pid(w, 1)?,
                addr: num(w, 2, "an address")?,
                len: len(w, 3)?,
            }
        }
        "mprotect" => {
            at_most(w, 5)?;
            Event::Mprotect {
                pid: pid(w, 1)?,
                addr: num(w, 2, "an address")?,
                len: len(w, 3)?,
                prot: prot(w, 4)?,
            }
        }
        "shm" => {
            at_most(w, 6)?;
            let key = num(w, 2, "a key")?;
            Event::ShmAttach {
                pid: pid(w, 1)?,
                key: u32::try_from(key).map_err(|_| format!("key {key} does not fit in 32 bits"))?,
                addr: num(w, 3, "an address")?,
                len: len(w, 4)?,
                prot: prot(w, 5)?,
            }
        }
        "mmap" => {
            let mut shared = false;
            let mut kind = MapKind::Anon;
            for opt in w.iter().skip(5) {
                if *opt == "shared" {
                    shared = true;
                } else if *opt == "private" {
                    shared = false;
                } else if let Some(f) = opt.strip_prefix("file=") {
                    let (id, off) = f.split_once('@').unwrap_or((f, "0"));
                    let file = parse_u64(id)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| format!("file number `{id}` is not a 32-bit number"))?;
                    let offset = parse_u64(off)
                        .ok_or_else(|| format!("file offset `{off}` is not a number"))?;
                    kind = MapKind::File { file, offset };
                } else {
                    return Err(format!(
                        "mmap option `{opt}` is not `shared`, `private` or `file=N[@OFFSET]`"
                    ));
                }
            }
            Event::Mmap {
                pid: pid(w, 1)?,
                addr: num(w, 2, "an address")?,
                len: len(w, 3)?,
                prot: prot(w, 4)?,
                shared,
                kind,
            }
        }
        other => {
            return Err(format!(
                "`{other}` is not a record (R, W, X, spawn, mmap, munmap, mprotect, brk, fork, exec, exit, switch, shm)"
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
            if let MapKind::File { file, offset } = kind {
                s.push_str(&format!(" file={file}@{offset:#x}"));
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

    fn read(text: &str) -> Result<Vec<Event>, TraceError> {
        let mut r = TextReader::new(text.as_bytes(), "t.vmt".into());
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
        assert_eq!(
            events[2],
            Event::Mmap {
                pid: 1,
                addr: 0x20000,
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
                va: 0x10008,
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
