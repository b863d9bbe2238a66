//! Segregated fits: an array of explicit free lists, one per size class (block sizes
//! `32..64`, `64..128`, ... and one open-ended class for the rest). A request searches
//! its own class first-fit, then each larger class, and takes the first block it finds;
//! the remainder of a split goes on the list of its own size. Freed blocks are merged
//! with free neighbours (boundary tags, [`super::tags`]) and pushed on the front of
//! their class. Searching one class approximates best fit at a fraction of the cost;
//! this is the scheme of Doug Lea's allocator and glibc's bins (Wilson et al. 1995,
//! "Dynamic Storage Allocation: A Survey and Critical Review", §3.6).

use super::explicit::Order;
use super::lists::FreeLists;
use super::tags::MIN_BLOCK;
use super::{AllocError, OpCounters};
use crate::user::Mem;

/// Number of size classes.
pub const NR_CLASSES: usize = 16;

/// The class of a block of `size` bytes.
pub fn class_of(size: u64) -> usize {
    let k = (size / MIN_BLOCK).max(1).ilog2() as usize;
    k.min(NR_CLASSES - 1)
}

/// A segregated-fits allocator's globals: the heap bounds and one list head per class
/// ([`FreeLists`] with a list per class, freed blocks on the front).
pub type SegregatedFits = FreeLists<NR_CLASSES>;

impl SegregatedFits {
    /// Sets up an empty heap at the program break.
    pub fn new(
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        trim_threshold: u64,
    ) -> Result<SegregatedFits, AllocError> {
        FreeLists::init(m, c, Order::Lifo, trim_threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_powers_of_two_from_the_minimum_block() {
        assert_eq!(class_of(32), 0);
        assert_eq!(class_of(48), 0);
        assert_eq!(class_of(64), 1);
        assert_eq!(class_of(127), 1);
        assert_eq!(class_of(128), 2);
        assert_eq!(class_of(u64::MAX), NR_CLASSES - 1);
    }
}
