//! # backprop-data
//!
//! Datasets for backprop: the IDX format of MNIST and its kin ([`load_idx_pair`],
//! [`read_idx`]), CSV files ([`load_csv`]; for training, tables with a fixed test split and a
//! data contract of scaling, categories and classes: [`load_table_split`], [`TableSchema`]), the 2-D demonstration sets ([`synthetic`]),
//! sequence tasks ([`adding_problem`], [`copy_task`], [`series_windows`]),
//! input encodings ([`Encoding`]), seeded validation splits and seeded mini-batches
//! ([`Dataset::split`], [`Dataset::batches`]).
//!
//! Every loader validates what it reads and returns a [`DataError`] that names the file
//! and the problem.
//!
//! ```
//! use backprop_data::synthetic;
//! use backprop_tensor::Rng;
//! let d = synthetic("circle", 100, 0.0, 1).unwrap();
//! let (train, val) = d.split(20, 1).unwrap();
//! assert_eq!((train.len(), val.len()), (80, 20));
//! let batches: Vec<_> = train.batches(32, Some(&mut Rng::seed(0))).collect();
//! assert_eq!(batches.len(), 3); // 32 + 32 + 16
//! ```

#![warn(missing_docs)]

mod csv_data;
mod dataset;
mod error;
mod idx;
mod segment;
mod sequence;
mod synthetic;
mod tabular;

pub use csv_data::{load_csv, parse_csv, table_dataset, CsvOptions, LabelColumn, Task};
pub use dataset::{
    digit_names, load_idx_pair, random_shift, Batch, BatchTargets, Batches, Dataset, Encoding,
    RawImages, Targets,
};
pub use error::{DataError, Result};
pub use idx::{decode_idx, parse_idx, read_idx, IdxArray};
pub use segment::{normalize_digit, segment_digits, Segment};
pub use sequence::{
    adding_problem, copy_task, max_text_windows, parse_series, series_windows, TextCorpus,
    MAX_TEXT_FLOATS,
};
pub use synthetic::{synthetic, synthetic_multiclass, SYNTHETIC, SYNTHETIC_MULTICLASS};
pub use tabular::{
    is_missing, load_table_split, test_split, Feature, FeatureKind, Missing, Scaling, SplitTable,
    Table, TableOptions, TableRow, TableSchema, TableTarget,
};
