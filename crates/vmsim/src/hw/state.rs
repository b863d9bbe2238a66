//! Machine state files: a machine plus preloaded contents, so that a course exercise can
//! be typed in as printed. The TLB entries are put in the first TLB's base-page array
//! by set, tag and frame; the page-table entries are written by virtual page number
//! (tables are made as needed, in frames above every frame the file names). A
//! preloaded TLB entry is honoured even where the page table says otherwise, as such
//! exercises pose it.
//!
//! Nothing in a file is silently dropped: each `[[tlb]]` entry is one way of its set
//! (valid or not), so a set lists at most as many entries as the TLB has ways; a valid
//! (set, tag) is listed once; a VPN, a table entry (table, index) and a cache way are
//! each given once, and a cache set takes at most its ways. Each breach is an error
//! naming the file, the entry and the value.
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

use super::machine::Holds;
use super::machine::MachineError;
use super::page_table::{PageTable, SimpleFrames};
use super::pte::Flags;
use super::pte::Pte;
use super::tlb::{perm, TlbEntry};
use super::{Machine, MachineSpec};
use crate::addr::{Pfn, PhysAddr, VirtAddr};
use serde::Deserialize;
use std::collections::HashMap;

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

/// Ways per set of the first array of the TLB that [`super::Mmu::preload_first_tlb`]
/// fills: the first TLB that holds data (as the MMU picks its front TLB).
fn first_tlb_ways(m: &Machine) -> Option<usize> {
    let t = m
        .mmu
        .tlbs()
        .iter()
        .find(|t| matches!(t.holds, Holds::Data | Holds::Unified))?;
    t.arrays().first().map(|a| a.ways())
}

