//! Reading a trace file through windows of memory mapped from it, instead of copying
//! it into a buffer with `read`.
//!
//! A replacement run over a large trace reads each byte once, and copying every byte
//! out of the host's page cache took about a third of the reading thread's time (a
//! 240 MB oracleGeneral file, `vmsim policy`). A [`MappedFile`] maps up to [`WINDOW`]
//! bytes of the file at a time, with their page table entries filled in by the
//! mapping call (no fault per page), hands them out as its buffer, and unmaps them
//! once they are read, so the process never holds more than one window of the file
//! however large it is.
//!
//! The file must not be truncated while it is read: the host sends `SIGBUS` to a
//! process that touches a mapped page past the end of its file. Before each window
//! the file's length is read again, and a file found shorter than the windows
//! already handed out is an error; the window being read is unprotected, as with any
//! program that maps files. A file that grows is read up to its length when its last
//! window is mapped, as `read` would.

use std::fs::File;
use std::io::{BufRead, Read};

/// The most bytes mapped at a time.
pub const WINDOW: usize = 8 << 20;

/// The first window's bytes; each next one is twice the last, up to [`WINDOW`], so
/// that a look at a file's first bytes maps little. Every window so starts at a
/// multiple of this, so of any page size the host uses.
pub const FIRST_WINDOW: usize = 64 << 10;

/// A file read through mapped windows; see the [module](self).
#[derive(Debug)]
pub struct MappedFile {
    file: File,
    /// The file offset of the window.
    offset: u64,
    /// The window's address (0: none mapped) and length.
    addr: usize,
    len: usize,
    /// The next window's length, if the file is that long.
    next: usize,
    /// Bytes of the window already read.
    pos: usize,
}

impl MappedFile {
    /// Reads `file` from its start; `None` where it is better read (not a regular file,
    /// not on a host where this is built, a file system that cannot map it) or may be
    /// more than its length says (an empty regular file: those of /proc and /sys say 0
    /// and have contents).
    pub fn new(file: File) -> Option<MappedFile> {
        let meta = file.metadata().ok()?;
        if !cfg!(target_os = "linux") || !meta.is_file() || meta.len() == 0 {
            return None;
        }
        let mut m = MappedFile {
            file,
            offset: 0,
            addr: 0,
            len: 0,
            next: FIRST_WINDOW,
            pos: 0,
        };
        m.map_next().ok()?;
        Some(m)
    }

    /// Unmaps the window, if any.
    fn unmap(&mut self) {
        #[cfg(target_os = "linux")]
        if self.addr != 0 {
            // SAFETY: `addr..addr + len` is a mapping this value made and nothing else
            // refers to: the slices `fill_buf` gave borrowed `self` mutably, so none
            // outlives this call.
            unsafe {
                libc::munmap(self.addr as *mut libc::c_void, self.len);
            }
        }
        self.offset += self.len as u64;
        self.addr = 0;
        self.len = 0;
        self.pos = 0;
    }

    /// Maps the next window: `Ok(false)` at the end of the file.
    fn map_next(&mut self) -> std::io::Result<bool> {
        self.unmap();
        let size = self.file.metadata()?.len();
        if size < self.offset {
            return Err(std::io::Error::other(format!(
                "the file became shorter while it was read (now {size} bytes; {} were read)",
                self.offset
            )));
        }
        let len = (size - self.offset).min(self.next as u64) as usize;
        self.next = (2 * self.next).min(WINDOW);
        if len == 0 {
            return Ok(false);
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a new private read-only mapping of `len` bytes of an open file at
            // an offset that is a multiple of FIRST_WINDOW (so of the page size); the kernel
            // chooses the address, so no memory of this process is replaced.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_POPULATE,
                    self.file.as_raw_fd(),
                    self.offset as libc::off_t,
                )
            };
            if addr == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            self.addr = addr as usize;
            self.len = len;
        }
        Ok(true)
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        self.unmap();
    }
}

impl BufRead for MappedFile {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.len && !self.map_next()? {
            return Ok(&[]);
        }
        // SAFETY: `addr..addr + len` is mapped readable until `unmap`, which needs
        // `self` mutably, so not while the slice (borrowing `self`) lives; the file's
        // bytes there are read only (see the module's note on truncation).
        let window = unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) };
        Ok(&window[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

impl Read for MappedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let have = self.fill_buf()?;
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own for test `name`, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let d =
                std::env::temp_dir().join(format!("vmsim-mapped-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Every byte comes back in order across windows, through `read` and `fill_buf`
    /// alike, and the end is the end.
    #[test]
    fn a_file_reads_back_whole_across_windows() {
        let dir = Scratch::new("whole");
        let path = dir.0.join("t");
        let data: Vec<u8> = (0..WINDOW * 2 + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mut m = MappedFile::new(File::open(&path).unwrap()).unwrap();
        let mut back = Vec::new();
        let mut small = [0u8; 1000];
        loop {
            let n = m.read(&mut small).unwrap();
            back.extend_from_slice(&small[..n]);
            let have = m.fill_buf().unwrap().len().min(3 * WINDOW / 4 + 1);
            if n == 0 && have == 0 {
                break;
            }
            back.extend_from_slice(&m.fill_buf().unwrap()[..have]);
            m.consume(have);
        }
        assert_eq!(back.len(), data.len());
        assert!(back == data);
        assert!(MappedFile::new(File::open(&dir.0).unwrap()).is_none());
        std::fs::write(&path, b"").unwrap();
        assert!(MappedFile::new(File::open(&path).unwrap()).is_none());
    }

    /// A file cut short between windows is an error, not a crash.
    #[test]
    fn a_file_cut_short_is_an_error() {
        let dir = Scratch::new("short");
        let path = dir.0.join("t");
        std::fs::write(&path, vec![1u8; 4 * FIRST_WINDOW]).unwrap();
        let mut m = MappedFile::new(File::open(&path).unwrap()).unwrap();
        let n = m.fill_buf().unwrap().len();
        assert_eq!(n, FIRST_WINDOW);
        m.consume(n);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        let e = m.fill_buf().unwrap_err();
        assert!(e.to_string().contains("shorter"), "{e}");
    }
}
