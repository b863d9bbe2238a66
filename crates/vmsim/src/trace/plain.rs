//! Traces without OS events that course simulators and cache studies use: `R 0x1234` /
//! `W 0x1234` lines, and libCacheSim's oracleGeneral page streams.
//!
//! Plain lines are an operation (`R` or `r` a load, `W` or `w` a store, `X`, `I` or `i`
//! a fetch) and an address (hex with `0x`, or decimal), optionally followed by a size;
//! `#` starts a comment. Every access belongs to trace pid 1.
//!
//! oracleGeneral records (24 bytes: u32 time, u64 object id, u32 size, i64 next access)
//! become loads of whole pages: the n-th distinct object id is the page at
//! [`ORACLE_BASE`] + n × page size, so any id space fits in the address space.

use super::{
    access_size, number, quote, Access, Event, Location, Records, TraceError, TracePid, BATCH,
};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::policy::ids::{PageIds, MAX_PAGES};
use std::io::BufRead;

/// The trace pid of every record.
pub const PID: TracePid = 1;
/// Where oracleGeneral pages start in the address space.
pub const ORACLE_BASE: u64 = 0x1000_0000;

fn op(word: &str) -> Option<AccessKind> {
    match word {
        "R" | "r" | "L" | "l" => Some(AccessKind::Read),
        "W" | "w" | "S" | "s" => Some(AccessKind::Write),
        "X" | "x" | "I" | "i" => Some(AccessKind::Execute),
        _ => None,
    }
}

/// Whether `word` is the operation of a plain record (`R`, `w`, `L`, `I`, ...).
pub fn is_op(word: &str) -> bool {
    op(word).is_some()
}

/// Reads `R`/`W` lines.
pub struct PlainReader<R> {
    lines: super::CommentedLines<R>,
}

impl<R: BufRead> PlainReader<R> {
    /// A reader over `input`, called `name` in errors.
    pub fn new(input: R, name: String) -> Self {
        PlainReader {
            lines: super::CommentedLines::new(input, name),
        }
    }

    /// Appends up to [`BATCH`] events to `out`.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        self.lines.read_records(out, parse_record)
    }
}

/// Parses one plain record: an operation, an address and optionally a size.
fn parse_record(text: &str) -> Result<Event, String> {
    let mut w = text.split_whitespace();
    let (o, a, s, extra) = (w.next().unwrap_or(""), w.next(), w.next(), w.next());
    let kind = op(o).ok_or_else(|| {
        let hint = if super::text::is_keyword(o) {
            " (a vmsim text record? name the format with --format vmsim-text)"
        } else {
            ""
        };
        format!(
            "operation {} is not R, W or X (nor r, w, L, S, I){hint}",
            quote(o)
        )
    })?;
    let a = a.ok_or_else(|| format!("the address is missing: {} needs one after it", quote(o)))?;
    let va = number("address", a)?;
    let size = match s {
        None => 1,
        Some(s) => access_size(s)?,
    };
    if let Some(x) = extra {
        return Err(format!(
            "{} follows the size; a plain record is an operation, an address and a size",
            quote(x)
        ));
    }
    Ok(Event::Access(Access {
        pid: PID,
        kind,
        va: VirtAddr(va),
        size,
    }))
}

/// Reads oracleGeneral records as page loads.
pub struct OracleReader<R> {
    records: Records<R>,
    page_size: u64,
    ids: PageIds,
    keys: Vec<u64>,
    dense: Vec<u32>,
}

impl<R: BufRead> OracleReader<R> {
    /// A reader over `input` (decompressed), called `name` in errors.
    pub fn new(input: R, name: String, page_size: u64) -> Self {
        OracleReader {
            records: Records::new(input, name),
            page_size,
            ids: PageIds::new(),
            keys: Vec::with_capacity(BATCH),
            dense: Vec::with_capacity(BATCH),
        }
    }

