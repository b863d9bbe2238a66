//! The page stream of any trace, for the commands that study replacement alone
//! (`vmsim policy`, `mrc`, `wss`): a page trace (page numbers, or oracleGeneral
//! records) as it is, or the pages an event trace's accesses touch ([`page_trace`]).

use super::{open_decompressed, page_trace, EventReader, Format, TraceError, TracePid};
use crate::policy::{PageFormat, PageStream, PageTrace, PolicyStats, RunSpec};
use std::io::BufRead;
use std::path::Path;

/// Why a page stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// `--format` names no format.
    #[error("--format: unknown format `{0}` ({names})", names = format_names())]
    UnknownFormat(String),
    /// `--pid` was given for a page trace.
    #[error("--pid: {0} is a page stream, which has no processes")]
    NoProcesses(String),
    /// The page trace could not be read.
    #[error(transparent)]
    Pages(#[from] crate::policy::TraceError),
    /// The event trace could not be read.
    #[error(transparent)]
    Events(#[from] TraceError),
}

/// The names `format` takes: the page-trace formats (`text`, `oracle-general`), then
/// the event-trace formats.
fn format_names() -> String {
    let events = Format::ALL
        .into_iter()
        .filter(|&f| f != Format::OracleGeneral)
        .map(Format::name);
    ["text", Format::OracleGeneral.name()]
        .into_iter()
        .chain(events)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page stream of the trace `path`, in `format` (a page-trace format, `text` or
/// `oracle-general`, or any event-trace format's name) or, when `None`, the format its
/// name and contents tell: an event trace if they tell one, else a page trace. An event
/// trace's accesses become pages of `page_size` bytes, only process `pid`'s with
/// `Some(pid)`.
pub fn read_pages(
    path: &Path,
    format: Option<&str>,
    pid: Option<TracePid>,
    page_size: u64,
) -> Result<PageTrace, PagesError> {
    match open_pages(path, format, pid, page_size)? {
        PageSource::Stream(s) => Ok(s.collect()?),
        PageSource::Whole(t) => Ok(t),
    }
}

/// A page stream ready to be read as a run goes, or an event trace's pages, gathered.
pub enum PageSource {
    /// A page trace, not yet read.
    Stream(PageStream<Box<dyn BufRead + Send>>),
    /// The pages of an event trace's accesses.
    Whole(PageTrace),
}

impl PageSource {
    /// Runs every spec over the pages ([`crate::policy::simulate_stream`] or
    /// [`crate::policy::simulate_all`]): the results in the specs' order, the number of
    /// references and of distinct pages.
    pub fn simulate(self, specs: &[RunSpec]) -> Result<(Vec<PolicyStats>, u64, usize), PagesError> {
        Ok(match self {
            PageSource::Stream(s) => crate::policy::simulate_stream(specs, s)?,
            PageSource::Whole(t) => (
                crate::policy::simulate_all(specs, &t),
                t.len() as u64,
                t.nr_pages(),
            ),
        })
    }
}

/// [`read_pages`], leaving a page trace unread, to be streamed.
pub fn open_pages(
    path: &Path,
    format: Option<&str>,
    pid: Option<TracePid>,
    page_size: u64,
) -> Result<PageSource, PagesError> {
    let event_format = match format {
        Some("text") => None,
        Some("oracle-general") => {
            return Ok(PageSource::Stream(PageStream::open(
                path,
                Some(PageFormat::OracleGeneral),
            )?))
        }
        Some(name) => {
            Some(Format::parse(name).ok_or_else(|| PagesError::UnknownFormat(name.into()))?)
        }
        // Told by the contents: an event trace, or else a page stream.
        None => match Format::detect(&path.display().to_string(), &head(path)?) {
            Ok(f) if f != Format::OracleGeneral => Some(f),
            _ => None,
        },
    };
    match event_format {
        None => {
            if pid.is_some() {
                return Err(PagesError::NoProcesses(path.display().to_string()));
            }
            Ok(PageSource::Stream(PageStream::open(
                path,
                format.map(|_| PageFormat::Text),
            )?))
        }
        Some(f) => {
            let mut r = EventReader::open(path, Some(f), page_size)?;
            Ok(PageSource::Whole(page_trace(&mut r, page_size, pid)?))
        }
    }
}

/// The first 4 KiB of a trace, decompressed.
fn head(path: &Path) -> Result<Vec<u8>, TraceError> {
    let mut r = open_decompressed(path)?;
    let name = path.display().to_string();
    let head = r.fill_buf().map_err(|e| TraceError::io(&name, e))?;
    Ok(head[..head.len().min(4096)].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_format_lists_every_name() {
        let e = read_pages(Path::new("x"), Some("zz"), None, 4096).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--format: unknown format `zz` (text, oracle-general, vmsim-text, vmsim-binary, lackey, champsim, plain)"
        );
    }

    #[test]
    fn a_page_trace_has_no_processes() {
        let dir = std::env::temp_dir().join(format!("vmsim-pages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pages = dir.join("pages.txt");
        std::fs::write(&pages, "1\n2\n1\n").unwrap();
        assert_eq!(read_pages(&pages, None, None, 4096).unwrap().len(), 3);
        let e = read_pages(&pages, None, Some(1), 4096).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("is a page stream, which has no processes"));
        let events = dir.join("events.vmt");
        std::fs::write(
            &events,
            "#vmsim-text 1\nspawn 1\nmmap 1 0x1000 8KiB rw-\nR 1 0x1000 8\nR 1 0x2000 8\n",
        )
        .unwrap();
        assert_eq!(read_pages(&events, None, Some(1), 4096).unwrap().len(), 2);
        assert_eq!(read_pages(&events, None, Some(2), 4096).unwrap().len(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
