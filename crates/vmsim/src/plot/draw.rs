//! Drawing a [`Chart`]: plotters draws it as SVG; PNG is that SVG rasterised by resvg
//! at twice the size, with the system's fonts for the text.

use super::{Chart, ChartFormat, PlotError, Series};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

/// A drawn chart.
#[derive(Clone, Debug)]
pub struct Image {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// What the reader should know: a PNG drawn without fonts has no text.
    pub warning: Option<String>,
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

/// Families tried, in order, for the `sans-serif` plotters asks for.
const SANS: [&str; 5] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "Arial",
    "Helvetica",
];

impl Chart {
    /// Draws the chart as `format`; `name` (the file's) names it in errors and warnings.
    pub fn render(&self, format: ChartFormat, name: &str) -> Result<Image, PlotError> {
        let svg = self.svg(name)?;
        match format {
            ChartFormat::Svg => Ok(Image {
                bytes: svg.into_bytes(),
                warning: None,
            }),
            ChartFormat::Png => png_of(&svg, name),
        }
    }

    /// The chart as SVG text.
    fn svg(&self, name: &str) -> Result<String, PlotError> {
        let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
        for &(x, y) in self.series.iter().flat_map(|s| s.points.iter()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            return Err(PlotError::Empty);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.05 };
        let labels = (self.x_label.as_str(), self.y_label.as_str());
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
            let draw = || -> Result<(), Box<dyn std::error::Error>> {
                root.fill(&WHITE)?;
                let mut b = ChartBuilder::on(&root);
                b.caption(&self.title, ("sans-serif", 22))
                    .margin(16)
                    .x_label_area_size(44)
                    .y_label_area_size(64);
                if self.log_x {
                    let mut chart =
                        b.build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), 0.0..y1)?;
                    draw_series(&mut chart, &self.series, labels)?;
                } else {
                    let mut chart = b.build_cartesian_2d(x0..x1, 0.0..y1)?;
                    draw_series(&mut chart, &self.series, labels)?;
                }
                root.present()?;
                Ok(())
            };
            draw().map_err(|e| PlotError::Draw {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok(svg)
    }
}

/// Draws the mesh with its axis labels, the lines, their marks and the legend.
fn draw_series<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
    (x_label, y_label): (&str, &str),
) -> Result<(), Box<dyn std::error::Error + 'a>>
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

/// Rasterises `svg` into PNG bytes at twice the chart's size.
fn png_of(svg: &str, name: &str) -> Result<Image, PlotError> {
    let mut opt = resvg::usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    // Plotters asks for `sans-serif`: map it to a family this system has.
    let families: Vec<String> = opt
        .fontdb
        .faces()
        .filter_map(|f| f.families.first().map(|(n, _)| n.clone()))
        .collect();
    let pick = SANS
        .iter()
        .find(|want| families.iter().any(|f| f == *want))
        .map(|s| s.to_string())
        .or_else(|| families.first().cloned());
    if let Some(family) = pick {
        opt.font_family = family.clone();
        opt.fontdb_mut().set_sans_serif_family(family);
    }
    let warning = opt.fontdb.is_empty().then(|| {
        format!("no system fonts found, so {name} has no text (install fonts-dejavu-core, or write SVG)")
    });
    let tree = resvg::usvg::Tree::from_str(svg, &opt).map_err(|e| PlotError::Rasterise {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    let size = tree.size().to_int_size();
    let (width, height) = (size.width() * 2, size.height() * 2);
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(width, height).ok_or_else(|| PlotError::ImageSize {
            width,
            height,
            name: name.to_string(),
        })?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    let bytes = pixmap.encode_png().map_err(|e| PlotError::Encode {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Image { bytes, warning })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: Vec<(f64, f64)>) -> Chart {
        Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series::new("s", points)],
            log_x: false,
        }
    }

    #[test]
    fn a_chart_is_drawn_as_svg() {
        let img = chart(vec![(1.0, 2.0), (3.0, 1.0)])
            .render(ChartFormat::Svg, "c.svg")
            .unwrap();
        assert!(String::from_utf8(img.bytes).unwrap().contains("<svg"));
        assert!(img.warning.is_none());
    }

    #[test]
    fn a_chart_without_points_is_refused() {
        let e = chart(Vec::new())
            .render(ChartFormat::Svg, "c.svg")
            .unwrap_err();
        assert_eq!(e.to_string(), "nothing to plot");
    }
}
