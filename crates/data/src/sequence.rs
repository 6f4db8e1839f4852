//! Sequence tasks for recurrent networks, each a [`Dataset`] whose samples are sequences
//! `[T, F]` stored flat (`T·F` features, step by step) with `image_shape = [1, T, F]`, the
//! shape the recurrent spec layers read row by row:
//!
//! - [`adding_problem`] (Hochreiter & Schmidhuber 1997): T steps of (value, marker); the
//!   target is the sum of the two marked values. Predicting the mean gives MSE 1/6.
//! - [`copy_task`]: K symbols, a delay of blanks, then a cue; the targets are the K symbols
//!   (one-hot, K·S values) to be recalled after the delay.
//! - [`series_windows`]: a time series cut into windows of T steps, each predicting the next
//!   value.
//!
//! Every generator is seeded, so a run is reproducible.

use backprop_tensor::{Rng, Tensor};

use crate::dataset::{Dataset, Targets};
use crate::error::{DataError, Result};

fn invalid(what: &str, message: String) -> DataError {
    DataError::new(what, message)
}

/// The adding problem with `steps` steps: each step is `(v_t, m_t)` with `v_t ~ U(0, 1)`
/// and `m_t = 1` at exactly two steps — one in the first half, one in the second — else 0.
/// The target is the sum of the two marked values (`[n, 1]`; mean 1, variance 1/6, so
/// predicting the mean scores MSE 1/6 ≈ 0.1667).
///
/// ```
/// let d = backprop_data::adding_problem(4, 10, 1).unwrap();
/// assert_eq!((d.len(), d.features(), d.image_shape), (4, 20, Some([1, 10, 2])));
/// let x = d.x.data();
/// let marked: f32 = (0..10).filter(|t| x[2 * t + 1] == 1.0).map(|t| x[2 * t]).sum();
/// let backprop_data::Targets::Values(y) = &d.targets else { unreachable!() };
/// assert_eq!(y.data()[0], marked);
/// ```
///
/// # Errors
/// If `n` is 0 or `steps` is below 2.
pub fn adding_problem(n: usize, steps: usize, seed: u64) -> Result<Dataset> {
    if n == 0 || steps < 2 {
        return Err(invalid(
            "adding problem",
            format!("{n} samples of {steps} steps: needs at least 1 sample and 2 steps"),
        ));
    }
    let mut rng = Rng::seed(seed);
    let mut x = vec![0f32; n * steps * 2];
    let mut y = Vec::with_capacity(n);
    let half = steps / 2;
    for s in x.chunks_exact_mut(steps * 2) {
        for t in 0..steps {
            s[2 * t] = rng.uniform() as f32;
        }
        let a = rng.below(half);
        let b = half + rng.below(steps - half);
        s[2 * a + 1] = 1.0;
        s[2 * b + 1] = 1.0;
        y.push(s[2 * a] + s[2 * b]);
    }
    Ok(Dataset {
        name: format!("adding{steps}"),
        x: Tensor::from_vec(x, &[n, steps * 2]),
        targets: Targets::Values(Tensor::from_vec(y, &[n, 1])),
        image_shape: Some([1, steps, 2]),
    })
}

/// The copy task: `k` symbols drawn from `symbols`, then `delay` blank steps, then a cue;
/// the network must recall the `k` symbols. Each step is one-hot over `symbols + 2` (the
/// symbols, blank, cue), so a sample is `[k + delay + 1, symbols + 2]`; the targets are the
/// `k` symbols one-hot, `[n, k·symbols]` (regression on the codes: read off the largest of
/// each block of `symbols`).
///
/// ```
/// let d = backprop_data::copy_task(3, 2, 5, 4, 7).unwrap();
/// assert_eq!(d.image_shape, Some([1, 2 + 5 + 1, 4 + 2]));
/// let backprop_data::Targets::Values(y) = &d.targets else { unreachable!() };
/// assert_eq!(y.shape(), &[3, 2 * 4]);
/// // the first symbol's one-hot input is the first target block
/// assert_eq!(&d.x.data()[..4], &y.data()[..4]);
/// ```
///
/// # Errors
/// If a size is 0 or there are fewer than 2 symbols.
pub fn copy_task(n: usize, k: usize, delay: usize, symbols: usize, seed: u64) -> Result<Dataset> {
    if n == 0 || k == 0 || symbols < 2 {
        return Err(invalid(
            "copy task",
            format!("{n} samples of {k} symbols from {symbols}: needs at least 1 sample, 1 symbol to copy and 2 symbols"),
        ));
    }
    let (steps, width) = (k + delay + 1, symbols + 2);
    let mut rng = Rng::seed(seed);
    let mut x = vec![0f32; n * steps * width];
    let mut y = vec![0f32; n * k * symbols];
    for (s, ys) in x
        .chunks_exact_mut(steps * width)
        .zip(y.chunks_exact_mut(k * symbols))
    {
        for j in 0..k {
            let c = rng.below(symbols);
            s[j * width + c] = 1.0;
            ys[j * symbols + c] = 1.0;
        }
        for t in k..k + delay {
            s[t * width + symbols] = 1.0; // blank
        }
        s[(steps - 1) * width + symbols + 1] = 1.0; // cue
    }
    Ok(Dataset {
        name: format!("copy{delay}"),
        x: Tensor::from_vec(x, &[n, steps * width]),
        targets: Targets::Values(Tensor::from_vec(y, &[n, k * symbols])),
        image_shape: Some([1, steps, width]),
    })
}

