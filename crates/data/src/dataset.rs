//! [`Dataset`]: features, targets and how they were encoded; splits and seeded batches.

use std::path::Path;

use backprop_tensor::{Rng, Tensor};

use crate::error::{DataError, Result};
use crate::idx::{find, read_idx};

/// What a dataset asks a model to predict.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Classification: one class index per sample, and the class names.
    Classes {
        /// `labels[i] < names.len()`.
        labels: Vec<usize>,
        /// Name of each class.
        names: Vec<String>,
    },
    /// Regression: `[n, outputs]` target values.
    Values(Tensor<f32>),
}

/// How raw image bytes (0..=255) become inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Encoding {
    /// `x / 255`, in [0, 1] (the default).
    Grey,
    /// `(x/255 − mean) / std`, with one mean and standard deviation over all training
    /// pixels (MNIST: 0.1307 and 0.3081).
    Standardized {
        /// Mean of the training pixels (after /255).
        mean: f32,
        /// Standard deviation of the training pixels (after /255).
        std: f32,
    },
    /// The lectures' binary encoding: 1 for ink (a byte ≥ 128), 0 otherwise.
    Binary,
}

impl Encoding {
    /// Encodes one byte.
    #[inline]
    pub fn encode(&self, b: u8) -> f32 {
        match *self {
            Encoding::Grey => b as f32 / 255.0,
            Encoding::Standardized { mean, std } => (b as f32 / 255.0 - mean) / std,
            Encoding::Binary => f32::from(b >= 128),
        }
    }

    /// The standardized encoding fitted to some bytes.
    pub fn standardized_from(bytes: &[u8]) -> Encoding {
        let n = bytes.len().max(1) as f64;
        let mean = bytes.iter().map(|&b| b as f64 / 255.0).sum::<f64>() / n;
        let var = bytes
            .iter()
            .map(|&b| (b as f64 / 255.0 - mean).powi(2))
            .sum::<f64>()
            / n;
        Encoding::Standardized {
            mean: mean as f32,
            std: var.sqrt().max(1e-12) as f32,
        }
    }

    /// Parses `grey`, `standardized` (fitted later) or `binary`.
    pub fn parse(s: &str) -> Option<&'static str> {
        match s {
            "grey" | "gray" | "greyscale" => Some("grey"),
            "standardized" | "standardize" | "standard" => Some("standardized"),
            "binary" => Some("binary"),
            _ => None,
        }
    }
}

/// An in-memory dataset: features `x` of shape `[n, features]` and their targets.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A name for messages and checkpoints (`mnist`, `spiral`, a CSV path...).
    pub name: String,
    /// `[n, features]`.
    pub x: Tensor<f32>,
    /// Targets, one per row of `x`.
    pub targets: Targets,
    /// For image data, `(channels, height, width)` of one sample.
    pub image_shape: Option<[usize; 3]>,
}

/// One mini-batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[b, features]`.
    pub x: Tensor<f32>,
    /// The batch's targets.
    pub targets: BatchTargets,
}

/// The targets of a [`Batch`].
#[derive(Debug, Clone)]
pub enum BatchTargets {
    /// Class indices.
    Classes(Vec<usize>),
    /// `[b, outputs]` values.
    Values(Tensor<f32>),
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.shape()[0]
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per sample.
    pub fn features(&self) -> usize {
        self.x.shape()[1]
    }

    /// Number of classes (0 for regression).
    pub fn num_classes(&self) -> usize {
        match &self.targets {
            Targets::Classes { names, .. } => names.len(),
            Targets::Values(_) => 0,
        }
    }

    /// Number of model outputs this dataset needs: classes, or regression targets.
    pub fn outputs(&self) -> usize {
        match &self.targets {
            Targets::Classes { names, .. } => names.len(),
            Targets::Values(v) => v.shape()[1],
        }
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            x: self.x.index_select(0, indices),
            targets: match &self.targets {
                Targets::Classes { labels, names } => Targets::Classes {
                    labels: indices.iter().map(|&i| labels[i]).collect(),
                    names: names.clone(),
                },
                Targets::Values(v) => Targets::Values(v.index_select(0, indices)),
            },
            image_shape: self.image_shape,
        }
    }

    /// Holds out `count` samples, chosen by a seeded shuffle, as a validation set:
    /// returns `(train, validation)`.
    ///
    /// # Errors
    /// If `count` leaves no training samples.
    pub fn split(&self, count: usize, seed: u64) -> Result<(Dataset, Dataset)> {
        if count >= self.len() {
            return Err(DataError::new(
                &self.name,
                format!(
                    "a validation split of {count} leaves no training data out of {} samples",
                    self.len()
                ),
            ));
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        Rng::seed(seed ^ 0x5EED_5A17).shuffle(&mut idx);
        let (val, train) = idx.split_at(count);
        let (mut train, mut val) = (train.to_vec(), val.to_vec());
        train.sort_unstable();
        val.sort_unstable();
        Ok((self.subset(&train), self.subset(&val)))
    }

    /// Batches of `batch_size` in an order shuffled by `rng` (or in order if `None`).
    /// The last batch may be smaller. `batch_size = 1` is stochastic gradient descent,
    /// `batch_size ≥ len()` is full-batch gradient descent.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn batches(&self, batch_size: usize, rng: Option<&mut Rng>) -> Batches<'_> {
        assert!(batch_size > 0, "batches: batch size must be at least 1");
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(r) = rng {
            r.shuffle(&mut order);
        }
        Batches {
            data: self,
            order,
            batch_size,
            pos: 0,
        }
    }

    /// The batch of the samples at `indices`.
    pub fn batch(&self, indices: &[usize]) -> Batch {
        let f = self.features();
        let src = self.x.data();
        let mut x = Vec::with_capacity(indices.len() * f);
        for (k, &i) in indices.iter().enumerate() {
            if let Some(&ahead) = indices.get(k + PREFETCH_ROWS) {
                backprop_tensor::hint::prefetch(&src[ahead * f..(ahead + 1) * f]);
            }
            x.extend_from_slice(&src[i * f..(i + 1) * f]);
        }
        let targets = match &self.targets {
            Targets::Classes { labels, .. } => {
                BatchTargets::Classes(indices.iter().map(|&i| labels[i]).collect())
            }
            Targets::Values(v) => BatchTargets::Values(v.index_select(0, indices)),
        };
        Batch {
            x: Tensor::from_vec(x, &[indices.len(), f]),
            targets,
        }
    }
}

