//! The training curves of one run: `loss.svg` and, for a classifier, `accuracy.svg`.
//!
//! The loss axis is logarithmic when the plotted losses span more than 1.5 decades (a ratio
//! above ~32), linear otherwise. Not always log: a loss that moves within one decade
//! (0.69 → 0.45) is squeezed into a narrow band between the same two or three log ticks,
//! which hides the late improvement a linear axis shows best; a log axis only pays when an
//! early spike or a fast first drop spans decades and would flatten the rest of the curve.

use std::path::{Path, PathBuf};

use super::chart::{Chart, LineChart, XAxis, YAxis};
use super::write_svg;
use crate::history::History;

/// Above this ratio of largest to smallest loss the loss axis is logarithmic (1.5 decades).
pub const LOG_LOSS_RATIO: f64 = 31.622_776_601_683_793;

fn series(history: &History, value: impl Fn(&crate::EpochRecord) -> f64) -> Vec<(f64, f64)> {
    history
        .epochs
        .iter()
        .map(|r| (r.epoch as f64, value(r)))
        .collect()
}

/// The loss chart of a run: train and validation loss per epoch (a series with no finite
/// value, e.g. validation without a validation set, is left out), titled with the run name,
/// on a log axis when the losses span more than [`LOG_LOSS_RATIO`].
///
/// # Errors
/// Only if drawing fails (see [`training_curves`]).
///
/// ```
/// use backprop_train::{EpochRecord, History};
/// use backprop_train::plot::{loss_chart, YAxis};
/// let rec = |epoch, train_loss: f64| EpochRecord { epoch, train_loss, train_accuracy: f64::NAN,
///     val_loss: f64::NAN, val_accuracy: f64::NAN, lr: 0.1, seconds: 1.0 };
/// let h = History { epochs: vec![rec(1, 40.0), rec(2, 0.5), rec(3, 0.2)] };
/// let chart = loss_chart("spiral", &h).unwrap();
/// assert_eq!(chart.y_axis, YAxis::Log);
/// assert_eq!(chart.x_ticks, ["1", "2", "3"]);
/// assert!(chart.svg.contains("spiral"));
/// ```
pub fn loss_chart(run_name: &str, history: &History) -> Result<Chart, String> {
    let curves = [
        ("train", series(history, |r| r.train_loss)),
        ("validation", series(history, |r| r.val_loss)),
    ];
    let positive = curves
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (lo, hi) = positive.fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    let log = lo > 0.0 && hi / lo > LOG_LOSS_RATIO;
    LineChart {
        title: &format!("{run_name}: loss per epoch"),
        x_label: "epoch",
        y_label: if log { "loss (log scale)" } else { "loss" },
        series: &curves,
        x_axis: XAxis::Integer,
        y_axis: if log { YAxis::Log } else { YAxis::Linear },
        last_in_legend: true,
    }
    .render()
}

/// The accuracy chart of a classifier's run: train and validation accuracy per epoch in
/// percent, on an axis inside 0–100 % fitted to the data, titled with the run name.
///
/// # Errors
/// Only if drawing fails (see [`training_curves`]).
pub fn accuracy_chart(run_name: &str, history: &History) -> Result<Chart, String> {
    let curves = [
        ("train", series(history, |r| r.train_accuracy)),
        ("validation", series(history, |r| r.val_accuracy)),
    ];
    LineChart {
        title: &format!("{run_name}: accuracy per epoch"),
        x_label: "epoch",
        y_label: "accuracy (%)",
        series: &curves,
        x_axis: XAxis::Integer,
        y_axis: YAxis::Percent,
        last_in_legend: true,
    }
    .render()
}

/// Writes a run's training curves into `dir`: `loss.svg`, and `accuracy.svg` if
/// `classification`. Returns the files written (none for an empty history).
///
/// # Errors
/// If a file cannot be written (the message names it) or drawing fails.
pub fn training_curves(
    dir: &Path,
    run_name: &str,
    history: &History,
    classification: bool,
) -> Result<Vec<PathBuf>, String> {
    if history.epochs.is_empty() {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    let loss = dir.join("loss.svg");
    write_svg(&loss, &loss_chart(run_name, history)?.svg)?;
    written.push(loss);
    if classification {
        let acc = dir.join("accuracy.svg");
        write_svg(&acc, &accuracy_chart(run_name, history)?.svg)?;
        written.push(acc);
    }
    Ok(written)
}
