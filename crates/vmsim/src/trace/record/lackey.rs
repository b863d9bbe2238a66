//! Recording with valgrind's lackey tool (`vmsim record --tool lackey`): the program runs under lackey, whose log (memory
//! accesses and system calls) is read as it comes and written as a vmsim trace.
//!
//! Valgrind's log comes through a pipe (no FIFO, no temporary folder), read until
//! valgrind has exited and the pipe is drained, so nothing that fails first can leave
//! the recorder waiting: the output is opened before valgrind starts, and a process
//! that keeps the pipe open after valgrind exits is not waited for. The trace is
//! renamed into place only when complete; an interruption stops valgrind and removes
//! it.

use super::{system, RecordError, Recording};
use crate::output::OutputFile;
use crate::trace::lackey::LackeyReader;
use crate::trace::{copy_events, EventWriter, Format, TraceError};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The file descriptor valgrind writes its log to in the child.
const LOG_FD: i32 = 3;

/// Records `program` (its name and arguments) into `output` in `format` (`zstd`:
/// binary chunks compressed). `interrupted` is asked while the program runs; when it
/// names a signal, valgrind is stopped and nothing is written.
pub fn record(
    output: &Path,
    format: Format,
    zstd: bool,
    program: &[String],
    interrupted: &dyn Fn() -> Option<i32>,
) -> Result<Recording, RecordError> {
    let (prog, args) = program.split_first().ok_or(RecordError::NoProgram)?;
    match std::process::Command::new("valgrind")
        .arg("--version")
        .output()
    {
        Ok(o) if o.status.success() => {}
        _ => return Err(RecordError::NoValgrind),
    }
    // Opened first: a missing folder fails here, before the program runs.
    let out = OutputFile::create(output, &[])?;
    let (log, log_writer) = pipe().map_err(system("making a pipe for valgrind's log"))?;
    let mut cmd = std::process::Command::new("valgrind");
    cmd.arg("--tool=lackey")
        .arg("--trace-mem=yes")
        .arg("--trace-syscalls=yes")
        // A forked child would write its records into the same log, torn into the
        // parent's lines and not told apart from them: only the first process is
        // recorded.
        .arg("--child-silent-after-fork=yes")
        .arg(format!("--log-fd={LOG_FD}"))
        .arg(prog)
        .args(args);
    let fd = log_writer.as_raw_fd();
    // SAFETY: between fork and exec the closure calls only dup2 and fcntl, which are
    // async-signal-safe, and touches no memory the parent could have locked.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == LOG_FD {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, LOG_FD)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(system("starting valgrind"))?;
    // Only valgrind holds the write end now, so the pipe ends when it does.
    drop(cmd);
    drop(log_writer);
    let exited = Arc::new(AtomicBool::new(false));
    let worker = {
        let exited = Arc::clone(&exited);
        let name = output.display().to_string();
        std::thread::spawn(move || -> Result<(u64, OutputFile), TraceError> {
            let log = LogPipe { pipe: log, exited };
            let mut r = LackeyReader::new(
                std::io::BufReader::with_capacity(1 << 20, log),
                "valgrind's log".into(),
            );
            let mut w = EventWriter::new(format, out, &name, zstd)?;
            let n = copy_events(|b| r.next_batch(b), &mut w)?;
            Ok((n, w.finish()?))
        })
    };
    let status = loop {
        if let Some(sig) = interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            exited.store(true, Ordering::SeqCst);
            // The partial trace goes with the writer, whatever state it is in.
            let _ = worker.join();
            return Err(RecordError::Interrupted(sig));
        }
        match child.try_wait().map_err(system("waiting for valgrind"))? {
            Some(status) => break status,
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    exited.store(true, Ordering::SeqCst);
    let (events, out) = worker.join().map_err(|_| RecordError::System {
        what: "writing the trace",
        error: std::io::Error::other("the trace writer panicked"),
    })??;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    };
    if events == 0 {
        return Err(RecordError::Nothing {
            program: prog.clone(),
            code,
        });
    }
    out.commit()?;
    Ok(Recording {
        events,
        code,
        signal: status.signal(),
        processes: 1,
        threads: 1,
        untraced_execs: 0,
    })
}

/// A pipe (read end, write end), both closed on exec.
fn pipe() -> std::io::Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by no one else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((std::fs::File::from(r), w))
}

/// The read end of valgrind's log pipe. Once valgrind has exited, a read that finds
/// nothing waiting is the end, even if another process still holds the write end.
struct LogPipe {
    pipe: std::fs::File,
    exited: Arc<AtomicBool>,
}

impl std::io::Read for LogPipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut p = libc::pollfd {
                fd: self.pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `p` is one valid pollfd that lives across the call.
            let ready = unsafe { libc::poll(&mut p, 1, 100) };
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if ready > 0 {
                return self.pipe.read(buf);
            }
            if self.exited.load(Ordering::SeqCst) {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn the_log_pipe_ends_when_valgrind_has_exited_even_if_held_open() {
        let (r, w) = pipe().unwrap();
        let exited = Arc::new(AtomicBool::new(false));
        let mut log = LogPipe {
            pipe: r,
            exited: Arc::clone(&exited),
        };
        let mut f = std::fs::File::from(w);
        std::io::Write::write_all(&mut f, b"I  0400000,3\n").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(log.read(&mut buf).unwrap(), 13);
        // Nothing more, the write end still open: once valgrind is gone, the end.
        exited.store(true, Ordering::SeqCst);
        assert_eq!(log.read(&mut buf).unwrap(), 0);
        drop(f);
    }
}
