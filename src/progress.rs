//! Progress on stderr: a bar per epoch on a terminal, one line per epoch always.

use std::io::IsTerminal;
use std::time::Instant;

use backprop_train::{EpochRecord, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    bar: Option<ProgressBar>,
    epochs: usize,
    started: Instant,
    samples: usize,
    loss: f64,
    acc: f64,
    steps: usize,
    pub quiet: bool,
}

impl Bars {
    pub fn new(quiet: bool) -> Self {
        Bars {
            bar: None,
            epochs: 0,
            started: Instant::now(),
            samples: 0,
            loss: 0.0,
            acc: 0.0,
            steps: 0,
            quiet,
        }
    }
}

fn pct(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{:.2}%", 100.0 * v)
    }
}

impl Observer for Bars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.epochs = epochs;
        self.started = Instant::now();
        (self.samples, self.loss, self.acc, self.steps) = (0, 0.0, 0.0, 0);
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:28}] {pos}/{len} {msg}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch:>3}/{epochs}"));
        self.bar = Some(bar);
    }

    fn step(&mut self, loss: f64, accuracy: f64, samples: usize) {
        self.samples += samples;
        self.steps += 1;
        // running means over the epoch so far
        self.loss += (loss - self.loss) / self.steps as f64;
        self.acc += (accuracy - self.acc) / self.steps as f64;
        if let Some(b) = &self.bar {
            b.inc(1);
            if self.steps.is_multiple_of(20) {
                let rate = self.samples as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                b.set_message(format!(
                    "loss {:.4} acc {} {:.0} samples/s",
                    self.loss,
                    pct(self.acc),
                    rate
                ));
            }
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let rate = self.samples as f64 / r.seconds.max(1e-9);
        let val = if r.val_loss.is_nan() {
            String::new()
        } else {
            format!("  val loss {:.4} acc {}", r.val_loss, pct(r.val_accuracy))
        };
        eprintln!(
            "epoch {:>3}/{}  train loss {:.4} acc {}{val}  lr {:.4}  {:.1}s ({:.0} samples/s)",
            r.epoch,
            self.epochs,
            r.train_loss,
            pct(r.train_accuracy),
            r.lr,
            r.seconds,
            rate
        );
    }
}
