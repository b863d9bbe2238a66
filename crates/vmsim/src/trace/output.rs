//! The format and compression of a trace to write (`vmsim trace convert`, `vmsim
//! record`): named by `--to`, or told by the output's name.

use super::Format;
use std::path::Path;

/// `--to` names a format vmsim cannot write.
#[derive(Debug, thiserror::Error)]
#[error("--to: `{0}` is not an output format ({names})", names = WRITABLE.map(Format::name).join(", "))]
pub struct NotWritable(pub String);

/// The formats vmsim writes.
const WRITABLE: [Format; 2] = [Format::Text, Format::Binary];

/// The format and compression (whether zstd) of the trace `path`: `to` if given, else
/// the name (`.vmt` or `.txt` vmsim text, anything else vmsim binary); a binary trace is
/// compressed with `zstd` or when its name ends in `.zst`.
pub fn output_format(
    path: &Path,
    to: Option<&str>,
    zstd: bool,
) -> Result<(Format, bool), NotWritable> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let format = match to {
        Some(t) => Format::parse(t)
            .filter(|f| WRITABLE.contains(f))
            .ok_or_else(|| NotWritable(t.to_string()))?,
        None if name.ends_with(".vmt") || name.ends_with(".txt") => Format::Text,
        None => Format::Binary,
    };
    let zstd = format == Format::Binary && (zstd || name.ends_with(".zst"));
    Ok((format, zstd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_or_to_picks_the_format_and_compression() {
        let f = |p: &str, to, zstd| output_format(Path::new(p), to, zstd).unwrap();
        assert_eq!(f("a.VMT", None, true), (Format::Text, false));
        assert_eq!(f("a.txt", None, false), (Format::Text, false));
        assert_eq!(f("a.bin", None, false), (Format::Binary, false));
        assert_eq!(f("a.bin.zst", None, false), (Format::Binary, true));
        assert_eq!(f("a.vmt", Some("binary"), true), (Format::Binary, true));
        let e = output_format(Path::new("a"), Some("lackey"), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--to: `lackey` is not an output format (vmsim-text, vmsim-binary)"
        );
    }
}
