//! Page-reference streams for replacement-only simulation: reading them (text, one page
//! number per line; libCacheSim's oracleGeneral binary records; either compressed with
//! gzip, xz or zstd, told by magic bytes) and compacting the page numbers to dense ids
//! so that policies index plain arrays.
//!
//! Files are streamed a block at a time ([`PageStream`]), never slurped; text lines
//! are read by the event traces' [`LineReader`](crate::trace::LineReader), so a line
//! holds at most [`MAX_LINE`](crate::trace::MAX_LINE) bytes.

use super::ids::{PageIds, MAX_PAGES};
use crate::trace::{number_problem, quote, LineReader, Location, NumberProblem};
use std::io::BufRead;
use std::path::Path;
use thiserror::Error;

/// Bytes of one oracleGeneral record: u32 time, u64 object id, u32 size, i64 next access.
pub const ORACLE_RECORD: usize = 24;

/// "Never referenced again", in [`PageTrace::next_use`].
pub const NEVER: u32 = u32::MAX;

/// How a page trace is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFormat {
    /// One page number per line, decimal or `0x` hex; `#` starts a comment.
    Text,
    /// libCacheSim's oracleGeneral: packed little-endian 24-byte records.
    OracleGeneral,
}

/// Why a page trace could not be read.
#[derive(Debug, Error)]
pub enum TraceError {
    /// The file could not be opened, decompressed or read, or a text line is too long
    /// or not UTF-8 (the error names the file and the line).
    #[error(transparent)]
    Read(#[from] crate::trace::TraceError),
    /// A text line is not a page number.
    #[error("{path}:{line}: {text} is not a page number {why}")]
    BadLine {
        /// The file.
        path: String,
        /// Its line, from 1.
        line: u64,
        /// The line's text, quoted and cut short as [`crate::trace::quote`] does.
        text: String,
        /// What is wrong: `(decimal or 0x hex)`, `(it is negative)`, ...
        why: &'static str,
    },
    /// A binary trace ends inside a record.
    #[error("{path}: {len} bytes is not a whole number of {ORACLE_RECORD}-byte oracleGeneral records (the last one starts at byte {last})")]
    Truncated {
        /// The file.
        path: String,
        /// Its length (decompressed).
        len: u64,
        /// Where the partial record starts.
        last: u64,
    },
    /// More distinct pages than a dense id can name.
    #[error("{path}: more than {max} distinct pages")]
    TooManyPages {
        /// The file.
        path: String,
        /// The most supported.
        max: u32,
    },
    /// More distinct pages than a policy keeps at the frames asked for.
    #[error("{path}: more than {max} distinct pages, more than {policy} keeps above {frames} frames (ask for {frames} frames or fewer)")]
    TooManyPagesFor {
        /// The file.
        path: String,
        /// The most distinct pages the policy keeps at those frames.
        max: usize,
        /// The policy.
        policy: String,
        /// The most frames it keeps with any number of pages.
        frames: usize,
    },
    /// A trace of more references than the simulator indexes.
    #[error("{path}: more than {max} references")]
    TooLong {
        /// The file.
        path: String,
        /// The most supported.
        max: u32,
    },
}

/// A page-reference stream with dense page ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageTrace {
    /// The references, as dense ids `0..nr_pages`.
    pub refs: Vec<u32>,
    /// The page number each dense id stands for.
    pub pages: Vec<u64>,
}

impl PageTrace {
    /// A trace of the page numbers `pages`, in order.
    pub fn from_pages(pages: impl IntoIterator<Item = u64>) -> PageTrace {
        let mut ids = PageIds::new();
        let refs = pages
            .into_iter()
            .map(|p| ids.id(p).expect("fewer than 2^32 - 1 distinct pages"))
            .collect();
        PageTrace {
            refs,
            pages: ids.into_pages(),
        }
    }

    /// Number of distinct pages.
    pub fn nr_pages(&self) -> usize {
        self.pages.len()
    }

