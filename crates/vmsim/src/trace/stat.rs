//! `vmsim trace stat`: what a trace holds (length, footprint, access mix, processes,
//! threads, mappings and system calls).

use super::{
    advice_name, fadvice_name, for_each_batch, syscall_name, Event, EventReader, MapKind,
    TraceError,
};
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
    /// Processes (trace pids) seen: spawned, forked, exec-imaged or first seen in any
    /// other event.
    pub processes: u64,
    /// Their trace pids, in order.
    pub pids: Vec<u32>,
    /// Threads: each process's main thread, and each distinct (process, thread) pair
    /// of the `thread` events that is not a main thread (thread 0).
    pub threads: u64,
    /// OS events by name (`mmap`, `fork`, `thread`, ...: the text format's keywords).
    pub os_events: BTreeMap<String, u64>,
    /// The `mmap` events.
    pub mappings: Mappings,
    /// Calls by name: each `syscall` event's call (its number when it has no name),
    /// and each `madvise` event as `madvise:ADVICE` (`madvise:dontneed`).
    pub syscalls: BTreeMap<String, u64>,
    /// Nanoseconds the `sleep` events add up to.
    pub sleep_ns: u64,
    /// Pages of file-system metadata the `fs-metadata` events add up to.
    pub fs_metadata_pages: u64,
}