/// A series cut into every window of `steps` values (stride 1), each with the value that
/// follows it as the target: `len − steps` samples `[steps, 1]`, targets `[n, 1]`.
///
/// ```
/// let d = backprop_data::series_windows("s", &[1.0, 2.0, 3.0, 4.0, 5.0], 3).unwrap();
/// assert_eq!(d.len(), 2);
/// assert_eq!(d.x.data(), &[1.0, 2.0, 3.0, 2.0, 3.0, 4.0]);
/// let backprop_data::Targets::Values(y) = &d.targets else { unreachable!() };
/// assert_eq!(y.data(), &[4.0, 5.0]);
/// ```
///
/// # Errors
/// If the series is not longer than `steps`, `steps` is 0, or a value is not finite.
pub fn series_windows(name: &str, values: &[f32], steps: usize) -> Result<Dataset> {
    if steps == 0 || values.len() <= steps {
        return Err(invalid(
            name,
            format!(
                "{} values cannot make windows of {steps} steps with a next value (need more than {steps}, and steps ≥ 1)",
                values.len()
            ),
        ));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(invalid(name, format!("value {} is {}", i + 1, values[i])));
    }
    let n = values.len() - steps;
    let mut x = Vec::with_capacity(n * steps);
    for w in values.windows(steps).take(n) {
        x.extend_from_slice(w);
    }
    Ok(Dataset {
        name: name.to_string(),
        x: Tensor::from_vec(x, &[n, steps]),
        targets: Targets::Values(Tensor::from_vec(values[steps..].to_vec(), &[n, 1])),
        image_shape: Some([1, steps, 1]),
    })
}

/// The most floats [`TextCorpus::windows`] spends on one stretch of text (2²⁷, 512 MiB): a
/// one-hot window is `steps × vocabulary` floats, so a stride keeps a long file's windows
/// within this. A text of 100,000 characters over 61 symbols in windows of 24 gets every
/// window (stride 1): each character is a target once, which a character model needs far
/// more than it needs more passes over fewer windows.
pub const MAX_TEXT_FLOATS: usize = 1 << 27;

/// The most windows of `steps` characters over `vocabulary` symbols that fit in
/// [`MAX_TEXT_FLOATS`] (at least 1).
pub fn max_text_windows(steps: usize, vocabulary: usize) -> usize {
    (MAX_TEXT_FLOATS / steps.saturating_mul(vocabulary).max(1)).max(1)
}

/// A UTF-8 text read as characters, with its vocabulary (every distinct character, in
/// code-point order), for character-level models: each sample is a window of `steps`
/// characters, one-hot (`[steps, V]`), and its class is the character that follows.
#[derive(Debug, Clone)]
pub struct TextCorpus {
    /// The text.
    pub chars: Vec<char>,
    /// The distinct characters, sorted: class `i` is `vocab[i]`.
    pub vocab: Vec<char>,
}

