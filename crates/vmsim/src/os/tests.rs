//! Tests of the kernel: each fault class, fork and copy-on-write counts, shared memory,
//! W^X, the kernel's range, devices, limits, and that exit frees everything.

use super::*;
use crate::hw::AccessKind;

fn boot(preset: &str) -> Kernel {
    Kernel::boot(
        MachineSpec::preset(preset).unwrap(),
        KernelConfig::default(),
    )
}

fn boot_with(preset: &str, f: impl FnOnce(&mut KernelConfig)) -> Kernel {
    let mut c = KernelConfig::default();
    f(&mut c);
    Kernel::boot(MachineSpec::preset(preset).unwrap(), c)
}

fn spawn(k: &mut Kernel) -> Pid {
    let p = Program::small("test", k.page_size());
    k.spawn(&p).unwrap()
}

fn faults(k: &Kernel, kind: FaultKind) -> u64 {
    k.log.counters.faults_of(kind)
}

#[test]
fn boot_builds_a_direct_map_the_kernel_can_read_and_users_cannot() {
    let mut k = boot("x86-64");
    assert!(k.log.boot.iter().any(|l| l.contains("direct map")));
    // Write through physical memory, read back through the direct map.
    k.machine.ram.write(PhysAddr(0x12_3456), b"kernel").unwrap();
    let va = k.phys_to_virt(PhysAddr(0x12_3456)).unwrap();
    assert_eq!(va.0, 0xffff_8880_0012_3456);
    let mut buf = [0u8; 6];
    k.kernel_read(va, &mut buf).unwrap();
    assert_eq!(&buf, b"kernel");
    // A process shares the kernel's tables but cannot touch them.
    let pid = spawn(&mut k);
    let e = k.access(pid, va, AccessKind::Read).unwrap_err();
    assert!(
        matches!(
            e,
            AccessError::Signal {
                reason: Violation::KernelAddress,
                signal: Signal::Segv,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        k.process(pid).unwrap().state,
        ProcState::Killed(Signal::Segv)
    );
    assert_eq!(faults(&k, FaultKind::SegvKernel), 1);
}

#[test]
fn the_kernel_range_is_shared_by_every_process() {
    let mut k = boot("sv39");
    let a = spawn(&mut k);
    let b = spawn(&mut k);
    let va = k.phys_to_virt(PhysAddr(0x4000)).unwrap();
    for pid in [a, b] {
        k.switch_to(pid).unwrap();
        assert_eq!(k.kernel_access(va, AccessKind::Read), Ok(PhysAddr(0x4000)));
        // Supervisor-only, no-execute.
        assert_eq!(k.kernel_access(va, AccessKind::Execute), Err(Errno::EFAULT));
    }
    // Each process has its own root but no kernel tables of its own.
    assert_eq!(k.table_pages(a), 1);
}

#[test]
fn mapping_allocates_nothing_and_first_touch_faults() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let free = k.frames.nr_free();
    let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
    assert_eq!(k.frames.nr_free(), free, "mmap allocates nothing");
    // A read maps the zero page: still nothing allocated but maybe a table.
    assert_eq!(k.read_u64(pid, a).unwrap(), 0);
    assert_eq!(faults(&k, FaultKind::ZeroPage), 1);
    let after_read = k.frames.nr_free();
    assert!(free - after_read <= 3, "only page tables");
    // The write breaks the zero page.
    k.write_u64(pid, a, 42).unwrap();
    assert_eq!(faults(&k, FaultKind::ZeroPageCopy), 1);
    assert_eq!(k.read_u64(pid, a).unwrap(), 42);
    // A first write elsewhere is a plain demand-zero fault.
    k.write_u64(pid, VirtAddr(a.0 + 4096), 7).unwrap();
    assert_eq!(faults(&k, FaultKind::DemandZero), 1);
    assert_eq!(k.process(pid).unwrap().rss().anon, 2);
    // The zero page read fresh elsewhere still reads zero: nobody wrote into it.
    assert_eq!(k.read_u64(pid, VirtAddr(a.0 + 8192)).unwrap(), 0);
}

#[test]
fn without_the_zero_page_switch_a_read_allocates() {
    let mut k = boot_with("x86-64", |c| c.zero_page = false);
    let pid = spawn(&mut k);
    let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
    assert_eq!(k.read_u64(pid, a).unwrap(), 0);
    assert_eq!(faults(&k, FaultKind::ZeroPage), 0);
    assert_eq!(faults(&k, FaultKind::DemandZero), 1);
}

#[test]
fn fork_then_write_copies_exactly_the_pages_written() {
    for preset in ["x86-64", "sv48", "textbook-2level"] {
        let mut k = boot(preset);
        let ps = k.page_size();
        let parent = spawn(&mut k);
        let n = 12u64;
        let a = k.mmap(parent, MmapArgs::anon(n * ps, Prot::RW)).unwrap();
        for i in 0..n {
            k.write_u64(parent, VirtAddr(a.0 + i * ps), 100 + i)
                .unwrap();
        }
        let child = k.fork(parent).unwrap();
        let before = faults(&k, FaultKind::CowCopy);
        let written = 5u64;
        for i in 0..written {
            k.write_u64(child, VirtAddr(a.0 + i * ps), 900 + i).unwrap();
        }
        assert_eq!(
            faults(&k, FaultKind::CowCopy) - before,
            written,
            "{preset}: one copy per page written"
        );
        // Both see their own values.
        for i in 0..n {
            let va = VirtAddr(a.0 + i * ps);
            let want_child = if i < written { 900 + i } else { 100 + i };
            assert_eq!(k.read_u64(child, va).unwrap(), want_child, "{preset}");
            assert_eq!(k.read_u64(parent, va).unwrap(), 100 + i, "{preset}");
        }
        // The parent is now the last owner of the pages the child copied: it writes in
        // place. The rest are still shared and are copied.
        let reuse = faults(&k, FaultKind::CowReuse);
        let copies = faults(&k, FaultKind::CowCopy);
        for i in 0..n {
            k.write_u64(parent, VirtAddr(a.0 + i * ps), 1).unwrap();
        }
        assert_eq!(faults(&k, FaultKind::CowReuse) - reuse, written, "{preset}");
        assert_eq!(
            faults(&k, FaultKind::CowCopy) - copies,
            n - written,
            "{preset}"
        );
        assert_eq!(k.read_u64(child, VirtAddr(a.0 + 6 * ps)).unwrap(), 106);
    }
}

#[test]
fn exit_frees_every_frame_and_page_table() {
    for preset in ["x86-64", "x86-64-la57", "sv39", "textbook-2level"] {
        let mut k = boot(preset);
        let base = k.frame_baseline();
        let ps = k.page_size();
        let a = spawn(&mut k);
        let m = k.mmap(a, MmapArgs::anon(16 * ps, Prot::RW)).unwrap();
        let far = k
            .mmap(
                a,
                MmapArgs {
                    addr: Some(VirtAddr((k.task_size().0 / 2) & !(ps - 1))),
                    ..MmapArgs::anon(ps, Prot::RW)
                },
            )
            .unwrap();
        let shared = k.mmap(a, MmapArgs::shared_anon(4 * ps, Prot::RW)).unwrap();
        for i in 0..16 {
            k.write_u64(a, VirtAddr(m.0 + i * ps), i).unwrap();
        }
        k.write_u64(a, far, 1).unwrap();
        k.write_u64(a, shared, 1).unwrap();
        let text = k.mm(a).unwrap().vmas.iter().next().unwrap().start;
        k.access(a, text, AccessKind::Execute).unwrap();
        let b = k.fork(a).unwrap();
        k.write_u64(b, m, 5).unwrap();
        k.brk(b, Some(VirtAddr(k.mm(b).unwrap().brk.0 + 3 * ps)))
            .unwrap();
        let brk0 = k.mm(b).unwrap().start_brk;
        k.write_u64(b, brk0, 5).unwrap();
        assert!(k.frames.nr_free() < base.free);
        k.exit(b, 0).unwrap();
        k.exit(a, 0).unwrap();
        k.drop_caches();
        assert_eq!(k.frame_baseline(), base, "{preset}");
        assert_eq!(k.committed(), 0, "{preset}");
        for g in k.groups() {
            assert_eq!(g.charged, 0, "{preset}");
        }
    }
}

#[test]
fn the_stack_grows_down_on_faults_within_its_limit() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let stack = *k
        .mm(pid)
        .unwrap()
        .vmas
        .iter()
        .find(|v| v.role == VmaRole::Stack)
        .unwrap();
    let below = VirtAddr(stack.start.0 - 3 * 4096 + 8);
    k.write_u64(pid, below, 9).unwrap();
    assert_eq!(k.log.counters.stack_growths, 1);
    let grown = k.mm(pid).unwrap().vmas.find(below).copied().unwrap();
    assert_eq!(grown.start, below.align_down(4096));
    assert_eq!(grown.end, stack.end);
    // Past RLIMIT_STACK: no growth, a violation.
    let far = VirtAddr(stack.end.0 - (8 << 20) - 4096);
    let e = k.access(pid, far, AccessKind::Write).unwrap_err();
    assert!(matches!(
        e,
        AccessError::Signal {
            reason: Violation::NoVma,
            ..
        }
    ));
    assert_eq!(faults(&k, FaultKind::SegvNoVma), 1);
}

