//! Recording a real program as a vmsim trace, with QEMU's user-mode emulator and the
//! vmsim plugin ([`qemu`], the default) or valgrind's lackey tool ([`lackey`]).

pub mod demux;
pub mod elf;
pub mod lackey;
pub mod qemu;
pub mod wire;

use crate::output::OutputError;
use crate::trace::TraceError;

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No program was named.
    #[error("name the program to record after `--`: vmsim record -o OUT -- PROGRAM [ARGS]")]
    NoProgram,
    /// Valgrind is not installed.
    #[error("vmsim record needs valgrind, which is not installed or not on PATH (Debian/Ubuntu: apt-get install valgrind; Fedora: dnf install valgrind; Arch: pacman -S valgrind)")]
    NoValgrind,
    /// The output cannot be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The system refused (a pipe, starting valgrind, waiting for it).
    #[error("{what}: {error}")]
    System {
        /// What was being done.
        what: &'static str,
        /// What the system said.
        error: std::io::Error,
    },
    /// The log could not be read or the trace written.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Valgrind wrote no event.
    #[error("valgrind recorded nothing (exit status {code}); is `{program}` a program valgrind can run?")]
    Nothing {
        /// The program.
        program: String,
        /// Valgrind's exit status.
        code: i32,
    },
    /// QEMU's user-mode emulator is not installed.
    #[error("vmsim record needs QEMU's user-mode emulator (qemu-x86_64), which is not on PATH (Debian/Ubuntu: apt-get install qemu-user; Fedora: dnf install qemu-user; or set VMSIM_QEMU), or use --tool lackey")]
    NoQemu,
    /// The plugin is not where vmsim looks for it.
    #[error("vmsim record cannot find its QEMU plugin (libvmsim_qemu.so): the vmsim binary carries one, a library caller names it, or VMSIM_QEMU_PLUGIN gives its path")]
    NoPlugin,
    /// The program to record does not exist or is not executable.
    #[error("`{0}`: no such program (not an executable file, and not found on PATH)")]
    NoSuchProgram(String),
    /// The program is neither an x86-64 ELF nor a script.
    #[error("`{0}` is neither an x86-64 ELF program nor a `#!` script, which is what the QEMU recorder runs")]
    NotX86_64(String),
    /// No traced process ever connected.
    #[error("QEMU recorded nothing (exit status {code}); is `{program}` an x86-64 Linux program?")]
    NothingQemu {
        /// The program.
        program: String,
        /// QEMU's exit status.
        code: i32,
    },
    /// The plugin's stream could not be read.
    #[error("the QEMU plugin's stream: {0}")]
    Wire(String),
    /// The recording was interrupted by signal `0`; nothing was written.
    #[error("record interrupted by signal {0}; no trace written")]
    Interrupted(i32),
}

fn system(what: &'static str) -> impl FnOnce(std::io::Error) -> RecordError {
    move |error| RecordError::System { what, error }
}

/// A finished recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recording {
    /// Events written.
    pub events: u64,
    /// The program's exit status (128+N when killed by signal N).
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Processes traced (1 with lackey, which follows no fork or exec).
    pub processes: u32,
    /// Threads traced, main threads included.
    pub threads: u32,
    /// Execs the recorder could not follow (their programs ran untraced).
    pub untraced_execs: u32,
}

/// The tools that can record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// QEMU's user-mode emulator with vmsim's plugin: every process and thread, about
    /// 3–10× native time.
    Qemu,
    /// Valgrind's lackey: the first process only, hundreds of times native time.
    Lackey,
}

impl Tool {
    /// Every tool, the default first.
    pub const ALL: [Tool; 2] = [Tool::Qemu, Tool::Lackey];

    /// The tool named `name`, or why not.
    pub fn parse(name: &str) -> Result<Tool, String> {
        Tool::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Tool::ALL.iter().map(|t| t.name()).collect();
                format!("unknown recording tool `{name}` ({})", names.join(", "))
            })
    }

    /// The name `--tool` takes.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Qemu => "qemu",
            Tool::Lackey => "lackey",
        }
    }
}

/// What to record, how, and where.
#[derive(Clone, Copy, Debug)]
pub struct RecordOptions<'a> {
    /// The recording tool.
    pub tool: Tool,
    /// The trace to write.
    pub output: &'a std::path::Path,
    /// Its format (text or binary).
    pub format: crate::trace::Format,
    /// Binary chunks compressed with zstd.
    pub zstd: bool,
    /// The program and its arguments.
    pub program: &'a [String],
    /// QEMU's plugin (see [`qemu::find_plugin`]).
    pub plugin: Option<&'a std::path::Path>,
}

/// Records as `opts` say. `interrupted` is asked while the program runs; when it names
/// a signal, the recording stops and nothing is written. `progress` counts events and
/// bytes as they are written.
pub fn record(
    opts: &RecordOptions,
    interrupted: &dyn Fn() -> Option<i32>,
    progress: std::sync::Arc<Progress>,
) -> Result<Recording, RecordError> {
    match opts.tool {
        Tool::Qemu => qemu::record(opts, interrupted, progress),
        Tool::Lackey => lackey::record(
            opts.output,
            opts.format,
            opts.zstd,
            opts.program,
            interrupted,
        ),
    }
}

/// The bytes and events written so far, for a progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Events written.
    pub events: std::sync::atomic::AtomicU64,
    /// Trace bytes written.
    pub bytes: std::sync::atomic::AtomicU64,
}
