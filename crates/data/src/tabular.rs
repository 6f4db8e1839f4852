//! Tables: a CSV file read into rows of cells ([`Table`]), a fixed stratified test split
//! ([`test_split`]), and the data contract fitted on the training rows ([`TableSchema`]):
//! which column is the label, what the task is, the class names, each feature column's
//! kind (a number, scaled; or a category, one-hot encoded) and how missing cells are
//! handled. A model trained on a table keeps its schema, so that a later file is encoded
//! exactly as the training rows were.
//!
//! Missing cells are `""`, `?`, `NA`, `N/A`, `NaN` and `null` (any case).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use backprop_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::csv_data::{LabelColumn, Task};
use crate::dataset::{Dataset, Targets};
use crate::error::{DataError, Result};

/// Whether a cell stands for a missing value.
///
/// ```
/// use backprop_data::is_missing;
/// assert!(is_missing("") && is_missing("NA") && is_missing("nan") && is_missing("?"));
/// assert!(!is_missing("0") && !is_missing("red"));
/// ```
pub fn is_missing(cell: &str) -> bool {
    cell.is_empty()
        || cell == "?"
        || ["na", "n/a", "nan", "null"]
            .iter()
            .any(|m| cell.eq_ignore_ascii_case(m))
}

/// A cell as a finite number.
fn number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// How numeric feature columns are scaled; statistics come from the training rows only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// `(x − mean) / std` (the default).
    #[default]
    Standard,
    /// `(x − min) / (max − min)`, into [0, 1] on the training rows.
    MinMax,
    /// As read.
    None,
}

impl Scaling {
    /// Every scaling, in the order the CLI lists them.
    pub const ALL: &'static [Scaling] = &[Scaling::Standard, Scaling::MinMax, Scaling::None];

    /// The name a user types.
    pub fn name(self) -> &'static str {
        match self {
            Scaling::Standard => "standard",
            Scaling::MinMax => "minmax",
            Scaling::None => "none",
        }
    }
}

/// What to do with missing cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// An error naming the line and column (the default).
    #[default]
    Error,
    /// Leave out every row with a missing cell.
    Drop,
    /// Fill a number with the training mean, a category with the most frequent one.
    Impute,
}

impl Missing {
    /// Every policy, in the order the CLI lists them.
    pub const ALL: &'static [Missing] = &[Missing::Error, Missing::Drop, Missing::Impute];

    /// The name a user types.
    pub fn name(self) -> &'static str {
        match self {
            Missing::Error => "error",
            Missing::Drop => "drop",
            Missing::Impute => "impute",
        }
    }
}

/// How to read a table for training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// The label column.
    pub label: LabelColumn,
    /// Whether the first row is a header (`None`: detect it).
    pub header: Option<bool>,
    /// The task; `None` is classification, refused when the labels look like numbers to
    /// predict.
    pub task: Option<Task>,
    /// Feature scaling.
    pub scale: Scaling,
    /// Missing cells.
    pub missing: Missing,
    /// The seed of the test split (independent of the training seed).
    pub split_seed: u64,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            label: LabelColumn::Last,
            header: None,
            task: None,
            scale: Scaling::Standard,
            missing: Missing::Error,
            split_seed: 0,
        }
    }
}

/// One data row of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// Its line in the file (1-based, right for `\r\n` files and quoted line breaks).
    pub line: u64,
    /// Its position among the data rows (0-based, header excluded).
    pub index: usize,
    /// The cells, trimmed.
    pub cells: Vec<String>,
}

/// A CSV file as rows of cells, all rows of the same width.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The file (or a name standing for it) for messages.
    pub source: PathBuf,
    /// Column names: the header's, or `column 0`, `column 1`, ...
    pub names: Vec<String>,
    /// Whether the first row was taken as the header.
    pub header: bool,
    /// The data rows.
    pub rows: Vec<TableRow>,
}

impl Table {
    /// Reads a file with [`Table::parse`].
    ///
    /// # Errors
    /// If it cannot be read, or as [`Table::parse`].
    pub fn load(path: &Path) -> Result<Table> {
        let bytes = std::fs::read(path)
            .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
        Table::parse(path, &bytes)
    }

