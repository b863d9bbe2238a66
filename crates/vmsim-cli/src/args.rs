//! Value parsers for the flags, one per kind of value, so that every size, count and
//! ratio is checked where it is parsed and a bad one is refused naming the flag and
//! the value (clap adds both to the message), never silently changed.

use vmsim::size::parse_size;

/// A size in bytes, with an optional unit (`4096`, `4KiB`, `2MiB`, `1GB`).
pub fn size(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// A size of at least one byte.
pub fn nonzero_size(s: &str) -> Result<u64, String> {
    match size(s)? {
        0 => Err("must be at least 1 byte".into()),
        n => Ok(n),
    }
}

/// A page size: a power of two of at least 64 bytes.
pub fn page_size(s: &str) -> Result<u64, String> {
    let n = size(s)?;
    if !n.is_power_of_two() || n < 64 {
        return Err(format!("{n} is not a power of two of at least 64 bytes"));
    }
    Ok(n)
}

/// A count of at least 1.
pub fn count(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| "not a whole number".to_string())?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A count of at least 1 that indexes memory (`usize`).
pub fn count_usize(s: &str) -> Result<usize, String> {
    usize::try_from(count(s)?).map_err(|_| "too large for this host".to_string())
}

/// The questions of an exercise: 1 to 1000 (an exercise is read by a person).
pub fn questions(s: &str) -> Result<usize, String> {
    match count_usize(s)? {
        n if n > 1000 => Err("an exercise has at most 1000 questions".into()),
        n => Ok(n),
    }
}

/// A count of at least 1 that fits 32 bits.
pub fn count_u32(s: &str) -> Result<u32, String> {
    u32::try_from(count(s)?).map_err(|_| format!("must be at most {}", u32::MAX))
}

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s.trim().parse().map_err(|_| "not a number".to_string())?;
    if !x.is_finite() {
        return Err("not a finite number".into());
    }
    Ok(x)
}

/// A fraction from 0 to 1, both included.
pub fn fraction(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if !(0.0..=1.0).contains(&x) {
        return Err("must be from 0 to 1".into());
    }
    Ok(x)
}

/// A rate above 0 and at most 1.
pub fn rate(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if !(x > 0.0 && x <= 1.0) {
        return Err("must be above 0 and at most 1".into());
    }
    Ok(x)
}

/// A finite number of at least 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x < 0.0 {
        return Err("must be at least 0".into());
    }
    Ok(x)
}

/// A percentage from 0 to 100.
pub fn percent(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| "not a whole number".to_string())?;
    if n > 100 {
        return Err("must be from 0 to 100".into());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_refuses_what_it_cannot_hold() {
        assert_eq!(size("4KiB"), Ok(4096));
        assert!(size("abc").is_err());
        assert!(nonzero_size("0").is_err());
        assert_eq!(page_size("2MiB"), Ok(2 << 20));
        assert!(page_size("3000").is_err() && page_size("32").is_err());
        assert_eq!(count("1_000"), Ok(1000));
        assert!(count("0").is_err() && count("-1").is_err() && count("x").is_err());
        assert!(count_u32("4294967296").is_err());
        assert!(questions("1001").is_err() && questions("1000").is_ok());
        assert_eq!(fraction("0"), Ok(0.0));
        assert!(fraction("1.5").is_err() && fraction("NaN").is_err());
        assert!(rate("0").is_err() && rate("1").is_ok());
        assert!(non_negative("-0.1").is_err() && non_negative("inf").is_err());
        assert!(percent("101").is_err() && percent("100").is_ok());
    }
}
