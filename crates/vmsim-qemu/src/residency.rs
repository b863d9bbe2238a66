//! What of a program's files the host's page cache held before the program used them.
//!
//! After `echo 3 > /proc/sys/vm/drop_caches`, Linux reads a program, the libraries
//! and the data files no running process maps from storage when it runs them, and
//! charges those pages to the program's memory group; what some other process maps
//! (the C library, the locale files the shell loaded) stays cached, and a program run
//! again finds its files cached. So the recorder asks the host's kernel (`mincore`)
//! which pages of each file were cached the first time it sees the file: the
//! program's when the plugin is installed, before QEMU loads it (so it holds what
//! the recorder's read of its first bytes brought in, as Linux's exec's read of them
//! would); the interpreter's at start, before the plugin reads its headers; then each
//! file's when the program opens it or maps one it did not open (before it reads or
//! maps any of it).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// Files `(dev, inode)` the recorder's own processes map (QEMU's libraries and the
/// plugin's, and `vmsim record`'s) and no other process does: without the recorder
/// Linux would not hold them, so the program finds none of their pages cached.
static RECORDER_ONLY: OnceLock<HashSet<(u64, u64)>> = OnceLock::new();

/// Files `(dev, inode)` whose residency this process has taken.
static SEEN: Mutex<Option<HashSet<(u64, u64)>>> = Mutex::new(None);

/// The page size `mincore` reports in.
const PAGE: u64 = 4096;

/// A file's `(dev, inode, size)`.
pub type FileId = (u64, u64, u64);

/// Runs of pages, `(first page, pages)`.
pub type Runs = Vec<(u64, u64)>;

/// The runs of pages of the regular file open as `fd` that the page cache holds, with
/// the file's identity; `None` if `fd` is not a regular file, if this process took
/// that file's residency before, or if it cannot be read.
pub fn take(fd: libc::c_int) -> Option<(FileId, Runs)> {
    let st = crate::regular_file(fd)?;
    let id = (st.st_dev, st.st_ino, st.st_size as u64);
    {
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.get_or_insert_with(HashSet::new).insert((id.0, id.1)) {
            return None;
        }
    }
    let pages = id.2.div_ceil(PAGE);
    if pages == 0
        || RECORDER_ONLY
            .get()
            .is_some_and(|r| r.contains(&(id.0, id.1)))
    {
        return Some((id, Vec::new()));
    }
    let mut vec = vec![0u8; pages as usize];
    if !resident(fd, &mut vec) {
        // Not taken: a later open for reading may take it.
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        seen.get_or_insert_with(HashSet::new).remove(&(id.0, id.1));
        return None;
    }
    Some((id, runs(&vec)))
}

/// Notes the files only the recorder maps (see [`RECORDER_ONLY`]), as
/// [`recorder_only`] finds them in every process's `/proc/PID/maps` now. Call once,
/// before the program runs.
pub fn note_recorder(recorder: u32) {
    let mut parent = HashMap::new();
    let mut maps = HashMap::new();
    for pid in std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        if let Some(pp) = ppid_of(pid) {
            parent.insert(pid, pp);
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            maps.insert(pid, crate::image::mapped_files(&text));
        }
    }
    let only = recorder_only(&maps, &parent, std::process::id(), recorder);
    let _ = RECORDER_ONLY.set(only);
}

/// The files that `me` (QEMU, before it loads the program) or `recorder` (the
/// `vmsim record` process) maps and that no process maps but the recorder and its
/// descendants (the recording's QEMU processes), from each process's mapped files
/// and parent.
fn recorder_only(
    maps: &HashMap<u32, HashSet<(u64, u64)>>,
    parent: &HashMap<u32, u32>,
    me: u32,
    recorder: u32,
) -> HashSet<(u64, u64)> {
    let ours_pid = |mut pid: u32| {
        // Up the parents to the recorder (a bounded walk: /proc read one process at a
        // time may show a reused pid as its own ancestor).
        for _ in 0..64 {
            if pid == recorder || pid == me {
                return true;
            }
            match parent.get(&pid) {
                Some(&pp) if pp != 0 => pid = pp,
                _ => return false,
            }
        }
        false
    };
    let mut ours = HashSet::new();
    let mut others = HashSet::new();
    for (&pid, files) in maps {
        if pid == me || pid == recorder {
            ours.extend(files.iter().copied());
        } else if !ours_pid(pid) {
            others.extend(files.iter().copied());
        }
    }
    ours.difference(&others).copied().collect()
}

