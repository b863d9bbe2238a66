//! Addresses and page numbers of the simulated machine.
//!
//! The simulated machine is not the host: every address is a `u64` newtype,
//! never a `usize`, and arithmetic that can overflow goes through named,
//! checked methods.

use std::fmt;

macro_rules! addr_type {
    ($(#[$doc:meta])* $name:ident, $fmt:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw value.
            #[inline(always)]
            pub const fn get(self) -> u64 {
                self.0
            }

            /// `self + n`, or `None` on overflow.
            #[inline]
            pub const fn checked_add(self, n: u64) -> Option<Self> {
                match self.0.checked_add(n) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// `self - n`, or `None` on underflow.
            #[inline]
            pub const fn checked_sub(self, n: u64) -> Option<Self> {
                match self.0.checked_sub(n) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// Rounds down to a multiple of `align` (a power of two).
            #[inline(always)]
            pub const fn align_down(self, align: u64) -> Self {
                debug_assert!(align.is_power_of_two());
                Self(self.0 & !(align - 1))
            }

            /// Rounds up to a multiple of `align` (a power of two), or `None` on overflow.
            #[inline]
            pub const fn align_up(self, align: u64) -> Option<Self> {
                debug_assert!(align.is_power_of_two());
                match self.0.checked_add(align - 1) {
                    Some(v) => Some(Self(v & !(align - 1))),
                    None => None,
                }
            }

            /// Whether the address is a multiple of `align` (a power of two).
            #[inline(always)]
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }

            /// The offset within a page of `page_size` bytes (a power of two).
            #[inline(always)]
            pub const fn page_offset(self, page_size: u64) -> u64 {
                self.0 & (page_size - 1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($fmt, "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

addr_type!(
    /// A virtual address of the simulated machine.
    VirtAddr,
    "VirtAddr"
);
addr_type!(
    /// A physical address of the simulated machine.
    PhysAddr,
    "PhysAddr"
);

/// A virtual page number: a virtual address shifted right by the page shift.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[repr(transparent)]
pub struct Vpn(pub u64);

/// A physical frame number: a physical address shifted right by the base page shift.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[repr(transparent)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The physical address of the first byte of this frame.
    #[inline(always)]
    pub const fn addr(self, page_shift: u32) -> PhysAddr {
        PhysAddr(self.0 << page_shift)
    }
}

/// A slot of the swap device: the index of one page-sized block of swap space.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[repr(transparent)]
pub struct SwapSlot(pub u32);

impl fmt::Display for SwapSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl PhysAddr {
    /// The frame that holds this address.
    #[inline(always)]
    pub const fn pfn(self, page_shift: u32) -> Pfn {
        Pfn(self.0 >> page_shift)
    }
}

impl VirtAddr {
    /// The virtual page that holds this address, for pages of `1 << page_shift` bytes.
    #[inline(always)]
    pub const fn vpn(self, page_shift: u32) -> Vpn {
        Vpn(self.0 >> page_shift)
    }
}

impl fmt::Display for Vpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Parses an address or number written as decimal, `0x` hex, `0o` octal or `0b` binary,
/// with optional `_` separators.
pub fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim().replace('_', "");
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        (b, 2)
    } else if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        (o, 8)
    } else {
        (t.as_str(), 10)
    };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers() {
        let a = VirtAddr(0x1234);
        assert_eq!(a.align_down(0x1000), VirtAddr(0x1000));
        assert_eq!(a.align_up(0x1000), Some(VirtAddr(0x2000)));
        assert_eq!(VirtAddr(u64::MAX).align_up(0x1000), None);
        assert_eq!(a.page_offset(0x1000), 0x234);
        assert!(VirtAddr(0x2000).is_aligned(0x1000));
        assert_eq!(a.vpn(12), Vpn(1));
        assert_eq!(Pfn(3).addr(12), PhysAddr(0x3000));
        assert_eq!(PhysAddr(0x3fff).pfn(12), Pfn(3));
        assert_eq!(VirtAddr(u64::MAX).checked_add(1), None);
        assert_eq!(VirtAddr(0).checked_sub(1), None);
    }

    #[test]
    fn parses_number_forms() {
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("0x2a"), Some(42));
        assert_eq!(parse_u64("0b101010"), Some(42));
        assert_eq!(parse_u64("0o52"), Some(42));
        assert_eq!(parse_u64("0xffff_ffff"), Some(0xffff_ffff));
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("zz"), None);
        assert_eq!(parse_u64("0x1_0000_0000_0000_0000"), None);
    }
}
