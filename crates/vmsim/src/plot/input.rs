//! The files `vmsim plot` reads, told apart by their first line: an `--interval` CSV
//! (its header starts as [`IntervalRow::CSV_HEADER`] does and names `resident_pages`),
//! a sweep's JSON lines (the first line opens an object) or a sweep's CSV (its header
//! starts with `run,`).

use super::{Chart, PlotError, Series};
use crate::sim::IntervalRow;
use std::collections::BTreeMap;

/// A byte count in MiB, the unit of a sweep chart's x axis.
const MIB: f64 = (1u64 << 20) as f64;

fn line_error(name: &str, line: usize, reason: impl Into<String>) -> PlotError {
    PlotError::Line {
        name: name.to_string(),
        line,
        reason: reason.into(),
    }
}

/// What a chart of sweep rows plots: the column `x` across, and each of `ys` up, one
/// line per value of the grid's axes (policy and source, and every other axis that
/// takes more than one value in the rows).
#[derive(Clone, Debug, PartialEq)]
pub struct Axes {
    /// The column across: a numeric one (`ram_bytes`, `tlb_entries`, ...).
    pub x: String,
    /// The columns up, each numeric.
    pub ys: Vec<String>,
}

impl Default for Axes {
    /// Miss ratio against RAM size.
    fn default() -> Axes {
        Axes {
            x: "ram_bytes".into(),
            ys: vec!["miss_ratio".into()],
        }
    }
}

/// The columns of a sweep row that name a point of the grid, in the order a line's
/// name gives them (`policy` and `source` always; the rest where they vary).
const GRID_COLUMNS: [&str; 7] = [
    "policy",
    "source",
    "machine",
    "ram_bytes",
    "tlb_entries",
    "memory_max_bytes",
    "thp",
];

/// The chart of `text`, the contents of the file `name`; `axes` for sweep rows (an
/// interval CSV takes only the default).
pub(super) fn chart(text: &str, name: &str, axes: &Axes) -> Result<Chart, PlotError> {
    let first = text.lines().next().unwrap_or("");
    let interval_start = IntervalRow::CSV_HEADER.split(',').next().unwrap_or("");
    if first.starts_with(interval_start) && first.contains("resident_pages") {
        if *axes != Axes::default() {
            return Err(line_error(
                name,
                1,
                "an --interval CSV is drawn one way: choosing the columns is for sweep rows",
            ));
        }
        return interval(text, first, name);
    }
    let rows = if first.trim_start().starts_with('{') {
        sweep_json(text, name)?
    } else if first.starts_with("run,") {
        sweep_csv(text, first, name)?
    } else {
        return Err(line_error(
            name,
            1,
            "neither an --interval CSV nor sweep rows (JSON lines or CSV)",
        ));
    };
    sweep_chart(&rows, name, axes)
}

/// A sweep row: its line and its fields as text (`""` for null); rows whose run failed
/// are left out.
type Rows = Vec<(usize, BTreeMap<String, String>)>;

/// The chart of sweep `rows`.
fn sweep_chart(rows: &Rows, name: &str, axes: &Axes) -> Result<Chart, PlotError> {
    // A column's values, as numbers where it is a byte count shown in MiB.
    let mib = |c: &str| c == "ram_bytes" || c == "memory_max_bytes";
    let num = |line: usize, row: &BTreeMap<String, String>, c: &str| -> Result<f64, PlotError> {
        let Some(v) = row.get(c) else {
            return Err(line_error(
                name,
                line,
                format!("a sweep row without the column {c} (see vmsim sweep's rows)"),
            ));
        };
        let n: f64 = v
            .parse()
            .map_err(|_| line_error(name, line, format!("field {c} is not a number: `{v}`")))?;
        Ok(if mib(c) { n / MIB } else { n })
    };
    let varies = |c: &str| {
        let mut vals = rows.iter().map(|(_, r)| r.get(c));
        let first = vals.next().flatten();
        vals.any(|v| v != first)
    };
    let keys: Vec<&str> = GRID_COLUMNS
        .iter()
        .copied()
        .filter(|&c| c != axes.x && (c == "policy" || c == "source" || varies(c)))
        .collect();
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (line, row) in rows {
        let x = num(*line, row, &axes.x)?;
        let mut key: Vec<String> = keys
            .iter()
            .map(|&c| {
                let v = row.get(c).map_or("?", String::as_str);
                match c {
                    "policy" | "source" => v.to_string(),
                    _ => format!("{c}={v}"),
                }
            })
            .collect();
        for y in &axes.ys {
            if axes.ys.len() > 1 {
                key.insert(0, format!("{y}:"));
            }
            groups
                .entry(key.join(" "))
                .or_default()
                .push((x, num(*line, row, y)?));
            if axes.ys.len() > 1 {
                key.remove(0);
            }
        }
    }
    let series: Vec<Series> = groups
        .into_iter()
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series::new(name, points)
        })
        .collect();
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter())
        .fold((f64::MAX, 0.0f64), |(l, h), p| (l.min(p.0), h.max(p.0)));
    let label = |c: &str| match c {
        "ram_bytes" => "RAM (MiB)".to_string(),
        "memory_max_bytes" => "memory limit (MiB)".to_string(),
        "miss_ratio" => "faults per access".to_string(),
        c => c.to_string(),
    };
    let title = if *axes == Axes::default() {
        "Miss ratio against RAM size".to_string()
    } else {
        format!("{} against {}", axes.ys.join(", "), axes.x)
    };
    Ok(Chart {
        title,
        x_label: label(&axes.x),
        y_label: match axes.ys.as_slice() {
            [y] => label(y),
            _ => "count".into(),
        },
        series,
        log_x: lo > 0.0 && hi / lo > 16.0,
    })
}

