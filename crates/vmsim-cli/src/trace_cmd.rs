//! `vmsim trace convert` and `vmsim trace stat`, and `vmsim record`.

use crate::run::parse_format;
use crate::signals;
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vmsim::output::OutputFile;
use vmsim::trace::lackey::LackeyReader;
use vmsim::trace::{EventReader, EventWriter, Format, BATCH};

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// Convert a trace to vmsim text or binary.
    ///
    /// The output format is --to, or told by the name: `.vmt` or `.txt` is vmsim text,
    /// anything else vmsim binary (zstd-compressed when the name ends in `.zst` or with
    /// --zstd).
    Convert {
        /// The trace to read (any format vmsim reads).
        input: PathBuf,
        /// The trace to write.
        output: PathBuf,
        /// The input's format, when its name and contents do not tell.
        #[arg(long)]
        from: Option<String>,
        /// The output's format: vmsim-text or vmsim-binary.
        #[arg(long)]
        to: Option<String>,
        /// Compress binary chunks with zstd.
        #[arg(long)]
        zstd: bool,
        /// Page size for oracleGeneral input (page numbers become addresses).
        #[arg(long, default_value = "4096")]
        page_size: String,
    },
    /// What a trace holds: length, footprint in pages, read/write/execute mix,
    /// processes and OS events.
    Stat {
        /// The trace.
        trace: PathBuf,
        /// The trace's format, when its name and contents do not tell.
        #[arg(long)]
        format: Option<String>,
        /// Page size the footprint is counted in.
        #[arg(long, default_value = "4096")]
        page_size: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn page_size(text: &str) -> Result<u64> {
    let ps = vmsim::size::parse_size(text).map_err(|e| anyhow!("--page-size: {e}"))?;
    if !ps.is_power_of_two() || ps < 64 {
        bail!("--page-size: {ps} is not a power of two of at least 64 bytes");
    }
    Ok(ps)
}

/// The format and compression `path` asks for: `--to` (or `text`), else the name
/// (`.vmt` or `.txt` text, anything else binary; `.zst` compressed).
fn output_format(path: &Path, to: Option<&str>, zstd: bool) -> Result<(Format, bool)> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let format = match to {
        Some(t) => match Format::parse(t) {
            Some(f @ (Format::Text | Format::Binary)) => f,
            _ => bail!("--to: `{t}` is not an output format (vmsim-text, vmsim-binary)"),
        },
        None if name.ends_with(".vmt") || name.ends_with(".txt") => Format::Text,
        None => Format::Binary,
    };
    Ok((
        format,
        format == Format::Binary && (zstd || name.ends_with(".zst")),
    ))
}

pub fn run(cmd: TraceCommand) -> Result<()> {
    match cmd {
        TraceCommand::Convert {
            input,
            output,
            from,
            to,
            zstd,
            page_size: ps,
        } => {
            let (format, zstd) = output_format(&output, to.as_deref(), zstd)?;
            let from = parse_format(from.as_deref())?;
            let out = OutputFile::create(&output, &[&input])?;
            let mut reader = EventReader::open(&input, from, page_size(&ps)?)?;
            let mut w = EventWriter::new(format, out, &output.display().to_string(), zstd)?;
            let n = vmsim::trace::convert(&mut reader, &mut w)?;
            w.finish()?.commit()?;
            eprintln!(
                "{n} events written to {} ({}{})",
                output.display(),
                format.name(),
                if zstd && format == Format::Binary {
                    ", zstd"
                } else {
                    ""
                }
            );
        }
        TraceCommand::Stat {
            trace,
            format,
            page_size: ps,
            json,
        } => {
            let ps = page_size(&ps)?;
            let mut reader = EventReader::open(&trace, parse_format(format.as_deref())?, ps)?;
            let format = reader.format().map_or("?", |f| f.name());
            let s = vmsim::trace::stat::stat(&mut reader, ps)?;
            if json {
                let mut v = serde_json::to_value(&s)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("trace".into(), trace.display().to_string().into());
                    o.insert("format".into(), format.into());
                }
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("trace           {} ({format})", trace.display());
                out!("{}", s.to_text());
            }
        }
    }
    Ok(())
}

/// The exit status of the recorded program, which `vmsim record` exits with (128+N
/// for a program killed by signal N).
#[derive(Debug)]
pub struct ProgramStatus(pub u8);

