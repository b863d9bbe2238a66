//! Machine state files: a machine plus preloaded contents, so that a course exercise can
//! be typed in as printed. The TLB entries are put in the first TLB's base-page array
//! by set, tag and frame; the page-table entries are written by virtual page number
//! (tables are made as needed, in frames above every frame the file names). A
//! preloaded TLB entry is honoured even where the page table says otherwise, as such
//! exercises pose it.
//!
//! ```toml
//! machine = "textbook"          # a preset name
//!
//! [[tlb]]                       # the first TLB's base-page array
//! set = 3
//! tag = 0x03
//! ppn = 0x0d
//! valid = true                  # default true; invalid entries are left out
//!
//! [[pte]]
//! vpn = 0x0f
//! ppn = 0x0d
//! valid = true                  # default true
//! perm = "rw"                   # r, w, x letters; default "rw"; always user
//!
//! [[cache]]                     # a line of a data cache the machine describes
//! set = 5
//! tag = 0x0d
//! valid = true                  # default true
//! bytes = [0x36, 0x72, 0xf0, 0x1d]   # optional; at most a line
//! # cache = "L1d"               # default the first cache; way = 0: default the first free
//! ```
//!
//! Multi-level tables can instead be typed in as printed, table by table: `root` is
//! the root table's frame and each `[[entry]]` names the frame of the table holding it
//! (`table`), its `index`, `ppn`, `valid`, `perm` and `huge`; levels follow from the
//! root.

use super::machine::MachineError;
use super::page_table::{PageTable, SimpleFrames};
use super::pte::Flags;
use super::pte::Pte;
use super::tlb::{perm, TlbEntry};
use super::{Machine, MachineSpec};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use serde::Deserialize;

