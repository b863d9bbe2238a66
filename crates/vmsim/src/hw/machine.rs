//! Machine descriptions: the paging format and geometry, RAM, the TLB hierarchy, the
//! page-walk caches and the latencies, read from TOML and validated into a
//! [`MachineSpec`].
//!
//! The presets are TOML files compiled into the binary (`crates/vmsim/presets/`), so
//! every preset is also a worked example of the file format. A file may start from a
//! preset (`preset = "x86-64"`) and replace whole sections of it.

use super::paging::{Format, Paging, MAX_LEVELS};
use super::pte::textbook;
use crate::size::{format_size, Size};
use serde::Deserialize;
use std::path::Path;
use thiserror::Error;

/// Why a machine description was refused.
#[derive(Debug, Error)]
pub enum MachineError {
    /// The file could not be read.
    #[error("cannot read machine file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not valid TOML or has unknown or mistyped fields.
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field has an impossible value.
    #[error("{origin}: field `{field}` = {value}: {reason}")]
    Invalid {
        /// Where the description came from.
        origin: String,
        /// The field, as a TOML path (`tlb.array[2].ways`).
        field: String,
        /// The value found.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Neither a preset nor a file has that name.
    #[error("unknown machine `{name}`: no preset has that name (presets: {known}) and there is no file {name}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The presets there are.
        known: String,
    },
    /// No preset has that name.
    #[error("unknown machine preset `{name}` (known: {known})")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The presets there are.
        known: String,
    },
}

/// The presets: name and TOML text.
pub const PRESETS: &[(&str, &str)] = &[
    ("x86-64", include_str!("../../presets/x86-64.toml")),
    (
        "x86-64-la57",
        include_str!("../../presets/x86-64-la57.toml"),
    ),
    ("sv39", include_str!("../../presets/sv39.toml")),
    ("sv48", include_str!("../../presets/sv48.toml")),
    ("textbook", include_str!("../../presets/textbook.toml")),
    (
        "textbook-2level",
        include_str!("../../presets/textbook-2level.toml"),
    ),
];

/// Which accesses a TLB serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Holds {
    /// Instruction fetches.
    Instr,
    /// Loads and stores.
    Data,
    /// Both.
    Unified,
}

/// How a set picks its victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Replacement {
    /// Least recently used.
    Lru,
    /// Tree pseudo-LRU (ways must be a power of two).
    Plru,
    /// Uniformly random, from the machine's seed.
    Random,
}

/// How the TLB levels relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Inclusion {
    /// A walk fills every level; evicting an entry from a level also removes it from
    /// the levels above (back-invalidation), so a lower level holds all the upper ones do.
    Inclusive,
    /// A walk fills every level; evictions do not reach other levels.
    NonInclusive,
}

/// One set-associative array of TLB entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlbArraySpec {
    /// Name shown in reports (`L1d-4K`).
    pub name: String,
    /// Entries in all.
    pub entries: u32,
    /// Ways per set (`entries` for a fully associative array).
    pub ways: u32,
    /// Victim choice.
    pub replacement: Replacement,
    /// Page-table levels whose leaves it holds (1 = base pages).
    pub page_levels: Vec<u32>,
}

impl TlbArraySpec {
    /// Number of sets.
    pub fn sets(&self) -> u32 {
        self.entries / self.ways
    }
}

/// One TLB: the arrays at one level of the hierarchy that serve one kind of access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlbSpec {
    /// Name shown in reports (`L1d`, `L2`).
    pub name: String,
    /// Level in the hierarchy (1 is probed first).
    pub level: u32,
    /// Which accesses it serves.
    pub holds: Holds,
    /// Its arrays, probed together.
    pub arrays: Vec<TlbArraySpec>,
    /// Cycles for a lookup, hit or miss.
    pub latency: u32,
}

/// A page-structure (walk) cache for the entries of one upper level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkCacheSpec {
    /// The page-table level whose table entries it caches (x86: 2 = PDE cache).
    pub level: u32,
    /// Entries in all.
    pub entries: u32,
    /// Ways per set.
    pub ways: u32,
    /// Victim choice.
    pub replacement: Replacement,
}

/// A validated machine description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineSpec {
    /// Name (the preset's, or the file's `name`).
    pub name: String,
    /// One line saying what it models.
    pub description: String,
    /// Format and geometry.
    pub paging: Paging,
    /// Size of RAM in bytes.
    pub ram_bytes: u64,
    /// TLBs, ordered by level.
    pub tlbs: Vec<TlbSpec>,
    /// Whether TLB and walk-cache entries carry an address-space id (x86 PCID, RISC-V
    /// ASID); if not, a context switch flushes every non-global entry.
    pub asid_tagged: bool,
    /// Width of an address-space id.
    pub asid_bits: u32,
    /// How TLB levels relate.
    pub inclusion: Inclusion,
    /// Seed for random replacement.
    pub seed: u64,
    /// Page-walk caches, by level.
    pub walk_caches: Vec<WalkCacheSpec>,
    /// Cycles for one walk-cache lookup.
    pub walk_cache_latency: u32,
    /// Cycles for one PTE read from memory.
    pub pte_read_latency: u32,
    /// Physically indexed data caches, first level first (looked up by the explain
    /// mode only).
    pub caches: Vec<super::cache::CacheSpec>,
    /// CPUs: each has its own MMU (TLBs, walk caches, loaded address space).
    pub cpus: u32,
    /// Whether the CPUs share the last-level TLBs (those of the highest level) instead
    /// of each having its own.
    pub shared_last_level_tlb: bool,
    /// Cycles a TLB shootdown costs the CPU that sends it (the interrupts and the wait
    /// for every acknowledgement).
    pub ipi_send_latency: u32,
    /// Cycles a TLB shootdown costs each CPU that receives it (the interrupt and the
    /// flush).
    pub ipi_receive_latency: u32,
}

