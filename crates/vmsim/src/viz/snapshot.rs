//! What the TLBs, the physical frames and the swap slots hold at one moment, cut down
//! to what a page can show.

use super::{hex, Touched};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use crate::hw::paging::Paging;
use crate::hw::pte::Pte;
use crate::hw::ram::PhysMem;
use crate::hw::story::{Step as HwStep, Translation};
use crate::hw::tlb::perm;
use crate::hw::{Machine, Mmu};
use crate::os::{FrameKind, Kernel};
use crate::size::format_size;
use serde::Serialize;
use std::collections::BTreeMap;

/// Most frames a snapshot lists; the rest are only counted. Frames of user pages come
/// first, then page tables, kernel frames and free ones.
pub const MAX_FRAMES_SHOWN: usize = 256;
/// Most entries a TLB array's snapshot lists.
pub const MAX_TLB_ENTRIES_SHOWN: usize = 256;
/// Most swap slots a snapshot lists.
pub const MAX_SWAP_SLOTS_SHOWN: usize = 256;
/// Most page tables a hardware-only frame snapshot follows.
const MAX_TABLES_WALKED: usize = 4096;

/// Every TLB's valid entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlbSnapshot {
    /// The TLBs, in hierarchy order.
    pub tlbs: Vec<TlbView>,
}

/// One TLB's valid entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlbView {
    /// Its name (`L1d`).
    pub name: String,
    /// Its level in the hierarchy.
    pub level: u32,
    /// What it serves: `instructions`, `data` or `unified`.
    pub holds: &'static str,
    /// Its arrays.
    pub arrays: Vec<TlbArrayView>,
}

/// One array of a TLB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlbArrayView {
    /// Its name.
    pub name: String,
    /// Number of sets.
    pub sets: u64,
    /// Ways per set.
    pub ways: usize,
    /// Page sizes held.
    pub page_sizes: Vec<String>,
    /// The valid entries, by set and way.
    pub entries: Vec<TlbEntryView>,
    /// Valid entries not listed.
    pub not_shown: usize,
}

/// One valid TLB entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlbEntryView {
    /// The set.
    pub set: u64,
    /// The way.
    pub way: usize,
    /// The virtual page number at the entry's page size.
    pub vpn: String,
    /// The physical page number (base pages) of the page's first frame.
    pub ppn: String,
    /// The page size.
    pub page_size: String,
    /// The address-space id, or none for a global entry.
    pub asid: Option<u32>,
    /// Cached permissions: `RWXUDG` letters, `-` for those clear.
    pub perms: String,
}

fn perm_letters(p: u8) -> String {
    [
        (perm::R, 'R'),
        (perm::W, 'W'),
        (perm::X, 'X'),
        (perm::U, 'U'),
        (perm::D, 'D'),
        (perm::G, 'G'),
    ]
    .iter()
    .map(|&(b, c)| if p & b != 0 { c } else { '-' })
    .collect()
}

/// Every TLB of `mmu`, as it is now.
pub fn tlbs(mmu: &Mmu) -> TlbSnapshot {
    use crate::hw::machine::Holds;
    let page_shift = mmu.paging().page_shift;
    let tlbs = mmu
        .tlbs()
        .iter()
        .map(|t| TlbView {
            name: t.name.clone(),
            level: t.level,
            holds: match t.holds {
                Holds::Instr => "instructions",
                Holds::Data => "data",
                Holds::Unified => "unified",
            },
            arrays: t
                .arrays()
                .iter()
                .map(|a| {
                    let mut entries = Vec::new();
                    let mut not_shown = 0;
                    for set in 0..a.nr_sets() {
                        for (way, vpn, _level, asid, e) in a.set_entries(set as usize) {
                            if entries.len() >= MAX_TLB_ENTRIES_SHOWN {
                                not_shown += 1;
                                continue;
                            }
                            entries.push(TlbEntryView {
                                set,
                                way,
                                vpn: hex(vpn),
                                ppn: hex(e.pa_base >> page_shift),
                                page_size: format_size(1u64 << (e.shift & 63)),
                                asid,
                                perms: perm_letters(e.perms),
                            });
                        }
                    }
                    TlbArrayView {
                        name: a.name.clone(),
                        sets: a.nr_sets(),
                        ways: a.ways(),
                        page_sizes: a.page_sizes().map(format_size).collect(),
                        entries,
                        not_shown,
                    }
                })
                .collect(),
        })
        .collect();
    TlbSnapshot { tlbs }
}

