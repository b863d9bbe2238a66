//! Segregated fits: an array of explicit free lists, one per size class (block sizes
//! `32..64`, `64..128`, ... and one open-ended class for the rest). A request searches
//! its own class first-fit, then each larger class, and takes the first block it finds;
//! the remainder of a split goes on the list of its own size. Freed blocks are merged
//! with free neighbours (boundary tags, [`super::tags`]) and pushed on the front of
//! their class. Searching one class approximates best fit at a fraction of the cost;
//! this is the scheme of Doug Lea's allocator and glibc's bins (Wilson et al. 1995,
//! "Dynamic Storage Allocation: A Survey and Critical Review", §3.6).

use super::tags::{self, TagAllocator, Tags, MIN_BLOCK};
use super::{AllocError, OpCounters};
use crate::user::Mem;

/// Number of size classes.
pub const NR_CLASSES: usize = 16;

/// The class of a block of `size` bytes.
pub fn class_of(size: u64) -> usize {
    let k = (size / MIN_BLOCK).max(1).ilog2() as usize;
    k.min(NR_CLASSES - 1)
}

/// A segregated-fits allocator's globals: the heap bounds and one list head per class.
#[derive(Clone, Debug)]
pub struct SegregatedFits {
    tags: Tags,
    heads: [u64; NR_CLASSES],
    trim_threshold: u64,
}

impl SegregatedFits {
    /// Sets up an empty heap at the program break.
    pub fn new(
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        trim_threshold: u64,
    ) -> Result<SegregatedFits, AllocError> {
        Ok(SegregatedFits {
            tags: Tags::init(m, c)?,
            heads: [0; NR_CLASSES],
            trim_threshold,
        })
    }

    fn insert(&mut self, m: &mut Mem<'_>, h: u64, size: u64) -> Result<(), AllocError> {
        tags::push_front(m, &mut self.heads[class_of(size)], h)
    }

    fn remove(&mut self, m: &mut Mem<'_>, h: u64, size: u64) -> Result<(), AllocError> {
        tags::unlink(m, &mut self.heads[class_of(size)], h)
    }
}

impl TagAllocator for SegregatedFits {
    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn malloc(
        &mut self,
        m: &mut Mem<'_>,
        c: &mut OpCounters,
        asize: u64,
    ) -> Result<(u64, u64), AllocError> {
        // Its own class first, then each larger one; one budget for the whole search.
        let mut found = None;
        let mut budget = self.tags.list_budget();
        for k in class_of(asize)..NR_CLASSES {
            found = self
                .tags
                .first_fit(m, c, self.heads[k], asize, &mut budget)?;
            if found.is_some() {
                break;
            }
        }
        let (h, size) = match found {
            Some((h, size)) => {
                self.remove(m, h, size)?;
                (h, size)
            }
            None => {
                let last = self.tags.tag(m, self.tags.epilogue - 8)?;
                let (h, size, absorbed) = self.tags.extend(m, c, asize)?;
                if absorbed {
                    self.remove(m, h, last.0)?;
                }
                (h, size)
            }
        };
        if let Some((rest, rsize)) = self.tags.place(m, c, h, size, asize)? {
            self.insert(m, rest, rsize)?;
        }
        let (size, _) = self.tags.tag(m, h)?;
        Ok((h, size))
    }

    fn free(&mut self, m: &mut Mem<'_>, c: &mut OpCounters, h: u64) -> Result<(), AllocError> {
        let (size, _) = self.tags.header(m, h)?;
        // The neighbours' sizes, to find their classes before the merge rewrites them.
        let (psize, _) = self.tags.tag(m, h - 8)?;
        let (nsize, _) = self.tags.header(m, h + size)?;
        self.tags.set(m, h, size, false)?;
        let merged = self.tags.coalesce(m, c, h, size)?;
        if let Some(p) = merged.prev {
            self.remove(m, p, psize)?;
        }
        if let Some(n) = merged.next {
            self.remove(m, n, nsize)?;
        }
        if !self
            .tags
            .trim(m, c, merged.h, merged.size, self.trim_threshold)?
        {
            self.insert(m, merged.h, merged.size)?;
        }
        Ok(())
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
