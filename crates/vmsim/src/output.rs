//! Writing the files a command produces: one way, for every command that writes.
//!
//! [`OutputFile::create`] is called before any work starts, so a missing folder or an
//! output that names an input is reported at once. It:
//! - refuses a path that is the same file (device and inode) as one of the command's
//!   inputs, whatever names lead to it;
//! - follows symbolic links and writes to their target, so the link stays a link;
//! - writes special files (`/dev/stdout`, `/dev/null`, FIFOs, terminals) in place
//!   instead of replacing them;
//! - writes a regular file through a temporary file in the same folder, renamed over
//!   the target by [`OutputFile::commit`], so a failed or interrupted run leaves the
//!   old file (or nothing) behind, never half a file.
//!
//! A temporary file not committed is removed when its [`OutputFile`] is dropped, and by
//! [`remove_partial_files`], which a signal handler calls before the process exits.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why an output cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output is the same file as an input.
    #[error(
        "{path}: this is the input {input}; writing it would destroy it (name another output)"
    )]
    IsInput {
        /// The output as named.
        path: String,
        /// The input as named.
        input: String,
    },
    /// The folder the output would go in does not exist.
    #[error("{path}: the folder {folder} does not exist")]
    NoFolder {
        /// The output as named.
        path: String,
        /// Its folder.
        folder: String,
    },
    /// The output names a folder.
    #[error("{path}: is a folder, not a file")]
    IsFolder {
        /// The output as named.
        path: String,
    },
    /// Symbolic links that never end.
    #[error("{path}: too many levels of symbolic links")]
    LinkLoop {
        /// The output as named.
        path: String,
    },
    /// The system refused.
    #[error("{path}: {source}")]
    Io {
        /// The output as named.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Temporary files being written, removed by [`remove_partial_files`].
static PARTIAL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partial_list() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PARTIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary output file not yet committed or dropped: for a signal
/// handler, just before the process exits.
pub fn remove_partial_files() {
    for p in partial_list().drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

/// Whether `a` and `b` are the same file (device and inode, links followed). Paths
/// that do not exist are no file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Refuses `path` if it is the same file as one of `inputs`.
pub fn check_not_input(path: &Path, inputs: &[&Path]) -> Result<(), OutputError> {
    match inputs.iter().find(|i| same_file(path, i)) {
        Some(i) => Err(OutputError::IsInput {
            path: path.display().to_string(),
            input: i.display().to_string(),
        }),
        None => Ok(()),
    }
}

/// Where writing `path` lands: the end of its chain of symbolic links.
fn resolve(path: &Path) -> Result<PathBuf, OutputError> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| io(path, e))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(OutputError::LinkLoop {
        path: path.display().to_string(),
    })
}