/// Page faults so far and resident pages against accesses.
fn interval(text: &str, header: &str, name: &str) -> Result<Chart, PlotError> {
    let cols: Vec<&str> = header.split(',').collect();
    let col = |c: &str| cols.iter().position(|h| *h == c);
    let (Some(acc), Some(minor), Some(major), Some(rss)) = (
        col("accesses"),
        col("minor_faults"),
        col("major_faults"),
        col("resident_pages"),
    ) else {
        return Err(line_error(
            name,
            1,
            "the header lacks accesses, minor_faults, major_faults or resident_pages",
        ));
    };
    let mut faults = Vec::new();
    let mut resident = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let num = |j: usize| {
            f.get(j)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .ok_or_else(|| {
                    let field = cols.get(j).unwrap_or(&"?");
                    line_error(name, i + 1, format!("field {field} is not a number"))
                })
        };
        faults.push((num(acc)?, num(minor)? + num(major)?));
        resident.push((num(acc)?, num(rss)?));
    }
    Ok(Chart {
        title: "Faults and resident set over time".into(),
        x_label: "accesses".into(),
        y_label: "pages / faults".into(),
        series: vec![
            Series::new("page faults so far", faults),
            Series::new("resident pages", resident),
        ],
        log_x: false,
    })
}

/// The rows of a sweep's JSON lines (rows with an error left out).
fn sweep_json(text: &str, name: &str) -> Result<Rows, PlotError> {
    let mut rows = Rows::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|source| PlotError::NotJson {
                name: name.to_string(),
                line: i + 1,
                source,
            })?;
        let Some(obj) = v.as_object() else {
            return Err(line_error(name, i + 1, "a sweep row is a JSON object"));
        };
        if obj.get("error").is_some_and(|e| !e.is_null()) {
            continue;
        }
        let row = obj
            .iter()
            .map(|(k, v)| {
                let t = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    v => v.to_string(),
                };
                (k.clone(), t)
            })
            .collect();
        rows.push((i + 1, row));
    }
    Ok(rows)
}

/// The rows of a sweep's CSV (rows with an error left out).
fn sweep_csv(text: &str, header: &str, name: &str) -> Result<Rows, PlotError> {
    let cols: Vec<&str> = header.split(',').collect();
    let Some(err) = cols.iter().position(|h| *h == "error") else {
        return Err(line_error(
            name,
            1,
            "not a sweep CSV header (no error column)",
        ));
    };
    let mut rows = Rows::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f = split_csv(line);
        if f.get(err).is_some_and(|e| !e.is_empty()) {
            continue;
        }
        let row = cols
            .iter()
            .zip(f)
            .map(|(c, v)| (c.to_string(), v))
            .collect();
        rows.push((i + 1, row));
    }
    Ok(rows)
}

