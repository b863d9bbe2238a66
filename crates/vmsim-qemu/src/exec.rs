//! Following exec: QEMU runs an exec'd program natively, untraced. So when the guest
//! calls execve, the plugin execs QEMU itself first, with this plugin and the program
//! (and, for a `#!` script, its interpreter), as the kernel would have run it. If that
//! exec fails, QEMU goes on to make the guest's own call, which fails the same way.

use std::ffi::{CStr, CString};

/// What the plugin needs to start QEMU again on another program.
#[derive(Clone, Debug, Default)]
pub struct Respawn {
    /// QEMU's binary.
    pub qemu: String,
    /// This plugin's file.
    pub plugin: String,
    /// The recorder's socket name.
    pub sock: String,
}

/// Escapes a value for QEMU's `-plugin` option (a comma is written twice).
fn escape(v: &str) -> String {
    v.replace(',', ",,")
}

impl Respawn {
    /// The `-plugin` option's value for an image of `exe` started by exec, with
    /// /proc/meminfo's `Buffers` now, at the exec ([`crate::metadata`]).
    pub fn plugin_arg(&self, exe: &str) -> String {
        let buffers = crate::metadata::buffers_pages()
            .map(|b| format!(",buffers={b}"))
            .unwrap_or_default();
        format!(
            "{},sock={},qemu={},so={},exe={},exec=1{buffers}",
            escape(&self.plugin),
            escape(&self.sock),
            escape(&self.qemu),
            escape(&self.plugin),
            escape(exe)
        )
    }

    /// QEMU's argument vector that runs `path` with `argv` (`argv[0]` kept), following
    /// a `#!` line in `head` (the file's first bytes) as the kernel does. `None` if the
    /// file is neither an x86-64 ELF nor a script whose interpreter is one.
    /// `guest_preload` is the guest's own `LD_PRELOAD`, if it has one (QEMU itself runs
    /// with this plugin preloaded: see [`crate::align`]). The guest's arguments are
    /// bytes, as the kernel takes them: they need not be UTF-8.
    pub fn argv(
        &self,
        path: &str,
        head: &[u8],
        argv: &[Vec<u8>],
        guest_preload: Option<&[u8]>,
    ) -> Option<Vec<Vec<u8>>> {
        let mut out: Vec<Vec<u8>> = vec![self.qemu.clone().into()];
        out.extend(crate::align::guest_preload_args(guest_preload));
        out.push(b"-plugin".to_vec());
        if crate::elf::is_x86_64_elf(head) {
            out.push(self.plugin_arg(path).into());
            out.push(b"-0".to_vec());
            out.push(argv.first().cloned().unwrap_or_else(|| path.into()));
            out.push(path.into());
            out.extend(argv.iter().skip(1).cloned());
            return Some(out);
        }
        let (interp, arg) = crate::elf::shebang(head)?;
        let ihead = crate::image::read_head(&interp, 64)?;
        if !crate::elf::is_x86_64_elf(&ihead) {
            return None;
        }
        out.push(self.plugin_arg(&interp).into());
        out.push(b"-0".to_vec());
        out.push(interp.clone().into());
        out.push(interp.into());
        out.extend(arg.map(Vec::from));
        out.push(path.into());
        out.extend(argv.iter().skip(1).cloned());
        Some(out)
    }
}

/// Reads `buf.len()` bytes of this process's memory at `addr`, or fails (a bad guest
/// pointer gives an error here, not a crash).
pub fn read_mem(addr: u64, buf: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: process_vm_readv writes at most `buf.len()` bytes into `buf` and only
    // reads the remote range, reporting EFAULT for an unmapped one.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    n == buf.len() as isize
}

/// The longest path the kernel takes (`PATH_MAX`, with its terminating zero).
const PATH_MAX: usize = 4096;