impl std::fmt::Display for ProgramStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the recorded program exited with status {}", self.0)
    }
}

impl std::error::Error for ProgramStatus {}

/// The file descriptor valgrind writes its log to in the child.
const LOG_FD: i32 = 3;

/// `vmsim record`: runs a program under valgrind lackey and writes its trace.
///
/// Valgrind's log comes through a pipe (no FIFO, no temporary folder), read until
/// valgrind has exited and the pipe is drained, so nothing that fails first can leave
/// vmsim waiting: a writer that cannot start fails before valgrind starts, and a
/// process that keeps the pipe open after valgrind exits is not waited for. The trace
/// is renamed into place only when complete; a signal to vmsim stops valgrind and
/// removes it.
pub fn record(output: &Path, text: bool, no_compress: bool, program: &[String]) -> Result<()> {
    let Some((prog, args)) = program.split_first() else {
        bail!("name the program to record after `--`: vmsim record -o OUT -- PROGRAM [ARGS]");
    };
    match std::process::Command::new("valgrind")
        .arg("--version")
        .output()
    {
        Ok(o) if o.status.success() => {}
        _ => bail!(
            "vmsim record needs valgrind, which is not installed or not on PATH \
             (Debian/Ubuntu: apt-get install valgrind; Fedora: dnf install valgrind; \
             Arch: pacman -S valgrind)"
        ),
    }
    let (format, zstd) = if text {
        (Format::Text, false)
    } else {
        output_format(output, None, !no_compress)?
    };
    // Opened first: a missing folder fails here, before the program runs.
    let out = OutputFile::create(output, &[])?;
    let (log, log_writer) = pipe().context("making a pipe for valgrind's log")?;
    let mut cmd = std::process::Command::new("valgrind");
    cmd.arg("--tool=lackey")
        .arg("--trace-mem=yes")
        .arg("--trace-syscalls=yes")
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
    signals::defer();
    let mut child = cmd.spawn().context("starting valgrind")?;
    // Only valgrind holds the write end now, so the pipe ends when it does.
    drop(cmd);
    drop(log_writer);
    let exited = Arc::new(AtomicBool::new(false));
    let worker = {
        let exited = Arc::clone(&exited);
        let name = output.display().to_string();
        std::thread::spawn(move || -> Result<(u64, OutputFile)> {
            let log = LogPipe { pipe: log, exited };
            let mut r = LackeyReader::new(
                std::io::BufReader::with_capacity(1 << 20, log),
                "valgrind's log".into(),
            );
            let mut w = EventWriter::new(format, out, &name, zstd)?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut n = 0;
            loop {
                r.next_batch(&mut batch)?;
                if batch.is_empty() {
                    break;
                }
                for e in &batch {
                    w.write(e)?;
                }
                n += batch.len() as u64;
                batch.clear();
            }
            Ok((n, w.finish()?))
        })
    };
    let status = loop {
        if let Some(sig) = signals::received() {
            let _ = child.kill();
            let _ = child.wait();
            exited.store(true, Ordering::SeqCst);
            // The partial trace goes with the writer, whatever state it is in.
            let _ = worker.join();
            eprintln!("vmsim: record interrupted by signal {sig}; no trace written");
            return Err(ProgramStatus((128 + sig).min(255) as u8).into());
        }
        match child.try_wait().context("waiting for valgrind")? {
            Some(status) => break status,
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    exited.store(true, Ordering::SeqCst);
    let (events, out) = worker
        .join()
        .map_err(|_| anyhow!("the trace writer panicked"))??;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    };
    if events == 0 {
        bail!("valgrind recorded nothing (exit status {code}); is `{prog}` a program valgrind can run?");
    }
    out.commit()?;
    eprintln!(
        "recorded {events} events of `{prog}` into {} (exit status {code}{})",
        output.display(),
        status
            .signal()
            .map_or(String::new(), |s| format!(", killed by signal {s}"))
    );
    if code != 0 {
        return Err(ProgramStatus(code.clamp(0, 255) as u8).into());
    }
    Ok(())
}

/// A pipe (read end, write end), both closed on exec.
fn pipe() -> std::io::Result<(std::fs::File, std::os::fd::OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by no one else.
    let (r, w) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
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