/// The TLB entries translation `t` of `va` hit or filled, where they are now.
pub fn touched(mmu: &Mmu, t: &Translation) -> Vec<Touched> {
    let hit = t.tlb_hit();
    let filled: Vec<&str> = t
        .steps
        .iter()
        .filter_map(|s| match s {
            HwStep::TlbFill { tlb, .. } => Some(tlb.as_str()),
            _ => None,
        })
        .collect();
    let asid = mmu.context().1;
    let mut out = Vec::new();
    for tlb in mmu.tlbs() {
        let how = if hit == Some(tlb.name.as_str()) {
            "hit"
        } else if filled.contains(&tlb.name.as_str()) {
            "filled"
        } else {
            continue;
        };
        if let Some(p) = tlb.probes(t.va, asid).into_iter().find(|p| p.way.is_some()) {
            out.push(Touched {
                tlb: tlb.name.clone(),
                array: p.array,
                set: p.set,
                way: p.way.unwrap_or(0),
                how,
            });
        }
    }
    out
}

/// What the physical frames hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FrameSnapshot {
    /// Frames of RAM.
    pub nr_frames: u64,
    /// How many frames hold each kind of thing, largest kinds first.
    pub counts: Vec<FrameCount>,
    /// The frames listed (at most [`MAX_FRAMES_SHOWN`]), by frame number.
    pub frames: Vec<FrameView>,
    /// Frames not listed.
    pub not_shown: u64,
    /// Where the contents come from: `kernel` (the kernel's frame table) or
    /// `page tables` (what the current page tables reach, with no kernel).
    pub source: &'static str,
}

/// Frames of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrameCount {
    /// The kind (see [`FrameView::kind`]).
    pub kind: &'static str,
    /// How many.
    pub n: u64,
}

/// One physical frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrameView {
    /// Its number.
    pub pfn: String,
    /// What it holds: `free`, `reserved`, `kernel`, `zero`, `table`, `anon`, `file`,
    /// `shm` or (with no kernel) `page`.
    pub kind: &'static str,
    /// In words: whose page it is.
    pub what: String,
    /// References (mappings and caches), when a kernel keeps them.
    pub refs: Option<u32>,
}

fn kind_name(k: FrameKind) -> &'static str {
    match k {
        FrameKind::Free => "free",
        FrameKind::Reserved => "reserved",
        FrameKind::Kernel => "kernel",
        FrameKind::Table => "table",
        FrameKind::Anon => "anon",
        FrameKind::File => "file",
        FrameKind::Shm => "shm",
    }
}

