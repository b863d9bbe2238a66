//! The docs' examples run: every `$ vmsim ...` line in a `console` block of
//! docs/commands.md, docs/machines.md, docs/kernel.md, docs/policy.md and docs/traces.md must succeed,
//! and every `toml` block in docs/machines.md must be a valid machine description.

use std::process::Command;

fn docs(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/").to_string() + name;
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn blocks<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    text.split(fence.as_str())
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect()
}

#[test]
fn every_console_example_runs() {
    let mut ran = 0;
    for doc in [
        "commands.md",
        "machines.md",
        "kernel.md",
        "policy.md",
        "traces.md",
        "user.md",
    ] {
        for block in blocks(&docs(doc), "console") {
            for line in block.lines().filter_map(|l| l.strip_prefix("$ vmsim ")) {
                let args: Vec<&str> = line.split_whitespace().collect();
                // Examples name files relative to the repository's root, where a reader
                // runs them.
                let out = Command::new(env!("CARGO_BIN_EXE_vmsim"))
                    .args(&args)
                    .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
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
                ran += 1;
            }
        }
    }
    assert!(ran >= 10, "only {ran} examples found");
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
