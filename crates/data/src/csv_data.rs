//! CSV datasets: numeric features, a label column chosen by name or index, with or without
//! a header, for classification or regression.

use std::path::Path;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::tabular::{Missing, Scaling, Table, TableOptions, TableSchema};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Each distinct label value is a class.
    #[default]
    Classification,
    /// The label is a number to predict.
    Regression,
}

impl Task {
    /// Every task, in the order the CLI lists them.
    pub const ALL: &'static [Task] = &[Task::Classification, Task::Regression];

    /// The name a user types.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }
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

/// Loads a whole CSV file as it is, without scaling or a test split (training runs use
/// [`load_table_split`](crate::load_table_split)). Classes are the distinct label values,
/// ordered numerically when all are numbers and alphabetically otherwise; a column of text
/// is one-hot encoded.
///
/// # Errors
/// If the file cannot be read, rows have different lengths, the label column does not
/// exist, or a feature (or regression label) is not a number; messages give the file, the
/// line and the column.
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset> {
    let bytes = std::fs::read(path)
        .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    read_csv(path, &bytes, opts)
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

fn read_csv(path: &Path, bytes: &[u8], opts: &CsvOptions) -> Result<Dataset> {
    table_dataset(Table::parse(path, bytes)?, opts)
}

/// A parsed CSV table as a whole dataset, its label column and task as `opts` say (what
/// [`parse_csv`] does after parsing the text).
///
/// # Errors
/// If the label column is not there, a cell is missing, or a feature is not a number.
pub fn table_dataset(mut table: Table, opts: &CsvOptions) -> Result<Dataset> {
    let label = table.settle_label(&opts.label, opts.header)?;
    let all: Vec<usize> = (0..table.rows.len()).collect();
    let table_opts = TableOptions {
        label: opts.label.clone(),
        header: Some(table.header),
        task: Some(opts.task),
        scale: Scaling::None,
        missing: Missing::Error,
        split_seed: 0,
    };
    let schema = TableSchema::fit(&table, label, &all, &table_opts)?;
    schema.encode(&table, &all)
}