#[test]
fn each_violation_is_reported_and_by_default_kills() {
    let mut k = boot_with("x86-64", |c| c.kill_on_violation = false);
    let pid = spawn(&mut k);
    let ro = k.mmap(pid, MmapArgs::anon(4096, Prot::READ)).unwrap();
    let e = k.access(pid, ro, AccessKind::Write).unwrap_err();
    assert!(matches!(
        e,
        AccessError::Signal {
            reason: Violation::Access,
            ..
        }
    ));
    let e = k.access(pid, ro, AccessKind::Execute).unwrap_err();
    assert!(matches!(
        e,
        AccessError::Signal {
            reason: Violation::Access,
            ..
        }
    ));
    let e = k.access(pid, VirtAddr(0x10), AccessKind::Read).unwrap_err();
    assert!(matches!(
        e,
        AccessError::Signal {
            reason: Violation::NoVma,
            ..
        }
    ));
    let e = k
        .access(pid, VirtAddr(0x8000_0000_0000), AccessKind::Read)
        .unwrap_err();
    assert!(matches!(
        e,
        AccessError::Signal {
            reason: Violation::NonCanonical,
            ..
        }
    ));
    assert!(k.process(pid).unwrap().is_running(), "handled, not killed");
    assert_eq!(faults(&k, FaultKind::SegvAccess), 2);
    assert_eq!(faults(&k, FaultKind::SegvNoVma), 1);
    assert_eq!(faults(&k, FaultKind::SegvKernel), 1);
    assert_eq!(k.log.events.len(), 4);
    // With the default, the first one kills.
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    assert!(k.access(pid, VirtAddr(0x10), AccessKind::Read).is_err());
    assert_eq!(
        k.access(pid, VirtAddr(0x10), AccessKind::Read),
        Err(AccessError::NotRunning(pid))
    );
    assert!(matches!(
        k.log.events[0],
        Event::Signal {
            killed: true,
            signal: Signal::Segv,
            ..
        }
    ));
}