    /// Parses CSV bytes; no row is taken as a header yet ([`Table::use_header`]).
    ///
    /// # Errors
    /// Invalid CSV, no rows, fewer than two columns, or rows of different widths (naming
    /// the line).
    pub fn parse(source: &Path, bytes: &[u8]) -> Result<Table> {
        let newlines: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        // a record's position may point at the line break before it (the `\n` of a `\r\n`
        // the reader split in two), so skip line breaks to the record's first byte
        let line_of = |byte: u64| {
            let mut b = byte as usize;
            while b < bytes.len() && matches!(bytes[b], b'\r' | b'\n') {
                b += 1;
            }
            1 + newlines.partition_point(|&i| i < b) as u64
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let mut rows = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(|e| DataError::new(source, format!("is not valid CSV: {e}")))?;
            if rec.iter().all(str::is_empty) {
                continue;
            }
            let line = rec.position().map_or(0, |p| line_of(p.byte()));
            let index = rows.len();
            rows.push(TableRow {
                line,
                index,
                cells: rec.iter().map(str::to_string).collect(),
            });
        }
        let Some(first) = rows.first() else {
            return Err(DataError::new(source, "has no rows"));
        };
        let width = first.cells.len();
        if width < 2 {
            return Err(DataError::new(
                source,
                "needs at least two columns: features and a label",
            ));
        }
        if let Some(r) = rows.iter().find(|r| r.cells.len() != width) {
            return Err(DataError::new(
                source,
                format!(
                    "line {} has {} columns, the first row has {width}",
                    r.line,
                    r.cells.len()
                ),
            ));
        }
        Ok(Table {
            source: source.to_path_buf(),
            names: (0..width).map(|i| format!("column {i}")).collect(),
            header: false,
            rows,
        })
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// Whether the first row looks like a header, judged on feature cells only (every
    /// column but `label`): a header if a column of numbers starts with a text cell; or,
    /// when no feature column holds numbers, if each first cell appears nowhere else in its
    /// column.
    pub fn looks_like_header(&self, label: usize) -> bool {
        if self.rows.len() < 2 {
            return false;
        }
        let (first, rest) = (&self.rows[0].cells, &self.rows[1..]);
        let mut numeric_columns = 0;
        for c in (0..self.width()).filter(|&c| c != label) {
            let cells = || rest.iter().map(|r| r.cells[c].as_str());
            let numbers = cells().filter(|s| number(s).is_some()).count();
            let numeric = numbers > 0 && cells().all(|s| number(s).is_some() || is_missing(s));
            if numeric {
                numeric_columns += 1;
                if !is_missing(&first[c]) && number(&first[c]).is_none() {
                    return true;
                }
            }
        }
        numeric_columns == 0
            && (0..self.width())
                .filter(|&c| c != label)
                .all(|c| !is_missing(&first[c]) && rest.iter().all(|r| r.cells[c] != first[c]))
    }

    /// Takes the first row as the column names.
    ///
    /// # Errors
    /// If no data row would be left.
    pub fn use_header(&mut self) -> Result<()> {
        if self.rows.len() < 2 {
            return Err(DataError::new(
                &self.source,
                "has a header but no data rows",
            ));
        }
        let head = self.rows.remove(0);
        self.names = head
            .cells
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                if n.is_empty() {
                    format!("column {i}")
                } else {
                    n
                }
            })
            .collect();
        self.header = true;
        for (i, r) in self.rows.iter_mut().enumerate() {
            r.index = i;
        }
        Ok(())
    }

    /// Resolves the label column, deciding on the header first when `header` is `None`.
    ///
    /// # Errors
    /// An index beyond the last column, or a name the header does not have.
    pub fn settle_label(&mut self, label: &LabelColumn, header: Option<bool>) -> Result<usize> {
        let named_in_first =
            matches!(label, LabelColumn::Name(n) if self.rows[0].cells.contains(n));
        let width = self.width();
        let guess = match label {
            LabelColumn::Index(i) => (*i).min(width - 1),
            _ => width - 1,
        };
        let header = header.unwrap_or_else(|| named_in_first || self.looks_like_header(guess));
        if header {
            self.use_header()?;
        }
        match label {
            LabelColumn::Last => Ok(width - 1),
            LabelColumn::Index(i) if *i < width => Ok(*i),
            LabelColumn::Index(i) => Err(DataError::new(
                &self.source,
                format!("has {width} columns, so there is no label column {i} (columns count from 0)"),
            )),
            LabelColumn::Name(n) if !self.header => Err(DataError::new(
                &self.source,
                format!("has no header row, so the label column cannot be named {n:?}; give its index instead"),
            )),
            LabelColumn::Name(n) => self.names.iter().position(|c| c == n).ok_or_else(|| {
                DataError::new(
                    &self.source,
                    format!("has no column named {n:?}; its columns are {}", self.names.join(", ")),
                )
            }),
        }
    }

    /// Leaves out every row with a missing cell; returns how many were left out.
    pub fn drop_missing(&mut self) -> usize {
        let before = self.rows.len();
        self.rows.retain(|r| !r.cells.iter().any(|c| is_missing(c)));
        before - self.rows.len()
    }

    fn at(&self, row: &TableRow, c: usize) -> String {
        format!("line {}, column {} ({})", row.line, c + 1, self.names[c])
    }
}

