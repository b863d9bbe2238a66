//! ChampSim's instruction traces: packed 64-byte `input_instr` records (usually
//! xz-compressed, `*.champsimtrace.xz`).
//!
//! ```text
//! u64 ip; u8 is_branch; u8 branch_taken; u8 destination_registers[2];
//! u8 source_registers[4]; u64 destination_memory[2]; u64 source_memory[4];
//! ```
//!
//! Each record becomes an instruction fetch at `ip` (4 bytes: the format does not
//! record lengths), then a load for each non-zero source address and a store for each
//! non-zero destination address (8 bytes each), all for trace pid 1.

use super::{Access, Event, Records, TraceError, TracePid, BATCH};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use std::io::BufRead;

/// Bytes of one record.
pub const RECORD: usize = 64;
/// The trace pid of every record.
pub const PID: TracePid = 1;

/// Reads ChampSim records.
pub struct ChampSimReader<R> {
    records: Records<R>,
}

impl<R: BufRead> ChampSimReader<R> {
    /// A reader over `input` (decompressed), called `name` in errors.
    pub fn new(input: R, name: String) -> Self {
        ChampSimReader {
            records: Records::new(input, name),
        }
    }

    /// Appends the events of up to [`BATCH`] / 7 records to `out`.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        let mut rec = [0u8; RECORD];
        while out.len() + 7 <= BATCH {
            if !self.records.next(&mut rec, "record")? {
                return Ok(());
            }
            let word = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().unwrap_or([0; 8]));
            let push = |out: &mut Vec<Event>, kind, va, size| {
                out.push(Event::Access(Access {
                    pid: PID,
                    kind,
                    va,
                    size,
                }))
            };
            push(out, AccessKind::Execute, VirtAddr(word(0)), 4);
            for i in 0..4 {
                let va = word(32 + 8 * i);
                if va != 0 {
                    push(out, AccessKind::Read, VirtAddr(va), 8);
                }
            }
            for i in 0..2 {
                let va = word(16 + 8 * i);
                if va != 0 {
                    push(out, AccessKind::Write, VirtAddr(va), 8);
                }
            }
        }
        Ok(())
    }
}

/// Encodes one record (for tests and sample files): `ip`, loads, stores.
pub fn encode(ip: u64, loads: &[u64], stores: &[u64]) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[0..8].copy_from_slice(&ip.to_le_bytes());
    for (i, &a) in stores.iter().take(2).enumerate() {
        r[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    for (i, &a) in loads.iter().take(4).enumerate() {
        r[32 + 8 * i..40 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fetches_loads_and_stores_and_rejects_a_cut_record() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&encode(0x400000, &[0x1000, 0x2000], &[0x3000]));
        bytes.extend_from_slice(&encode(0x400004, &[], &[]));
        let mut r = ChampSimReader::new(&bytes[..], "t.champsim".into());
        let mut out = Vec::new();
        r.next_batch(&mut out).unwrap();
        let kinds: Vec<(AccessKind, u64)> = out
            .iter()
            .map(|e| match e {
                Event::Access(a) => (a.kind, a.va.0),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (AccessKind::Execute, 0x400000),
                (AccessKind::Read, 0x1000),
                (AccessKind::Read, 0x2000),
                (AccessKind::Write, 0x3000),
                (AccessKind::Execute, 0x400004),
            ]
        );
        let mut r = ChampSimReader::new(&bytes[..100], "t.champsim".into());
        let e = r.next_batch(&mut Vec::new()).unwrap_err().to_string();
        assert!(
            e.contains("t.champsim: byte 64") && e.contains("36 bytes into"),
            "{e}"
        );
    }
}
