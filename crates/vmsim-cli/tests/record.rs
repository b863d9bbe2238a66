//! `vmsim record`: the program's exit status passes through, nothing that fails first
//! leaves vmsim waiting, and an interrupted recording leaves no partial trace.

mod support;
use support::{folder, s, within as vmsim_within};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Recordings share the host's cores; the one test that measures how evenly threads
/// were recorded takes them alone (a write lock), the others side by side (read locks).
/// It failed once in CI on a 2-core machine, most likely because another recording
/// beside it starved one of its threads for longer than the plugin's pacing waits.
static CORES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Checks the tools are here; hold the guard while recording (see [`CORES`]).
fn need_tools() -> std::sync::RwLockReadGuard<'static, ()> {
    tools_here();
    CORES.read().unwrap_or_else(|e| e.into_inner())
}

/// [`need_tools`] for a test that must have the cores to itself.
fn need_tools_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    tools_here();
    CORES.write().unwrap_or_else(|e| e.into_inner())
}

fn tools_here() {
    if !have("gcc") || !have("valgrind") || !have("qemu-x86_64") {
        // .ci/run installs them; say so loudly anywhere else.
        panic!("these tests need gcc, valgrind and qemu-x86_64 (apt-get install gcc valgrind qemu-user)");
    }
}

/// Compiles the test program `tests/programs/NAME.c` into `d/NAME`.
fn program(d: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/programs/{name}.c"));
    compile(d, name, &std::fs::read_to_string(src).unwrap())
}