/// The held-out test rows of a table: a fifth of the rows of every class (of all rows for
/// regression, `keys` all equal), chosen by a shuffle seeded with `seed` alone, so that runs
/// with different training seeds are tested on the same rows. Returns positions into
/// `keys`: `(train, test)`, both sorted.
///
/// ```
/// use backprop_data::test_split;
/// let keys: Vec<&str> = (0..50).map(|i| if i < 40 { "a" } else { "b" }).collect();
/// let (train, test) = test_split(&keys, 0);
/// assert_eq!((train.len(), test.len()), (40, 10));
/// assert_eq!(test.iter().filter(|&&i| keys[i] == "b").count(), 2); // a fifth of each class
/// assert_eq!(test_split(&keys, 0), (train, test));
/// ```
pub fn test_split<K: Ord>(keys: &[K], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut groups: BTreeMap<&K, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        groups.entry(k).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    // each class's share of a fifth of all rows, rounded by largest remainder (so that
    // many small classes still give a test set), leaving every class a training row
    let target = (keys.len() as f64 * 0.2).round() as usize;
    let share = |g: &Vec<usize>| g.len() as f64 * target as f64 / keys.len().max(1) as f64;
    let mut quota: Vec<usize> = groups
        .iter()
        .map(|g| (share(g).floor() as usize).min(g.len() - 1))
        .collect();
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| {
        let frac = |g: &Vec<usize>| share(g) - share(g).floor();
        frac(&groups[b]).total_cmp(&frac(&groups[a]))
    });
    let mut total: usize = quota.iter().sum();
    for &g in order.iter().cycle().take(2 * order.len()) {
        if total >= target {
            break;
        }
        if quota[g] + 1 < groups[g].len() {
            quota[g] += 1;
            total += 1;
        }
    }
    let mut rng = Rng::seed(seed ^ 0x7E57_5B11_7000_0000);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (idx, k) in groups.iter_mut().zip(quota) {
        rng.shuffle(idx);
        test.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// What a feature column holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureKind {
    /// Numbers, encoded as `(x − center) / scale`; a missing cell may be filled with `fill`.
    Numeric {
        /// Subtracted.
        center: f64,
        /// Divided by.
        scale: f64,
        /// The training mean (for imputation).
        fill: f64,
    },
    /// Text: one input per category, 1 for the row's category and 0 for the others.
    Categorical {
        /// The categories, sorted.
        categories: Vec<String>,
        /// The most frequent training category (for imputation).
        fill: usize,
    },
}

/// A feature column of the file and how it is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The column's name.
    pub name: String,
    /// Its position in the training file.
    pub column: usize,
    /// Its encoding.
    #[serde(flatten)]
    pub kind: FeatureKind,
}

impl Feature {
    /// Model inputs this column becomes.
    pub fn width(&self) -> usize {
        match &self.kind {
            FeatureKind::Numeric { .. } => 1,
            FeatureKind::Categorical { categories, .. } => categories.len(),
        }
    }
}

/// What the label column is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum TableTarget {
    /// Classes, by name; the class index is the position.
    Classification {
        /// The class names.
        classes: Vec<String>,
    },
    /// A number, trained as `(y − mean) / std`.
    Regression {
        /// The training mean (0 when unscaled).
        mean: f64,
        /// The training standard deviation (1 when unscaled).
        std: f64,
    },
}

