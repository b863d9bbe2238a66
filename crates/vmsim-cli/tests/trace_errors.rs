//! End-to-end tests of bad traces: every refusal is an orderly error (no panic, no
//! abort, no signal) that names the file, the line and the field, quotes at most a few
//! dozen characters of the input, and comes at once, whatever the input's size (an
//! endless `/dev/zero` included). Each run is killed after 20 seconds, so a regression
//! fails rather than hangs.

mod support;
use support::{file, s};

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest a run may take before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs vmsim with `args`, killing it after [`LIMIT`].
fn vmsim(args: &[&str]) -> Run {
    let out = support::within(args, LIMIT);
    Run {
        status: out.status,
        stdout: support::text(&out.stdout),
        stderr: support::text(&out.stderr),
    }
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs vmsim and checks it failed in an orderly way: not success, not a panic (101),
/// not an abort (134), not killed by a signal, and one short message on stderr that
/// holds every one of `wants`.
fn refused(args: &[&str], wants: &[&str]) -> String {
    let r = vmsim(args);
    assert!(!r.status.success(), "{args:?} succeeded: {}", r.stdout);
    let code = r.status.code();
    assert!(
        code.is_some(),
        "{args:?} was killed by a signal: {:?}",
        r.status
    );
    assert!(
        !matches!(code, Some(101) | Some(134)),
        "{args:?} panicked or aborted ({code:?}): {}",
        r.stderr
    );
    for want in wants {
        assert!(
            r.stderr.contains(want),
            "{args:?}: wanted {want:?} in:\n{}",
            r.stderr
        );
    }
    assert!(
        r.stderr.len() < 600 && r.stderr.lines().count() <= 2,
        "{args:?}: a long error ({} bytes): {}",
        r.stderr.len(),
        &r.stderr[..r.stderr.len().min(2000)]
    );
    r.stderr
}

/// `/dev/zero` is one endless line: every line reader stops at the line limit.
#[test]
fn dev_zero_is_refused_at_the_line_limit() {
    for format in ["lackey", "vmsim-text", "plain"] {
        refused(
            &["run", "--format", format, "/dev/zero"],
            &[
                "/dev/zero: line 1: the line is longer than 4096 bytes",
                "`\\0\\0",
            ],
        );
    }
    refused(
        &["policy", "-f", "4", "--format", "text", "/dev/zero"],
        &["/dev/zero: line 1: the line is longer than 4096 bytes"],
    );
    refused(
        &["run", "/dev/zero"],
        &["/dev/zero: cannot tell the trace format", "binary data"],
    );
}

/// An endless line on a pipe is refused after vmsim has read a few kilobytes of it:
/// the line reader holds at most one line's bound, whatever comes.
#[test]
fn an_endless_line_on_a_pipe_is_refused_after_a_few_kilobytes() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args(["run", "--format", "lackey", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmsim");
    let mut stdin = child.stdin.take().unwrap();
    // Zeros until vmsim closes the pipe, or 64 MiB.
    let writer = std::thread::spawn(move || {
        let chunk = [0u8; 1 << 16];
        let mut written = 0usize;
        while written < 64 << 20 {
            match stdin.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        written
    });
    let mut stderr = child.stderr.take().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmsim ran for more than {LIMIT:?} on an endless line; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let written = writer.join().unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(!status.success() && status.code().is_some_and(|c| c != 101 && c != 134));
    assert!(
        err.contains("/dev/stdin: line 1: the line is longer than 4096 bytes"),
        "{err}"
    );
    // What vmsim read is its input buffer's worth at most; the rest is the pipe's.
    assert!(written < 4 << 20, "vmsim read {written} bytes of the line");
}

/// A 50 MB token is refused after its first 4 KiB, quoted by its first few dozen
/// characters.
#[test]
fn a_huge_token_gives_a_short_error() {
    let mut big = b"R 0x".to_vec();
    big.resize(50 << 20, b'1');
    big.push(b'\n');
    let f = file("token.txt", &big);
    drop(big);
    for args in [
        vec!["run", "--format", "plain", s(&f)],
        vec!["policy", "-f", "4", s(&f)],
        vec!["trace", "stat", "--format", "vmsim-text", s(&f)],
    ] {
        let e = refused(
            &args,
            &["token.txt: line 1: the line is longer than 4096 bytes"],
        );
        assert!(e.contains("`R 0x111") && e.contains("…`"), "{e}");
    }
    refused(
        &["run", s(&f)],
        &[
            "token.txt: cannot tell the trace format",
            "first line is longer than 4096",
        ],
    );
    let _ = std::fs::remove_file(&f);
}

/// Plain `R`/`W` lines: what is wrong, with which field, at which line.
#[test]
fn plain_lines_name_the_bad_field() {
    let f = file("alone.txt", b"R\n");
    refused(
        &["run", s(&f)],
        &["alone.txt: line 1: the address is missing: `R` needs one"],
    );
    let f = file("zz.txt", b"# a course trace\nR 0xzz\n");
    refused(
        &["run", s(&f)],
        &["zz.txt: line 2: address `0xzz` is not a number"],
    );
    let f = file("neg.txt", b"W 0x1000\nW -4096\n");
    refused(
        &["run", s(&f)],
        &["neg.txt: line 2: address `-4096` is negative"],
    );
    let f = file("big.txt", b"R 0x1000\nR 0x10000000000000000\n");
    refused(
        &["run", s(&f)],
        &["big.txt: line 2: address `0x10000000000000000` does not fit in 64 bits"],
    );
    let f = file("size0.txt", b"R 0x1000 0\n");
    refused(&["run", s(&f)], &["size0.txt: line 1: access size 0"]);
    let f = file("size33.txt", b"R 0x1000 4294967296\n");
    refused(
        &["run", s(&f)],
        &["size33.txt: line 1: access size 4294967296 does not fit in 32 bits"],
    );
}

/// A thread's exit (syscall 60) ends the thread, not the process: the accesses after
/// it replay, the final munmap finds its process. exit_group ends the process. (As
/// valgrind writes it, the new thread's first record follows clone's result.)
#[test]
fn a_lackey_thread_exit_keeps_the_process() {
    let log = "==500== Lackey, an example Valgrind tool
SYSCALL[500,1](9) sys_mmap ( 0x0, 8192, 3, 34, 4294967295, 0 ) --> [pre-success] Success(0x4835000)
 S 04835000,8
SYSCALL[500,1](56) sys_clone ( 3d0f00, 0x5a7ffb0, 0x5a809d0, 0x5a80700, 0x5a809d0 ) --> [pre-success] Success(0x1f5) I  0494eb42,3
SYSCALL[500,2](273) sys_set_robust_list ( 0x5a809e0, 24 ) --> [pre-success] Success(0x0)
 L 04835008,8
SYSCALL[500,2](60) exit( 0 ) --> [pre-success] Success(0x0)
 L 04835000,8
 S 04836000,8
SYSCALL[500,1](11) sys_munmap ( 0x4835000, 8192 )[sync] --> Success(0x0)
SYSCALL[500,1](231) exit_group( 0 ) --> [pre-success] Success(0x0)
";
    let f = file("threads.lackey", log.as_bytes());
    let r = vmsim(&["run", "--json", s(&f)]);
    assert!(r.status.success(), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let replay = &v["replay"];
    assert_eq!(replay["accesses"], 5, "{replay}");
    assert_eq!(replay["skipped_accesses"], 0, "{replay}");
    assert_eq!(replay["failed_events"], 0, "{replay}");
    assert_eq!(replay["os_events"], 3, "{replay}");
}

/// A lackey log that starts with a SYSCALL line is told as lackey.
#[test]
fn a_lackey_log_starting_with_a_syscall_is_detected() {
    let log = "SYSCALL[1599,1](12) sys_brk ( 0x0 ) --> [pre-success] Success(0x4035000)
I  0401ab70,3
";
    let f = file("first.log", log.as_bytes());
    let r = vmsim(&["trace", "stat", "--json", s(&f)]);
    assert!(r.status.success(), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["format"], "lackey");
    assert_eq!(v["os_events"]["brk"], 1);
}

/// Malformed arguments of the system calls the reader interprets are errors naming
/// the file, the line and the argument.
#[test]
fn malformed_lackey_syscalls_name_the_field() {
    let log = "==7== Lackey
I  0401ab70,3
SYSCALL[7,1](9) sys_mmap ( 0x0, 8x92, 3, 34, -1, 0 ) --> [pre-success] Success(0x4835000)
";
    let f = file("badmmap.log", log.as_bytes());
    refused(
        &["run", s(&f)],
        &["badmmap.log: line 3: mmap argument 2 (length) `8x92` is not a number"],
    );
    let log = "==7== Lackey
SYSCALL[7,1](11) sys_munmap ( 0x4a2a000, 4096 )[sync] --> Success(0xq)
";
    let f = file("badresult.log", log.as_bytes());
    refused(
        &["trace", "stat", s(&f)],
        &["badresult.log: line 2: the result `0xq` is not a number"],
    );
    let log = "==7== Lackey\n L 1000,0\n";
    let f = file("size0.log", log.as_bytes());
    refused(&["run", s(&f)], &["size0.log: line 2: access size 0"]);
}

/// Empty files, binary garbage and cut compressed files: errors that say so.
#[test]
fn empty_binary_and_truncated_inputs_are_named() {
    let f = file("empty.txt", b"");
    refused(
        &["run", s(&f)],
        &["empty.txt: cannot tell the trace format: the file is empty"],
    );
    let garbage: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let f = file("garbage.dat", &garbage);
    refused(
        &["run", s(&f)],
        &["garbage.dat: cannot tell the trace format", "binary data"],
    );
    refused(
        &["run", "--format", "lackey", s(&f)],
        &["garbage.dat: line 1: "],
    );
    // A gzip file cut in the middle.
    let text: String = (0..50_000).map(|i| format!("R {:#x}\n", i * 64)).collect();
    let plain = file("cut.txt", text.as_bytes());
    let gz = support::tmp("cut.txt.gz");
    let ok = Command::new("gzip")
        .arg("-kf")
        .arg(&plain)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        refused(
            &["run", s(&gz)],
            &["cut.txt.gz: line ", "gzip decompression failed"],
        );
    }
}

/// `vmsim policy` streams page traces, reading on one thread while the policies run on
/// another: an error several blocks in still names its line or byte, and no results
/// are printed.
#[test]
fn a_bad_page_deep_in_a_stream_is_named() {
    let mut text: String = (0..40_000).map(|i| format!("{}\n", i % 977)).collect();
    text.push_str("0x1f\nseven\n3\n");
    let f = file("deep.txt", &text);
    let args = ["policy", "-p", "lru,fifo", "-f", "64", s(&f)];
    refused(&args, &["deep.txt:40002", "`seven` is not a page number"]);
    assert_eq!(vmsim(&args).stdout, "");
    // An oracleGeneral file cut 5 bytes into its 50,001st record.
    let mut bin = vec![0u8; 50_000 * 24 + 5];
    for (i, rec) in bin.chunks_exact_mut(24).enumerate() {
        rec[4..12].copy_from_slice(&(i as u64 % 1000).to_le_bytes());
    }
    let f = file("cut.oracleGeneral.bin", &bin);
    refused(
        &["policy", "-p", "arc", "-f", "64", s(&f)],
        &["1200005 bytes", "the last one starts at byte 1200000"],
    );
}