#[test]
fn w_xor_x_refuses_writable_code_and_a_jit_flips_pages() {
    let mut k = boot_with("x86-64", |c| c.wx = true);
    let pid = spawn(&mut k);
    assert_eq!(
        k.mmap(pid, MmapArgs::anon(4096, Prot::RWX)),
        Err(Errno::EACCES)
    );
    // The JIT: write code into a RW buffer, flip it to RX, run it.
    let code = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
    k.write(pid, code, &[0x90, 0x90, 0xc3]).unwrap();
    assert_eq!(k.mprotect(pid, code, 4096, Prot::RWX), Err(Errno::EACCES));
    k.mprotect(pid, code, 4096, Prot::RX).unwrap();
    k.access(pid, code, AccessKind::Execute).unwrap();
    let mut b = [0u8; 3];
    k.read(pid, code, &mut b).unwrap();
    assert_eq!(b, [0x90, 0x90, 0xc3]);
    // The TLB held the page writable; mprotect's flush means the write now faults.
    let e = k.access(pid, code, AccessKind::Write).unwrap_err();
    assert!(matches!(
        e,
        AccessError::Signal {
            reason: Violation::Access,
            ..
        }
    ));
}

#[test]
fn mprotect_narrowing_reaches_the_tlb() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let a = k.mmap(pid, MmapArgs::anon(8 * 4096, Prot::RW)).unwrap();
    k.write_u64(pid, a, 1).unwrap();
    k.write_u64(pid, VirtAddr(a.0 + 4096), 1).unwrap();
    let before = k.mm(pid).unwrap().vmas.len();
    // Cached writable in the TLB now. Narrow the first page of the range.
    k.mprotect(pid, a, 4096, Prot::READ).unwrap();
    let vmas = &k.mm(pid).unwrap().vmas;
    assert_eq!(vmas.len(), before + 1, "the VMA split in two");
    assert_eq!(vmas.find(a).unwrap().prot, Prot::READ);
    assert_eq!(vmas.find(VirtAddr(a.0 + 4096)).unwrap().prot, Prot::RW);
    assert!(k
        .access(pid, VirtAddr(a.0 + 4096), AccessKind::Write)
        .is_ok());
    assert!(k.access(pid, a, AccessKind::Write).is_err());
}

#[test]
fn prot_none_keeps_the_data_and_munmap_forgets_it() {
    let mut k = boot_with("sv48", |c| c.kill_on_violation = false);
    let pid = spawn(&mut k);
    let a = k.mmap(pid, MmapArgs::anon(2 * 4096, Prot::RW)).unwrap();
    k.write_u64(pid, a, 0xfeed).unwrap();
    k.mprotect(pid, a, 8192, Prot::NONE).unwrap();
    assert!(k.access(pid, a, AccessKind::Read).is_err());
    assert_eq!(k.process(pid).unwrap().rss().anon, 1, "still resident");
    let child = k.fork(pid).unwrap();
    k.mprotect(pid, a, 8192, Prot::READ).unwrap();
    assert_eq!(k.read_u64(pid, a).unwrap(), 0xfeed);
    k.mprotect(child, a, 8192, Prot::RW).unwrap();
    k.write_u64(child, a, 1).unwrap();
    assert_eq!(
        k.read_u64(pid, a).unwrap(),
        0xfeed,
        "copy-on-write survived"
    );
    k.munmap(pid, a, 8192).unwrap();
    assert!(k.access(pid, a, AccessKind::Read).is_err());
    assert_eq!(k.process(pid).unwrap().rss().anon, 0);
}

#[test]
fn munmap_splits_and_frees_page_tables() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let tables0 = k.table_pages(pid);
    let far = VirtAddr(0x5000_0000_0000);
    let a = k
        .mmap(
            pid,
            MmapArgs {
                addr: Some(far),
                fixed: true,
                ..MmapArgs::anon(3 * 4096, Prot::RW)
            },
        )
        .unwrap();
    assert_eq!(a, far);
    for i in 0..3 {
        k.write_u64(pid, VirtAddr(a.0 + i * 4096), i).unwrap();
    }
    assert_eq!(k.table_pages(pid), tables0 + 3, "PDPT, PD and PT");
    k.munmap(pid, VirtAddr(a.0 + 4096), 4096).unwrap();
    assert_eq!(
        k.mm(pid)
            .unwrap()
            .vmas
            .overlapping(a, VirtAddr(a.0 + 3 * 4096))
            .len(),
        2
    );
    assert_eq!(k.read_u64(pid, VirtAddr(a.0 + 2 * 4096)).unwrap(), 2);
    k.munmap(pid, a, 3 * 4096).unwrap();
    assert_eq!(
        k.table_pages(pid),
        tables0,
        "the tables went with the last page"
    );
    assert!(k.access(pid, a, AccessKind::Read).is_err());
}

#[test]
fn asids_roll_over_and_flush_when_they_run_out() {
    let mut spec = MachineSpec::preset("x86-64").unwrap();
    spec.asid_bits = 2; // ids 1, 2, 3
    let mut k = Kernel::boot(spec, KernelConfig::default());
    let pids: Vec<Pid> = (0..5).map(|_| spawn(&mut k)).collect();
    let mut bufs = Vec::new();
    for (i, &p) in pids.iter().enumerate() {
        let a = k.mmap(p, MmapArgs::anon(4096, Prot::RW)).unwrap();
        k.write_u64(p, a, i as u64).unwrap();
        bufs.push(a);
    }
    for round in 0..3 {
        for (i, &p) in pids.iter().enumerate() {
            assert_eq!(k.read_u64(p, bufs[i]).unwrap(), i as u64, "round {round}");
        }
    }
    assert!(k.log.counters.asid_rollovers >= 3);
    let flushes = k.machine.mmu.counters.flushes;
    assert!(flushes >= k.log.counters.asid_rollovers);
}

