//! Recording with QEMU's user-mode emulator and vmsim's plugin (the default tool).
//!
//! The recorder listens on a Unix `SOCK_SEQPACKET` socket with an abstract name and
//! starts `qemu-x86_64 -plugin libvmsim_qemu.so,... PROGRAM`. Every process image the
//! program becomes (itself, each forked child, each exec'd image, which the plugin
//! starts under QEMU again) connects and streams its records; [`Demux`] orders them
//! into one trace. The recording ends when the first program has exited and its
//! descendants have either closed their connections or sent nothing for [`LINGER`]: a
//! process the program left running (a daemon, a `sleep &`) cannot hold it up.

use super::demux::{ConnId, Demux};
use super::{system, Progress, RecordError, RecordOptions, Recording};
use crate::output::OutputFile;
use crate::trace::{EventWriter, TraceError};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How long after the first program's exit the recorder waits for a descendant that
/// sends nothing.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// The plugin's file name, looked for next to the vmsim executable.
pub const PLUGIN_FILE: &str = "libvmsim_qemu.so";
/// QEMU's user-mode emulator for the host's architecture.
pub const QEMU: &str = "qemu-x86_64";

/// Finds `name` on `PATH` (or takes it as a path if it has a slash).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The plugin: `$VMSIM_QEMU_PLUGIN`, or `given` (the copy the `vmsim` binary carries),
/// or [`PLUGIN_FILE`] beside the running executable or in `../lib/vmsim/` from it.
pub fn find_plugin(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VMSIM_QEMU_PLUGIN") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join(PLUGIN_FILE),
        dir.join("../lib/vmsim").join(PLUGIN_FILE),
        // Test binaries live one folder below their profile's folder.
        dir.join("..").join(PLUGIN_FILE),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Counts the bytes that pass through to the output.
struct Counting<W> {
    inner: W,
    progress: Arc<Progress>,
}

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What the collecting thread hands back: the demultiplexer and the open trace.
type Written = (Demux, EventWriter<Counting<OutputFile>>);

/// A listening socket with an abstract name.
fn listen(name: &str) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket calls; the sockaddr is zeroed and filled within bounds, and
    // the descriptor is owned from here on.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let n = name.len().min(addr.sun_path.len() - 1);
        for (d, &s) in addr.sun_path[1..=n].iter_mut().zip(name.as_bytes()) {
            *d = s as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + n) as libc::socklen_t;
        if libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) < 0
            || libc::listen(fd, 128) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(owned)
    }
}

/// A plugin held in memory (a memfd), readable by QEMU as a file for as long as it is
/// held: the descriptor and the path other processes open it by.
pub fn plugin_in_memory(bytes: &[u8]) -> std::io::Result<(OwnedFd, PathBuf)> {
    use std::io::Write;
    // SAFETY: memfd_create with a valid C string; the descriptor is owned at once.
    let fd = unsafe { libc::memfd_create(c"libvmsim_qemu.so".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new descriptor no one else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd.try_clone()?);
    f.write_all(bytes)?;
    let path = PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        fd.as_raw_fd()
    ));
    Ok((fd, path))
}

