//! Charts: lines over a linear or logarithmic x axis, with marked points. Plotters
//! draws every chart as SVG; a `.png` output is that SVG rasterised by resvg, with
//! the system's fonts for the text.

use anyhow::{Context, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use std::io::Write as _;
use std::path::Path;
use vmsim::output::OutputFile;

/// One line of a chart.
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
    /// A point to mark (a knee), if any.
    pub mark: Option<(f64, f64)>,
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Opens the chart file `path` (before the work that draws it): its name must end in
/// `.png` or `.svg`, and it must be none of `inputs`.
pub fn create(path: &Path, inputs: &[&Path]) -> Result<OutputFile> {
    if kind(path).is_none() {
        anyhow::bail!(
            "{}: a chart is written as NAME.png or NAME.svg; the name says neither",
            path.display()
        );
    }
    Ok(OutputFile::create(path, inputs)?)
}

/// Whether `path` names a PNG (`Some(true)`) or an SVG (`Some(false)`) chart.
fn kind(path: &Path) -> Option<bool> {
    let e = path.extension()?.to_str()?;
    if e.eq_ignore_ascii_case("png") {
        Some(true)
    } else if e.eq_ignore_ascii_case("svg") {
        Some(false)
    } else {
        None
    }
}

/// Writes a line chart to `out` (PNG if its name ends in `.png`, else SVG; see
/// [`create`]). `log_x` puts x on a logarithmic scale.
pub fn lines(
    mut out: OutputFile,
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
    log_x: bool,
) -> Result<()> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        anyhow::bail!("nothing to plot");
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.05 };
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
    let draw = |root: &DrawingArea<SVGBackend, plotters::coord::Shift>| -> Result<()> {
        root.fill(&WHITE)?;
        let mut b = ChartBuilder::on(root);
        b.caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64);
        if log_x {
            let mut chart = b.build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), 0.0..y1)?;
            draw_series(&mut chart, series, (x_label, y_label))?;
        } else {
            let mut chart = b.build_cartesian_2d(x0..x1, 0.0..y1)?;
            draw_series(&mut chart, series, (x_label, y_label))?;
        }
        root.present()?;
        Ok(())
    };
    let path = out.path().to_path_buf();
    draw(&root).with_context(|| format!("drawing {}", path.display()))?;
    drop(root);
    let bytes = if kind(&path) == Some(true) {
        png_of(&svg, &path)?
    } else {
        svg.into_bytes()
    };
    out.write_all(&bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    out.commit()?;
    Ok(())
}

/// Rasterises `svg` into PNG bytes at twice the chart's size.
fn png_of(svg: &str, path: &Path) -> Result<Vec<u8>> {
    let mut opt = resvg::usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    // Plotters asks for `sans-serif`: map it to a family this system has.
    let families: Vec<String> = opt
        .fontdb
        .faces()
        .filter_map(|f| f.families.first().map(|(n, _)| n.clone()))
        .collect();
    let pick = [
        "DejaVu Sans",
        "Liberation Sans",
        "Noto Sans",
        "Arial",
        "Helvetica",
    ]
    .iter()
    .find(|want| families.iter().any(|f| f == *want))
    .map(|s| s.to_string())
    .or_else(|| families.first().cloned());
    if let Some(family) = pick {
        opt.font_family = family.clone();
        opt.fontdb_mut().set_sans_serif_family(family);
    }
    if opt.fontdb.is_empty() {
        eprintln!(
            "vmsim: warning: no system fonts found, so {} has no text (install fonts-dejavu-core, or write SVG)",
            path.display()
        );
    }
    let tree = resvg::usvg::Tree::from_str(svg, &opt)
        .with_context(|| format!("rasterising {}", path.display()))?;
    let size = tree.size().to_int_size();
    let (w, h) = (size.width() * 2, size.height() * 2);
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h)
        .with_context(|| format!("a {w}x{h} image for {}", path.display()))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| anyhow::anyhow!("encoding {}: {e}", path.display()))
}