/// The frames of a kernel's machine: user pages first (with the process and page
/// that map them), then page tables, kernel frames and free ones, at most
/// [`MAX_FRAMES_SHOWN`] of them.
pub fn kernel_frames(k: &Kernel) -> FrameSnapshot {
    let n = k.frames().nr_frames();
    const ORDER: [FrameKind; 7] = [
        FrameKind::Anon,
        FrameKind::File,
        FrameKind::Shm,
        FrameKind::Table,
        FrameKind::Kernel,
        FrameKind::Free,
        FrameKind::Reserved,
    ];
    let mut counts: Vec<FrameCount> = ORDER
        .iter()
        .map(|&kind| FrameCount {
            kind: kind_name(kind),
            n: k.frames().nr_of(kind),
        })
        .filter(|c| c.n > 0)
        .collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.n));
    // One pass, keeping up to MAX of each priority: user, tables, kernel, the rest.
    let mut buckets: [Vec<u64>; 4] = Default::default();
    let bucket_of = |kind: FrameKind| match kind {
        FrameKind::Anon | FrameKind::File | FrameKind::Shm => 0,
        FrameKind::Table => 1,
        FrameKind::Kernel => 2,
        FrameKind::Free | FrameKind::Reserved => 3,
    };
    // Free and reserved frames are listed only on a machine small enough to list
    // every frame; on a big one they are only counted.
    let small = n <= MAX_FRAMES_SHOWN as u64;
    let want: [u64; 4] = [
        k.frames().nr_of(FrameKind::Anon)
            + k.frames().nr_of(FrameKind::File)
            + k.frames().nr_of(FrameKind::Shm),
        k.frames().nr_of(FrameKind::Table),
        k.frames().nr_of(FrameKind::Kernel),
        if small {
            k.frames().nr_of(FrameKind::Free) + k.frames().nr_of(FrameKind::Reserved)
        } else {
            0
        },
    ];
    let mut seen = [0u64; 4];
    for pfn in 0..n {
        let b = bucket_of(k.frames().kind(Pfn(pfn)));
        seen[b] += 1;
        if buckets[b].len() < MAX_FRAMES_SHOWN && (b < 3 || small) {
            buckets[b].push(pfn);
        }
        // Stop once every bucket is full or complete.
        if (pfn & 1023) == 1023
            && (0..4).all(|i| buckets[i].len() >= MAX_FRAMES_SHOWN || seen[i] >= want[i])
        {
            break;
        }
    }
    let mut chosen = Vec::new();
    for b in buckets {
        let room = MAX_FRAMES_SHOWN - chosen.len();
        chosen.extend(b.into_iter().take(room));
    }
    chosen.sort_unstable();
    let roots: BTreeMap<u64, u32> = k
        .processes()
        .iter()
        .filter_map(|p| {
            let mm = p.mm.as_ref()?;
            Some((
                mm.pt.root().0 >> k.machine().spec.paging.page_shift,
                p.pid.0,
            ))
        })
        .collect();
    let zero = k.zero_pfn().0;
    let frames: Vec<FrameView> = chosen
        .into_iter()
        .map(|pfn| {
            let kind = k.frames().kind(Pfn(pfn));
            let (name, what) = match kind {
                FrameKind::Kernel if pfn == zero => ("zero", "the shared zero page".to_string()),
                FrameKind::Anon | FrameKind::File => {
                    let maps = k.mappings_of(Pfn(pfn));
                    let mut w: Vec<String> = maps
                        .iter()
                        .take(4)
                        .map(|(pid, va)| format!("pid {pid} page {}", hex(va.0)))
                        .collect();
                    if maps.len() > 4 {
                        w.push(format!("and {} more", maps.len() - 4));
                    }
                    if w.is_empty() {
                        w.push(if kind == FrameKind::File {
                            "page cache, not mapped".into()
                        } else {
                            "not mapped (swap cache)".into()
                        });
                    }
                    (kind_name(kind), w.join(", "))
                }
                FrameKind::Table => (
                    "table",
                    match roots.get(&pfn) {
                        Some(pid) => format!("root page table of pid {pid}"),
                        None => "page table".into(),
                    },
                ),
                FrameKind::Shm => ("shm", "shared memory".into()),
                FrameKind::Kernel => ("kernel", "kernel data".into()),
                FrameKind::Free => ("free", "free".into()),
                FrameKind::Reserved => ("reserved", "reserved".into()),
            };
            FrameView {
                pfn: hex(pfn),
                kind: name,
                what,
                refs: Some(k.frames().refs(Pfn(pfn))),
            }
        })
        .collect();
    FrameSnapshot {
        nr_frames: n,
        counts,
        not_shown: n - frames.len() as u64,
        frames,
        source: "kernel",
    }
}

/// What a page-table tree reaches: its table frames and its leaves.
#[derive(Default)]
struct Reach {
    /// Table frame -> level.
    tables: BTreeMap<u64, u32>,
    /// First frame of a page -> (virtual address, page size).
    pages: BTreeMap<u64, (u64, u64)>,
}

fn reach(p: &Paging, ram: &PhysMem, table: PhysAddr, level: u32, va: u64, out: &mut Reach) {
    let frames = p.table_frames(level).max(1);
    for f in 0..frames {
        out.tables.insert((table.0 >> p.page_shift) + f, level);
    }
    for i in 0..p.entries(level) {
        let Ok(raw) = ram.read_uint(PhysAddr(table.0 + i * p.pte_bytes as u64), p.pte_bytes) else {
            return;
        };
        let here = va | (i << p.level_shift(level));
        match p.decode(raw, level) {
            Pte::Leaf { pfn, .. } => {
                let mut a = here;
                let top = p.va_bits;
                if p.sign_extend && top < 64 && (a >> (top - 1)) & 1 == 1 {
                    a |= u64::MAX << top;
                }
                out.pages.insert(pfn.0, (a, p.leaf_size(level)));
            }
            Pte::Table { pfn, .. } if level > 1 && out.tables.len() < MAX_TABLES_WALKED => {
                let next = pfn.addr(p.page_shift);
                if !out.tables.contains_key(&pfn.0) {
                    reach(p, ram, next, level - 1, here, out);
                }
            }
            _ => {}
        }
    }
}