#[test]
fn shared_memory_is_the_same_frames_in_every_mapper() {
    let mut k = boot("x86-64");
    let a = spawn(&mut k);
    let b = spawn(&mut k);
    let obj = k.shm_open("/cache", 8192).unwrap();
    let src = MmapArgs {
        shared: true,
        source: MapSource::Shm(obj, 0),
        ..MmapArgs::anon(8192, Prot::RW)
    };
    let va = k.mmap(a, src).unwrap();
    let vb = k.mmap(b, src).unwrap();
    k.write(a, VirtAddr(va.0 + 100), b"hello").unwrap();
    let mut buf = [0u8; 5];
    k.read(b, VirtAddr(vb.0 + 100), &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(faults(&k, FaultKind::Shared), 1);
    // Shared anonymous memory stays shared across fork; private memory does not.
    let s = k.mmap(a, MmapArgs::shared_anon(4096, Prot::RW)).unwrap();
    let p = k.mmap(a, MmapArgs::anon(4096, Prot::RW)).unwrap();
    k.write_u64(a, s, 1).unwrap();
    k.write_u64(a, p, 1).unwrap();
    let c = k.fork(a).unwrap();
    k.write_u64(c, s, 2).unwrap();
    k.write_u64(c, p, 2).unwrap();
    assert_eq!(k.read_u64(a, s).unwrap(), 2);
    assert_eq!(k.read_u64(a, p).unwrap(), 1);
    // Beyond the object's end: SIGBUS.
    let big = MmapArgs {
        len: 4 * 4096,
        ..src
    };
    let vbig = k.mmap(b, big).unwrap();
    let e = k
        .access(b, VirtAddr(vbig.0 + 3 * 4096), AccessKind::Read)
        .unwrap_err();
    assert!(matches!(
        e,
        AccessError::Signal {
            signal: Signal::Bus,
            ..
        }
    ));
}

#[test]
fn file_pages_come_from_storage_once_then_from_the_cache() {
    let mut k = boot("x86-64");
    let f = k.create_file(
        "/data",
        (0..3 * 4096).map(|i| (i / 4096) as u8 + 1).collect(),
    );
    let a = spawn(&mut k);
    let b = spawn(&mut k);
    let map = |shared| MmapArgs {
        shared,
        source: MapSource::File(f, 4096),
        ..MmapArgs::anon(2 * 4096, Prot::RW)
    };
    let va = k.mmap(a, map(false)).unwrap();
    let reads = k.log.counters.file_reads;
    let mut x = [0u8; 1];
    k.read(a, va, &mut x).unwrap();
    assert_eq!(x, [2], "offset 4096 is the file's second page");
    assert_eq!(k.log.counters.file_reads, reads + 1);
    let vb = k.mmap(b, map(true)).unwrap();
    k.read(b, vb, &mut x).unwrap();
    assert_eq!(
        k.log.counters.file_reads,
        reads + 1,
        "second mapper hits the cache"
    );
    assert!(faults(&k, FaultKind::PageCache) >= 1);
    // A private write copies; the shared mapping and the cache keep the file's bytes.
    k.write(a, va, &[9]).unwrap();
    k.read(b, vb, &mut x).unwrap();
    assert_eq!(x, [2]);
    // A shared write is seen by a new mapper.
    k.write(b, vb, &[7]).unwrap();
    let c = spawn(&mut k);
    let vc = k.mmap(c, map(false)).unwrap();
    k.read(c, vc, &mut x).unwrap();
    assert_eq!(x, [7]);
}

#[test]
fn the_display_shows_what_a_process_wrote() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let screen = k
        .mmap(
            pid,
            MmapArgs {
                shared: true,
                source: MapSource::Device(Device::Display),
                ..MmapArgs::anon(4096, Prot::RW)
            },
        )
        .unwrap();
    let text: Vec<u8> = b"Hello, vmsim".iter().flat_map(|&c| [c, 0x1f]).collect();
    k.write(pid, VirtAddr(screen.0 + 160 * 2), &text).unwrap();
    let shown = k.display().unwrap().screen();
    assert_eq!(shown.lines().nth(2), Some("Hello, vmsim"));
    assert_eq!(faults(&k, FaultKind::Device), 1);
    // Mapped uncached.
    let m = k
        .mm(pid)
        .unwrap()
        .pt
        .lookup(&k.machine.spec.paging, &k.machine.ram, screen)
        .unwrap();
    assert!(m.flags.contains(crate::hw::Flags::NO_CACHE));
}

#[test]
fn the_clock_reads_simulated_time() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let rtc = k
        .mmap(
            pid,
            MmapArgs {
                shared: true,
                source: MapSource::Device(Device::Rtc),
                ..MmapArgs::anon(4096, Prot::READ)
            },
        )
        .unwrap();
    let t0 = k.read_u64(pid, rtc).unwrap();
    let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
    for i in 0..64 {
        k.write_u64(pid, VirtAddr(a.0 + i * 4096), i).unwrap();
    }
    let t1 = k.read_u64(pid, rtc).unwrap();
    assert!(t0 > 0 && t1 > t0, "{t0} {t1}");
    assert_eq!(t1, k.now_ns());
}