    /// Number of references.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// For each reference, the index of the next reference to the same page ([`NEVER`]
    /// if none): the future that OPT looks into.
    pub fn next_use(&self) -> Vec<u32> {
        let mut next = vec![NEVER; self.refs.len()];
        let mut seen = vec![NEVER; self.pages.len()];
        for (t, &p) in self.refs.iter().enumerate().rev() {
            next[t] = seen[p as usize];
            seen[p as usize] = t as u32;
        }
        next
    }

    /// For each reference, one more than the index of the previous reference to the
    /// same page, 0 for a page's first (see [`prev_uses`]).
    pub fn prev_use(&self) -> Vec<u32> {
        let mut last = vec![0; self.pages.len()];
        let mut prev = Vec::with_capacity(self.refs.len());
        prev_uses(&self.refs, 0, &mut last, &mut prev);
        prev
    }

    /// Reads a trace file in `format` (guessed from the name and contents when `None`),
    /// undoing its gzip, xz or zstd compression (told by magic bytes) as it streams.
    pub fn read(path: &Path, format: Option<PageFormat>) -> Result<PageTrace, TraceError> {
        PageStream::open(path, format)?.collect()
    }
}

/// Appends to `prev`, for each of `refs` (the ids of the references from index `t0`
/// on), one more than the index of the previous reference to the same page, 0 for a
/// page's first. `last` holds, by id (and at least as many as `refs` name), one more
/// than the index of each page's latest reference so far (0: none), and is brought up
/// to date. What LRU tells a hit by (`lru.rs`), for a trace read whole; a stream's
/// reader keeps each page's latest use beside its id instead
/// ([`PageIds::map_with_prev`]), so that the thread running the policy reads the
/// uses in order rather than looking pages up.
pub fn prev_uses(refs: &[u32], t0: u64, last: &mut [u32], prev: &mut Vec<u32>) {
    prev.reserve(refs.len());
    for (i, &p) in refs.iter().enumerate() {
        if let Some(&ahead) = refs.get(i + PREV_AHEAD) {
            crate::hw::ram::prefetch_at(last, ahead as usize);
        }
        // Streams stop before 2^32 - 1 references, so the index plus one fits.
        let now = (t0 + i as u64 + 1) as u32;
        prev.push(std::mem::replace(&mut last[p as usize], now));
    }
}

/// How many references ahead [`prev_uses`] prefetches a page's latest use.
const PREV_AHEAD: usize = 16;

/// References a [`PageStream`] reads at a time.
pub const BLOCK: usize = 1 << 16;

/// A page trace read a block of references at a time, its page numbers turned into
/// dense ids as they come ([`PageIds`]): what a run that needs no more than the past
/// reads, so that it holds a block, not the trace.
pub struct PageStream<R> {
    source: Source<R>,
    ids: PageIds,
    keys: Vec<u64>,
    refs: u64,
    path: String,
}

enum Source<R> {
    Text(LineReader<R>),
    Oracle {
        input: R,
        /// The first `held` bytes of a record the reader's buffer split.
        buf: Vec<u8>,
        held: usize,
        /// Where `buf[0]` is in the (decompressed) file: the bytes of whole records
        /// taken so far.
        offset: u64,
    },
}

impl PageStream<Box<dyn BufRead + Send>> {
    /// Opens a trace file in `format` (guessed from the name and contents when `None`),
    /// undoing its gzip, xz or zstd compression (told by magic bytes) as it streams.
    pub fn open(path: &Path, format: Option<PageFormat>) -> Result<Self, TraceError> {
        let name = path.display().to_string();
        let mut input = crate::trace::open_decompressed(path)?;
        let format = match format {
            Some(f) => f,
            None => {
                let head = input
                    .fill_buf()
                    .map_err(|e| crate::trace::TraceError::read_at(&name, Location::Byte(0), e))?;
                guess_format(&name, head)
            }
        };
        Ok(PageStream::new(input, format, &name))
    }
}

impl<R: BufRead> PageStream<R> {
    /// A stream of `input`, in `format`, called `path` in errors.
    pub fn new(input: R, format: PageFormat, path: &str) -> Self {
        let source = match format {
            PageFormat::Text => Source::Text(LineReader::new(input, path.to_string())),
            PageFormat::OracleGeneral => Source::Oracle {
                input,
                buf: vec![0; ORACLE_RECORD],
                held: 0,
                offset: 0,
            },
        };
        PageStream {
            source,
            ids: PageIds::new(),
            keys: Vec::with_capacity(BLOCK),
            refs: 0,
            path: path.to_string(),
        }
    }

