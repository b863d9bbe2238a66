//! The file system's own blocks a path lookup reads: ext4 (and most block file
//! systems) read inode tables, directories and extent blocks through the block
//! device's page cache, which /proc/meminfo counts as `Buffers`, and Linux charges
//! those pages to the memory group of the task that read them. Across each call that
//! looks a path up or lists a directory, this thread reads `Buffers` before and after;
//! a growth is what the call read (the model charges it: `fs-metadata` events).
//!
//! An image's own lookups (QEMU opening the program and its interpreter, after this
//! plugin is installed and before the program's first syscall) are measured from the
//! install, or, for an image an exec started, from the exec call in the image before
//! (`buffers=` among the plugin's arguments), and sent at that first syscall.
//!
//! `Buffers` is the machine's: a write another process sends out while the call runs
//! (a journal commit, a flush) counts too. Lookups are short, and the calls between
//! them are not measured, so little else falls inside. A call that found everything
//! cached (the usual case once the program has run before) reads nothing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// `Buffers` (pages) when this image began to load, until its first syscall
/// ([`u64::MAX`]: not measured, or sent).
static LOAD_FROM: AtomicU64 = AtomicU64::new(u64::MAX);

thread_local! {
    /// `Buffers` (pages) when this thread's lookup began.
    static FROM: Cell<Option<u64>> = const { Cell::new(None) };
}

/// x86-64 syscalls that look a path up (or list a directory, or change one), reading
/// the file system's metadata where it is not cached.
const LOOKUPS: [i64; 29] = [
    2,   // open
    4,   // stat
    6,   // lstat
    21,  // access
    78,  // getdents
    80,  // chdir
    82,  // rename
    83,  // mkdir
    84,  // rmdir
    85,  // creat
    86,  // link
    87,  // unlink
    88,  // symlink
    89,  // readlink
    137, // statfs
    217, // getdents64
    257, // openat
    258, // mkdirat
    262, // newfstatat
    263, // unlinkat
    264, // renameat
    265, // linkat
    266, // symlinkat
    267, // readlinkat
    269, // faccessat
    316, // renameat2
    332, // statx
    437, // openat2
    439, // faccessat2
];

/// Whether syscall `num` is one whose metadata reads are measured.
pub fn is_lookup(num: i64) -> bool {
    LOOKUPS.contains(&num)
}

/// `Buffers:` of /proc/meminfo, in 4 KiB pages.
pub fn buffers_pages() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_buffers(&text)
}

/// The `Buffers:` line of a /proc/meminfo text, in 4 KiB pages.
fn parse_buffers(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("Buffers:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 4)
}

/// The pages `Buffers` grew by since it was `from`, if it grew.
fn grown_since(from: u64) -> Option<u64> {
    let now = buffers_pages()?;
    (now > from).then(|| now - from)
}

/// This image began to load when `Buffers` was `pages`.
pub fn loading_from(pages: Option<u64>) {
    LOAD_FROM.store(pages.unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The pages of metadata this image's loading read, once (at its first syscall).
pub fn loaded() -> Option<u64> {
    let from = LOAD_FROM.swap(u64::MAX, Ordering::Relaxed);
    if from == u64::MAX {
        return None;
    }
    grown_since(from)
}

/// This thread enters syscall `num`: a lookup's `Buffers` are taken.
pub fn enter(num: i64) {
    let from = if is_lookup(num) {
        buffers_pages()
    } else {
        None
    };
    FROM.with(|c| c.set(from));
}

/// This thread's syscall returned: the pages of metadata a lookup read, if any.
pub fn leave() -> Option<u64> {
    let from = FROM.with(Cell::take)?;
    grown_since(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_read_in_pages() {
        let text = "MemTotal:       16384000 kB\nMemFree:  100 kB\nBuffers:           1548 kB\nCached: 5 kB\n";
        assert_eq!(parse_buffers(text), Some(387));
        assert_eq!(parse_buffers("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_buffers("Buffers: lots kB\n"), None);
    }

    #[test]
    fn only_lookups_are_measured() {
        assert!(is_lookup(257) && is_lookup(4) && is_lookup(217));
        // read, write, mmap, close: not lookups.
        assert!(!is_lookup(0) && !is_lookup(1) && !is_lookup(9) && !is_lookup(3));
        enter(0);
        assert_eq!(leave(), None, "nothing taken for a read");
    }

    #[test]
    fn an_image_s_loading_is_measured_once() {
        loading_from(Some(0));
        // From nothing to what the machine's block devices cache now.
        let got = loaded();
        assert_eq!(got.is_some(), buffers_pages().is_some_and(|b| b > 0));
        assert_eq!(loaded(), None, "once");
        loading_from(None);
        assert_eq!(loaded(), None, "not measured");
    }

    #[test]
    fn this_machine_has_buffers() {
        assert!(buffers_pages().is_some());
    }
}