/// How many rows ahead [`Dataset::batch`] asks the CPU to fetch: the rows of a shuffled
/// batch lie anywhere in the data set, so without a hint each row's copy starts by waiting
/// for memory.
const PREFETCH_ROWS: usize = 4;

/// Iterator over the batches of a [`Dataset`].
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
}

impl Iterator for Batches<'_> {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let b = self.data.batch(&self.order[self.pos..end]);
        self.pos = end;
        Some(b)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.pos).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// Raw images and labels of one IDX pair (`train-…` or `t10k-…`).
#[derive(Debug, Clone)]
pub struct RawImages {
    /// Pixel bytes, `n·h·w`.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<usize>,
    /// `(height, width)`.
    pub size: (usize, usize),
}

/// Loads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` from `dir`.
///
/// # Errors
/// If the directory or a file is missing or malformed, or the image and label counts
/// disagree; each message names the file.
pub fn load_idx_pair(dir: &Path, prefix: &str) -> Result<RawImages> {
    if !dir.is_dir() {
        return Err(DataError::new(
            dir,
            "is not a directory (expected IDX files such as train-images-idx3-ubyte.gz)",
        ));
    }
    let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&ip)?;
    let labels = read_idx(&lp)?;
    if images.dims.len() != 3 {
        return Err(DataError::new(
            &ip,
            format!(
                "should hold images [n, height, width], but its dimensions are {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(DataError::new(
            &lp,
            format!(
                "should hold labels [n], but its dimensions are {:?}",
                labels.dims
            ),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::new(
            &lp,
            format!(
                "has {} labels but {} has {} images",
                labels.dims[0],
                ip.display(),
                images.dims[0]
            ),
        ));
    }
    Ok(RawImages {
        pixels: images.data,
        labels: labels.data.iter().map(|&b| b as usize).collect(),
        size: (images.dims[1], images.dims[2]),
    })
}

impl RawImages {
    /// Encodes the images into a dataset with `classes` class names (digits by default).
    ///
    /// # Errors
    /// If a label is not below the number of classes.
    pub fn into_dataset(
        self,
        name: &str,
        encoding: Encoding,
        class_names: Vec<String>,
    ) -> Result<Dataset> {
        let (h, w) = self.size;
        let n = self.labels.len();
        if let Some(&bad) = self.labels.iter().find(|&&l| l >= class_names.len()) {
            return Err(DataError::new(
                name,
                format!(
                    "label {bad} is out of range for {} classes",
                    class_names.len()
                ),
            ));
        }
        let x: Vec<f32> = self.pixels.iter().map(|&b| encoding.encode(b)).collect();
        Ok(Dataset {
            name: name.to_string(),
            x: Tensor::from_vec(x, &[n, h * w]),
            targets: Targets::Classes {
                labels: self.labels,
                names: class_names,
            },
            image_shape: Some([1, h, w]),
        })
    }

    /// The number of classes the labels use (the largest label plus one).
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |m| m + 1)
    }
}

/// The class names `"0"`, `"1"`, ...
pub fn digit_names(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

/// Data augmentation: shifts every image of a batch `[b, C·H·W]` by a random whole number
/// of pixels in `[−max, max]` along each axis, filling the uncovered border with the
/// image's smallest value (its background). The shifts are drawn from `rng`, so a seeded
/// run is reproducible.
///
/// ```
/// use backprop_data::random_shift;
/// use backprop_tensor::{Rng, Tensor};
/// let mut x = Tensor::<f32>::from_vec((0..16).map(|v| v as f32).collect(), &[1, 16]);
/// random_shift(&mut x, [1, 4, 4], 1, &mut Rng::seed(0));
/// assert_eq!(x.shape(), &[1, 16]);
/// ```
pub fn random_shift(x: &mut Tensor<f32>, image: [usize; 3], max: usize, rng: &mut Rng) {
    let [c, h, w] = image;
    let n = c * h * w;
    if max == 0 || n == 0 {
        return;
    }
    let data = x.data_mut();
    let mut src = vec![0.0f32; n];
    for img in data.chunks_exact_mut(n) {
        let dy = rng.below(2 * max + 1) as isize - max as isize;
        let dx = rng.below(2 * max + 1) as isize - max as isize;
        if dx == 0 && dy == 0 {
            continue;
        }
        src.copy_from_slice(img);
        let fill = src.iter().copied().fold(f32::INFINITY, f32::min);
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    let (sy, sx) = (y as isize - dy, xx as isize - dx);
                    img[(ch * h + y) * w + xx] =
                        if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                            src[(ch * h + sy as usize) * w + sx as usize]
                        } else {
                            fill
                        };
                }
            }
        }
    }
}
