//! vmsim's binary trace format: compact, streamed in chunks, optionally zstd-compressed.
//!
//! ```text
//! header  "VMSIMTRC"  u16 version (2)  u16 flags (bit 0: chunks are zstd frames)  u32 0
//! chunk   u32 raw_len  u32 stored_len  u32 nr_events  stored_len bytes
//! ...
//! end     a chunk header of three zeros
//! ```
//!
//! All integers are little-endian. A chunk's records decode on their own: the delta
//! state (previous address and pid) starts at zero in each chunk. A record starts with
//! a tag byte; bits 0–1 are the kind (0 load, 1 store, 2 fetch, 3 OS event).
//!
//! - An access: bit 2 says a new pid follows (LEB128 varint); bits 3–7 are the size
//!   (0: a varint size follows); then the address as a zigzag varint delta from the
//!   previous access's address.
//! - An OS event: bits 2–7 are its type (0 spawn, 1 mmap, 2 munmap, 3 mprotect, 4 brk,
//!   5 fork, 6 exec, 7 exit, 8 switch, 9 shm attach; from version 2 also 10 thread,
//!   11 thread exit, 12 exec image, 13 mremap, 14 madvise, 15 shm detach, 16 syscall,
//!   17 thp disable, 18 vfork, 19 read, 20 file readahead, 21 nonzero, 22 values,
//!   23 file size, 24 write, 25 file cached, 26 sleep, 27 populate, 28 mlock (mode 0
//!   unlock, 1 lock, 2 on fault), 29 mlockall, 30 file shmem, 31 file drop, 32
//!   fadvise, 33 file-system metadata, 34 read into a buffer: 19's fields and the
//!   buffer's address), then its fields as varints in the order of
//!   [`super::Event`]'s fields; exit codes are zigzag varints, booleans 0 or 1;
//!   protections are one byte (`r`=1, `w`=2, `x`=4; for mmap also 8: shared, 16: a
//!   file number and offset follow).
//!
//! Version 2 only adds event types: the writer writes version 2, and the reader reads
//! versions 1 and 2 (a version-1 trace holding a type of version 2 is malformed).
//!
//! Decoding reuses its buffers: no allocation per record or per chunk once warm.

use super::{read_exact_or, Access, Event, Location, MapKind, TraceError, BATCH};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::{Mlock, Prot};
use std::io::{BufRead, Write};