    /// The name the stream's errors give it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Distinct pages so far.
    pub fn nr_pages(&self) -> usize {
        self.ids.len()
    }

    /// References so far.
    pub fn len(&self) -> u64 {
        self.refs
    }

    /// Whether no reference has been read.
    pub fn is_empty(&self) -> bool {
        self.refs == 0
    }

    /// Appends the ids of the next block of references (at most [`BLOCK`]) to `out`;
    /// `false` at the end of the trace.
    pub fn next_block(&mut self, out: &mut Vec<u32>) -> Result<bool, TraceError> {
        self.read_block(out, None)
    }

    /// [`PageStream::next_block`], and each reference's previous use appended to
    /// `prev` (see [`prev_uses`]). A stream read with it must be read with it from its
    /// start.
    pub fn next_block_with_prev(
        &mut self,
        out: &mut Vec<u32>,
        prev: &mut Vec<u32>,
    ) -> Result<bool, TraceError> {
        self.read_block(out, Some(prev))
    }

    fn read_block(
        &mut self,
        out: &mut Vec<u32>,
        prev: Option<&mut Vec<u32>>,
    ) -> Result<bool, TraceError> {
        self.keys.clear();
        match &mut self.source {
            Source::Text(lines) => read_text_block(lines, &self.path, &mut self.keys)?,
            Source::Oracle {
                input,
                buf,
                held,
                offset,
            } => read_oracle_block(input, buf, held, offset, &self.path, &mut self.keys)?,
        }
        if self.keys.is_empty() {
            return Ok(false);
        }
        if self.refs + self.keys.len() as u64 > u32::MAX as u64 {
            return Err(TraceError::TooLong {
                path: self.path.clone(),
                max: u32::MAX,
            });
        }
        let mapped = match prev {
            Some(prev) => self.ids.map_with_prev(&self.keys, self.refs, out, prev),
            None => self.ids.map(&self.keys, out),
        };
        if let Err(i) = mapped {
            self.refs += i as u64;
            return Err(TraceError::TooManyPages {
                path: self.path.clone(),
                max: MAX_PAGES as u32,
            });
        }
        self.refs += self.keys.len() as u64;
        Ok(true)
    }

    /// The rest of the stream, read whole.
    pub fn collect(mut self) -> Result<PageTrace, TraceError> {
        let mut refs = Vec::new();
        while self.next_block(&mut refs)? {}
        Ok(PageTrace {
            refs,
            pages: self.ids.into_pages(),
        })
    }

    /// The whole stream read from its start, with [`PageTrace::next_use`]: while the
    /// stream is [read ahead](PageStream::read_ahead), this thread puts the blocks
    /// together and makes each reference the next use of its page's previous one,
    /// instead of a pass backwards over the trace once it is read.
    pub fn collect_with_next_use(self) -> Result<(PageTrace, Vec<u32>), TraceError>
    where
        R: Send,
    {
        let (mut refs, mut next) = (Vec::new(), Vec::new());
        let (_, pages) = self.read_ahead(true, |ids, prev, _| {
            let t0 = refs.len();
            refs.extend_from_slice(ids);
            next.resize(refs.len(), NEVER);
            for (i, &p) in prev.iter().enumerate() {
                if p > 0 {
                    next[p as usize - 1] = (t0 + i) as u32;
                }
            }
        })?;
        Ok((PageTrace { refs, pages }, next))
    }

