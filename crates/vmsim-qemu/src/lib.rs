//! The QEMU TCG plugin behind `vmsim record`.
//!
//! QEMU's user-mode emulator loads it into every traced process (`-plugin`). It sends
//! the recorder, over one connection per process image, every memory access (loads
//! and stores with their sizes; one fetch per executed block and page it spans), the
//! syscalls that change memory with their results, forks, threads, exits and execs,
//! and at start the mappings the ELF loader made. The records of all threads of a
//! process go through one ring in the order they happened ([`ring`]); a sender thread
//! turns them into messages ([`wire`]).
//!
//! Arguments (`-plugin FILE,name=value,...`): `sock` the recorder's abstract socket
//! name, `qemu` QEMU's binary, `so` this file, `exe` the program, `exec=1` when the
//! image was started by an exec, `buffers` /proc/meminfo's `Buffers` (pages) at that
//! exec ([`metadata`]).

#![warn(missing_docs)]

pub mod align;
pub mod brk;
/// ELF headers and `#!` lines, shared with the recorder (one file, in the vmsim library).
#[path = "../../vmsim/src/trace/record/elf.rs"]
pub mod elf;
pub mod exec;
pub mod ffi;
pub mod image;
pub mod metadata;
pub mod pace;
pub mod rep;
pub mod residency;
pub mod ring;
pub mod tmpfs;
/// The wire protocol, shared with the recorder (one file, in the vmsim library).
#[path = "../../vmsim/src/trace/record/wire.rs"]
pub mod wire;

use ffi::*;
use ring::{Ring, Sink, SpinLock};
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use wire::Ctl;

/// The plugin API version this plugin is written against (QEMU 7.2's).
#[no_mangle]
pub static qemu_plugin_version: c_int = 1;

struct Plugin {
    ring: Ring,
    pace: pace::Pace,
    respawn: exec::Respawn,
    exe: String,
}

static PLUGIN: OnceLock<Plugin> = OnceLock::new();
/// Held while draining and sending (see [`SpinLock`]).
static SENDING: SpinLock = SpinLock::new();
/// The connection to the recorder (-1: none).
static FD: AtomicI32 = AtomicI32::new(-1);
/// The connection's inode, to tell it from a descriptor the guest reused.
static FD_INO: AtomicU64 = AtomicU64::new(0);
/// The image's mappings have been sent.
static MAPPED: AtomicBool = AtomicBool::new(false);
/// The sender thread's message being built (only touched under [`SENDING`]).
static SINK: std::sync::Mutex<Option<Sink>> = std::sync::Mutex::new(None);
/// The host's mappings before QEMU loaded the guest (and after the sender started).
static BEFORE: OnceLock<Vec<image::MapLine>> = OnceLock::new();
/// The address space held for the program's heap until its first block ([`brk`]).
static HELD: std::sync::Mutex<Option<brk::Held>> = std::sync::Mutex::new(None);

/// What the page cache held of the program when the plugin was installed, before
/// QEMU read its headers; sent with the first block.
static EXE_CACHED: OnceLock<Option<(residency::FileId, residency::Runs)>> = OnceLock::new();

/// The address of QEMU's `guest_base` (user mode: a guest address plus its value is
/// the host's), found at install; 0 where QEMU does not export it, and then the
/// values stores write are not read.
static GUEST_BASE: AtomicU64 = AtomicU64::new(0);
/// Pages (numbers) of this process that stores have put bytes other than zeros in.
static NONZERO: std::sync::Mutex<Option<std::collections::HashSet<u64>>> =
    std::sync::Mutex::new(None);
/// The program break as the last `brk` returned it (0 before the first): a break
/// that comes down gives back the pages above it, which hold zeros when it grows
/// over them again (Linux unmaps them; QEMU clears them as the break grows).
static BRK: AtomicU64 = AtomicU64::new(0);
/// Bumped when pages leave [`NONZERO`], so that no thread trusts its [`KNOWN_NONZERO`].
static NONZERO_GEN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Pages this thread found in [`NONZERO`] (page + 1, by the page's low 8 bits), as
    /// of [`NONZERO_GEN`]'s value in the first field: most stores go to a page known.
    static KNOWN_NONZERO: std::cell::RefCell<(u64, [u64; 256])> =
        const { std::cell::RefCell::new((0, [0; 256])) };
    /// This thread's vCPU and the arguments of the syscall it is in.
    static SYSCALL: Cell<(u32, [u64; 6])> = const { Cell::new((0, [0; 6])) };
    /// This thread's load held back by [`on_mem`].
    static PENDING: Cell<Option<PendingLoad>> = const { Cell::new(None) };
    /// This thread's run of a repeated string instruction ([`rep`]), while it lasts.
    static REP: Cell<Option<rep::Run>> = const { Cell::new(None) };
    /// The length of the file this thread's write call is writing, as it was when
    /// the call began.
    static WRITE_FROM: Cell<u64> = const { Cell::new(0) };
    /// When this thread's `nanosleep` or `clock_nanosleep` began.
    static SLEEP_FROM: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
}

fn plugin() -> &'static Plugin {
    PLUGIN.get().expect("installed")
}

const SYS_READ: i64 = 0;
const SYS_FADVISE64: i64 = 221;
const SYS_WRITE: i64 = 1;
const SYS_OPEN: i64 = 2;
const SYS_CREAT: i64 = 85;
const SYS_OPENAT: i64 = 257;
const SYS_OPENAT2: i64 = 437;
const SYS_STAT: i64 = 4;
const SYS_FSTAT: i64 = 5;
const SYS_LSTAT: i64 = 6;
const SYS_PREAD64: i64 = 17;
const SYS_PWRITE64: i64 = 18;
const SYS_READV: i64 = 19;
const SYS_SENDFILE: i64 = 40;
const SYS_WRITEV: i64 = 20;
const SYS_RECVFROM: i64 = 45;
const SYS_GETDENTS64: i64 = 217;
const SYS_NEWFSTATAT: i64 = 262;
const SYS_PREADV: i64 = 295;
const SYS_PWRITEV: i64 = 296;
const SYS_GETRANDOM: i64 = 318;
const SYS_COPY_FILE_RANGE: i64 = 326;
const SYS_PREADV2: i64 = 327;
const SYS_PWRITEV2: i64 = 328;
const SYS_STATX: i64 = 332;
/// Bytes of `struct stat` and `struct statx` on x86-64.
const STAT_SIZE: u64 = 144;
const STATX_SIZE: u64 = 256;
const SYS_MMAP: i64 = 9;
const SYS_MPROTECT: i64 = 10;
const SYS_MUNMAP: i64 = 11;
const SYS_CLOSE: i64 = 3;
const SYS_UNLINK: i64 = 87;
const SYS_UNLINKAT: i64 = 263;
const SYS_BRK: i64 = 12;
const SYS_MREMAP: i64 = 25;
const SYS_MADVISE: i64 = 28;
const SYS_SHMAT: i64 = 30;
const SYS_CLONE: i64 = 56;
const SYS_FORK: i64 = 57;
const SYS_VFORK: i64 = 58;
const SYS_EXECVE: i64 = 59;
const SYS_EXIT: i64 = 60;
const SYS_WAIT4: i64 = 61;
const SYS_SHMDT: i64 = 67;
const SYS_PRCTL: i64 = 157;
const SYS_EXIT_GROUP: i64 = 231;
const SYS_NANOSLEEP: i64 = 35;
const SYS_MLOCK: i64 = 149;
const SYS_MLOCK2: i64 = 325;
const SYS_MUNLOCK: i64 = 150;
const SYS_MLOCKALL: i64 = 151;
const SYS_MUNLOCKALL: i64 = 152;
const MAP_LOCKED: u64 = 0x2000;
const MAP_POPULATE: u64 = 0x8000;
const MAP_NONBLOCK: u64 = 0x10000;
const MLOCK_ONFAULT: u64 = 1;
/// [`Ctl::Mlock`]'s modes: locked, and locked on fault (0 unlocks).
const MLOCK_LOCKED: u64 = 1;
const MLOCK_ON_FAULT: u64 = 2;
const SYS_CLOCK_NANOSLEEP: i64 = 230;
const SYS_WAITID: i64 = 247;
const SYS_EXECVEAT: i64 = 322;
const PR_SET_THP_DISABLE: u64 = 41;
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
/// Memory syscalls the model does not act on: sent as `Syscall` records.
const OTHER_MEMORY_SYSCALLS: [i64; 24] = [
    26, 27, 29, 31, 216, 237, 238, 239, 256, 279, 310, 311, 319, 323, 324, 329, 330, 331, 440, 447,
    448, 450, 453, 462,
];

