//! From the plugin's connections to one trace: each process image sends its own
//! stream ([`super::wire`]); the demultiplexer numbers processes and threads in order
//! of appearance, puts a forked child's stream after its parent's fork and an exec'd
//! image's after the old image's end, and turns records into [`Event`]s.

use super::wire::{self, Ctl};
use crate::addr::VirtAddr;
use crate::hw::AccessKind;
use crate::os::Prot;
use crate::trace::{Access, Event, MapKind, Mlock, TracePid, TraceTid};
use rustc_hash::FxHashMap;

/// `mmap`'s `MAP_GROWSDOWN` (x86-64).
const MAP_GROWSDOWN: u64 = 0x100;
/// `mmap`'s `MAP_STACK` (x86-64).
const MAP_STACK: u64 = 0x20000;
/// `mmap`'s `MAP_HUGETLB`.
const MAP_HUGETLB: u64 = 0x40000;
/// `mmap`'s `MAP_NORESERVE`.
const MAP_NORESERVE: u64 = 0x4000;
/// Where `mmap`'s flags hold log2 of a hugetlb page size.
const MAP_HUGE_SHIFT: u64 = 26;

/// A connection, numbered by the caller.
pub type ConnId = usize;

/// Why a stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A message does not start with the plugin's magic word.
    #[error("connection {conn}: a message without the plugin's header (version mismatch between vmsim and its QEMU plugin?)")]
    Header {
        /// The connection.
        conn: ConnId,
    },
    /// A record the protocol does not define, or one cut short.
    #[error("connection {conn}: word {word}: {why}")]
    Record {
        /// The connection.
        conn: ConnId,
        /// Which word of the message.
        word: usize,
        /// What is wrong.
        why: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    /// No message yet.
    New,
    /// Identified but not yet in order: a forked child before its parent's fork, or
    /// an exec'd image before the old image's end. Its first message waits.
    Waiting,
    /// Read in order.
    Active,
    /// Ended.
    Closed,
}

struct Conn {
    state: ConnState,
    host: u32,
    how: u64,
    vcpu: u32,
    /// The rest of the first message after the hello, held while waiting.
    held: Vec<u64>,
    /// The index of `held`'s first word in its message.
    held_at: usize,
}

struct Proc {
    pid: TracePid,
    tids: FxHashMap<u32, TraceTid>,
    next_tid: TraceTid,
    cur: TraceTid,
    /// The connection being read for it.
    conn: Option<ConnId>,
    /// exit_group seen (with the exit event written).
    exited: bool,
    /// Ended without exit_group (a fatal signal): the exit event waits for a reap.
    lost: bool,
}

/// What the demultiplexer saw besides events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Processes (trace pids) made.
    pub processes: u32,
    /// Threads made (main threads included).
    pub threads: u32,
    /// Execs the plugin could not follow: those programs ran untraced.
    pub untraced_execs: u32,
}

/// The demultiplexer.
pub struct Demux {
    conns: Vec<Conn>,
    procs: FxHashMap<u32, Proc>,
    /// Host pids of children whose parent's fork has been seen: their trace pid.
    forked: FxHashMap<u32, TracePid>,
    /// Each file seen, `(dev, ino)`: its trace number and the largest length recorded.
    files: FxHashMap<(u64, u64), (u32, u64)>,
    /// Files whose cached pages at start were recorded: the connection that recorded
    /// them (another process's look, later, finds what the program read since).
    cached_by: FxHashMap<u32, ConnId>,
    /// Files marked as on tmpfs (each once, by its first [`Event::FileShmem`]).
    tmpfs: rustc_hash::FxHashSet<u32>,
    /// The trace says its pages without a `nonzero` mark hold zeros.
    values: bool,
    next_pid: TracePid,
    top: Option<u32>,
    /// Connections that became active with a held message to replay.
    ready: Vec<ConnId>,
    stats: DemuxStats,
}

impl Default for Demux {
    fn default() -> Self {
        Demux::new()
    }
}

fn kind_of(k: u64) -> AccessKind {
    match k {
        wire::LOAD => AccessKind::Read,
        wire::STORE => AccessKind::Write,
        _ => AccessKind::Execute,
    }
}

