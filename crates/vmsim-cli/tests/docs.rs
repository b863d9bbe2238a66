//! The docs' examples run and print what they are recorded to print: every `$ vmsim ...`
//! line in a `console` block of docs/commands.md, docs/machines.md, docs/kernel.md,
//! docs/policy.md, docs/traces.md and docs/user.md must succeed, and its standard output
//! must be byte for byte the one recorded in docs/examples/out/DOC/NN.txt (NN: the
//! example's place in its document, from 01; the file's first line is the command, so a
//! moved example shows up as a changed command). Every `toml` block in docs/machines.md
//! must be a valid machine description.
//!
//! To record the outputs again after a deliberate change, run
//! `VMSIM_BLESS=1 cargo test -p vmsim-cli --test docs` and review the diff of
//! docs/examples/out/ before committing it; blessing also removes recordings of
//! examples that are gone. vmsim's outputs are deterministic, so nothing is filtered.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn docs(name: &str) -> String {
    let path = root().join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blocks<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    text.split(fence.as_str())
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect()
}

/// The first line that differs between `want` and `got`, for the failure message.
fn first_difference(want: &str, got: &str) -> String {
    let (mut w, mut g) = (want.lines(), got.lines());
    for n in 1.. {
        match (w.next(), g.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "line {n}:\n  recorded: {}\n  printed:  {}",
                    a.unwrap_or("(end)"),
                    b.unwrap_or("(end)")
                )
            }
        }
    }
    "the same lines, different line endings".to_string()
}

#[test]
fn every_console_example_prints_its_recorded_output() {
    let bless = std::env::var_os("VMSIM_BLESS").is_some_and(|v| v == "1");
    let mut ran = 0;
    let mut failures = Vec::new();
    for doc in [
        "commands.md",
        "machines.md",
        "kernel.md",
        "policy.md",
        "traces.md",
        "user.md",
    ] {
        let stem = doc.trim_end_matches(".md");
        let out_dir = root().join("docs/examples/out").join(stem);
        let mut recorded = Vec::new();
        let mut n = 0;
        // What examples write to /tmp goes to the test's scratch folder instead (and
        // is named /tmp in what they print).
        let scratch = format!("{}/", support::scratch().display());
        for block in blocks(&docs(doc), "console") {
            for line in block.lines().filter_map(|l| l.strip_prefix("$ vmsim ")) {
                n += 1;
                // Examples name files relative to the repository's root, where a reader
                // runs them.
                let args: Vec<String> = line
                    .split_whitespace()
                    .map(|a| a.replace("/tmp/", &scratch))
                    .collect();
                let out = Command::new(support::VMSIM)
                    .args(&args)
                    .current_dir(root())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{doc}: `vmsim {line}` failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    !out.stdout.is_empty(),
                    "{doc}: `vmsim {line}` printed nothing"
                );
                let printed = String::from_utf8_lossy(&out.stdout).replace(&scratch, "/tmp/");
                let got = format!("$ vmsim {line}\n{printed}");
                let name = format!("{n:02}.txt");
                let path = out_dir.join(&name);
                recorded.push(name);
                if bless {
                    std::fs::create_dir_all(&out_dir).unwrap();
                    std::fs::write(&path, &got).unwrap();
                } else {
                    match std::fs::read_to_string(&path) {
                        Ok(want) if want == got => {}
                        Ok(want) => failures.push(format!(
                            "{doc}: `vmsim {line}` printed other than docs/examples/out/{stem}/{n:02}.txt at {}",
                            first_difference(&want, &got)
                        )),
                        Err(e) => failures.push(format!(
                            "{doc}: `vmsim {line}`: no recorded output docs/examples/out/{stem}/{n:02}.txt ({e})"
                        )),
                    }
                }
                ran += 1;
            }
        }
        // Recordings of examples that are gone.
        if let Ok(dir) = std::fs::read_dir(&out_dir) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !recorded.contains(&name) {
                    if bless {
                        std::fs::remove_file(e.path()).unwrap();
                    } else {
                        failures.push(format!(
                            "docs/examples/out/{stem}/{name} records an example {doc} no longer has"
                        ));
                    }
                }
            }
        }
    }
    assert!(ran >= 10, "only {ran} examples found");
    assert!(
        failures.is_empty(),
        "{} of {ran} examples differ from their recorded output (VMSIM_BLESS=1 records them again):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_machine_example_is_valid() {
    let text = docs("machines.md");
    let tomls = blocks(&text, "toml");
    assert!(tomls.len() >= 2);
    for t in tomls {
        vmsim::hw::MachineSpec::from_toml(t, "docs/machines.md")
            .unwrap_or_else(|e| panic!("{e}\n{t}"));
    }
}