/// Valid entries in all the machine's TLBs.
fn tlb_occupancy(m: &Machine) -> usize {
    m.mmu.tlbs().iter().map(|t| t.occupancy()).sum()
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
    // One entry per (table, index): a second would silently overwrite the first.
    let mut slot_of: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(j) = slot_of.insert((e.table, e.index), i) {
            return Err(invalid(
                origin,
                format!("entry[{i}].index"),
                e.index,
                format!(
                    "entry {} of the table in frame {:#x} is already given by entry[{j}]",
                    e.index, e.table
                ),
            ));
        }
    }
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
        let mut given: HashMap<u64, usize> = HashMap::new();
        for (i, e) in raw.pte.iter().enumerate() {
            let field = |f: &str| format!("pte[{i}].{f}");
            if let Some(j) = given.insert(e.vpn, i) {
                return Err(invalid(
                    origin,
                    field("vpn"),
                    format!("{:#x}", e.vpn),
                    format!("already given by pte[{j}]"),
                ));
            }
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
    let ways = first_tlb_ways(&m);
    // Each [[tlb]] entry is one way of its set, valid or not; a valid (set, tag) is
    // listed once.
    let mut listed: HashMap<u64, usize> = HashMap::new();
    let mut valid_at: HashMap<(u64, u64), usize> = HashMap::new();
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
        let n = listed.entry(t.set).or_insert(0);
        *n += 1;
        if let Some(ways) = ways.filter(|&w| *n > w) {
            return Err(invalid(
                origin,
                field("set"),
                t.set,
                format!(
                    "entry {n} for set {}, but the first TLB is {ways}-way: a set holds {ways} entries, valid or not",
                    t.set
                ),
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
        if let Some(j) = valid_at.insert((t.set, t.tag), i) {
            return Err(invalid(
                origin,
                field("tag"),
                format!("{:#x}", t.tag),
                format!(
                    "set {} already has a valid entry with this tag (tlb[{j}])",
                    t.set
                ),
            ));
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
        let before = tlb_occupancy(&m);
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
        // Whatever the checks above missed, an entry that pushed out another (or was
        // not kept) is an error, never a silent drop.
        if tlb_occupancy(&m) != before + 1 {
            return Err(invalid(
                origin,
                field("set"),
                t.set,
                "the first TLB could not hold this entry beside the ones before it",
            ));
        }
    }
    // Per (cache, set): the line of the file that took each way; per (cache, set,
    // tag): the valid line with that tag. A line never replaces another.
    let mut ways_taken: HashMap<(usize, u64), Vec<Option<usize>>> = HashMap::new();
    let mut valid_tag: HashMap<(usize, u64, u64), usize> = HashMap::new();
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
        let taken = ways_taken
            .entry((idx, l.set))
            .or_insert_with(|| vec![None; spec.ways as usize]);
        let way = match l.way {
            Some(w) => {
                if let Some(j) = taken[w as usize] {
                    return Err(invalid(
                        origin,
                        field("way"),
                        w,
                        format!("way {w} of set {} is already given by cache[{j}]", l.set),
                    ));
                }
                w
            }
            None => match taken.iter().position(|t| t.is_none()) {
                Some(w) => w as u32,
                None => {
                    return Err(invalid(
                        origin,
                        field("set"),
                        l.set,
                        format!(
                            "set {} of {} has {} ways, all given by earlier lines",
                            l.set, spec.name, spec.ways
                        ),
                    ))
                }
            },
        };
        taken[way as usize] = Some(i);
        if l.valid {
            if let Some(j) = valid_tag.insert((idx, l.set, l.tag), i) {
                return Err(invalid(
                    origin,
                    field("tag"),
                    format!("{:#x}", l.tag),
                    format!(
                        "set {} of {} already has a valid line with this tag (cache[{j}])",
                        l.set, spec.name
                    ),
                ));
            }
        }
        m.caches[idx].preload(l.set, Some(way), l.tag, l.valid, l.bytes.clone());
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

    fn tlb_entries(list: &[(u64, u64, bool)]) -> String {
        let mut t = String::from("machine = \"textbook\"\n");
        for (set, tag, valid) in list {
            t += &format!("[[tlb]]\nset = {set}\ntag = {tag:#x}\nppn = 1\nvalid = {valid}\n");
        }
        t
    }

    #[test]
    fn a_set_holds_as_many_entries_as_ways_valid_or_not() {
        // Four entries in set 0 of the 4-way TLB: all kept.
        let four = [(0, 1, true), (0, 2, true), (0, 3, false), (0, 4, true)];
        let m = load_state(&tlb_entries(&four), "s.toml").unwrap();
        assert_eq!(tlb_occupancy(&m), 3);
        // A fifth is an error naming the file, the entry and the set, whether it is
        // valid or not.
        for valid in [true, false] {
            let mut five = four.to_vec();
            five.push((0, 5, valid));
            let e = load_state(&tlb_entries(&five), "s.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("s.toml: field `tlb[4].set` = 0: entry 5 for set 0"),
                "{e}"
            );
            assert!(e.contains("4-way"), "{e}");
        }
        // Other sets are counted apart.
        let mut other = four.to_vec();
        other.push((1, 5, true));
        assert!(load_state(&tlb_entries(&other), "s.toml").is_ok());
    }

    #[test]
    fn a_valid_set_and_tag_is_listed_once() {
        let e = load_state(
            &tlb_entries(&[(2, 7, true), (2, 8, true), (2, 7, true)]),
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "s.toml: field `tlb[2].tag` = 0x7: set 2 already has a valid entry with this tag (tlb[0])"
        );
        // An invalid way may hold a stale copy of a valid entry's tag.
        assert!(load_state(&tlb_entries(&[(2, 7, false), (2, 7, true)]), "s.toml").is_ok());
        // The same tag in another set is another page.
        assert!(load_state(&tlb_entries(&[(1, 7, true), (2, 7, true)]), "s.toml").is_ok());
    }

    #[test]
    fn a_vpn_or_a_table_entry_is_given_once() {
        let e = load_state(
            "machine = \"textbook\"\n[[pte]]\nvpn = 3\nppn = 1\n[[pte]]\nvpn = 3\nppn = 2\nvalid = false\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "s.toml: field `pte[1].vpn` = 0x3: already given by pte[0]"
        );
        let e = load_state(
            "machine = \"textbook\"\nroot = 0x20\n[[entry]]\ntable = 0x20\nindex = 5\nppn = 1\n[[entry]]\ntable = 0x20\nindex = 5\nppn = 2\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("s.toml: field `entry[1].index` = 5: entry 5 of the table in frame 0x20 is already given by entry[0]"),
            "{e}"
        );
    }

    #[test]
    fn cache_lines_never_replace_each_other() {
        let line = |set: u64, tag: u64, way: Option<u32>, valid: bool| {
            let way = way.map_or(String::new(), |w| format!("way = {w}\n"));
            format!("[[cache]]\nset = {set}\ntag = {tag}\nvalid = {valid}\n{way}")
        };
        let file = |lines: &[String]| format!("machine = \"textbook\"\n{}", lines.concat());
        // The textbook cache is direct-mapped: one line per set.
        let e = load_state(
            &file(&[line(5, 1, None, false), line(5, 2, None, true)]),
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("s.toml: field `cache[1].set` = 5: set 5 of L1d has 1 ways"),
            "{e}"
        );
        let e = load_state(
            &file(&[line(5, 1, None, true), line(5, 2, Some(0), true)]),
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "s.toml: field `cache[1].way` = 0: way 0 of set 5 is already given by cache[0]"
            ),
            "{e}"
        );
        let m = load_state(
            &file(&[line(5, 1, None, true), line(6, 1, Some(0), false)]),
            "s.toml",
        )
        .unwrap();
        assert!(m.caches[0].set(5)[0].valid);
        // A 2-way cache: two valid lines of a set cannot share a tag.
        let machine = std::env::temp_dir().join(format!("vmsim-state-{}.toml", std::process::id()));
        let preset = include_str!("../../presets/textbook.toml").replace("ways = 1", "ways = 2");
        std::fs::write(&machine, preset).unwrap();
        let two_way = |lines: &[String]| {
            format!(
                "machine = {:?}\n{}",
                machine.display().to_string(),
                lines.concat()
            )
        };
        let e = load_state(
            &two_way(&[line(3, 9, None, true), line(3, 9, None, true)]),
            "s.toml",
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        let ok = load_state(
            &two_way(&[line(3, 9, None, false), line(3, 9, None, true)]),
            "s.toml",
        )
        .map(|m| m.caches[0].set(3).iter().filter(|l| l.valid).count());
        let _ = std::fs::remove_file(&machine);
        assert_eq!(
            e,
            "s.toml: field `cache[1].tag` = 0x9: set 3 of L1d already has a valid line with this tag (cache[0])"
        );
        assert_eq!(ok.unwrap(), 1);
    }
}