/// The process at the other end of the recorder's socket `fd` (`SO_PEERCRED`): the
/// `vmsim record` that listens.
fn peer_pid(fd: c_int) -> Option<u32> {
    // SAFETY: getsockopt into a zeroed ucred of the size it is told.
    unsafe {
        let mut cred: libc::ucred = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        let ok = libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        ) == 0;
        (ok && cred.pid > 0).then_some(cred.pid as u32)
    }
}

fn connect(sock: &str) -> c_int {
    // SAFETY: plain socket calls on a zeroed sockaddr_un filled within its bounds.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return -1;
        }
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let name = sock.as_bytes();
        let n = name.len().min(addr.sun_path.len() - 1);
        for (d, &s) in addr.sun_path[1..=n].iter_mut().zip(name) {
            *d = s as c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + n) as libc::socklen_t;
        if libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) < 0 {
            libc::close(fd);
            return -1;
        }
        // Out of the way of the descriptors a program numbers from 3 up.
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 900);
        let fd = if high >= 0 {
            libc::close(fd);
            high
        } else {
            fd
        };
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st);
        FD_INO.store(st.st_ino, Ordering::Relaxed);
        fd
    }
}

/// Sends the whole records in `sink` (if any) and keeps a record cut short for the
/// next message.
fn send(sink: &mut Sink) {
    let bytes = sink.ready(2).len() * 8;
    if bytes > 16 {
        let fd = FD.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: fstat into a zeroed struct; send of the vector's initialised bytes.
            unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::fstat(fd, &mut st) != 0 || st.st_ino != FD_INO.load(Ordering::Relaxed) {
                    // The guest closed the connection (and may have reused its number).
                    FD.store(-1, Ordering::Relaxed);
                } else {
                    loop {
                        let n =
                            libc::send(fd, sink.words.as_ptr().cast(), bytes, libc::MSG_NOSIGNAL);
                        if n < 0
                            && std::io::Error::last_os_error().kind()
                                == std::io::ErrorKind::Interrupted
                        {
                            continue;
                        }
                        if n < 0 {
                            FD.store(-1, Ordering::Relaxed);
                        }
                        break;
                    }
                }
            }
        }
    }
    sink.sent(2);
}

fn new_sink() -> Sink {
    // SAFETY: getpid cannot fail.
    Sink::new(&[wire::MAGIC, unsafe { libc::getpid() } as u64])
}

/// Drains and sends; with `all`, until the ring is empty.
fn pump(all: bool) -> usize {
    SENDING.lock();
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let sink = guard.get_or_insert_with(new_sink);
    let mut moved = 0;
    loop {
        let n = plugin().ring.drain(sink, wire::MAX_MESSAGE, all);
        moved += n;
        send(sink);
        if n == 0 || !all {
            break;
        }
    }
    drop(guard);
    SENDING.unlock();
    moved
}