#[test]
fn overcommit_policies_refuse_what_they_should() {
    let mut k = boot_with("x86-64", |c| c.overcommit = Overcommit::Never);
    let pid = spawn(&mut k);
    let limit = k.commit_limit();
    assert_eq!(
        k.mmap(pid, MmapArgs::anon(limit, Prot::RW)),
        Err(Errno::ENOMEM)
    );
    // Read-only private mappings are not committed.
    assert!(k.mmap(pid, MmapArgs::anon(limit, Prot::READ)).is_ok());
    let part = (limit / 5 * 2) & !4095;
    let a = k.mmap(pid, MmapArgs::anon(part, Prot::RW)).unwrap();
    assert_eq!(k.fork(pid).map(|_| ()), Ok(()));
    assert_eq!(
        k.fork(pid),
        Err(Errno::ENOMEM),
        "a third copy would pass the limit"
    );
    k.munmap(pid, a, part).unwrap();
    assert!(k.fork(pid).is_ok());

    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let ram = k.machine.ram.size();
    assert_eq!(
        k.mmap(pid, MmapArgs::anon(2 * ram, Prot::RW)),
        Err(Errno::ENOMEM)
    );
    assert!(k.mmap(pid, MmapArgs::anon(ram / 2, Prot::RW)).is_ok());
    assert!(
        k.mmap(pid, MmapArgs::anon(ram / 2, Prot::RW)).is_ok(),
        "mode 0 overcommits"
    );

    let mut k = boot_with("x86-64", |c| c.overcommit = Overcommit::Always);
    let pid = spawn(&mut k);
    assert!(k.mmap(pid, MmapArgs::anon(4 * ram, Prot::RW)).is_ok());
}

#[test]
fn a_group_at_its_limit_loses_its_largest_process() {
    let mut k = boot("x86-64");
    let g = k.create_group("/jobs", Some(64 * 4096));
    let small = spawn(&mut k);
    let big = spawn(&mut k);
    k.set_group(small, g).unwrap();
    k.set_group(big, g).unwrap();
    let a = k.mmap(small, MmapArgs::anon(8 * 4096, Prot::RW)).unwrap();
    for i in 0..8 {
        k.write_u64(small, VirtAddr(a.0 + i * 4096), 1).unwrap();
    }
    let b = k.mmap(big, MmapArgs::anon(100 * 4096, Prot::RW)).unwrap();
    let mut died_at = None;
    for i in 0..100 {
        if k.write_u64(big, VirtAddr(b.0 + i * 4096), 1).is_err() {
            died_at = Some(i);
            break;
        }
    }
    assert!(died_at.is_some(), "the group limit must stop it");
    assert_eq!(
        k.process(big).unwrap().state,
        ProcState::Killed(Signal::OomKill)
    );
    assert!(k.process(small).unwrap().is_running());
    assert!(
        matches!(&k.log.events[0], Event::OomKill { pid, group: Some(n), .. } if *pid == big && n == "/jobs")
    );
    assert_eq!(k.groups()[g.0 as usize].oom_kills, 1);
    assert_eq!(k.groups()[g.0 as usize].charged, 8);
    assert!(k.groups()[g.0 as usize].peak <= 64);
}

#[test]
fn brk_grows_and_shrinks_the_heap() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let b0 = k.brk(pid, None).unwrap();
    let b1 = k.brk(pid, Some(VirtAddr(b0.0 + 10_000))).unwrap();
    assert_eq!(b1.0, b0.0 + 10_000);
    k.write_u64(pid, VirtAddr(b0.0 + 9_000), 3).unwrap();
    k.brk(pid, Some(b0)).unwrap();
    assert!(k
        .access(pid, VirtAddr(b0.0 + 9_000), AccessKind::Read)
        .is_err());
    let pid = spawn(&mut k);
    assert_eq!(k.brk(pid, Some(VirtAddr(8))), Err(Errno::ENOMEM));
}

#[test]
fn madvise_dontneed_drops_pages() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
    k.write_u64(pid, a, 5).unwrap();
    k.madvise_dontneed(pid, a, 4096).unwrap();
    assert_eq!(k.process(pid).unwrap().rss().anon, 0);
    assert_eq!(k.read_u64(pid, a).unwrap(), 0);
    assert_eq!(
        k.madvise_dontneed(pid, VirtAddr(0x10000), 4096),
        Err(Errno::ENOMEM)
    );
}

#[test]
fn copies_to_and_from_user_fault_pages_in_or_fail_with_efault() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let a = k.mmap(pid, MmapArgs::anon(3 * 4096, Prot::RW)).unwrap();
    let data: Vec<u8> = (0..6000).map(|i| i as u8).collect();
    k.copy_to_user(pid, VirtAddr(a.0 + 100), &data).unwrap();
    let mut back = vec![0u8; 6000];
    k.copy_from_user(pid, VirtAddr(a.0 + 100), &mut back)
        .unwrap();
    assert_eq!(back, data);
    assert_eq!(faults(&k, FaultKind::DemandZero), 2);
    assert_eq!(
        k.copy_to_user(pid, VirtAddr(0x10), b"x"),
        Err(Errno::EFAULT)
    );
    assert!(k.process(pid).unwrap().is_running(), "EFAULT, not a signal");
}

#[test]
fn syscalls_reject_bad_arguments_with_errors() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    assert_eq!(k.mmap(pid, MmapArgs::anon(0, Prot::RW)), Err(Errno::EINVAL));
    assert_eq!(k.munmap(pid, VirtAddr(0x1001), 4096), Err(Errno::EINVAL));
    assert_eq!(
        k.mprotect(pid, VirtAddr(0x7000_0000), 4096, Prot::READ),
        Err(Errno::ENOMEM)
    );
    let fixed_high = MmapArgs {
        addr: Some(VirtAddr(0xffff_8000_0000_0000)),
        fixed: true,
        ..MmapArgs::anon(4096, Prot::RW)
    };
    assert_eq!(k.mmap(pid, fixed_high), Err(Errno::EINVAL));
    assert_eq!(k.fork(Pid(99)), Err(Errno::ESRCH));
    assert_eq!(k.shm_unlink("/none"), Err(Errno::ENOENT));
    let f = MmapArgs {
        source: MapSource::File(FileId(77), 0),
        ..MmapArgs::anon(4096, Prot::READ)
    };
    assert_eq!(k.mmap(pid, f), Err(Errno::ENOENT));
}

