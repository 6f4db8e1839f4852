//! Noticing a run that did not learn: the training loss hardly fell, every sample was put
//! in one class, or a regression does worse than predicting the mean. Each warning names
//! the likely cause and what to try.

use crate::history::History;
use crate::metrics::RegressionScores;
use crate::trainer::Evaluation;

/// The warnings a finished run deserves, judged on its history and its scores on the
/// training data (`regression`: the training split's scores, for regression data).
///
/// ```
/// use backprop_train::diagnose::learning_warnings;
/// use backprop_train::metrics::{Confusion, RegressionScores};
/// use backprop_train::{EpochRecord, Evaluation, History};
/// let rec = |epoch, train_loss| EpochRecord { epoch, train_loss, train_accuracy: 0.5,
///     val_loss: f64::NAN, val_accuracy: f64::NAN, lr: 0.1, seconds: 0.0 };
/// let flat = History { epochs: (1..=5).map(|e| rec(e, 0.69)).collect(), ..History::default() };
/// // every sample predicted as class 0, though there are two classes
/// let c = Confusion::new(&[0, 0, 0, 0], &[0, 1, 0, 1], 2);
/// let e = Evaluation { loss: 0.69, accuracy: c.accuracy(), confusion: Some(c) };
/// let w = learning_warnings(&flat, &e, None);
/// assert_eq!(w.len(), 2, "{w:?}");
/// let falling = History { epochs: (1..=5).map(|e| rec(e, 1.0 / e as f64)).collect(), ..History::default() };
/// let good = Confusion::new(&[0, 1, 0, 1], &[0, 1, 0, 1], 2);
/// let e = Evaluation { loss: 0.1, accuracy: 1.0, confusion: Some(good) };
/// assert!(learning_warnings(&falling, &e, None).is_empty());
/// let worse = RegressionScores::new(&[5.0, 5.0], &[1.0, 2.0]);
/// assert_eq!(learning_warnings(&falling, &e, Some(&worse)).len(), 1);
/// ```
pub fn learning_warnings(
    history: &History,
    train: &Evaluation,
    regression: Option<&RegressionScores>,
) -> Vec<String> {
    let mut out = Vec::new();
    let losses: Vec<f64> = history.epochs.iter().map(|r| r.train_loss).collect();
    if let (Some(&first), Some(best)) = (
        losses.first(),
        losses
            .iter()
            .copied()
            .filter(|l| l.is_finite())
            .reduce(f64::min),
    ) {
        if losses.len() >= 3 && first.is_finite() && best > 0.9 * first {
            out.push(format!(
                "the training loss hardly fell ({first:.4} in the first epoch, at best {best:.4} over {} epochs): the model is not learning. Likely causes: a learning rate too small or too large (try --lr 10 times smaller or larger, or --optimizer adam), or unscaled inputs (for a CSV file keep --scale standard)",
                losses.len()
            ));
        }
    }
    if let Some(c) = &train.confusion {
        let present = c
            .counts
            .iter()
            .filter(|row| row.iter().sum::<usize>() > 0)
            .count();
        let predicted: Vec<usize> = (0..c.counts.len())
            .filter(|&p| c.counts.iter().any(|row| row[p] > 0))
            .collect();
        if present > 1 && predicted.len() == 1 {
            out.push(format!(
                "the model puts every training sample in one class (class {} of {present}): it has collapsed to the majority or a constant answer. Likely causes: unscaled inputs (keep --scale standard for CSV files), a learning rate too large (try a smaller --lr), or too few epochs",
                predicted[0]
            ));
        }
    }
    if let Some(r) = regression {
        if r.r2.is_finite() && r.r2 <= 0.0 {
            out.push(format!(
                "on the training data the model predicts worse than the mean of the target (R² = {:.3}): it has not learned the relation. Likely causes: unscaled inputs or targets (keep --scale standard), a learning rate too large or too small (try --optimizer adam, or --lr 10 times smaller), or too few epochs",
                r.r2
            ));
        }
    }
    out
}