/// The longest argument or environment string the kernel takes (`MAX_ARG_STRLEN`, 32
/// pages, with its terminating zero): `sh -c` with a long script, a long variable.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// The bytes of a C string of guest memory at `addr`, without its zero, if it ends
/// within `max` bytes (its zero included).
pub fn read_cbytes(addr: u64, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        // Up to the next page boundary at a time, so no read crosses into an unmapped
        // page past the string's end.
        let n = ((4096 - (at % 4096)) as usize).min(max - out.len());
        let mut chunk = vec![0u8; n];
        if !read_mem(at, &mut chunk) {
            return None;
        }
        if let Some(z) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..z]);
            return Some(out);
        }
        out.extend_from_slice(&chunk);
        at = at.checked_add(n as u64)?;
    }
    None
}

/// A path in guest memory at `addr` (at most `PATH_MAX` bytes, UTF-8).
pub fn read_cstr(addr: u64) -> Option<String> {
    String::from_utf8(read_cbytes(addr, PATH_MAX)?).ok()
}

/// The most strings an `argv` and an `envp` may hold together: the kernel takes a
/// quarter of the stack's limit for both (2 MiB under the usual 8 MiB), and each
/// string costs at least its 8-byte pointer and its zero.
const MAX_ARG_STRINGS: usize = (2 << 20) / 9;

/// A NULL-terminated array of C strings in guest memory, each at most
/// [`MAX_ARG_STRLEN`] bytes (at most [`MAX_ARG_STRINGS`] of them): an `argv` or
/// `envp`.
pub fn read_strv(addr: u64) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if addr == 0 {
        return Some(out);
    }
    let mut at = addr;
    while out.len() < MAX_ARG_STRINGS {
        // The pointers up to the next page boundary at a time.
        let n = ((4096 - (at % 4096)) as usize / 8).max(1);
        let mut chunk = vec![0u8; 8 * n];
        if !read_mem(at, &mut chunk) {
            return None;
        }
        for p in chunk.chunks_exact(8) {
            let p = u64::from_le_bytes(p.try_into().ok()?);
            if p == 0 {
                return Some(out);
            }
            out.push(read_cbytes(p, MAX_ARG_STRLEN)?);
        }
        at = at.checked_add(8 * n as u64)?;
    }
    None
}

/// Execs QEMU on the program the guest is exec'ing, after `flush` (which sends
/// everything recorded so far). Returns only if that is not possible: `true` when the
/// program is one the plugin cannot follow (it will run untraced), `false` when the
/// exec would fail anyway (QEMU's own call reports why).
pub fn follow(
    r: &Respawn,
    exe: &str,
    path: u64,
    argv: u64,
    envp: u64,
    flush: impl FnOnce(),
) -> bool {
    let (Some(mut path), Some(argv), Some(envp)) =
        (read_cstr(path), read_strv(argv), read_strv(envp))
    else {
        return false;
    };
    if path == "/proc/self/exe" {
        path = exe.to_string();
    }
    let Ok(cpath) = CString::new(path.clone()) else {
        return false;
    };
    // SAFETY: `cpath` is a valid C string for the call.
    if unsafe { libc::access(cpath.as_ptr(), libc::X_OK) } != 0 {
        return false;
    }
    let Some(head) = crate::image::read_head(&path, 256) else {
        return false;
    };
    // QEMU runs with this plugin preloaded, the guest with its own LD_PRELOAD, if any.
    let prefix = format!("{}=", crate::align::PRELOAD);
    let prefix = prefix.as_bytes();
    let guest_preload = envp.iter().find_map(|e| e.strip_prefix(prefix));
    let Some(args) = r.argv(&path, &head, &argv, guest_preload) else {
        return true;
    };
    let envp: Vec<Vec<u8>> = envp
        .iter()
        .filter(|e| !e.starts_with(prefix))
        .cloned()
        .chain(std::iter::once([prefix, r.plugin.as_bytes()].concat()))
        .collect();
    let to_c = |v: Vec<Vec<u8>>| -> Option<Vec<CString>> {
        v.into_iter().map(|s| CString::new(s).ok()).collect()
    };
    let (Some(args), Some(env), Ok(qemu)) = (to_c(args), to_c(envp), CString::new(r.qemu.clone()))
    else {
        return false;
    };
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argp, envp) = (ptrs(&args), ptrs(&env));
    flush();
    // SAFETY: `qemu`, and every pointer in `argp` and `envp` (each array ending in a
    // null), point to C strings that live across the call.
    unsafe { libc::execve(qemu.as_ptr(), argp.as_ptr(), envp.as_ptr()) };
    false
}