/// The parent of process `pid`, from `/proc/PID/stat` (after the name's closing
/// parenthesis: state, then the parent).
fn ppid_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Fills `vec` (one byte per page) with `mincore`'s view of the file open as `fd`;
/// false if the file cannot be mapped. A descriptor open for writing only cannot be
/// mapped: the file opened again for reading can.
fn resident(fd: libc::c_int, vec: &mut [u8]) -> bool {
    resident_as(fd, vec)
        || std::fs::File::open(format!("/proc/self/fd/{fd}"))
            .is_ok_and(|f| resident_as(std::os::fd::AsRawFd::as_raw_fd(&f), vec))
}

/// [`resident`] through `fd` itself.
fn resident_as(fd: libc::c_int, vec: &mut [u8]) -> bool {
    let len = vec.len() * PAGE as usize;
    // SAFETY: a private read-only mapping of the whole file, made here, read by
    // mincore into a vector of one byte per page, and unmapped before returning;
    // mapping a file reads none of it.
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        );
        if at == libc::MAP_FAILED {
            return false;
        }
        let ok = libc::mincore(at, len, vec.as_mut_ptr()) == 0;
        libc::munmap(at, len);
        ok
    }
}

/// The runs of entries with the low bit set (`mincore`'s resident bit) in `vec`.
pub fn runs(vec: &[u8]) -> Runs {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, &b) in vec.iter().enumerate() {
        if b & 1 == 0 {
            continue;
        }
        let i = i as u64;
        match out.last_mut() {
            Some((first, n)) if *first + *n == i => *n += 1,
            _ => out.push((i, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_the_recorders_only_if_no_process_outside_it_maps_it() {
        // 1 the shell, 2 the recorder, 3 QEMU (me), 4 a QEMU the program forked, 5 a
        // process of its own under the shell.
        let set = |f: &[u64]| f.iter().map(|&i| (7, i)).collect::<HashSet<_>>();
        let maps: HashMap<u32, HashSet<(u64, u64)>> = [
            (1, set(&[10])),
            (2, set(&[10, 11, 12])),
            (3, set(&[10, 13, 14])),
            (4, set(&[14, 15])),
            (5, set(&[12])),
        ]
        .into_iter()
        .collect();
        let parent: HashMap<u32, u32> = [(2, 1), (3, 2), (4, 3), (5, 1)].into_iter().collect();
        // 10: the shell maps it; 12: an unrelated process does; 14 the forked QEMU
        // maps too, which is still the recorder's; 15 only the fork maps.
        assert_eq!(recorder_only(&maps, &parent, 3, 2), set(&[11, 13, 14]));
    }

    #[test]
    fn this_process_maps_its_own_executable() {
        use std::os::unix::fs::MetadataExt;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::metadata("/proc/self/exe").unwrap();
        assert!(crate::image::mapped_files(&maps).contains(&(exe.dev(), exe.ino())));
        assert_eq!(
            ppid_of(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
    }

    #[test]
    fn runs_join_neighbouring_resident_pages() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[0, 0]), vec![]);
        assert_eq!(runs(&[1, 1, 0, 3, 0, 0, 1]), vec![(0, 2), (3, 1), (6, 1)]);
        // Only the low bit says resident.
        assert_eq!(runs(&[2, 1]), vec![(1, 1)]);
    }

    #[test]
    fn a_file_is_taken_once_and_a_page_read_is_resident() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join(format!("vmsim-residency-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; 3 * PAGE as usize]).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let (id, runs) = take(f.as_raw_fd()).expect("a regular file");
        assert_eq!(id.2, 3 * PAGE);
        // Just written: the page cache holds it all.
        assert_eq!(runs, vec![(0, 3)]);
        assert_eq!(take(f.as_raw_fd()), None, "once per file");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_file_open_for_writing_only_is_taken_too() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join(format!("vmsim-residency-w-{}", std::process::id()));
        std::fs::write(&path, vec![1u8; 2 * PAGE as usize]).unwrap();
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        // Not through `take`: another test's file, deleted, may have had its inode.
        let mut vec = vec![0u8; 2];
        assert!(
            !resident_as(w.as_raw_fd(), &mut vec),
            "not mappable as it is"
        );
        assert!(
            resident(w.as_raw_fd(), &mut vec),
            "opened again for reading"
        );
        assert_eq!(runs(&vec), vec![(0, 2)]);
        w.write_all(b"x").unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