/// Starts the sender thread, with every signal blocked (QEMU's signal handling
/// expects its own threads to take them).
fn start_sender() {
    // SAFETY: sigset calls on a local set; the old mask is restored after the spawn.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let _ = std::thread::Builder::new()
            .name("vmsim-sender".into())
            .spawn(|| {
                let mut idle = 0u32;
                loop {
                    if pump(false) == 0 {
                        idle = (idle + 1).min(20);
                        std::thread::sleep(std::time::Duration::from_micros(50 * idle as u64));
                    } else {
                        idle = 0;
                    }
                }
            });
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

fn hello(how: u64, vcpu: u32) {
    // SAFETY: getppid cannot fail.
    let ppid = unsafe { libc::getppid() } as u64;
    plugin()
        .ring
        .control(vcpu, Ctl::Hello, &[how, ppid, vcpu as u64]);
}

extern "C" fn atfork_prepare() {
    SENDING.lock();
}

extern "C" fn atfork_release() {
    SENDING.unlock();
}

/// In a forked child: a fresh ring, connection and sender.
fn child_started(vcpu: u32) {
    let p = plugin();
    p.ring.reset();
    p.pace.forked(vcpu);
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = None;
    // The parent's connection stays the parent's: were the child to keep it open, its
    // end would wait for the child too.
    let inherited = FD.swap(-1, Ordering::Relaxed);
    if inherited >= 0 {
        // SAFETY: closing the child's copy of the plugin's own descriptor.
        unsafe { libc::close(inherited) };
    }
    FD.store(connect(&p.respawn.sock), Ordering::Relaxed);
    hello(wire::HELLO_FORK, vcpu);
    start_sender();
}

extern "C" fn on_tb_trans(_id: PluginId, tb: *mut Tb) {
    let p = plugin();
    if !MAPPED.swap(true, Ordering::Relaxed) {
        if let Some(held) = HELD.lock().ok().and_then(|mut h| h.take()) {
            held.release();
        }
        let before = BEFORE.get().map_or(&[][..], Vec::as_slice);
        let now = image::read_maps();
        // What the page cache held of the program (taken at install, before QEMU
        // read it) and its interpreter (the files QEMU loaded), before the plugin
        // reads their headers.
        if let Some(Some((id, runs))) = EXE_CACHED.get() {
            send_runs(0, *id, runs);
        }
        for m in &now {
            if m.path.starts_with('/') && !before.contains(m) {
                if let Ok(f) = std::fs::File::open(&m.path) {
                    send_cached(0, std::os::fd::AsRawFd::as_raw_fd(&f));
                }
            }
        }
        let image = image::image(before, &now, image::guest_stack_size());
        if let Some((start, end)) = image::emulator_pages(before, &now, &image) {
            EMULATOR_PAGES.store(start, Ordering::Relaxed);
            EMULATOR_LEN.store(end - start, Ordering::Relaxed);
        }
        for m in &image {
            p.ring.control(
                0,
                Ctl::Mmap,
                &[
                    m.addr, m.len, m.prot, m.flags, m.dev, m.ino, m.offset, m.size,
                ],
            );
        }
        if let Some(base) = guest_base() {
            p.ring.control(0, Ctl::Values, &[]);
            // The pages exec wrote its strings and tables on, faulted in by the kernel
            // before the program ran (`image::nonzero_runs`).
            if let Some(stack) = image.iter().find(|m| m.is_stack()) {
                let read = |va: u64, buf: &mut [u8]| exec::read_mem(base.wrapping_add(va), buf);
                for (addr, len) in image::nonzero_runs(stack.addr, stack.len, read) {
                    p.ring.control(0, Ctl::Populate, &[addr, len]);
                    for page in (addr >> 12)..((addr + len) >> 12) {
                        mark_nonzero(0, page);
                    }
                }
            }
        }
    }
    // SAFETY: QEMU passes a block being translated; its instructions are valid during
    // this callback, which is when callbacks are registered on them.
    unsafe {
        let n = qemu_plugin_tb_n_insns(tb);
        if n == 0 {
            return;
        }
        let start = qemu_plugin_tb_vaddr(tb);
        let last = qemu_plugin_tb_get_insn(tb, n - 1);
        let end = qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last) as u64;
        // At most 512 instructions of at most 15 bytes: the length fits 13 bits.
        let len = end.saturating_sub(start).min(wire::FETCH_LEN_MASK);
        // A block of one repeated string instruction runs once per iteration.
        let repeated = n == 1 && is_rep_string_at(start, len);
        qemu_plugin_register_vcpu_tb_exec_cb(
            tb,
            if repeated { on_rep_block } else { on_block },
            CB_NO_REGS,
            (start & wire::FETCH_ADDR_MASK | len << wire::FETCH_ADDR_BITS) as *mut c_void,
        );
        for i in 0..n {
            let insn = qemu_plugin_tb_get_insn(tb, i);
            // The instruction's address tells its accesses from the next one's.
            qemu_plugin_register_vcpu_mem_cb(
                insn,
                if repeated { on_rep_mem } else { on_mem },
                CB_NO_REGS,
                MEM_RW,
                qemu_plugin_insn_vaddr(insn) as *mut c_void,
            );
        }
    }
}

/// A block's address and length (at least 1) from its exec callback's data, which
/// packs them as a fetch record does.
fn block_of(data: *mut c_void) -> (u64, u64) {
    let (len, va) = wire::fetch_of(data as u64);
    (va, len.max(1))
}

/// A block runs: one fetch for its bytes on each page they lie on, carrying their
/// length (a replay counts the instructions' time by it).
extern "C" fn on_block(vcpu: c_uint, data: *mut c_void) {
    let (va, len) = block_of(data);
    let p = plugin();
    p.pace.tick(vcpu);
    let ring = &p.ring;
    flush_pending_load();
    end_rep_run();
    for (at, n) in copy_pages(va, len) {
        ring.access(vcpu, wire::fetch(n, at));
    }
}

/// Whether the `len` bytes of code at guest address `va` are a repeated string
/// instruction (false where the guest's memory cannot be read).
fn is_rep_string_at(va: u64, len: u64) -> bool {
    let Some(base) = guest_base() else {
        return false;
    };
    let mut code = [0u8; 15];
    let code = &mut code[..(len as usize).min(15)];
    exec::read_mem(base.wrapping_add(va), code) && rep::is_rep_string(code)
}

/// An iteration of a repeated string instruction ([`rep`]): the first of a run is
/// recorded as a block is; the others add their bytes to the run's fetches.
extern "C" fn on_rep_block(vcpu: c_uint, data: *mut c_void) {
    let (va, len) = block_of(data);
    match REP.with(Cell::get) {
        Some(mut run) if run.vcpu == vcpu && run.va == va => {
            // A fetch stays on the instruction's page: its replay translates that page.
            let room = (wire::MAX_FETCH - (va & 0xfff)).max(len);
            if let Some(n) = run.add_fetch(len, room) {
                plugin().ring.access(vcpu, wire::fetch(n, va));
            }
            REP.with(|c| c.set(Some(run)));
        }
        _ => {
            on_block(vcpu, data);
            REP.with(|c| c.set(Some(rep::Run::new(vcpu, va))));
        }
    }
}

/// Ends this thread's run of a repeated string instruction, if any: records the
/// bytes its iterations fetched and have not been recorded yet.
fn end_rep_run() {
    if let Some(run) = REP.with(Cell::take) {
        if run.fetched > 0 {
            plugin()
                .ring
                .access(run.vcpu, wire::fetch(run.fetched, run.va));
        }
    }
}

/// An access of a repeated string instruction: recorded when it goes on a page the
/// run did not just record for its kind.
extern "C" fn on_rep_mem(vcpu: c_uint, info: MemInfo, va: u64, data: *mut c_void) {
    // SAFETY: QEMU's decoders of the info it passed to this callback.
    let (shift, store) = unsafe {
        (
            qemu_plugin_mem_size_shift(info),
            qemu_plugin_mem_is_store(info),
        )
    };
    let Some(mut run) = REP.with(Cell::get).filter(|r| r.vcpu == vcpu) else {
        return on_mem(vcpu, info, va, data);
    };
    if run.new_page(va, store) {
        REP.with(|c| c.set(Some(run)));
        let p = plugin();
        p.pace.tick(vcpu);
        let kind = if store { wire::STORE } else { wire::LOAD };
        p.ring.access(vcpu, wire::access(kind, shift as u64, va));
    }
    if store {
        note_store(vcpu, va, 1 << shift);
    }
}

/// A load held back by one access: if the same instruction stores to the same address
/// next (a read-modify-write: `add [mem], reg`, `xchg`, `lock inc`), the store goes
/// first, since the hardware takes such an instruction's fault as a write's.
#[derive(Clone, Copy)]
struct PendingLoad {
    vcpu: u32,
    word: u64,
    insn: u64,
}

/// Sends this thread's held-back load, if any.
fn flush_pending_load() {
    if let Some(p) = PENDING.with(Cell::take) {
        plugin().ring.access(p.vcpu, p.word);
    }
}

/// Where QEMU keeps the guest's descriptor tables ([`image::emulator_pages`]), and how
/// many bytes (0: not found): accesses there are QEMU's, not the program's.
static EMULATOR_PAGES: AtomicU64 = AtomicU64::new(0);
static EMULATOR_LEN: AtomicU64 = AtomicU64::new(0);

/// Whether an access at `va` is one of QEMU's own, to its descriptor tables.
#[inline]
fn emulators(va: u64) -> bool {
    va.wrapping_sub(EMULATOR_PAGES.load(Ordering::Relaxed)) < EMULATOR_LEN.load(Ordering::Relaxed)
}

