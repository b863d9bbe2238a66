//! `vmsim trace convert` and `vmsim trace stat`, and `vmsim record`.

use crate::run::parse_format;
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
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

/// The format and compression `path` asks for.
fn output_format(path: &Path, to: Option<&str>, zstd: bool) -> Result<(Format, bool)> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let format = match parse_format(to)? {
        Some(f) => f,
        None if name.ends_with(".vmt") || name.ends_with(".txt") => Format::Text,
        None => Format::Binary,
    };
    Ok((format, zstd || name.ends_with(".zst")))
}

/// Writes through a temporary file next to `out`, renamed into place when complete, so
/// a failed run leaves no half trace (and never clobbers the input).
pub fn write_atomically(
    out: &Path,
    inputs: &[&Path],
    write: impl FnOnce(std::fs::File, &str) -> Result<u64>,
) -> Result<u64> {
    for i in inputs {
        if let (Ok(a), Ok(b)) = (std::fs::canonicalize(i), std::fs::canonicalize(out)) {
            if a == b {
                bail!("{}: the output would overwrite the input", out.display());
            }
        }
    }
    let tmp = out.with_extension(format!(
        "{}.partial",
        out.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let f = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    match write(f, &out.display().to_string()) {
        Ok(n) => {
            std::fs::rename(&tmp, out).with_context(|| format!("{}", out.display()))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
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
            let mut reader =
                EventReader::open(&input, parse_format(from.as_deref())?, page_size(&ps)?)?;
            let (format, zstd) = output_format(&output, to.as_deref(), zstd)?;
            let n = write_atomically(&output, &[&input], |f, name| {
                let mut w = EventWriter::new(format, f, name, zstd)?;
                let n = vmsim::trace::convert(&mut reader, &mut w)?;
                w.finish()?.sync_all()?;
                Ok(n)
            })?;
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
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("trace           {} ({format})", trace.display());
                print!("{}", s.to_text());
            }
        }
    }
    Ok(())
}

/// `vmsim record`: runs a program under valgrind lackey and writes its trace.
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
    let dir = std::env::temp_dir().join(format!("vmsim-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let fifo = dir.join("lackey.log");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .context("running mkfifo")?;
    if !made.success() {
        bail!("mkfifo {} failed", fifo.display());
    }
    let result = record_through(&fifo, output, text, no_compress, prog, args);
    let _ = std::fs::remove_file(&fifo);
    let _ = std::fs::remove_dir(&dir);
    result
}

fn record_through(
    fifo: &Path,
    output: &Path,
    text: bool,
    no_compress: bool,
    prog: &str,
    args: &[String],
) -> Result<()> {
    let mut child = std::process::Command::new("valgrind")
        .arg("--tool=lackey")
        .arg("--trace-mem=yes")
        .arg("--trace-syscalls=yes")
        .arg(format!("--log-file={}", fifo.display()))
        .arg(prog)
        .args(args)
        .spawn()
        .context("starting valgrind")?;
    let format = if text { Format::Text } else { Format::Binary };
    let (_, zstd) = output_format(output, None, !no_compress && !text)?;
    let reader_fifo = fifo.to_path_buf();
    let out = output.to_path_buf();
    // The reader opens the FIFO (blocking until valgrind opens it) and streams events
    // into the trace as they come.
    let worker = std::thread::spawn(move || -> Result<(u64, u64)> {
        write_atomically(&out, &[], |f, name| {
            let log = std::fs::File::open(&reader_fifo)
                .with_context(|| format!("{}", reader_fifo.display()))?;
            let mut r = LackeyReader::new(
                std::io::BufReader::with_capacity(1 << 20, log),
                "valgrind's log".into(),
            );
            let mut w = EventWriter::new(format, f, name, zstd)?;
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
            w.finish()?.sync_all()?;
            Ok(n)
        })
        .map(|n| (n, 0))
    });
    let status = child.wait().context("waiting for valgrind")?;
    if !worker.is_finished() {
        // Valgrind never opened its log (it failed to start the program): open the
        // FIFO's write end so the reader sees the end instead of waiting forever.
        let _ = std::fs::OpenOptions::new().write(true).open(fifo);
    }
    let (events, _) = worker
        .join()
        .map_err(|_| anyhow!("the trace writer panicked"))??;
    if events == 0 {
        bail!("valgrind recorded nothing ({status}); is `{prog}` a program valgrind can run?");
    }
    eprintln!(
        "recorded {events} events of `{prog}` (exit status {}) into {}",
        status
            .code()
            .map_or("signal".to_string(), |c| c.to_string()),
        output.display()
    );
    Ok(())
}
