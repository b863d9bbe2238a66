//! Page-reference streams for replacement-only simulation: reading them (text, one page
//! number per line; libCacheSim's oracleGeneral binary records; either xz-compressed)
//! and compacting the page numbers to dense ids so that policies index plain arrays.

use rustc_hash::FxHashMap;
use std::io::Read;
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
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The xz stream is corrupt.
    #[error("{path}: not a valid xz stream: {reason}")]
    Xz {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A text line is not a page number.
    #[error("{path}:{line}: `{text}` is not a page number (decimal or 0x hex)")]
    BadLine {
        /// The file.
        path: String,
        /// Its line, from 1.
        line: usize,
        /// The line's text.
        text: String,
    },
    /// A binary trace ends inside a record.
    #[error("{path}: {len} bytes is not a whole number of {ORACLE_RECORD}-byte oracleGeneral records (the last one starts at byte {last})")]
    Truncated {
        /// The file.
        path: String,
        /// Its length.
        len: usize,
        /// Where the partial record starts.
        last: usize,
    },
    /// More distinct pages than a dense id can name.
    #[error("{path}: more than {max} distinct pages")]
    TooManyPages {
        /// The file.
        path: String,
        /// The most supported.
        max: u32,
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
        let mut b = Builder::default();
        for p in pages {
            b.push(p);
        }
        b.trace
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

    /// Reads a trace file in `format` (guessed from the name and contents when `None`);
    /// a name ending in `.xz` is decompressed first.
    pub fn read(path: &Path, format: Option<PageFormat>) -> Result<PageTrace, TraceError> {
        let name = path.display().to_string();
        let io = |source| TraceError::Io {
            path: name.clone(),
            source,
        };
        let mut raw = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut raw))
            .map_err(io)?;
        let stem = name.strip_suffix(".xz");
        if stem.is_some() {
            let mut out = Vec::new();
            lzma_rs::xz_decompress(&mut &raw[..], &mut out).map_err(|e| TraceError::Xz {
                path: name.clone(),
                reason: e.to_string(),
            })?;
            raw = out;
        }
        let base = stem.unwrap_or(&name);
        let format = format.unwrap_or_else(|| guess_format(base, &raw));
        match format {
            PageFormat::Text => parse_text(&raw, &name),
            PageFormat::OracleGeneral => parse_oracle(&raw, &name),
        }
    }
}

/// Binary if the name says so (`.bin`, `oracleGeneral`) or the start holds a NUL byte.
pub fn guess_format(name: &str, data: &[u8]) -> PageFormat {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".bin") || lower.contains("oraclegeneral") {
        return PageFormat::OracleGeneral;
    }
    if data.iter().take(4096).any(|&b| b == 0) {
        PageFormat::OracleGeneral
    } else {
        PageFormat::Text
    }
}

#[derive(Default)]
struct Builder {
    ids: FxHashMap<u64, u32>,
    trace: PageTrace,
}

impl Builder {
    #[inline]
    fn push(&mut self, page: u64) -> bool {
        let next = self.trace.pages.len() as u32;
        if next == u32::MAX {
            return false;
        }
        let id = *self.ids.entry(page).or_insert(next);
        if id == next {
            self.trace.pages.push(page);
        }
        self.trace.refs.push(id);
        true
    }
}

/// Parses the text format: one page number per line, decimal or `0x` hex, `#` comments
/// (whole lines or after the number), blank lines ignored.
pub fn parse_text(data: &[u8], path: &str) -> Result<PageTrace, TraceError> {
    let mut b = Builder::default();
    for (i, line) in data.split(|&c| c == b'\n').enumerate() {
        let text = match line.iter().position(|&c| c == b'#') {
            Some(h) => &line[..h],
            None => line,
        };
        let text = trim(text);
        if text.is_empty() {
            continue;
        }
        let Some(page) = std::str::from_utf8(text).ok().and_then(parse_page) else {
            let shown = String::from_utf8_lossy(trim(line));
            let shown: String = shown.chars().take(80).collect();
            return Err(TraceError::BadLine {
                path: path.to_string(),
                line: i + 1,
                text: shown,
            });
        };
        if b.trace.refs.len() == u32::MAX as usize {
            return Err(TraceError::TooLong {
                path: path.to_string(),
                max: u32::MAX,
            });
        }
        if !b.push(page) {
            return Err(TraceError::TooManyPages {
                path: path.to_string(),
                max: u32::MAX - 1,
            });
        }
    }
    Ok(b.trace)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn parse_page(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses oracleGeneral records; only the object id (the page number) is used (the next
/// access field is recomputed when needed, so a trace from elsewhere cannot mislead OPT).
pub fn parse_oracle(data: &[u8], path: &str) -> Result<PageTrace, TraceError> {
    if data.len() % ORACLE_RECORD != 0 {
        return Err(TraceError::Truncated {
            path: path.to_string(),
            len: data.len(),
            last: data.len() / ORACLE_RECORD * ORACLE_RECORD,
        });
    }
    if data.len() / ORACLE_RECORD >= u32::MAX as usize {
        return Err(TraceError::TooLong {
            path: path.to_string(),
            max: u32::MAX,
        });
    }
    let mut b = Builder::default();
    b.trace.refs.reserve(data.len() / ORACLE_RECORD);
    for rec in data.chunks_exact(ORACLE_RECORD) {
        let mut id = [0u8; 8];
        id.copy_from_slice(&rec[4..12]);
        if !b.push(u64::from_le_bytes(id)) {
            return Err(TraceError::TooManyPages {
                path: path.to_string(),
                max: u32::MAX - 1,
            });
        }
    }
    Ok(b.trace)
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
        assert!(e.to_string().contains("`-5`"));
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