/// Most CPUs a machine may have (an address space's CPU mask is one 64-bit word).
pub const MAX_CPUS: u32 = 64;

// ---------------------------------------------------------------------------------------
// The file format, as read. Every field optional so a file can override a preset.

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    name: Option<String>,
    description: Option<String>,
    preset: Option<String>,
    paging: Option<RawPaging>,
    memory: Option<RawMemory>,
    tlb: Option<RawTlb>,
    walk_cache: Option<Vec<RawWalkCache>>,
    latency: Option<RawLatency>,
    cache: Option<Vec<RawCache>>,
    cpu: Option<RawCpu>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawCpu {
    count: Option<u32>,
    shared_last_level_tlb: Option<bool>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RawCache {
    name: Option<String>,
    size: Size,
    ways: Option<u32>,
    line: Size,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RawPaging {
    format: String,
    va_bits: Option<u32>,
    pa_bits: Option<u32>,
    page_size: Option<Size>,
    level_bits: Option<Vec<u32>>,
    pte_bytes: Option<u32>,
    huge_leaf_levels: Option<Vec<u32>>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    ram: Size,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawTlb {
    asid_tagged: Option<bool>,
    asid_bits: Option<u32>,
    inclusion: Option<Inclusion>,
    seed: Option<u64>,
    #[serde(default)]
    array: Vec<RawTlbArray>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum Ways {
    N(u32),
    Full(String),
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RawTlbArray {
    name: Option<String>,
    level: u32,
    holds: Holds,
    entries: u32,
    ways: Ways,
    replacement: Option<Replacement>,
    page_sizes: Vec<Size>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RawWalkCache {
    level: u32,
    entries: u32,
    ways: Ways,
    replacement: Option<Replacement>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    tlb: Option<Vec<u32>>,
    walk_cache: Option<u32>,
    pte_read: Option<u32>,
    ipi_send: Option<u32>,
    ipi_receive: Option<u32>,
}

/// The fixed geometry of a real format.
struct RealFormat {
    name: &'static str,
    format: Format,
    va_bits: u32,
    max_pa_bits: u32,
    levels: usize,
    leaf_levels: &'static [u32],
}

fn real_format(name: &str) -> Option<RealFormat> {
    let (name, format, va_bits, max_pa_bits, levels, leaf_levels): (_, _, _, _, _, &'static [u32]) =
        match name {
            "x86-64" => ("x86-64", Format::X86_64, 48, 52, 4, &[1, 2, 3]),
            "x86-64-la57" => ("x86-64-la57", Format::X86_64, 57, 52, 5, &[1, 2, 3]),
            "sv39" => ("sv39", Format::Riscv, 39, 56, 3, &[1, 2, 3]),
            "sv48" => ("sv48", Format::Riscv, 48, 56, 4, &[1, 2, 3, 4]),
            "sv57" => ("sv57", Format::Riscv, 57, 56, 5, &[1, 2, 3, 4, 5]),
            _ => return None,
        };
    Some(RealFormat {
        name,
        format,
        va_bits,
        max_pa_bits,
        levels,
        leaf_levels,
    })
}

const FORMATS: &str = "x86-64, x86-64-la57, sv39, sv48, sv57, textbook";

struct Check<'a> {
    origin: &'a str,
}

impl Check<'_> {
    fn fail<T>(
        &self,
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Result<T, MachineError> {
        Err(MachineError::Invalid {
            origin: self.origin.to_string(),
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        })
    }
}

fn list(v: &[u32]) -> String {
    format!("{v:?}")
}

/// The presets' names, comma-separated, for errors.
fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The TOML text of preset `name`.
fn preset_text(name: &str) -> Result<&'static str, MachineError> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| MachineError::UnknownPreset {
            name: name.to_string(),
            known: preset_names(),
        })
}

impl MachineSpec {
    /// The preset called `name`.
    pub fn preset(name: &str) -> Result<MachineSpec, MachineError> {
        Self::from_toml(preset_text(name)?, &format!("preset {name}"))
    }

    /// A preset name or the path of a TOML file.
    pub fn load(name_or_path: &str) -> Result<MachineSpec, MachineError> {
        if PRESETS.iter().any(|(n, _)| *n == name_or_path) {
            return Self::preset(name_or_path);
        }
        let path = Path::new(name_or_path);
        if !path.exists() && !name_or_path.ends_with(".toml") && !name_or_path.contains('/') {
            return Err(MachineError::Unknown {
                name: name_or_path.to_string(),
                known: preset_names(),
            });
        }
        Self::from_file(path)
    }

    /// Reads a machine description file.
    pub fn from_file(path: &Path) -> Result<MachineSpec, MachineError> {
        let text = std::fs::read_to_string(path).map_err(|source| MachineError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates a description; `origin` names its source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<MachineSpec, MachineError> {
        let raw = parse_raw(text, origin)?;
        let raw = match raw.preset.clone() {
            None => raw,
            Some(p) => {
                let text = preset_text(&p)?;
                let base = parse_raw(text, &format!("preset {p}"))?;
                RawMachine {
                    name: raw.name.or(base.name),
                    description: raw.description.or(base.description),
                    preset: None,
                    paging: raw.paging.or(base.paging),
                    memory: raw.memory.or(base.memory),
                    tlb: raw.tlb.or(base.tlb),
                    walk_cache: raw.walk_cache.or(base.walk_cache),
                    latency: raw.latency.or(base.latency),
                    cache: raw.cache.or(base.cache),
                    cpu: raw.cpu.or(base.cpu),
                }
            }
        };
        validate(raw, origin)
    }

    /// The same machine with `bytes` of RAM, validated as a file's `memory.ram` would be.
    pub fn with_ram(mut self, bytes: u64, origin: &str) -> Result<MachineSpec, MachineError> {
        check_ram(&Check { origin }, &self.paging, bytes)?;
        self.ram_bytes = bytes;
        Ok(self)
    }

    /// The same machine with every array of its level-`level` TLBs resized to
    /// `entries` entries (ways kept, or `entries` if fewer), validated as a file's
    /// would be. A sweep's TLB-size axis.
    pub fn with_tlb_entries(
        mut self,
        level: u32,
        entries: u32,
        origin: &str,
    ) -> Result<MachineSpec, MachineError> {
        let c = Check { origin };
        let mut found = false;
        for t in self.tlbs.iter_mut().filter(|t| t.level == level) {
            found = true;
            for a in &mut t.arrays {
                let ways = a.ways.min(entries).max(1);
                let prefix = format!("tlb {}.{}", t.name, a.name);
                check_assoc(&c, &prefix, entries, ways, a.replacement)?;
                a.entries = entries;
                a.ways = ways;
            }
        }
        if !found {
            return c.fail(
                "tlb.level".to_string(),
                level,
                "the machine has no TLB at that level",
            );
        }
        Ok(self)
    }

    /// The same machine with `cpus` CPUs, validated as a file's `cpu.count` would be.
    pub fn with_cpus(mut self, cpus: u32, origin: &str) -> Result<MachineSpec, MachineError> {
        let c = Check { origin };
        check_cpus(&c, cpus)?;
        check_asids_for_cpus(&c, self.asid_tagged, self.asid_bits, cpus)?;
        self.cpus = cpus;
        Ok(self)
    }

    /// Number of frames of RAM.
    pub fn nr_frames(&self) -> u64 {
        self.ram_bytes >> self.paging.page_shift
    }

    /// Number of TLB levels.
    pub fn tlb_levels(&self) -> u32 {
        self.tlbs.iter().map(|t| t.level).max().unwrap_or(0)
    }

    /// The TOML text of preset `name`, or of the file `name`.
    pub fn toml_text(name: &str) -> Result<String, MachineError> {
        match preset_text(name) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => std::fs::read_to_string(name).map_err(|source| MachineError::Io {
                path: name.to_string(),
                source,
            }),
        }
    }

    /// Everything about the machine, as `vmsim machines NAME` prints it: geometry, each
    /// TLB array, the walk caches, ASIDs and latencies.
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut t = format!(
            "{}: {}\n  {}\n",
            self.name,
            self.description,
            self.summary()
        );
        for tlb in &self.tlbs {
            let _ = writeln!(
                t,
                "  TLB {} (level {}, {:?}, {} cycles):",
                tlb.name, tlb.level, tlb.holds, tlb.latency
            );
            for a in &tlb.arrays {
                let sizes: Vec<String> = a
                    .page_levels
                    .iter()
                    .map(|&l| crate::size::format_size(self.paging.leaf_size(l)))
                    .collect();
                let assoc = if a.ways == a.entries {
                    "fully associative".to_string()
                } else {
                    format!("{}-way", a.ways)
                };
                let _ = writeln!(
                    t,
                    "    {:<10} {} entries, {} ({} sets), {:?}, pages {}",
                    a.name,
                    a.entries,
                    assoc,
                    a.sets(),
                    a.replacement,
                    sizes.join("/")
                );
            }
        }
        for w in &self.walk_caches {
            let _ = writeln!(
                t,
                "  walk cache for level {} ({}): {} entries, {}-way",
                w.level,
                self.paging.table_name(w.level),
                w.entries,
                w.ways
            );
        }
        let asids = if self.asid_tagged {
            format!("{} bits", self.asid_bits)
        } else {
            "none (flush on switch)".into()
        };
        let _ = writeln!(
            t,
            "  ASIDs: {asids}; inclusion {:?}; PTE read {} cycles, walk-cache lookup {} cycles",
            self.inclusion, self.pte_read_latency, self.walk_cache_latency
        );
        if self.cpus > 1 {
            let _ = writeln!(
                t,
                "  CPUs: {}, each with its own {}walk caches; a TLB shootdown costs its sender {} cycles and each receiver {}",
                self.cpus,
                if self.shared_last_level_tlb {
                    "first-level TLBs (the last level's shared) and "
                } else {
                    "TLBs and "
                },
                self.ipi_send_latency,
                self.ipi_receive_latency
            );
        }
        t
    }

    /// A one-line summary of the geometry, for listings.
    pub fn summary(&self) -> String {
        let p = &self.paging;
        let sizes: Vec<String> = p
            .leaf_levels()
            .map(|l| format_size(p.leaf_size(l)))
            .collect();
        let bits: Vec<String> = (1..=p.levels)
            .rev()
            .map(|l| p.level_bits(l).to_string())
            .collect();
        let caches: String = self
            .caches
            .iter()
            .map(|c| {
                format!(
                    ", {} cache {} {}-way {}-byte lines",
                    c.name,
                    format_size(c.size()),
                    c.ways,
                    c.line_bytes
                )
            })
            .collect();
        format!(
            "{}-bit VA, {}-bit PA, {} levels [{}], pages {}, {}-byte PTE, {} RAM, {} TLBs, {} walk caches{caches}",
            p.va_bits,
            p.pa_bits,
            p.levels,
            bits.join(","),
            sizes.join("/"),
            p.pte_bytes,
            format_size(self.ram_bytes),
            self.tlbs.len(),
            self.walk_caches.len()
        ) + &if self.cpus > 1 {
            format!(", {} CPUs", self.cpus)
        } else {
            String::new()
        }
    }
}

fn check_cpus(c: &Check, cpus: u32) -> Result<(), MachineError> {
    if !(1..=MAX_CPUS).contains(&cpus) {
        return c.fail(
            "cpu.count",
            cpus,
            format!("must be between 1 and {MAX_CPUS}"),
        );
    }
    Ok(())
}

/// Every CPU may hold an address space with an id of its own: after a roll-over each
/// one keeps running under a fresh id at once, so the ids must outnumber the CPUs.
fn check_asids_for_cpus(c: &Check, tagged: bool, bits: u32, cpus: u32) -> Result<(), MachineError> {
    let ids = (1u64 << bits) - 1;
    if tagged && ids < cpus as u64 {
        return c.fail(
            "tlb.asid_bits",
            bits,
            format!("{bits}-bit ids name {ids} address spaces, fewer than the {cpus} CPUs that may each be running one"),
        );
    }
    Ok(())
}

fn parse_raw(text: &str, origin: &str) -> Result<RawMachine, MachineError> {
    toml::from_str(text).map_err(|e| MachineError::Parse {
        origin: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn check_ram(c: &Check, p: &Paging, ram: u64) -> Result<(), MachineError> {
    let f = "memory.ram";
    if ram == 0 || ram % p.page_size() != 0 {
        return c.fail(
            f,
            ram,
            format!(
                "must be a positive multiple of the page size ({} bytes)",
                p.page_size()
            ),
        );
    }
    if p.pa_bits < 64 && ram > 1u64 << p.pa_bits {
        return c.fail(
            f,
            format_size(ram),
            format!("more than a {}-bit physical address reaches", p.pa_bits),
        );
    }
    // Frame numbers, the four reclaim lists' sentinels after them, and each plus one
    // must fit 32 bits.
    if ram >> p.page_shift > u32::MAX as u64 - 5 {
        return c.fail(f, format_size(ram), "more than 2^32 - 5 frames");
    }
    Ok(())
}

fn ways_of(c: &Check, field: &str, ways: &Ways, entries: u32) -> Result<u32, MachineError> {
    match ways {
        Ways::N(n) => Ok(*n),
        Ways::Full(s) if s == "full" => Ok(entries),
        Ways::Full(s) => c.fail(
            field,
            format!("{s:?}"),
            "must be a number of ways or \"full\"",
        ),
    }
}

fn check_assoc(
    c: &Check,
    prefix: &str,
    entries: u32,
    ways: u32,
    repl: Replacement,
) -> Result<(), MachineError> {
    if entries == 0 {
        return c.fail(format!("{prefix}.entries"), entries, "must be at least 1");
    }
    if ways == 0 || entries % ways != 0 {
        return c.fail(
            format!("{prefix}.ways"),
            ways,
            format!("must divide entries ({entries})"),
        );
    }
    let sets = entries / ways;
    if !sets.is_power_of_two() {
        return c.fail(
            format!("{prefix}.ways"),
            ways,
            format!(
                "gives {sets} sets ({entries}/{ways}); the number of sets must be a power of two"
            ),
        );
    }
    if repl == Replacement::Plru && !ways.is_power_of_two() {
        return c.fail(
            format!("{prefix}.replacement"),
            "\"plru\"",
            format!("tree pseudo-LRU needs a power-of-two number of ways, not {ways}"),
        );
    }
    if repl == Replacement::Plru && ways > 64 {
        return c.fail(
            format!("{prefix}.replacement"),
            "\"plru\"",
            format!("tree pseudo-LRU is modelled for at most 64 ways, not {ways}"),
        );
    }
    if ways > 4096 {
        return c.fail(format!("{prefix}.ways"), ways, "at most 4096 ways");
    }
    Ok(())
}

fn validate_paging(c: &Check, raw: &RawPaging) -> Result<Paging, MachineError> {
    if raw.format == "textbook" {
        return validate_textbook(c, raw);
    }
    let Some(RealFormat {
        name,
        format,
        va_bits,
        max_pa_bits: max_pa,
        levels,
        leaf_levels: leaves,
    }) = real_format(&raw.format)
    else {
        return c.fail(
            "paging.format",
            format!("{:?}", raw.format),
            format!("unknown format (known: {FORMATS})"),
        );
    };
    let fixed = |field: &str, given: Option<u32>, real: u32| -> Result<(), MachineError> {
        match given {
            Some(g) if g != real => c.fail(
                format!("paging.{field}"),
                g,
                format!("{} fixes this at {real}; remove the field, or use format = \"textbook\" for another geometry", raw.format),
            ),
            _ => Ok(()),
        }
    };
    let bits = vec![9; levels];
    fixed("va_bits", raw.va_bits, va_bits)?;
    fixed("pte_bytes", raw.pte_bytes, 8)?;
    fixed("page_size", raw.page_size.map(|s| s.0 as u32), 4096)?;
    if let Some(b) = &raw.level_bits {
        if *b != bits {
            return c.fail(
                "paging.level_bits",
                list(b),
                format!("{} fixes this at {}", raw.format, list(&bits)),
            );
        }
    }
    if let Some(h) = &raw.huge_leaf_levels {
        return c.fail(
            "paging.huge_leaf_levels",
            list(h),
            format!(
                "{} fixes its huge-page levels; this field is for textbook machines",
                raw.format
            ),
        );
    }
    let pa_bits = raw.pa_bits.unwrap_or(max_pa);
    if !(13..=max_pa).contains(&pa_bits) {
        return c.fail(
            "paging.pa_bits",
            pa_bits,
            format!("{} allows 13 to {max_pa}", raw.format),
        );
    }
    Ok(Paging::new(
        format, name, va_bits, pa_bits, 12, &bits, 8, leaves, true,
    ))
}

fn validate_textbook(c: &Check, raw: &RawPaging) -> Result<Paging, MachineError> {
    let need = |field: &str, v: Option<u32>| -> Result<u32, MachineError> {
        v.map_or_else(
            || {
                c.fail(
                    format!("paging.{field}"),
                    "(missing)",
                    "a textbook machine must give it",
                )
            },
            Ok,
        )
    };
    let va_bits = need("va_bits", raw.va_bits)?;
    let pa_bits = need("pa_bits", raw.pa_bits)?;
    let pte_bytes = need("pte_bytes", raw.pte_bytes)?;
    let page_size = raw.page_size.map_or_else(
        || {
            c.fail(
                "paging.page_size",
                "(missing)",
                "a textbook machine must give it",
            )
        },
        |s| Ok(s.0),
    )?;
    let bits = raw.level_bits.clone().map_or_else(
        || {
            c.fail(
                "paging.level_bits",
                "(missing)",
                "a textbook machine must give the index bits of each level, root first",
            )
        },
        Ok,
    )?;
    if !(1..=64).contains(&va_bits) {
        return c.fail("paging.va_bits", va_bits, "must be 1 to 64");
    }
    if !(1..=64).contains(&pa_bits) {
        return c.fail("paging.pa_bits", pa_bits, "must be 1 to 64");
    }
    if !page_size.is_power_of_two() || page_size < 16 {
        return c.fail(
            "paging.page_size",
            page_size,
            "must be a power of two of at least 16 bytes",
        );
    }
    let page_shift = page_size.trailing_zeros();
    if page_shift >= pa_bits || page_shift >= va_bits {
        return c.fail(
            "paging.page_size",
            page_size,
            format!(
                "must be smaller than both address spaces (va_bits {va_bits}, pa_bits {pa_bits})"
            ),
        );
    }
    if ![1, 2, 4, 8].contains(&pte_bytes) {
        return c.fail("paging.pte_bytes", pte_bytes, "must be 1, 2, 4 or 8");
    }
    if pte_bytes as u64 > page_size {
        return c.fail(
            "paging.pte_bytes",
            pte_bytes,
            format!("larger than a page ({page_size} bytes)"),
        );
    }
    let ppn_need = pa_bits - page_shift;
    let ppn_have = textbook::ppn_bits(pte_bytes);
    if ppn_have < ppn_need {
        return c.fail(
            "paging.pte_bytes",
            pte_bytes,
            format!("a {pte_bytes}-byte textbook PTE holds {ppn_have} bits of frame number after its 8 flag bits; {pa_bits}-bit PA with {page_size}-byte pages needs {ppn_need}"),
        );
    }
    if bits.is_empty() || bits.len() > MAX_LEVELS {
        return c.fail(
            "paging.level_bits",
            list(&bits),
            format!("must list 1 to {MAX_LEVELS} levels"),
        );
    }
    if let Some(b) = bits.iter().find(|&&b| b == 0 || b > 32) {
        return c.fail(
            "paging.level_bits",
            list(&bits),
            format!("each level needs 1 to 32 index bits, not {b}"),
        );
    }
    let covered = page_shift + bits.iter().sum::<u32>();
    if covered != va_bits {
        return c.fail(
            "paging.level_bits",
            list(&bits),
            format!("{} index bits + {page_shift} offset bits = {covered}, but va_bits is {va_bits}: the levels must cover the address exactly", bits.iter().sum::<u32>()),
        );
    }
    let levels = bits.len() as u32;
    let huge = raw.huge_leaf_levels.clone().unwrap_or_default();
    if let Some(&l) = huge.iter().find(|&&l| l < 2 || l > levels) {
        return c.fail(
            "paging.huge_leaf_levels",
            list(&huge),
            format!(
                "level {l} is not an upper level (2 to {levels}; level 1 always holds base pages)"
            ),
        );
    }
    Ok(Paging::new(
        Format::Textbook,
        "textbook",
        va_bits,
        pa_bits,
        page_shift,
        &bits,
        pte_bytes,
        &huge,
        false,
    ))
}

fn validate(raw: RawMachine, origin: &str) -> Result<MachineSpec, MachineError> {
    let c = Check { origin };
    let Some(raw_paging) = raw.paging.as_ref() else {
        return c.fail(
            "paging",
            "(missing)",
            "a machine needs a [paging] section or a preset",
        );
    };
    let paging = validate_paging(&c, raw_paging)?;
    let ram_bytes = match &raw.memory {
        Some(m) => m.ram.0,
        None => return c.fail("memory.ram", "(missing)", "a machine needs its RAM size"),
    };
    check_ram(&c, &paging, ram_bytes)?;

    let tlb = raw.tlb.clone().unwrap_or_default();
    let latency = raw.latency.clone().unwrap_or_default();
    let cpus = raw.cpu.as_ref().and_then(|c| c.count).unwrap_or(1);
    check_cpus(&c, cpus)?;
    let shared_last_level_tlb = raw
        .cpu
        .as_ref()
        .and_then(|c| c.shared_last_level_tlb)
        .unwrap_or(false);
    if shared_last_level_tlb && !tlb.asid_tagged.unwrap_or(true) {
        return c.fail(
            "cpu.shared_last_level_tlb",
            true,
            "a TLB shared by CPUs running different address spaces needs tlb.asid_tagged = true, or it would mix their entries",
        );
    }
    let asid_bits = tlb.asid_bits.unwrap_or(match paging.format {
        Format::X86_64 => 12,
        Format::Riscv => 16,
        Format::Textbook => 8,
    });
    if !(1..=16).contains(&asid_bits) {
        return c.fail("tlb.asid_bits", asid_bits, "must be 1 to 16");
    }
    check_asids_for_cpus(&c, tlb.asid_tagged.unwrap_or(true), asid_bits, cpus)?;

    let mut tlbs: Vec<TlbSpec> = Vec::new();
    for (i, a) in tlb.array.iter().enumerate() {
        let prefix = format!("tlb.array[{i}]");
        let ways = ways_of(&c, &format!("{prefix}.ways"), &a.ways, a.entries)?;
        let repl = a.replacement.unwrap_or(Replacement::Lru);
        check_assoc(&c, &prefix, a.entries, ways, repl)?;
        if a.level == 0 || a.level > 8 {
            return c.fail(
                format!("{prefix}.level"),
                a.level,
                "TLB levels are numbered 1 to 8",
            );
        }
        if a.page_sizes.is_empty() {
            return c.fail(
                format!("{prefix}.page_sizes"),
                "[]",
                "an array must hold at least one page size",
            );
        }
        let mut page_levels = Vec::new();
        for s in &a.page_sizes {
            match paging.level_of_page_size(s.0) {
                Some(l) if !page_levels.contains(&l) => page_levels.push(l),
                Some(_) => {
                    return c.fail(
                        format!("{prefix}.page_sizes"),
                        format_size(s.0),
                        "listed twice",
                    )
                }
                None => {
                    let have: Vec<String> = paging
                        .leaf_levels()
                        .map(|l| format_size(paging.leaf_size(l)))
                        .collect();
                    return c.fail(
                        format!("{prefix}.page_sizes"),
                        format_size(s.0),
                        format!("not a page size of this machine ({})", have.join(", ")),
                    );
                }
            }
        }
        let name = a
            .name
            .clone()
            .unwrap_or_else(|| format!("L{}{}-{i}", a.level, holds_suffix(a.holds)));
        let spec = TlbArraySpec {
            name,
            entries: a.entries,
            ways,
            replacement: repl,
            page_levels,
        };
        match tlbs
            .iter_mut()
            .find(|t| t.level == a.level && t.holds == a.holds)
        {
            Some(t) => {
                if let Some(&l) = spec
                    .page_levels
                    .iter()
                    .find(|l| t.arrays.iter().any(|x| x.page_levels.contains(l)))
                {
                    return c.fail(
                        format!("{prefix}.page_sizes"),
                        format_size(paging.leaf_size(l)),
                        format!(
                            "another array of TLB L{}{} already holds this page size",
                            a.level,
                            holds_suffix(a.holds)
                        ),
                    );
                }
                t.arrays.push(spec);
            }
            None => tlbs.push(TlbSpec {
                name: format!("L{}{}", a.level, holds_suffix(a.holds)),
                level: a.level,
                holds: a.holds,
                arrays: vec![spec],
                latency: 0,
            }),
        }
    }
    tlbs.sort_by_key(|t| (t.level, t.holds as u8));
    let max_level = tlbs.iter().map(|t| t.level).max().unwrap_or(0);
    for level in 1..=max_level {
        let at: Vec<&TlbSpec> = tlbs.iter().filter(|t| t.level == level).collect();
        if at.is_empty() {
            return c.fail(
                "tlb.array",
                format!("levels 1..{max_level}"),
                format!("no array at TLB level {level}: levels must be numbered without gaps"),
            );
        }
        if at.iter().any(|t| t.holds == Holds::Unified) && at.len() > 1 {
            return c.fail(
                "tlb.array",
                format!("level {level}"),
                "a level is either unified or split into instr and data, not both",
            );
        }
    }
    let lat = latency.tlb.clone().unwrap_or_else(|| {
        (1..=max_level)
            .map(|l| if l == 1 { 1 } else { 8 * (l - 1) })
            .collect()
    });
    if lat.len() != max_level as usize {
        return c.fail(
            "latency.tlb",
            list(&lat),
            format!("give one latency per TLB level ({max_level})"),
        );
    }
    for t in &mut tlbs {
        t.latency = lat[t.level as usize - 1];
    }

    let mut walk_caches: Vec<WalkCacheSpec> = Vec::new();
    for (i, w) in raw
        .walk_cache
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let prefix = format!("walk_cache[{i}]");
        let ways = ways_of(&c, &format!("{prefix}.ways"), &w.ways, w.entries)?;
        let repl = w.replacement.unwrap_or(Replacement::Lru);
        check_assoc(&c, &prefix, w.entries, ways, repl)?;
        if w.level < 2 || w.level > paging.levels {
            return c.fail(
                format!("{prefix}.level"),
                w.level,
                format!(
                    "walk caches hold entries of upper levels (2 to {})",
                    paging.levels
                ),
            );
        }
        if walk_caches.iter().any(|x| x.level == w.level) {
            return c.fail(
                format!("{prefix}.level"),
                w.level,
                "two walk caches for the same level",
            );
        }
        walk_caches.push(WalkCacheSpec {
            level: w.level,
            entries: w.entries,
            ways,
            replacement: repl,
        });
    }
    walk_caches.sort_by_key(|w| w.level);

    let mut caches = Vec::new();
    for (i, rc) in raw.cache.iter().flatten().enumerate() {
        let prefix = format!("cache[{i}]");
        let line = rc.line.0;
        let ways = rc.ways.unwrap_or(1);
        if !line.is_power_of_two() || !(1..=4096).contains(&line) {
            return c.fail(
                format!("{prefix}.line"),
                line,
                "must be a power of two from 1 to 4096 bytes",
            );
        }
        if ways == 0 || ways > 64 {
            return c.fail(format!("{prefix}.ways"), ways, "must be 1 to 64");
        }
        let per_set = line * ways as u64;
        if rc.size.0 == 0 || rc.size.0 % per_set != 0 || !(rc.size.0 / per_set).is_power_of_two() {
            return c.fail(
                format!("{prefix}.size"),
                rc.size.0,
                format!("must be a power-of-two number of sets of {ways} lines of {line} bytes"),
            );
        }
        let sets = rc.size.0 / per_set;
        if sets > 1 << 20 {
            return c.fail(format!("{prefix}.size"), rc.size.0, "at most 2^20 sets");
        }
        caches.push(super::cache::CacheSpec {
            name: rc.name.clone().unwrap_or_else(|| format!("L{}d", i + 1)),
            sets: sets as u32,
            ways,
            line_bytes: line as u32,
        });
    }

    Ok(MachineSpec {
        caches,
        name: raw.name.unwrap_or_else(|| "unnamed".into()),
        description: raw.description.unwrap_or_default(),
        paging,
        ram_bytes,
        tlbs,
        asid_tagged: tlb.asid_tagged.unwrap_or(true),
        asid_bits,
        inclusion: tlb.inclusion.unwrap_or(Inclusion::NonInclusive),
        seed: tlb.seed.unwrap_or(0x5eed),
        walk_caches,
        walk_cache_latency: latency.walk_cache.unwrap_or(2),
        pte_read_latency: latency.pte_read.unwrap_or(30),
        cpus,
        shared_last_level_tlb,
        ipi_send_latency: latency.ipi_send.unwrap_or(DEFAULT_IPI_SEND),
        ipi_receive_latency: latency.ipi_receive.unwrap_or(DEFAULT_IPI_RECEIVE),
    })
}

/// Cycles a shootdown costs its sender by default: about 2 µs at 3 GHz, the order
/// measured for a two-socket x86 server's IPI round trip.
const DEFAULT_IPI_SEND: u32 = 6_000;
/// Cycles a shootdown costs each receiver by default: the interrupt's entry and exit
/// and the flush, about 0.5 µs at 3 GHz.
const DEFAULT_IPI_RECEIVE: u32 = 1_500;

fn holds_suffix(h: Holds) -> &'static str {
    match h {
        Holds::Instr => "i",
        Holds::Data => "d",
        Holds::Unified => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        MachineSpec::from_toml(text, "test.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_preset_validates() {
        for (name, _) in PRESETS {
            let m = MachineSpec::preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&m.name, name);
            assert!(!m.description.is_empty(), "{name} needs a description");
        }
    }

    #[test]
    fn x86_preset_geometry() {
        let m = MachineSpec::preset("x86-64").unwrap();
        assert_eq!(m.paging.va_bits, 48);
        assert_eq!(m.paging.levels, 4);
        assert_eq!(m.paging.leaf_levels().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(m.asid_tagged);
        assert_eq!(m.asid_bits, 12);
        let la57 = MachineSpec::preset("x86-64-la57").unwrap();
        assert_eq!(la57.paging.levels, 5);
        assert_eq!(la57.paging.va_bits, 57);
    }

    #[test]
    fn textbook_preset_is_the_course_machine() {
        let m = MachineSpec::preset("textbook").unwrap();
        assert_eq!(
            (m.paging.va_bits, m.paging.pa_bits, m.paging.page_size()),
            (14, 12, 64)
        );
        assert_eq!(m.paging.levels, 1);
        assert_eq!(m.tlbs.len(), 1);
        assert_eq!(m.tlbs[0].arrays[0].sets(), 4);
    }

    #[test]
    fn a_file_can_start_from_a_preset() {
        let m = MachineSpec::from_toml(
            "preset = \"x86-64\"\nname = \"small\"\n[memory]\nram = \"1GiB\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(m.name, "small");
        assert_eq!(m.ram_bytes, 1 << 30);
        assert_eq!(m.paging.levels, 4);
    }

    #[test]
    fn impossible_descriptions_name_the_field() {
        let base = "[paging]\nformat = \"textbook\"\nva_bits = 14\npa_bits = 12\npage_size = 64\nlevel_bits = [8]\npte_bytes = 2\n[memory]\nram = 4096\n";
        MachineSpec::from_toml(base, "t").unwrap();
        let e = err(&base.replace("page_size = 64", "page_size = 48"));
        assert!(
            e.contains("paging.page_size") && e.contains("48") && e.contains("power of two"),
            "{e}"
        );
        let e = err(&base.replace("level_bits = [8]", "level_bits = [4, 3]"));
        assert!(
            e.contains("paging.level_bits") && e.contains("cover"),
            "{e}"
        );
        let e = err(&base
            .replace("va_bits = 14", "va_bits = 65")
            .replace("level_bits = [8]", "level_bits = [59]"));
        assert!(e.contains("paging.va_bits") && e.contains("65"), "{e}");
        let e = err(&base.replace("pte_bytes = 2", "pte_bytes = 1"));
        assert!(e.contains("paging.pte_bytes"), "{e}");
        let e = err(&base.replace("ram = 4096", "ram = 8192"));
        assert!(e.contains("memory.ram") && e.contains("12-bit"), "{e}");
        let e = err(&base.replace("ram = 4096", "ram = 100"));
        assert!(e.contains("memory.ram") && e.contains("multiple"), "{e}");
        let tlb = "[[tlb.array]]\nlevel = 1\nholds = \"unified\"\nentries = 16\nways = 3\npage_sizes = [64]\n";
        let e = err(&format!("{base}{tlb}"));
        assert!(e.contains("tlb.array[0].ways") && e.contains("= 3"), "{e}");
        let e = err(&format!(
            "{base}{}",
            tlb.replace("ways = 3", "ways = 4")
                .replace("[64]", "[\"4KiB\"]")
        ));
        assert!(
            e.contains("tlb.array[0].page_sizes") && e.contains("4 KiB"),
            "{e}"
        );
        let e = err(&format!(
            "{base}{}",
            tlb.replace("entries = 16", "entries = 24")
                .replace("ways = 3", "ways = 4")
        ));
        assert!(e.contains("6 sets") && e.contains("power of two"), "{e}");
        let e = err(&format!(
            "{base}{}",
            tlb.replace("ways = 3", "ways = \"all\"")
        ));
        assert!(e.contains("tlb.array[0].ways"), "{e}");
        let e = err("[paging]\nformat = \"pdp-11\"\n[memory]\nram = 4096\n");
        assert!(e.contains("paging.format") && e.contains("pdp-11"), "{e}");
        let e = err("[paging]\nformat = \"x86-64\"\nva_bits = 40\n[memory]\nram = 4096\n");
        assert!(e.contains("paging.va_bits") && e.contains("48"), "{e}");
        let e = err("[paging]\nformat = \"x86-64\"\n[memory]\nram = \"1GiB\"\n[[walk_cache]]\nlevel = 1\nentries = 4\nways = \"full\"\n");
        assert!(e.contains("walk_cache[0].level"), "{e}");
    }

    #[test]
    fn unknown_fields_and_bad_toml_are_reported_with_position() {
        let e = err("[paging]\nformat = \"x86-64\"\nwidth = 3\n");
        assert!(e.contains("width") && e.contains("line 3"), "{e}");
        let e = err("[paging\n");
        assert!(e.contains("test.toml") && e.contains("line 1"), "{e}");
        let e = err("[paging]\nformat = \"x86-64\"\n[memory]\nram = \"4 furlongs\"\n");
        assert!(e.contains("furlongs"), "{e}");
        let e = MachineSpec::load("no-such-preset").unwrap_err().to_string();
        assert!(
            e.contains("no preset") && e.contains("no file no-such-preset"),
            "{e}"
        );
        assert!(MachineSpec::load("/no/such/file.toml")
            .unwrap_err()
            .to_string()
            .contains("/no/such/file.toml"));
    }

    #[test]
    fn with_ram_checks_the_size() {
        let m = MachineSpec::preset("textbook").unwrap();
        assert!(m
            .clone()
            .with_ram(1 << 20, "--ram")
            .unwrap_err()
            .to_string()
            .contains("--ram"));
        assert_eq!(m.with_ram(2048, "--ram").unwrap().nr_frames(), 32);
    }
}
