//! Builds the QEMU plugin (`crates/vmsim-qemu`, optimised) so the `vmsim` binary can
//! carry it: `vmsim record` hands QEMU that copy, which is always the one built with
//! this binary (never a stale file found beside it).
//!
//! The plugin is built by a nested `cargo build` into this build's `OUT_DIR`, a
//! target folder of its own (so it takes no lock the outer build holds).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let plugin = manifest.join("../vmsim-qemu");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for p in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", plugin.join(p).display());
    }
    for shared in ["wire.rs", "elf.rs"] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest
                .join("../vmsim/src/trace/record")
                .join(shared)
                .display()
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = out.join("plugin-target");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--lib", "--manifest-path"])
        .arg(plugin.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    // The outer build's settings are for the outer build (coverage instrumentation,
    // a cross target); the plugin is a plain host library.
    for v in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(v);
    }
    let status = cmd
        .status()
        .expect("running cargo to build the QEMU plugin");
    assert!(status.success(), "building the QEMU plugin failed");
    let so = target.join("release/libvmsim_qemu.so");
    std::fs::copy(&so, out.join("libvmsim_qemu.so")).expect("copying the QEMU plugin");
}
