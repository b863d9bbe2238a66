//! The storage device swap and files sit on: what a request costs, as latency (the
//! time before its first byte) plus its bytes at the device's bandwidth, for reads and
//! for swap writes.
//!
//! Presets name common devices; any other is given by its numbers
//! (`--storage 70us,1200MB/s`, or `20us,2GB/s,500us,100MB/s` for writes that cost
//! otherwise), for instance as measured on the machine whose Linux a run is compared
//! with (docs/kernel.md, "Reads take time" and "Swap writes take time", says how this
//! project's machines were measured). How requests queue is `inflight.rs`'s.

use serde::Serialize;

/// Storage the swap device (and the files) sit on: latency plus transfer time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Storage {
    /// The default: the virtual disk of this project's machines as measured there:
    /// reads 60 µs and 2 GB/s (`fio`, one direct read at a time: 4 KiB in 60 µs, 1 MiB
    /// in 527 µs), swap writes 50 µs and 2.5 GB/s, each request side by side once the
    /// reads queued before it are done (`inflight.rs`; as traced with
    /// `block_rq_issue` and `block_rq_complete`: a request of 254 pages written in
    /// 0.3 to 0.7 ms once the disk issues it, a small one in 0.04 to 0.1 ms; what
    /// held Linux's writes for tens of milliseconds was the plug of the swap fault
    /// that set reclaim off, `inflight.rs`).
    /// The flusher's writes of page-cache pages cost what reads do (its 4 MiB
    /// requests, four at a time, took 6 to 9 ms).
    Vm,
    /// An NVMe SSD: 20 µs, 2 GB/s.
    Nvme,
    /// A SATA SSD: 100 µs, 500 MB/s.
    SataSsd,
    /// A hard disk: 8 ms (seek and rotation), 150 MB/s.
    Hdd,
    /// A device given by its numbers (`LATENCY,BANDWIDTH`, then optionally the same
    /// for writes).
    Custom {
        /// Nanoseconds before a read's first byte arrives.
        latency_ns: u64,
        /// Bytes per second once a read has started (never 0).
        bytes_per_sec: u64,
        /// Nanoseconds before a write's first byte is on the device.
        write_latency_ns: u64,
        /// Bytes per second once a write has started (never 0).
        write_bytes_per_sec: u64,
    },
}

/// The longest latency a device may have: 10 s keeps every clock sum far from
/// overflowing.
pub const MAX_LATENCY_NS: u64 = 10_000_000_000;

impl Storage {
    /// Nanoseconds to read `bytes` in one request.
    pub fn transfer_ns(self, bytes: u64) -> u64 {
        self.latency_ns().saturating_add(self.bytes_ns(bytes))
    }

    /// Nanoseconds to write `bytes` in one request.
    pub fn write_ns(self, bytes: u64) -> u64 {
        let (latency, bandwidth) = self.write_geometry();
        latency.saturating_add(moving_ns(bytes, bandwidth))
    }

    /// This device with swap writes of `latency_ns` before the first byte and then
    /// `bytes_per_sec` (at least 1), reading as it does.
    pub fn with_writes(self, latency_ns: u64, bytes_per_sec: u64) -> Storage {
        let (read_latency, read_bandwidth) = self.geometry();
        Storage::Custom {
            latency_ns: read_latency,
            bytes_per_sec: read_bandwidth,
            write_latency_ns: latency_ns,
            write_bytes_per_sec: bytes_per_sec.max(1),
        }
    }

    /// Nanoseconds before a read's first byte arrives.
    pub fn latency_ns(self) -> u64 {
        self.geometry().0
    }

    /// Nanoseconds `bytes` of a read take to move once it has started.
    pub fn bytes_ns(self, bytes: u64) -> u64 {
        moving_ns(bytes, self.geometry().1)
    }

    /// Reads' latency in nanoseconds and bandwidth in bytes per second.
    fn geometry(self) -> (u64, u64) {
        match self {
            Storage::Vm => (60_000, 2_000_000_000),
            Storage::Nvme => (20_000, 2_000_000_000),
            Storage::SataSsd => (100_000, 500_000_000),
            Storage::Hdd => (8_000_000, 150_000_000),
            Storage::Custom {
                latency_ns,
                bytes_per_sec,
                ..
            } => (latency_ns, bytes_per_sec),
        }
    }