extern "C" fn on_mem(vcpu: c_uint, info: MemInfo, va: u64, data: *mut c_void) {
    if emulators(va) {
        return;
    }
    // SAFETY: QEMU's decoders of the info it passed to this callback.
    let (shift, store) = unsafe {
        (
            qemu_plugin_mem_size_shift(info),
            qemu_plugin_mem_is_store(info),
        )
    };
    let p = plugin();
    p.pace.tick(vcpu);
    let ring = &p.ring;
    let insn = data as u64;
    let held = PENDING.with(Cell::take);
    if store {
        let word = wire::access(wire::STORE, shift as u64, va);
        match held {
            Some(p)
                if p.insn == insn
                    && p.vcpu == vcpu
                    && p.word & wire::ADDR_MASK == va & wire::ADDR_MASK =>
            {
                ring.access(vcpu, word);
                ring.access(vcpu, p.word);
            }
            Some(p) => {
                ring.access(p.vcpu, p.word);
                ring.access(vcpu, word);
            }
            None => ring.access(vcpu, word),
        }
        note_store(vcpu, va, 1 << shift);
    } else {
        if let Some(p) = held {
            ring.access(p.vcpu, p.word);
        }
        let word = wire::access(wire::LOAD, shift as u64, va);
        PENDING.with(|c| c.set(Some(PendingLoad { vcpu, word, insn })));
    }
}

/// QEMU's `guest_base` now, if it exports it.
fn guest_base() -> Option<u64> {
    let at = GUEST_BASE.load(Ordering::Relaxed);
    // SAFETY: `at` is the address of QEMU's `uintptr_t guest_base` (found by dlsym),
    // which lives as long as the process; QEMU sets it before the guest runs.
    (at != 0).then(|| unsafe { std::ptr::read_volatile(at as *const u64) })
}

/// A store of `size` bytes at `va` just completed: if it wrote bytes other than zeros
/// to a page not yet known to hold such, the page is marked ([`Ctl::Nonzero`]).
fn note_store(vcpu: u32, va: u64, size: u64) {
    let Some(base) = guest_base() else { return };
    let page = va >> 12;
    if known_nonzero(page) {
        return;
    }
    let host = base.wrapping_add(va) as *const u8;
    // SAFETY: the guest's store of `size` bytes at `va` has just completed in this
    // process (QEMU calls memory callbacks after the access), so the `size` bytes at
    // the host address `guest_base + va` are mapped and readable; a concurrent write
    // by another thread changes only which value is seen.
    let nonzero = (0..size).any(|i| unsafe { std::ptr::read_volatile(host.add(i as usize)) } != 0);
    if nonzero {
        mark_nonzero(vcpu, page);
    }
}

/// Whether this thread knows page number `page` holds bytes other than zeros.
fn known_nonzero(page: u64) -> bool {
    let gen = NONZERO_GEN.load(Ordering::Relaxed);
    KNOWN_NONZERO.with(|k| {
        let mut k = k.borrow_mut();
        if k.0 != gen {
            *k = (gen, [0; 256]);
        }
        k.1[(page & 255) as usize] == page + 1
    })
}

/// Page number `page` holds bytes other than zeros: sent the first time.
fn mark_nonzero(vcpu: u32, page: u64) {
    KNOWN_NONZERO.with(|k| k.borrow_mut().1[(page & 255) as usize] = page + 1);
    if remember_nonzero(page) {
        plugin().ring.control(vcpu, Ctl::Nonzero, &[page << 12]);
    }
}

/// Adds page number `page` to [`NONZERO`]; whether it was new.
fn remember_nonzero(page: u64) -> bool {
    let mut set = NONZERO.lock().unwrap_or_else(|e| e.into_inner());
    set.get_or_insert_with(Default::default).insert(page)
}

/// The pages of `[addr, addr + len)` were unmapped or dropped: they hold zeros (or
/// nothing) until a store says otherwise.
fn forget_nonzero(addr: u64, len: u64) {
    let (first, end) = (addr >> 12, addr.saturating_add(len).div_ceil(4096));
    let mut set = NONZERO.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = set.as_mut() {
        // A range smaller than the set (a heap trimmed by a few pages, say) is
        // looked up page by page rather than the whole set walked.
        if end.saturating_sub(first) < s.len() as u64 {
            for p in first..end {
                s.remove(&p);
            }
        } else {
            s.retain(|&p| p < first || p >= end);
        }
    }
    NONZERO_GEN.fetch_add(1, Ordering::Relaxed);
}

/// The range a `brk` that moved the break from `old` to `new` gave back, if it came
/// down: the whole pages from the new break's page end to the old one's (Linux's
/// `brk` unmaps `[PAGE_ALIGN(new), PAGE_ALIGN(old))`; the page the new break is in
/// keeps its bytes). `old` is 0 before the first call.
fn brk_released(old: u64, new: u64) -> Option<(u64, u64)> {
    let up = |a: u64| a.checked_add(4095).map(|a| a & !4095);
    let (from, to) = (up(new)?, up(old)?);
    (old != 0 && from < to).then(|| (from, to - from))
}

extern "C" fn on_vcpu_init(_id: PluginId, vcpu: c_uint) {
    if vcpu != 0 {
        let (me, _) = SYSCALL.with(Cell::get);
        let p = plugin();
        p.pace.thread_started(vcpu, me);
        p.ring.threads_share();
        p.ring.control(me, Ctl::ThreadNew, &[vcpu as u64]);
    }
}

/// Whether `munmap(addr, len)` cannot fail on x86-64 Linux for its arguments: a
/// page-aligned start, a length above zero, and a range below the top of user space
/// (unmapping a range that holds no mapping succeeds; only `ENOMEM`, a split past
/// `vm.max_map_count`, is left, and then the record is wrong).
fn munmap_succeeds(addr: u64, len: u64) -> bool {
    const TASK_SIZE: u64 = (1 << 47) - 4096;
    addr % 4096 == 0
        && len > 0
        && addr
            .checked_add(len.saturating_add(4095) & !4095)
            .is_some_and(|end| end <= TASK_SIZE)
}

/// Records `munmap(addr, len)` by this thread: its pages hold no bytes any more.
fn record_munmap(vcpu: c_uint, addr: u64, len: u64) {
    forget_nonzero(addr, len);
    plugin().ring.control(vcpu, Ctl::Munmap, &[addr, len]);
}

