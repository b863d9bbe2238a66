//! Charts as SVG files: lines over a linear or logarithmic x axis, with marked points.

use anyhow::{Context, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use std::path::Path;

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

/// Writes a line chart to `path` (SVG). `log_x` puts x on a logarithmic scale.
pub fn lines(
    path: &Path,
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
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
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
    draw(&root).with_context(|| format!("writing {}", path.display()))
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
