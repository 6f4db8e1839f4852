//! `backprop generate`: sample text from a character model (one trained on `text:FILE`),
//! one character at a time: the last T characters, one-hot, give the next character's
//! probabilities, softened or sharpened by the temperature, and one is drawn.

use std::process::ExitCode;

use anyhow::{bail, Result};
use backprop_autograd::{no_grad, Var};
use backprop_nn::{Mode, Module};
use backprop_tensor::{Rng, Tensor};
use backprop_train::SavedModel;
use serde_json::json;

use super::{load_saved_model, set_threads};
use crate::args::GenerateArgs;

/// The most characters one call generates.
const MAX_LENGTH: usize = 1_000_000;

pub fn generate(a: GenerateArgs) -> Result<ExitCode> {
    set_threads(a.threads)?;
    if !(a.temperature.is_finite() && a.temperature > 0.0) {
        bail!("--temperature {}: must be a number above 0 (1 samples the model's own probabilities; lower is more conservative)", a.temperature);
    }
    if a.length == 0 || a.length > MAX_LENGTH {
        bail!("--length {}: must be in 1..={MAX_LENGTH}", a.length);
    }
    let saved = load_saved_model(&a.model_path)?;
    let (vocab, steps) = character_model(&saved)?;
    let mut text: Vec<char> = a.prompt.chars().collect();
    if text.is_empty() {
        bail!("--prompt: give at least one character to start from");
    }
    if let Some(c) = text.iter().find(|c| !vocab.contains(c)) {
        bail!(
            "--prompt: {c:?} is not among the {} characters the model knows",
            vocab.len()
        );
    }
    let mut rng = Rng::seed(a.seed);
    let start = text.len();
    for _ in 0..a.length {
        let p = next_probabilities(&saved, &vocab, steps, &text, a.temperature);
        text.push(vocab[sample(&p, &mut rng)]);
    }
    let generated: String = text[start..].iter().collect();
    if a.json {
        println!(
            "{}",
            json!({"prompt": a.prompt, "generated": generated, "temperature": a.temperature, "seed": a.seed})
        );
    } else {
        println!("{}{generated}", a.prompt);
    }
    Ok(ExitCode::SUCCESS)
}

/// The model's characters and window length, if it is a character model.
fn character_model(saved: &SavedModel) -> Result<(Vec<char>, usize)> {
    let path = saved.path.display();
    let mut chars = Vec::with_capacity(saved.classes.len());
    for name in &saved.classes {
        let mut it = name.chars();
        match (it.next(), it.next()) {
            (Some(c), None) => chars.push(c),
            _ => bail!("--model-path {path}: not a character model (its class {name:?} is not one character); train one with --dataset text:FILE"),
        }
    }
    match saved.image_shape {
        Some([1, t, v]) if v == chars.len() && t * v == saved.inputs && v >= 2 => Ok((chars, t)),
        _ => bail!("--model-path {path}: not a character model (its inputs are not one-hot windows over its {} classes); train one with --dataset text:FILE", chars.len()),
    }
}

/// `softmax(logits / temperature)` for the window that ends the text. A text shorter than the
/// window is left-padded with line breaks (or spaces, if the model knows no line break), as
/// if it began a paragraph: repeating its first character would show the model a window it
/// never saw in training.
fn next_probabilities(
    saved: &SavedModel,
    vocab: &[char],
    steps: usize,
    text: &[char],
    temperature: f64,
) -> Vec<f64> {
    let v = vocab.len();
    let mut x = vec![0f32; steps * v];
    let pad = steps.saturating_sub(text.len());
    let filler = ['\n', ' ']
        .into_iter()
        .find(|c| vocab.contains(c))
        .unwrap_or(text[0]);
    for t in 0..steps {
        let c = if t < pad {
            filler
        } else {
            text[t + text.len() - steps]
        };
        let k = vocab
            .iter()
            .position(|&d| d == c)
            .expect("checked against the vocabulary");
        x[t * v + k] = 1.0;
    }
    let logits = no_grad(|| {
        saved
            .model
            .forward(
                &Var::constant(Tensor::from_vec(x, &[1, steps * v])),
                Mode::Eval,
            )
            .value()
    });
    let z: Vec<f64> = logits
        .data()
        .iter()
        .map(|&l| l as f64 / temperature)
        .collect();
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|&l| (l - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|&p| p / sum).collect()
}

/// Draws an index with probabilities `p`.
fn sample(p: &[f64], rng: &mut Rng) -> usize {
    let mut u = rng.uniform();
    for (i, &q) in p.iter().enumerate() {
        if u < q {
            return i;
        }
        u -= q;
    }
    p.len() - 1
}
