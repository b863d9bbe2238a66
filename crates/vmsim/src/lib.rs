//! vmsim: an executable model of a computer's virtual memory system.
//!
//! The crate is laid out the way the system is:
//! - [`hw`]: what the silicon does: RAM, page-table formats, the walker and its caches,
//!   TLBs and the MMU.
//! - [`os`]: what the kernel does: address spaces, VMAs, page faults, fork, shared memory,
//!   the direct map, limits.
//! - [`user`]: what runs inside a process: `malloc` implementations and garbage
//!   collectors whose metadata lives in simulated memory, with their workloads.
//! - [`demo`]: the built-in hardware-only demonstration; [`report`]: counters as text and JSON;
//!   [`viz`]: every translation step by step, as data and as an interactive HTML page;
//!   [`plot`]: charts of time series, sweeps and miss-ratio curves (drawn with the
//!   `plot` feature).
//! - [`addr`] and [`size`]: addresses of the simulated machine and sizes as people write them;
//!   [`options`]: every option's kind of value and default, shared by the command and the
//!   Python package.
//!
//! ```
//! use vmsim::addr::{Pfn, VirtAddr};
//! use vmsim::hw::{AccessKind, Flags, Machine, MachineSpec, PageTable, Privilege, SimpleFrames};
//!
//! let mut m = Machine::new(MachineSpec::preset("x86-64").unwrap());
//! let mut frames = SimpleFrames::new(16, m.ram.nr_frames());
//! let paging = m.spec.paging;
//! let pt = PageTable::new(&paging, &mut m.ram, &mut frames, 1).unwrap();
//! pt.map(&paging, &mut m.ram, &mut frames, VirtAddr(0x40_0000), Pfn(5), 1,
//!        Flags::RW | Flags::USER, Flags::RWX | Flags::USER).unwrap();
//! m.mmu.set_context(pt.root(), 1).unwrap();
//! let pa = m.translate(VirtAddr(0x40_0123), AccessKind::Read, Privilege::User).unwrap();
//! assert_eq!(pa.0, 0x5123);
//! ```

#![warn(missing_docs)]

pub mod addr;
pub mod demo;
pub mod exercise;
pub mod explain;
pub mod hw;
pub mod interleave;
pub mod linux;
pub mod options;
pub mod os;
pub mod output;
pub mod plot;
pub mod policy;
pub mod report;
mod rng;
pub mod run;
pub mod sim;
pub mod size;
pub mod sweep;
pub mod trace;
pub mod user;
pub mod viz;
pub mod workload;
