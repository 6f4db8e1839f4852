//! Reading a handwritten number (the lectures' "504192"): numbers of six MNIST test digits
//! are written side by side with uneven gaps of 0–10 pixels, split into digits, each digit
//! normalized as MNIST's were, and classified — what `backprop predict --segment` does.
//!
//! `cargo run --release --example read_numbers -- --model-path runs/mnist-mlp/model.safetensors`
//! prints, for four sets of 300 numbers (seeds 2026–2029), the share of digits read right and
//! of whole numbers read right. These are the README's figures; train the model first
//! (`backprop train`, or `backprop train --model cnn` for the cnn figures). Without
//! `--model-path`, the default run's model is read.

use std::path::{Path, PathBuf};

use backprop::data::{load_idx_pair, segment_digits, Encoding, RawImages};
use backprop::nn::Module;
use backprop::tensor::{Rng, Tensor};
use backprop::train::predict_proba;
use backprop::train::saved::SavedModel;

/// One generated number: its pixels (width × 36, ink bright on dark) and its digits.
pub struct Number {
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub truth: String,
}

/// `count` numbers of six test digits chosen with `seed`, with gaps of 0–10 pixels.
pub fn make_numbers(raw: &RawImages, count: usize, seed: u64) -> Vec<Number> {
    let mut rng = Rng::seed(seed);
    let n = raw.labels.len();
    (0..count)
        .map(|_| {
            let idx: Vec<usize> = (0..6).map(|_| rng.below(n)).collect();
            let gaps: Vec<usize> = (0..7).map(|_| rng.below(11)).collect();
            let (width, height) = (gaps.iter().sum::<usize>() + 6 * 28, 36);
            let mut pixels = vec![0u8; width * height];
            let mut x = gaps[0];
            for (j, &i) in idx.iter().enumerate() {
                for yy in 0..28 {
                    let src = &raw.pixels[i * 784 + yy * 28..i * 784 + yy * 28 + 28];
                    pixels[(yy + 4) * width + x..(yy + 4) * width + x + 28].copy_from_slice(src);
                }
                x += 28 + gaps[j + 1];
            }
            let truth = idx.iter().map(|&i| raw.labels[i].to_string()).collect();
            Number {
                pixels,
                width,
                height,
                truth,
            }
        })
        .collect()
}

/// The number a model reads in an image (digits as the model's class names).
pub fn read(model: &dyn Module<f32>, classes: &[String], enc: &Encoding, n: &Number) -> String {
    let segs = segment_digits(&n.pixels, n.width, n.height);
    if segs.is_empty() {
        return String::new();
    }
    let x = Tensor::from_vec(
        segs.iter()
            .flat_map(|s| s.pixels.iter().map(|&b| enc.encode(b)))
            .collect(),
        &[segs.len(), 784],
    );
    let probs = predict_proba(model, &x);
    let c = probs.shape()[1];
    probs
        .data()
        .chunks(c)
        .map(|p| {
            let best = (0..c).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap();
            classes
                .get(best)
                .cloned()
                .unwrap_or_else(|| best.to_string())
        })
        .collect()
}

/// Digit and whole-number accuracy of `model` over `sets` sets of `count` numbers.
pub fn measure(
    model: &dyn Module<f32>,
    classes: &[String],
    enc: &Encoding,
    raw: &RawImages,
    sets: u64,
    count: usize,
) -> Vec<(f64, f64)> {
    (0..sets)
        .map(|k| {
            let numbers = make_numbers(raw, count, 2026 + k);
            let (mut digits, mut whole) = (0usize, 0usize);
            for n in &numbers {
                let got = read(model, classes, enc, n);
                digits += got
                    .chars()
                    .zip(n.truth.chars())
                    .filter(|(a, b)| a == b)
                    .count();
                whole += usize::from(got == n.truth);
            }
            (
                digits as f64 / (6 * count) as f64,
                whole as f64 / count as f64,
            )
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let path = a
        .iter()
        .position(|s| s == "--model-path")
        .and_then(|i| a.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("runs/mnist-mlp/model.safetensors"));
    let saved = SavedModel::load(&path)
        .map_err(|e| format!("{e}\n(train a digit model first: `cargo run --release -- train`)"))?;
    if saved.inputs != 784 {
        return Err(format!("{}: not a 28×28 digit model", path.display()).into());
    }
    let enc = backprop::train::saved::encoding_from_json(&saved.encoding)?;
    let raw = load_idx_pair(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
        "t10k",
    )?;
    for (k, (d, w)) in measure(&saved.model, &saved.classes, &enc, &raw, 4, 300)
        .into_iter()
        .enumerate()
    {
        println!(
            "set {k} (seed {}): {:.1}% of 1800 digits, {:.1}% of 300 whole numbers",
            2026 + k,
            100.0 * d,
            100.0 * w
        );
    }
    Ok(())
}