/// The data contract of a model trained on a table: fitted on the training rows, stored in
/// the checkpoint, and applied to every later file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The training file's column names, in order.
    pub columns: Vec<String>,
    /// Whether the training file had a header.
    pub header: bool,
    /// The label column's name.
    pub label: String,
    /// Its position.
    pub label_column: usize,
    /// The task and the classes, or the target's scaling.
    pub target: TableTarget,
    /// The feature columns, in file order.
    pub features: Vec<Feature>,
    /// The scaling of numeric columns.
    pub scale: Scaling,
    /// The missing-cell policy.
    pub missing: Missing,
    /// The seed of the test split.
    pub split_seed: u64,
}

/// Most distinct text values a categorical column may have when they are also more than
/// half the rows (more look like an identifier, not a category).
const MAX_CATEGORIES: usize = 100;

impl TableSchema {
    /// Fits the contract: column kinds, categories and class names from all `table` rows;
    /// scaling statistics, fill values and the target's scaling from the `train` rows only.
    ///
    /// # Errors
    /// A column of text with too many distinct values, an empty column, decimal labels
    /// without an explicit task, a non-numeric regression label.
    pub fn fit(
        table: &Table,
        label: usize,
        train: &[usize],
        opts: &TableOptions,
    ) -> Result<TableSchema> {
        let mut features = Vec::new();
        for c in (0..table.width()).filter(|&c| c != label) {
            features.push(fit_feature(table, c, train, opts.scale)?);
        }
        let target = match opts.task {
            Some(Task::Regression) => {
                let ys = column_numbers(table, label, train, "label ")?;
                let (mean, std) = if opts.scale == Scaling::None {
                    (0.0, 1.0)
                } else {
                    mean_std(&ys)
                };
                TableTarget::Regression { mean, std }
            }
            task => TableTarget::Classification {
                classes: class_names(table, label, task.is_none())?,
            },
        };
        Ok(TableSchema {
            columns: table.names.clone(),
            header: table.header,
            label: table.names[label].clone(),
            label_column: label,
            target,
            features,
            scale: opts.scale,
            missing: opts.missing,
            split_seed: opts.split_seed,
        })
    }

    /// Model inputs: numeric columns count one, categorical ones one per category.
    pub fn inputs(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// The model inputs' names (`age`, `colour=red`, `colour=blue`, ...).
    pub fn input_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.features {
            match &f.kind {
                FeatureKind::Numeric { .. } => out.push(f.name.clone()),
                FeatureKind::Categorical { categories, .. } => {
                    out.extend(categories.iter().map(|k| format!("{}={k}", f.name)))
                }
            }
        }
        out
    }

    /// The class names (empty for regression).
    pub fn classes(&self) -> &[String] {
        match &self.target {
            TableTarget::Classification { classes } => classes,
            TableTarget::Regression { .. } => &[],
        }
    }

    /// A model output in the label's units (regression; identity for classification).
    pub fn unscale_target(&self, y: f64) -> f64 {
        match self.target {
            TableTarget::Regression { mean, std } => y * std + mean,
            TableTarget::Classification { .. } => y,
        }
    }

    /// Where each feature sits in `table`: by name when it has a header, else by position,
    /// with or without the label column.
    ///
    /// # Errors
    /// A feature column the file lacks, or a headerless file of another width.
    pub fn locate(&self, table: &Table) -> Result<Vec<usize>> {
        if table.header {
            return self
                .features
                .iter()
                .map(|f| {
                    table
                        .names
                        .iter()
                        .position(|n| *n == f.name)
                        .ok_or_else(|| {
                            DataError::new(
                                &table.source,
                                format!(
                                    "has no column {:?}, which the model takes; its columns are {}",
                                    f.name,
                                    table.names.join(", ")
                                ),
                            )
                        })
                })
                .collect();
        }
        if table.width() == self.columns.len() {
            Ok(self.features.iter().map(|f| f.column).collect())
        } else if table.width() == self.features.len() {
            Ok((0..self.features.len()).collect())
        } else {
            Err(DataError::new(
                &table.source,
                format!(
                    "has {} columns; the model takes {} feature columns ({}), with or without the label column {:?}",
                    table.width(),
                    self.features.len(),
                    self.features.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
                    self.label
                ),
            ))
        }
    }

