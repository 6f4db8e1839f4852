//! Axis ranges and tick positions: steps of 1, 2 or 5 × 10ᵏ on linear axes, whole numbers on
//! an epoch axis, 1-2-5 or whole decades on a log axis. Computed here (not left to the
//! plotting crate) so that every chart's ticks follow one rule that the tests can check.

/// The largest "nice" step (1, 2 or 5 × 10ᵏ) that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(f64::MIN_POSITIVE);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// Ticks inside `[lo, hi]` at multiples of a nice step, at most `max` of them, and the number
/// of decimals that shows the step exactly.
pub(crate) fn linear_ticks(lo: f64, hi: f64, max: usize) -> (Vec<f64>, usize) {
    let step = nice_step((hi - lo) / max.max(2) as f64);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    (ticks, decimals)
}

/// Whole-number ticks inside `[lo, hi]` (e.g. epochs): a step of 1, 2, 5, 10, … so that there
/// are at most `max` of them.
pub(crate) fn integer_ticks(lo: i64, hi: i64, max: usize) -> Vec<i64> {
    let step = (nice_step((hi - lo) as f64 / max.max(2) as f64).round() as i64).max(1);
    let first = lo.div_euclid(step) * step;
    let first = if first < lo { first + step } else { first };
    (0..)
        .map(|k| first + k * step)
        .take_while(|&t| t <= hi)
        .collect()
}

/// Ticks for a log axis over `[lo, hi]` (both > 0): every decade, with every digit 1–9 when
/// the axis spans about one decade, 2 and 5 up to three, 3 up to five.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mantissas: &[f64] = match d1 - d0 {
        ..=1 => &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        2..=3 => &[1.0, 2.0, 5.0],
        4..=5 => &[1.0, 3.0],
        _ => &[1.0],
    };
    let every = ((d1 - d0) as usize).div_ceil(8).max(1);
    (d0..=d1)
        .filter(|d| ((d - d0) as usize).is_multiple_of(every))
        .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
        .filter(|&v| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9))
        .collect()
}

/// A tick label on a log axis: as few digits as the value needs (0.05, 2, 300), and
/// scientific notation below 0.0001 or from a million up.
pub(crate) fn log_label(v: f64) -> String {
    if !(1e-4..1e6).contains(&v) {
        let e = v.log10().floor();
        let m = v / 10f64.powf(e);
        return if (m - 1.0).abs() < 1e-6 {
            format!("1e{e:.0}")
        } else {
            format!("{m:.0}e{e:.0}")
        };
    }
    let decimals = (-v.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_use_a_nice_step_and_stay_inside() {
        let (t, d) = linear_ticks(0.13, 0.97, 6);
        assert_eq!(d, 1);
        assert_eq!(t.len(), 4, "{t:?}"); // span 0.84 / 6 → step 0.2
        assert!((t[0] - 0.2).abs() < 1e-12 && (t[3] - 0.8).abs() < 1e-12);
        let (t, d) = linear_ticks(88.0, 100.0, 6);
        assert_eq!(
            (t.first().copied(), t.last().copied(), d),
            (Some(88.0), Some(100.0), 0)
        );
    }

    #[test]
    fn integer_ticks_are_whole_and_spaced_by_1_2_5() {
        assert_eq!(integer_ticks(1, 3, 8), vec![1, 2, 3]);
        assert_eq!(integer_ticks(1, 30, 8), vec![5, 10, 15, 20, 25, 30]);
        assert_eq!(integer_ticks(1, 1, 8), vec![1]);
        assert_eq!(integer_ticks(3, 17, 6), vec![5, 10, 15]);
    }

    #[test]
    fn log_ticks_cover_decades() {
        assert_eq!(log_ticks(0.01, 10.0).len(), 10); // 0.01 0.02 0.05 … 5 10
        assert_eq!(log_ticks(1e-5, 10.0).len(), 7); // every decade
        let t = log_ticks(0.03, 3.0);
        let want = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0];
        assert_eq!(t.len(), want.len(), "{t:?}");
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        assert_eq!(log_label(0.05), "0.05");
        assert_eq!(log_label(200.0), "200");
        assert_eq!(log_label(1e-6), "1e-6");
    }
}