    /// Reads the stream from its start on a second thread, which may run up to
    /// [`READ_AHEAD_BLOCKS`] blocks ahead, and calls `block(ids, prevs, pages)` on this
    /// one for each block in order: its pages' ids, their previous uses if `with_prev`
    /// (else nothing), and the distinct pages so far. Gives the number of references
    /// and each id's page number.
    pub fn read_ahead(
        mut self,
        with_prev: bool,
        mut block: impl FnMut(&[u32], &[u32], usize),
    ) -> Result<(u64, Vec<u64>), TraceError>
    where
        R: Send,
    {
        use std::sync::mpsc;
        let (full, blocks) = mpsc::sync_channel::<(Vec<u32>, Vec<u32>, usize)>(READ_AHEAD_BLOCKS);
        let (empty, spare) = mpsc::channel::<(Vec<u32>, Vec<u32>)>();
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || -> Result<(u64, Vec<u64>), TraceError> {
                loop {
                    let (mut ids, mut prev) = spare.try_recv().unwrap_or_default();
                    ids.clear();
                    prev.clear();
                    let more = if with_prev {
                        self.next_block_with_prev(&mut ids, &mut prev)?
                    } else {
                        self.next_block(&mut ids)?
                    };
                    if !more || full.send((ids, prev, self.nr_pages())).is_err() {
                        return Ok((self.refs, self.ids.into_pages()));
                    }
                }
            });
            for (ids, prev, pages) in blocks {
                block(&ids, &prev, pages);
                let _ = empty.send((ids, prev));
            }
            reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// Blocks a [`PageStream::read_ahead`] reader may hold ready: a million references
/// (4 MiB of ids), so that it can double its id table (tens of milliseconds on a
/// million pages) while the thread it reads for goes on with what it read before.
pub const READ_AHEAD_BLOCKS: usize = (1 << 20) / BLOCK;

/// Reads up to [`BLOCK`] page numbers of the text format into `keys`.
fn read_text_block(
    lines: &mut LineReader<impl BufRead>,
    path: &str,
    keys: &mut Vec<u64>,
) -> Result<(), TraceError> {
    while keys.len() < BLOCK {
        let Some(line) = lines.next_line()? else {
            break;
        };
        let text = line.text.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let Some(page) = crate::addr::parse_u64(text) else {
            return Err(TraceError::BadLine {
                path: path.to_string(),
                line: line.number,
                text: quote(text),
                why: match number_problem(text, 10) {
                    NumberProblem::Negative => "(it is negative)",
                    NumberProblem::TooLarge => "(it does not fit in 64 bits)",
                    _ => "(decimal or 0x hex)",
                },
            });
        };
        keys.push(page);
    }
    Ok(())
}

/// Reads up to [`BLOCK`] oracleGeneral records and puts their object ids in `keys`; a
/// partial record is kept in `buf` for the next call, and is an error at the end of the
/// input. The records are taken where the reader buffered them (`fill_buf`), not
/// copied out first: a second copy of every byte of the trace cost the reading
/// thread as much as the kernel's.
fn read_oracle_block(
    input: &mut impl BufRead,
    buf: &mut [u8],
    held: &mut usize,
    offset: &mut u64,
    path: &str,
    keys: &mut Vec<u64>,
) -> Result<(), TraceError> {
    while keys.len() < BLOCK {
        let data = match input.fill_buf() {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(crate::trace::TraceError::read_at(
                    path,
                    Location::Byte(*offset + *held as u64),
                    e,
                )
                .into())
            }
        };
        if data.is_empty() {
            if *held > 0 && keys.is_empty() {
                return Err(TraceError::Truncated {
                    path: path.to_string(),
                    len: *offset + *held as u64,
                    last: *offset,
                });
            }
            break;
        }
        if *held > 0 || data.len() < ORACLE_RECORD {
            // A record split between two fills: gather it in `buf`.
            let take = (ORACLE_RECORD - *held).min(data.len());
            buf[*held..*held + take].copy_from_slice(&data[..take]);
            input.consume(take);
            *held += take;
            if *held == ORACLE_RECORD {
                keys.push(oracle_id(&buf[..ORACLE_RECORD]));
                *held = 0;
                *offset += ORACLE_RECORD as u64;
            }
            continue;
        }
        let whole = (data.len() / ORACLE_RECORD).min(BLOCK - keys.len()) * ORACLE_RECORD;
        keys.extend(data[..whole].chunks_exact(ORACLE_RECORD).map(oracle_id));
        input.consume(whole);
        *offset += whole as u64;
    }
    Ok(())
}