#[allow(clippy::too_many_arguments)]
extern "C" fn on_syscall(
    _id: PluginId,
    vcpu: c_uint,
    num: i64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
    a6: u64,
    _a7: u64,
    _a8: u64,
) {
    SYSCALL.with(|c| c.set((vcpu, [a1, a2, a3, a4, a5, a6])));
    metadata::enter(num);
    flush_pending_load();
    let p = plugin();
    p.pace.away(vcpu);
    // What the thread did before the call goes before anything the call does.
    p.ring.flush_local();
    if let Some(pages) = metadata::loaded() {
        p.ring.control(vcpu, Ctl::FsMetadata, &[pages]);
    }
    match num {
        SYS_WRITE | SYS_PWRITE64 | SYS_WRITEV | SYS_PWRITEV | SYS_PWRITEV2 | SYS_SENDFILE
        | SYS_COPY_FILE_RANGE => {
            // The file written: copy_file_range's third argument, everyone else's first.
            let out = if num == SYS_COPY_FILE_RANGE { a3 } else { a1 };
            let len = regular_file(out as c_int).map_or(0, |st| st.st_size as u64);
            WRITE_FROM.with(|c| c.set(len));
        }
        SYS_EXIT => p.ring.control(vcpu, Ctl::ThreadExit, &[a1]),
        // At entry, when it cannot fail: another thread's mmap may get the same range
        // the moment it is free, and its record must come after this one.
        SYS_MUNMAP if munmap_succeeds(a1, a2) => record_munmap(vcpu, a1, a2),
        SYS_CLOSE => tmpfs::closing(a1 as c_int),
        SYS_UNLINK | SYS_UNLINKAT => {
            let (dirfd, path, flags) = if num == SYS_UNLINK {
                (libc::AT_FDCWD, a1, 0)
            } else {
                (a1 as c_int, a2, a3 as c_int)
            };
            if let Some(path) = exec::read_cstr(path) {
                tmpfs::unlinking(dirfd, &path, flags);
            }
        }
        // Time asleep is the host's: QEMU sleeps as long as the program asked (or
        // until a signal), however slowly it emulates the rest.
        SYS_NANOSLEEP | SYS_CLOCK_NANOSLEEP => {
            SLEEP_FROM.with(|c| c.set(Some(std::time::Instant::now())));
        }
        // At entry: QEMU 7.2 refuses this prctl itself, where Linux would take it.
        SYS_PRCTL if a1 == PR_SET_THP_DISABLE => p.ring.control(vcpu, Ctl::ThpDisable, &[a2]),
        SYS_EXIT_GROUP => {
            send_drops(vcpu, tmpfs::at_exit());
            p.ring.control(vcpu, Ctl::Exit, &[a1]);
            pump(true);
        }
        SYS_EXECVE | SYS_EXECVEAT => {
            let (path, argv, envp) = if num == SYS_EXECVE {
                (a1, a2, a3)
            } else if a1 as i32 == libc::AT_FDCWD && a5 == 0 {
                (a2, a3, a4)
            } else {
                p.ring.control(vcpu, Ctl::Untraced, &[]);
                return;
            };
            if exec::follow(&p.respawn, &p.exe, path, argv, envp, || {
                pump(true);
            }) {
                p.ring.control(vcpu, Ctl::Untraced, &[]);
            }
        }
        _ => {}
    }
}

