//! Byte sizes as people write them: `4096`, `4KiB`, `2 MiB`, `1GB`.
//!
//! Binary suffixes (`KiB`, `MiB`, `GiB`, `TiB`, and the short `K`, `M`, `G`, `T`) are powers of
//! 1024; decimal suffixes (`KB`, `MB`, `GB`, `TB`) are powers of 1000, as their names say.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// Parses a size such as `4096`, `0x1000`, `4KiB`, `4 KB` or `2M` into bytes.
///
/// Returns a message that says what is wrong on failure.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(t.len());
    // Hex numbers contain letters, so try the whole text as a number first.
    if let Some(n) = crate::addr::parse_u64(t) {
        return Ok(n);
    }
    let (num, unit) = t.split_at(split);
    let n = crate::addr::parse_u64(num).ok_or_else(|| format!("`{text}` is not a size"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` does not fit in 64 bits"))
}

/// Formats a byte count with the largest binary unit that divides it exactly.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {name}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// A byte size read from a configuration file: an integer or a string with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl<'de> serde::Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, such as 4096 or \"4KiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_have_their_real_meaning() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("64GiB"), Ok(64 << 30));
        assert!(parse_size("4 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999TiB").unwrap_err().contains("64 bits"));
    }

    #[test]
    fn formats_exact_units() {
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(2 << 20), "2 MiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(64), "64 B");
        assert_eq!(format_size(6144), "6 KiB");
        assert_eq!(format_size(4097), "4097 B");
    }
}