/// The trace's number for the file `(dev, ino)`, seen `size` bytes long: the next one
/// the first time, when its device's readahead is recorded too (as an
/// [`Event::FileReadahead`]). Its length is recorded (as an [`Event::FileSize`]) the
/// first time and whenever it is seen longer than before.
fn number_file(
    files: &mut FxHashMap<(u64, u64), (u32, u64)>,
    pid: TracePid,
    (dev, ino, size): (u64, u64, u64),
    out: &mut impl FnMut(Event),
) -> u32 {
    let next = files.len() as u32;
    let (file, known) = files.entry((dev, ino)).or_insert_with(|| {
        if let Some(bytes) = device_readahead(dev) {
            out(Event::FileReadahead {
                pid,
                file: next,
                bytes,
            });
        }
        (next, 0)
    });
    if size > *known {
        *known = size;
        out(Event::FileSize {
            pid,
            file: *file,
            bytes: size,
        });
    }
    *file
}

/// The readahead, in bytes, of the block device `dev` (a `st_dev`): its queue's
/// `read_ahead_kb` under `/sys/dev/block`, or its whole disk's for a partition.
/// `None` where there is none (tmpfs, overlay and other devices without a queue).
pub fn device_readahead(dev: u64) -> Option<u64> {
    // glibc's encoding of dev_t.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let base = format!("/sys/dev/block/{major}:{minor}");
    ["queue/read_ahead_kb", "../queue/read_ahead_kb"]
        .iter()
        .find_map(|q| std::fs::read_to_string(format!("{base}/{q}")).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|kb| kb << 10)
}

impl Demux {
    /// Nothing seen yet.
    pub fn new() -> Demux {
        Demux {
            conns: Vec::new(),
            procs: FxHashMap::default(),
            forked: FxHashMap::default(),
            files: FxHashMap::default(),
            cached_by: FxHashMap::default(),
            tmpfs: Default::default(),
            values: false,
            next_pid: 1,
            top: None,
            ready: Vec::new(),
            stats: DemuxStats::default(),
        }
    }

    /// What was seen so far.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// Registers connection `conn` (numbered from 0 in order of acceptance).
    pub fn open(&mut self, conn: ConnId) {
        while self.conns.len() <= conn {
            self.conns.push(Conn {
                state: ConnState::New,
                host: 0,
                how: 0,
                vcpu: 0,
                held: Vec::new(),
                held_at: 0,
            });
        }
    }