    /// Swap writes' latency in nanoseconds and bandwidth in bytes per second.
    fn write_geometry(self) -> (u64, u64) {
        match self {
            Storage::Vm => (50_000, 2_500_000_000),
            Storage::Custom {
                write_latency_ns,
                write_bytes_per_sec,
                ..
            } => (write_latency_ns, write_bytes_per_sec),
            _ => self.geometry(),
        }
    }

    /// Parses a preset's name (see [`Storage::name`]; `ssd` for `sata-ssd`).
    pub fn parse(s: &str) -> Option<Storage> {
        match s {
            "ssd" => Some(Storage::SataSsd),
            _ => Self::ALL.into_iter().find(|d| d.name() == s),
        }
    }

    /// Parses a preset's name or `LATENCY,BANDWIDTH` (`70us,1200MB/s`: a latency in
    /// `ns`, `us`, `ms` or `s`, and bytes per second with a size's units and `/s`),
    /// optionally followed by `,LATENCY,BANDWIDTH` for swap writes (else they cost
    /// what reads do); the error says what is wrong with the text.
    pub fn parse_spec(s: &str) -> Result<Storage, String> {
        let fields: Vec<&str> = s.split(',').map(str::trim).collect();
        let pair = |latency: &str, bandwidth: &str, what: &str| {
            let l =
                parse_latency(latency).map_err(|e| format!("storage `{s}`: {what}latency {e}"))?;
            let b = parse_bandwidth(bandwidth)
                .map_err(|e| format!("storage `{s}`: {what}bandwidth {e}"))?;
            Ok::<_, String>((l, b))
        };
        let ((latency_ns, bytes_per_sec), (write_latency_ns, write_bytes_per_sec)) = match fields[..]
        {
            [name] => {
                let names = Self::ALL.map(Storage::name).join(", ");
                return Self::parse(name).ok_or_else(|| {
                        format!(
                            "unknown storage `{s}` ({names}, or LATENCY,BANDWIDTH such as 70us,1200MB/s)"
                        )
                    });
            }
            [l, b] => {
                let read = pair(l, b, "")?;
                (read, read)
            }
            [l, b, wl, wb] => (pair(l, b, "")?, pair(wl, wb, "write ")?),
            _ => {
                return Err(format!(
                    "storage `{s}`: give LATENCY,BANDWIDTH for reads, and optionally \
                         LATENCY,BANDWIDTH for writes after them (20us,2GB/s,500us,100MB/s)"
                ))
            }
        };
        Ok(Storage::Custom {
            latency_ns,
            bytes_per_sec,
            write_latency_ns,
            write_bytes_per_sec,
        })
    }

    /// Every preset.
    pub const ALL: [Storage; 4] = [Storage::Vm, Storage::Nvme, Storage::SataSsd, Storage::Hdd];

    /// The name flags and files use (`custom` for a device given by its numbers).
    pub fn name(self) -> &'static str {
        match self {
            Storage::Vm => "vm",
            Storage::Nvme => "nvme",
            Storage::SataSsd => "sata-ssd",
            Storage::Hdd => "hdd",
            Storage::Custom { .. } => "custom",
        }
    }
}

/// Nanoseconds `bytes` take at `bandwidth` bytes per second.
fn moving_ns(bytes: u64, bandwidth: u64) -> u64 {
    bytes.saturating_mul(1_000_000_000) / bandwidth.max(1)
}