/// Binary if the name says so (`.bin`, `oracleGeneral`, also before a `.gz`, `.xz` or
/// `.zst` ending) or the start holds a NUL byte.
pub fn guess_format(name: &str, data: &[u8]) -> PageFormat {
    let lower = name.to_ascii_lowercase();
    let base = [".xz", ".gz", ".zst", ".zstd"]
        .iter()
        .find_map(|ext| lower.strip_suffix(ext))
        .unwrap_or(&lower);
    if base.ends_with(".bin") || base.contains("oraclegeneral") {
        return PageFormat::OracleGeneral;
    }
    if data.iter().take(4096).any(|&b| b == 0) {
        PageFormat::OracleGeneral
    } else {
        PageFormat::Text
    }
}

/// Parses the text format: one page number per line, decimal or `0x` hex, `#` comments
/// (whole lines or after the number), blank lines ignored.
pub fn parse_text(data: &[u8], path: &str) -> Result<PageTrace, TraceError> {
    read_text(data, path)
}

/// [`parse_text`] of a stream, read line by line.
pub fn read_text(input: impl BufRead, path: &str) -> Result<PageTrace, TraceError> {
    PageStream::new(input, PageFormat::Text, path).collect()
}

/// [`parse_oracle`] of a stream, read a block of records at a time.
pub fn read_oracle(input: impl BufRead, path: &str) -> Result<PageTrace, TraceError> {
    PageStream::new(input, PageFormat::OracleGeneral, path).collect()
}

/// The object id of an oracleGeneral record.
fn oracle_id(rec: &[u8]) -> u64 {
    let mut id = [0u8; 8];
    id.copy_from_slice(&rec[4..12]);
    u64::from_le_bytes(id)
}

/// Parses oracleGeneral records; only the object id (the page number) is used (the next
/// access field is recomputed when needed, so a trace from elsewhere cannot mislead OPT).
pub fn parse_oracle(data: &[u8], path: &str) -> Result<PageTrace, TraceError> {
    read_oracle(data, path)
}

