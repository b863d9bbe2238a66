//! What the kernel looks at to run a file: an x86-64 ELF header, or a `#!` line. Shared
//! by the recorder (the first program) and the QEMU plugin (every exec), which includes
//! this file by path.

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u64)
}

/// Whether `head` (a file's first bytes) starts a 64-bit little-endian x86-64 ELF.
pub fn is_x86_64_elf(head: &[u8]) -> bool {
    head.len() >= 20 && head[..4] == *b"\x7fELF" && head[4] == 2 && head[5] == 1 && {
        u16_at(head, 18) == Some(62)
    }
}

/// A script's interpreter and its optional single argument, from its `#!` line (the
/// kernel reads at most 256 bytes of it).
pub fn shebang(head: &[u8]) -> Option<(String, Option<String>)> {
    let rest = head.strip_prefix(b"#!")?;
    let line = &rest[..rest.len().min(254)];
    let line = line.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line)
        .ok()?
        .trim_matches([' ', '\t', '\r']);
    let (interp, arg) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], Some(line[i..].trim_matches([' ', '\t']))),
        None => (line, None),
    };
    if interp.is_empty() {
        return None;
    }
    Some((
        interp.to_string(),
        arg.filter(|a| !a.is_empty()).map(str::to_string),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines_give_the_interpreter_and_one_argument() {
        assert_eq!(shebang(b"#!/bin/sh\necho"), Some(("/bin/sh".into(), None)));
        assert_eq!(
            shebang(b"#! /usr/bin/env  python3 -u \n"),
            Some(("/usr/bin/env".into(), Some("python3 -u".into())))
        );
        assert_eq!(shebang(b"#!\n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
    }

    #[test]
    fn an_x86_64_elf_header_is_told_from_others() {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18] = 62;
        assert!(is_x86_64_elf(&h));
        h[18] = 183; // aarch64
        assert!(!is_x86_64_elf(&h));
        assert!(!is_x86_64_elf(b"#!/bin/sh"));
    }
}