fn io(path: &Path, source: std::io::Error) -> OutputError {
    OutputError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Paths of the kernel's own files (`/dev/stdout`, `/proc/self/fd/1`): written in
/// place, never replaced.
fn is_system_path(p: &Path) -> bool {
    p.starts_with("/dev") || p.starts_with("/proc")
}

/// Checks that `path` can be written (its folder exists, it is not a folder) and is
/// none of `inputs`, without creating anything: for commands that open their output
/// later but must fail before their work.
pub fn check(path: &Path, inputs: &[&Path]) -> Result<(), OutputError> {
    check_not_input(path, inputs)?;
    let target = resolve(path)?;
    if is_system_path(path) || is_system_path(&target) {
        return Ok(());
    }
    if target.is_dir() {
        return Err(OutputError::IsFolder {
            path: path.display().to_string(),
        });
    }
    let folder = match target.parent() {
        Some(f) if !f.as_os_str().is_empty() => f.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        return Err(OutputError::NoFolder {
            path: path.display().to_string(),
            folder: folder.display().to_string(),
        });
    }
    Ok(())
}

/// A file being written: see the module's documentation.
#[derive(Debug)]
pub struct OutputFile {
    named: PathBuf,
    target: PathBuf,
    /// The temporary file, for a regular file; `None` when written in place.
    tmp: Option<PathBuf>,
    out: Option<BufWriter<File>>,
}

impl OutputFile {
    /// Opens `path` for writing, refusing it if it is one of `inputs`.
    pub fn create(path: &Path, inputs: &[&Path]) -> Result<OutputFile, OutputError> {
        check(path, inputs)?;
        let target = resolve(path)?;
        let special = is_system_path(path)
            || is_system_path(&target)
            || std::fs::metadata(&target).is_ok_and(|m| !m.file_type().is_file());
        if special {
            let f = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(|e| io(path, e))?;
            return Ok(OutputFile {
                named: path.to_path_buf(),
                target,
                tmp: None,
                out: Some(BufWriter::with_capacity(1 << 16, f)),
            });
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (f, tmp) = {
            let mut n = 0u32;
            loop {
                let tmp =
                    target.with_file_name(format!(".{name}.{}-{n}.partial", std::process::id()));
                // Registered before it exists, so a signal cannot leave it behind.
                partial_list().push(tmp.clone());
                match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                    Ok(f) => break (f, tmp),
                    Err(e) => {
                        partial_list().retain(|p| p != &tmp);
                        if e.kind() != std::io::ErrorKind::AlreadyExists || n > 100 {
                            return Err(io(path, e));
                        }
                        n += 1;
                    }
                }
            }
        };
        // A file written again keeps its permissions.
        if let Ok(m) = std::fs::metadata(&target) {
            let _ = std::fs::set_permissions(&tmp, m.permissions());
        }
        Ok(OutputFile {
            named: path.to_path_buf(),
            target,
            tmp: Some(tmp),
            out: Some(BufWriter::with_capacity(1 << 16, f)),
        })
    }

    /// The path as the user named it.
    pub fn path(&self) -> &Path {
        &self.named
    }

    /// Writes `bytes` and commits the file (see [`OutputFile::commit`]).
    pub fn finish(mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.write_all(bytes).map_err(|e| io(&self.named, e))?;
        self.commit()
    }

    /// Finishes the file: flushes it and, for a regular file, renames it into place.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let named = self.named.clone();
        let out = self.out.take().expect("an output is committed once");
        let f = out.into_inner().map_err(|e| io(&named, e.into_error()))?;
        if let Some(tmp) = self.tmp.take() {
            let done = f
                .sync_all()
                .and_then(|_| std::fs::rename(&tmp, &self.target));
            partial_list().retain(|p| p != &tmp);
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(io(&named, e));
            }
        }
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.out {
            Some(o) => o.write(buf),
            None => Err(std::io::Error::other("output already committed")),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match &mut self.out {
            Some(o) => o.write_all(buf),
            None => Err(std::io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            self.out = None;
            let _ = std::fs::remove_file(&tmp);
            partial_list().retain(|p| p != &tmp);
        }
    }
}

/// Writes `bytes` to `path` as an [`OutputFile`].
pub fn write_file(path: &Path, inputs: &[&Path], bytes: &[u8]) -> Result<(), OutputError> {
    OutputFile::create(path, inputs)?.finish(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests share the registry of partial files, so they run one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vmsim-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_through_a_temporary_file_only_on_commit() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let d = dir("commit");
        let p = d.join("out.txt");
        std::fs::write(&p, "old").unwrap();
        let mut f = OutputFile::create(&p, &[]).unwrap();
        f.write_all(b"new").unwrap();
        f.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary left"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_dropped_output_leaves_the_old_file_and_no_temporary() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let d = dir("drop");
        let p = d.join("out.txt");
        std::fs::write(&p, "old").unwrap();
        {
            let mut f = OutputFile::create(&p, &[]).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn partial_files_are_removed_on_request() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let d = dir("partial");
        let p = d.join("out.txt");
        let f = OutputFile::create(&p, &[]).unwrap();
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        remove_partial_files();
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        drop(f);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_an_input_by_inode_whatever_the_name() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let d = dir("input");
        let input = d.join("trace.vmt");
        std::fs::write(&input, "R 0x1000\n").unwrap();
        let link = d.join("alias.vmt");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let e = OutputFile::create(&link, &[&input]).unwrap_err();
        assert!(matches!(e, OutputError::IsInput { .. }), "{e}");
        let hard = d.join("hard.vmt");
        std::fs::hard_link(&input, &hard).unwrap();
        assert!(OutputFile::create(&hard, &[&input]).is_err());
        assert_eq!(std::fs::read_to_string(&input).unwrap(), "R 0x1000\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn writes_through_a_symlink_and_keeps_it() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let d = dir("link");
        let target = d.join("target.txt");
        std::fs::write(&target, "old").unwrap();
        let link = d.join("link.txt");
        std::os::unix::fs::symlink("target.txt", &link).unwrap();
        write_file(&link, &[], b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_folder_is_reported_before_anything_is_written() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let d = dir("missing");
        let p = d.join("no/such/folder/out.txt");
        let e = OutputFile::create(&p, &[]).unwrap_err();
        assert!(matches!(e, OutputError::NoFolder { .. }), "{e}");
        assert!(e.to_string().contains("does not exist"));
        assert!(matches!(
            check(&d, &[]).unwrap_err(),
            OutputError::IsFolder { .. }
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn special_files_are_written_in_place() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        use std::os::unix::fs::FileTypeExt;
        let d = dir("fifo");
        let fifo = d.join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_file(&fifo, &[], b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
