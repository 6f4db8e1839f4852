//! Classification metrics: accuracy, the confusion matrix, per-class precision and recall;
//! regression scores (MSE, RMSE, MAE, R²).

use serde::Serialize;

/// A confusion matrix: `counts[true][predicted]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// `counts[t][p]` = samples of class `t` predicted as `p`.
    pub counts: Vec<Vec<usize>>,
}

impl Confusion {
    /// Counts predictions against labels over `classes` classes.
    pub fn new(predicted: &[usize], labels: &[usize], classes: usize) -> Confusion {
        let mut counts = vec![vec![0; classes]; classes];
        for (&p, &t) in predicted.iter().zip(labels) {
            if p < classes && t < classes {
                counts[t][p] += 1;
            }
        }
        Confusion { counts }
    }

    /// Fraction of samples on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let total: usize = self.counts.iter().flatten().sum();
        let right: usize = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        if total == 0 {
            0.0
        } else {
            right as f64 / total as f64
        }
    }

    /// Precision of each class: right predictions of it / all predictions of it (0 if never predicted).
    pub fn precision(&self) -> Vec<f64> {
        (0..self.counts.len())
            .map(|c| {
                let predicted: usize = self.counts.iter().map(|row| row[c]).sum();
                if predicted == 0 {
                    0.0
                } else {
                    self.counts[c][c] as f64 / predicted as f64
                }
            })
            .collect()
    }

    /// Recall of each class: right predictions of it / all samples of it (0 if absent).
    pub fn recall(&self) -> Vec<f64> {
        self.counts
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let n: usize = row.iter().sum();
                if n == 0 {
                    0.0
                } else {
                    row[c] as f64 / n as f64
                }
            })
            .collect()
    }

    /// A readable table with class names, precision and recall.
    pub fn table(&self, names: &[String]) -> String {
        let w = names.iter().map(|n| n.len()).max().unwrap_or(1).max(5);
        let mut s = format!("{:>w$} |", "true\\pred");
        for n in names {
            s += &format!(" {n:>6}");
        }
        s += "   precision  recall\n";
        let (p, r) = (self.precision(), self.recall());
        for (i, row) in self.counts.iter().enumerate() {
            s += &format!("{:>w$} |", names.get(i).map_or("?", |n| n.as_str()));
            for c in row {
                s += &format!(" {c:>6}");
            }
            s += &format!("   {:>9.4} {:>7.4}\n", p[i], r[i]);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_precision_recall() {
        // labels 0,0,1,1,2 ; predictions 0,1,1,1,0
        let c = Confusion::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 2], 3);
        assert_eq!(c.counts, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
        assert_eq!(c.accuracy(), 0.6);
        assert_eq!(c.precision(), vec![0.5, 2.0 / 3.0, 0.0]);
        assert_eq!(c.recall(), vec![0.5, 1.0, 0.0]);
    }
}

/// Regression scores in the target's own units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegressionScores {
    /// Mean squared error.
    pub mse: f64,
    /// Its square root.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination: 1 − SSE / Σ(y − ȳ)²; 0 is no better than predicting
    /// the mean, negative is worse.
    pub r2: f64,
}

impl RegressionScores {
    /// Scores `predicted` against `truth` (equal lengths, at least one value).
    ///
    /// ```
    /// use backprop_train::metrics::RegressionScores;
    /// let s = RegressionScores::new(&[1.0, 2.0, 4.0], &[1.0, 3.0, 5.0]);
    /// assert_eq!((s.mse, s.mae), (2.0 / 3.0, 2.0 / 3.0));
    /// // ȳ = 3, Σ(y − ȳ)² = 4 + 0 + 4 = 8, SSE = 0 + 1 + 1 = 2
    /// assert_eq!(s.r2, 1.0 - 2.0 / 8.0);
    /// assert_eq!(RegressionScores::new(&[3.0, 3.0], &[2.0, 4.0]).r2, 0.0);
    /// ```
    pub fn new(predicted: &[f64], truth: &[f64]) -> RegressionScores {
        let n = truth.len().max(1) as f64;
        let mean = truth.iter().sum::<f64>() / n;
        let sse: f64 = predicted
            .iter()
            .zip(truth)
            .map(|(p, t)| (p - t).powi(2))
            .sum();
        let sst: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
        let mae = predicted
            .iter()
            .zip(truth)
            .map(|(p, t)| (p - t).abs())
            .sum::<f64>()
            / n;
        RegressionScores {
            mse: sse / n,
            rmse: (sse / n).sqrt(),
            mae,
            r2: if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN },
        }
    }
}
