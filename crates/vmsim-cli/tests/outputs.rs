//! What vmsim writes, and what it never writes over: every command that writes a file
//! refuses its own inputs, writes through symbolic links and into special files, keeps
//! the old file until the new one is whole, fails on a missing folder before any work,
//! and never takes an existing file as swap unless told to. Errors exit with status 2.

mod support;
use support::{folder, output as vmsim, s, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small vmsim text trace.
fn trace(d: &Path) -> PathBuf {
    let p = d.join("t.vmt");
    let mut s = String::from("#vmsim-text 1\nspawn 1\nmmap 1 0x10000000 1MiB rw-\n");
    for i in 0..200u64 {
        s.push_str(&format!("W 1 {:#x} 8\n", 0x1000_0000 + (i % 64) * 4096));
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// The command failed as a refused input does: status 2, a message naming `what`.
fn refused(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(what), "stderr does not name `{what}`: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_swap_file_is_never_a_file_vmsim_did_not_make() {
    let d = folder("swap");
    let t = trace(&d);
    let before = std::fs::read(&t).unwrap();
    // The trace itself as swap: refused, even forced.
    for force in [false, true] {
        let mut args = vec!["run", s(&t), "--swap", "1MiB", "--swap-file", s(&t)];
        if force {
            args.push("--force");
        }
        refused(&vmsim(&args), "t.vmt");
        assert_eq!(std::fs::read(&t).unwrap(), before, "the trace is intact");
    }
    // Someone's file: refused unless forced.
    let notes = d.join("notes.txt");
    std::fs::write(&notes, "keep").unwrap();
    let out = vmsim(&["run", s(&t), "--swap", "1MiB", "--swap-file", s(&notes)]);
    refused(&out, "not a swap file vmsim made");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep");
    let out = vmsim(&[
        "run",
        s(&t),
        "--swap",
        "1MiB",
        "--swap-file",
        s(&notes),
        "--force",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A new path is made, and used again next time.
    let sw = d.join("swap");
    for _ in 0..2 {
        let out = vmsim(&["run", s(&t), "--swap", "1MiB", "--swap-file", s(&sw)]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // A missing folder is an error, not a run without swap.
    let out = vmsim(&[
        "run",
        s(&t),
        "--swap",
        "1MiB",
        "--swap-file",
        s(&d.join("no/such/swap")),
    ]);
    refused(&out, "does not exist");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn swap_sizes_are_whole_pages_and_reports_name_no_temporary_file() {
    let d = folder("swapsize");
    let t = trace(&d);
    refused(&vmsim(&["run", s(&t), "--swap", "1"]), "--swap");
    refused(&vmsim(&["run", s(&t), "--swap", "6000"]), "--swap");
    // Two identical runs with a temporary swap file print identical reports.
    let args = [
        "run", "--swap", "8MiB", "--ram", "8MiB", "-n", "20000", "--json",
    ];
    let (a, b) = (vmsim(&args), vmsim(&args));
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(text(&a.stdout), text(&b.stdout));
    assert!(text(&a.stdout).contains("a temporary file"));
    assert!(
        !text(&a.stdout).contains("vmsim-swap"),
        "{}",
        text(&a.stdout)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn no_output_overwrites_an_input() {
    let d = folder("inputs");
    let t = trace(&d);
    let before = std::fs::read(&t).unwrap();
    refused(
        &vmsim(&["run", s(&t), "--interval", "10", "--interval-file", s(&t)]),
        "t.vmt",
    );
    refused(&vmsim(&["trace", "convert", s(&t), s(&t)]), "t.vmt");
    assert_eq!(std::fs::read(&t).unwrap(), before);
    // A chart over its own data.
    let csv = d.join("x.svg");
    std::fs::write(&csv, "a,b\n").unwrap();
    refused(&vmsim(&["plot", s(&csv), "-o", s(&csv)]), "x.svg");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "a,b\n");
    // A page trace named like a chart.
    let pages = d.join("pages.svg");
    std::fs::write(&pages, "1\n2\n3\n1\n").unwrap();
    refused(
        &vmsim(&["mrc", s(&pages), "--format", "text", "--plot", s(&pages)]),
        "pages.svg",
    );
    assert_eq!(std::fs::read_to_string(&pages).unwrap(), "1\n2\n3\n1\n");
    // A sweep's rows over its own grid.
    let grid = d.join("grid.toml");
    std::fs::write(&grid, "workloads = [\"seq\"]\naccesses = 100\n").unwrap();
    refused(
        &vmsim(&["sweep", "--config", s(&grid), "-o", s(&grid)]),
        "grid.toml",
    );
    assert!(std::fs::read_to_string(&grid).unwrap().contains("seq"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn charts_must_be_named_png_or_svg() {
    let d = folder("charts");
    let t = d.join("pages.txt");
    std::fs::write(&t, "1\n2\n3\n").unwrap();
    for bad in ["x.txt", "x.jpg", "x"] {
        let out = vmsim(&["mrc", s(&t), "--plot", s(&d.join(bad))]);
        refused(&out, ".png or NAME.svg");
        assert!(!d.join(bad).exists());
    }
    let out = vmsim(&["mrc", s(&t), "--plot", s(&d.join("ok.svg"))]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read_to_string(d.join("ok.svg"))
        .unwrap()
        .contains("<svg"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn outputs_go_through_symlinks_and_into_special_files() {
    let d = folder("links");
    let t = trace(&d);
    let target = d.join("target.vmt");
    std::fs::write(&target, "old").unwrap();
    let link = d.join("link.vmt");
    std::os::unix::fs::symlink("target.vmt", &link).unwrap();
    let out = vmsim(&["trace", "convert", s(&t), s(&link)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&target).unwrap().contains("mmap"));
    // Standard output by name: the text arrives there.
    let out = vmsim(&[
        "trace",
        "convert",
        s(&t),
        "/dev/stdout",
        "--to",
        "vmsim-text",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("W 1 "), "{}", text(&out.stdout));
    // A FIFO stays a FIFO.
    let fifo = d.join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = vmsim(&["trace", "convert", s(&t), s(&fifo), "--to", "vmsim-text"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(reader.join().unwrap().contains("W 1 "));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // No temporary file is left anywhere.
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["link.vmt", "pipe", "t.vmt", "target.vmt"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_missing_folder_fails_before_the_work() {
    let d = folder("missing");
    let t = trace(&d);
    let missing = d.join("no/such");
    for args in [
        vec![
            "run".to_string(),
            "-w".into(),
            "zipf".into(),
            "-n".into(),
            "100000000".into(),
            "--interval".into(),
            "1000".into(),
            "--interval-file".into(),
            s(&missing.join("i.csv")).into(),
        ],
        vec![
            "trace".into(),
            "convert".into(),
            s(&t).into(),
            s(&missing.join("o.vmb")).into(),
        ],
        vec![
            "explain".into(),
            "--html".into(),
            s(&missing.join("p.html")).into(),
            "0x1000".into(),
        ],
        vec![
            "exercise".into(),
            "--state-out".into(),
            s(&missing.join("s.toml")).into(),
        ],
    ] {
        let started = std::time::Instant::now();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vmsim(&args);
        refused(&out, "does not exist");
        // The 100M-access run would take minutes: it must not have started.
        assert!(started.elapsed().as_secs() < 10, "{args:?}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::process::Stdio;
    for args in [
        &["machines"][..],
        &["run", "-n", "1000"],
        &["explain", "0x1000"],
        &["exercise", "--answers"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vmsim"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes before reading anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn the_default_interval_file_is_made_new_never_written_over() {
    let d = folder("interval-default");
    let t = trace(&d);
    let run = |extra: &[&str]| {
        Command::new(support::VMSIM)
            .args(["run", s(&t), "--interval", "50"])
            .args(extra)
            .current_dir(&d)
            .output()
            .unwrap()
    };
    let csv = d.join("vmsim-interval.csv");
    // Not there: made.
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = std::fs::read_to_string(&csv).unwrap();
    assert!(first.starts_with("accesses,"), "{first}");
    // There, and not named: refused, the file as it was.
    std::fs::write(&csv, "mine\n").unwrap();
    let out = run(&[]);
    refused(&out, "vmsim-interval.csv");
    assert!(text(&out.stderr).contains("--interval-file"));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "mine\n");
    // Named: written over.
    let out = run(&["--interval-file", "vmsim-interval.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), first);
    // A file name without --interval is a mistake, not ignored.
    let out = Command::new(support::VMSIM)
        .args(["run", s(&t), "--interval-file", "x.csv"])
        .current_dir(&d)
        .output()
        .unwrap();
    refused(&out, "--interval");
    assert!(!d.join("x.csv").exists());
}