#[test]
fn exec_replaces_the_address_space() {
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
    k.write_u64(pid, a, 1).unwrap();
    k.exec(pid, &Program::small("other", 4096)).unwrap();
    assert!(k.access(pid, a, AccessKind::Read).is_err());
    assert_eq!(k.process(pid).unwrap().name, "other");
}

#[test]
fn a_textbook_machine_runs_processes_too() {
    let mut k = boot("textbook");
    assert!(
        k.display().is_none(),
        "12-bit physical addresses hold no devices"
    );
    let base = k.frame_baseline();
    let pid = spawn(&mut k);
    let ps = k.page_size();
    let a = k.mmap(pid, MmapArgs::anon(4 * ps, Prot::RW)).unwrap();
    assert!(a.0 < k.task_size().0);
    k.write(pid, a, b"course").unwrap();
    let child = k.fork(pid).unwrap();
    k.write(child, a, b"COURSE").unwrap();
    let mut buf = [0u8; 6];
    k.read(pid, a, &mut buf).unwrap();
    assert_eq!(&buf, b"course");
    k.exit(child, 0).unwrap();
    assert!(k.frames.nr_free() < base.free);
    let kva = k.phys_to_virt(PhysAddr(0x80)).unwrap();
    assert!(k.access(pid, kva, AccessKind::Read).is_err());
    assert_eq!(
        k.process(pid).unwrap().state,
        ProcState::Killed(Signal::Segv)
    );
    k.drop_caches();
    assert_eq!(k.frame_baseline(), base);
}

