//! `vmsim trace stat`: what a trace holds (length, footprint, access mix, processes).

use super::{for_each_batch, Event, EventReader, TraceError};
use crate::hw::AccessKind;
use rustc_hash::FxHashSet;
use serde::Serialize;
use std::collections::BTreeMap;

/// A summary of a trace.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TraceStat {
    /// Events of every kind.
    pub events: u64,
    /// Memory accesses.
    pub accesses: u64,
    /// Loads.
    pub reads: u64,
    /// Stores.
    pub writes: u64,
    /// Instruction fetches.
    pub fetches: u64,
    /// Bytes accessed (the sum of access sizes).
    pub bytes: u64,
    /// Distinct (process, page) pairs touched.
    pub footprint_pages: u64,
    /// The page size the footprint is counted in.
    pub page_size: u64,
    /// Distinct pages touched by fetches.
    pub text_pages: u64,
    /// Lowest and highest address accessed.
    pub min_address: Option<u64>,
    /// Highest address accessed.
    pub max_address: Option<u64>,
    /// Processes (trace pids) seen.
    pub processes: Vec<u32>,
    /// OS events by name (`mmap`, `fork`, ...).
    pub os_events: BTreeMap<String, u64>,
}

fn name(e: &Event) -> &'static str {
    match e {
        Event::Access(_) => "access",
        Event::Spawn { .. } => "spawn",
        Event::Mmap { .. } => "mmap",
        Event::Munmap { .. } => "munmap",
        Event::Mprotect { .. } => "mprotect",
        Event::Brk { .. } => "brk",
        Event::Fork { .. } => "fork",
        Event::Exec { .. } => "exec",
        Event::Exit { .. } => "exit",
        Event::Switch { .. } => "switch",
        Event::ShmAttach { .. } => "shm",
        Event::Thread { .. } => "thread",
        Event::ThreadExit { .. } => "thread-exit",
        Event::ExecImage { .. } => "exec-image",
        Event::Mremap { .. } => "mremap",
        Event::Madvise { .. } => "madvise",
        Event::ShmDetach { .. } => "shmdt",
        Event::Syscall { .. } => "syscall",
        Event::ThpDisable { .. } => "thp-disable",
    }
}

/// Reads the whole trace and summarises it, counting pages of `page_size` bytes.
pub fn stat(reader: &mut EventReader, page_size: u64) -> Result<TraceStat, TraceError> {
    let shift = page_size.max(1).trailing_zeros();
    let mut s = TraceStat {
        page_size,
        ..TraceStat::default()
    };
    let mut pages: FxHashSet<(u32, u64)> = FxHashSet::default();
    let mut text: FxHashSet<(u32, u64)> = FxHashSet::default();
    let mut pids: FxHashSet<u32> = FxHashSet::default();
    let each = |batch: &[Event]| {
        for e in batch {
            s.events += 1;
            pids.insert(e.pid());
            if let Event::Fork { child, .. } = e {
                pids.insert(*child);
            }
            let Event::Access(a) = e else {
                *s.os_events.entry(name(e).to_string()).or_default() += 1;
                continue;
            };
            s.accesses += 1;
            s.bytes += a.size as u64;
            match a.kind {
                AccessKind::Read => s.reads += 1,
                AccessKind::Write => s.writes += 1,
                AccessKind::Execute => {
                    s.fetches += 1;
                    text.insert((a.pid, a.va.vpn(shift).0));
                }
            }
            pages.insert((a.pid, a.va.vpn(shift).0));
            s.min_address = Some(s.min_address.map_or(a.va.0, |m| m.min(a.va.0)));
            s.max_address = Some(s.max_address.map_or(a.va.0, |m| m.max(a.va.0)));
        }
        Ok::<_, TraceError>(())
    };
    for_each_batch(|b| reader.next_batch(b), each)?;
    s.footprint_pages = pages.len() as u64;
    s.text_pages = text.len() as u64;
    s.processes = pids.into_iter().collect();
    s.processes.sort_unstable();
    Ok(s)
}

impl TraceStat {
    /// The summary as text.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let pct = |n: u64| {
            if self.accesses == 0 {
                0.0
            } else {
                100.0 * n as f64 / self.accesses as f64
            }
        };
        let mut t = String::new();
        let _ = writeln!(t, "events          {}", self.events);
        let _ = writeln!(t, "accesses        {}", self.accesses);
        let _ = writeln!(
            t,
            "  reads         {} ({:.1}%)\n  writes        {} ({:.1}%)\n  fetches       {} ({:.1}%)",
            self.reads,
            pct(self.reads),
            self.writes,
            pct(self.writes),
            self.fetches,
            pct(self.fetches)
        );
        let _ = writeln!(t, "bytes accessed  {}", self.bytes);
        let _ = writeln!(
            t,
            "footprint       {} pages of {} ({}), {} of them text",
            self.footprint_pages,
            crate::size::format_size(self.page_size),
            crate::size::format_size(self.footprint_pages * self.page_size),
            self.text_pages
        );
        if let (Some(lo), Some(hi)) = (self.min_address, self.max_address) {
            let _ = writeln!(t, "addresses       {lo:#x} .. {hi:#x}");
        }
        let _ = writeln!(
            t,
            "processes       {} ({})",
            self.processes.len(),
            self.processes
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !self.os_events.is_empty() {
            let list: Vec<String> = self
                .os_events
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(t, "os events       {}", list.join(", "));
        }
        t
    }
}
