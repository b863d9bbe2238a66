//! Boot: the kernel starts with paging off, reserves the device holes, builds its own
//! page tables with a 1:1 direct map of physical memory in the upper half of the address
//! space (supervisor-only, global), sets up the shared zero page, and turns paging on.

use super::frames::{FrameKind, FrameTable};
use super::{Kernel, KernelConfig, KernelCounters};
use crate::addr::{PhysAddr, VirtAddr};
use crate::hw::mmio::{self as device, Display};
use crate::hw::paging::Format;
use crate::hw::{Flags, Machine, MachineSpec, PageTable};
use crate::size::format_size;

/// Where physical address 0 sits in the kernel's half, as Linux puts it
/// (`page_offset_base`, RISC-V `PAGE_OFFSET`); other machines use the half's start.
fn direct_map_base(spec: &MachineSpec, kernel_start: u64) -> u64 {
    let p = &spec.paging;
    let linux = match (p.format, p.va_bits) {
        (Format::X86_64, 48) => Some(0xffff_8880_0000_0000),
        (Format::X86_64, 57) => Some(0xff11_0000_0000_0000),
        (Format::Riscv, 39) => Some(0xffff_ffd8_0000_0000),
        (Format::Riscv, 48) => Some(0xffff_af80_0000_0000),
        _ => None,
    };
    linux.unwrap_or(kernel_start)
}

