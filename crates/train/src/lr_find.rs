//! The learning-rate range test (Smith 2017, "Cyclical learning rates for training neural
//! networks", §3.3): a short run whose learning rate grows exponentially from tiny to huge,
//! one step per rate, recording the loss. The loss first stays flat (η too small), then
//! falls (η useful), then blows up (η too large). The suggested rate is one tenth of the rate
//! at the smoothed loss's minimum — where the loss is still falling steeply and safely
//! before the blow-up (the rule fastai popularised); the steepest-descent rate is reported
//! too.

use backprop_autograd::Var;
use backprop_data::Dataset;
use backprop_nn::{Mode, Module};
use backprop_tensor::Rng;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::trainer::batch_loss;

/// The range of the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrFindSettings {
    /// The first learning rate.
    pub start: f64,
    /// The last learning rate.
    pub end: f64,
    /// Steps (one batch each) from `start` to `end`.
    pub steps: usize,
    /// The test stops once the smoothed loss exceeds this multiple of its best.
    pub stop_factor: f64,
}

impl Default for LrFindSettings {
    fn default() -> Self {
        LrFindSettings {
            start: 1e-6,
            end: 10.0,
            steps: 200,
            stop_factor: 4.0,
        }
    }
}

/// What the test measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrFind {
    /// The learning rate of each step taken.
    pub lrs: Vec<f64>,
    /// The batch loss of each step (before its update).
    pub losses: Vec<f64>,
    /// The losses smoothed (exponential average with β = 0.9, bias-corrected).
    pub smoothed: Vec<f64>,
    /// The rate at the smoothed loss's minimum.
    pub min_loss_lr: f64,
    /// The rate where the smoothed loss falls fastest (per decade of η).
    pub steepest_lr: f64,
    /// The suggestion: `min_loss_lr / 10`.
    pub suggestion: f64,
}

/// Runs the test on `model` (whose weights it changes: pass a fresh model) with the
/// optimizer, loss, batch size and seed of `config`.
///
/// # Errors
/// If the settings are out of range or the data is empty.
///
/// ```
/// use backprop_data::synthetic;
/// use backprop_nn::{Activation, Linear, Sequential};
/// use backprop_tensor::Rng;
/// use backprop_train::lr_find::{lr_find, LrFindSettings};
/// use backprop_train::TrainConfig;
/// let data = synthetic("gauss", 200, 0.1, 1).unwrap();
/// let mut rng = Rng::seed(0);
/// let net = Sequential::new().add("fc1", Linear::new(2, 8, &mut rng)).add("r", Activation::Relu)
///     .add("fc2", Linear::new(8, 2, &mut rng));
/// let s = LrFindSettings { steps: 60, ..LrFindSettings::default() };
/// let r = lr_find(&net, &data, &TrainConfig::default(), &s).unwrap();
/// assert!(r.suggestion > 1e-6 && r.suggestion < 10.0);
/// ```
pub fn lr_find(
    model: &dyn Module<f32>,
    train: &Dataset,
    config: &TrainConfig,
    s: &LrFindSettings,
) -> Result<LrFind, String> {
    if !(s.start > 0.0 && s.end > s.start && s.end.is_finite()) {
        return Err(format!(
            "the range {}..{} must be positive and increasing",
            s.start, s.end
        ));
    }
    if s.steps < 10 {
        return Err(format!("{} steps are too few (at least 10)", s.steps));
    }
    if train.is_empty() {
        return Err("the training data is empty".into());
    }
    let mut opt = config
        .optimizer
        .build(model.params(), &config.optimizer_settings());
    let bs = config.batch_size.min(train.len()).max(1);
    let mut rng = Rng::seed(config.seed);
    let (mut lrs, mut losses, mut smoothed) = (Vec::new(), Vec::new(), Vec::new());
    let (beta, mut avg, mut best) = (0.9f64, 0.0f64, f64::INFINITY);
    'outer: loop {
        for batch in train.batches(bs, Some(&mut rng)) {
            let k = lrs.len();
            if k == s.steps {
                break 'outer;
            }
            let lr = s.start * (s.end / s.start).powf(k as f64 / (s.steps - 1) as f64);
            opt.set_lr(lr);
            let out = model.forward(&Var::constant(batch.x), Mode::Train);
            let loss = batch_loss(config.loss, &out, &batch.targets);
            let lv = f64::from(loss.item());
            if !lv.is_finite() {
                break 'outer;
            }
            avg = beta * avg + (1.0 - beta) * lv;
            let sm = avg / (1.0 - beta.powi(k as i32 + 1));
            lrs.push(lr);
            losses.push(lv);
            smoothed.push(sm);
            best = best.min(sm);
            if k > 10 && sm > s.stop_factor * best {
                break 'outer;
            }
            opt.step(&loss.backward());
        }
    }
    suggest(lrs, losses, smoothed)
}