extern "C" fn on_syscall_ret(_id: PluginId, vcpu: c_uint, num: i64, ret: i64) {
    let (_, a) = SYSCALL.with(Cell::get);
    let p = plugin();
    p.pace.back(vcpu);
    let ok = !(-4095..0).contains(&ret);
    let r = ret as u64;
    let ring = &p.ring;
    if let Some(pages) = metadata::leave() {
        ring.control(vcpu, Ctl::FsMetadata, &[pages]);
    }
    match num {
        SYS_MMAP if ok => {
            // A mapping of /dev/zero is anonymous memory (Linux: private, or shared
            // through `shmem_zero_setup`).
            let flags = if a[3] & 0x20 == 0 && dev_zero(a[4] as c_int) {
                a[3] | 0x20
            } else {
                a[3]
            };
            let (dev, ino, size) = if flags & 0x20 != 0 {
                (0, 0, 0)
            } else {
                file_id(a[4] as c_int)
            };
            if flags & 0x20 == 0 {
                // What of the file was cached before its first use (a file opened
                // before the plugin saw it: inherited, or the program's own).
                send_cached(vcpu, a[4] as c_int);
            }
            // Over a mapping (MAP_FIXED): whatever was there is gone.
            forget_nonzero(r, a[1]);
            ring.control(
                vcpu,
                Ctl::Mmap,
                &[r, a[1], a[2], flags, dev, ino, a[5], size],
            );
            // The kernel faults the new mapping in before mmap returns (mm_populate):
            // always when locked (as an mlock of it does); MAP_NONBLOCK has made
            // MAP_POPULATE alone do nothing since Linux 2.6.23.
            if a[3] & MAP_LOCKED != 0 {
                ring.control(vcpu, Ctl::Mlock, &[r, a[1], MLOCK_LOCKED]);
            } else if a[3] & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE {
                ring.control(vcpu, Ctl::Populate, &[r, a[1]]);
            }
        }
        // A file opened: what of it the page cache held before the program reads or
        // maps any of it (opening reads nothing; `O_TRUNC` has emptied it by now).
        SYS_OPEN | SYS_OPENAT | SYS_OPENAT2 | SYS_CREAT if ok => send_cached(vcpu, ret as c_int),
        SYS_MUNMAP if ok => {
            // Recorded at entry; one that could have failed is recorded only now.
            if !munmap_succeeds(a[0], a[1]) {
                record_munmap(vcpu, a[0], a[1]);
            }
            send_drops(vcpu, tmpfs::unmapped());
        }
        SYS_CLOSE | SYS_UNLINK | SYS_UNLINKAT => send_drops(vcpu, tmpfs::left(ok)),
        SYS_MPROTECT if ok => ring.control(vcpu, Ctl::Mprotect, &[a[0], a[1], a[2]]),
        SYS_BRK => {
            if let Some((at, len)) = brk_released(BRK.swap(r, Ordering::Relaxed), r) {
                forget_nonzero(at, len);
            }
            ring.control(vcpu, Ctl::Brk, &[r]);
        }
        SYS_MREMAP if ok => {
            // The pages moved keep their bytes (and the model's frames their marks).
            let moved = nonzero_in(a[0], a[1].min(a[2]));
            forget_nonzero(a[0], a[1]);
            ring.control(vcpu, Ctl::Mremap, &[a[0], a[1], r, a[2]]);
            for page in moved {
                remember_nonzero((r >> 12) + (page - (a[0] >> 12)));
            }
            send_drops(vcpu, tmpfs::unmapped());
        }
        SYS_MADVISE if ok => {
            // DONTNEED, FREE, REMOVE, DONTNEED_LOCKED: the pages read as zeros again
            // (FREE's once reclaim takes them; a store before that marks them again).
            if matches!(a[2], 4 | 8 | 9 | 24) {
                forget_nonzero(a[0], a[1]);
            }
            ring.control(vcpu, Ctl::Madvise, &[a[0], a[1], a[2]]);
        }
        SYS_SHMAT if ok => {
            let len = shm_size(a[0] as c_int);
            let prot = if a[2] & 0o10000 != 0 { 1 } else { 3 };
            ring.control(vcpu, Ctl::Shmat, &[a[0], r, len, prot]);
        }
        SYS_SHMDT if ok => ring.control(vcpu, Ctl::Shmdt, &[a[0]]),
        SYS_FORK | SYS_VFORK | SYS_CLONE if ok => {
            let thread = num == SYS_CLONE && a[0] & CLONE_VM != 0 && a[0] & CLONE_VFORK == 0;
            if thread {
            } else if r == 0 {
                child_started(vcpu);
            } else {
                // QEMU runs a vfork as a fork; the model shares the address space.
                let vfork = num == SYS_VFORK || a[0] & CLONE_VFORK != 0;
                ring.control(vcpu, Ctl::Fork, &[r, u64::from(vfork)]);
            }
        }
        SYS_WAIT4 if ok && ret > 0 && a[1] != 0 => {
            let mut st = [0u8; 4];
            if exec::read_mem(a[1], &mut st) {
                ring.control(vcpu, Ctl::Reap, &[r, i32::from_le_bytes(st) as u32 as u64]);
            }
        }
        SYS_WAITID if ok && a[2] != 0 => {
            // siginfo_t: si_code at 8, si_pid at 16, si_status at 24.
            let mut si = [0u8; 28];
            if exec::read_mem(a[2], &mut si) {
                let word = |at: usize| i32::from_le_bytes(si[at..at + 4].try_into().unwrap());
                let (code, pid, status) = (word(8), word(16), word(24));
                let wstatus = if code == 1 {
                    (status & 0xff) << 8
                } else {
                    status & 0x7f
                };
                if pid > 0 && (1..=3).contains(&code) {
                    ring.control(vcpu, Ctl::Reap, &[pid as u64, wstatus as u32 as u64]);
                }
            }
        }
        // Locking: the model locks the range (and faults it in unless on fault).
        // QEMU 7.2 has no mlock2 and returns ENOSYS, where Linux takes valid flags.
        SYS_MLOCK | SYS_MLOCK2
            if ok
                || (num == SYS_MLOCK2
                    && ret == -libc::ENOSYS as i64
                    && a[2] & !MLOCK_ONFAULT == 0) =>
        {
            let mode = if num == SYS_MLOCK2 && a[2] & MLOCK_ONFAULT != 0 {
                MLOCK_ON_FAULT
            } else {
                MLOCK_LOCKED
            };
            ring.control(vcpu, Ctl::Mlock, &[a[0], a[1], mode]);
        }
        SYS_MUNLOCK if ok => ring.control(vcpu, Ctl::Mlock, &[a[0], a[1], 0]),
        SYS_MLOCKALL if ok => ring.control(vcpu, Ctl::Mlockall, &[a[0]]),
        SYS_MUNLOCKALL if ok => ring.control(vcpu, Ctl::Mlockall, &[0]),
        n if OTHER_MEMORY_SYSCALLS.contains(&n) => ring.control(vcpu, Ctl::Syscall, &[n as u64]),
        SYS_NANOSLEEP | SYS_CLOCK_NANOSLEEP => {
            if let Some(from) = SLEEP_FROM.with(Cell::take) {
                let ns = u64::try_from(from.elapsed().as_nanos()).unwrap_or(u64::MAX);
                ring.control(vcpu, Ctl::Sleep, &[ns]);
            }
        }
        // The kernel's own copies to and from the program's buffers fault as the
        // program's accesses would (Linux counts them in its minflt), and QEMU's host
        // does them out of the plugin's sight: one access per page they touch.
        // A read of a regular file names its buffer instead: the replay makes the stores
        // page by page as it copies, as Linux's copy faults in the middle of the read.
        SYS_READ | SYS_PREAD64 | SYS_RECVFROM | SYS_GETDENTS64 | SYS_GETRANDOM if ok && ret > 0 => {
            let buf = if num == SYS_GETRANDOM { a[0] } else { a[1] };
            if matches!(num, SYS_READ | SYS_PREAD64)
                && file_io(vcpu, Ctl::FileRead, num, &a, r, buf)
            {
                note_copies(vcpu, buf, r);
            } else {
                kernel_copy(vcpu, wire::STORE, buf, r);
            }
        }
        SYS_READV | SYS_PREADV | SYS_PREADV2 if ok && ret > 0 => {
            file_io(vcpu, Ctl::FileRead, num, &a, r, 0);
            kernel_copy_iov(vcpu, wire::STORE, a[1], a[2], r);
        }
        SYS_STAT | SYS_FSTAT | SYS_LSTAT if ok => kernel_copy(vcpu, wire::STORE, a[1], STAT_SIZE),
        SYS_NEWFSTATAT if ok => kernel_copy(vcpu, wire::STORE, a[2], STAT_SIZE),
        SYS_STATX if ok => kernel_copy(vcpu, wire::STORE, a[4], STATX_SIZE),
        SYS_WRITE | SYS_PWRITE64 if ok && ret > 0 => {
            kernel_copy(vcpu, wire::LOAD, a[1], r);
            file_io(vcpu, Ctl::FileWrite, num, &a, r, 0);
        }
        SYS_WRITEV | SYS_PWRITEV | SYS_PWRITEV2 if ok && ret > 0 => {
            kernel_copy_iov(vcpu, wire::LOAD, a[1], a[2], r);
            file_io(vcpu, Ctl::FileWrite, num, &a, r, 0);
        }
        SYS_SENDFILE | SYS_COPY_FILE_RANGE if ok && ret > 0 => file_copy(vcpu, num, &a, r),
        // Advice on a regular file: its readahead, or its pages to read or drop now.
        SYS_FADVISE64 if ok => {
            let fd = a[0] as c_int;
            if let Some(st) = regular_file(fd) {
                note_tmpfs(vcpu, fd, &st);
                let words = [st.st_dev, st.st_ino, st.st_size as u64, a[1], a[2], a[3]];
                ring.control(vcpu, Ctl::Fadvise, &words);
            }
        }
        _ => {}
    }
}

/// Sends what of the file open as `fd` the host's page cache holds
/// ([`Ctl::Cached`]), the first time this process sees the file.
fn send_cached(vcpu: u32, fd: c_int) {
    if let Some(st) = regular_file(fd) {
        note_tmpfs(vcpu, fd, &st);
    }
    if let Some((id, runs)) = residency::take(fd) {
        send_runs(vcpu, id, &runs);
    }
}

/// Sends [`Ctl::Tmpfs`] for the regular file `st`, open as `fd`, if it is on tmpfs,
/// the first time this process uses it (before the record that uses it).
fn note_tmpfs(vcpu: u32, fd: c_int, st: &libc::stat) {
    tmpfs::first_use(fd, st, || {
        let words = [st.st_dev, st.st_ino, st.st_size as u64];
        plugin().ring.control(vcpu, Ctl::Tmpfs, &words);
    });
}

/// Sends [`Ctl::TmpfsDrop`] for each tmpfs file in `ids` this process let go.
fn send_drops(vcpu: u32, ids: impl IntoIterator<Item = tmpfs::Id>) {
    for (dev, ino) in ids {
        plugin().ring.control(vcpu, Ctl::TmpfsDrop, &[dev, ino]);
    }
}