/// Why a machine could not boot.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// RAM too small for the kernel.
    #[error(transparent)]
    TooSmall(#[from] TooSmall),
    /// The swap file cannot be used.
    #[error(transparent)]
    Swap(#[from] super::swap::SwapFileError),
    /// The hugetlb pools cannot be made.
    #[error(transparent)]
    HugePool(#[from] super::hugetlb::HugePoolError),
}

/// RAM too small for what the kernel needs at boot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: {ram} of RAM ({frames} frames, {free} free after the device holes) is too small to boot: the kernel needs {need} frames for its {what}")]
pub struct TooSmall {
    /// The machine's name.
    pub machine: String,
    /// RAM, as people write it.
    pub ram: String,
    /// Frames of RAM.
    pub frames: u64,
    /// Frames free once the holes are reserved.
    pub free: u64,
    /// Frames needed.
    pub need: u64,
    /// For what.
    pub what: &'static str,
}

pub(super) fn boot(spec: MachineSpec, config: KernelConfig) -> Result<Kernel, BootError> {
    let memory_max = config.memory_max;
    let machine_name = spec.name.clone();
    let mut machine = Machine::new(spec);
    let paging = machine.spec.paging;
    let ps = paging.page_size();
    let ram_bytes = machine.ram.size();
    let nr = machine.ram.nr_frames();
    let mut log = vec![format!(
        "paging off: the kernel runs on physical addresses; RAM is {} ({} frames of {})",
        format_size(ram_bytes),
        nr,
        format_size(ps)
    )];

    // Devices exist where the physical address is wide enough to hold them.
    let devices = paging.pa_bits >= 32;
    let mut reserved = Vec::new();
    if devices {
        for (start, end, what) in device::HOLES {
            let a = start / ps;
            let b = end.div_ceil(ps);
            if a < nr {
                reserved.push((a, b.min(nr)));
                log.push(format!(
                    "reserved physical {:#x}..{:#x} ({what}): frames {a}..{}",
                    start,
                    end,
                    b.min(nr)
                ));
            }
        }
    }
    // Buddy blocks up to the largest page the machine maps.
    let max_order = paging
        .leaf_levels()
        .map(|l| paging.level_shift(l) - paging.page_shift)
        .max()
        .unwrap_or(0)
        .max(10);
    let mut frames = FrameTable::new(nr, &reserved, max_order);

    let half = 1u64 << (paging.va_bits - 1);
    let kernel_start = if paging.sign_extend {
        !(half - 1)
    } else {
        half
    };
    let task_size = if paging.sign_extend { half - ps } else { half };
    let too_small = |frames: &FrameTable, need: u64, what| TooSmall {
        machine: machine_name.clone(),
        ram: format_size(ram_bytes),
        frames: nr,
        free: frames.nr_free(),
        need,
        what,
    };
    // The root table, the zero page, and at least one table and one page for a process.
    let root_frames = paging.table_frames(paging.levels);
    if frames.nr_free() < 2 * root_frames + 2 {
        return Err(too_small(
            &frames,
            2 * root_frames + 2,
            "root table, the zero page and a first process",
        )
        .into());
    }
    let kernel_pt = PageTable::new(&paging, &mut machine.ram, &mut frames, 0)
        .map_err(|_| too_small(&frames, root_frames, "root table"))?;
    log.push(format!("kernel root table at {}", kernel_pt.root()));

    // The direct map, in the largest pages that fit.
    let base = direct_map_base(&machine.spec, kernel_start);
    let space = if paging.sign_extend {
        base.wrapping_neg()
    } else {
        (half << 1).wrapping_sub(base)
    };
    let len = ram_bytes.min(space);
    let flags = Flags::READ | Flags::WRITE | Flags::GLOBAL | Flags::ACCESSED | Flags::DIRTY;
    let table_flags = Flags::READ | Flags::WRITE | Flags::EXEC;
    let mut pa = 0u64;
    let mut pages_by_size: Vec<(u64, u64)> = Vec::new();
    while pa < len {
        let level = paging
            .leaf_levels()
            .filter(|&l| {
                let size = paging.leaf_size(l);
                size <= len - pa && pa % size == 0 && (base + pa) % size == 0
            })
            .max()
            .unwrap_or(1);
        let size = paging.leaf_size(level);
        let ok = kernel_pt.map(
            &paging,
            &mut machine.ram,
            &mut frames,
            VirtAddr(base + pa),
            PhysAddr(pa).pfn(paging.page_shift),
            level,
            flags,
            table_flags,
        );
        if ok.is_err() {
            log.push(format!(
                "direct map stopped at physical {pa:#x}: no frames left for its tables"
            ));
            break;
        }
        match pages_by_size.iter_mut().find(|e| e.0 == size) {
            Some(e) => e.1 += 1,
            None => pages_by_size.push((size, 1)),
        }
        pa += size;
    }
    let direct_map_len = pa;
    let pages: Vec<String> = pages_by_size
        .iter()
        .map(|(size, n)| format!("{n} x {}", format_size(*size)))
        .collect();
    log.push(format!(
        "direct map: physical 0..{pa:#x} at {base:#x}..{:#x} in {} pages (supervisor-only, global, no-execute)",
        base.wrapping_add(pa),
        pages.join(" + ")
    ));

    let zero_pfn = frames
        .alloc(1, FrameKind::Kernel, 0)
        .ok_or_else(|| too_small(&frames, 1, "zero page"))?;
    // Just allocated from RAM's own frames: this cannot fail.
    let zeroed = machine.ram.zero_frames(zero_pfn, 1);
    debug_assert!(zeroed.is_ok(), "zero page outside RAM");
    log.push(format!("zero page: frame {zero_pfn}"));

    let kernel_tables = kernel_pt
        .table_frames(&paging, &machine.ram)
        .saturating_sub(1);
    // ASID 0 is the kernel's; processes get 1 and up.
    // ASID 0 fits every width: this cannot fail.
    let loaded = machine.mmu.set_context(kernel_pt.root(), 0);
    debug_assert!(loaded.is_ok(), "ASID 0 refused");
    log.push(format!(
        "paging on: root {} loaded with ASID 0; {kernel_tables} kernel table(s) below the root, shared by every process",
        kernel_pt.root()
    ));
    let mmap_min = if task_size >= 16 << 20 { 0x10000 } else { ps };
    log.push(format!(
        "user space {mmap_min:#x}..{task_size:#x}; kernel half from {kernel_start:#x}"
    ));

    // A page for the header and one for a slot at least.
    let swap = if config.swap_bytes >= 2 * ps {
        let d = super::swap::SwapDevice::create(
            config.swap_path.as_deref(),
            config.swap_bytes,
            ps,
            config.swap_force,
        )?;
        log.push(format!(
            "swap: {} in {} ({} slots past its header page)",
            format_size((d.stats.slots + 1) * ps),
            d.path()
                .map_or("a temporary file".into(), |p| p.display().to_string()),
            d.stats.slots
        ));
        Some(d)
    } else {
        None
    };
    let watermarks = super::Watermarks::for_ram(nr, ps);
    log.push(format!(
        "watermarks: min {} low {} high {} free frames; reclaim by {}",
        watermarks.min,
        watermarks.low,
        watermarks.high,
        config.reclaim.name()
    ));
    let pools = config.hugepages.clone();
    // The other CPUs start idle on the kernel's tables too.
    for c in 1..machine.nr_cpus() {
        let loaded = machine.mmu_of_mut(c).set_context(kernel_pt.root(), 0);
        debug_assert!(loaded.is_ok(), "ASID 0 refused");
    }
    let sched = super::sched::Sched::new(machine.nr_cpus());
    let mut k = Kernel {
        sched,
        gathering: None,
        owed: None,
        own_read: super::OwnRead::Timed,
        rmap: super::rmap::Rmap::new(nr),
        thp: Default::default(),
        khugepaged: Default::default(),
        hugetlb: Default::default(),
        reclaim: super::reclaim::Reclaim::new(nr, watermarks),
        swap: super::swap::Swap::new(swap, config.swap_readahead),
        space: super::kernel_space::KernelSpace {
            root_index: paging.index(VirtAddr(kernel_start), paging.levels),
            pt: kernel_pt,
            tables: kernel_tables,
            start: VirtAddr(kernel_start),
            direct_map: VirtAddr(base),
            direct_map_len,
            task_size: VirtAddr(task_size),
            mmap_min: VirtAddr(mmap_min),
            zero_pfn,
            display: devices.then(Display::default),
        },
        machine,
        config,
        frames,
        tasks: Default::default(),
        cache: Default::default(),
        inflight: Default::default(),
        rstat: Default::default(),
        clock: Default::default(),
        shm: Default::default(),
        groups: super::limits::Groups::new(memory_max, ps),
        log: super::Log {
            boot: log,
            counters: KernelCounters::default(),
            events: Vec::new(),
        },
    };
    k.make_huge_pools(&pools)?;
    for p in k.huge_pools().iter().filter(|p| p.total > 0) {
        {
            k.log.boot.push(format!(
                "hugetlb: {} pages of {} reserved",
                p.total,
                format_size(p.page_bytes)
            ));
        }
    }
    Ok(k)
}