/// Records under QEMU as `opts` say (see [`super::record`]), with the plugin `opts`
/// names unless `$VMSIM_QEMU_PLUGIN` names another (see [`find_plugin`]).
pub fn record(
    opts: &RecordOptions,
    interrupted: &dyn Fn() -> Option<i32>,
    progress: Arc<Progress>,
) -> Result<Recording, RecordError> {
    let RecordOptions {
        output,
        format,
        zstd,
        program,
        plugin,
        ..
    } = *opts;
    let (prog, args) = program.split_first().ok_or(RecordError::NoProgram)?;
    let qemu = match std::env::var_os("VMSIM_QEMU") {
        Some(q) => Some(PathBuf::from(q)),
        None => which(QEMU),
    }
    .ok_or(RecordError::NoQemu)?;
    let plugin = find_plugin(plugin).ok_or(RecordError::NoPlugin)?;
    let exe = which(prog).ok_or_else(|| RecordError::NoSuchProgram(prog.clone()))?;
    let out = OutputFile::create(output, &[])?;
    let name = format!(
        "vmsim-record-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let listener = listen(&name).map_err(system("making the recorder's socket"))?;
    let esc = |p: &Path| p.display().to_string().replace(',', ",,");
    let spec = |exe: &Path| {
        format!(
            "{},sock={},qemu={},so={},exe={}",
            esc(&plugin),
            name,
            esc(&qemu),
            esc(&plugin),
            esc(exe)
        )
    };
    // QEMU loads ELF files only: a script runs as the kernel would run it, its `#!`
    // interpreter with the script's path.
    let head = read_head(&exe).map_err(system("reading the program"))?;
    let mut cmd = std::process::Command::new(&qemu);
    // QEMU runs with the plugin preloaded too, so that its probes for guest space are
    // placed as Linux places large anonymous mappings; the guest keeps its own
    // LD_PRELOAD (the plugin's `align` module).
    let guest_preload = std::env::var("LD_PRELOAD").ok();
    cmd.env("LD_PRELOAD", &plugin);
    match guest_preload {
        Some(v) => cmd.arg("-E").arg(format!("LD_PRELOAD={v}")),
        None => cmd.arg("-U").arg("LD_PRELOAD"),
    };
    if super::elf::is_x86_64_elf(&head) {
        cmd.arg("-plugin")
            .arg(spec(&exe))
            .arg("-0")
            .arg(prog)
            .arg(&exe);
    } else if let Some((interp, arg)) = super::elf::shebang(&head) {
        let interp = PathBuf::from(interp);
        cmd.arg("-plugin")
            .arg(spec(&interp))
            .arg("-0")
            .arg(&interp)
            .arg(&interp)
            .args(arg)
            .arg(&exe);
    } else {
        return Err(RecordError::NotX86_64(exe.display().to_string()));
    }
    // The host kernel places the guest's stack and libraries (see the plugin's `brk`
    // module): without address randomization, at the same addresses on every run.
    // SAFETY: between fork and exec the closure only calls personality(2), a system
    // call, and touches no memory the parent could have locked.
    unsafe {
        cmd.pre_exec(|| {
            let persona = libc::personality(0xffff_ffff);
            if persona != -1 {
                libc::personality((persona | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong);
            }
            Ok(())
        });
    }
    let mut child = cmd.args(args).spawn().map_err(system("starting qemu"))?;
    let top_done = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (top_done, stop, progress) = (top_done.clone(), stop.clone(), progress.clone());
        let name = output.display().to_string();
        std::thread::spawn(move || -> Result<Written, RecordError> {
            let sink = Counting {
                inner: out,
                progress: progress.clone(),
            };
            let mut w = EventWriter::new(format, sink, &name, zstd)?;
            let mut d = Demux::new();
            collect(&listener, &mut d, &mut w, &top_done, &stop, &progress)?;
            Ok((d, w))
        })
    };
    let status = loop {
        if let Some(sig) = interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            stop.store(true, Ordering::SeqCst);
            let _ = worker.join();
            return Err(RecordError::Interrupted(sig));
        }
        match child.try_wait().map_err(system("waiting for qemu"))? {
            Some(status) => break status,
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    top_done.store(true, Ordering::SeqCst);
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    };
    let (mut d, mut w) = loop {
        if worker.is_finished() {
            break worker.join().map_err(|_| RecordError::System {
                what: "writing the trace",
                error: std::io::Error::other("the trace writer panicked"),
            })??;
        }
        if let Some(sig) = interrupted() {
            stop.store(true, Ordering::SeqCst);
            let _ = worker.join();
            return Err(RecordError::Interrupted(sig));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut failed = None;
    d.finish(code, &mut |e| {
        if failed.is_none() {
            failed = w.write(&e).err();
        }
        progress.events.fetch_add(1, Ordering::Relaxed);
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    let events = progress.events.load(Ordering::Relaxed);
    let stats = d.stats();
    if stats.processes == 0 {
        return Err(RecordError::NothingQemu {
            program: prog.clone(),
            code,
        });
    }
    let out = w.finish()?.inner;
    out.commit()?;
    Ok(Recording {
        events,
        code,
        signal: status.signal(),
        processes: stats.processes,
        threads: stats.threads,
        untraced_execs: stats.untraced_execs,
    })
}

/// Accepts connections and reads messages until the first program is done and every
/// connection has closed (or `stop`).
fn collect<W: std::io::Write>(
    listener: &OwnedFd,
    d: &mut Demux,
    w: &mut EventWriter<W>,
    top_done: &AtomicBool,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<(), RecordError> {
    let mut conns: Vec<Option<OwnedFd>> = Vec::new();
    let mut buf = vec![0u64; super::wire::MAX_MESSAGE / 8 + 64];
    let mut failed: Option<TraceError> = None;
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut ids: Vec<ConnId> = Vec::new();
    let mut last_data = std::time::Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        pfds.clear();
        ids.clear();
        pfds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for (i, c) in conns.iter().enumerate() {
            if let Some(fd) = c {
                if d.readable(i) {
                    pfds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    ids.push(i);
                }
            }
        }
        let open = conns.iter().any(Option::is_some);
        if top_done.load(Ordering::SeqCst)
            && !pending(listener.as_raw_fd())
            && (!open || last_data.elapsed() > LINGER)
        {
            return Ok(());
        }
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 50) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(RecordError::System {
                what: "waiting for the plugin's messages",
                error: e,
            });
        }
        if pfds[0].revents & libc::POLLIN != 0 {
            // SAFETY: accept4 on our listening socket; the result is owned below.
            let fd = unsafe {
                libc::accept4(
                    listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: accept4 returned a new descriptor no one else owns.
                conns.push(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
                d.open(conns.len() - 1);
            }
        }
        let mut written = 0u64;
        let mut emit = |e: crate::trace::Event| {
            if failed.is_none() {
                failed = w.write(&e).err();
            }
            written += 1;
        };
        for (k, p) in pfds[1..].iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            let id = ids[k];
            last_data = std::time::Instant::now();
            let Some(fd) = conns[id].as_ref().map(|f| f.as_raw_fd()) else {
                continue;
            };
            // What has come, up to a bound, before polling again; the first read
            // waits for nothing since poll said it was there.
            for _ in 0..64 {
                if !d.readable(id) {
                    break;
                }
                match recv(fd, &mut buf) {
                    Ok(0) => {
                        conns[id] = None;
                        d.close(id, &mut emit).map_err(wire_error)?;
                        break;
                    }
                    Ok(bytes) => {
                        if bytes % 8 != 0 {
                            return Err(wire_error(super::demux::WireError::Header { conn: id }));
                        }
                        d.message(id, &buf[..bytes / 8], &mut emit)
                            .map_err(wire_error)?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        conns[id] = None;
                        d.close(id, &mut emit).map_err(wire_error)?;
                        break;
                    }
                }
            }
        }
        progress.events.fetch_add(written, Ordering::Relaxed);
        if let Some(e) = failed.take() {
            return Err(e.into());
        }
    }
}

fn wire_error(e: super::demux::WireError) -> RecordError {
    RecordError::Wire(e.to_string())
}

/// The first bytes of a file (as many as the kernel reads to decide how to run it).
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(256);
    std::fs::File::open(path)?
        .take(256)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Whether a connection waits to be accepted.
fn pending(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// One message from a `SOCK_SEQPACKET` connection into `buf` (bytes read; 0 at end;
/// `WouldBlock` when none is waiting).
fn recv(fd: RawFd, buf: &mut [u64]) -> std::io::Result<usize> {
    // SAFETY: recv writes at most the buffer's byte length into it.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len() * 8,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}