/// Sends the runs of pages of file `id` the page cache held ([`Ctl::Cached`]; one
/// empty run for none).
fn send_runs(vcpu: u32, (dev, ino, size): residency::FileId, runs: &residency::Runs) {
    let ring = &plugin().ring;
    if runs.is_empty() {
        ring.control(vcpu, Ctl::Cached, &[dev, ino, size, 0, 0]);
    }
    for &(first, pages) in runs {
        ring.control(vcpu, Ctl::Cached, &[dev, ino, size, first, pages]);
    }
}

/// What `fstat` says of `fd`, if it is a regular file.
fn regular_file(fd: c_int) -> Option<libc::stat> {
    // SAFETY: fstat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(st)
    }
}

/// `RWF_APPEND`: a `pwritev2` flag that appends whatever the offset.
const RWF_APPEND: u64 = 0x10;

/// A read or write family call of `num` (`ctl` says which) with arguments `a`
/// returned `n` bytes: if it read or wrote a regular file, the file, where in it and
/// how much (the page cache served it), and the file's length after (and, for a
/// write, before); `buf` is a read's buffer when the replay is to make its stores (0:
/// they are sent as accesses). Whether it was sent.
fn file_io(vcpu: u32, ctl: Ctl, num: i64, a: &[u64; 6], n: u64, buf: u64) -> bool {
    let fd = a[0] as c_int;
    let Some(st) = regular_file(fd) else {
        return false;
    };
    // SAFETY: lseek and fcntl only ask the descriptor's position and flags.
    let (pos, append) = unsafe {
        (
            libc::lseek(fd, 0, libc::SEEK_CUR),
            libc::fcntl(fd, libc::F_GETFL) & libc::O_APPEND != 0,
        )
    };
    let write = ctl == Ctl::FileWrite;
    let before = WRITE_FROM.with(Cell::get);
    let at = match num {
        // Linux appends at the old end whatever the offset (pwrite on an O_APPEND
        // descriptor too).
        _ if write && (append || (num == SYS_PWRITEV2 && a[5] & RWF_APPEND != 0)) => before,
        // preadv2 and pwritev2 with offset -1 work at the position, as read does.
        SYS_PREAD64 | SYS_PREADV | SYS_PWRITE64 | SYS_PWRITEV => a[3],
        SYS_PREADV2 | SYS_PWRITEV2 if a[3] as i64 != -1 => a[3],
        _ if pos >= 0 => (pos as u64).saturating_sub(n),
        _ => return false,
    };
    let last = if write { before } else { buf };
    send_file_io(vcpu, ctl, fd, &st, at, n, last);
    true
}

/// Sends what a read (`Ctl::FileRead`) or write (`Ctl::FileWrite`) of `n` bytes at
/// byte `at` of the regular file `st`, open as `fd`, did; `last` is a write's file
/// length before, or a read's buffer (0: none).
fn send_file_io(vcpu: u32, ctl: Ctl, fd: c_int, st: &libc::stat, at: u64, n: u64, last: u64) {
    note_tmpfs(vcpu, fd, st);
    let words = [st.st_dev, st.st_ino, at, n, st.st_size as u64, last];
    plugin().ring.control(vcpu, ctl, &words);
}

/// `sendfile` or `copy_file_range` (`num`, arguments `a`) copied `n` bytes from one
/// descriptor to another inside the kernel: through the page cache, a read of the
/// source and a write of the destination, as far as each is a regular file. Each
/// side's offset is the one its pointer argument was advanced from, or else its
/// descriptor's position, which the call advanced. Neither call touches the program's
/// memory, and neither writes to an `O_APPEND` descriptor (Linux refuses).
fn file_copy(vcpu: u32, num: i64, a: &[u64; 6], n: u64) {
    // (fd, offset pointer) of the source and of the destination.
    let (src, dst) = if num == SYS_COPY_FILE_RANGE {
        ((a[0], a[1]), (a[2], a[3]))
    } else {
        ((a[1], a[2]), (a[0], 0))
    };
    let start = |(fd, ptr): (u64, u64)| -> Option<u64> {
        let end = if ptr != 0 {
            let mut v = [0u8; 8];
            exec::read_mem(ptr, &mut v).then(|| u64::from_le_bytes(v))?
        } else {
            // SAFETY: lseek only asks the descriptor's position.
            let pos = unsafe { libc::lseek(fd as c_int, 0, libc::SEEK_CUR) };
            u64::try_from(pos).ok()?
        };
        end.checked_sub(n)
    };
    if let (Some(st), Some(at)) = (regular_file(src.0 as c_int), start(src)) {
        send_file_io(vcpu, Ctl::FileRead, src.0 as c_int, &st, at, n, 0);
    }
    if let (Some(st), Some(at)) = (regular_file(dst.0 as c_int), start(dst)) {
        let before = WRITE_FROM.with(Cell::get);
        send_file_io(vcpu, Ctl::FileWrite, dst.0 as c_int, &st, at, n, before);
    }
}

/// The kernel copied `total` bytes to or from the `count` buffers of the `iovec` array
/// at `iov` (at most 64 of them are followed).
fn kernel_copy_iov(vcpu: u32, kind: u64, iov: u64, count: u64, total: u64) {
    let mut left = total;
    for i in 0..count.min(64) {
        let mut v = [0u8; 16];
        if left == 0 || !exec::read_mem(iov + 16 * i, &mut v) {
            break;
        }
        let base = u64::from_le_bytes(v[..8].try_into().unwrap());
        let len = u64::from_le_bytes(v[8..].try_into().unwrap()).min(left);
        kernel_copy(vcpu, kind, base, len);
        left -= len;
    }
}

/// The kernel copied `len` bytes to (`STORE`) or from (`LOAD`) the program's buffer at
/// `buf`: one access at the first byte of each page the copy touches.
fn kernel_copy(vcpu: u32, kind: u64, buf: u64, len: u64) {
    let ring = &plugin().ring;
    for (at, n) in copy_pages(buf, len) {
        ring.access(vcpu, wire::access(kind, 0, at));
        if kind == wire::STORE {
            note_copy(vcpu, at, n);
        }
    }
}

/// The kernel copied `len` bytes to `buf`, its stores made by the replay (a read of a
/// file): marks the pages that got bytes other than zeros.
fn note_copies(vcpu: u32, buf: u64, len: u64) {
    for (at, n) in copy_pages(buf, len) {
        note_copy(vcpu, at, n);
    }
}

/// The pieces of `[buf, buf + len)` page by page: where each starts and its bytes.
fn copy_pages(buf: u64, len: u64) -> impl Iterator<Item = (u64, u64)> {
    let end = buf.saturating_add(len);
    let next = |at: u64| (at | 0xfff) + 1;
    std::iter::successors(Some(buf).filter(|&at| at < end), move |&at| {
        Some(next(at)).filter(|&n| n < end)
    })
    .map(move |at| (at, next(at).min(end) - at))
}

