//! Value parsers for the flags, one per kind of value, so that every size, count and
//! ratio is checked where it is parsed and a bad one is refused naming the flag and
//! the value (clap adds both to the message), never silently changed. They are the
//! library's ([`vmsim::options`]), which the Python package's keyword arguments share.

pub use vmsim::options::{
    access, count, count_u32, count_usize, fraction, hugepages, khugepaged, mode, non_negative,
    nonzero_size, overcommit, page_cache_warm, page_size, percent, questions, rate, size,
    swap_readahead, thp, thp_defrag, thread_order, whole,
};

/// `--hugepages`'s pools, one value (clap takes a `Vec` for many).
#[derive(Clone, Debug)]
pub struct HugePools(pub Vec<(u64, u64)>);

/// Parses `--hugepages` ([`hugepages`]).
pub fn huge_pools(s: &str) -> Result<HugePools, String> {
    hugepages(s).map(HugePools)
}