/// The C string at `p` as text (for the plugin's install arguments).
///
/// # Safety
/// `p` must point to a NUL-terminated string.
pub unsafe fn arg_str(p: *const libc::c_char) -> String {
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_elf_is_run_by_qemu_with_its_argv0_and_the_plugin() {
        let r = Respawn {
            qemu: "/usr/bin/qemu-x86_64".into(),
            plugin: "/p/lib,x.so".into(),
            sock: "s".into(),
        };
        let me = std::env::current_exe().unwrap();
        let me = me.to_str().unwrap();
        let head = crate::image::read_head(me, 64).unwrap();
        // Arguments need not be UTF-8: they pass through as bytes.
        let a = r
            .argv(me, &head, &[b"prog".to_vec(), b"-v\xff".to_vec()], None)
            .unwrap();
        let a: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
        assert_eq!(a[0], b"/usr/bin/qemu-x86_64");
        assert_eq!(&a[1..3], [&b"-U"[..], b"LD_PRELOAD"]);
        assert_eq!(a[3], b"-plugin");
        assert!(a[4].starts_with(b"/p/lib,,x.so,sock=s,"));
        assert_eq!(&a[5..], [&b"-0"[..], b"prog", me.as_bytes(), b"-v\xff"]);
        let a = r
            .argv(me, &head, &[b"prog".to_vec()], Some(b"g.so"))
            .unwrap();
        assert_eq!(&a[1..3], [&b"-E"[..], b"LD_PRELOAD=g.so"]);
        assert!(r.argv(me, b"plain text", &[], None).is_none());
    }

    #[test]
    fn guest_strings_read_back_and_bad_pointers_fail_cleanly() {
        let s = CString::new("hello").unwrap();
        assert_eq!(read_cstr(s.as_ptr() as u64).as_deref(), Some("hello"));
        assert_eq!(read_cstr(8), None);
        let v = [s.as_ptr(), std::ptr::null()];
        assert_eq!(read_strv(v.as_ptr() as u64), Some(vec![b"hello".to_vec()]));
    }

    #[test]
    fn arguments_as_long_as_the_kernel_takes_are_read_whole() {
        // An `sh -c` script or a variable of 100 KiB, across page boundaries, and not
        // UTF-8; a path is held to PATH_MAX.
        let long: Vec<u8> = (0..100_000u32).map(|i| (i % 255) as u8 + 1).collect();
        let c = CString::new(long.clone()).unwrap();
        assert_eq!(read_cbytes(c.as_ptr() as u64, MAX_ARG_STRLEN), Some(long));
        assert_eq!(read_cstr(c.as_ptr() as u64), None);
        let v = [c.as_ptr(), c.as_ptr(), std::ptr::null()];
        let got = read_strv(v.as_ptr() as u64).unwrap();
        assert_eq!((got.len(), got[1].len()), (2, 100_000));
        // Longer than the kernel takes: refused, as execve would refuse it (E2BIG).
        let too_long = CString::new(vec![b'a'; MAX_ARG_STRLEN]).unwrap();
        let v = [too_long.as_ptr(), std::ptr::null()];
        assert_eq!(read_strv(v.as_ptr() as u64), None);
        // More pointers than a page holds, read across page boundaries (`xargs`).
        let short = CString::new("x").unwrap();
        let many: Vec<*const libc::c_char> = std::iter::repeat_n(short.as_ptr(), 3000)
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        assert_eq!(read_strv(many.as_ptr() as u64).map(|v| v.len()), Some(3000));
    }
}
