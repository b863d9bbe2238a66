//! Helpers shared by the command line's integration tests: running the `vmsim` binary
//! (to completion, or killed past a time limit) and scratch files and folders unique to
//! the test process. Each test file says `mod support;` and uses what it needs.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const VMSIM: &str = env!("CARGO_BIN_EXE_vmsim");

/// Runs vmsim with `args` to completion.
pub fn output(args: &[&str]) -> Output {
    Command::new(VMSIM).args(args).output().expect("run vmsim")
}

/// Runs vmsim with `args`: whether it succeeded, its stdout and its stderr.
pub fn vmsim(args: &[&str]) -> (bool, String, String) {
    let out = output(args);
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Runs vmsim with `args` (stdin empty), killing it and failing the test if it runs
/// longer than `limit`: a hang is a failure, not a stuck CI job. Both pipes are drained
/// as it runs, so a long output cannot stall it. It runs in the scratch folder, so a
/// file a generated flag makes under a default name lands there, not in the sources.
pub fn within<A: AsRef<OsStr>>(args: &[A], limit: Duration) -> Output {
    let mut child = Command::new(VMSIM)
        .args(args)
        .current_dir(scratch())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmsim");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for vmsim") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let line: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
            panic!(
                "vmsim {} still running after {limit:?}; killed",
                line.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Bytes as text (invalid UTF-8 replaced).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The scratch folder of this test process (made on first use, shared by its tests).
/// A test process cannot remove its folder when it ends (the harness has no last
/// step), so the first use removes the folders of this test binary's earlier runs
/// whose process is gone.
pub fn scratch() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let test = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let prefix = format!("vmsim-{test}-");
    let d = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let gone = name
                .strip_prefix(&prefix)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if gone {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A path named `name` in the scratch folder (nothing is written).
pub fn tmp(name: &str) -> PathBuf {
    scratch().join(name)
}

/// A file named `name` in the scratch folder holding `contents`.
pub fn file<C: AsRef<[u8]> + ?Sized>(name: &str, contents: &C) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, contents.as_ref()).unwrap();
    p
}

/// A fresh, empty folder named `name` in the scratch folder, for one test.
pub fn folder(name: &str) -> PathBuf {
    let d = tmp(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
