//! CSV datasets: numeric features, a label column chosen by name or index, with or without
//! a header, for classification or regression.

use std::collections::BTreeSet;
use std::path::Path;

use backprop_tensor::Tensor;

use crate::dataset::{Dataset, Targets};
use crate::error::{DataError, Result};

/// Which column holds the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last column (the default).
    Last,
    /// A 0-based column index.
    Index(usize),
    /// A column name from the header.
    Name(String),
}

impl LabelColumn {
    /// Parses a flag value: a number is an index, anything else a name.
    pub fn parse(s: &str) -> LabelColumn {
        s.parse::<usize>()
            .map(LabelColumn::Index)
            .unwrap_or_else(|_| LabelColumn::Name(s.to_string()))
    }
}

/// What the label column means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Task {
    /// Each distinct label value is a class.
    #[default]
    Classification,
    /// The label is a number to predict.
    Regression,
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// The label column.
    pub label: LabelColumn,
    /// `Some(true)`/`Some(false)` to say whether the first row is a header; `None` to
    /// detect it (a header is a first row with a non-numeric feature cell).
    pub header: Option<bool>,
    /// Classification or regression.
    pub task: Task,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            label: LabelColumn::Last,
            header: None,
            task: Task::Classification,
        }
    }
}

/// Loads a CSV file. Classes are the distinct label values, ordered numerically when all
/// are numbers and alphabetically otherwise.
///
/// # Errors
/// If the file cannot be read, rows have different lengths, the label column does not
/// exist, or a feature (or regression label) is not a number; messages give the file, the
/// line and the column.
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset> {
    let file = std::fs::File::open(path)
        .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    read_csv(path, file, opts)
}

/// Parses CSV text (an upload, say) as [`load_csv`] parses a file; `name` stands for the
/// file in messages.
///
/// # Errors
/// As [`load_csv`].
///
/// ```
/// use backprop_data::{parse_csv, CsvOptions};
/// let d = parse_csv("upload", "x1,x2,label\n0.5,1,a\n-1,0.25,b\n", &CsvOptions::default()).unwrap();
/// assert_eq!((d.len(), d.features(), d.num_classes()), (2, 2, 2));
/// assert!(parse_csv("upload", "x1,x2,label\n0.5,oops,a\n1,2,b\n", &CsvOptions::default()).is_err());
/// ```
pub fn parse_csv(name: &str, text: &str, opts: &CsvOptions) -> Result<Dataset> {
    read_csv(Path::new(name), text.as_bytes(), opts)
}

fn read_csv(path: &Path, source: impl std::io::Read, opts: &CsvOptions) -> Result<Dataset> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(source);
    let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| DataError::new(path, format!("is not valid CSV: {e}")))?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|c| c.is_empty()) {
            continue;
        }
        rows.push((line, rec.iter().map(str::to_string).collect()));
    }
    if rows.is_empty() {
        return Err(DataError::new(path, "has no rows"));
    }
    let width = rows[0].1.len();
    if width < 2 {
        return Err(DataError::new(
            path,
            "needs at least two columns: features and a label",
        ));
    }
    let header_row = match opts.header {
        Some(h) => h,
        None => {
            rows[0].1.iter().any(|c| c.parse::<f64>().is_err())
                && rows.len() > 1
                && rows[1].1.iter().any(|c| c.parse::<f64>().is_ok())
        }
    };
    let names: Vec<String> = if header_row {
        rows[0].1.clone()
    } else {
        (0..width).map(|i| format!("column {i}")).collect()
    };
    let label = match &opts.label {
        LabelColumn::Last => width - 1,
        LabelColumn::Index(i) if *i < width => *i,
        LabelColumn::Index(i) => {
            return Err(DataError::new(
                path,
                format!(
                    "has {width} columns, so there is no label column {i} (columns count from 0)"
                ),
            ))
        }
        LabelColumn::Name(n) => {
            if !header_row {
                return Err(DataError::new(path, format!("has no header row, so the label column cannot be named {n:?}; give its index instead")));
            }
            names.iter().position(|c| c == n).ok_or_else(|| {
                DataError::new(
                    path,
                    format!(
                        "has no column named {n:?}; its columns are {}",
                        names.join(", ")
                    ),
                )
            })?
        }
    };
    let body = if header_row { &rows[1..] } else { &rows[..] };
    if body.is_empty() {
        return Err(DataError::new(path, "has a header but no data rows"));
    }
    let mut x = Vec::with_capacity(body.len() * (width - 1));
    let mut raw_labels = Vec::with_capacity(body.len());
    for (line, row) in body {
        if row.len() != width {
            return Err(DataError::new(
                path,
                format!(
                    "line {line} has {} columns, the first row has {width}",
                    row.len()
                ),
            ));
        }
        for (c, cell) in row.iter().enumerate() {
            if c == label {
                raw_labels.push((line, cell.clone()));
                continue;
            }
            let v: f32 = cell.parse().map_err(|_| {
                DataError::new(
                    path,
                    format!(
                        "line {line}, column {} ({}): {cell:?} is not a number",
                        c + 1,
                        names[c]
                    ),
                )
            })?;
            if !v.is_finite() {
                return Err(DataError::new(
                    path,
                    format!(
                        "line {line}, column {} ({}): {cell:?} is not a finite number",
                        c + 1,
                        names[c]
                    ),
                ));
            }
            x.push(v);
        }
    }
    let n = body.len();
    let targets = match opts.task {
        Task::Regression => {
            let mut v = Vec::with_capacity(n);
            for (line, cell) in &raw_labels {
                v.push(cell.parse::<f32>().map_err(|_| {
                    DataError::new(path, format!("line {line}, column {} ({}): label {cell:?} is not a number, as regression needs", label + 1, names[label]))
                })?);
            }
            Targets::Values(Tensor::from_vec(v, &[n, 1]))
        }
        Task::Classification => {
            let distinct: BTreeSet<&str> = raw_labels.iter().map(|(_, c)| c.as_str()).collect();
            let mut classes: Vec<String> = distinct.iter().map(|s| s.to_string()).collect();
            if classes.iter().all(|c| c.parse::<f64>().is_ok()) {
                classes.sort_by(|a, b| {
                    a.parse::<f64>()
                        .unwrap()
                        .total_cmp(&b.parse::<f64>().unwrap())
                });
            }
            let labels = raw_labels
                .iter()
                .map(|(_, c)| classes.iter().position(|k| k == c).unwrap())
                .collect();
            Targets::Classes {
                labels,
                names: classes,
            }
        }
    };
    Ok(Dataset {
        name: path.display().to_string(),
        x: Tensor::from_vec(x, &[n, width - 1]),
        targets,
        image_shape: None,
    })
}