/// Records `argv` into `d/NAME.vmb` and returns `trace stat --json` of it.
fn record_stat(d: &Path, name: &str, argv: &[&str]) -> serde_json::Value {
    let t = record(d, name, argv);
    let out = vmsim_within(&["trace", "stat", "--json", s(&t)], Duration::from_secs(60));
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Records `argv` into `d/name.vmb`, which it returns.
fn record(d: &Path, name: &str, argv: &[&str]) -> PathBuf {
    let t = d.join(format!("{name}.vmb"));
    let mut args = vec!["record", "-o", s(&t), "--"];
    args.extend_from_slice(argv);
    let out = vmsim_within(&args, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t
}

/// The trace `t` as vmsim text (converted beside it, `.vmt`).
fn trace_text(t: &Path) -> String {
    let text = t.with_extension("vmt");
    let out = vmsim_within(
        &["trace", "convert", s(t), s(&text)],
        Duration::from_secs(60),
    );
    assert!(out.status.success());
    std::fs::read_to_string(&text).unwrap()
}

/// Drops the (clean) file `f` from the host's page cache: GNU dd's `nocache` with no
/// blocks drops the whole file.
fn drop_from_cache(f: &Path) {
    std::fs::File::open(f).unwrap().sync_all().unwrap();
    let dropped = Command::new("dd")
        .args([
            &format!("if={}", s(f)),
            "iflag=nocache",
            "count=0",
            "status=none",
        ])
        .status()
        .unwrap();
    assert!(dropped.success());
}

/// Replays a recorded trace: nothing skipped, no event refused.
fn replays_cleanly(t: &Path) -> serde_json::Value {
    let out = vmsim_within(&["run", "--json", s(t)], Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["replay"]["skipped_accesses"], 0, "{}", v["replay"]);
    assert_eq!(v["replay"]["failed_events"], 0, "{}", v["replay"]);
    v
}

/// Compiles the C program `src` into `d/name`.
fn compile(d: &Path, name: &str, src: &str) -> PathBuf {
    build(d, name, "c", src, &["-O1", "-pthread"])
}

/// Writes `src` to `d/name.EXT` and builds it with gcc and `flags` into `d/name`.
fn build(d: &Path, name: &str, ext: &str, src: &str, flags: &[&str]) -> PathBuf {
    let file = d.join(format!("{name}.{ext}"));
    std::fs::write(&file, src).unwrap();
    let exe = d.join(name);
    let ok = Command::new("gcc")
        .args(flags)
        .args(["-o", s(&exe), s(&file)])
        .status()
        .unwrap();
    assert!(ok.success());
    exe
}

const EXIT_WITH: &str = r#"#include <signal.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    char *p = malloc(1 << 16);
    memset(p, 1, 1 << 16);
    if (argc > 2) raise(atoi(argv[2]));
    return argc > 1 ? atoi(argv[1]) : 0;
}
"#;

#[test]
fn the_programs_exit_status_is_vmsims() {
    let _cores = need_tools();
    let d = folder("status");
    let exe = compile(&d, "exitwith", EXIT_WITH);
    let t = d.join("t.vmb");
    let limit = Duration::from_secs(120);
    let out = vmsim_within(&["record", "-o", s(&t), "--", s(&exe), "3"], limit);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.exists(), "the trace of a failing program is kept");
    // Killed by SIGSEGV (11): 128 + 11.
    let out = vmsim_within(&["record", "-o", s(&t), "--", s(&exe), "0", "11"], limit);
    assert_eq!(
        out.status.code(),
        Some(139),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = vmsim_within(&["record", "-o", s(&t), "--", "false"], limit);
    assert_eq!(out.status.code(), Some(1));
    let out = vmsim_within(&["record", "-o", s(&t), "--", s(&exe)], limit);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A program valgrind cannot start: vmsim's own error.
    let out = vmsim_within(
        &["record", "-o", s(&t), "--", s(&d.join("no-such-program"))],
        limit,
    );
    assert_ne!(out.status.code(), Some(0));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn nothing_that_fails_first_leaves_record_waiting() {
    let _cores = need_tools();
    let d = folder("nohang");
    let out = vmsim_within(
        &["record", "-o", s(&d.join("missing/x.vmb")), "--", "true"],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    // A program that leaves a child running: vmsim ends when the program does.
    let out = vmsim_within(
        &[
            "record",
            "-o",
            s(&d.join("bg.vmb")),
            "--",
            "sh",
            "-c",
            "sleep 30 </dev/null >/dev/null 2>&1 & exit 0",
        ],
        Duration::from_secs(50),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_interrupted_recording_leaves_nothing_behind() {
    let _cores = need_tools();
    let d = folder("interrupt");
    let spin = compile(
        &d,
        "spin",
        "int main(void) { volatile unsigned long x = 0; for (;;) x++; }\n",
    );
    let t = d.join("t.vmb");
    let child = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args(["record", "-o", s(&t), "--", s(&spin)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(128 + 15),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("spin"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // valgrind went too.
    let ps = Command::new("pgrep")
        .args(["-f", s(&spin)])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "still running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_vmt_name_gets_text_as_convert_would_write_it() {
    let _cores = need_tools();
    let d = folder("vmt");
    let t = d.join("t.vmt");
    let out = vmsim_within(
        &["record", "-o", s(&t), "--", "true"],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read(&t).unwrap();
    assert!(
        head.starts_with(b"#vmsim-text"),
        "{:?}",
        &head[..16.min(head.len())]
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A thread that ends (exit, not exit_group) does not end its process: every access
/// after it is replayed, and the last munmap finds its process.
#[test]
fn a_thread_ending_does_not_end_its_process() {
    let _cores = need_tools();
    let d = folder("threads");
    let exe = compile(
        &d,
        "threads",
        r#"#include <pthread.h>
#include <sys/mman.h>
static void *work(void *a) { ((char *)a)[0] = 1; return 0; }
int main(void) {
    char *p = mmap(0, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t;
    pthread_create(&t, 0, work, p);
    pthread_join(t, 0);
    for (int i = 0; i < 64; i++) p[i * 4096] = 2;
    munmap(p, 64 * 4096);
    return 0;
}
"#,
    );
    let t = d.join("t.vmb");
    let out = vmsim_within(
        &["record", "-o", s(&t), "--", s(&exe)],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = vmsim_within(&["run", "--json", s(&t)], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let replay = &v["replay"];
    assert_eq!(replay["skipped_accesses"], 0, "{replay}");
    assert_eq!(replay["failed_events"], 0, "{replay}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A program that forks records the same processes and, but for restarted system
/// calls, the same events every time (QEMU places the program at the same addresses
/// every run, and each process's stream is its own).
#[test]
fn a_forking_program_records_the_same_trace_every_time() {
    let _cores = need_tools();
    let d = folder("forks");
    let exe = compile(
        &d,
        "forks",
        r#"#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void) {
    char *p = malloc(1 << 20);
    memset(p, 1, 1 << 20);
    for (int k = 0; k < 2; k++)
        if (fork() == 0) {
            for (int i = 0; i < (1 << 20); i += 4096) p[i] = 2;
            _exit(0);
        }
    while (wait(0) > 0)
        ;
    return 0;
}
"#,
    );
    let t = d.join("t.vmb");
    let mut counts = Vec::new();
    for _ in 0..3 {
        let out = vmsim_within(
            &["record", "-o", s(&t), "--", s(&exe)],
            Duration::from_secs(120),
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        assert!(err.contains("(3 processes, 3 threads)"), "{err}");
        let n: f64 = err
            .split("recorded ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        counts.push(n);
    }
    // A system call that a signal (SIGCHLD) interrupts is restarted by running its
    // instruction again: one more block, so a fetch or two more in a run.
    let (lo, hi) = counts
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &c| (lo.min(c), hi.max(c)));
    assert!(hi - lo <= 16.0, "{counts:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

fn count(v: &serde_json::Value, key: &str) -> u64 {
    v["os_events"][key].as_u64().unwrap_or(0)
}

/// The recorder reads what stores write: a page first written with bytes other than
/// zeros gets one `nonzero` mark (again after MADV_DONTNEED emptied it, or a lowered
/// break gave it back); pages written only with zeros get none. Under a limit, the
/// replay swaps those out as pages of zeros, outside `pswpout`, as Linux does.
#[test]
fn pages_written_with_bytes_other_than_zeros_are_marked_once() {
    let _cores = need_tools();
    let d = folder("zeros");
    let exe = program(&d, "zeros");
    let pages = 4096; // 16 MiB
    let heap = 256; // 1 MiB, written twice with the break lowered between
    let mut out = Vec::new();
    for v in ["0", "1"] {
        let name = format!("zeros{v}");
        let st = record_stat(&d, &name, &[s(&exe), v]);
        assert_eq!(count(&st, "values"), 1, "{st}");
        out.push(count(&st, "nonzero"));
        let t = d.join(format!("{name}.vmb"));
        let run = vmsim_within(
            &[
                "run",
                "--json",
                "--swap",
                "64MiB",
                "--memory-max",
                "8MiB",
                s(&t),
            ],
            Duration::from_secs(120),
        );
        assert!(run.status.success());
        let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let pswpout = r["kernel"]["vmstat"]["pswpout"].as_u64().unwrap();
        let written = r["swap"]["outs"].as_u64().unwrap();
        assert!(written > 2000, "{v}: pages went to swap: {}", r["swap"]);
        if v == "0" {
            // Only the half written with 1 at the end, and what the C library wrote.
            assert!(pswpout < written / 2, "{v}: {pswpout} of {written}");
        } else {
            assert_eq!(pswpout, written, "{v}");
        }
    }
    // The C library's own pages are marked either way; the buffer's pages once per
    // life (twice for the half emptied and rewritten) when written with 1, and so
    // the heap's.
    let (zeros, ones) = (out[0], out[1]);
    let least = pages / 2 + heap;
    assert!(zeros >= least && zeros < least + 200, "{zeros}");
    assert_eq!(ones - zeros, pages + heap, "{zeros} {ones}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A parent and two copy-on-write children, one with a child of its own: four
/// processes, three forks, each child's own exit status, and the replay shows the
/// children's copy-on-write faults.
#[test]
fn every_forked_process_is_recorded_as_itself() {
    let _cores = need_tools();
    let d = folder("forkcow");
    let exe = program(&d, "fork_cow");
    let v = record_stat(&d, "fork_cow", &[s(&exe)]);
    assert_eq!(v["processes"], 4, "{v}");
    assert_eq!(v["threads"], 4, "{v}");
    assert_eq!(count(&v, "fork"), 3, "{v}");
    assert_eq!(count(&v, "exit"), 4, "{v}");
    assert_eq!(count(&v, "exec-image"), 1, "{v}");
    // Each child writes every page of 4 MiB (1,024 pages), the grandchild a quarter.
    let r = replays_cleanly(&d.join("fork_cow.vmb"));
    let cow = r["kernel"]["faults_by_class"]["cow"].as_u64().unwrap_or(0);
    assert!(cow >= 2 * 1024 + 256, "copy-on-write faults {cow}: {r}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// vfork + exec of itself three levels deep (through /proc/self/exe), then a `#!`
/// script that runs /bin/true: every image is traced, each with its mappings.
#[test]
fn exec_chains_and_scripts_are_followed() {
    let _cores = need_tools();
    let d = folder("execchain");
    let exe = program(&d, "exec_chain");
    let script = d.join("shim.sh");
    std::fs::write(&script, "#!/bin/sh\n/bin/true\n").unwrap();
    let mut perm = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).unwrap();
    let v = record_stat(&d, "exec_chain", &[s(&exe), "0", s(&script)]);
    // exec_chain 0 → 1 → 2 → 3 (each a vforked child), 3 execs sh, sh forks true.
    assert_eq!(v["processes"], 5, "{v}");
    assert_eq!(count(&v, "fork") + count(&v, "vfork"), 4, "{v}");
    assert!(
        count(&v, "vfork") >= 3,
        "exec_chain's children are vforks: {v}"
    );
    // The first image, three of exec_chain, sh, true.
    assert_eq!(count(&v, "exec-image"), 6, "{v}");
    // Every image maps at least the program's and ld.so's segments and a stack.
    assert!(count(&v, "mmap") >= 6 * 7, "{v}");
    replays_cleanly(&d.join("exec_chain.vmb"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Execs a program with an environment variable of 20,000 bytes and an argument that
/// is not UTF-8 (`execve` takes up to 128 KiB a string, as bytes).
const EXEC_LONG: &str = r#"#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char *e = malloc(20008);
    strcpy(e, "X=");
    memset(e + 2, 'a', 20000);
    e[20002] = 0;
    char *envp[] = { e, NULL };
    pid_t pid = vfork();
    if (pid == 0) { execle(argv[1], argv[1], "\xff\xfe", (char *)NULL, envp); _exit(127); }
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
"#;

/// A program that only exits: nothing of its stack is touched by its own code.
const EXIT_ONLY: &str = ".globl _start\n_start:\n  mov $60, %eax\n  xor %edi, %edi\n  syscall\n";

#[test]
fn an_exec_with_long_strings_is_followed_and_its_stack_faulted_in() {
    let _cores = need_tools();
    let d = folder("execlong");
    let exe = compile(&d, "exec_long", EXEC_LONG);
    let tiny = build(&d, "exit_only", "S", EXIT_ONLY, &["-nostdlib", "-static"]);
    let t = record(&d, "exec_long", &[s(&exe), s(&tiny)]);
    let text = trace_text(&t);
    // The child's exec is followed (a string over 4 KiB once lost it).
    assert_eq!(text.matches("exec-image ").count(), 2, "{text:.2000}");
    let v = replays_cleanly(&t);
    // Exec wrote the 20,000-byte string and the tables on five or more pages of the
    // new stack, which Linux faults in for the program before it runs; its code is
    // one page more.
    let child = &v["processes"][1];
    assert_eq!(child["pid"], 2, "{v}");
    assert!(child["peak_rss_pages"].as_u64().unwrap() >= 6, "{child}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Four threads mapping and unmapping 64 KiB twenty times each: one process, five
/// threads, four thread exits, the munmaps all there, and the replay is clean.
/// A heap grown by `brk` past the 32 MiB QEMU 7.2 leaves after a program grows as on
/// Linux (the plugin's `brk` module): one contiguous break to 80 MiB, no pieces of
/// `mmap`ed memory in its place, and shrunk again as the blocks are freed.
#[test]
fn the_heap_grows_past_qemus_room_and_shrinks_again() {
    let _cores = need_tools();
    let d = folder("heap");
    let exe = program(&d, "heap");
    let t = record(&d, "heap", &[s(&exe)]);
    let text = trace_text(&t);
    let mut breaks = Vec::new();
    let mut anon_maps = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["brk", _, b] => breaks.push(u64::from_str_radix(&b[2..], 16).unwrap()),
            ["mmap", _, _, _, prot] if prot.starts_with("rw") => anon_maps += 1,
            _ => {}
        }
    }
    let (lo, hi) = (breaks[0], *breaks.iter().max().unwrap());
    assert!(hi - lo >= 80 << 20, "break {lo:#x} to {hi:#x}");
    assert!(*breaks.last().unwrap() < lo + (1 << 20), "{breaks:x?}");
    // The stack, the loader's and libc's bss and TLS: none for the heap.
    assert!(anon_maps <= 8, "{anon_maps} anonymous mappings");
    replays_cleanly(&t);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn threads_are_recorded_with_their_ids() {
    let _cores = need_tools();
    let d = folder("threads4");
    let exe = program(&d, "threads");
    let v = record_stat(&d, "threads", &[s(&exe)]);
    assert_eq!(v["processes"], 1, "{v}");
    assert_eq!(v["threads"], 5, "{v}");
    assert_eq!(count(&v, "thread-exit"), 4, "{v}");
    assert!(count(&v, "munmap") >= 80, "{v}");
    assert!(count(&v, "thread") >= 5, "{v}");
    replays_cleanly(&d.join("threads.vmb"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Two threads sweeping their own memory, recorded: their accesses interleave evenly
/// over the whole time both run, as on two CPUs, not in long stretches of one thread
/// while the other waits for a host core (the plugin paces them, `pace.rs`).
#[test]
fn threads_are_recorded_side_by_side() {
    let _cores = need_tools_alone();
    let d = folder("paced");
    let exe = program(&d, "paced");
    let v = record_stat(&d, "paced", &[s(&exe)]);
    assert_eq!(v["threads"], 3, "{v}");
    let text = trace_text(&d.join("paced.vmb"));
    // The thread of every access made by a worker (threads 1 and 2), in trace order.
    let mut tid = 0;
    let mut order = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["thread", _, t] => tid = t.parse().unwrap(),
            [op, ..] if ["R", "W", "X"].contains(op) && tid != 0 => order.push(tid),
            _ => {}
        }
    }
    // From when both have started to when the first ends, in tenths: each worker makes
    // at least a twentieth of every tenth's accesses (unpaced, one runs alone for
    // whole tenths; paced, a busy 2-core host has starved one down to 14%, and to 9%
    // once while CI built and tested beside it).
    let first = |t: u32| order.iter().position(|&x| x == t).unwrap();
    let last = |t: u32| order.iter().rposition(|&x| x == t).unwrap();
    let (from, to) = (first(1).max(first(2)), last(1).min(last(2)));
    assert!(to > from + 20_000, "{from}..{to} of {}", order.len());
    let tenth = (to - from) / 10;
    for k in 0..10 {
        let part = &order[from + k * tenth..from + (k + 1) * tenth];
        let ones = part.iter().filter(|&&t| t == 1).count();
        assert!(
            ones * 20 >= part.len() && (part.len() - ones) * 20 >= part.len(),
            "tenth {k}: thread 1 made {ones} of {} accesses",
            part.len()
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every memory syscall the recorder follows appears, with file mappings numbered by
/// file and the rest counted by name.
#[test]
fn memory_syscalls_are_recorded_and_the_rest_counted() {
    let _cores = need_tools();
    let d = folder("syscalls");
    let exe = program(&d, "syscalls");
    let tmp = d.join("data.tmp");
    let v = record_stat(&d, "syscalls", &[s(&exe), s(&tmp)]);
    for (event, least) in [
        ("mremap", 1),
        ("madvise", 2),
        ("mprotect", 1),
        ("shm", 1),
        ("shmdt", 1),
        ("thp-disable", 1),
        ("brk", 3),
        ("read", 2),
        ("write", 2),
        ("sleep", 2),
    ] {
        assert!(count(&v, event) >= least, "{event}: {v}");
    }
    // The kernel's populates: the stack pages exec wrote, then MAP_POPULATE of 8 pages.
    let text = trace_text(&d.join("syscalls.vmb"));
    let lines =
        |start: &str| -> Vec<&str> { text.lines().filter(|l| l.starts_with(start)).collect() };
    let pops = lines("populate 1 ");
    assert_eq!(pops.len(), 2, "{pops:?}");
    assert!(pops[1].ends_with(" 0x8000"), "{pops:?}");
    // The locks: mlock of a page, mlock2 of 2 and of 2 on fault, MAP_LOCKED of 3.
    let locks = lines("mlock 1 ");
    assert_eq!(locks.len(), 4, "{locks:?}");
    for end in [" 0x1000", " 0x2000", " 0x2000 onfault", " 0x3000"] {
        assert!(locks.iter().any(|l| l.ends_with(end)), "{end}: {locks:?}");
    }
    assert_eq!(lines("munlock 1 ").len(), 1, "{text}");
    assert_eq!(
        lines("mlockall 1 future,onfault"),
        ["mlockall 1 future,onfault"]
    );
    assert_eq!(lines("munlockall 1"), ["munlockall 1"]);
    // Its sleeps of 20 and 10 ms, as long as they took (a loaded host wakes late).
    let slept = v["sleep_ns"].as_u64().unwrap();
    assert!((30_000_000..300_000_000).contains(&slept), "{slept} ns");
    let sys = &v["syscalls"];
    for name in ["shmget", "shmctl", "memfd_create"] {
        assert!(sys[name].as_u64().unwrap_or(0) >= 1, "{name}: {v}");
    }
    // (The trace as text, read again below.)
    // The data file (mapped private then shared) and the memfd: file mappings.
    assert!(
        text.lines()
            .any(|l| l.starts_with("mmap 1 ") && l.contains(" file=") && l.contains("shared"))
            || text.contains("file="),
        "no file mapping"
    );
    // The memfd is on tmpfs: marked so before it is mapped.
    let shmem = lines("file-shmem 1 ");
    assert!(!shmem.is_empty(), "no tmpfs file: {text}");
    let memfd = shmem
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .find(|f| {
            let marked = text.lines().position(|l| l == format!("file-shmem 1 {f}"));
            let mapped = text.lines().position(|l| {
                l.contains(" 0x10000 rw- shared file=") && l.contains(&format!("file={f}@"))
            });
            mapped.is_some() && marked < mapped
        });
    assert!(memfd.is_some(), "{shmem:?}");
    // Closed, unmapped and nameless: let go.
    assert_eq!(
        lines("file-drop 1 "),
        [format!("file-drop 1 {}", memfd.unwrap()).as_str()]
    );
    // /dev/zero mapped shared is shared anonymous memory.
    assert!(
        text.lines()
            .any(|l| l.starts_with("mmap 1 ") && l.ends_with(" 0x10000 rw- shared")),
        "no /dev/zero mapping"
    );
    // Its pread of 8 KiB at 4 KiB and its read of 8 KiB from the start, of the data
    // file (the one mapped shared), each naming the buffer the replay stores into.
    let reads: Vec<&str> = text.lines().filter(|l| l.starts_with("read 1 ")).collect();
    let into_buffer = |tail: &str| {
        reads.iter().any(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            w.len() == 6 && format!(" {} {}", w[3], w[4]) == tail && w[5].starts_with("0x")
        })
    };
    assert!(
        into_buffer(" 0x1000 0x2000") && into_buffer(" 0x0 0x2000"),
        "{reads:?}"
    );
    // copy_file_range of 8 KiB from its position (12 KiB) into a second file's start,
    // and sendfile of a page from an offset of 20 KiB after it: each a read of the
    // data file and a write of the copy.
    assert!(
        reads.iter().any(|l| l.ends_with(" 0x3000 0x2000"))
            && reads.iter().any(|l| l.ends_with(" 0x5000 0x1000")),
        "{reads:?}"
    );
    // Its pwrite of a page at 1 MiB, which makes the file longer, its writev of 200
    // bytes at 8 KiB, and its pwrite of 100 bytes "at 0" on an O_APPEND descriptor,
    // which Linux appends.
    let writes: Vec<&str> = text.lines().filter(|l| l.starts_with("write 1 ")).collect();
    assert!(
        writes.iter().any(|l| l.ends_with(" 0x100000 0x1000"))
            && writes.iter().any(|l| l.ends_with(" 0x2000 0xc8"))
            && writes.iter().any(|l| l.ends_with(" 0x101000 0x64"))
            && writes.iter().any(|l| l.ends_with(" 0x0 0x2000"))
            && writes.iter().any(|l| l.ends_with(" 0x2000 0x1000")),
        "{writes:?}"
    );
    for size in [" 0x101000", " 0x101064"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("file-size 1 ") && l.ends_with(size)),
            "{size}"
        );
    }
    // Every file mapped executable (the program, the loader, the C library) comes
    // with what of it the page cache held before it was used, before that mapping.
    let exec_files: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("mmap 1 ") && l.contains(" r-x file="))
        .filter_map(|l| l.split("file=").nth(1)?.split('@').next())
        .collect();
    assert!(exec_files.len() >= 2, "{exec_files:?}");
    for f in &exec_files {
        let cached = text
            .lines()
            .position(|l| l.starts_with(&format!("file-cached 1 {f} ")));
        let mapped = text
            .lines()
            .position(|l| l.starts_with("mmap 1 ") && l.contains(&format!(" r-x file={f}@")));
        assert!(cached.is_some() && cached < mapped, "file {f}");
    }
    let v = replays_cleanly(&d.join("syscalls.vmb"));
    assert!(
        v["kernel"]["file_writes"].as_u64().unwrap() >= 2,
        "{}",
        v["kernel"]
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A data file the program opens comes with what of it the page cache held, before
/// its first read: all of a file just read, none of one dropped from the cache.
#[test]
fn opened_files_come_with_what_the_page_cache_held() {
    let _cores = need_tools();
    let d = folder("opened");
    let (warm, cold) = (d.join("warm.bin"), d.join("cold.bin"));
    std::fs::write(&warm, vec![1u8; 3 * 4096]).unwrap();
    std::fs::write(&cold, vec![2u8; 5 * 4096]).unwrap();
    drop_from_cache(&cold);
    std::fs::read(&warm).unwrap();
    let t = record(&d, "cat", &["cat", s(&warm), s(&cold)]);
    let text = trace_text(&t);
    let lines: Vec<&str> = text.lines().collect();
    // The trace's number for the file of `bytes` bytes.
    let number = |bytes: &str| {
        lines
            .iter()
            .find(|l| l.starts_with("file-size 1 ") && l.ends_with(bytes))
            .and_then(|l| l.split(' ').nth(2))
            .unwrap_or_else(|| panic!("no file of {bytes} bytes"))
            .to_string()
    };
    for (bytes, cached) in [(" 0x3000", "0x3000"), (" 0x5000", "0x0")] {
        let f = number(bytes);
        let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
        let record = at(&format!("file-cached 1 {f} 0x0 {cached}"));
        let read = at(&format!("read 1 {f} "));
        assert!(
            record.is_some() && record < read,
            "file {f}: {record:?} {read:?}"
        );
        let records = lines
            .iter()
            .filter(|l| l.starts_with(&format!("file-cached 1 {f} ")))
            .count();
        assert_eq!(records, 1, "file {f}");
    }
    replays_cleanly(&t);
    // The program itself, dropped from the cache: its record is taken before QEMU
    // loads it, so it holds no more than the recorder's (and Linux's exec's) read of
    // its first bytes brought in, not the whole file.
    let exe = compile(&d, "big", BIG_TEXT);
    let size = std::fs::metadata(&exe).unwrap().len();
    assert!(size > 64 << 10, "{size}");
    drop_from_cache(&exe);
    let text = trace_text(&record(&d, "big", &[s(&exe)]));
    let cached: u64 = text
        .lines()
        .filter(|l| l.starts_with("file-cached 1 0 "))
        .map(|l| {
            u64::from_str_radix(l.rsplit(' ').next().unwrap().trim_start_matches("0x"), 16).unwrap()
        })
        .sum();
    assert!(cached < 32 << 10, "{cached} of {size} bytes cached");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A program of over 64 KiB: a table of 96 KiB it reads one byte of.
const BIG_TEXT: &str = r#"static const char table[96 << 10] = {1, [(96 << 10) - 1] = 2};
int main(int argc, char **argv) { (void)argv; return table[argc * 4096]; }
"#;

/// The valgrind fallback still records (the first process only).
#[test]
fn lackey_stays_as_a_fallback() {
    let _cores = need_tools();
    let d = folder("lackeytool");
    let exe = program(&d, "fork_cow");
    let t = d.join("t.vmb");
    let out = vmsim_within(
        &["record", "--tool", "lackey", "-o", s(&t), "--", s(&exe)],
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = vmsim_within(
        &["record", "--tool", "pin", "-o", s(&t), "--", "true"],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("qemu, lackey"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// `rep stosb` over 1 MiB and `rep movsb` of it elsewhere, in two passes: QEMU runs
/// each of the 4 Mi iterations as a block, and the recorder keeps one store (and, for
/// the copy, one load) per page and pass, and the iterations' fetched bytes.
const REP_STRINGS: &str = r#"#include <stdlib.h>
int main(void) {
    unsigned long n = 1 << 20;
    char *a = malloc(n), *b = malloc(n);
    for (int pass = 0; pass < 2; pass++) {
        void *d = a; unsigned long c = n;
        __asm__ volatile("rep stosb" : "+D"(d), "+c"(c) : "a"(pass + 1) : "memory");
        void *s = a; d = b; c = n;
        __asm__ volatile("rep movsb" : "+S"(s), "+D"(d), "+c"(c) : : "memory");
    }
    return b[n - 1] == 2 ? 0 : 1;
}
"#;

#[test]
fn repeated_string_instructions_are_recorded_a_page_at_a_time() {
    let _cores = need_tools();
    let d = folder("repstr");
    let exe = compile(&d, "repstr", REP_STRINGS);
    let v = record_stat(&d, "repstr", &[s(&exe)]);
    // 4 Mi iterations, each a fetch and a store (and a load for movsb), would be
    // over 10 million accesses; by pages, 256 pages x 2 passes x 3 streams and the
    // C library's start.
    let accesses = v["accesses"].as_u64().unwrap();
    assert!(accesses < 400_000, "{v}");
    let r = replays_cleanly(&d.join("repstr.vmb"));
    // Every page of both buffers was touched: 512 first-touch faults at least.
    assert!(
        r["kernel"]["rusage"]["minflt"].as_u64().unwrap() >= 512,
        "{}",
        r["kernel"]["rusage"]
    );
    // The iterations' fetched bytes are all there: 2 bytes (f3 aa, f3 a4) each.
    let fetched = r["kernel"]["fetched_bytes"].as_u64().unwrap();
    assert!(fetched >= 4 * 2 * (1 << 20), "{fetched}");
    std::fs::remove_dir_all(&d).unwrap();
}
