//! Charts: lines over a linear or logarithmic x axis, with marked points, described as
//! data ([`Chart`]) and drawn as SVG or PNG (`draw.rs`, with the `plot` feature).
//!
//! A chart comes from the files `vmsim plot` reads ([`Chart::read`]: an `--interval`
//! CSV, or a sweep's rows), from miss-ratio curves ([`Chart::miss_ratio`]) or from a
//! working-set report ([`Chart::working_set`]).

#[cfg(feature = "plot")]
mod draw;
mod input;

pub use input::Axes;

use crate::policy::analysis::WssReport;
use crate::policy::mrc::Curves;
use std::path::Path;

#[cfg(feature = "plot")]
pub use draw::Image;

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
    /// A point to mark (a knee), if any.
    pub mark: Option<(f64, f64)>,
}

impl Series {
    /// A line named `name` through `points`, with no mark.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            mark: None,
        }
    }
}

/// A line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The caption.
    pub title: String,
    /// The x axis's label.
    pub x_label: String,
    /// The y axis's label.
    pub y_label: String,
    /// The lines, in legend order.
    pub series: Vec<Series>,
    /// Whether x is on a logarithmic scale.
    pub log_x: bool,
}

/// The kind of file a chart is written as, told by the file's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartFormat {
    /// PNG: the SVG rasterised.
    Png,
    /// SVG.
    Svg,
}

impl ChartFormat {
    /// The format `path` names by its extension (`.png` or `.svg`, any case).
    pub fn of_path(path: &Path) -> Result<ChartFormat, PlotError> {
        let e = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if e.eq_ignore_ascii_case("png") {
            Ok(ChartFormat::Png)
        } else if e.eq_ignore_ascii_case("svg") {
            Ok(ChartFormat::Svg)
        } else {
            Err(PlotError::NotAChartName(path.display().to_string()))
        }
    }
}

/// Why a chart cannot be read or drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output's name ends in neither `.png` nor `.svg`.
    #[error("{0}: a chart is written as NAME.png or NAME.svg; the name says neither")]
    NotAChartName(String),
    /// The input could not be read.
    #[error("reading {name}: {source}")]
    Read {
        /// The input.
        name: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line of the input is not what its kind of file holds.
    #[error("{name}: line {line}: {reason}")]
    Line {
        /// The input.
        name: String,
        /// The line, counting from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line of sweep rows is not JSON.
    #[error("{name}: line {line}: not JSON: {source}")]
    NotJson {
        /// The input.
        name: String,
        /// The line, counting from 1.
        line: usize,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The chart has no points.
    #[error("nothing to plot")]
    Empty,
    /// Plotters could not draw the chart `name`.
    #[error("drawing {name}: {reason}")]
    Draw {
        /// The chart's file.
        name: String,
        /// What plotters said.
        reason: String,
    },
    /// The chart's SVG could not be read back for rasterising.
    #[error("rasterising {name}: {reason}")]
    Rasterise {
        /// The chart's file.
        name: String,
        /// What the SVG reader said.
        reason: String,
    },
    /// No image of the chart's size could be made.
    #[error("a {width}x{height} image for {name}")]
    ImageSize {
        /// Its width in pixels.
        width: u32,
        /// Its height in pixels.
        height: u32,
        /// The chart's file.
        name: String,
    },
    /// The image could not be encoded as PNG.
    #[error("encoding {name}: {reason}")]
    Encode {
        /// The chart's file.
        name: String,
        /// What the encoder said.
        reason: String,
    },
}

impl Chart {
    /// The chart of the file `path` that `vmsim plot` reads: an `--interval` CSV (page
    /// faults so far and resident pages against accesses) or a sweep's rows, JSON lines
    /// or CSV (by default miss ratio against RAM size, one line per policy and source;
    /// `axes` chooses other columns).
    pub fn read(path: &Path, axes: &Axes) -> Result<Chart, PlotError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PlotError::Read {
            name: name.clone(),
            source,
        })?;
        input::chart(&text, &name, axes)
    }

    /// Miss-ratio curves (miss ratio against frames, log scale), knees marked; `name`
    /// names the trace.
    pub fn miss_ratio(c: &Curves, name: &str) -> Chart {
        Chart {
            title: format!("miss ratio: {name}"),
            x_label: "frames".into(),
            y_label: "miss ratio".into(),
            series: c
                .knees
                .iter()
                .map(|(p, _)| Series {
                    mark: c.knee_point(p),
                    ..Series::new(p.clone(), c.curve(p))
                })
                .collect(),
            log_x: true,
        }
    }

    /// The working-set size over time of report `r`; `name` names the trace.
    pub fn working_set(r: &WssReport, name: &str) -> Chart {
        let w = &r.working_set;
        let points = w.points.iter().map(|&(t, n)| (t as f64, n as f64));
        Chart {
            title: format!("working set, τ = {}: {name}", w.window),
            x_label: "reference".into(),
            y_label: "pages".into(),
            series: vec![Series::new(
                format!("|W(t, {})|", w.window),
                points.collect(),
            )],
            log_x: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_file_is_named_png_or_svg() {
        assert_eq!(
            ChartFormat::of_path(Path::new("a.PNG")).unwrap(),
            ChartFormat::Png
        );
        assert_eq!(
            ChartFormat::of_path(Path::new("a.svg")).unwrap(),
            ChartFormat::Svg
        );
        let e = ChartFormat::of_path(Path::new("a.jpg")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.jpg: a chart is written as NAME.png or NAME.svg; the name says neither"
        );
        assert!(ChartFormat::of_path(Path::new("noext")).is_err());
    }

    #[test]
    fn an_unreadable_input_is_named() {
        let e = Chart::read(Path::new("/no/such/file.csv"), &Axes::default()).unwrap_err();
        assert!(
            e.to_string().starts_with("reading /no/such/file.csv: "),
            "{e}"
        );
    }
}