fn suggest(lrs: Vec<f64>, losses: Vec<f64>, smoothed: Vec<f64>) -> Result<LrFind, String> {
    if lrs.len() < 5 {
        return Err(format!(
            "the loss stopped being finite after {} steps; start the range lower",
            lrs.len()
        ));
    }
    let imin = (0..smoothed.len())
        .min_by(|&a, &b| smoothed[a].total_cmp(&smoothed[b]))
        .unwrap_or(0);
    // slope per decade over a window of ±w steps, before the minimum
    let w = (lrs.len() / 20).max(2);
    let hi = imin.min(lrs.len() - w);
    let steepest = (w..hi)
        .map(|i| {
            let d = (smoothed[i + w] - smoothed[i - w]) / (lrs[i + w] / lrs[i - w]).log10();
            (d, i)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(imin, |(_, i)| i);
    Ok(LrFind {
        min_loss_lr: lrs[imin],
        steepest_lr: lrs[steepest],
        suggestion: lrs[imin] / 10.0,
        lrs,
        losses,
        smoothed,
    })
}

/// The loss-versus-η chart (log η axis drawn as log10 η), with the suggestion marked.
pub fn lr_find_svg(r: &LrFind, title: &str) -> String {
    // the blow-up at the end would flatten the rest: leave out losses beyond 1.5× the start
    let start = r
        .smoothed
        .iter()
        .take(10)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let pts = |v: &[f64]| -> Vec<(f64, f64)> {
        r.lrs
            .iter()
            .zip(v)
            .filter(|(_, &y)| y <= 1.5 * start)
            .map(|(&l, &y)| (l.log10(), y))
            .collect()
    };
    let top = 1.5 * start;
    let low = r.smoothed.iter().copied().fold(f64::INFINITY, f64::min);
    let mark = |lr: f64| vec![(lr.log10(), low), (lr.log10(), top)];
    crate::plot::xy_chart_svg(
        title,
        "log10 learning rate",
        "training loss",
        &[
            ("batch loss", pts(&r.losses)),
            ("smoothed", pts(&r.smoothed)),
            ("suggested η", mark(r.suggestion)),
            ("minimum", mark(r.min_loss_lr)),
        ],
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggestion_is_a_tenth_of_the_minimum_on_a_made_up_curve() {
        // a loss flat, then falling, then rising: minimum at step 60
        let lrs: Vec<f64> = (0..100)
            .map(|k| 1e-5 * 10f64.powf(k as f64 / 20.0))
            .collect();
        let sm: Vec<f64> = (0..100)
            .map(|k| {
                let x = k as f64;
                if x < 30.0 {
                    2.0
                } else if x < 60.0 {
                    2.0 - (x - 30.0) / 20.0
                } else {
                    0.5 + (x - 60.0) / 5.0
                }
            })
            .collect();
        let r = suggest(lrs.clone(), sm.clone(), sm).unwrap();
        assert_eq!(r.min_loss_lr, lrs[60]);
        assert!((r.suggestion - lrs[60] / 10.0).abs() < 1e-15);
        assert!(r.steepest_lr > lrs[29] && r.steepest_lr <= lrs[60]);
    }

    #[test]
    fn bad_ranges_are_refused() {
        let data = backprop_data::synthetic("gauss", 50, 0.1, 1).unwrap();
        let mut rng = Rng::seed(0);
        let net = backprop_nn::Linear::<f32>::new(2, 2, &mut rng);
        let c = TrainConfig::default();
        let bad = LrFindSettings {
            start: 1.0,
            end: 0.1,
            ..LrFindSettings::default()
        };
        assert!(lr_find(&net, &data, &c, &bad)
            .unwrap_err()
            .contains("increasing"));
        let few = LrFindSettings {
            steps: 3,
            ..LrFindSettings::default()
        };
        assert!(lr_find(&net, &data, &c, &few)
            .unwrap_err()
            .contains("too few"));
    }
}
