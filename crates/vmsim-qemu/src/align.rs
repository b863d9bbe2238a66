//! Linux's placement of large anonymous mappings, reproduced under QEMU.
//!
//! Linux (6.7 on) places a private anonymous `mmap` whose length is a multiple of 2 MiB
//! at a 2 MiB boundary, so that the whole mapping can be backed by transparent huge
//! pages. QEMU's user mode chooses guest addresses itself: it asks the host for free
//! space with a probe, `mmap(hint, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
//! MAP_NORESERVE, -1, 0)`, and takes whatever page-aligned address comes back. A
//! recording would then hold addresses no native run has, and a replay would give such
//! a mapping fewer huge pages than Linux does.
//!
//! So the recorder also preloads this plugin into QEMU (`LD_PRELOAD`, which QEMU's `-U`
//! hides from the guest), and the `mmap` below, which QEMU's calls then reach, answers
//! a probe of a 2 MiB multiple with a 2 MiB-aligned range: it takes 2 MiB more and
//! gives back the ends. Every other call goes to the kernel unchanged. A file mapping
//! of such a length is aligned too; Linux aligns those of 2 MiB or more on file systems
//! with large folios, and vmsim's replay does not depend on their alignment.

use std::ffi::{c_int, c_void};

/// The size and alignment of a PMD-mapped huge page on x86-64.
pub const HUGE: usize = 2 << 20;

/// The flags of QEMU's probe for free guest address space.
const PROBE_FLAGS: c_int = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;

/// `mmap` as the kernel does it (no interposition).
///
/// # Safety
/// As `mmap(2)`: mapping over memory in use (`MAP_FIXED`) is the caller's business.
pub(crate) unsafe fn sys_mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    // SAFETY: the caller's contract; the raw call returns -1 (MAP_FAILED) with errno set
    // on failure, as the C library's wrapper does.
    unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, off) as *mut c_void }
}

/// Whether a call is QEMU's probe for guest space that Linux would align.
pub fn is_aligned_probe(len: usize, prot: c_int, flags: c_int, fd: c_int, off: i64) -> bool {
    prot == libc::PROT_NONE
        && flags == PROBE_FLAGS
        && fd == -1
        && off == 0
        && len >= HUGE
        && len % HUGE == 0
}

/// `mmap`, with QEMU's probes of 2 MiB multiples placed at a 2 MiB boundary (see the
/// module's documentation).
///
/// # Safety
/// As `mmap(2)`.
pub unsafe fn mmap_aligned(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    if !is_aligned_probe(len, prot, flags, fd, off) {
        // SAFETY: passed through unchanged.
        return unsafe { sys_mmap(addr, len, prot, flags, fd, off) };
    }
    // SAFETY: a new PROT_NONE reservation (no MAP_FIXED): nothing in use is replaced.
    let p = unsafe { sys_mmap(addr, len + HUGE, prot, flags, fd, off) };
    if p == libc::MAP_FAILED {
        // SAFETY: as above, at the asked size.
        return unsafe { sys_mmap(addr, len, prot, flags, fd, off) };
    }
    let start = p as usize;
    let aligned = (start + HUGE - 1) & !(HUGE - 1);
    let end = start + len + HUGE;
    // SAFETY: both ranges are the ends of the reservation just made, outside what is
    // returned.
    unsafe {
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        if end > aligned + len {
            libc::munmap((aligned + len) as *mut c_void, end - aligned - len);
        }
    }
    aligned as *mut c_void
}

/// The `mmap` QEMU's calls reach when the recorder preloads this plugin.
///
/// # Safety
/// As `mmap(2)`.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    unsafe { mmap_aligned(addr, len, prot, flags, fd, off) }
}

/// `mmap64`, the name QEMU's calls use (built with 64-bit file offsets): the same call.
///
/// # Safety
/// As `mmap(2)`.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    unsafe { mmap_aligned(addr, len, prot, flags, fd, off) }
}

/// The environment variable the recorder preloads the plugin with.
pub const PRELOAD: &str = "LD_PRELOAD";

/// QEMU's options that give the guest its own `LD_PRELOAD` (`guest`: the value it
/// would have had; none, unset) while QEMU itself runs with the plugin preloaded.
pub fn guest_preload_args(guest: Option<&[u8]>) -> [Vec<u8>; 2] {
    match guest {
        Some(v) => [b"-E".to_vec(), [PRELOAD.as_bytes(), b"=", v].concat()],
        None => [b"-U".to_vec(), PRELOAD.into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_of_2mib_multiples_come_back_aligned_and_others_unchanged() {
        // SAFETY: fresh PROT_NONE reservations, unmapped again below.
        unsafe {
            for _ in 0..8 {
                let p = mmap_aligned(std::ptr::null_mut(), 4 * HUGE, 0, PROBE_FLAGS, -1, 0);
                assert_ne!(p, libc::MAP_FAILED);
                assert_eq!(p as usize % HUGE, 0, "{p:?}");
                // The ends were given back: the range after it is free again.
                let next = mmap_aligned(
                    (p as usize + 4 * HUGE) as *mut c_void,
                    4096,
                    0,
                    PROBE_FLAGS,
                    -1,
                    0,
                );
                assert_eq!(next as usize, p as usize + 4 * HUGE);
                libc::munmap(next, 4096);
                libc::munmap(p, 4 * HUGE);
            }
        }
        assert!(is_aligned_probe(HUGE, 0, PROBE_FLAGS, -1, 0));
        assert!(!is_aligned_probe(HUGE + 4096, 0, PROBE_FLAGS, -1, 0));
        assert!(!is_aligned_probe(HUGE, libc::PROT_READ, PROBE_FLAGS, -1, 0));
        assert!(!is_aligned_probe(
            HUGE,
            0,
            PROBE_FLAGS | libc::MAP_FIXED,
            -1,
            0
        ));
        assert_eq!(guest_preload_args(None), [&b"-U"[..], b"LD_PRELOAD"]);
        assert_eq!(
            guest_preload_args(Some(b"a.so")),
            [&b"-E"[..], b"LD_PRELOAD=a.so"]
        );
    }
}
