//! End-to-end tests of the `vmsim` binary.

mod support;
use support::vmsim;

use std::process::Command;

#[test]
fn help_lists_the_commands() {
    let (ok, out, _) = vmsim(&["--help"]);
    assert!(ok);
    for cmd in ["run", "machines", "translate"] {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
    }
}

#[test]
fn machines_lists_every_preset_with_geometry() {
    let (ok, out, _) = vmsim(&["machines"]);
    assert!(ok);
    for p in [
        "x86-64",
        "x86-64-la57",
        "sv39",
        "sv48",
        "textbook",
        "textbook-2level",
    ] {
        assert!(out.lines().any(|l| l.starts_with(p)), "{p} missing:\n{out}");
    }
    assert!(
        out.contains("48-bit VA, 46-bit PA, 4 levels [9,9,9,9]"),
        "{out}"
    );
    let (ok, out, _) = vmsim(&["machines", "sv39"]);
    assert!(ok);
    assert!(out.contains("walk cache for level 3"), "{out}");
    let (ok, out, _) = vmsim(&["machines", "textbook", "--toml"]);
    assert!(ok && out.contains("va_bits = 14"), "{out}");
}

#[test]
fn default_run_is_the_server_workload_on_the_kernel() {
    let (ok, out, err) = vmsim(&["run", "-n", "40000", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["workload"], "server");
    assert_eq!(v["workers"], 4);
    let k = &v["kernel"];
    for class in ["minor", "major", "cow", "violation"] {
        assert!(
            k["faults_by_class"][class].as_u64().unwrap() > 0,
            "{class}: {}",
            k["faults_by_class"]
        );
    }
    let procs = k["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 5);
    assert_eq!(procs[4]["state"], "killed(SIGSEGV)");
    let worker_accesses: u64 = procs[1..]
        .iter()
        .map(|p| p["accesses"].as_u64().unwrap())
        .sum();
    assert_eq!(
        worker_accesses,
        40000 + 1,
        "the last one also follows a null pointer"
    );
    assert!(k["display"]
        .as_str()
        .unwrap()
        .contains("vmsim server: 4 workers"));
    // Every hardware fault was one kernel fault: nothing translated twice.
    let hw_faults: u64 = v["hardware"]["faults"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    let kernel_faults: u64 = k["faults_by_class"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(hw_faults, kernel_faults);
    let (_, again, _) = vmsim(&["run", "-n", "40000", "--json"]);
    assert_eq!(out, again, "deterministic");

    let (ok, out, err) = vmsim(&["run", "-n", "20000"]);
    assert!(ok, "{err}");
    for want in [
        "boot",
        "direct map",
        "page faults",
        "cow-copy",
        "killed(SIGSEGV)",
        "| vmsim server",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
}

#[test]
fn hw_run_reports_tlb_hits_and_walks_as_json() {
    let (ok, out, err) = vmsim(&["run", "--workload", "hw", "-n", "50000", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    let hw = &v["hardware"];
    assert_eq!(hw["accesses"], 50000);
    let tlbs = hw["tlbs"].as_array().unwrap();
    assert_eq!(
        tlbs.iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["L1i", "L1d", "L2"]
    );
    let l1 = tlbs
        .iter()
        .map(|t| t["lookups"].as_u64().unwrap())
        .take(2)
        .sum::<u64>();
    assert_eq!(l1, 50000, "every access looks up one L1 TLB");
    assert!(hw["walks"].as_u64().unwrap() > 0);
    assert_eq!(hw["faults"]["not-present"], 0);
    // Deterministic: the same seed gives the same numbers.
    let (_, again, _) = vmsim(&["run", "--workload", "hw", "-n", "50000", "--json"]);
    assert_eq!(out, again);
}

#[test]
fn text_run_on_a_textbook_machine() {
    let (ok, out, err) = vmsim(&["run", "--machine", "textbook", "-n", "1000"]);
    assert!(ok, "{err}");
    assert!(out.contains("machine textbook"), "{out}");
    assert!(out.contains("est. cycles"), "{out}");
}

#[test]
fn translate_tells_the_story() {
    let (ok, out, err) = vmsim(&["translate", "-m", "textbook", "0x3d4", "0x3d4", "0x3fff0"]);
    assert!(ok, "{err}");
    assert!(out.contains("VPN 0xf  offset 0x14"), "{out}");
    assert!(out.contains("set 3 tag 0x3: miss"), "{out}");
    assert!(out.contains("set 3 tag 0x3: hit in way 0"), "{out}");
    assert!(out.contains("=> PA 0x594"), "{out}");
    assert!(out.contains("address is not canonical"), "{out}");
    let (ok, out, _) = vmsim(&["translate", "-m", "x86-64", "--access", "exec", "0x6000"]);
    assert!(ok);
    assert!(out.contains("walk PML4"), "{out}");
    assert!(out.contains("page is not executable"), "{out}");
}

#[test]
fn bad_machine_files_name_the_field() {
    let dir = support::folder("cli");
    let f = dir.join("bad.toml");
    std::fs::write(&f, "preset = \"x86-64\"\n[[tlb.array]]\nlevel = 1\nholds = \"data\"\nentries = 64\nways = 3\npage_sizes = [\"4KiB\"]\n").unwrap();
    let (ok, _, err) = vmsim(&["run", "--machine", f.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("bad.toml") && err.contains("tlb.array[0].ways") && err.contains("= 3"),
        "{err}"
    );
    std::fs::write(&f, "[paging]\nformat = \"x86-64\"\nfrobnicate = 1\n").unwrap();
    let (ok, _, err) = vmsim(&["machines", f.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("frobnicate") && err.contains("line 3"),
        "{err}"
    );
    let (ok, _, err) = vmsim(&["run", "--ram", "3 parsecs"]);
    assert!(
        !ok && err.contains("--ram") && err.contains("parsecs"),
        "{err}"
    );
    let (ok, _, err) = vmsim(&["run", "--machine", "textbook", "--ram", "1MiB"]);
    assert!(!ok && err.contains("12-bit"), "{err}");
    let (ok, _, err) = vmsim(&["translate", "0xzz"]);
    assert!(!ok && err.contains("0xzz"), "{err}");
    let (ok, _, err) = vmsim(&["run", "--machine", "vax"]);
    assert!(!ok && err.contains("unknown machine `vax`"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

fn replacement_data(name: &str) -> String {
    format!(
        "{}/../vmsim/tests/data/replacement/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn policy_runs_a_grid_and_prints_json_lines() {
    let trace = replacement_data("zipfscan_200k.txt.xz");
    let (ok, out, err) = vmsim(&[
        "policy", "--policy", "lru,arc", "--frames", "500,8000", &trace, "--json",
    ]);
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    let find = |p: &str, f: u64| {
        rows.iter()
            .find(|r| r["policy"] == p && r["frames"] == f)
            .unwrap_or_else(|| panic!("{p} {f} missing"))
    };
    // libCacheSim's counts for this stream (tests/data/replacement/README.md).
    assert_eq!(find("lru", 500)["misses"], 114_464);
    assert_eq!(find("arc", 8000)["misses"], 55_132);
    let r = find("lru", 8000);
    assert_eq!(r["references"], 200_000);
    assert_eq!(
        r["hits"].as_u64().unwrap() + r["misses"].as_u64().unwrap(),
        200_000
    );
    assert!((r["miss_ratio"].as_f64().unwrap() - 58_945.0 / 200_000.0).abs() < 1e-9);
}

#[test]
fn policy_errors_name_the_file_line_and_text() {
    let dir = support::folder("policy");
    let f = dir.join("pages.txt");
    std::fs::write(&f, "1\n2\n# fine\n0x3\nfour\n").unwrap();
    let path = f.to_str().unwrap();
    let (ok, _, err) = vmsim(&["policy", "-f", "4", path]);
    assert!(!ok);
    assert!(err.contains("pages.txt:5: `four`"), "{err}");
    let (ok, _, err) = vmsim(&["policy", path]);
    assert!(!ok && err.contains("--frames is required"), "{err}");
    let (ok, _, err) = vmsim(&["policy", "-p", "mru", "-f", "4", path]);
    assert!(!ok && err.contains("unknown policy `mru`"), "{err}");
    let b = dir.join("short.bin");
    std::fs::write(&b, [0u8; 30]).unwrap();
    let (ok, _, err) = vmsim(&["policy", "-f", "4", b.to_str().unwrap()]);
    assert!(
        !ok && err.contains("short.bin") && err.contains("byte 24"),
        "{err}"
    );
    let (ok, _, err) = vmsim(&["policy", "-f", "4", "/no/such/trace"]);
    assert!(!ok && err.contains("/no/such/trace"), "{err}");
    std::fs::write(&f, "1\n2\n1\n3\n").unwrap();
    let (ok, out, err) = vmsim(&["policy", "-p", "fifo,opt", "-f", "2", path]);
    assert!(ok, "{err}");
    assert!(out.contains("4 references, 3 distinct pages"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_under_memory_pressure_swaps() {
    let (ok, out, err) = vmsim(&[
        "run", "--ram", "8MiB", "--swap", "64MiB", "--buffer", "4MiB", "-n", "50000", "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = &v["kernel"]["reclaim"];
    assert!(r["evictions"].as_u64().unwrap() > 0, "{r}");
    assert!(r["swap"]["outs"].as_u64().unwrap() > 0, "{r}");
    assert!(r["swap"]["ins"].as_u64().unwrap() > 0, "{r}");
    assert!(v["kernel"]["faults"]["swap-in"].as_u64().unwrap() > 0);
    assert_eq!(v["kernel"]["oom_kills"], 0);
    let (ok, _, err) = vmsim(&["run", "--policy", "lru"]);
    assert!(!ok && err.contains("unknown reclaim policy `lru`"), "{err}");
    let (ok, _, err) = vmsim(&["run", "--swap", "lots"]);
    assert!(
        !ok && err.contains("--swap") && err.contains("lots"),
        "{err}"
    );
}

#[test]
fn mrc_gives_every_size_in_one_pass() {
    let trace = replacement_data("zipfscan_200k.txt.xz");
    let (ok, out, err) = vmsim(&[
        "mrc",
        "-p",
        "lru,fifo",
        "-f",
        "500,2900,8000",
        &trace,
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pts = v["points"].as_array().unwrap();
    let at = |p: &str, f: u64| {
        pts.iter()
            .find(|r| r["policy"] == p && r["frames"] == f)
            .unwrap()["misses"]
            .as_u64()
            .unwrap()
    };
    // libCacheSim's counts (tests/data/replacement/README.md).
    assert_eq!(at("lru", 8000), 58_945);
    assert_eq!(at("fifo", 500), 121_679);
    let (ok, out, _) = vmsim(&["mrc", &trace, "--points", "5", "--csv"]);
    assert!(ok);
    assert_eq!(out.lines().next(), Some("policy,frames,misses,miss_ratio"));
    assert_eq!(out.lines().count(), 6);
    let (ok, _, err) = vmsim(&["mrc", &trace, "--sample", "0"]);
    assert!(!ok && err.contains("--sample"), "{err}");
    let (ok, _, err) = vmsim(&["mrc", &trace, "-p", "ws"]);
    assert!(!ok && err.contains("no fixed number of frames"), "{err}");
}

#[test]
fn tiny_machines_are_refused_or_run_never_panic() {
    let (ok, _, err) = vmsim(&["run", "--machine", "textbook", "--ram", "512"]);
    assert!(!ok);
    assert!(
        err.contains("too small to boot") && err.contains("512 B"),
        "{err}"
    );
    // RAM below the display's address: the device is outside RAM, and forks map it.
    for ram in ["128KiB", "512KiB", "3MiB"] {
        for w in ["server", "hw"] {
            let (ok, out, err) =
                vmsim(&["run", "--ram", ram, "--swap", "1MiB", "-w", w, "-n", "3000"]);
            assert!(ok && !out.is_empty(), "{ram} {w}: {err}");
            assert!(!err.contains("panicked"), "{ram} {w}: {err}");
        }
    }
}

#[test]
fn wss_reports_the_working_set_reuse_and_heat() {
    let path = format!(
        "{}/../../docs/examples/belady.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let (ok, out, err) = vmsim(&[
        "wss",
        "--window",
        "4",
        "--interval",
        "4",
        "--top",
        "2",
        &path,
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["references"], 12);
    assert_eq!(v["working_set"]["points"].as_array().unwrap().len(), 3);
    assert_eq!(v["reuse"]["cold"], 5);
    assert_eq!(v["heat"]["hottest"][0], serde_json::json!([1, 3]));
}

#[test]
fn curves_and_series_can_be_drawn_as_svg() {
    let dir = support::folder("plot");
    let trace = replacement_data("zipfscan_200k.txt.xz");
    let svg = dir.join("mrc.svg");
    let (ok, _, err) = vmsim(&[
        "mrc",
        "-p",
        "lru,opt",
        "--points",
        "8",
        &trace,
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    assert!(text.contains("miss ratio") && text.contains("frames"));
    assert!(text.contains("lru"), "legend");
    assert!(text.contains("opt"), "legend");
    let svg = dir.join("wss.svg");
    let (ok, _, err) = vmsim(&["wss", &trace, "--plot", svg.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(std::fs::read_to_string(&svg)
        .unwrap()
        .contains("working set"));
    let (ok, _, err) = vmsim(&["mrc", &trace, "--plot", "/no/such/dir/x.svg"]);
    assert!(!ok && err.contains("/no/such/dir/x.svg"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

fn explain_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = vmsim(&all);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn explain_gives_every_field_as_numbers() {
    // The textbook machine: a TLB miss with a valid PTE, then a hit, then a fault.
    let r = explain_json(&["-m", "textbook", "0x3d4", "0x3d4", "0x3fff0"]);
    assert_eq!(r.len(), 3);
    let miss = &r[0];
    assert_eq!(miss["va"], 0x3d4);
    assert_eq!(miss["vpn"], 0xf);
    assert_eq!(miss["vpo"], 0x14);
    assert_eq!(miss["tlb_index"], 3);
    assert_eq!(miss["tlb_tag"], 3);
    assert_eq!(miss["tlb_hit"], false);
    assert_eq!(miss["page_fault"], false);
    assert_eq!(miss["walk"].as_array().unwrap().len(), 1);
    assert_eq!(miss["walk"][0]["kind"], "leaf");
    let ppn = miss["ppn"].as_u64().unwrap();
    assert_eq!(miss["walk"][0]["pfn"], ppn);
    assert_eq!(miss["pa"].as_u64().unwrap(), ppn * 64 + 0x14);
    let hit = &r[1];
    assert_eq!(hit["tlb_hit"], true);
    assert!(hit["walk"].as_array().unwrap().is_empty());
    assert_eq!(hit["pa"], miss["pa"]);
    let fault = &r[2];
    assert_eq!(fault["page_fault"], true);
    assert!(fault["ppn"].is_null() && fault["pa"].is_null());

    // x86-64: a 4-level walk to a 4 KiB page, and a 2 MiB leaf at level 2.
    let r = explain_json(&["-m", "x86-64", "0x6010", "0x400123"]);
    let walk = r[0]["walk"].as_array().unwrap();
    let tables: Vec<&str> = walk.iter().map(|w| w["table"].as_str().unwrap()).collect();
    assert_eq!(tables, ["PML4", "PDPT", "PD", "PT"]);
    assert_eq!(r[0]["indices"], serde_json::json!([0, 0, 0, 6]));
    let huge = r[1]["walk"].as_array().unwrap();
    assert_eq!(huge.last().unwrap()["level"], 2);
    assert_eq!(huge.last().unwrap()["kind"], "leaf");
    assert_eq!(r[1]["pa"].as_u64().unwrap() % (2 << 20), 0x123);

    // Sv39: three levels, and a fault on an unmapped gigapage.
    let r = explain_json(&["-m", "sv39", "0x1010", "0x40000000"]);
    assert_eq!(r[0]["walk"].as_array().unwrap().len(), 3);
    assert_eq!(r[1]["page_fault"], true);
    assert!(r[1]["fault"]
        .as_str()
        .unwrap()
        .contains("not present at level 3"));
}

#[test]
fn explain_on_a_state_file_answers_the_exercise() {
    let path = format!(
        "{}/../../docs/examples/exercise.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let r = explain_json(&["--state", &path, "0x3d4", "0x400", "0xb4c", "0xb80"]);
    assert_eq!(
        (r[0]["tlb_hit"].clone(), r[0]["pa"].clone()),
        (true.into(), 0x354.into())
    );
    assert_eq!(
        r[1]["ppn"], 0x22,
        "the preloaded TLB entry wins over the page table"
    );
    assert_eq!(
        (r[2]["tlb_hit"].clone(), r[2]["pa"].clone()),
        (false.into(), 0x74c.into())
    );
    assert_eq!(r[3]["page_fault"], true);
    let dir = support::folder("state");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "machine = \"textbook\"\n[[tlb]]\nset = 9\ntag = 0\nppn = 1\n",
    )
    .unwrap();
    let (ok, _, err) = vmsim(&["explain", "--state", bad.to_str().unwrap(), "0x0"]);
    assert!(
        !ok && err.contains("bad.toml") && err.contains("tlb[0].set"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn exercises_are_deterministic_and_their_keys_agree_with_explain() {
    let dir = support::folder("exercise");
    for seed in ["1", "2", "3", "42"] {
        let state = dir.join(format!("state-{seed}.toml"));
        let args = [
            "exercise",
            "--seed",
            seed,
            "-n",
            "8",
            "--json",
            "--state-out",
            state.to_str().unwrap(),
        ];
        let (ok, out, err) = vmsim(&args);
        assert!(ok, "{err}");
        let (_, again, _) = vmsim(&args);
        assert_eq!(out, again, "seed {seed}: deterministic");
        let e: serde_json::Value = serde_json::from_str(&out).unwrap();
        let vas: Vec<String> = e["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| format!("{:#x}", q.as_u64().unwrap()))
            .collect();
        let mut explain = vec!["--state", state.to_str().unwrap()];
        explain.extend(vas.iter().map(|s| s.as_str()));
        let got = explain_json(&explain);
        assert_eq!(got.len(), 8);
        for (a, g) in e["answers"].as_array().unwrap().iter().zip(&got) {
            assert_eq!(a, g, "seed {seed}: the key agrees with explain");
        }
    }
    let (ok, out, _) = vmsim(&["exercise", "-k", "replacement", "--seed", "9", "--answers"]);
    assert!(ok && out.contains("Misses:"), "{out}");
    let (ok, _, err) = vmsim(&["exercise", "-k", "replacement", "--policy", "ws"]);
    assert!(!ok && err.contains("--policy"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_opt_curve_equals_separate_opt_runs() {
    let trace = replacement_data("zipfscan_200k.txt.xz");
    let sizes = "1,7,100,1000,5000";
    let (ok, out, err) = vmsim(&["mrc", "--json", "-p", "opt,lru", "-f", sizes, &trace]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let points = v["points"].as_array().unwrap();
    for policy in ["opt", "lru"] {
        let (ok, runs, err) = vmsim(&["policy", "--json", "-p", policy, "-f", sizes, &trace]);
        assert!(ok, "{err}");
        for line in runs.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let p = points
                .iter()
                .find(|p| p["policy"] == policy && p["frames"] == r["frames"])
                .unwrap_or_else(|| panic!("no {policy} point at {}: {out}", r["frames"]));
            assert_eq!(p["misses"], r["misses"], "{policy} at {}", r["frames"]);
        }
    }
}

#[test]
fn explain_looks_translated_addresses_up_in_the_data_cache() {
    let state = format!(
        "{}/../../docs/examples/exercise.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    // 0x3d4 -> PA 0x354: tag 0x0d, set 5, offset 0, preloaded with 0x36 0x72 0xf0 0x1d.
    // 0x3d7 -> PA 0x357: the same line, byte 3. 0x400 -> PA 0x880: set 0, a miss.
    let v = explain_json(&["--state", &state, "0x3d4", "0x3d7", "0x400"]);
    let c = |i: usize| v[i]["cache"][0].clone();
    assert_eq!(c(0)["tag"], 0x0d);
    assert_eq!(c(0)["index"], 5);
    assert_eq!(c(0)["offset"], 0);
    assert_eq!(c(0)["hit"], true);
    assert_eq!(c(0)["byte"], 0x36);
    assert_eq!(c(1)["offset"], 3);
    assert_eq!(c(1)["byte"], 0x1d);
    assert_eq!(c(2)["index"], 0);
    assert_eq!(c(2)["tag"], 0x22);
    assert_eq!(c(2)["hit"], false);
    assert!(c(2)["byte"].is_null());
    // A fault looks nothing up.
    let f = explain_json(&["--state", &state, "0x1000"]);
    assert_eq!(f[0]["cache"], serde_json::json!([]));
    // A line outside the cache is refused, naming the field.
    let dir = support::folder("cache");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "machine = \"textbook\"\n[[cache]]\nset = 16\ntag = 1\n",
    )
    .unwrap();
    let (ok, _, err) = vmsim(&["explain", "--state", bad.to_str().unwrap(), "0x0"]);
    assert!(
        !ok && err.contains("cache[0].set") && err.contains("16 sets"),
        "{err}"
    );
}

#[test]
fn state_files_give_multi_level_tables_entry_by_entry() {
    let state = format!(
        "{}/../../docs/examples/two-level.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let v = explain_json(&[
        "--state",
        &state,
        "0x402345",
        "0xc12345",
        "0x1000000",
        "0x403000",
    ]);
    assert_eq!(v[0]["pa"], 0xd345);
    let walk = v[0]["walk"].as_array().unwrap();
    assert_eq!(walk.len(), 2);
    assert_eq!(walk[0]["pte_addr"], 0x100004, "directory entry 1");
    assert_eq!(walk[0]["kind"], "table");
    assert_eq!(walk[1]["pte_addr"], 0x101008, "page-table entry 2");
    assert_eq!(v[1]["pa"], 0x412345, "the 4 MiB leaf");
    assert_eq!(v[1]["walk"].as_array().unwrap().len(), 1);
    assert_eq!(v[2]["page_fault"], true, "the invalid directory entry");
    assert_eq!(v[3]["page_fault"], true, "an entry never given");
    // An entry in a table nothing points to is refused, naming it.
    let dir = support::folder("tables");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "machine = \"textbook-2level\"\nroot = 0x100\n[[entry]]\ntable = 0x200\nindex = 0\nppn = 5\n",
    )
    .unwrap();
    let (ok, _, err) = vmsim(&["explain", "--state", bad.to_str().unwrap(), "0x0"]);
    assert!(
        !ok && err.contains("entry[0].table") && err.contains("points to this table"),
        "{err}"
    );
}

/// vmsim with its exit status and stderr.
fn status(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args(args)
        .output()
        .expect("run vmsim");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn flags_are_checked_where_parsed_and_never_coerced() {
    for (args, names) in [
        (&["run", "--workers", "0", "-n", "10"][..], "--workers"),
        (&["run", "--cache", "0", "-n", "10"], "--cache"),
        (&["run", "--swap", "1", "-n", "10"], "--swap"),
        (
            &["run", "-w", "seq", "--interval", "0", "-n", "10"],
            "--interval",
        ),
        (
            &["run", "-w", "zipf", "--alpha", "NaN", "-n", "10"],
            "--alpha",
        ),
        (
            &["run", "-w", "hotcold", "--hot-probability", "1.5"],
            "--hot-probability",
        ),
        (&["run", "-w", "gc", "--churn", "101"], "--churn"),
        (
            &["wss", "docs/examples/belady.txt", "--window", "0"],
            "--window",
        ),
        (
            &["wss", "docs/examples/belady.txt", "--interval", "0"],
            "--interval",
        ),
        (
            &["wss", "docs/examples/belady.txt", "--region-pages", "0"],
            "--region-pages",
        ),
        (
            &["mrc", "docs/examples/belady.txt", "--points", "0"],
            "--points",
        ),
        (
            &["mrc", "docs/examples/belady.txt", "--sample", "0"],
            "--sample",
        ),
        (
            &["policy", "docs/examples/belady.txt", "-f", "0"],
            "--frames",
        ),
        (&["exercise", "-n", "0"], "--questions"),
        (
            &[
                "trace",
                "stat",
                "docs/examples/scenario.vmt",
                "--page-size",
                "3000",
            ],
            "--page-size",
        ),
    ] {
        let mut args = args.to_vec();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
        let owned: Vec<String> = args
            .iter()
            .map(|a| {
                if a.starts_with("docs/") {
                    format!("{root}{a}")
                } else {
                    a.to_string()
                }
            })
            .collect();
        args = owned.iter().map(String::as_str).collect();
        let (code, _, err) = status(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(names), "{args:?} does not name {names}: {err}");
    }
}

#[test]
fn interval_is_refused_where_there_is_no_time_series() {
    for w in ["server", "hw", "alloc", "gc"] {
        let (code, _, err) = status(&["run", "-w", w, "--interval", "100", "-n", "100"]);
        assert_eq!(code, Some(2), "{w}: {err}");
        assert!(err.contains("--interval") && err.contains(w), "{err}");
    }
}

#[test]
fn a_sample_that_holds_no_page_is_an_error_not_zero_misses() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/belady.txt"
    );
    let (code, _, err) = status(&["mrc", trace, "--sample", "0.0001"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("sampled none"), "{err}");
}

#[test]
fn machine_names_and_files_are_told_apart_in_errors() {
    let (code, _, err) = status(&["machines", "nosuch"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no preset") && err.contains("no file nosuch"),
        "{err}"
    );
    let (code, _, err) = status(&["run", "--machine", "missing/m.toml", "-n", "10"]);
    assert_eq!(code, Some(2));
    assert_eq!(err.matches("os error 2").count(), 1, "said once: {err}");
    assert!(err.contains("missing/m.toml"), "{err}");
}

#[test]
fn convert_blames_the_flag_it_was_given() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/scenario.vmt"
    );
    let out = support::tmp("to.vmb");
    let (code, _, err) = status(&[
        "trace",
        "convert",
        trace,
        out.to_str().unwrap(),
        "--to",
        "bogus",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--to") && !err.contains("--format"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_sweep_whose_runs_fail_fails() {
    let dir = support::folder("sweepfail");
    let bad = dir.join("bad.vmt");
    std::fs::write(&bad, "#vmsim-text 1\nR 1 notanumber 8\n").unwrap();
    let (code, out, err) = status(&["sweep", "--trace", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("1 of 1 runs failed"), "{err}");
    assert!(
        out.contains("\"error\""),
        "the rows are still printed: {out}"
    );
    // Values from the grid file are blamed on the file and its key.
    let grid = dir.join("grid.toml");
    std::fs::write(&grid, "workloads = [\"seq\"]\nram = [\"abc\"]\n").unwrap();
    let (code, _, err) = status(&["sweep", "--config", grid.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("grid.toml: ram: `abc`") && !err.contains("--ram"),
        "{err}"
    );
    std::fs::write(&grid, "workloads = [\"seq\"]\npolicies = [\"lru\"]\n").unwrap();
    let (_, _, err) = status(&["sweep", "--config", grid.to_str().unwrap()]);
    assert!(
        err.contains("grid.toml: policies") && !err.contains("--policy"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_help_names_every_workload_and_user_space_reports_the_headline() {
    let (_, out, _) = status(&["run", "--help"]);
    for w in ["server", "hw", "alloc", "gc", "zipf", "recursion"] {
        assert!(out.contains(w), "run --help omits {w}");
    }
    for w in ["alloc", "gc"] {
        let (code, out, err) = status(&["run", "-w", w, "--json", "--seed", "7"]);
        assert_eq!(code, Some(0), "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["seed"], 7, "{w}");
        for key in ["accesses", "faults", "walks", "cycles", "tlb", "processes"] {
            assert!(v.get(key).is_some(), "{w} JSON lacks {key}");
        }
    }
}

#[test]
fn wss_says_what_its_distances_are() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/examples/belady.txt"
    );
    let (code, out, _) = status(&["wss", trace]);
    assert_eq!(code, Some(0));
    assert!(out.contains("LRU stack distance"), "{out}");
    assert!(!out.contains("distinct pages between uses)"), "{out}");
}

#[test]
fn the_docs_describe_what_exists() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/");
    for doc in ["commands.md", "policy.md", "modelling.md"] {
        let text = std::fs::read_to_string(format!("{root}{doc}")).unwrap();
        assert!(!text.contains("Not yet here (issue"), "{doc}");
        assert!(!text.contains("no data cache is modelled"), "{doc}");
    }
}

#[test]
fn the_sweep_example_shows_memory_pressure() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    let out = Command::new(env!("CARGO_BIN_EXE_vmsim"))
        .args(["sweep", "--config", "docs/examples/sweep.toml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    let majors: std::collections::BTreeSet<u64> = rows
        .iter()
        .map(|r| r["major_faults"].as_u64().unwrap())
        .collect();
    assert!(majors.len() >= 4, "the rows differ: {majors:?}");
}
