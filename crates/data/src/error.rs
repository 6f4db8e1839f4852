//! The error every loader returns: which file (or source) and what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A data error that names its source and the problem, ready to show a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file or directory concerned (or the dataset name for generated sets).
    pub source: PathBuf,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl DataError {
    /// An error about `source`.
    pub fn new(source: impl AsRef<Path>, message: impl Into<String>) -> Self {
        DataError {
            source: source.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source.display(), self.message)
    }
}

impl std::error::Error for DataError {}

/// Result of a loader.
pub type Result<T> = std::result::Result<T, DataError>;