/// The address-space id preloaded entries carry.
pub const STATE_ASID: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    machine: String,
    #[serde(default)]
    tlb: Vec<RawTlb>,
    #[serde(default)]
    pte: Vec<RawPte>,
    #[serde(default)]
    cache: Vec<RawCacheLine>,
    /// The root table's frame, for tables typed in entry by entry.
    root: Option<u64>,
    #[serde(default)]
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    table: u64,
    index: u64,
    ppn: u64,
    #[serde(default = "yes")]
    valid: bool,
    #[serde(default = "rw")]
    perm: String,
    #[serde(default)]
    huge: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCacheLine {
    /// The cache's name; default the first.
    cache: Option<String>,
    set: u64,
    way: Option<u32>,
    tag: u64,
    #[serde(default = "yes")]
    valid: bool,
    bytes: Option<Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlb {
    set: u64,
    tag: u64,
    ppn: u64,
    #[serde(default = "yes")]
    valid: bool,
    #[serde(default = "rw")]
    perm: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPte {
    vpn: u64,
    ppn: u64,
    #[serde(default = "yes")]
    valid: bool,
    #[serde(default = "rw")]
    perm: String,
}

fn yes() -> bool {
    true
}

fn rw() -> String {
    "rw".into()
}

fn invalid(
    origin: &str,
    field: String,
    value: impl ToString,
    reason: impl Into<String>,
) -> MachineError {
    MachineError::Invalid {
        origin: origin.to_string(),
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Refuses a frame number beyond RAM, naming the field.
fn check_ppn(origin: &str, field: String, ppn: u64, max_ppn: u64) -> Result<(), MachineError> {
    if ppn > max_ppn {
        return Err(invalid(
            origin,
            field,
            format!("{ppn:#x}"),
            format!("beyond the last frame of RAM ({max_ppn:#x})"),
        ));
    }
    Ok(())
}

fn flags_of(origin: &str, field: String, text: &str) -> Result<Flags, MachineError> {
    let mut f = Flags::USER;
    for c in text.chars() {
        f = f | match c {
            'r' => Flags::READ,
            'w' => Flags::READ | Flags::WRITE,
            'x' => Flags::EXEC,
            '-' => Flags(0),
            _ => {
                return Err(invalid(
                    origin,
                    field,
                    format!("{text:?}"),
                    "use the letters r, w and x",
                ))
            }
        };
    }
    Ok(f)
}

/// Writes page tables typed in table by table: the root at frame `root` is the top
/// level; an entry of a table at level L > 1 points to a table at level L - 1 (or maps a
/// huge page with `huge`); at level 1 it maps a page.
fn write_tables(
    m: &mut Machine,
    root: u64,
    entries: &[RawEntry],
    origin: &str,
    max_ppn: u64,
) -> Result<(), MachineError> {
    let p = m.spec.paging;
    let mut level_of: std::collections::BTreeMap<u64, u32> = Default::default();
    check_ppn(origin, "root".into(), root, max_ppn)?;
    level_of.insert(root, p.levels);
    // Entries may come in any order: settle levels until nothing changes.
    let mut done = vec![false; entries.len()];
    loop {
        let mut progress = false;
        for (i, e) in entries.iter().enumerate() {
            if done[i] {
                continue;
            }
            let Some(&level) = level_of.get(&e.table) else {
                continue;
            };
            let field = |f: &str| format!("entry[{i}].{f}");
            done[i] = true;
            progress = true;
            let slots = 1u64 << p.level_bits(level);
            if e.index >= slots {
                return Err(invalid(
                    origin,
                    field("index"),
                    e.index,
                    format!("a level-{level} table has {slots} entries"),
                ));
            }
            check_ppn(origin, field("ppn"), e.ppn, max_ppn)?;
            let leaf = level == 1 || e.huge;
            if e.huge && !p.leaf_levels().any(|l| l == level) {
                return Err(invalid(
                    origin,
                    field("huge"),
                    true,
                    format!("level {level} cannot map a page on this machine"),
                ));
            }
            let pte = if !e.valid {
                Pte::Absent
            } else if leaf {
                Pte::Leaf {
                    pfn: Pfn(e.ppn),
                    flags: flags_of(origin, field("perm"), &e.perm)?,
                }
            } else {
                if let Some(&l) = level_of.get(&e.ppn) {
                    if l != level - 1 {
                        return Err(invalid(
                            origin,
                            field("ppn"),
                            format!("{:#x}", e.ppn),
                            format!("frame already holds a level-{l} table"),
                        ));
                    }
                }
                level_of.insert(e.ppn, level - 1);
                Pte::Table {
                    pfn: Pfn(e.ppn),
                    flags: Flags::RWX | Flags::USER,
                }
            };
            let raw = p.encode(pte, level);
            let pa = PhysAddr((e.table << p.page_shift) + e.index * p.pte_bytes as u64);
            m.ram.write_uint(pa, p.pte_bytes, raw).map_err(|err| {
                invalid(
                    origin,
                    field("table"),
                    format!("{:#x}", e.table),
                    err.to_string(),
                )
            })?;
        }
        if !progress {
            break;
        }
    }
    if let Some(i) = done.iter().position(|d| !d) {
        return Err(invalid(
            origin,
            format!("entry[{i}].table"),
            format!("{:#x}", entries[i].table),
            "no valid entry on the way from the root points to this table",
        ));
    }
    Ok(())
}

/// Builds the machine a state file describes, with its TLB and page tables loaded and
/// the page table's root in the MMU.
pub fn load_state(text: &str, origin: &str) -> Result<Machine, MachineError> {
    let raw: RawState = toml::from_str(text).map_err(|e| MachineError::Parse {
        origin: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let spec = MachineSpec::load(&raw.machine)?;
    let mut m = Machine::new(spec);
    let p = m.spec.paging;
    let frames = m.ram.nr_frames();
    let max_ppn = p.max_pfn().min(frames - 1);
    let max_vpn = if p.va_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << p.va_bits) >> p.page_shift
    };
    if let Some(root) = raw.root {
        if !raw.pte.is_empty() {
            return Err(invalid(
                origin,
                "pte".into(),
                raw.pte.len(),
                "give the page table as [[pte]] by VPN or as root + [[entry]] by table, not both",
            ));
        }
        write_tables(&mut m, root, &raw.entry, origin, max_ppn)?;
        let _ = m.mmu.set_context(Pfn(root).addr(p.page_shift), STATE_ASID);
    } else {
        if !raw.entry.is_empty() {
            return Err(invalid(
                origin,
                "root".into(),
                "(missing)",
                "[[entry]] lines need `root`, the frame of the root table",
            ));
        }
        // Tables go above every frame the file names.
        let named = raw
            .tlb
            .iter()
            .map(|t| t.ppn)
            .chain(raw.pte.iter().map(|e| e.ppn))
            .max()
            .map_or(0, |n| n + 1);
        let mut alloc = SimpleFrames::new(named.min(frames), frames);
        let pt = PageTable::new(&p, &mut m.ram, &mut alloc, STATE_ASID).map_err(|_| {
            invalid(
                origin,
                "pte".into(),
                format!("frames {named}.."),
                "no room above the named frames for the page tables",
            )
        })?;
        for (i, e) in raw.pte.iter().enumerate() {
            let field = |f: &str| format!("pte[{i}].{f}");
            if e.vpn >= max_vpn {
                return Err(invalid(
                    origin,
                    field("vpn"),
                    format!("{:#x}", e.vpn),
                    format!("beyond the {}-bit virtual address", p.va_bits),
                ));
            }
            check_ppn(origin, field("ppn"), e.ppn, max_ppn)?;
            let flags = flags_of(origin, field("perm"), &e.perm)?;
            if !e.valid {
                continue;
            }
            pt.map(
                &p,
                &mut m.ram,
                &mut alloc,
                VirtAddr(e.vpn << p.page_shift),
                Pfn(e.ppn),
                1,
                flags,
                Flags::RWX | Flags::USER,
            )
            .map_err(|err| {
                invalid(
                    origin,
                    field("vpn"),
                    format!("{:#x}", e.vpn),
                    err.to_string(),
                )
            })?;
        }
        // Load the context first: on a machine without ASIDs it flushes the TLB.
        let _ = m.mmu.set_context(pt.root(), STATE_ASID);
    }
    let tlb = m.mmu.first_tlb_geometry();
    for (i, t) in raw.tlb.iter().enumerate() {
        let field = |f: &str| format!("tlb[{i}].{f}");
        let Some((sets, shift)) = tlb else {
            return Err(invalid(
                origin,
                field("set"),
                t.set,
                "the machine has no TLB",
            ));
        };
        if t.set >= sets {
            return Err(invalid(
                origin,
                field("set"),
                t.set,
                format!("the first TLB has {sets} sets"),
            ));
        }
        check_ppn(origin, field("ppn"), t.ppn, max_ppn)?;
        let vpn = t.tag.checked_mul(sets).and_then(|v| v.checked_add(t.set));
        let Some(vpn) = vpn.filter(|&v| v < max_vpn) else {
            return Err(invalid(
                origin,
                field("tag"),
                format!("{:#x}", t.tag),
                "too wide for the virtual address",
            ));
        };
        let f = flags_of(origin, field("perm"), &t.perm)?;
        if !t.valid {
            continue;
        }
        let mut perms = perm::U | perm::D;
        for (flag, bit) in [
            (Flags::READ, perm::R),
            (Flags::WRITE, perm::W),
            (Flags::EXEC, perm::X),
        ] {
            if f.contains(flag) {
                perms |= bit;
            }
        }
        m.mmu.preload_first_tlb(
            VirtAddr(vpn << shift),
            STATE_ASID,
            TlbEntry {
                pa_base: t.ppn << p.page_shift,
                perms,
                level: 1,
                shift: p.page_shift as u8,
            },
        );
    }
    for (i, l) in raw.cache.iter().enumerate() {
        let field = |f: &str| format!("cache[{i}].{f}");
        let idx = match &l.cache {
            None if !m.caches.is_empty() => 0,
            None => {
                return Err(invalid(
                    origin,
                    field("set"),
                    l.set,
                    "the machine has no data cache",
                ))
            }
            Some(name) => m
                .caches
                .iter()
                .position(|c| &c.spec.name == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = m.caches.iter().map(|c| c.spec.name.as_str()).collect();
                    invalid(
                        origin,
                        field("cache"),
                        format!("{name:?}"),
                        format!("the machine's caches are: {}", names.join(", ")),
                    )
                })?,
        };
        let spec = m.caches[idx].spec.clone();
        if l.set >= spec.sets as u64 {
            return Err(invalid(
                origin,
                field("set"),
                l.set,
                format!("{} has {} sets", spec.name, spec.sets),
            ));
        }
        if l.way.is_some_and(|w| w >= spec.ways) {
            return Err(invalid(
                origin,
                field("way"),
                l.way.unwrap_or(0),
                format!("{} has {} ways", spec.name, spec.ways),
            ));
        }
        if let Some(b) = &l.bytes {
            if b.len() > spec.line_bytes as usize {
                return Err(invalid(
                    origin,
                    field("bytes"),
                    b.len(),
                    format!("a line of {} holds {} bytes", spec.name, spec.line_bytes),
                ));
            }
        }
        m.caches[idx].preload(l.set, l.way, l.tag, l.valid, l.bytes.clone());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::{AccessKind, Privilege};

    const EXERCISE: &str = r#"
machine = "textbook"
[[tlb]]
set = 3
tag = 0x03
ppn = 0x0d
[[tlb]]
set = 0
tag = 0x04
ppn = 0x22
[[tlb]]
set = 1
tag = 0x0b
ppn = 0x01
valid = false
[[pte]]
vpn = 0x0f
ppn = 0x0d
[[pte]]
vpn = 0x10
ppn = 0x05
[[pte]]
vpn = 0x2d
ppn = 0x1d
[[pte]]
vpn = 0x2e
ppn = 0x11
valid = false
"#;

    #[test]
    fn an_exercise_as_printed() {
        let mut m = load_state(EXERCISE, "exercise.toml").unwrap();
        let user = Privilege::User;
        // VPN 0x0f: set 3, tag 3: a TLB hit.
        let t = m.explain(VirtAddr(0x3d4), AccessKind::Read, user);
        assert_eq!(t.tlb_hit(), Some("L1"));
        assert_eq!(t.result.unwrap().0, 0x354);
        // VPN 0x10 (set 0, tag 4): the TLB says frame 0x22 and wins over the table's 5.
        let t = m.explain(VirtAddr(0x400), AccessKind::Read, user);
        assert!(t.tlb_hit().is_some());
        assert_eq!(t.result.unwrap().0, 0x22 << 6);
        // VPN 0x2d: a miss, the PTE is valid.
        let t = m.explain(VirtAddr(0xb4c), AccessKind::Read, user);
        assert!(t.tlb_hit().is_none());
        assert_eq!(t.pte_reads().count(), 1);
        assert_eq!(t.result.unwrap().0, (0x1d << 6) | 0x0c);
        // VPN 0x2e: the PTE is invalid: a page fault.
        assert!(m
            .explain(VirtAddr(0xb80), AccessKind::Read, user)
            .result
            .is_err());
        // VPN 0x2f (set 3, tag 0xb): the invalid TLB entry was left out: a fault.
        assert!(m
            .explain(VirtAddr(0x2cc), AccessKind::Read, user)
            .result
            .is_err());
    }

    #[test]
    fn bad_entries_are_named() {
        let e = load_state(
            "machine = \"textbook\"\n[[tlb]]\nset = 9\ntag = 0\nppn = 1\n",
            "s.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml: field `tlb[0].set` = 9: the first TLB has 4 sets"
        );
        let e = load_state(
            "machine = \"textbook\"\n[[pte]]\nvpn = 0x100\nppn = 1\n",
            "s.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("pte[0].vpn` = 0x100"), "{e}");
        let e = load_state(
            "machine = \"textbook\"\n[[pte]]\nvpn = 1\nppn = 1\nperm = \"rwz\"\n",
            "s.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("pte[0].perm"), "{e}");
        let e = load_state(
            "machine = \"textbook\"\n[[pte]]\nvpn = 1\nppm = 1\n",
            "s.toml",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("s.toml") && e.to_string().contains("ppm"),
            "{e}"
        );
    }
}