/// `70us`, `8ms`, `500ns`, `1s` (`µs` too): nanoseconds, at most [`MAX_LATENCY_NS`].
fn parse_latency(t: &str) -> Result<u64, String> {
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not a whole number with a unit (70us, 8ms)"))?;
    let mult = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{t}`: unknown unit `{unit}` (use ns, us, ms or s)"
            ))
        }
    };
    n.checked_mul(mult)
        .filter(|&ns| ns <= MAX_LATENCY_NS)
        .ok_or_else(|| format!("`{t}` is longer than 10 s"))
}

/// `1200MB/s`, `1GiB/s`: bytes per second, not 0.
fn parse_bandwidth(t: &str) -> Result<u64, String> {
    let size = t
        .strip_suffix("/s")
        .ok_or_else(|| format!("`{t}` is not per second (1200MB/s)"))?;
    match crate::size::parse_size(size)? {
        0 => Err(format!("`{t}` is no bandwidth at all")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_costs_latency_plus_transfer() {
        assert_eq!(Storage::Nvme.transfer_ns(4096), 20_000 + 2_048);
        assert!(Storage::Hdd.transfer_ns(4096) > 100 * Storage::Nvme.transfer_ns(4096));
    }

    #[test]
    fn a_device_given_by_its_numbers_costs_what_they_say() {
        let d = Storage::parse_spec("70us,1200MB/s").unwrap();
        assert_eq!(
            d,
            Storage::Custom {
                latency_ns: 70_000,
                bytes_per_sec: 1_200_000_000,
                write_latency_ns: 70_000,
                write_bytes_per_sec: 1_200_000_000,
            }
        );
        assert_eq!(d.name(), "custom");
        // 120 KB at 1.2 GB/s is 100 µs, after 70 µs of latency, both ways.
        assert_eq!(d.transfer_ns(120_000), 170_000);
        assert_eq!(d.write_ns(120_000), 170_000);
        assert_eq!(
            Storage::parse_spec(" 8ms , 1GiB/s").unwrap(),
            Storage::Custom {
                latency_ns: 8_000_000,
                bytes_per_sec: 1 << 30,
                write_latency_ns: 8_000_000,
                write_bytes_per_sec: 1 << 30,
            }
        );
        // Writes of their own: 100 KB at 100 MB/s is 1 ms, after 500 µs.
        let w = Storage::parse_spec("20us,2GB/s, 500us,100MB/s").unwrap();
        assert_eq!(w.transfer_ns(100_000), 70_000);
        assert_eq!(w.write_ns(100_000), 1_500_000);
        // The default: 100 KB written at 2.5 GB/s is 40 µs, after 50 µs; 4 KiB read
        // in 60 µs and 2,048 ns.
        assert_eq!(Storage::Vm.write_ns(100_000), 90_000);
        assert_eq!(Storage::Vm.transfer_ns(4096), 62_048);
        // Another write speed, the same reads.
        let w = Storage::Vm.with_writes(500_000, 100_000_000);
        assert_eq!(w.write_ns(100_000), 1_500_000);
        assert_eq!(w.transfer_ns(4096), Storage::Vm.transfer_ns(4096));
        assert_eq!(Storage::Hdd.write_ns(4096), Storage::Hdd.transfer_ns(4096));
        assert_eq!(Storage::parse_spec("ssd"), Ok(Storage::SataSsd));
        assert_eq!(Storage::parse_spec("hdd"), Ok(Storage::Hdd));
    }

    #[test]
    fn a_device_that_cannot_be_says_why() {
        for (spec, why) in [
            (
                "floppy",
                "unknown storage `floppy` (vm, nvme, sata-ssd, hdd, or LATENCY",
            ),
            ("70,1GB/s", "latency `70`: unknown unit ``"),
            ("70mm,1GB/s", "unknown unit `mm`"),
            ("x,1GB/s", "`x` is not a whole number"),
            ("11s,1GB/s", "`11s` is longer than 10 s"),
            ("99999999999999999999s,1GB/s", "is not a whole number"),
            ("70us,1GB", "bandwidth `1GB` is not per second"),
            ("70us,0MB/s", "bandwidth `0MB/s` is no bandwidth at all"),
            ("70us,fastMB/s", "bandwidth `fastMB` is not a size"),
            ("70us,", "bandwidth `` is not per second"),
            ("70us,1GB/s,1ms", "optionally LATENCY,BANDWIDTH for writes"),
            (
                "70us,1GB/s,1ms,0MB/s",
                "write bandwidth `0MB/s` is no bandwidth",
            ),
            ("70us,1GB/s,1m,1MB/s", "write latency `1m`: unknown unit"),
        ] {
            let e = Storage::parse_spec(spec).unwrap_err();
            assert!(e.contains(why), "{spec}: {e}");
        }
    }

    #[test]
    fn no_device_overflows_the_clock() {
        let slow = Storage::Custom {
            latency_ns: MAX_LATENCY_NS,
            bytes_per_sec: 1,
            write_latency_ns: MAX_LATENCY_NS,
            write_bytes_per_sec: 1,
        };
        assert_eq!(slow.transfer_ns(u64::MAX), u64::MAX);
        assert_eq!(slow.write_ns(u64::MAX), u64::MAX);
        assert_eq!(slow.bytes_ns(4096), 4096 * 1_000_000_000);
    }
}
