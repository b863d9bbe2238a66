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

/// The chart of `text`, the contents of the file `name`.
pub(super) fn chart(text: &str, name: &str) -> Result<Chart, PlotError> {
    let first = text.lines().next().unwrap_or("");
    let interval_start = IntervalRow::CSV_HEADER.split(',').next().unwrap_or("");
    if first.starts_with(interval_start) && first.contains("resident_pages") {
        return interval(text, first, name);
    }
    let groups = if first.trim_start().starts_with('{') {
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
    Ok(Chart {
        title: "Miss ratio against RAM size".into(),
        x_label: "RAM (MiB)".into(),
        y_label: "faults per access".into(),
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

/// Points (RAM in MiB, miss ratio) by `policy source`, of a sweep's JSON lines; rows
/// with an error are left out.
fn sweep_json(text: &str, name: &str) -> Result<BTreeMap<String, Vec<(f64, f64)>>, PlotError> {
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
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
        if v.get("error").is_some_and(|e| !e.is_null()) {
            continue;
        }
        let get = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let (Some(ram), Some(mr)) = (get("ram_bytes"), get("miss_ratio")) else {
            return Err(line_error(
                name,
                i + 1,
                "a sweep row needs ram_bytes and miss_ratio",
            ));
        };
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?");
        let key = format!("{} {}", text("policy"), text("source"));
        groups.entry(key).or_default().push((ram / MIB, mr));
    }
    Ok(groups)
}

/// Points (RAM in MiB, miss ratio) by `policy source`, of a sweep's CSV; rows with an
/// error are left out.
fn sweep_csv(
    text: &str,
    header: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<(f64, f64)>>, PlotError> {
    let cols: Vec<&str> = header.split(',').collect();
    let col = |c: &str| cols.iter().position(|h| *h == c);
    let (Some(ram), Some(mr), Some(pol), Some(src), Some(err)) = (
        col("ram_bytes"),
        col("miss_ratio"),
        col("policy"),
        col("source"),
        col("error"),
    ) else {
        return Err(line_error(name, 1, "not a sweep CSV header"));
    };
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.get(err).is_some_and(|e| !e.is_empty()) {
            continue;
        }
        let num = |j: usize| {
            f.get(j).and_then(|v| v.parse::<f64>().ok()).ok_or_else(|| {
                line_error(name, i + 1, format!("field {} is not a number", cols[j]))
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
            .push((num(ram)? / MIB, num(mr)?));
    }
    Ok(groups)
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
        let c = chart(&text, "i.csv").unwrap();
        assert_eq!(c.series.len(), 2);
        let faults = c.series[0].points[0];
        let resident = c.series[1].points[0];
        assert_eq!(faults.0, 1000.0);
        assert_eq!(resident.0, 1000.0);
        let bad = format!("{}\n1,x\n", IntervalRow::CSV_HEADER);
        let e = chart(&bad, "i.csv").unwrap_err().to_string();
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
        let c = chart(json, "s.jsonl").unwrap();
        assert_eq!(c.series.len(), 1);
        assert_eq!(c.series[0].name, "clock zipf");
        assert_eq!(c.series[0].points, vec![(1.0, 0.5), (4.0, 0.1)]);
        assert!(!c.log_x);
        let csv = "run,ram_bytes,policy,source,miss_ratio,error\n0,1048576,fifo,t,0.5,\n1,2,fifo,t,x,oom\n";
        let c = chart(csv, "s.csv").unwrap();
        assert_eq!(c.series[0].points, vec![(1.0, 0.5)]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = |text: &str| chart(text, "f").unwrap_err().to_string();
        assert_eq!(
            e("hello\n"),
            "f: line 1: neither an --interval CSV nor sweep rows (JSON lines or CSV)"
        );
        assert_eq!(
            e("{\"ram_bytes\": 1}\n"),
            "f: line 1: a sweep row needs ram_bytes and miss_ratio"
        );
        assert!(e("{\"ram_bytes\": 1, \"miss_ratio\": 1}\n{").starts_with("f: line 2: not JSON: "));
        assert_eq!(e("run,ram_bytes\n"), "f: line 1: not a sweep CSV header");
        assert_eq!(
            e("run,ram_bytes,policy,source,miss_ratio,error\n0,1,p,s,zz,\n"),
            "f: line 2: field miss_ratio is not a number"
        );
        assert_eq!(
            e("accesses,resident_pages\n"),
            "f: line 1: the header lacks accesses, minor_faults, major_faults or resident_pages"
        );
    }
}
