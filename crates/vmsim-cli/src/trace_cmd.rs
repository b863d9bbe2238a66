//! `vmsim trace convert` and `vmsim trace stat`, and `vmsim record`.

use crate::{args, signals};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vmsim::output::OutputFile;
use vmsim::run::format_named;
use vmsim::trace::output::output_format;
use vmsim::trace::record::{Progress, RecordError, RecordOptions, Tool};
use vmsim::trace::{EventReader, EventWriter, Format};

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
    /// processes, threads, OS events, mappings and system calls.
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
    args::page_size(text).map_err(|e| anyhow!("--page-size: {e}"))
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
            let from = format_named(from.as_deref())?;
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
            let mut reader = EventReader::open(&trace, format_named(format.as_deref())?, ps)?;
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

/// The QEMU plugin built with this binary (`build.rs`).
const PLUGIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libvmsim_qemu.so"));

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

/// `vmsim record`: the program runs under the recording tool and its trace is written
/// as it comes (see [`vmsim::trace::record`]), with a progress line on a terminal;
/// vmsim exits with the program's status.
pub fn record(
    tool: Tool,
    output: &Path,
    text: bool,
    no_compress: bool,
    program: &[String],
) -> Result<()> {
    let (format, zstd) = if text {
        (Format::Text, false)
    } else {
        output_format(output, None, !no_compress)?
    };
    signals::defer();
    let progress = Arc::new(Progress::default());
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} recording: {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let tick = std::cell::Cell::new(std::time::Instant::now());
    let interrupted = || {
        if tick.get().elapsed().as_millis() >= 250 {
            tick.set(std::time::Instant::now());
            bar.set_message(format!(
                "{} events, {:.1} MB written",
                progress.events.load(Ordering::Relaxed),
                progress.bytes.load(Ordering::Relaxed) as f64 / 1e6
            ));
            bar.tick();
        }
        signals::received()
    };
    // The plugin this binary carries, as a file QEMU can load for as long as vmsim runs.
    let plugin = match tool {
        Tool::Qemu => Some(
            vmsim::trace::record::qemu::plugin_in_memory(PLUGIN)
                .map_err(|e| anyhow!("holding the QEMU plugin in memory: {e}"))?,
        ),
        Tool::Lackey => None,
    };
    let opts = RecordOptions {
        tool,
        output,
        format,
        zstd,
        program,
        plugin: plugin.as_ref().map(|(_, p)| p.as_path()),
    };
    let r = vmsim::trace::record::record(&opts, &interrupted, progress.clone());
    bar.finish_and_clear();
    let r = match r {
        Err(RecordError::Interrupted(sig)) => {
            eprintln!("vmsim: {}", RecordError::Interrupted(sig));
            return Err(ProgramStatus((128 + sig).min(255) as u8).into());
        }
        r => r?,
    };
    if r.untraced_execs > 0 {
        eprintln!(
            "vmsim: {} exec(s) could not be followed (not an x86-64 program, or a form of execveat the recorder does not handle): those programs ran untraced",
            r.untraced_execs
        );
    }
    eprintln!(
        "recorded {} events of `{}` ({} process{}, {} thread{}) into {} (exit status {}{})",
        r.events,
        program[0],
        r.processes,
        if r.processes == 1 { "" } else { "es" },
        r.threads,
        if r.threads == 1 { "" } else { "s" },
        output.display(),
        r.code,
        r.signal
            .map_or(String::new(), |s| format!(", killed by signal {s}"))
    );
    if r.code != 0 {
        return Err(ProgramStatus(r.code.clamp(0, 255) as u8).into());
    }
    Ok(())
}
