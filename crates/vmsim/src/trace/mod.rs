//! Events in, events out: the event model every trace format maps to, readers and
//! writers for the formats, format detection, and the synthetic workload generators.
//!
//! A trace is a sequence of [`Event`]s: memory accesses of a process, and the OS
//! events (spawn, mmap, fork, ...) that shape its address space. Readers fill a
//! caller's buffer in batches ([`EventReader::next_batch`]), so a replay loop touches
//! no allocator per event; formats are detected from magic bytes and names
//! ([`Format::detect`]).

pub mod binary;
pub mod champsim;
pub mod lackey;
pub mod plain;
pub mod stat;
pub mod synth;
pub mod text;

use crate::hw::AccessKind;
use crate::os::Prot;
use std::io::{BufRead, BufReader};
use std::path::Path;
use thiserror::Error;

/// A process as a trace names it (the recording's pid, or any number a scenario picks).
pub type TracePid = u32;

/// One memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Who.
    pub pid: TracePid,
    /// Load, store or instruction fetch.
    pub kind: AccessKind,
    /// The virtual address.
    pub va: u64,
    /// Bytes (1 when a format does not say).
    pub size: u32,
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
        addr: u64,
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
        addr: u64,
        /// Bytes.
        len: u64,
    },
    /// `mprotect`.
    Mprotect {
        /// Who.
        pid: TracePid,
        /// Start.
        addr: u64,
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
        addr: u64,
    },
    /// `fork`.
    Fork {
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
        addr: u64,
        /// Bytes.
        len: u64,
        /// Protection.
        prot: Prot,
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
            | Event::ShmAttach { pid, .. } => pid,
            Event::Fork { parent, .. } => parent,
        }
    }
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
    #[error("{path}: cannot tell the trace format ({reason}); name it with --format")]
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
    /// are told by their first meaningful line: valgrind's `==pid==` banner or a lackey
    /// record, a vmsim keyword, or `R`/`W` followed by one address (plain; vmsim text
    /// puts a pid before the address, and plain addresses with more fields are `0x` hex).
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
        let text = match std::str::from_utf8(head) {
            Ok(t) => t,
            // A cut in the middle of a UTF-8 sequence at the end of the sample.
            Err(e) if e.valid_up_to() + 4 >= head.len() => {
                std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
            }
            Err(_) => return Err("binary data without a vmsim magic number".into()),
        };
        for line in text.lines() {
            if line.starts_with("==") || line.starts_with("--") {
                return Ok(Format::Lackey);
            }
            if line.starts_with(text::HEADER) {
                return Ok(Format::Text);
            }
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if lackey::is_record(line) {
                return Ok(Format::Lackey);
            }
            let words: Vec<&str> = l.split_whitespace().take(4).collect();
            // `R 0x10` and `R 0x10 8` are plain; `R 1 0x10` is vmsim text (a pid first).
            let access = matches!(words[0], "R" | "W" | "X");
            let plain_like = words.len() == 2 || words.get(1).is_some_and(|w| w.starts_with("0x"));
            if text::is_keyword(words[0]) && !(access && plain_like) {
                return Ok(Format::Text);
            }
            if plain::is_record(&words) {
                return Ok(Format::Plain);
            }
            return Err(format!("the first record is `{}`", truncate(l, 60)));
        }
        Err("it holds no records".into())
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
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

/// Opens `path` and undoes its compression (told by magic bytes).
pub fn open_decompressed(path: &Path) -> Result<Box<dyn BufRead + Send>, TraceError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| TraceError::io(&name, e))?;
    let mut raw = BufReader::with_capacity(1 << 16, file);
    let head = raw
        .fill_buf()
        .map_err(|e| TraceError::io(&name, e))?
        .to_vec();
    Ok(match Compression::detect(&head) {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        Compression::Xz => Box::new(BufReader::with_capacity(
            1 << 16,
            xz2::bufread::XzDecoder::new_multi_decoder(raw),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 16,
            zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| TraceError::io(&name, e))?,
        )),
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
                let head = input.fill_buf().map_err(|e| TraceError::io(&name, e))?;
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
        let mut all = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            self.next_batch(&mut batch)?;
            if batch.is_empty() {
                return Ok(all);
            }
            all.extend_from_slice(&batch);
        }
    }
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
    pub fn write(&mut self, e: &Event) -> Result<(), TraceError> {
        match self {
            EventWriter::Text(w) => w.write(e),
            EventWriter::Binary(w) => w.write(e),
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
    let mut batch = Vec::with_capacity(BATCH);
    let mut n = 0;
    loop {
        reader.next_batch(&mut batch)?;
        if batch.is_empty() {
            return Ok(n);
        }
        for e in &batch {
            writer.write(e)?;
        }
        n += batch.len() as u64;
    }
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
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        reader.next_batch(&mut batch)?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            let Event::Access(a) = e else { continue };
            if pid.is_some_and(|p| p != a.pid) {
                continue;
            }
            let first = a.va >> shift;
            let last = a.va.saturating_add(a.size.max(1) as u64 - 1) >> shift;
            for page in first..=last {
                // Process in the top 12 bits: pages of different processes differ.
                pages.push((a.pid as u64) << 52 ^ page);
            }
        }
    }
    Ok(crate::policy::PageTrace::from_pages(pages))
}

/// Line-oriented input where `#` starts a comment and blank lines are skipped: the
/// reading loop that vmsim text and plain traces share.
pub(crate) struct CommentedLines<R> {
    input: R,
    name: String,
    line: String,
    lineno: u64,
}

impl<R: BufRead> CommentedLines<R> {
    pub(crate) fn new(input: R, name: String) -> Self {
        CommentedLines {
            input,
            name,
            line: String::new(),
            lineno: 0,
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
            self.line.clear();
            let n = self
                .input
                .read_line(&mut self.line)
                .map_err(|e| TraceError::io(&self.name, e))?;
            if n == 0 {
                return Ok(());
            }
            self.lineno += 1;
            let text = self.line.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            let e = parse(text)
                .map_err(|r| TraceError::at(&self.name, Location::Line(self.lineno), r))?;
            out.push(e);
        }
        Ok(())
    }
}