/// The first eight bytes of a vmsim binary trace.
pub const MAGIC: [u8; 8] = *b"VMSIMTRC";
/// The version this build writes (it reads this one and every earlier one).
pub const VERSION: u16 = 2;
/// The first OS event type of version 2 (the types below it are version 1's).
const FIRST_V2_TYPE: u8 = 10;
/// Flag: chunk payloads are zstd frames.
pub const FLAG_ZSTD: u16 = 1;
/// Bytes of raw records per chunk the writer aims for.
pub const CHUNK: usize = 256 << 10;
/// The largest chunk a reader accepts (guards against corrupt lengths).
pub const MAX_CHUNK: usize = 64 << 20;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The varint at the start of `b` and its length in bytes, if it ends within `b` and
/// within 10 bytes (64 bits).
#[inline(always)]
fn varint_in(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().take(10).enumerate() {
        v |= ((x & 0x7f) as u64) << (7 * i);
        if x < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Writes the binary format.
pub struct BinaryWriter<W: Write> {
    out: W,
    name: String,
    buf: Vec<u8>,
    packed: Vec<u8>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    nr: u32,
    prev_va: u64,
    prev_pid: u32,
}

impl<W: Write> BinaryWriter<W> {
    /// A writer to `out` (`name` in errors), compressing chunks with zstd when asked.
    pub fn new(mut out: W, name: &str, zstd: bool) -> Result<Self, TraceError> {
        let io = |e| TraceError::io(name, e);
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(if zstd { FLAG_ZSTD } else { 0 }).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        out.write_all(&header).map_err(io)?;
        let zstd = if zstd {
            Some(zstd::bulk::Compressor::new(1).map_err(io)?)
        } else {
            None
        };
        Ok(BinaryWriter {
            out,
            name: name.to_string(),
            buf: Vec::with_capacity(CHUNK + 64),
            packed: Vec::new(),
            zstd,
            nr: 0,
            prev_va: 0,
            prev_pid: 0,
        })
    }

    /// Writes one access (the hot path of [`BinaryWriter::write`], kept small so callers
    /// can inline it).
    #[inline]
    pub fn write_access(&mut self, a: Access) -> Result<(), TraceError> {
        let b = &mut self.buf;
        let mut tag = a.kind as u8;
        if a.pid != self.prev_pid {
            tag |= 4;
        }
        if (1..32).contains(&a.size) {
            tag |= (a.size as u8) << 3;
        }
        b.push(tag);
        if a.pid != self.prev_pid {
            put_varint(b, a.pid as u64);
            self.prev_pid = a.pid;
        }
        if !(1..32).contains(&a.size) {
            put_varint(b, a.size as u64);
        }
        put_varint(b, zigzag(a.va.0.wrapping_sub(self.prev_va) as i64));
        self.prev_va = a.va.0;
        self.nr += 1;
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }

    /// Writes one event.
    pub fn write(&mut self, e: &Event) -> Result<(), TraceError> {
        let b = &mut self.buf;
        match *e {
            Event::Access(a) => return self.write_access(a),
            Event::Spawn { pid } => os(b, 0, &[pid as u64]),
            Event::Mmap {
                pid,
                addr,
                len,
                prot,
                shared,
                kind,
            } => {
                os(b, 1, &[pid as u64, addr.0, len]);
                let mut p = prot.0 & 7;
                if shared {
                    p |= 8;
                }
                match kind {
                    MapKind::File { .. } => p |= 16,
                    MapKind::HugeTlb { noreserve, .. } => p |= 32 | if noreserve { 64 } else { 0 },
                    MapKind::Anon => {}
                }
                b.push(p);
                match kind {
                    MapKind::File { file, offset } => {
                        put_varint(b, file as u64);
                        put_varint(b, offset);
                    }
                    MapKind::HugeTlb { page_bytes, .. } => {
                        put_varint(b, u64::from(page_bytes.trailing_zeros()));
                    }
                    MapKind::Anon => {}
                }
            }
            Event::Munmap { pid, addr, len } => os(b, 2, &[pid as u64, addr.0, len]),
            Event::Mprotect {
                pid,
                addr,
                len,
                prot,
            } => {
                os(b, 3, &[pid as u64, addr.0, len]);
                b.push(prot.0 & 7);
            }
            Event::Brk { pid, addr } => os(b, 4, &[pid as u64, addr.0]),
            Event::Fork { parent, child } => os(b, 5, &[parent as u64, child as u64]),
            Event::Vfork { parent, child } => os(b, 18, &[parent as u64, child as u64]),
            Event::FileRead {
                pid,
                file,
                offset,
                len,
                buf,
            } => match buf {
                None => os(b, 19, &[pid as u64, file as u64, offset, len]),
                Some(buf) => os(b, 34, &[pid as u64, file as u64, offset, len, buf.0]),
            },
            Event::FileWrite {
                pid,
                file,
                offset,
                len,
            } => os(b, 24, &[pid as u64, file as u64, offset, len]),
            Event::FileReadahead { pid, file, bytes } => {
                os(b, 20, &[pid as u64, file as u64, bytes])
            }
            Event::Fadvise {
                pid,
                file,
                offset,
                len,
                advice,
            } => os(
                b,
                32,
                &[pid as u64, file as u64, offset, len, advice as u64],
            ),
            Event::FileSize { pid, file, bytes } => os(b, 23, &[pid as u64, file as u64, bytes]),
            Event::FileCached {
                pid,
                file,
                offset,
                len,
            } => os(b, 25, &[pid as u64, file as u64, offset, len]),
            Event::Nonzero { pid, addr } => os(b, 21, &[pid as u64, addr.0]),
            Event::Values { pid } => os(b, 22, &[pid as u64]),
            Event::Exec { pid } => os(b, 6, &[pid as u64]),
            Event::Exit { pid, code } => os(b, 7, &[pid as u64, zigzag(code as i64)]),
            Event::Switch { pid } => os(b, 8, &[pid as u64]),
            Event::ShmAttach {
                pid,
                key,
                addr,
                len,
                prot,
            } => {
                os(b, 9, &[pid as u64, key as u64, addr.0, len]);
                b.push(prot.0 & 7);
            }
            Event::Thread { pid, tid } => os(b, 10, &[pid as u64, tid as u64]),
            Event::ThreadExit { pid, tid, code } => {
                os(b, 11, &[pid as u64, tid as u64, zigzag(code as i64)])
            }
            Event::ExecImage { pid } => os(b, 12, &[pid as u64]),
            Event::Mremap {
                pid,
                old,
                old_len,
                new,
                new_len,
            } => os(b, 13, &[pid as u64, old.0, old_len, new.0, new_len]),
            Event::Madvise {
                pid,
                addr,
                len,
                advice,
            } => os(b, 14, &[pid as u64, addr.0, len, advice as u64]),
            Event::ShmDetach { pid, addr } => os(b, 15, &[pid as u64, addr.0]),
            Event::Syscall { pid, nr } => os(b, 16, &[pid as u64, nr as u64]),
            Event::ThpDisable { pid, disable } => os(b, 17, &[pid as u64, disable as u64]),
            Event::Sleep { pid, ns } => os(b, 26, &[pid as u64, ns]),
            Event::FsMetadata { pid, pages } => os(b, 33, &[pid as u64, pages]),
            Event::Populate { pid, addr, len } => os(b, 27, &[pid as u64, addr.0, len]),
            Event::Mlock {
                pid,
                addr,
                len,
                mode,
            } => os(b, 28, &[pid as u64, addr.0, len, mode.code()]),
            Event::Mlockall { pid, flags } => os(b, 29, &[pid as u64, flags as u64]),
            Event::FileShmem { pid, file } => os(b, 30, &[pid as u64, file as u64]),
            Event::FileDrop { pid, file } => os(b, 31, &[pid as u64, file as u64]),
        }
        self.nr += 1;
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), TraceError> {
        if self.nr == 0 {
            return Ok(());
        }
        let name = &self.name;
        let io = |e| TraceError::io(name, e);
        let stored: &[u8] = match &mut self.zstd {
            None => &self.buf,
            Some(c) => {
                self.packed.clear();
                self.packed
                    .reserve(zstd::zstd_safe::compress_bound(self.buf.len()));
                c.compress_to_buffer(&self.buf, &mut self.packed)
                    .map_err(io)?;
                &self.packed
            }
        };
        let mut h = [0u8; 12];
        h[0..4].copy_from_slice(&(self.buf.len() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        h[8..12].copy_from_slice(&self.nr.to_le_bytes());
        self.out.write_all(&h).map_err(io)?;
        self.out.write_all(stored).map_err(io)?;
        self.buf.clear();
        self.nr = 0;
        self.prev_va = 0;
        self.prev_pid = 0;
        Ok(())
    }

    /// Writes the last chunk and the end marker, returning the output.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.flush_chunk()?;
        let name = self.name.clone();
        self.out
            .write_all(&[0u8; 12])
            .and_then(|_| self.out.flush())
            .map_err(|e| TraceError::io(&name, e))?;
        Ok(self.out)
    }
}

fn os(b: &mut Vec<u8>, kind: u8, fields: &[u64]) {
    b.push(3 | (kind << 2));
    for &f in fields {
        put_varint(b, f);
    }
}

/// Reads the binary format.
pub struct BinaryReader<R> {
    input: R,
    name: String,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    stored: Vec<u8>,
    raw: Vec<u8>,
    pos: usize,
    /// Events the current chunk promises and has given.
    promised: u32,
    given: u32,
    /// Byte offset of the current chunk's header in the file.
    chunk_at: u64,
    /// Byte offset of the next chunk's header.
    next_at: u64,
    prev_va: u64,
    prev_pid: u32,
    ended: bool,
    /// The trace's version (from the header).
    version: u16,
}

impl<R: BufRead> BinaryReader<R> {
    /// A reader over `input` (called `name` in errors); reads and checks the header.
    pub fn new(mut input: R, name: String) -> Result<Self, TraceError> {
        let mut h = [0u8; 16];
        let got = read_exact_or(&mut input, &mut h)
            .map_err(|e| TraceError::read_at(&name, Location::Byte(0), e))?;
        let bad = |r: String| TraceError::at(&name, Location::Byte(0), r);
        if got < 8 || h[..8] != MAGIC {
            return Err(bad(format!(
                "not a vmsim binary trace: it starts {}, not with the magic `VMSIMTRC`",
                super::quote_bytes(&h[..got.min(8)])
            )));
        }
        if got < 16 {
            return Err(bad(format!("the header is {got} bytes, not 16")));
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if !(1..=VERSION).contains(&version) {
            return Err(TraceError::at(
                &name,
                Location::Byte(8),
                format!(
                    "version {version} is not supported (this build reads versions 1 to \
                     {VERSION})"
                ),
            ));
        }
        let flags = u16::from_le_bytes([h[10], h[11]]);
        if flags & !FLAG_ZSTD != 0 {
            return Err(TraceError::at(
                &name,
                Location::Byte(10),
                format!("unknown flags {flags:#x}"),
            ));
        }
        let zstd = if flags & FLAG_ZSTD != 0 {
            Some(zstd::bulk::Decompressor::new().map_err(|e| TraceError::io(&name, e))?)
        } else {
            None
        };
        Ok(BinaryReader {
            input,
            name,
            zstd,
            stored: Vec::new(),
            raw: Vec::new(),
            pos: 0,
            promised: 0,
            given: 0,
            chunk_at: 16,
            next_at: 16,
            prev_va: 0,
            prev_pid: 0,
            ended: false,
            version,
        })
    }

    /// The trace's version, from its header.
    pub fn version(&self) -> u16 {
        self.version
    }

    fn err(&self, reason: String) -> TraceError {
        TraceError::at(&self.name, Location::Byte(self.chunk_at), reason)
    }

    /// Loads the next chunk; false at the end marker.
    fn next_chunk(&mut self) -> Result<bool, TraceError> {
        self.chunk_at = self.next_at;
        let mut h = [0u8; 12];
        let got = read_exact_or(&mut self.input, &mut h)
            .map_err(|e| TraceError::read_at(&self.name, Location::Byte(self.chunk_at), e))?;
        if got < 12 {
            return Err(self.err("the trace ends without its end marker (truncated?)".to_string()));
        }
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (raw_len, stored_len, nr) = (word(0) as usize, word(4) as usize, word(8));
        if nr == 0 {
            if raw_len != 0 || stored_len != 0 {
                return Err(self.err("a chunk of zero events has a length".into()));
            }
            return Ok(false);
        }
        if raw_len > MAX_CHUNK || stored_len > MAX_CHUNK {
            return Err(self.err(format!(
                "chunk lengths {raw_len}/{stored_len} exceed the {MAX_CHUNK}-byte limit"
            )));
        }
        if self.zstd.is_none() && stored_len != raw_len {
            return Err(self.err(format!(
                "an uncompressed chunk stores {stored_len} bytes but holds {raw_len}"
            )));
        }
        self.stored.resize(stored_len, 0);
        let got = read_exact_or(&mut self.input, &mut self.stored)
            .map_err(|e| TraceError::read_at(&self.name, Location::Byte(self.chunk_at + 12), e))?;
        if got < stored_len {
            return Err(self.err(format!(
                "the chunk says {stored_len} bytes but the file ends after {got}"
            )));
        }
        self.next_at = self.chunk_at + 12 + stored_len as u64;
        match &mut self.zstd {
            None => std::mem::swap(&mut self.raw, &mut self.stored),
            Some(d) => {
                self.raw.clear();
                self.raw.reserve(raw_len);
                let n = d
                    .decompress_to_buffer(&self.stored, &mut self.raw)
                    .map_err(|e| {
                        TraceError::at(
                            &self.name,
                            Location::Byte(self.chunk_at),
                            format!("corrupt zstd chunk: {e}"),
                        )
                    })?;
                if n != raw_len {
                    return Err(self.err(format!(
                        "the chunk decompresses to {n} bytes, not the {raw_len} it says"
                    )));
                }
            }
        }
        self.pos = 0;
        self.promised = nr;
        self.given = 0;
        self.prev_va = 0;
        self.prev_pid = 0;
        Ok(true)
    }

    /// Appends up to [`BATCH`] events to `out`.
    pub fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        while out.len() < BATCH && !self.ended {
            if self.pos >= self.raw.len() {
                if self.given != self.promised {
                    return Err(self.err(format!(
                        "the chunk promises {} events but holds {}",
                        self.promised, self.given
                    )));
                }
                if !self.next_chunk()? {
                    self.ended = true;
                    break;
                }
            }
            if self.given == self.promised {
                return Err(self.err(format!(
                    "the chunk holds bytes after its {} events",
                    self.promised
                )));
            }
            if let Some(e) = self.access_fast() {
                self.given += 1;
                out.push(e);
                continue;
            }
            let start = self.pos;
            let e = self
                .decode()
                .map_err(|r| self.err(format!("record at byte {start} of the chunk: {r}")))?;
            self.given += 1;
            out.push(e);
        }
        Ok(())
    }

    /// The access record at `pos`, decoded without error paths when it is well formed
    /// and the chunk holds the longest such record from `pos` on (nearly always); the
    /// position moves past it. `None`, the position left where it was, for anything
    /// else (an OS event, a record near the chunk's end, a bad field), which
    /// [`BinaryReader::decode`] then reads, saying what is wrong.
    #[inline(always)]
    fn access_fast(&mut self) -> Option<Event> {
        // A tag, a pid and a size of 5 bytes each at most (32 bits), an address of 10.
        const LONGEST: usize = 1 + 5 + 5 + 10;
        let b = self.raw.get(self.pos..self.pos + LONGEST)?;
        let tag = b[0];
        let kind = match tag & 3 {
            0 => AccessKind::Read,
            1 => AccessKind::Write,
            2 => AccessKind::Execute,
            _ => return None,
        };
        let mut i = 1;
        let mut pid = self.prev_pid;
        if tag & 4 != 0 {
            let (v, n) = varint_in(&b[i..])?;
            pid = u32::try_from(v).ok()?;
            i += n;
        }
        let size = match tag >> 3 {
            0 => {
                let (v, n) = varint_in(&b[i..])?;
                i += n;
                u32::try_from(v).ok().filter(|&s| s > 0)?
            }
            s => s as u32,
        };
        let (delta, n) = varint_in(&b[i..])?;
        i += n;
        let va = self.prev_va.wrapping_add(unzigzag(delta) as u64);
        self.prev_pid = pid;
        self.prev_va = va;
        self.pos += i;
        Some(Event::Access(Access {
            pid,
            kind,
            va: VirtAddr(va),
            size,
        }))
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .raw
            .get(self.pos)
            .ok_or_else(|| "the chunk ends inside a record".to_string())?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, String> {
        let rest = self.raw.get(self.pos..).unwrap_or(&[]);
        match varint_in(rest) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None if rest.len() < 10 => Err("the chunk ends inside a record".into()),
            None => Err("a varint longer than 10 bytes".into()),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| format!("{what} {v} does not fit in 32 bits"))
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        let v = unzigzag(self.varint()?);
        i32::try_from(v).map_err(|_| format!("{what} {v} does not fit in 32 bits"))
    }

    fn bool(&mut self, what: &str) -> Result<bool, String> {
        match self.varint()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("{what} {v} is neither 0 nor 1")),
        }
    }

    fn prot(&mut self, max: u8) -> Result<u8, String> {
        let p = self.byte()?;
        if p > max {
            return Err(format!("protection byte {p:#x} has unknown bits"));
        }
        Ok(p)
    }

    #[inline]
    fn decode(&mut self) -> Result<Event, String> {
        let tag = self.byte()?;
        let kind = tag & 3;
        if kind != 3 {
            if tag & 4 != 0 {
                self.prev_pid = self.u32("pid")?;
            }
            let size = match tag >> 3 {
                0 => self.u32("size")?,
                s => s as u32,
            };
            if size == 0 {
                return Err("an access of size 0".into());
            }
            let va = self.prev_va.wrapping_add(unzigzag(self.varint()?) as u64);
            self.prev_va = va;
            let kind = match kind {
                0 => AccessKind::Read,
                1 => AccessKind::Write,
                _ => AccessKind::Execute,
            };
            return Ok(Event::Access(Access {
                pid: self.prev_pid,
                kind,
                va: VirtAddr(va),
                size,
            }));
        }
        let os_type = tag >> 2;
        if os_type >= FIRST_V2_TYPE && self.version < 2 {
            return Err(format!(
                "OS event type {os_type} is not one of version {}'s (0 to {}): the header \
                 says version {}",
                self.version,
                FIRST_V2_TYPE - 1,
                self.version
            ));
        }
        Ok(match os_type {
            0 => Event::Spawn {
                pid: self.u32("pid")?,
            },
            1 => {
                let pid = self.u32("pid")?;
                let addr = self.varint()?;
                let len = self.varint()?;
                let p = self.prot(127)?;
                let kind = if p & 16 != 0 {
                    if p & 96 != 0 {
                        return Err(format!(
                            "protection byte {p:#x}: a file mapping marked hugetlb"
                        ));
                    }
                    MapKind::File {
                        file: self.u32("file")?,
                        offset: self.varint()?,
                    }
                } else if p & 32 != 0 {
                    let shift = self.varint()?;
                    if !(13..=40).contains(&shift) {
                        return Err(format!("hugetlb page shift {shift} is not 13 to 40"));
                    }
                    MapKind::HugeTlb {
                        page_bytes: 1 << shift,
                        noreserve: p & 64 != 0,
                    }
                } else if p & 64 != 0 {
                    return Err(format!("protection byte {p:#x}: noreserve without hugetlb"));
                } else {
                    MapKind::Anon
                };
                Event::Mmap {
                    pid,
                    addr: VirtAddr(addr),
                    len,
                    prot: Prot(p & 7),
                    shared: p & 8 != 0,
                    kind,
                }
            }
            2 => Event::Munmap {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
                len: self.varint()?,
            },
            3 => Event::Mprotect {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
                len: self.varint()?,
                prot: Prot(self.prot(7)?),
            },
            4 => Event::Brk {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
            },
            5 => Event::Fork {
                parent: self.u32("pid")?,
                child: self.u32("pid")?,
            },
            6 => Event::Exec {
                pid: self.u32("pid")?,
            },
            7 => Event::Exit {
                pid: self.u32("pid")?,
                code: self.i32("exit code")?,
            },
            8 => Event::Switch {
                pid: self.u32("pid")?,
            },
            9 => Event::ShmAttach {
                pid: self.u32("pid")?,
                key: self.u32("key")?,
                addr: VirtAddr(self.varint()?),
                len: self.varint()?,
                prot: Prot(self.prot(7)?),
            },
            10 => Event::Thread {
                pid: self.u32("pid")?,
                tid: self.u32("tid")?,
            },
            11 => Event::ThreadExit {
                pid: self.u32("pid")?,
                tid: self.u32("tid")?,
                code: self.i32("exit code")?,
            },
            12 => Event::ExecImage {
                pid: self.u32("pid")?,
            },
            13 => Event::Mremap {
                pid: self.u32("pid")?,
                old: VirtAddr(self.varint()?),
                old_len: self.varint()?,
                new: VirtAddr(self.varint()?),
                new_len: self.varint()?,
            },
            14 => Event::Madvise {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
                len: self.varint()?,
                advice: self.u32("advice")?,
            },
            15 => Event::ShmDetach {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
            },
            16 => Event::Syscall {
                pid: self.u32("pid")?,
                nr: self.u32("syscall number")?,
            },
            19 => Event::FileRead {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
                offset: self.varint()?,
                len: self.varint()?,
                buf: None,
            },
            34 => Event::FileRead {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
                offset: self.varint()?,
                len: self.varint()?,
                buf: Some(VirtAddr(self.varint()?)),
            },
            24 => Event::FileWrite {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
                offset: self.varint()?,
                len: self.varint()?,
            },
            21 => Event::Nonzero {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
            },
            22 => Event::Values {
                pid: self.u32("pid")?,
            },
            20 => Event::FileReadahead {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
                bytes: self.varint()?,
            },
            32 => Event::Fadvise {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
                offset: self.varint()?,
                len: self.varint()?,
                advice: self.u32("advice")?,
            },
            23 => Event::FileSize {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
                bytes: self.varint()?,
            },
            25 => Event::FileCached {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
                offset: self.varint()?,
                len: self.varint()?,
            },
            18 => Event::Vfork {
                parent: self.u32("pid")?,
                child: self.u32("pid")?,
            },
            17 => Event::ThpDisable {
                pid: self.u32("pid")?,
                disable: self.bool("thp-disable flag")?,
            },
            27 => Event::Populate {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
                len: self.varint()?,
            },
            28 => Event::Mlock {
                pid: self.u32("pid")?,
                addr: VirtAddr(self.varint()?),
                len: self.varint()?,
                mode: {
                    let m = self.varint()?;
                    Mlock::from_code(m).ok_or(format!("mlock mode {m} is not 0, 1 or 2"))?
                },
            },
            29 => Event::Mlockall {
                pid: self.u32("pid")?,
                flags: self.u32("mlockall flags")?,
            },
            30 => Event::FileShmem {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
            },
            31 => Event::FileDrop {
                pid: self.u32("pid")?,
                file: self.u32("file")?,
            },
            26 => Event::Sleep {
                pid: self.u32("pid")?,
                ns: self.varint()?,
            },
            33 => Event::FsMetadata {
                pid: self.u32("pid")?,
                pages: self.varint()?,
            },
            t => return Err(format!("unknown OS event type {t}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::VirtAddr;
    use crate::os::{MCL_CURRENT, MCL_FUTURE};

    fn sample() -> Vec<Event> {
        let mut v = vec![
            Event::Spawn { pid: 1 },
            Event::Mmap {
                pid: 1,
                addr: VirtAddr(0x7f00_0000_0000),
                len: 1 << 20,
                prot: Prot::RW,
                shared: true,
                kind: MapKind::File {
                    file: 4,
                    offset: 0x3000,
                },
            },
            Event::Mmap {
                pid: 1,
                addr: VirtAddr(0x1000),
                len: 4096,
                prot: Prot::RX,
                shared: false,
                kind: MapKind::Anon,
            },
            Event::Fork {
                parent: 1,
                child: 900,
            },
            Event::Exit { pid: 900, code: -9 },
            Event::ShmAttach {
                pid: 1,
                key: 77,
                addr: VirtAddr(0x5000),
                len: 8192,
                prot: Prot::READ,
            },
            Event::Mprotect {
                pid: 1,
                addr: VirtAddr(0x1000),
                len: 4096,
                prot: Prot::NONE,
            },
            Event::Brk {
                pid: 1,
                addr: VirtAddr(u64::MAX),
            },
            Event::Munmap {
                pid: 1,
                addr: VirtAddr(0x1000),
                len: 4096,
            },
            Event::Exec { pid: 1 },
            Event::Switch { pid: 3 },
        ];
        v.extend(new_events());
        let mut va = 0x7fff_ffff_f000u64;
        for i in 0..200_000u64 {
            va = va.wrapping_add((i * 0x9e37_79b9) % 8192).wrapping_sub(4000);
            v.push(Event::Access(Access {
                pid: 1 + (i / 50_000) as u32,
                kind: [AccessKind::Read, AccessKind::Write, AccessKind::Execute][(i % 3) as usize],
                va: if i == 7 {
                    VirtAddr(u64::MAX)
                } else {
                    VirtAddr(va)
                },
                size: [1, 4, 8, 31, 32, 4096][(i % 6) as usize],
            }));
        }
        v
    }

    /// One of every event type of version 2, with values at the edges.
    fn new_events() -> Vec<Event> {
        vec![
            Event::Thread { pid: 1, tid: 0 },
            Event::Thread {
                pid: u32::MAX,
                tid: u32::MAX,
            },
            Event::ThreadExit {
                pid: 1,
                tid: 7,
                code: i32::MIN,
            },
            Event::ThreadExit {
                pid: 1,
                tid: 8,
                code: i32::MAX,
            },
            Event::ExecImage { pid: 2 },
            Event::Mremap {
                pid: 2,
                old: VirtAddr(0x7f00_0000_0000),
                old_len: 0x21000,
                new: VirtAddr(u64::MAX),
                new_len: u64::MAX,
            },
            Event::Madvise {
                pid: 2,
                addr: VirtAddr(0x1000),
                len: 0,
                advice: 4,
            },
            Event::Madvise {
                pid: 2,
                addr: VirtAddr(0x1000),
                len: 4096,
                advice: u32::MAX,
            },
            Event::ShmDetach {
                pid: 2,
                addr: VirtAddr(0x5000),
            },
            Event::Syscall { pid: 2, nr: 26 },
            Event::Syscall {
                pid: 2,
                nr: u32::MAX,
            },
            Event::ThpDisable {
                pid: 2,
                disable: true,
            },
            Event::ThpDisable {
                pid: 2,
                disable: false,
            },
            Event::Sleep {
                pid: 2,
                ns: u64::MAX,
            },
            Event::FsMetadata { pid: 2, pages: 387 },
            Event::Populate {
                pid: 2,
                addr: VirtAddr(0x7fff_f000),
                len: 3 << 20,
            },
            Event::Mlock {
                pid: 2,
                addr: VirtAddr(0x7fff_f000),
                len: 1,
                mode: Mlock::OnFault,
            },
            Event::Mlock {
                pid: 2,
                addr: VirtAddr(0),
                len: u64::MAX,
                mode: Mlock::Unlocked,
            },
            Event::Mlockall {
                pid: 2,
                flags: MCL_CURRENT | MCL_FUTURE,
            },
            Event::Vfork {
                parent: 2,
                child: u32::MAX,
            },
            Event::FileRead {
                pid: 2,
                file: u32::MAX,
                offset: u64::MAX,
                len: 0,
                buf: None,
            },
            Event::FileRead {
                pid: 2,
                file: 7,
                offset: 4096,
                len: u64::MAX,
                buf: Some(VirtAddr(u64::MAX)),
            },
            Event::FileReadahead {
                pid: 2,
                file: 0,
                bytes: u64::MAX,
            },
            Event::Fadvise {
                pid: 2,
                file: u32::MAX,
                offset: u64::MAX,
                len: 0,
                advice: 2,
            },
            Event::Fadvise {
                pid: 3,
                file: 1,
                offset: 0,
                len: u64::MAX,
                advice: u32::MAX,
            },
            Event::FileWrite {
                pid: 2,
                file: 7,
                offset: 0,
                len: u64::MAX,
            },
            Event::Nonzero {
                pid: 2,
                addr: VirtAddr(u64::MAX),
            },
            Event::Values { pid: 2 },
            Event::FileSize {
                pid: 2,
                file: 3,
                bytes: u64::MAX,
            },
            Event::FileCached {
                pid: 2,
                file: 3,
                offset: 0x1000,
                len: u64::MAX,
            },
            Event::FileShmem {
                pid: 2,
                file: u32::MAX,
            },
            Event::FileDrop { pid: 2, file: 0 },
        ]
    }

    fn write(events: &[Event], zstd: bool) -> Vec<u8> {
        let mut w = BinaryWriter::new(Vec::new(), "t", zstd).unwrap();
        for e in events {
            w.write(e).unwrap();
        }
        w.finish().unwrap()
    }

    fn read(bytes: &[u8]) -> Result<Vec<Event>, TraceError> {
        let mut r = BinaryReader::new(bytes, "t".into())?;
        crate::trace::read_batches(|b| r.next_batch(b))
    }

    #[test]
    fn every_new_event_round_trips_alone() {
        for e in new_events() {
            for zstd in [false, true] {
                let bytes = write(&[e], zstd);
                assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
                assert_eq!(read(&bytes).unwrap(), [e], "{e:?}");
            }
        }
    }

    /// A version-1 trace (as the last build that wrote version 1 wrote it) still reads;
    /// a version-2 event type in it is an error naming the place and the type.
    #[test]
    fn version_1_traces_still_read() {
        // spawn 1; mmap 1 0x1000 4096 rw-; W 1 0x1008 8; exit 1 -1.
        let mut v1 = b"VMSIMTRC\x01\x00\x00\x00\x00\x00\x00\x00".to_vec();
        let records: &[u8] = &[
            0x03,
            0x01, // spawn 1
            0x07,
            0x01,
            0x80,
            0x20,
            0x80,
            0x20,
            0x03, // mmap 1 0x1000 4096 rw-
            0x01 | 4 | (8 << 3),
            0x01,
            0x90,
            0x40, // W 1 0x1008 8
            0x1f,
            0x01,
            0x01, // exit 1 -1
        ];
        v1.extend_from_slice(&(records.len() as u32).to_le_bytes());
        v1.extend_from_slice(&(records.len() as u32).to_le_bytes());
        v1.extend_from_slice(&4u32.to_le_bytes());
        v1.extend_from_slice(records);
        v1.extend_from_slice(&[0; 12]);
        let mut r = BinaryReader::new(&v1[..], "t".into()).unwrap();
        assert_eq!(r.version(), 1);
        let events = crate::trace::read_batches(|b| r.next_batch(b)).unwrap();
        assert_eq!(
            events,
            [
                Event::Spawn { pid: 1 },
                Event::Mmap {
                    pid: 1,
                    addr: VirtAddr(0x1000),
                    len: 4096,
                    prot: Prot::RW,
                    shared: false,
                    kind: MapKind::Anon
                },
                Event::Access(Access {
                    pid: 1,
                    kind: AccessKind::Write,
                    va: VirtAddr(0x1008),
                    size: 8
                }),
                Event::Exit { pid: 1, code: -1 },
            ]
        );
        // The same bytes with a thread event (type 10) after the spawn.
        let mut bad = v1[..28].to_vec();
        bad.extend_from_slice(&[0x03, 0x01, 0x2b, 0x01, 0x00]);
        bad[16..20].copy_from_slice(&5u32.to_le_bytes());
        bad[20..24].copy_from_slice(&5u32.to_le_bytes());
        bad[24..28].copy_from_slice(&2u32.to_le_bytes());
        bad.extend_from_slice(&[0; 12]);
        let e = read(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "t: byte 16: record at byte 2 of the chunk: OS event type 10 is not one of \
             version 1's (0 to 9): the header says version 1"
        );
        // In a version-2 trace it reads.
        bad[8] = 2;
        assert_eq!(read(&bad).unwrap()[1], Event::Thread { pid: 1, tid: 0 });
    }

    #[test]
    fn bad_fields_of_new_events_are_errors() {
        let mut bytes = write(
            &[Event::ThpDisable {
                pid: 1,
                disable: true,
            }],
            false,
        );
        // The flag is the last record byte, before the end marker.
        let at = bytes.len() - 13;
        bytes[at] = 2;
        let e = read(&bytes).unwrap_err().to_string();
        assert!(e.contains("thp-disable flag 2 is neither 0 nor 1"), "{e}");
        let mut bytes = write(&[Event::Syscall { pid: 1, nr: 9 }], false);
        bytes[16 + 12] = 3 | (40 << 2);
        let e = read(&bytes).unwrap_err().to_string();
        assert!(e.contains("unknown OS event type 40"), "{e}");
    }

    fn round_trip(zstd: bool) -> Vec<u8> {
        let events = sample();
        let mut w = BinaryWriter::new(Vec::new(), "t", zstd).unwrap();
        for e in &events {
            w.write(e).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut r = BinaryReader::new(&bytes[..], "t".into()).unwrap();
        let got = crate::trace::read_batches(|b| r.next_batch(b)).unwrap();
        assert_eq!(got, events);
        bytes
    }

    #[test]
    fn round_trips_plain_and_compressed() {
        let plain = round_trip(false);
        let packed = round_trip(true);
        assert!(
            packed.len() < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        // Several chunks were written.
        assert!(plain.len() > 2 * CHUNK);
    }

    #[test]
    fn rejects_a_wrong_magic_or_version() {
        let e = BinaryReader::new(&b"VMSIMTRX\x01\0\0\0\0\0\0\0"[..], "f.vmb".into())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("f.vmb: byte 0") && e.contains("magic"), "{e}");
        let e = BinaryReader::new(&b"VMSIMTRC\x03\0\0\0\0\0\0\0"[..], "f.vmb".into())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("version 3 is not supported"), "{e}");
        let e = BinaryReader::new(&b"VMSIMTRC\0\0\0\0\0\0\0\0"[..], "f.vmb".into())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("version 0 is not supported"), "{e}");
    }

    #[test]
    fn truncation_and_corruption_are_errors() {
        let mut w = BinaryWriter::new(Vec::new(), "t", false).unwrap();
        for e in sample().iter().take(1000) {
            w.write(e).unwrap();
        }
        let bytes = w.finish().unwrap();
        let read = |b: &[u8]| -> Result<usize, TraceError> {
            let mut r = BinaryReader::new(b, "t".into())?;
            Ok(crate::trace::read_batches(|b| r.next_batch(b))?.len())
        };
        assert_eq!(read(&bytes).unwrap(), 1000);
        let e = read(&bytes[..bytes.len() - 12]).unwrap_err().to_string();
        assert!(e.contains("end marker"), "{e}");
        let e = read(&bytes[..bytes.len() - 100]).unwrap_err().to_string();
        assert!(e.contains("file ends after"), "{e}");
        let mut bad = bytes.clone();
        bad[24] = 0xff; // the event count of the first chunk
        assert!(read(&bad).is_err());
    }
}
