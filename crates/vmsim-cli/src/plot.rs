//! Chart files: opened before the work (a bad name fails at once) and written once the
//! library has drawn the chart.

use anyhow::{Context, Result};
use std::io::Write as _;
use std::path::Path;
use vmsim::output::OutputFile;
use vmsim::plot::{Axes, Chart, ChartFormat};

/// Opens the chart file `path`: its name must end in `.png` or `.svg`, and it must be
/// none of `inputs`.
pub fn create(path: &Path, inputs: &[&Path]) -> Result<(OutputFile, ChartFormat)> {
    let format = ChartFormat::of_path(path)?;
    Ok((OutputFile::create(path, inputs)?, format))
}

/// Draws `chart` into `out` (from [`create`]).
pub fn write(out: (OutputFile, ChartFormat), chart: &Chart) -> Result<()> {
    let (mut out, format) = out;
    let name = out.path().display().to_string();
    let image = chart.render(format, &name)?;
    if let Some(w) = image.warning {
        eprintln!("vmsim: warning: {w}");
    }
    out.write_all(&image.bytes)
        .with_context(|| format!("writing {name}"))?;
    out.commit()?;
    Ok(())
}

/// `vmsim plot`: a chart of an `--interval` CSV or of a sweep's rows (`axes`: which
/// columns).
pub fn plot_file(input: &Path, output: &Path, axes: &Axes) -> Result<()> {
    let out = create(output, &[input])?;
    write(out, &Chart::read(input, axes)?)
}
