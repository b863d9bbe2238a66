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

fn need_tools() {
    if !have("gcc") || !have("valgrind") {
        // .ci/run installs both; say so loudly anywhere else.
        panic!("these tests need gcc and valgrind (apt-get install gcc valgrind)");
    }
}

/// Compiles `src` into `d/name`.
fn compile(d: &Path, name: &str, src: &str) -> PathBuf {
    let c = d.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let exe = d.join(name);
    let ok = Command::new("gcc")
        .args(["-O1", "-pthread", "-o", s(&exe), s(&c)])
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
    need_tools();
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
    need_tools();
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
    need_tools();
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
    need_tools();
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
    need_tools();
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

/// A program that forks: the children's records would tear the parent's lines in the
/// shared log, so only the parent is recorded, the same events every time.
#[test]
fn a_forking_program_records_the_same_trace_every_time() {
    need_tools();
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
    let mut said = Vec::new();
    for _ in 0..3 {
        let out = vmsim_within(
            &["record", "-o", s(&t), "--", s(&exe)],
            Duration::from_secs(120),
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        said.push(err.split(" into ").next().unwrap().to_string());
    }
    assert!(said.windows(2).all(|w| w[0] == w[1]), "{said:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