    /// Encodes the features of `rows` (positions into `table.rows`) as model inputs,
    /// `[rows, inputs]`; `columns` is [`TableSchema::locate`]'s answer.
    ///
    /// # Errors
    /// A missing cell (unless imputed), a non-number in a numeric column, or a category the
    /// model has not seen; each names the line and the column.
    pub fn encode_features(
        &self,
        table: &Table,
        columns: &[usize],
        rows: &[usize],
    ) -> Result<Tensor<f32>> {
        let mut x = Vec::with_capacity(rows.len() * self.inputs());
        for &r in rows {
            let row = &table.rows[r];
            for (f, &c) in self.features.iter().zip(columns) {
                let cell = row.cells[c].as_str();
                let missing = is_missing(cell);
                if missing && self.missing != Missing::Impute {
                    return Err(missing_error(table, row, c));
                }
                match &f.kind {
                    FeatureKind::Numeric {
                        center,
                        scale,
                        fill,
                    } => {
                        let v = if missing {
                            *fill
                        } else {
                            number(cell).ok_or_else(|| {
                                DataError::new(
                                    &table.source,
                                    format!("{}: {cell:?} is not a number", table.at(row, c)),
                                )
                            })?
                        };
                        x.push(((v - center) / scale) as f32);
                    }
                    FeatureKind::Categorical { categories, fill } => {
                        let k = if missing {
                            *fill
                        } else {
                            categories.iter().position(|k| k == cell).ok_or_else(|| {
                                DataError::new(
                                    &table.source,
                                    format!(
                                        "{}: category {cell:?} was not in the training data (known: {})",
                                        table.at(row, c),
                                        categories.join(", ")
                                    ),
                                )
                            })?
                        };
                        x.extend((0..categories.len()).map(|i| f32::from(i == k)));
                    }
                }
            }
        }
        Ok(Tensor::from_vec(x, &[rows.len(), self.inputs()]))
    }

    /// Encodes `rows` of `table` with their labels: class indices through the schema's
    /// classes, or scaled target values.
    ///
    /// # Errors
    /// As [`TableSchema::encode_features`]; a file without the label column; a label that is
    /// not one of the classes, or not a number for regression.
    pub fn encode(&self, table: &Table, rows: &[usize]) -> Result<Dataset> {
        let columns = self.locate(table)?;
        let label = if table.header {
            table.names.iter().position(|n| *n == self.label)
        } else {
            (table.width() == self.columns.len()).then_some(self.label_column)
        }
        .ok_or_else(|| {
            DataError::new(
                &table.source,
                format!("has no label column {:?}", self.label),
            )
        })?;
        let x = self.encode_features(table, &columns, rows)?;
        let cells = rows
            .iter()
            .map(|&r| (&table.rows[r], table.rows[r].cells[label].as_str()));
        let targets = match &self.target {
            TableTarget::Classification { classes } => {
                let mut labels = Vec::with_capacity(rows.len());
                for (row, cell) in cells {
                    if is_missing(cell) {
                        return Err(missing_error(table, row, label));
                    }
                    labels.push(classes.iter().position(|k| k == cell).ok_or_else(|| {
                        DataError::new(
                            &table.source,
                            format!(
                                "{}: label {cell:?} is not one of the model's classes ({})",
                                table.at(row, label),
                                classes.join(", ")
                            ),
                        )
                    })?);
                }
                Targets::Classes {
                    labels,
                    names: classes.clone(),
                }
            }
            TableTarget::Regression { mean, std } => {
                let mut v = Vec::with_capacity(rows.len());
                for (row, cell) in cells {
                    if is_missing(cell) {
                        return Err(missing_error(table, row, label));
                    }
                    let y = number(cell).ok_or_else(|| {
                        DataError::new(
                            &table.source,
                            format!(
                                "{}: label {cell:?} is not a number, as regression needs",
                                table.at(row, label)
                            ),
                        )
                    })?;
                    v.push(((y - mean) / std) as f32);
                }
                Targets::Values(Tensor::from_vec(v, &[rows.len(), 1]))
            }
        };
        Ok(Dataset {
            name: table.source.display().to_string(),
            x,
            targets,
            image_shape: None,
        })
    }
}

fn missing_error(table: &Table, row: &TableRow, c: usize) -> DataError {
    DataError::new(
        &table.source,
        format!(
            "{}: missing value {:?}; choose --missing drop (leave such rows out) or --missing impute (training mean or most frequent category; not for labels)",
            table.at(row, c),
            row.cells[c]
        ),
    )
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    (mean, if std > 1e-12 { std } else { 1.0 })
}