impl TextCorpus {
    /// Reads a UTF-8 file.
    ///
    /// # Errors
    /// If the file cannot be read, is not UTF-8, or has fewer than 2 distinct characters.
    pub fn load(path: &std::path::Path) -> Result<TextCorpus> {
        let bytes = std::fs::read(path).map_err(|e| DataError::new(path, e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            DataError::new(
                path,
                format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        Self::from_text(&text).map_err(|m| DataError::new(path, m))
    }

    /// The corpus of a string.
    ///
    /// # Errors
    /// If it has fewer than 2 distinct characters.
    pub fn from_text(text: &str) -> std::result::Result<TextCorpus, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut vocab = chars.clone();
        vocab.sort_unstable();
        vocab.dedup();
        if vocab.len() < 2 {
            return Err(format!(
                "{} distinct characters; a character model needs at least 2",
                vocab.len()
            ));
        }
        Ok(TextCorpus { chars, vocab })
    }

    /// The class of a character, if it is in the vocabulary.
    pub fn index(&self, c: char) -> Option<usize> {
        self.vocab.binary_search(&c).ok()
    }

    /// The class names: each character as a string.
    pub fn names(&self) -> Vec<String> {
        self.vocab.iter().map(|c| c.to_string()).collect()
    }

    /// One-hot windows of `steps` characters from `chars[range]`, each labelled with the
    /// character after it, at the smallest stride that keeps them within [`MAX_TEXT_FLOATS`]; named
    /// `name`, `image_shape = [1, steps, V]`.
    ///
    /// # Errors
    /// If the range holds no window of `steps` characters and a next one.
    pub fn windows(
        &self,
        name: &str,
        range: std::ops::Range<usize>,
        steps: usize,
    ) -> Result<Dataset> {
        let v = self.vocab.len();
        let len = range.len();
        if steps == 0 || len <= steps {
            return Err(DataError::new(
                name,
                format!(
                    "{len} characters cannot make windows of {steps} characters and a next one"
                ),
            ));
        }
        let count = len - steps;
        let stride = count.div_ceil(max_text_windows(steps, v)).max(1);
        let starts: Vec<usize> = (range.start..range.start + count).step_by(stride).collect();
        let mut x = vec![0f32; starts.len() * steps * v];
        let mut labels = Vec::with_capacity(starts.len());
        for (w, &s) in x.chunks_exact_mut(steps * v).zip(&starts) {
            for (t, &c) in self.chars[s..s + steps].iter().enumerate() {
                w[t * v + self.index(c).expect("in the vocabulary")] = 1.0;
            }
            labels.push(
                self.index(self.chars[s + steps])
                    .expect("in the vocabulary"),
            );
        }
        Ok(Dataset {
            name: name.to_string(),
            x: Tensor::from_vec(x, &[starts.len(), steps * v]),
            targets: Targets::Classes {
                labels,
                names: self.names(),
            },
            image_shape: Some([1, steps, v]),
        })
    }

    /// The unigram model's perplexity on `chars[test]` with frequencies counted on
    /// `chars[train]` (add-one smoothed): the baseline a character model must beat.
    pub fn unigram_perplexity(
        &self,
        train: std::ops::Range<usize>,
        test: std::ops::Range<usize>,
    ) -> f64 {
        let v = self.vocab.len();
        let mut counts = vec![1.0f64; v];
        for &c in &self.chars[train.clone()] {
            counts[self.index(c).expect("in the vocabulary")] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        let n = test.len().max(1) as f64;
        let nll: f64 = self.chars[test]
            .iter()
            .map(|&c| -(counts[self.index(c).expect("in the vocabulary")] / total).ln())
            .sum();
        (nll / n).exp()
    }
}

/// The numbers of a one-column series file: one value per line (a header line, blank lines
/// and `#` comments are skipped); with several comma-separated columns, the last one.
///
/// ```
/// let v = backprop_data::parse_series("s.csv", "value\n1.5\n2\n\n3e1\n").unwrap();
/// assert_eq!(v, vec![1.5, 2.0, 30.0]);
/// assert!(backprop_data::parse_series("s.csv", "1\nx\n").unwrap_err().to_string().contains("line 2"));
/// ```
///
/// # Errors
/// A line that is not a number (other than a first-line header), or no values at all.
pub fn parse_series(name: &str, text: &str) -> Result<Vec<f32>> {
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cell = line.rsplit(',').next().unwrap_or(line).trim();
        match cell.parse::<f32>() {
            Ok(v) if v.is_finite() => values.push(v),
            _ if i == 0 => {} // a header
            _ => {
                return Err(DataError::new(
                    name,
                    format!("line {}: {cell:?} is not a finite number", i + 1),
                ))
            }
        }
    }
    if values.is_empty() {
        return Err(DataError::new(name, "no values"));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_text_gives_every_window_and_its_next_character() {
        let c = TextCorpus::from_text("abcab\nba").unwrap();
        assert_eq!(c.vocab, vec!['\n', 'a', 'b', 'c']);
        let d = c.windows("t", 0..8, 3).unwrap();
        // stride 1: windows start at 0..5, each labelled with the character after it
        assert_eq!(d.len(), 5);
        assert_eq!(d.image_shape, Some([1, 3, 4]));
        let Targets::Classes { labels, .. } = &d.targets else {
            panic!("classes")
        };
        let next: String = labels.iter().map(|&l| c.vocab[l]).collect();
        assert_eq!(next, "ab\nba");
        // the second window is "bca", one-hot per step
        let w = &d.x.data()[12..24];
        let hot: String = w
            .chunks(4)
            .map(|s| c.vocab[s.iter().position(|&v| v == 1.0).unwrap()])
            .collect();
        assert_eq!(hot, "bca");
        assert_eq!(w.iter().sum::<f32>(), 3.0);
    }

    #[test]
    fn the_window_budget_is_in_floats() {
        // the shipped text's shape: 61 symbols, windows of 24 fit ~91,700 times in 2^27 floats
        assert_eq!(max_text_windows(24, 61), (1 << 27) / (24 * 61));
        assert!(max_text_windows(24, 61) > 90_000);
        // twice the window, half as many; never below one, never a division by zero
        assert_eq!(max_text_windows(48, 61), max_text_windows(24, 61) / 2);
        assert_eq!(max_text_windows(1 << 20, 1 << 10), 1);
        assert_eq!(max_text_windows(0, 0), MAX_TEXT_FLOATS);
        assert_eq!(max_text_windows(usize::MAX, 3), 1);
    }
}
