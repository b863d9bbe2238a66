//! The one line reader of every line-oriented trace format (vmsim text, lackey, plain
//! `R`/`W` lines, the text page streams of `vmsim policy`, and format detection).
//!
//! A line holds at most [`MAX_LINE`] bytes, not counting its end (`\n` or `\r\n`). A
//! longer line is an error naming the file and the line, found after reading at most
//! [`MAX_LINE`] + 2 bytes of it: no input, however long its lines (`/dev/zero`, a
//! binary file read as text), makes the reader hold more than that. Lines must be
//! UTF-8; a byte that is not is an error naming its line and column.

use super::{quote_bytes, Location, TraceError};
use std::io::{BufRead, Read};

/// The most bytes a line of a text trace may hold, not counting its `\n` or `\r\n`.
pub const MAX_LINE: usize = 4096;

/// Reads lines of at most [`MAX_LINE`] bytes, counting them from 1.
pub struct LineReader<R> {
    input: R,
    name: String,
    buf: Vec<u8>,
    lineno: u64,
}

/// One line read by a [`LineReader`].
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    /// The text, without its line end.
    pub text: &'a str,
    /// Its number, from 1.
    pub number: u64,
    name: &'a str,
}

impl Line<'_> {
    /// An error at this line of this file.
    pub fn error(&self, reason: impl Into<String>) -> TraceError {
        TraceError::at(self.name, Location::Line(self.number), reason)
    }
}

impl<R: BufRead> LineReader<R> {
    /// A reader over `input`, called `name` in errors.
    pub fn new(input: R, name: String) -> Self {
        LineReader {
            input,
            name,
            buf: Vec::with_capacity(MAX_LINE + 2),
            lineno: 0,
        }
    }

    /// The file's name, as errors give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lines read so far (the number of the last one).
    pub fn lineno(&self) -> u64 {
        self.lineno
    }

    /// The next line, or `None` at the end of the input. A last line without a line end
    /// is a line. An error ends the reading: the reader is then in the middle of a line.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, TraceError> {
        self.buf.clear();
        let number = self.lineno + 1;
        // Room for the longest line and its `\r\n`: the reader never holds more.
        let limit = (MAX_LINE + 2) as u64;
        let got = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| TraceError::read_at(&self.name, Location::Line(number), e))?;
        if got == 0 {
            return Ok(None);
        }
        self.lineno = number;
        let mut end = self.buf.len();
        if self.buf[end - 1] == b'\n' {
            end -= 1;
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
        }
        if end > MAX_LINE {
            return Err(TraceError::at(
                &self.name,
                Location::Line(number),
                format!(
                    "the line is longer than {MAX_LINE} bytes, the most a line of a text \
                     trace may hold (it starts {}); is this a binary file? name its format \
                     with --format",
                    quote_bytes(&self.buf[..end.min(64)])
                ),
            ));
        }
        let text = match std::str::from_utf8(&self.buf[..end]) {
            Ok(t) => t,
            Err(e) => {
                let at = e.valid_up_to();
                return Err(TraceError::at(
                    &self.name,
                    Location::Line(number),
                    format!(
                        "byte {:#04x} at column {} is not UTF-8 text (the line starts {}); \
                         is this a binary file? name its format with --format",
                        self.buf[at],
                        at + 1,
                        quote_bytes(&self.buf[..end.min(64)])
                    ),
                ));
            }
        };
        Ok(Some(Line {
            text,
            number,
            name: &self.name,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8]) -> Result<Vec<String>, TraceError> {
        let mut r = LineReader::new(input, "f.txt".into());
        let mut v = Vec::new();
        while let Some(l) = r.next_line()? {
            assert_eq!(l.number, v.len() as u64 + 1);
            v.push(l.text.to_string());
        }
        Ok(v)
    }

    #[test]
    fn splits_lines_and_strips_their_ends() {
        assert_eq!(lines(b"a\r\nb\n\nc").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(lines(b"").unwrap(), Vec::<String>::new());
        assert_eq!(lines(b"\n").unwrap(), [""]);
    }

    #[test]
    fn a_line_of_the_limit_reads_and_one_byte_more_is_an_error() {
        for end in ["\n", "\r\n", ""] {
            let ok = format!("x\n{}{end}", "a".repeat(MAX_LINE));
            assert_eq!(lines(ok.as_bytes()).unwrap()[1].len(), MAX_LINE);
            let long = format!("x\n{}{end}", "a".repeat(MAX_LINE + 1));
            let e = lines(long.as_bytes()).unwrap_err().to_string();
            assert!(
                e.starts_with("f.txt: line 2: the line is longer than 4096"),
                "{e}"
            );
        }
    }

    /// An endless line stops the reader after the bound, holding no more than it.
    #[test]
    fn an_endless_line_is_refused_after_the_bound() {
        struct Counting(u64);
        impl Read for Counting {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(0);
                self.0 += buf.len() as u64;
                Ok(buf.len())
            }
        }
        let mut input = BufReader::with_capacity(1024, Counting(0));
        let mut r = LineReader::new(&mut input, "/dev/zero".into());
        let e = r.next_line().unwrap_err().to_string();
        assert!(
            e.starts_with("/dev/zero: line 1: the line is longer"),
            "{e}"
        );
        // The quoted start is cut short, with its NULs escaped.
        assert!(
            e.contains("`\\0\\0") && e.contains('…') && e.len() < 400,
            "{e}"
        );
        assert!(
            r.buf.capacity() <= 2 * (MAX_LINE + 2),
            "{}",
            r.buf.capacity()
        );
        drop(r);
        assert!(input.get_ref().0 <= (MAX_LINE + 2 + 1024) as u64);
    }

    #[test]
    fn bytes_that_are_not_utf8_name_their_line_and_column() {
        let e = lines(b"ok\nab\xffcd\n").unwrap_err().to_string();
        assert!(
            e.starts_with("f.txt: line 2: byte 0xff at column 3 is not UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn a_read_error_names_the_line() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let mut r = LineReader::new(BufReader::new((&b"a\n"[..]).chain(Failing)), "f".into());
        assert_eq!(r.next_line().unwrap().unwrap().text, "a");
        let e = r.next_line().unwrap_err().to_string();
        assert_eq!(e, "f: line 2: cannot read on: disk on fire");
    }
}
