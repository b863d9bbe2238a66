//! Files on tmpfs (`/dev/shm` through `shm_open`, `memfd_create`): which of the files
//! a process uses are on tmpfs (their pages are shared memory to the model), and when
//! the process lets go of one whose name is gone (Linux frees its pages with its last
//! descriptor and mapping).
//!
//! A file is asked about (`fstatfs`) the first time the process uses it. At a `close`
//! or `unlink` of a tmpfs file that leaves it without a name, the process is looked
//! at after the call: with no descriptor of it (`/proc/self/fd`) and no mapping of it
//! (`/proc/self/maps`), it has let the file go; with a mapping only, it lets go when a
//! later `munmap` or `mremap` takes the last one.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::CString;
use std::sync::Mutex;

/// A file's `(dev, inode)`.
pub type Id = (u64, u64);

/// Files this process has asked `fstatfs` about.
static SEEN: Mutex<Option<HashSet<Id>>> = Mutex::new(None);
/// Of those, the ones on tmpfs.
static TMPFS: Mutex<Option<HashSet<Id>>> = Mutex::new(None);
/// Tmpfs files without a name or a descriptor here that this process still maps.
static MAPPED_ONLY: Mutex<Option<HashSet<Id>>> = Mutex::new(None);

thread_local! {
    /// The tmpfs file this thread's `close` or `unlink` is about, and whether the call
    /// leaves it without a name.
    static LEAVING: Cell<Option<(Id, bool)>> = const { Cell::new(None) };
}

/// `statfs`'s `f_type` for tmpfs (and for `memfd_create`'s files, which live on an
/// internal tmpfs).
const TMPFS_MAGIC: i64 = 0x0102_1994;

fn with<T>(set: &Mutex<Option<HashSet<Id>>>, f: impl FnOnce(&mut HashSet<Id>) -> T) -> T {
    let mut g = set.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashSet::new))
}

/// The first time this process uses the regular file `st`, open as `fd`: if it is on
/// tmpfs, calls `mark` (which says so), before any other thread of the process can go
/// on to use the file (the lock is held meanwhile).
pub fn first_use(fd: libc::c_int, st: &libc::stat, mark: impl FnOnce()) {
    let id = (st.st_dev, st.st_ino);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.get_or_insert_with(HashSet::new).insert(id) {
        return;
    }
    // SAFETY: fstatfs into a zeroed struct.
    let tmpfs = unsafe {
        let mut sf: libc::statfs = std::mem::zeroed();
        libc::fstatfs(fd, &mut sf) == 0 && sf.f_type as i64 == TMPFS_MAGIC
    };
    if tmpfs {
        with(&TMPFS, |s| s.insert(id));
        mark();
    }
}

/// The process is ending (`exit_group`): the tmpfs files without a name it still
/// has a descriptor or mapping of, which it lets go as it ends.
pub fn at_exit() -> Vec<Id> {
    let mut ids: Vec<Id> = with(&MAPPED_ONLY, |s| s.drain().collect());
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            let Some(fd) = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<libc::c_int>().ok())
            else {
                continue;
            };
            // SAFETY: fstat into a zeroed struct.
            let st = unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                (libc::fstat(fd, &mut st) == 0).then_some(st)
            };
            if let Some(st) = st.filter(|st| st.st_nlink == 0) {
                let id = (st.st_dev, st.st_ino);
                if with(&TMPFS, |s| s.contains(&id)) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// The entry of `close(fd)`: notes the file if it is a tmpfs file without a name.
pub fn closing(fd: libc::c_int) {
    // SAFETY: fstat into a zeroed struct.
    let st = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st)
    };
    note(st, |st| st.st_nlink == 0);
}

/// The entry of `unlinkat(dirfd, path, flags)` (`unlink` with `AT_FDCWD`): notes the
/// file if it is a tmpfs file that the call leaves without a name.
pub fn unlinking(dirfd: libc::c_int, path: &str, flags: libc::c_int) {
    let Ok(c) = CString::new(path) else { return };
    if flags & libc::AT_REMOVEDIR != 0 {
        return;
    }
    // SAFETY: fstatat of a NUL-terminated path into a zeroed struct.
    let st = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstatat(dirfd, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0).then_some(st)
    };
    note(st, |st| st.st_nlink <= 1);
}

fn note(st: Option<libc::stat>, nameless: impl Fn(&libc::stat) -> bool) {
    let leaving = st
        .map(|st| ((st.st_dev, st.st_ino), nameless(&st)))
        .filter(|(id, _)| with(&TMPFS, |s| s.contains(id)));
    LEAVING.with(|l| l.set(leaving));
}

/// The return of the `close` or `unlink` whose entry [`closing`] or [`unlinking`]
/// saw (`ok` if it succeeded): the file this process let go, if it did.
pub fn left(ok: bool) -> Option<Id> {
    let (id, nameless) = LEAVING.with(|l| l.take())?;
    if !ok || !nameless || held(id) {
        return None;
    }
    if mapped(id) {
        with(&MAPPED_ONLY, |s| s.insert(id));
        return None;
    }
    Some(id)
}

/// After a successful `munmap` or `mremap`: the files this process let go with their
/// last mapping.
pub fn unmapped() -> Vec<Id> {
    if with(&MAPPED_ONLY, |s| s.is_empty()) {
        return Vec::new();
    }
    let ids: Vec<Id> = with(&MAPPED_ONLY, |s| s.iter().copied().collect());
    let gone: Vec<Id> = ids.into_iter().filter(|&id| !mapped(id)).collect();
    with(&MAPPED_ONLY, |s| {
        for id in &gone {
            s.remove(id);
        }
    });
    gone
}

/// Whether a descriptor of this process is open on file `id`.
fn held(id: Id) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return true;
    };
    dir.flatten().any(|e| {
        let Some(fd) = e
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::c_int>().ok())
        else {
            return false;
        };
        // SAFETY: fstat into a zeroed struct.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(fd, &mut st) == 0 && (st.st_dev, st.st_ino) == id
        }
    })
}

/// Whether this process maps file `id` (its `/proc/self/maps` names the device and
/// inode).
fn mapped(id: Id) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return true;
    };
    crate::image::mapped_files(&maps).contains(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memfd_closed_is_let_go_only_when_unmapped_too() {
        // SAFETY: memfd_create of a literal name; ftruncate, mmap, munmap and close of
        // the descriptor and mapping made here.
        unsafe {
            let fd = libc::memfd_create(c"vmsim-tmpfs-test".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, 8192), 0);
            let mut st: libc::stat = std::mem::zeroed();
            assert_eq!(libc::fstat(fd, &mut st), 0);
            let mut marks = 0;
            first_use(fd, &st, || marks += 1);
            first_use(fd, &st, || marks += 1);
            assert_eq!(marks, 1, "a memfd is on tmpfs, asked once");
            let id = (st.st_dev, st.st_ino);
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            closing(fd);
            assert_eq!(libc::close(fd), 0);
            assert_eq!(left(true), None, "still mapped");
            assert_eq!(libc::munmap(p, 8192), 0);
            assert_eq!(unmapped(), vec![id]);
            assert!(unmapped().is_empty());
            // One still open at the end is let go as the process ends.
            let fd = libc::memfd_create(c"vmsim-tmpfs-test-2".as_ptr(), 0);
            assert_eq!(libc::fstat(fd, &mut st), 0);
            first_use(fd, &st, || {});
            assert!(at_exit().contains(&(st.st_dev, st.st_ino)));
            libc::close(fd);
        }
    }
}
