//! Per-epoch training history, written as CSV and JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint::atomic_write;

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy over the epoch (classification; NaN for regression).
    pub train_accuracy: f64,
    /// Validation loss (NaN without a validation set).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch in seconds.
    pub seconds: f64,
}

/// The whole history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per epoch, in order.
    pub epochs: Vec<EpochRecord>,
}

fn num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v}")
    }
}

impl History {
    /// CSV with a header row; missing values are empty cells.
    pub fn to_csv(&self) -> String {
        let mut s =
            String::from("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
        for r in &self.epochs {
            s += &format!(
                "{},{},{},{},{},{},{}\n",
                r.epoch,
                num(r.train_loss),
                num(r.train_accuracy),
                num(r.val_loss),
                num(r.val_accuracy),
                num(r.lr),
                num(r.seconds)
            );
        }
        s
    }

    /// JSON (NaN written as null).
    pub fn to_json(&self) -> String {
        let v: Vec<serde_json::Value> = self
            .epochs
            .iter()
            .map(|r| {
                let f = |x: f64| if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null };
                serde_json::json!({"epoch": r.epoch, "train_loss": f(r.train_loss), "train_accuracy": f(r.train_accuracy),
                    "val_loss": f(r.val_loss), "val_accuracy": f(r.val_accuracy), "lr": f(r.lr), "seconds": f(r.seconds)})
            })
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({ "epochs": v })).unwrap()
    }

    /// Parses [`History::to_json`] output.
    pub fn from_json(text: &str) -> Result<History, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let g =
            |r: &serde_json::Value, k: &str| r.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        let epochs = v
            .get("epochs")
            .and_then(|e| e.as_array())
            .ok_or("no epochs list")?
            .iter()
            .map(|r| EpochRecord {
                epoch: g(r, "epoch") as usize,
                train_loss: g(r, "train_loss"),
                train_accuracy: g(r, "train_accuracy"),
                val_loss: g(r, "val_loss"),
                val_accuracy: g(r, "val_accuracy"),
                lr: g(r, "lr"),
                seconds: g(r, "seconds"),
            })
            .collect();
        Ok(History { epochs })
    }

    /// Writes `history.csv` and `history.json` into `dir`.
    ///
    /// # Errors
    /// If a file cannot be written; the message names it.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        for (name, text) in [
            ("history.csv", self.to_csv()),
            ("history.json", self.to_json()),
        ] {
            let p = dir.join(name);
            atomic_write(&p, |f| std::io::Write::write_all(f, text.as_bytes()))
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }
}
