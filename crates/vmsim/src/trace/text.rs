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

use super::{access_size, number, quote, Access, Event, MapKind, TraceError, TracePid};
use crate::addr::VirtAddr;
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

fn pid(words: &[&str], i: usize) -> Result<TracePid, String> {
    let n = num(words, i, "the pid")?;
    TracePid::try_from(n).map_err(|_| format!("pid {n} does not fit in 32 bits"))
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
            let code = match w.get(2) {
                None => 0,
                Some(c) => c
                    .parse::<i32>()
                    .map_err(|_| format!("exit code {} is not a 32-bit integer", quote(c)))?,
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
            for opt in w.iter().skip(5) {
                if *opt == "shared" {
                    shared = true;
                } else if *opt == "private" {
                    shared = false;
                } else if let Some(f) = opt.strip_prefix("file=") {
                    let (id, off) = f.split_once('@').unwrap_or((f, "0"));
                    let file = number("file number", id)?;
                    let file = u32::try_from(file)
                        .map_err(|_| format!("file number {file} does not fit in 32 bits"))?;
                    let offset = number("file offset", off)?;
                    kind = MapKind::File { file, offset };
                } else {
                    return Err(format!(
                        "mmap option {} is not `shared`, `private` or `file=N[@OFFSET]`",
                        quote(opt)
                    ));
                }
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
                "{} is not a record (R, W, X, spawn, mmap, munmap, mprotect, brk, fork, exec, \
                 exit, switch, shm)",
                quote(other)
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
            assert!(e.contains("…`") && e.len() < 200, "{e}");
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