/// `vmsim plot`: a chart of an `--interval` CSV (faults and resident pages over time)
/// or of a sweep's rows (miss ratio against RAM size, one line per policy and source).
pub fn plot_file(input: &Path, output: &Path) -> Result<()> {
    let output = create(output, &[input])?;
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let first = text.lines().next().unwrap_or("");
    let name = input.display().to_string();
    if first.starts_with(
        vmsim::sim::IntervalRow::CSV_HEADER
            .split(',')
            .next()
            .unwrap_or(""),
    ) && first.contains("resident_pages")
    {
        let cols: Vec<&str> = first.split(',').collect();
        let col = |c: &str| cols.iter().position(|h| *h == c);
        let (Some(acc), Some(minor), Some(major), Some(rss)) = (
            col("accesses"),
            col("minor_faults"),
            col("major_faults"),
            col("resident_pages"),
        ) else {
            anyhow::bail!("{name}: line 1: the header lacks accesses, minor_faults, major_faults or resident_pages");
        };
        let mut faults = Vec::new();
        let mut resident = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            let num = |j: usize| -> Result<f64> {
                f.get(j)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .with_context(|| {
                        format!(
                            "{name}: line {}: field {} is not a number",
                            i + 1,
                            cols.get(j).unwrap_or(&"?")
                        )
                    })
            };
            faults.push((num(acc)?, num(minor)? + num(major)?));
            resident.push((num(acc)?, num(rss)?));
        }
        let series = [
            Series {
                name: "page faults so far".into(),
                points: faults,
                mark: None,
            },
            Series {
                name: "resident pages".into(),
                points: resident,
                mark: None,
            },
        ];
        return lines(
            output,
            "Faults and resident set over time",
            ("accesses", "pages / faults"),
            &series,
            false,
        );
    }
    // A sweep: JSON lines or CSV with a header.
    let mut groups: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    if first.trim_start().starts_with('{') {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{name}: line {}: not JSON", i + 1))?;
            if v.get("error").is_some_and(|e| !e.is_null()) {
                continue;
            }
            let get = |k: &str| v.get(k).and_then(|x| x.as_f64());
            let (Some(ram), Some(mr)) = (get("ram_bytes"), get("miss_ratio")) else {
                anyhow::bail!(
                    "{name}: line {}: a sweep row needs ram_bytes and miss_ratio",
                    i + 1
                );
            };
            let key = format!(
                "{} {}",
                v.get("policy").and_then(|x| x.as_str()).unwrap_or("?"),
                v.get("source").and_then(|x| x.as_str()).unwrap_or("?")
            );
            groups
                .entry(key)
                .or_default()
                .push((ram / (1u64 << 20) as f64, mr));
        }
    } else if first.starts_with("run,") {
        let cols: Vec<&str> = first.split(',').collect();
        let col = |c: &str| cols.iter().position(|h| *h == c);
        let (Some(ram), Some(mr), Some(pol), Some(src), Some(err)) = (
            col("ram_bytes"),
            col("miss_ratio"),
            col("policy"),
            col("source"),
            col("error"),
        ) else {
            anyhow::bail!("{name}: line 1: not a sweep CSV header");
        };
        for (i, line) in text.lines().enumerate().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.get(err).is_some_and(|e| !e.is_empty()) {
                continue;
            }
            let num = |j: usize| -> Result<f64> {
                f.get(j)
                    .and_then(|v| v.parse::<f64>().ok())
                    .with_context(|| {
                        format!("{name}: line {}: field {} is not a number", i + 1, cols[j])
                    })
            };
            let key = format!(
                "{} {}",
                f.get(pol).unwrap_or(&"?"),
                f.get(src).unwrap_or(&"?")
            );
            groups
                .entry(key)
                .or_default()
                .push((num(ram)? / (1u64 << 20) as f64, num(mr)?));
        }
    } else {
        anyhow::bail!(
            "{name}: line 1: neither an --interval CSV nor sweep rows (JSON lines or CSV)"
        );
    }
    let series: Vec<Series> = groups
        .into_iter()
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name,
                points,
                mark: None,
            }
        })
        .collect();
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter())
        .fold((f64::MAX, 0.0f64), |(l, h), p| (l.min(p.0), h.max(p.0)));
    lines(
        output,
        "Miss ratio against RAM size",
        ("RAM (MiB)", "faults per access"),
        &series,
        lo > 0.0 && hi / lo > 16.0,
    )
}

/// Draws the mesh with its axis labels, the lines, their marks and the legend.
fn draw_series<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
    (x_label, y_label): (&str, &str),
) -> Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        if let Some(m) = s.mark {
            chart.draw_series(std::iter::once(Circle::new(m, 6, colour.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