/// The numbers of column `c` in `rows` (missing cells skipped).
fn column_numbers(table: &Table, c: usize, rows: &[usize], what: &str) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(rows.len());
    for &r in rows {
        let row = &table.rows[r];
        let cell = &row.cells[c];
        if is_missing(cell) {
            continue;
        }
        out.push(number(cell).ok_or_else(|| {
            let need = if what == "label " {
                ", as regression needs"
            } else {
                ""
            };
            DataError::new(
                &table.source,
                format!("{}: {what}{cell:?} is not a number{need}", table.at(row, c)),
            )
        })?);
    }
    Ok(out)
}

fn fit_feature(table: &Table, c: usize, train: &[usize], scale: Scaling) -> Result<Feature> {
    let name = table.names[c].clone();
    let present: Vec<&str> = table
        .rows
        .iter()
        .map(|r| r.cells[c].as_str())
        .filter(|s| !is_missing(s))
        .collect();
    if present.is_empty() {
        return Err(DataError::new(
            &table.source,
            format!(
                "column {} ({name}) has no values, every cell is missing",
                c + 1
            ),
        ));
    }
    let numbers = present.iter().filter(|s| number(s).is_some()).count();
    let kind = if numbers * 2 >= present.len() {
        let v = column_numbers(table, c, train, "")?;
        let (mean, std) = mean_std(&v);
        let (center, scale) = match scale {
            Scaling::Standard => (mean, std),
            Scaling::MinMax => {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() && hi > lo {
                    (lo, hi - lo)
                } else {
                    (if lo.is_finite() { lo } else { 0.0 }, 1.0)
                }
            }
            Scaling::None => (0.0, 1.0),
        };
        FeatureKind::Numeric {
            center,
            scale,
            fill: if v.is_empty() { 0.0 } else { mean },
        }
    } else {
        let categories: Vec<String> = present
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(str::to_string)
            .collect();
        if categories.len() > MAX_CATEGORIES && categories.len() * 2 > table.rows.len() {
            return Err(DataError::new(
                &table.source,
                format!(
                    "column {} ({name}) holds {} distinct text values in {} rows: an identifier, not a category; remove the column",
                    c + 1,
                    categories.len(),
                    table.rows.len()
                ),
            ));
        }
        let mut counts = vec![0usize; categories.len()];
        for &r in train {
            if let Some(k) = categories.iter().position(|k| *k == table.rows[r].cells[c]) {
                counts[k] += 1;
            }
        }
        let fill = (0..counts.len())
            .max_by_key(|&k| (counts[k], usize::MAX - k))
            .unwrap_or(0);
        FeatureKind::Categorical { categories, fill }
    };
    Ok(Feature {
        name,
        column: c,
        kind,
    })
}

/// The distinct labels, ordered numerically when all are numbers, alphabetically otherwise.
/// With `guard`, labels that look like a number to predict (many distinct decimals, or
/// many distinct integers, few rows each) are refused with a hint.
fn class_names(table: &Table, label: usize, guard: bool) -> Result<Vec<String>> {
    let distinct: BTreeSet<&str> = table
        .rows
        .iter()
        .map(|r| r.cells[label].as_str())
        .filter(|s| !is_missing(s))
        .collect();
    let mut classes: Vec<String> = distinct.iter().map(|s| s.to_string()).collect();
    let values: Vec<f64> = classes.iter().filter_map(|c| number(c)).collect();
    if values.len() == classes.len() {
        classes.sort_by(|a, b| number(a).unwrap().total_cmp(&number(b).unwrap()));
        let decimals = values.iter().any(|v| v.fract() != 0.0);
        let k = classes.len();
        if guard && ((decimals && k > 10) || (k > 20 && k * 4 > table.rows.len())) {
            return Err(DataError::new(
                &table.source,
                format!(
                    "the label column {:?} holds {k} distinct numbers in {} rows ({} ... {}): that looks like a quantity to predict, not classes; use --task regression to predict it, or --task classification to treat each value as a class",
                    table.names[label],
                    table.rows.len(),
                    classes[0],
                    classes[k - 1]
                ),
            ));
        }
    }
    if classes.is_empty() {
        return Err(DataError::new(
            &table.source,
            "has no labels: every label cell is missing",
        ));
    }
    Ok(classes)
}