/// The kernel wrote `len` bytes at `at` (within one page): marks the page if any is
/// not zero.
fn note_copy(vcpu: u32, at: u64, len: u64) {
    let Some(base) = guest_base() else { return };
    let mut page = [0u8; 4096];
    let buf = &mut page[..(len as usize).min(4096)];
    if exec::read_mem(base.wrapping_add(at), buf) && buf.iter().any(|&b| b != 0) {
        mark_nonzero(vcpu, at >> 12);
    }
}

/// The marked pages of `[addr, addr + len)`.
fn nonzero_in(addr: u64, len: u64) -> Vec<u64> {
    let (first, end) = (addr >> 12, addr.saturating_add(len).div_ceil(4096));
    let set = NONZERO.lock().unwrap_or_else(|e| e.into_inner());
    set.as_ref()
        .map(|s| {
            s.iter()
                .copied()
                .filter(|&p| p >= first && p < end)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `fd` is `/dev/zero` (character device 1:5).
fn dev_zero(fd: c_int) -> bool {
    // SAFETY: fstat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFCHR
            && st.st_rdev == libc::makedev(1, 5)
    }
}

/// The device, inode and length of the file open as `fd` ((0, 0, 0) if it is not one).
fn file_id(fd: c_int) -> (u64, u64, u64) {
    // SAFETY: fstat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return (0, 0, 0);
        }
        (st.st_dev, st.st_ino, st.st_size as u64)
    }
}

/// The size of System V shared-memory segment `id` (0 if it cannot be read).
fn shm_size(id: c_int) -> u64 {
    // SAFETY: shmctl(IPC_STAT) into a zeroed struct.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        if libc::shmctl(id, libc::IPC_STAT, &mut ds) != 0 {
            return 0;
        }
        ds.shm_segsz as u64
    }
}

extern "C" fn on_atexit(_id: PluginId, _data: *mut c_void) {
    flush_pending_load();
    plugin()
        .ring
        .control(SYSCALL.with(Cell::get).0, Ctl::End, &[]);
    pump(true);
}

/// QEMU's entry point: reads the arguments, connects to the recorder and registers
/// the callbacks.
///
/// # Safety
/// QEMU calls it once, with `argv` holding `argc` C strings.
#[no_mangle]
pub unsafe extern "C" fn qemu_plugin_install(
    id: PluginId,
    _info: *const c_void,
    argc: c_int,
    argv: Argv,
) -> c_int {
    let mut respawn = exec::Respawn::default();
    let (mut exe, mut by_exec, mut buffers) = (String::new(), false, None);
    for i in 0..argc.max(0) as usize {
        // SAFETY: QEMU passes `argc` valid C strings.
        let a = unsafe { exec::arg_str(*argv.add(i)) };
        let (k, v) = a.split_once('=').unwrap_or((&a, ""));
        match k {
            "sock" => respawn.sock = v.to_string(),
            "qemu" => respawn.qemu = v.to_string(),
            "so" => respawn.plugin = v.to_string(),
            "exe" => exe = v.to_string(),
            "exec" => by_exec = v == "1",
            "buffers" => buffers = v.parse().ok(),
            _ => {}
        }
    }
    if respawn.sock.is_empty() {
        eprintln!("vmsim-qemu: no sock= argument; this plugin is loaded by `vmsim record`");
        return -1;
    }
    let fd = connect(&respawn.sock);
    if fd < 0 {
        eprintln!(
            "vmsim-qemu: cannot connect to the recorder ({})",
            std::io::Error::last_os_error()
        );
        return -1;
    }
    FD.store(fd, Ordering::Relaxed);
    if let Some(recorder) = peer_pid(fd) {
        residency::note_recorder(recorder);
    }
    // SAFETY: dlsym with a NUL-terminated name; the result is only an address.
    let gb = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"guest_base".as_ptr()) };
    GUEST_BASE.store(gb as u64, Ordering::Relaxed);
    let p = Plugin {
        ring: Ring::new(),
        pace: pace::Pace::new(),
        respawn,
        exe,
    };
    // QEMU loads the program after installing its plugins: what of it is cached now is
    // what the program found (QEMU's first read of its headers reads ahead).
    let exe_cached = std::fs::File::open(&p.exe)
        .ok()
        .and_then(|f| residency::take(std::os::fd::AsRawFd::as_raw_fd(&f)));
    let _ = EXE_CACHED.set(exe_cached);
    if PLUGIN.set(p).is_err() {
        return -1;
    }
    hello(
        if by_exec {
            wire::HELLO_EXEC
        } else {
            wire::HELLO_FIRST
        },
        0,
    );
    // QEMU opens the program and its interpreter from here: their lookups count from
    // the exec that started this image, or from now.
    metadata::loading_from(buffers.or_else(metadata::buffers_pages));
    // SAFETY: registering plain C functions with QEMU and with fork.
    unsafe {
        libc::pthread_atfork(
            Some(atfork_prepare),
            Some(atfork_release),
            Some(atfork_release),
        );
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
        qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
        qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
        qemu_plugin_register_vcpu_syscall_ret_cb(id, on_syscall_ret);
        qemu_plugin_register_atexit_cb(id, on_atexit, std::ptr::null_mut());
    }
    start_sender();
    let _ = BEFORE.set(image::read_maps());
    // SAFETY: dlsym with a NUL-terminated name; the result is only an address.
    let next = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mmap_next_start".as_ptr()) };
    if !next.is_null() {
        // SAFETY: QEMU's `abi_ulong mmap_next_start` (8 bytes for a 64-bit guest),
        // read before QEMU, single-threaded yet, loads the program.
        let next = unsafe { std::ptr::read_volatile(next as *const u64) };
        if let Ok(mut h) = HELD.lock() {
            *h = brk::hold(&plugin().exe, next);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::{brk_released, munmap_succeeds};

    /// A break that comes down gives back the whole pages above its new end; one
    /// that grows, stays, or is first read gives back nothing.
    #[test]
    fn a_lowered_break_gives_back_the_pages_above_it() {
        assert_eq!(brk_released(0x5000, 0x3000), Some((0x3000, 0x2000)));
        // The page the new break falls in stays; the old break's partial page goes.
        assert_eq!(brk_released(0x5800, 0x3010), Some((0x4000, 0x2000)));
        assert_eq!(brk_released(0x3000, 0x5000), None);
        assert_eq!(brk_released(0x3010, 0x3ff0), None, "within one page");
        assert_eq!(brk_released(0, 0x3000), None, "the first call");
        assert_eq!(brk_released(u64::MAX, 0x3000), None, "no page end");
    }

    /// A munmap is recorded at entry only when Linux cannot refuse it.
    #[test]
    fn only_a_munmap_that_cannot_fail_is_recorded_at_entry() {
        assert!(munmap_succeeds(0x7fff_f000_0000, 0x10000));
        assert!(munmap_succeeds(0x1000, 1));
        assert!(!munmap_succeeds(0x7fff_f000_0800, 0x1000));
        assert!(!munmap_succeeds(0x7fff_f000_0000, 0));
        assert!(!munmap_succeeds(0x7fff_ffff_f000, 0x2000));
        assert!(!munmap_succeeds(!0xfff, 0x1000));
    }
}