#[test]
fn a_run_of_accesses_is_the_same_as_single_accesses() {
    let mut one = boot("x86-64");
    let mut run = boot("x86-64");
    let mut vas = Vec::new();
    for k in [&mut one, &mut run] {
        let pid = spawn(k);
        let a = k.mmap(pid, MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
        vas = (0..5000u64)
            .map(|i| VirtAddr(a.0 + (i * 7919 % 64) * 4096 + i % 4096))
            .collect();
    }
    let pid = Pid(1);
    let singles: Vec<PhysAddr> = vas
        .iter()
        .map(|&va| one.access(pid, va, AccessKind::Write).unwrap())
        .collect();
    let mut out = vec![PhysAddr(0); vas.len()];
    run.access_run(pid, &vas, AccessKind::Write, &mut out)
        .unwrap();
    assert_eq!(singles, out);
    assert_eq!(one.counters(), run.counters());
    assert_eq!(one.machine.mmu.counters, run.machine.mmu.counters);
    assert_eq!(
        one.process(pid).unwrap().stats,
        run.process(pid).unwrap().stats
    );
    // A run stops at the access that fails, with its index.
    let bad = [vas[0], VirtAddr(0x10), vas[1]];
    let e = run
        .access_run(pid, &bad, AccessKind::Read, &mut out)
        .unwrap_err();
    assert_eq!(e.0, 1);
}

#[test]
fn a_fault_on_a_page_that_allows_the_access_is_spurious() {
    // The MMU re-walks stale TLB entries itself, so the kernel sees such a fault only
    // when another path fixed the entry first (as another CPU would on real hardware):
    // deliver one by hand.
    let mut k = boot("x86-64");
    let pid = spawn(&mut k);
    let a = k.mmap(pid, MmapArgs::anon(4096, Prot::RW)).unwrap();
    k.write_u64(pid, a, 1).unwrap();
    let fault = crate::hw::Fault {
        va: a,
        access: AccessKind::Write,
        mode: crate::hw::Privilege::User,
        cause: crate::hw::FaultCause::WriteProtect,
        entry: None,
    };
    assert_eq!(k.handle_fault(pid, fault), Ok(FaultKind::Spurious));
    assert_eq!(faults(&k, FaultKind::Spurious), 1);
    assert_eq!(k.read_u64(pid, a).unwrap(), 1);
}

fn boot_small(ram: u64, swap: u64, policy: ReclaimPolicy) -> Kernel {
    let spec = MachineSpec::preset("x86-64")
        .unwrap()
        .with_ram(ram, "test")
        .unwrap();
    Kernel::boot(
        spec,
        KernelConfig {
            swap_bytes: swap,
            reclaim: policy,
            ..KernelConfig::default()
        },
    )
}

#[test]
fn pages_beyond_ram_go_to_swap_and_come_back_intact() {
    for policy in [
        ReclaimPolicy::Fifo,
        ReclaimPolicy::Clock,
        ReclaimPolicy::TwoList,
    ] {
        let mut k = boot_small(2 << 20, 8 << 20, policy);
        let base = k.frame_baseline();
        let pid = spawn(&mut k);
        let n = 1024u64; // 4 MiB of data on 2 MiB of RAM
        let a = k.mmap(pid, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
        for i in 0..n {
            k.write_u64(pid, VirtAddr(a.0 + i * 4096 + 8 * (i % 500)), i * 7 + 1)
                .unwrap();
        }
        assert!(k.log.counters.swap_outs > 0, "{policy:?}");
        for i in (0..n).rev() {
            let got = k
                .read_u64(pid, VirtAddr(a.0 + i * 4096 + 8 * (i % 500)))
                .unwrap();
            assert_eq!(got, i * 7 + 1, "{policy:?} page {i}");
        }
        assert!(k.log.counters.swap_ins > 0);
        assert_eq!(faults(&k, FaultKind::SwapIn), k.log.counters.swap_ins);
        assert!(k.log.counters.io_wait_ns > 0);
        let p = k.process(pid).unwrap();
        let swapped = k.mm(pid).unwrap().swap_pages;
        assert!(p.rss().anon < n && swapped > 0);
        assert!(
            p.rss().anon + swapped >= n,
            "every page resident or in swap"
        );
        k.exit(pid, 0).unwrap();
        k.drop_caches();
        assert_eq!(k.swap_stats().unwrap().used, 0, "{policy:?}: slots freed");
        assert_eq!(k.frame_baseline(), base, "{policy:?}");
    }
}

#[test]
fn without_swap_anonymous_memory_cannot_go_and_the_oom_killer_runs() {
    let mut k = boot_small(2 << 20, 0, ReclaimPolicy::Clock);
    let pid = spawn(&mut k);
    // Within the heuristic overcommit limit (RAM), beyond what RAM has free.
    let a = k.mmap(pid, MmapArgs::anon(480 * 4096, Prot::RW)).unwrap();
    let mut failed = false;
    for i in 0..480 {
        if k.write_u64(pid, VirtAddr(a.0 + i * 4096), 1).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
    assert_eq!(
        k.process(pid).unwrap().state,
        ProcState::Killed(Signal::OomKill)
    );
    assert!(
        matches!(&k.log.events[0], Event::OomKill { reason, .. } if reason.contains("no free frames")),
        "{:?}",
        k.log.events
    );
}

#[test]
fn clean_file_pages_are_dropped_and_dirty_ones_written_back() {
    let mut k = boot_small(2 << 20, 8 << 20, ReclaimPolicy::Clock);
    let pages = 600u64;
    let f = k.create_file("/big", vec![7u8; (pages * 4096) as usize]);
    let pid = spawn(&mut k);
    let shared = MmapArgs {
        shared: true,
        source: MapSource::File(f, 0),
        ..MmapArgs::anon(pages * 4096, Prot::RW)
    };
    let m = k.mmap(pid, shared).unwrap();
    // Write one byte in the first page, then stream through the rest.
    k.write(pid, m, &[42]).unwrap();
    for i in 0..pages {
        let mut b = [0u8];
        k.read(pid, VirtAddr(m.0 + i * 4096), &mut b).unwrap();
        assert!(b[0] == 7 || (i == 0 && b[0] == 42));
    }
    // Anonymous pressure pushes the file pages out.
    let a = k.mmap(pid, MmapArgs::anon(400 * 4096, Prot::RW)).unwrap();
    for i in 0..400 {
        k.write_u64(pid, VirtAddr(a.0 + i * 4096), i).unwrap();
    }
    assert!(k.log.counters.file_evictions > 0);
    assert!(k.log.counters.writebacks >= 1);
    assert_eq!(
        k.file(f).unwrap().data[0],
        42,
        "the dirty page reached the file"
    );
    let reads = k.log.counters.file_reads;
    let mut b = [0u8];
    k.read(pid, m, &mut b).unwrap();
    assert_eq!(b[0], 42);
    assert!(
        k.log.counters.file_reads > reads,
        "read back from the file: a major fault"
    );
}

#[test]
fn copy_on_write_survives_swapping() {
    let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::TwoList);
    let parent = spawn(&mut k);
    let n = 300u64;
    let a = k.mmap(parent, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
    for i in 0..n {
        k.write_u64(parent, VirtAddr(a.0 + i * 4096), i).unwrap();
    }
    let child = k.fork(parent).unwrap();
    // Pressure from a third process pushes the shared pages out.
    let hog = spawn(&mut k);
    let h = k.mmap(hog, MmapArgs::anon(500 * 4096, Prot::RW)).unwrap();
    for i in 0..500 {
        k.write_u64(hog, VirtAddr(h.0 + i * 4096), 1).unwrap();
    }
    assert!(k.log.counters.swap_outs > 0);
    for i in 0..n {
        k.write_u64(child, VirtAddr(a.0 + i * 4096), 1000 + i)
            .unwrap();
    }
    for i in 0..n {
        assert_eq!(k.read_u64(parent, VirtAddr(a.0 + i * 4096)).unwrap(), i);
        assert_eq!(
            k.read_u64(child, VirtAddr(a.0 + i * 4096)).unwrap(),
            1000 + i
        );
    }
}

#[test]
fn a_group_at_its_limit_swaps_its_own_pages_before_killing() {
    let mut k = boot_small(16 << 20, 16 << 20, ReclaimPolicy::Clock);
    let g = k.create_group("/limited", Some(64 * 4096));
    let pid = spawn(&mut k);
    k.set_group(pid, g).unwrap();
    let a = k.mmap(pid, MmapArgs::anon(256 * 4096, Prot::RW)).unwrap();
    for i in 0..256 {
        k.write_u64(pid, VirtAddr(a.0 + i * 4096), i).unwrap();
    }
    for i in 0..256 {
        assert_eq!(k.read_u64(pid, VirtAddr(a.0 + i * 4096)).unwrap(), i);
    }
    assert!(k.process(pid).unwrap().is_running());
    assert!(k.groups()[g.0 as usize].peak <= 64);
    assert!(k.log.counters.swap_outs >= 192);
    assert_eq!(k.log.counters.oom_kills, 0);
}

#[test]
fn host_files_are_really_read_and_stay_read_only() {
    let path = std::env::temp_dir().join(format!("vmsim-host-{}", std::process::id()));
    let bytes: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let mut k = boot("x86-64");
    let f = k.open_host_file(&path).unwrap();
    let pid = spawn(&mut k);
    let private = MmapArgs {
        source: MapSource::File(f, 0),
        ..MmapArgs::anon(4 * 4096, Prot::RW)
    };
    let a = k.mmap(pid, private).unwrap();
    let mut buf = vec![0u8; bytes.len()];
    k.read(pid, a, &mut buf).unwrap();
    assert_eq!(buf, bytes);
    let mut tail = [9u8; 4];
    k.read(pid, VirtAddr(a.0 + bytes.len() as u64), &mut tail)
        .unwrap();
    assert_eq!(
        tail, [0; 4],
        "past the end of the file, within its last page: zeros"
    );
    k.write(pid, a, b"private").unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a private write stays private"
    );
    let shared_rw = MmapArgs {
        shared: true,
        ..private
    };
    assert_eq!(k.mmap(pid, shared_rw), Err(Errno::EACCES));
    let shared_ro = MmapArgs {
        shared: true,
        prot: Prot::READ,
        ..private
    };
    assert!(k.mmap(pid, shared_ro).is_ok());
    std::fs::remove_file(&path).ok();
}

#[test]
fn fault_around_maps_cached_neighbours() {
    let mut k = boot("x86-64");
    let f = k.create_file("/seq", vec![1u8; 32 * 4096]);
    let a = spawn(&mut k);
    let b = spawn(&mut k);
    let map = MmapArgs {
        source: MapSource::File(f, 0),
        ..MmapArgs::anon(32 * 4096, Prot::READ)
    };
    let va = k.mmap(a, map).unwrap();
    for i in 0..32 {
        k.read_u64(a, VirtAddr(va.0 + i * 4096)).unwrap();
    }
    assert_eq!(
        k.log.counters.file_reads, 32,
        "every page read from the file once"
    );
    assert_eq!(
        k.log.counters.fault_around_pages, 0,
        "a sequential first reader finds no neighbours cached"
    );
    // At a 64 KiB-aligned address, so that the 16 pages are one window.
    let vb = k
        .mmap(
            b,
            MmapArgs {
                addr: Some(VirtAddr(0x1000_0000)),
                ..map
            },
        )
        .unwrap();
    assert_eq!(vb, VirtAddr(0x1000_0000));
    let before = k.process(b).unwrap().stats.faults.iter().sum::<u64>();
    for i in 0..16 {
        k.read_u64(b, VirtAddr(vb.0 + i * 4096)).unwrap();
    }
    let faults_b = k.process(b).unwrap().stats.faults.iter().sum::<u64>() - before;
    assert_eq!(faults_b, 1, "one fault maps the whole 16-page window");
    assert_eq!(k.log.counters.fault_around_pages, 15);
}

#[test]
fn the_swap_cache_shares_a_page_that_left_shared_and_readahead_fills_it() {
    let mut k = boot_small(2 << 20, 16 << 20, ReclaimPolicy::Fifo);
    let parent = spawn(&mut k);
    let n = 64u64;
    let a = k.mmap(parent, MmapArgs::anon(n * 4096, Prot::RW)).unwrap();
    for i in 0..n {
        k.write_u64(parent, VirtAddr(a.0 + i * 4096), i).unwrap();
    }
    let child = k.fork(parent).unwrap();
    // Push everything out with a third process.
    let hog = spawn(&mut k);
    let h = k.mmap(hog, MmapArgs::anon(400 * 4096, Prot::RW)).unwrap();
    for i in 0..400 {
        k.write_u64(hog, VirtAddr(h.0 + i * 4096), 1).unwrap();
    }
    let swapped = k.mm(parent).unwrap().swap_pages;
    assert!(swapped > 8, "{swapped}");
    k.exit(hog, 0).unwrap();
    // The parent reads its pages back: some from the device, the rest read ahead.
    for i in 0..n {
        assert_eq!(k.read_u64(parent, VirtAddr(a.0 + i * 4096)).unwrap(), i);
    }
    assert!(k.log.counters.swap_readahead > 0);
    assert!(faults(&k, FaultKind::SwapCache) > 0);
    let major = faults(&k, FaultKind::SwapIn);
    // The child's copies of the same pages come from the swap cache: no more reads.
    for i in 0..n {
        assert_eq!(k.read_u64(child, VirtAddr(a.0 + i * 4096)).unwrap(), i);
    }
    assert_eq!(
        faults(&k, FaultKind::SwapIn),
        major,
        "the child found them cached"
    );
    // And they are still copy-on-write.
    k.write_u64(child, a, 999).unwrap();
    assert_eq!(k.read_u64(parent, a).unwrap(), 0);
    k.exit(child, 0).unwrap();
    k.exit(parent, 0).unwrap();
    assert_eq!(k.swap_stats().unwrap().used, 0);
}

#[test]
fn reclaim_reads_and_clears_the_accessed_bit_in_the_entry_itself() {
    for preset in ["x86-64", "sv39", "textbook"] {
        let mut k = boot(preset);
        let pid = spawn(&mut k);
        let ps = k.page_size();
        let a = k.mmap(pid, MmapArgs::anon(ps, Prot::RW)).unwrap();
        k.write_u64(pid, a, 1).unwrap();
        let leaf = |k: &Kernel| {
            let paging = k.machine.spec.paging;
            k.mm(pid)
                .unwrap()
                .pt
                .lookup(&paging, &k.machine.ram, a)
                .unwrap()
        };
        let m = leaf(&k);
        assert!(m.flags.contains(Flags::ACCESSED), "{preset}");
        let raw = k
            .machine
            .ram
            .read_uint(m.pte_addr, k.machine.spec.paging.pte_bytes);
        // Young once; the bit is cleared in RAM and nothing else in the entry moves.
        assert!(k.young(m.pfn), "{preset}");
        let after = leaf(&k);
        assert!(!after.flags.contains(Flags::ACCESSED), "{preset}");
        assert_eq!((after.pfn, after.flags | Flags::ACCESSED), (m.pfn, m.flags));
        assert_ne!(
            raw,
            k.machine
                .ram
                .read_uint(m.pte_addr, k.machine.spec.paging.pte_bytes)
        );
        assert!(!k.young(m.pfn), "{preset}: no access since");
        // A walk sets it again (the TLB entry goes first, as a shootdown would).
        k.machine.mmu.flush_all();
        k.read_u64(pid, a).unwrap();
        assert!(k.young(m.pfn), "{preset}");
    }
}