/// The fields of a CSV line, quotes undone (a quoted field may hold commas).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_csv_gives_faults_and_resident_pages() {
        let text = format!(
            "{}\n1000,5,5,2,1,0,0,0,0,0,7,3,99\n\n",
            IntervalRow::CSV_HEADER
        );
        let c = chart(&text, "i.csv", &Axes::default()).unwrap();
        assert_eq!(c.series.len(), 2);
        let faults = c.series[0].points[0];
        let resident = c.series[1].points[0];
        assert_eq!(faults.0, 1000.0);
        assert_eq!(resident.0, 1000.0);
        let bad = format!("{}\n1,x\n", IntervalRow::CSV_HEADER);
        let e = chart(&bad, "i.csv", &Axes::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("i.csv: line 2: field "), "{e}");
    }

    #[test]
    fn sweep_rows_group_by_policy_and_source_sorted_by_ram() {
        let json = concat!(
            r#"{"ram_bytes": 4194304, "miss_ratio": 0.1, "policy": "clock", "source": "zipf"}"#,
            "\n",
            r#"{"ram_bytes": 1048576, "miss_ratio": 0.5, "policy": "clock", "source": "zipf"}"#,
            "\n",
            r#"{"ram_bytes": 1, "miss_ratio": 1, "error": "out of memory"}"#,
            "\n"
        );
        let c = chart(json, "s.jsonl", &Axes::default()).unwrap();
        assert_eq!(c.series.len(), 1);
        assert_eq!(c.series[0].name, "clock zipf");
        assert_eq!(c.series[0].points, vec![(1.0, 0.5), (4.0, 0.1)]);
        assert!(!c.log_x);
        let csv = "run,ram_bytes,policy,source,miss_ratio,error\n0,1048576,fifo,t,0.5,\n1,2,fifo,t,x,oom\n";
        let c = chart(csv, "s.csv", &Axes::default()).unwrap();
        assert_eq!(c.series[0].points, vec![(1.0, 0.5)]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = |text: &str| chart(text, "f", &Axes::default()).unwrap_err().to_string();
        assert_eq!(
            e("hello\n"),
            "f: line 1: neither an --interval CSV nor sweep rows (JSON lines or CSV)"
        );
        assert_eq!(
            e("{\"ram_bytes\": 1}\n"),
            "f: line 1: a sweep row without the column miss_ratio (see vmsim sweep's rows)"
        );
        assert!(e("{\"ram_bytes\": 1, \"miss_ratio\": 1}\n{").starts_with("f: line 2: not JSON: "));
        assert_eq!(
            e("run,ram_bytes\n"),
            "f: line 1: not a sweep CSV header (no error column)"
        );
        assert_eq!(
            e("run,ram_bytes,policy,source,miss_ratio,error\n0,1,p,s,zz,\n"),
            "f: line 2: field miss_ratio is not a number: `zz`"
        );
        assert_eq!(
            e("accesses,resident_pages\n"),
            "f: line 1: the header lacks accesses, minor_faults, major_faults or resident_pages"
        );
        let walks = Axes {
            x: "tlb_entries".into(),
            ys: vec!["walks".into()],
        };
        let e = chart(&format!("{}\n", IntervalRow::CSV_HEADER), "i", &walks);
        assert!(e.unwrap_err().to_string().contains("for sweep rows"));
    }

    #[test]
    fn chosen_columns_give_a_line_per_value_of_the_axes_that_vary() {
        let csv = concat!(
            "run,policy,source,thp,tlb_entries,walks,tlb_l1_misses,error\n",
            "0,clock,\"a,b\",never,64,900,1000,\n",
            "1,clock,\"a,b\",never,32,1800,2000,\n",
            "2,clock,\"a,b\",always,64,90,100,\n",
        );
        let axes = Axes {
            x: "tlb_entries".into(),
            ys: vec!["walks".into()],
        };
        let c = chart(csv, "s.csv", &axes).unwrap();
        let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["clock a,b thp=always", "clock a,b thp=never"]);
        assert_eq!(c.series[1].points, vec![(32.0, 1800.0), (64.0, 900.0)]);
        assert_eq!(
            (c.x_label.as_str(), c.y_label.as_str()),
            ("tlb_entries", "walks")
        );
        let two = Axes {
            ys: vec!["walks".into(), "tlb_l1_misses".into()],
            ..axes
        };
        let c = chart(csv, "s.csv", &two).unwrap();
        assert_eq!(c.series.len(), 4);
        assert_eq!(c.series[0].name, "tlb_l1_misses: clock a,b thp=always");
        assert_eq!(c.series[0].points, vec![(64.0, 100.0)]);
        let bad = Axes {
            x: "thp".into(),
            ys: vec!["walks".into()],
        };
        let e = chart(csv, "s.csv", &bad).unwrap_err().to_string();
        assert_eq!(e, "s.csv: line 2: field thp is not a number: `never`");
    }
}