/// A table read for training: its contract fitted on the training rows and both splits
/// encoded with it.
#[derive(Debug, Clone)]
pub struct SplitTable {
    /// The contract.
    pub schema: TableSchema,
    /// The training rows, encoded.
    pub train: Dataset,
    /// The test rows (a fixed fifth, see [`test_split`]), encoded.
    pub test: Dataset,
    /// The test rows' positions among the file's data rows (0-based, header excluded).
    pub test_rows: Vec<usize>,
    /// Rows left out for a missing cell.
    pub dropped: usize,
}

/// Reads a table for training: header and label settled, rows with missing cells dropped
/// if asked, the test fifth held out (stratified by class, seeded by
/// [`TableOptions::split_seed`] alone), the schema fitted on the rest.
///
/// # Errors
/// Anything [`Table::parse`], [`TableSchema::fit`] or [`TableSchema::encode`] reports, or
/// too few rows to train and test on.
pub fn load_table_split(table: Table, opts: &TableOptions) -> Result<SplitTable> {
    let mut table = table;
    let label = table.settle_label(&opts.label, opts.header)?;
    let dropped = match opts.missing {
        Missing::Drop => table.drop_missing(),
        // the first missing cell of the file, in reading order
        Missing::Error => match table
            .rows
            .iter()
            .find_map(|r| r.cells.iter().position(|c| is_missing(c)).map(|c| (r, c)))
        {
            Some((row, c)) => return Err(missing_error(&table, row, c)),
            None => 0,
        },
        Missing::Impute => 0,
    };
    if table.rows.len() < 5 {
        return Err(DataError::new(
            &table.source,
            format!(
                "{} rows{} are too few to train and test on (at least 5)",
                table.rows.len(),
                if dropped > 0 {
                    " without missing cells"
                } else {
                    ""
                }
            ),
        ));
    }
    let keys: Vec<&str> = match opts.task {
        Some(Task::Regression) => vec![""; table.rows.len()],
        _ => table.rows.iter().map(|r| r.cells[label].as_str()).collect(),
    };
    let (train, test) = test_split(&keys, opts.split_seed);
    if test.is_empty() {
        return Err(DataError::new(
            &table.source,
            format!("{} rows leave no test rows (a fifth of each class is held out); give more rows per class", table.rows.len()),
        ));
    }
    let schema = TableSchema::fit(&table, label, &train, opts)?;
    Ok(SplitTable {
        train: schema.encode(&table, &train)?,
        test: schema.encode(&table, &test)?,
        test_rows: test.iter().map(|&i| table.rows[i].index).collect(),
        dropped,
        schema,
    })
}

impl TableSchema {
    /// Reads a later file for this model: its first row is a header when it names one of
    /// the training file's columns.
    ///
    /// # Errors
    /// As [`Table::load`].
    pub fn read_table(&self, path: &Path) -> Result<Table> {
        let mut table = Table::load(path)?;
        self.settle_header(&mut table)?;
        Ok(table)
    }

    /// Takes `table`'s first row as its header when it names one of the training columns.
    ///
    /// # Errors
    /// A header without data rows.
    pub fn settle_header(&self, table: &mut Table) -> Result<()> {
        let first = &table.rows[0].cells;
        if first
            .iter()
            .any(|c| self.columns.contains(c) && number(c).is_none())
        {
            table.use_header()?;
        }
        Ok(())
    }

    /// The labelled rows of `path` for evaluation: with `split`, the test rows of the
    /// training file's split (the same rows as in training); otherwise every row. Labels map
    /// through the model's classes.
    ///
    /// # Errors
    /// As [`TableSchema::encode`].
    pub fn labelled(&self, path: &Path, split: bool) -> Result<Dataset> {
        let mut table = self.read_table(path)?;
        let label = table.names.iter().position(|n| *n == self.label);
        if split {
            if self.missing == Missing::Drop {
                table.drop_missing();
            }
            let label = label.unwrap_or(self.label_column);
            let keys: Vec<&str> = match self.target {
                TableTarget::Regression { .. } => vec![""; table.rows.len()],
                TableTarget::Classification { .. } => table
                    .rows
                    .iter()
                    .map(|r| r.cells.get(label).map_or("", String::as_str))
                    .collect(),
            };
            let (_, test) = test_split(&keys, self.split_seed);
            return self.encode(&table, &test);
        }
        if self.missing == Missing::Drop {
            table.drop_missing();
        }
        if table.rows.is_empty() {
            return Err(DataError::new(path, "has no data rows"));
        }
        let all: Vec<usize> = (0..table.rows.len()).collect();
        self.encode(&table, &all)
    }
}