/// The frames of a machine with no kernel: what the current page tables reach (the
/// tables and the pages they map); other frames count as unused.
pub fn table_frames(m: &Machine) -> FrameSnapshot {
    let p = m.spec.paging;
    let n = m.ram.nr_frames();
    let mut r = Reach::default();
    let root = m.mmu.context().0;
    if root.0 >> p.page_shift < n {
        reach(&p, &m.ram, root, p.levels, 0, &mut r);
    }
    let mut frames: Vec<FrameView> = Vec::new();
    for (&pfn, &(va, size)) in &r.pages {
        frames.push(FrameView {
            pfn: hex(pfn),
            kind: "page",
            what: if size == p.page_size() {
                format!("page {}", hex(va))
            } else {
                format!(
                    "{} page {} ({} frames from here)",
                    format_size(size),
                    hex(va),
                    size >> p.page_shift
                )
            },
            refs: None,
        });
    }
    frames.truncate(MAX_FRAMES_SHOWN);
    for (&pfn, &level) in &r.tables {
        if frames.len() >= MAX_FRAMES_SHOWN {
            break;
        }
        frames.push(FrameView {
            pfn: hex(pfn),
            kind: "table",
            what: format!("{} (level {level})", p.table_name(level)),
            refs: None,
        });
    }
    let used: u64 = r
        .pages
        .values()
        .map(|&(_, size)| size >> p.page_shift)
        .sum::<u64>()
        + r.tables.len() as u64;
    let mut pfn = 0;
    while n <= MAX_FRAMES_SHOWN as u64 && pfn < n {
        let covered = r.tables.contains_key(&pfn)
            || r.pages
                .range(..=pfn)
                .next_back()
                .is_some_and(|(&start, &(_, size))| pfn < start + (size >> p.page_shift));
        if !covered {
            frames.push(FrameView {
                pfn: hex(pfn),
                kind: "free",
                what: "not reached by the page tables".into(),
                refs: None,
            });
        }
        pfn += 1;
    }
    frames.sort_by_key(|f| u64::from_str_radix(f.pfn.trim_start_matches("0x"), 16).unwrap_or(0));
    let mut counts = vec![
        FrameCount {
            kind: "page",
            n: used - r.tables.len() as u64,
        },
        FrameCount {
            kind: "table",
            n: r.tables.len() as u64,
        },
        FrameCount {
            kind: "free",
            n: n.saturating_sub(used),
        },
    ];
    counts.retain(|c| c.n > 0);
    counts.sort_by_key(|c| std::cmp::Reverse(c.n));
    FrameSnapshot {
        nr_frames: n,
        counts,
        not_shown: n.saturating_sub(frames.len() as u64),
        frames,
        source: "page tables",
    }
}

/// The swap slots in use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SwapSnapshot {
    /// Slots on the device.
    pub slots: u64,
    /// Slots in use.
    pub used: u64,
    /// The slots in use (at most [`MAX_SWAP_SLOTS_SHOWN`]).
    pub entries: Vec<SwapSlotView>,
    /// Slots in use not listed.
    pub not_shown: u64,
}

/// One swap slot in use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SwapSlotView {
    /// The slot.
    pub slot: u32,
    /// Who holds it: the processes and pages whose entries name it.
    pub owners: String,
    /// References to it.
    pub refs: u16,
    /// The frame holding a copy of it in the swap cache, if one does.
    pub cached: Option<String>,
}

/// The swap slots in use on a kernel's swap device, if it has one.
pub fn kernel_swap(k: &Kernel) -> Option<SwapSnapshot> {
    let dev = k.swap_device()?;
    let mut snap = SwapSnapshot {
        slots: dev.stats.slots,
        used: dev.stats.used,
        ..SwapSnapshot::default()
    };
    if dev.stats.used == 0 {
        return Some(snap);
    }
    // Which entries name which slot: the swapped-out pages of every live process.
    let paging = k.machine().spec.paging;
    let mut owners: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for p in k.processes() {
        let Some(mm) = p.mm.as_ref() else { continue };
        for (va, slot) in mm
            .pt
            .entries(&paging, &k.machine().ram, VirtAddr(0), k.task_size())
        {
            if let Some(crate::hw::SoftPte::Swap(s)) = slot.soft() {
                owners
                    .entry(s.0)
                    .or_default()
                    .push(format!("pid {} page {}", p.pid, hex(va.0)));
            }
        }
    }
    for slot in 0..dev.nr_slots() {
        let refs = dev.count(crate::addr::SwapSlot(slot));
        if refs == 0 {
            continue;
        }
        if snap.entries.len() >= MAX_SWAP_SLOTS_SHOWN {
            snap.not_shown += 1;
            continue;
        }
        let who = owners.remove(&slot).unwrap_or_default();
        snap.entries.push(SwapSlotView {
            slot,
            owners: if who.is_empty() {
                "only the swap cache".into()
            } else {
                who.join(", ")
            },
            refs,
            cached: k
                .swap_cache_frame(crate::addr::SwapSlot(slot))
                .map(|f| hex(f.0)),
        });
    }
    Some(snap)
}