    /// Whether the caller should read more from `conn` now (a waiting connection is
    /// not read until its turn, so its process blocks rather than racing ahead).
    pub fn readable(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(conn).map(|c| c.state),
            Some(ConnState::New | ConnState::Active)
        )
    }

    /// Whether every connection has ended.
    pub fn all_closed(&self) -> bool {
        self.conns.iter().all(|c| c.state == ConnState::Closed)
    }

    /// A message from `conn`.
    pub fn message(
        &mut self,
        conn: ConnId,
        words: &[u64],
        out: &mut impl FnMut(Event),
    ) -> Result<(), WireError> {
        if words.len() < 2 || words[0] != wire::MAGIC {
            return Err(WireError::Header { conn });
        }
        let mut at = 2;
        if self.conns[conn].state == ConnState::New {
            at = self.hello(conn, words)?;
            if self.conns[conn].state == ConnState::Waiting {
                self.conns[conn].held = words[at..].to_vec();
                self.conns[conn].held_at = at;
                return Ok(());
            }
            self.start(conn, out);
        }
        self.records(conn, &words[at..], at, out)?;
        self.replay(out)
    }

    /// `conn` ended (the process exited or exec'd).
    pub fn close(&mut self, conn: ConnId, out: &mut impl FnMut(Event)) -> Result<(), WireError> {
        let c = &mut self.conns[conn];
        let was = c.state;
        c.state = ConnState::Closed;
        if was != ConnState::Active {
            return Ok(());
        }
        let host = c.host;
        if let Some(p) = self.procs.get_mut(&host) {
            if p.conn == Some(conn) {
                p.conn = None;
                if !p.exited {
                    p.lost = true;
                }
            }
        }
        // An exec'd image of the same process waits for this end.
        let next = (0..self.conns.len()).find(|&i| {
            let c = &self.conns[i];
            c.state == ConnState::Waiting && c.host == host && c.how == wire::HELLO_EXEC
        });
        if let Some(i) = next {
            self.activate(i);
        }
        self.replay(out)
    }

    /// Ends the trace: every process still without an exit event gets one, the first
    /// program with `top_status` (its real exit status), the others with -1 (the
    /// recorder never learned theirs).
    pub fn finish(&mut self, top_status: i32, out: &mut impl FnMut(Event)) {
        let mut left: Vec<(TracePid, u32)> = self
            .procs
            .iter()
            .filter(|(_, p)| !p.exited)
            .map(|(&h, p)| (p.pid, h))
            .collect();
        left.sort_unstable();
        for (pid, host) in left {
            let code = if Some(host) == self.top {
                top_status
            } else {
                -1
            };
            out(Event::Exit { pid, code });
        }
        self.procs.clear();
    }

    /// Reads a connection's hello (after the thread record that may come first);
    /// returns the index of the word after it.
    fn hello(&mut self, conn: ConnId, words: &[u64]) -> Result<usize, WireError> {
        let bad = |why: &str| WireError::Record {
            conn,
            word: 2,
            why: why.to_string(),
        };
        let h = if words.get(2) == Some(&wire::control(Ctl::Thread, 1)) {
            4
        } else {
            2
        };
        if words.len() < h + 4 || words[h] != wire::control(Ctl::Hello, 3) {
            return Err(bad("a connection's first record is not its hello"));
        }
        let (host, how, vcpu) = (words[1] as u32, words[h + 1], words[h + 3] as u32);
        let state = match how {
            wire::HELLO_FIRST => ConnState::Active,
            wire::HELLO_FORK if self.forked.contains_key(&host) => ConnState::Active,
            wire::HELLO_FORK => ConnState::Waiting,
            // After the old image: one being read, or a forked child's first image
            // still waiting for its parent's fork.
            wire::HELLO_EXEC
                if self.procs.get(&host).is_some_and(|p| p.conn.is_some())
                    || self.conns.iter().enumerate().any(|(i, c)| {
                        i != conn && c.host == host && c.state == ConnState::Waiting
                    }) =>
            {
                ConnState::Waiting
            }
            wire::HELLO_EXEC => ConnState::Active,
            _ => return Err(bad(&format!("hello of unknown kind {how}"))),
        };
        let c = &mut self.conns[conn];
        c.host = host;
        c.how = how;
        c.vcpu = vcpu;
        c.state = state;
        Ok(h + 4)
    }

    fn activate(&mut self, conn: ConnId) {
        self.conns[conn].state = ConnState::Active;
        self.ready.push(conn);
    }

    /// Makes or renews the process of an active connection and writes its start.
    fn start(&mut self, conn: ConnId, out: &mut impl FnMut(Event)) {
        let c = &self.conns[conn];
        let (host, how, vcpu) = (c.host, c.how, c.vcpu);
        let pid = match how {
            wire::HELLO_FORK => self.forked.remove(&host).unwrap_or_else(|| self.new_pid()),
            wire::HELLO_EXEC => match self.procs.get(&host) {
                Some(p) => p.pid,
                None => self.new_pid(),
            },
            _ => {
                self.top = Some(host);
                self.new_pid()
            }
        };
        let renewed = self.procs.contains_key(&host);
        let mut tids = FxHashMap::default();
        tids.insert(vcpu, 0);
        self.procs.insert(
            host,
            Proc {
                pid,
                tids,
                next_tid: 1,
                cur: 0,
                conn: Some(conn),
                exited: false,
                lost: false,
            },
        );
        if !renewed {
            self.stats.threads += 1;
        }
        if how != wire::HELLO_FORK {
            out(Event::ExecImage { pid });
        }
    }

    fn new_pid(&mut self) -> TracePid {
        let p = self.next_pid;
        self.next_pid += 1;
        self.stats.processes += 1;
        p
    }

    fn replay(&mut self, out: &mut impl FnMut(Event)) -> Result<(), WireError> {
        while let Some(conn) = self.ready.pop() {
            let held = std::mem::take(&mut self.conns[conn].held);
            let at = self.conns[conn].held_at;
            self.start(conn, out);
            self.records(conn, &held, at, out)?;
        }
        Ok(())
    }

    fn records(
        &mut self,
        conn: ConnId,
        words: &[u64],
        base: usize,
        out: &mut impl FnMut(Event),
    ) -> Result<(), WireError> {
        let host = self.conns[conn].host;
        let Some(p) = self.procs.get_mut(&host) else {
            return Ok(());
        };
        let pid = p.pid;
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let kind = w >> 62;
            if kind != wire::CONTROL {
                if !p.exited {
                    let (size, va) = if kind == wire::FETCH {
                        let (len, va) = wire::fetch_of(w);
                        (len.clamp(1, wire::MAX_FETCH) as u32, va)
                    } else {
                        (1 << (w >> wire::ADDR_BITS & 7), w & wire::ADDR_MASK)
                    };
                    out(Event::Access(Access {
                        pid,
                        kind: kind_of(kind),
                        va: VirtAddr(va),
                        size,
                    }));
                }
                i += 1;
                continue;
            }
            let at = base + i;
            let err = |why: String| WireError::Record {
                conn,
                word: at,
                why,
            };
            let ty = Ctl::from_u8(w as u8)
                .ok_or_else(|| err(format!("unknown control type {}", w as u8)))?;
            let n = ty.payload();
            if (w >> 8 & 0xff) as usize != n || i + 1 + n > words.len() {
                return Err(err(format!("{ty:?} record with a wrong or cut payload")));
            }
            let a = &words[i + 1..i + 1 + n];
            i += 1 + n;
            if p.exited && !matches!(ty, Ctl::End | Ctl::Reap) {
                continue;
            }
            match ty {
                Ctl::Hello => return Err(err("a second hello".into())),
                Ctl::Thread => {
                    let v = a[0] as u32;
                    let tid = match p.tids.get(&v) {
                        Some(&t) => t,
                        None => {
                            let t = p.next_tid;
                            p.next_tid += 1;
                            p.tids.insert(v, t);
                            self.stats.threads += 1;
                            t
                        }
                    };
                    if tid != p.cur {
                        p.cur = tid;
                        out(Event::Thread { pid, tid });
                    }
                }
                Ctl::ThreadNew => {
                    let v = a[0] as u32;
                    let t = p.next_tid;
                    p.next_tid += 1;
                    p.tids.insert(v, t);
                    self.stats.threads += 1;
                    out(Event::Thread { pid, tid: t });
                    out(Event::Thread { pid, tid: p.cur });
                }
                Ctl::ThreadExit => {
                    let tid = p.cur;
                    p.tids.retain(|_, t| *t != tid);
                    out(Event::ThreadExit {
                        pid,
                        tid,
                        code: a[0] as i32,
                    });
                }
                Ctl::Mmap => {
                    let (addr, len, prot, flags, dev, ino, off, size) =
                        (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
                    let anon = flags & 0x20 != 0 || (dev == 0 && ino == 0);
                    let kind = if flags & MAP_HUGETLB != 0 && anon {
                        // The size is log2 in bits 26-31; 0: the default, 2 MiB.
                        let shift = (flags >> MAP_HUGE_SHIFT) & 0x3f;
                        if shift != 0 && !(13..=40).contains(&shift) {
                            return Err(err(format!(
                                "mmap flags {flags:#x}: a hugetlb page of 2^{shift} bytes (Linux's are 8 KiB to 1 TiB)"
                            )));
                        }
                        MapKind::HugeTlb {
                            page_bytes: if shift == 0 { 2 << 20 } else { 1 << shift },
                            noreserve: flags & MAP_NORESERVE != 0,
                        }
                    } else if anon {
                        MapKind::Anon
                    } else {
                        MapKind::File {
                            file: number_file(&mut self.files, pid, (dev, ino, size), out),
                            offset: off,
                        }
                    };
                    out(Event::Mmap {
                        pid,
                        addr: VirtAddr(addr),
                        len,
                        prot: Prot(prot as u8 & 7),
                        shared: matches!(flags & 3, 1 | 3),
                        kind,
                    });
                    // Linux (6.7 on) gives a MAP_STACK mapping VM_NOHUGEPAGE, and a
                    // grows-down stack faults in page by page below its mapped part, so
                    // it never has the empty aligned range a huge page needs: both are
                    // recorded as advised MADV_NOHUGEPAGE (QEMU maps the guest's stack
                    // whole).
                    if flags & (MAP_STACK | MAP_GROWSDOWN) != 0 {
                        out(Event::Madvise {
                            pid,
                            addr: VirtAddr(addr),
                            len,
                            advice: crate::trace::MADV_NOHUGEPAGE,
                        });
                    }
                }
                Ctl::Munmap => out(Event::Munmap {
                    pid,
                    addr: VirtAddr(a[0]),
                    len: a[1],
                }),
                Ctl::Mprotect => out(Event::Mprotect {
                    pid,
                    addr: VirtAddr(a[0]),
                    len: a[1],
                    prot: Prot(a[2] as u8 & 7),
                }),
                Ctl::Brk => out(Event::Brk {
                    pid,
                    addr: VirtAddr(a[0]),
                }),
                Ctl::Mremap => out(Event::Mremap {
                    pid,
                    old: VirtAddr(a[0]),
                    old_len: a[1],
                    new: VirtAddr(a[2]),
                    new_len: a[3],
                }),
                Ctl::Madvise => out(Event::Madvise {
                    pid,
                    addr: VirtAddr(a[0]),
                    len: a[1],
                    advice: a[2] as u32,
                }),
                Ctl::Shmat => out(Event::ShmAttach {
                    pid,
                    key: a[0] as u32,
                    addr: VirtAddr(a[1]),
                    len: a[2],
                    prot: Prot(a[3] as u8 & 7),
                }),
                Ctl::Shmdt => out(Event::ShmDetach {
                    pid,
                    addr: VirtAddr(a[0]),
                }),
                Ctl::Fork => {
                    let child_host = a[0] as u32;
                    let child = self.next_pid;
                    self.next_pid += 1;
                    self.stats.processes += 1;
                    if a[1] == 1 {
                        out(Event::Vfork { parent: pid, child });
                    } else {
                        out(Event::Fork { parent: pid, child });
                    }
                    self.forked.insert(child_host, child);
                    let waiting = (0..self.conns.len()).find(|&k| {
                        let c = &self.conns[k];
                        c.state == ConnState::Waiting
                            && c.host == child_host
                            && c.how == wire::HELLO_FORK
                    });
                    if let Some(k) = waiting {
                        self.activate(k);
                    }
                    // The child's stream may need this process's record again.
                    return self.records_rest(conn, words, base, i, out);
                }
                Ctl::Exit => {
                    p.exited = true;
                    out(Event::Exit {
                        pid,
                        code: a[0] as i32,
                    });
                }
                Ctl::Reap => {
                    let status = a[1] as i32;
                    let code = if status & 0x7f == 0 {
                        (status >> 8) & 0xff
                    } else {
                        128 + (status & 0x7f)
                    };
                    if let Some(c) = self.procs.get_mut(&(a[0] as u32)) {
                        if !c.exited && c.conn.is_none() {
                            c.exited = true;
                            out(Event::Exit { pid: c.pid, code });
                        }
                    }
                    return self.records_rest(conn, words, base, i, out);
                }
                Ctl::Nonzero => out(Event::Nonzero {
                    pid,
                    addr: VirtAddr(a[0]),
                }),
                Ctl::Values => {
                    if !self.values {
                        self.values = true;
                        out(Event::Values { pid });
                    }
                }
                Ctl::FileRead => {
                    let file = number_file(&mut self.files, pid, (a[0], a[1], a[4]), out);
                    out(Event::FileRead {
                        pid,
                        file,
                        offset: a[2],
                        len: a[3],
                        buf: (a[5] != 0).then_some(VirtAddr(a[5])),
                    });
                }
                Ctl::Fadvise => {
                    let file = number_file(&mut self.files, pid, (a[0], a[1], a[2]), out);
                    out(Event::Fadvise {
                        pid,
                        file,
                        offset: a[3],
                        len: a[4],
                        advice: a[5] as u32,
                    });
                }
                Ctl::FileWrite => {
                    // The length before the write first, so that the kernel knows
                    // which pages it must read before writing part of them.
                    let (at, n, after, before) = (a[2], a[3], a[4], a[5]);
                    let file = number_file(&mut self.files, pid, (a[0], a[1], before), out);
                    out(Event::FileWrite {
                        pid,
                        file,
                        offset: at,
                        len: n,
                    });
                    number_file(&mut self.files, pid, (a[0], a[1], after), out);
                }
                Ctl::Tmpfs => {
                    let file = number_file(&mut self.files, pid, (a[0], a[1], a[2]), out);
                    if self.tmpfs.insert(file) {
                        out(Event::FileShmem { pid, file });
                    }
                }
                Ctl::TmpfsDrop => {
                    if let Some(&(file, _)) = self.files.get(&(a[0], a[1])) {
                        if self.tmpfs.contains(&file) {
                            out(Event::FileDrop { pid, file });
                        }
                    }
                }
                Ctl::Cached => {
                    let file = number_file(&mut self.files, pid, (a[0], a[1], a[2]), out);
                    if *self.cached_by.entry(file).or_insert(conn) == conn {
                        out(Event::FileCached {
                            pid,
                            file,
                            offset: a[3].saturating_mul(wire::PAGE),
                            len: a[4].saturating_mul(wire::PAGE),
                        });
                    }
                }
                Ctl::Syscall => out(Event::Syscall {
                    pid,
                    nr: a[0] as u32,
                }),
                Ctl::ThpDisable => out(Event::ThpDisable {
                    pid,
                    disable: a[0] != 0,
                }),
                Ctl::Sleep => out(Event::Sleep { pid, ns: a[0] }),
                Ctl::FsMetadata => out(Event::FsMetadata { pid, pages: a[0] }),
                // mlock of 0 bytes succeeds and does nothing.
                Ctl::Populate | Ctl::Mlock if a[1] == 0 => {}
                Ctl::Mlock => match Mlock::from_code(a[2]) {
                    Some(mode) => out(Event::Mlock {
                        pid,
                        addr: VirtAddr(a[0]),
                        len: a[1],
                        mode,
                    }),
                    None => return Err(err(format!("mlock mode {} is not 0, 1 or 2", a[2]))),
                },
                Ctl::Mlockall => out(Event::Mlockall {
                    pid,
                    flags: a[0] as u32,
                }),
                Ctl::Populate => out(Event::Populate {
                    pid,
                    addr: VirtAddr(a[0]),
                    len: a[1],
                }),
                Ctl::Untraced => self.stats.untraced_execs += 1,
                Ctl::End => {
                    if !p.exited {
                        p.lost = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Goes on with `words` from `i` after a record that touched another process.
    fn records_rest(
        &mut self,
        conn: ConnId,
        words: &[u64],
        base: usize,
        i: usize,
        out: &mut impl FnMut(Event),
    ) -> Result<(), WireError> {
        if i < words.len() {
            self.records(conn, &words[i..], base + i, out)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_device_readahead_is_its_queues_and_a_new_file_records_it() {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(env!("CARGO_MANIFEST_DIR")).unwrap().dev();
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        let sys = format!("/sys/dev/block/{major}:{minor}");
        let kb = ["queue/read_ahead_kb", "../queue/read_ahead_kb"]
            .iter()
            .find_map(|q| std::fs::read_to_string(format!("{sys}/{q}")).ok());
        let want = kb.map(|s| s.trim().parse::<u64>().unwrap() << 10);
        assert_eq!(device_readahead(dev), want, "{sys}");
        assert_eq!(device_readahead(0), None, "no such block device");
        // Numbered once; the readahead goes with the first sight only, the length with
        // the first sight and each time the file is seen longer.
        let mut files = FxHashMap::default();
        let mut events = Vec::new();
        let mut out = |e| events.push(e);
        assert_eq!(number_file(&mut files, 1, (dev, 7, 100), &mut out), 0);
        assert_eq!(number_file(&mut files, 1, (dev, 8, 0), &mut out), 1);
        assert_eq!(number_file(&mut files, 2, (dev, 7, 50), &mut out), 0);
        assert_eq!(number_file(&mut files, 2, (dev, 7, 9000), &mut out), 0);
        let ra = |file| {
            want.map(|bytes| Event::FileReadahead {
                pid: 1,
                file,
                bytes,
            })
        };
        let size = |pid, bytes| Event::FileSize {
            pid,
            file: 0,
            bytes,
        };
        let want: Vec<_> = [ra(0), Some(size(1, 100)), ra(1), Some(size(2, 9000))]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(events, want);
    }

    fn msg(host: u64, recs: &[u64]) -> Vec<u64> {
        let mut m = vec![wire::MAGIC, host];
        m.extend_from_slice(recs);
        m
    }

    fn hello(how: u64, ppid: u64, vcpu: u64) -> [u64; 4] {
        [wire::control(Ctl::Hello, 3), how, ppid, vcpu]
    }

    fn run(d: &mut Demux, conn: ConnId, m: &[u64], ev: &mut Vec<Event>) {
        d.open(conn);
        d.message(conn, m, &mut |e| ev.push(e)).unwrap();
    }

    #[test]
    fn a_fetch_carries_its_length_and_an_address_of_48_bits() {
        let mut d = Demux::new();
        let mut ev = Vec::new();
        let va = 0x7fff_ffff_f000;
        let recs = [
            wire::fetch(37, 0x40_1000),
            wire::fetch(4096, va),
            // A length of 0 is read as 1 (no fetch is empty).
            wire::fetch(0, 0x40_2000),
        ];
        run(
            &mut d,
            0,
            &msg(100, &[hello(0, 1, 0).as_slice(), &recs].concat()),
            &mut ev,
        );
        let fetches: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Access(a) => Some((a.kind, a.va.0, a.size)),
                _ => None,
            })
            .collect();
        assert_eq!(
            fetches,
            [
                (AccessKind::Execute, 0x40_1000, 37),
                (AccessKind::Execute, va, 4096),
                (AccessKind::Execute, 0x40_2000, 1),
            ]
        );
    }

    #[test]
    fn a_child_that_speaks_before_its_parents_fork_waits_for_it() {
        let mut d = Demux::new();
        let mut ev = Vec::new();
        let load = wire::access(wire::LOAD, 3, 0x1000);
        let store = wire::access(wire::STORE, 2, 0x2000);
        run(
            &mut d,
            0,
            &msg(100, &[hello(0, 1, 0).as_slice(), &[load]].concat()),
            &mut ev,
        );
        // The child's first message comes before the parent's fork record.
        run(
            &mut d,
            1,
            &msg(200, &[hello(1, 100, 0).as_slice(), &[store]].concat()),
            &mut ev,
        );
        assert!(!d.readable(1));
        assert_eq!(ev.len(), 2);
        run(
            &mut d,
            0,
            &msg(100, &[wire::control(Ctl::Fork, 2), 200, 0, load]),
            &mut ev,
        );
        assert!(d.readable(1));
        let s = |pid, kind, va: u64, size| {
            Event::Access(Access {
                pid,
                kind,
                va: VirtAddr(va),
                size,
            })
        };
        assert_eq!(
            ev,
            [
                Event::ExecImage { pid: 1 },
                s(1, AccessKind::Read, 0x1000, 8),
                Event::Fork {
                    parent: 1,
                    child: 2
                },
                // The child's held message follows the rest of the parent's.
                s(1, AccessKind::Read, 0x1000, 8),
                s(2, AccessKind::Write, 0x2000, 4),
            ]
        );
    }

    #[test]
    fn a_files_cached_pages_are_the_first_process_to_look() {
        let mut d = Demux::new();
        let mut ev = Vec::new();
        let cached = |first, pages| [wire::control(Ctl::Cached, 5), 0, 42, 3 << 12, first, pages];
        // Two runs of cached pages, then none in another file.
        let recs = [
            hello(0, 1, 0).as_slice(),
            &cached(0, 1),
            &cached(2, 1),
            &[wire::control(Ctl::Cached, 5), 0, 43, 4096, 0, 0],
        ]
        .concat();
        run(&mut d, 0, &msg(100, &recs), &mut ev);
        // A child forked later looks again, and finds what the program read since.
        run(
            &mut d,
            0,
            &msg(100, &[wire::control(Ctl::Fork, 2), 200, 0]),
            &mut ev,
        );
        let recs = [hello(1, 100, 0).as_slice(), &cached(0, 3)].concat();
        run(&mut d, 1, &msg(200, &recs), &mut ev);
        let got: Vec<_> = ev
            .iter()
            .filter_map(|e| match *e {
                Event::FileCached {
                    pid,
                    file,
                    offset,
                    len,
                } => Some((pid, file, offset, len)),
                _ => None,
            })
            .collect();
        assert_eq!(got, [(1, 0, 0, 4096), (1, 0, 8192, 4096), (1, 1, 0, 0)]);
    }

    /// The events of one connection's records after a first `hello`, its
    /// `exec-image` left out.
    fn events_after_hello(records: &[&[u64]]) -> Vec<Event> {
        let mut d = Demux::new();
        let mut ev = Vec::new();
        let recs = [&[hello(0, 1, 0).as_slice()], records].concat().concat();
        run(&mut d, 0, &msg(100, &recs), &mut ev);
        ev.retain(|e| !matches!(e, Event::ExecImage { .. }));
        ev
    }

    #[test]
    fn fadvise_names_its_file_and_keeps_its_range_and_advice() {
        let advise = [wire::control(Ctl::Fadvise, 6), 1, 77, 8192, 4096, 0, 2];
        assert_eq!(
            events_after_hello(&[&advise]),
            [
                Event::FileSize {
                    pid: 1,
                    file: 0,
                    bytes: 8192
                },
                Event::Fadvise {
                    pid: 1,
                    file: 0,
                    offset: 4096,
                    len: 0,
                    advice: 2
                },
            ]
        );
    }

    #[test]
    fn a_tmpfs_file_is_marked_once_before_its_use_and_let_go() {
        let tmpfs = [wire::control(Ctl::Tmpfs, 3), 1, 77, 8192];
        let read = [
            wire::control(Ctl::FileRead, 6),
            1,
            77,
            0,
            4096,
            8192,
            0x5000,
        ];
        // Let go: a file-drop; one of a file not seen on tmpfs says nothing.
        let drop = [wire::control(Ctl::TmpfsDrop, 2), 1, 77];
        let other = [wire::control(Ctl::TmpfsDrop, 2), 1, 78];
        assert_eq!(
            events_after_hello(&[&tmpfs, &read, &tmpfs, &drop, &other]),
            [
                Event::FileSize {
                    pid: 1,
                    file: 0,
                    bytes: 8192
                },
                Event::FileShmem { pid: 1, file: 0 },
                Event::FileRead {
                    pid: 1,
                    file: 0,
                    offset: 0,
                    len: 4096,
                    buf: Some(VirtAddr(0x5000)),
                },
                Event::FileDrop { pid: 1, file: 0 },
            ]
        );
    }

    #[test]
    fn an_exec_image_follows_the_old_images_end_and_keeps_the_pid() {
        let mut d = Demux::new();
        let mut ev = Vec::new();
        let load = wire::access(wire::LOAD, 0, 0x5000);
        run(&mut d, 0, &msg(7, &hello(0, 1, 0)), &mut ev);
        run(
            &mut d,
            1,
            &msg(7, &[hello(2, 1, 0).as_slice(), &[load]].concat()),
            &mut ev,
        );
        assert!(!d.readable(1));
        run(&mut d, 0, &msg(7, &[load]), &mut ev);
        d.close(0, &mut |e| ev.push(e)).unwrap();
        assert_eq!(
            ev.iter()
                .filter(|e| **e == Event::ExecImage { pid: 1 })
                .count(),
            2
        );
        assert_eq!(ev.len(), 4);
        d.finish(3, &mut |e| ev.push(e));
        assert_eq!(ev.last(), Some(&Event::Exit { pid: 1, code: 3 }));
        assert_eq!(d.stats().processes, 1);
    }

    #[test]
    fn an_exec_image_of_a_child_waiting_for_its_fork_waits_too() {
        let mut d = Demux::new();
        let mut ev = Vec::new();
        run(&mut d, 0, &msg(1, &hello(0, 1, 0)), &mut ev);
        // The child (host 2) speaks, then its exec'd image, before the parent's fork.
        run(&mut d, 1, &msg(2, &hello(1, 1, 0)), &mut ev);
        run(&mut d, 2, &msg(2, &hello(2, 1, 0)), &mut ev);
        assert!(!d.readable(1) && !d.readable(2));
        run(
            &mut d,
            0,
            &msg(1, &[wire::control(Ctl::Fork, 2), 2, 0]),
            &mut ev,
        );
        d.close(1, &mut |e| ev.push(e)).unwrap();
        assert!(d.readable(2));
        assert_eq!(
            ev,
            [
                Event::ExecImage { pid: 1 },
                Event::Fork {
                    parent: 1,
                    child: 2
                },
                Event::ExecImage { pid: 2 },
            ]
        );
        assert_eq!(d.stats().processes, 2);
    }

    #[test]
    fn threads_get_ids_in_order_and_a_killed_child_exits_when_reaped() {
        let mut d = Demux::new();
        let mut ev = Vec::new();
        let th = |v| [wire::control(Ctl::Thread, 1), v];
        let load = wire::access(wire::LOAD, 0, 0x5000);
        let recs = [
            hello(0, 1, 0).as_slice(),
            &[wire::control(Ctl::ThreadNew, 1), 4],
            &th(4),
            &[load],
            &[wire::control(Ctl::ThreadExit, 1), 0],
            &th(0),
            &[wire::control(Ctl::Fork, 2), 9, 0],
        ]
        .concat();
        run(&mut d, 0, &msg(1, &recs), &mut ev);
        run(
            &mut d,
            1,
            &msg(9, &[hello(1, 1, 4).as_slice(), &[load]].concat()),
            &mut ev,
        );
        d.close(1, &mut |e| ev.push(e)).unwrap();
        run(
            &mut d,
            0,
            &msg(1, &[wire::control(Ctl::Reap, 2), 9, 9]),
            &mut ev,
        );
        assert!(ev.contains(&Event::Thread { pid: 1, tid: 1 }));
        assert!(ev.contains(&Event::ThreadExit {
            pid: 1,
            tid: 1,
            code: 0
        }));
        assert_eq!(
            ev.last(),
            Some(&Event::Exit {
                pid: 2,
                code: 128 + 9
            })
        );
        assert_eq!(d.stats().threads, 3);
        assert_eq!(d.stats().processes, 2);
    }

    #[test]
    fn bad_streams_are_errors_naming_the_connection_and_word() {
        let mut d = Demux::new();
        d.open(0);
        let e = d.message(0, &[1, 2, 3], &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("connection 0"), "{e}");
        let m = msg(
            5,
            &[
                hello(0, 1, 0).as_slice(),
                &[wire::control(Ctl::Munmap, 2), 1],
            ]
            .concat(),
        );
        let e = d.message(0, &m, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("word 6"), "{e}");
    }
}
