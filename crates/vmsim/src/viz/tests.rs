use super::*;
use crate::demo::Demo;
use crate::hw::{MachineSpec, Privilege};
use crate::os::{Kernel, KernelConfig};
use crate::trace::text::parse_line;

fn demo_walkthrough(machine: &str, vas: &[u64]) -> Walkthrough {
    let mut d = Demo::new(MachineSpec::preset(machine).unwrap()).unwrap();
    let vas: Vec<VirtAddr> = vas.iter().map(|&v| VirtAddr(v)).collect();
    explain_machine(
        &mut d.machine,
        &vas,
        AccessKind::Read,
        Privilege::User,
        "test",
    )
}

#[test]
fn a_repeated_address_misses_then_hits_and_marks_its_entry() {
    let w = demo_walkthrough("x86-64", &[0x6000, 0x6008]);
    assert_eq!(w.steps.len(), 2);
    let (a, b) = (&w.steps[0], &w.steps[1]);
    assert!(!a.attempts[0].tlb_hit);
    assert_eq!(a.attempts[0].walk.len(), 4, "four levels walked");
    assert!(b.attempts[0].tlb_hit);
    assert!(b.attempts[0].walk.is_empty());
    assert_eq!(a.touched.first().map(|t| t.how), Some("filled"));
    assert_eq!(b.touched.first().map(|t| t.how), Some("hit"));
    assert_eq!(a.bits.va, "0x6000");
    assert_eq!(a.bits.vpn, "0x6");
    assert_eq!(
        a.bits.fields.last().map(|f| f.name.as_str()),
        Some("offset")
    );
    // The hardware changed nothing in memory: both steps share one frame snapshot.
    assert_eq!(w.frame_snapshots.len(), 1);
    assert_eq!((a.frames, b.frames), (0, 0));
    // The touched entry is in the snapshot.
    let t = &b.touched[0];
    let snap = &w.tlb_snapshots[b.tlbs];
    let tlb = snap.tlbs.iter().find(|x| x.name == t.tlb).unwrap();
    assert!(tlb
        .arrays
        .iter()
        .any(|a| a.name == t.array && a.entries.iter().any(|e| e.set == t.set && e.way == t.way)));
}

#[test]
fn an_unmapped_address_faults_with_no_kernel_to_handle_it() {
    let w = demo_walkthrough("textbook", &[0x10]);
    let s = &w.steps[0];
    assert!(s.page_fault);
    assert!(s.pa.is_none());
    assert!(s.touched.is_empty());
    assert_eq!(
        s.attempts[0].kernel.as_ref().map(|k| k.kind.as_str()),
        Some("unhandled")
    );
    // A small machine shows every frame.
    let f = &w.frame_snapshots[s.frames];
    assert_eq!(f.frames.len() as u64, f.nr_frames);
    assert!(f.frames.iter().any(|f| f.kind == "table"));
}

#[test]
fn a_trace_records_faults_and_what_the_kernel_did() {
    let text = "spawn 1
        mmap 1 0x10000000 16KiB rw-
        W 1 0x10000000 8
        W 1 0x10000008 8
        fork 1 2
        W 2 0x10000000 8
        R 2 0x20000000 8";
    let events: Vec<_> = text
        .lines()
        .map(|l| parse_line(l.trim()).unwrap())
        .collect();
    let mut k = Kernel::boot(
        MachineSpec::preset("x86-64").unwrap(),
        KernelConfig::default(),
    );
    let w = record_trace(&mut k, &events, "t").unwrap();
    assert_eq!(w.steps.len(), 4);
    let kinds: Vec<Option<String>> = w
        .steps
        .iter()
        .map(|s| s.attempts[0].kernel.as_ref().map(|k| k.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            Some("demand-zero".to_string()),
            None,
            Some("cow-copy".to_string()),
            Some("segv-no-vma".to_string())
        ]
    );
    assert_eq!(w.steps[0].attempts.len(), 2, "the fault, then the retry");
    assert!(w.steps[0].pa.is_some());
    assert_eq!(w.steps[2].pid, Some(2));
    assert!(
        w.steps[3].outcome.contains("SIGSEGV"),
        "{}",
        w.steps[3].outcome
    );
    // The second step changed no memory and shares the first one's frames.
    assert_eq!(w.steps[0].frames, w.steps[1].frames);
    let f = &w.frame_snapshots[w.steps[0].frames];
    assert!(f.frames.len() <= MAX_FRAMES_SHOWN);
    let ppn = w.steps[0].ppn.clone().unwrap();
    let frame = f.frames.iter().find(|x| x.pfn == ppn).unwrap();
    assert_eq!(frame.kind, "anon");
    assert!(frame.what.contains("0x10000000"), "{}", frame.what);
    assert!(w.steps[0].swap.is_none(), "no swap configured");
}

#[test]
fn a_trace_over_the_cap_is_refused() {
    let e = parse_line("R 1 0x1000").unwrap();
    let events = vec![e; MAX_TRACE_EVENTS + 1];
    let mut k = Kernel::boot(
        MachineSpec::preset("x86-64").unwrap(),
        KernelConfig::default(),
    );
    let err = record_trace(&mut k, &events, "t").unwrap_err();
    assert!(err.to_string().contains("10000"), "{err}");
}

#[test]
fn the_page_is_self_contained_and_data_cannot_close_the_script() {
    let mut w = demo_walkthrough("x86-64", &[0x6000]);
    w.title = "</script><script>alert(1)</script> & \u{2028}".into();
    w.steps[0].label = "</script><b>x</b>".into();
    let page = html::page(&w).unwrap();
    assert_eq!(
        page.matches("</script>").count(),
        2,
        "only the page's own two"
    );
    assert!(!page.contains("<b>x"));
    assert!(page.contains("&lt;/script&gt;"));
    for id in [
        "prev", "next", "step", "bits", "tlb", "walk", "frames", "swap", "fault",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains(" src="));
    // The embedded JSON still reads back as the same data.
    let start = page.find("id=\"walkthrough\">").unwrap() + "id=\"walkthrough\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let v: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(v["steps"][0]["label"], "</script><b>x</b>");
    assert_eq!(v["title"].as_str().unwrap(), w.title);
}

#[test]
fn the_explained_replay_ends_where_the_fast_replay_does() {
    let text = "spawn 1
        mmap 1 0x10000000 64KiB rw-
        W 1 0x10000000 8
        R 1 0x10001000 8
        R 1 0x10001ffc 8
        fork 1 2
        switch 2
        W 2 0x10000000 8
        R 2 0x30000000 8
        switch 1
        W 1 0x1000f000 8
        R 7 0x5000 4";
    let events: Vec<_> = text
        .lines()
        .map(|l| parse_line(l.trim()).unwrap())
        .collect();
    let boot = || {
        Kernel::boot(
            MachineSpec::preset("x86-64").unwrap(),
            KernelConfig::default(),
        )
    };
    let mut fast = boot();
    let fast_stats = {
        let mut sim = crate::sim::Sim::new(&mut fast, 0);
        sim.feed(&events);
        sim.finish();
        sim.stats.clone()
    };
    let mut slow = boot();
    let w = record_trace(&mut slow, &events, "t").unwrap();
    assert_eq!(slow.counters(), fast.counters());
    assert_eq!(slow.machine().mmu.counters, fast.machine().mmu.counters);
    assert_eq!(w.steps.len() as u64, fast_stats.translations);
}