/// Writes `trace` as oracleGeneral records (time from 1, size 4096, next access 1-based,
/// -1 for none), as libCacheSim's `traceConv` does.
pub fn write_oracle(trace: &PageTrace) -> Vec<u8> {
    let next = trace.next_use();
    let mut out = Vec::with_capacity(trace.len() * ORACLE_RECORD);
    for (t, &p) in trace.refs.iter().enumerate() {
        out.extend_from_slice(&(t as u32 + 1).to_le_bytes());
        out.extend_from_slice(&trace.pages[p as usize].to_le_bytes());
        out.extend_from_slice(&4096u32.to_le_bytes());
        let n = if next[t] == NEVER {
            -1i64
        } else {
            next[t] as i64 + 1
        };
        out.extend_from_slice(&n.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_takes_decimal_hex_and_comments() {
        let t = parse_text(b"# a trace\n1\n0x10 # hex\n\n  1  \n16\n", "t").unwrap();
        assert_eq!(t.refs, [0, 1, 0, 1]);
        assert_eq!(t.pages, [1, 16]);
        assert_eq!(t.next_use(), [2, 3, NEVER, NEVER]);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_text(b"1\n2\nthree\n", "pages.txt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "pages.txt:3: `three` is not a page number (decimal or 0x hex)"
        );
        let e = parse_text(b"0x\n", "p").unwrap_err();
        assert!(e.to_string().contains("p:1: `0x`"));
        let e = parse_text(b"-5\n", "p").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p:1: `-5` is not a page number (it is negative)"
        );
        let e = parse_text(b"1\n99999999999999999999\n", "p").unwrap_err();
        assert!(
            e.to_string().ends_with("(it does not fit in 64 bits)"),
            "{e}"
        );
        // A long bad line is quoted cut short.
        let long = format!("1\n{}\n", "z".repeat(4000));
        let e = parse_text(long.as_bytes(), "p").unwrap_err().to_string();
        assert!(
            e.starts_with("p:2: `zzz") && e.contains("…`") && e.len() < 200,
            "{e}"
        );
    }

    /// oracleGeneral records are read out of the reader's buffer whatever its size: a
    /// buffer smaller than a record, one that splits records between fills, and one
    /// larger than a block all give every id in order, and a trailing partial record
    /// is an error that says where it starts.
    #[test]
    fn oracle_records_come_whole_through_any_buffer() {
        let n = BLOCK as u64 + 1000;
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.extend_from_slice(&(i as u32).to_le_bytes());
            bytes.extend_from_slice(&(i % 777 + 5).to_le_bytes());
            bytes.extend_from_slice(&[0; 12]);
        }
        let want: Vec<u64> = (0..n).map(|i| i % 777 + 5).collect();
        for cap in [7, 50, 4096, 1 << 20] {
            let input = std::io::BufReader::with_capacity(cap, &bytes[..]);
            let t = read_oracle(input, "o.bin").unwrap();
            let got: Vec<u64> = t.refs.iter().map(|&r| t.pages[r as usize]).collect();
            assert_eq!(got, want, "buffer of {cap}");
            let mut cut = bytes.clone();
            cut.extend_from_slice(&[1; 10]);
            let input = std::io::BufReader::with_capacity(cap, &cut[..]);
            let e = read_oracle(input, "o.bin").unwrap_err().to_string();
            let (len, last) = (24 * n + 10, 24 * n);
            assert_eq!(
                e,
                format!("o.bin: {len} bytes is not a whole number of 24-byte oracleGeneral records (the last one starts at byte {last})"),
                "buffer of {cap}"
            );
        }
    }

    /// Text page streams are read by the shared line reader: a line longer than the
    /// limit is an error after reading no more than the limit, even from an endless
    /// line.
    #[test]
    fn an_endless_line_is_refused() {
        let input = std::io::BufReader::new(std::io::repeat(b'7'));
        let e = read_text(input, "/dev/sevens").unwrap_err().to_string();
        assert!(
            e.starts_with("/dev/sevens: line 1: the line is longer than 4096 bytes"),
            "{e}"
        );
        let e = parse_text(b"1\n\xff\n", "p").unwrap_err().to_string();
        assert!(
            e.starts_with("p: line 2: byte 0xff at column 1 is not UTF-8"),
            "{e}"
        );
    }

    /// Files are decompressed by their magic bytes, whatever their names.
    #[test]
    fn compressed_files_are_told_by_magic() {
        use std::io::Write;
        // Not `trace/pages.rs`'s folder: the two tests run side by side.
        let dir = std::env::temp_dir().join(format!("vmsim-policy-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"5\n7\n5\n").unwrap();
        let f = dir.join("pages.txt");
        std::fs::write(&f, gz.finish().unwrap()).unwrap();
        let t = PageTrace::read(&f, None).unwrap();
        assert_eq!((t.refs, t.pages), (vec![0, 1, 0], vec![5, 7]));
        let bin = write_oracle(&PageTrace::from_pages([9, 8, 9]));
        let f = dir.join("pages.bin.zst");
        std::fs::write(&f, zstd::encode_all(&bin[..], 1).unwrap()).unwrap();
        assert_eq!(PageTrace::read(&f, None).unwrap().pages, [9, 8]);
        std::fs::write(&f, zstd::encode_all(&bin[..40], 1).unwrap()).unwrap();
        let e = PageTrace::read(&f, None).unwrap_err().to_string();
        assert!(
            e.contains("40 bytes") && e.contains("starts at byte 24"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oracle_general_round_trips_and_rejects_partial_records() {
        let t = PageTrace::from_pages([5, 7, 5, 9, 7]);
        let bin = write_oracle(&t);
        assert_eq!(bin.len(), 5 * ORACLE_RECORD);
        // Next access of the first reference (page 5) is the third: 1-based 3.
        assert_eq!(i64::from_le_bytes(bin[16..24].try_into().unwrap()), 3);
        assert_eq!(parse_oracle(&bin, "b").unwrap(), t);
        let e = parse_oracle(&bin[..50], "b.bin").unwrap_err();
        assert!(e.to_string().contains("starts at byte 48"), "{e}");
        assert_eq!(guess_format("x.txt", &bin), PageFormat::OracleGeneral);
        assert_eq!(guess_format("x.txt", b"1\n2\n"), PageFormat::Text);
    }
}