/// The `mmap` events of a trace.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Mappings {
    /// All of them.
    pub total: u64,
    /// Anonymous memory.
    pub anon: u64,
    /// Files.
    pub file: u64,
    /// `MAP_SHARED` ones, anonymous or file.
    pub shared: u64,
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
        Event::Vfork { .. } => "vfork",
        Event::FileRead { .. } => "read",
        Event::FileWrite { .. } => "write",
        Event::FileReadahead { .. } => "file-readahead",
        Event::Fadvise { .. } => "fadvise",
        Event::FileSize { .. } => "file-size",
        Event::FileShmem { .. } => "file-shmem",
        Event::FileDrop { .. } => "file-drop",
        Event::FileCached { .. } => "file-cached",
        Event::Nonzero { .. } => "nonzero",
        Event::Values { .. } => "values",
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
        Event::Sleep { .. } => "sleep",
        Event::FsMetadata { .. } => "fs-metadata",
        Event::Populate { .. } => "populate",
        Event::Mlock { mode, .. } if mode.is_locked() => "mlock",
        Event::Mlock { .. } => "munlock",
        Event::Mlockall { flags: 0, .. } => "munlockall",
        Event::Mlockall { .. } => "mlockall",
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
    let mut threads: FxHashSet<(u32, u32)> = FxHashSet::default();
    let each = |batch: &[Event]| {
        for e in batch {
            s.events += 1;
            pids.insert(e.pid());
            let Event::Access(a) = e else {
                *s.os_events.entry(name(e).to_string()).or_default() += 1;
                let call = |s: &mut TraceStat, name: String| {
                    *s.syscalls.entry(name).or_default() += 1;
                };
                match *e {
                    Event::Fork { child, .. } | Event::Vfork { child, .. } => {
                        pids.insert(child);
                    }
                    Event::Thread { pid, tid } if tid != 0 => {
                        threads.insert((pid, tid));
                    }
                    Event::Mmap { shared, kind, .. } => {
                        let m = &mut s.mappings;
                        m.total += 1;
                        match kind {
                            MapKind::Anon => m.anon += 1,
                            MapKind::File { .. } => m.file += 1,
                            MapKind::HugeTlb { .. } => m.anon += 1,
                        }
                        m.shared += shared as u64;
                    }
                    Event::Sleep { ns, .. } => s.sleep_ns = s.sleep_ns.saturating_add(ns),
                    Event::FsMetadata { pages, .. } => {
                        s.fs_metadata_pages = s.fs_metadata_pages.saturating_add(pages)
                    }
                    Event::Syscall { nr, .. } => call(
                        &mut s,
                        syscall_name(nr).map_or(nr.to_string(), str::to_string),
                    ),
                    Event::Fadvise { advice, .. } => call(
                        &mut s,
                        format!(
                            "fadvise:{}",
                            fadvice_name(advice).map_or(advice.to_string(), str::to_string)
                        ),
                    ),
                    Event::Madvise { advice, .. } => call(
                        &mut s,
                        format!(
                            "madvise:{}",
                            advice_name(advice).map_or(advice.to_string(), str::to_string)
                        ),
                    ),
                    _ => {}
                }
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
    s.pids = pids.into_iter().collect();
    s.pids.sort_unstable();
    s.processes = s.pids.len() as u64;
    s.threads = s.processes + threads.len() as u64;
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
            self.processes,
            self.pids
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(t, "threads         {}", self.threads);
        let list = |map: &BTreeMap<String, u64>| {
            map.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.os_events.is_empty() {
            let _ = writeln!(t, "os events       {}", list(&self.os_events));
        }
        let m = &self.mappings;
        if m.total > 0 {
            let _ = writeln!(
                t,
                "mappings        {} ({} anonymous, {} file; {} shared)",
                m.total, m.anon, m.file, m.shared
            );
        }
        if !self.syscalls.is_empty() {
            let _ = writeln!(t, "syscalls        {}", list(&self.syscalls));
        }
        if self.sleep_ns > 0 {
            let _ = writeln!(t, "asleep          {:.3} ms", self.sleep_ns as f64 / 1e6);
        }
        if self.fs_metadata_pages > 0 {
            let _ = writeln!(t, "fs metadata     {} pages", self.fs_metadata_pages);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_of(text: &str) -> TraceStat {
        let input: Box<dyn std::io::BufRead + Send> = Box::new(std::io::Cursor::new(
            format!("#vmsim-text 1\n{text}").into_bytes(),
        ));
        let mut r = EventReader::new(super::super::Format::Text, input, "t".into(), 4096).unwrap();
        stat(&mut r, 4096).unwrap()
    }

    #[test]
    fn counts_processes_threads_mappings_and_calls() {
        let s = stat_of(
            "exec-image 10
             mmap 10 0x400000 8KiB r-x file=1@0
             mmap 10 0x7f0000000000 8KiB rw- shared
             mmap 10 0x7f0000100000 8KiB rw- shared file=2@0
             thread 10 0
             thread 10 1
             thread 10 2
             thread 10 1
             thread-exit 10 2 0
             fork 10 11
             thread 11 1
             W 10 0x7f0000000000 8
             madvise 10 0x7f0000000000 8KiB dontneed
             madvise 10 0x7f0000000000 8KiB dontneed
             madvise 10 0x7f0000000000 8KiB 77
             syscall 10 msync
             syscall 11 mlock
             syscall 11 msync
             syscall 11 999
             mremap 10 0x7f0000000000 8KiB 0x7f0000200000 16KiB
             shmdt 10 0x30000000
             thp-disable 10 1
             sleep 10 1500000
             sleep 11 250000
             fs-metadata 11 33
             fs-metadata 10 2
             exec-image 12",
        );
        assert_eq!(s.pids, [10, 11, 12]);
        assert_eq!(s.processes, 3);
        assert_eq!(s.threads, 3 + 3, "10's 1 and 2, 11's 1");
        assert_eq!(
            s.mappings,
            Mappings {
                total: 3,
                anon: 1,
                file: 2,
                shared: 2
            }
        );
        let calls: Vec<(&str, u64)> = s.syscalls.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            calls,
            [
                ("999", 1),
                ("madvise:77", 1),
                ("madvise:dontneed", 2),
                ("mlock", 1),
                ("msync", 2)
            ]
        );
        for (kind, n) in [
            ("exec-image", 2),
            ("thread", 5),
            ("thread-exit", 1),
            ("madvise", 3),
            ("syscall", 4),
            ("mremap", 1),
            ("shmdt", 1),
            ("thp-disable", 1),
            ("sleep", 2),
            ("fs-metadata", 2),
            ("mmap", 3),
            ("fork", 1),
        ] {
            assert_eq!(s.os_events.get(kind), Some(&n), "{kind}");
        }
        assert_eq!(s.sleep_ns, 1_750_000);
        let text = s.to_text();
        assert!(text.contains("threads         6\n"), "{text}");
        assert!(text.contains("asleep          1.750 ms\n"), "{text}");
        assert_eq!(s.fs_metadata_pages, 35);
        assert!(text.contains("fs metadata     35 pages\n"), "{text}");
        assert!(
            text.contains("mappings        3 (1 anonymous, 2 file; 2 shared)"),
            "{text}"
        );
        assert!(
            text.contains(
                "syscalls        999 1, madvise:77 1, madvise:dontneed 2, mlock 1, msync 2"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["threads"], 6);
        assert_eq!(json["mappings"]["file"], 2);
        assert_eq!(json["syscalls"]["madvise:dontneed"], 2);
    }

    #[test]
    fn a_trace_without_threads_has_one_per_process() {
        let s = stat_of("R 1 0x1000\nR 2 0x1000\n");
        assert_eq!(s.threads, 2);
        assert_eq!(s.mappings, Mappings::default());
        assert!(s.syscalls.is_empty());
        assert!(!s.to_text().contains("mappings"));
    }
}