    /// Appends up to [`BATCH`] events to `out`.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        const R: usize = crate::policy::trace::ORACLE_RECORD;
        let mut rec = [0u8; R];
        self.keys.clear();
        while self.keys.len() + out.len() < BATCH {
            if !self.records.next(&mut rec, "oracleGeneral record")? {
                break;
            }
            self.keys
                .push(u64::from_le_bytes(rec[4..12].try_into().unwrap_or([0; 8])));
        }
        // Dense ids for a batch at once, so that the table's lookups overlap.
        self.dense.clear();
        if let Err(i) = self.ids.map(&self.keys, &mut self.dense) {
            return Err(TraceError::at(
                self.records.name(),
                Location::Byte(self.records.offset() - ((self.keys.len() - i) * R) as u64),
                format!("more than {MAX_PAGES} distinct objects"),
            ));
        }
        out.extend(self.dense.iter().map(|&d| {
            Event::Access(Access {
                pid: PID,
                kind: AccessKind::Read,
                va: VirtAddr(ORACLE_BASE + d as u64 * self.page_size),
                size: 1,
            })
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::VirtAddr;

    #[test]
    fn plain_lines_and_their_errors() {
        let text = "# a course trace\nR 0x1000\nw 4096 8\n\nI 0x400000\n";
        let mut r = PlainReader::new(text.as_bytes(), "p.txt".into());
        let mut out = Vec::new();
        r.next_batch(&mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[1],
            Event::Access(Access {
                pid: PID,
                kind: AccessKind::Write,
                va: VirtAddr(4096),
                size: 8
            })
        );
        let mut r = PlainReader::new("R 0x10\nQ 0x20\n".as_bytes(), "p.txt".into());
        let e = r.next_batch(&mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("p.txt: line 2") && e.contains("`Q`"), "{e}");
    }

    /// Each bad field is named, with its line.
    #[test]
    fn errors_name_the_line_and_the_field() {
        let err = |text: &str| {
            let mut r = PlainReader::new(text.as_bytes(), "p.txt".into());
            r.next_batch(&mut Vec::new()).unwrap_err().to_string()
        };
        let cases = [
            (
                "R 0x1\nR\n",
                "p.txt: line 2: the address is missing: `R` needs one",
            ),
            ("R 0xzz\n", "p.txt: line 1: address `0xzz` is not a number"),
            ("W -4096\n", "line 1: address `-4096` is negative"),
            (
                "W 99999999999999999999\n",
                "`99999999999999999999` does not fit in 64 bits",
            ),
            ("R 0x10 0\n", "line 1: access size 0"),
            (
                "R 0x10 4294967296\n",
                "access size 4294967296 does not fit in 32 bits",
            ),
            ("R 0x10 8 9\n", "line 1: `9` follows the size"),
            (
                "spawn 1\n",
                "operation `spawn` is not R, W or X (nor r, w, L, S, I) (a vmsim text",
            ),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains(want), "{e}\n{want}");
        }
    }

    #[test]
    fn oracle_ids_become_dense_pages() {
        let mut bytes = Vec::new();
        for id in [900u64, 5, 900] {
            bytes.extend_from_slice(&1u32.to_le_bytes());
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.extend_from_slice(&4096u32.to_le_bytes());
            bytes.extend_from_slice(&(-1i64).to_le_bytes());
        }
        let mut r = OracleReader::new(&bytes[..], "o".into(), 4096);
        let mut out = Vec::new();
        r.next_batch(&mut out).unwrap();
        let vas: Vec<u64> = out
            .iter()
            .map(|e| match e {
                Event::Access(a) => a.va.0,
                _ => 0,
            })
            .collect();
        assert_eq!(vas, vec![ORACLE_BASE, ORACLE_BASE + 4096, ORACLE_BASE]);
        let mut r = OracleReader::new(&bytes[..30], "o".into(), 4096);
        let e = r.next_batch(&mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("o: byte 24"), "{e}");
    }
}
