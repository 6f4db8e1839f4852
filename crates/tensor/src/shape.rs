//! Shape arithmetic: element counts, row-major strides and NumPy broadcasting.

use crate::error::{or_panic, Result, TensorError};

/// Number of elements of a shape (1 for a scalar, shape `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major (C order) strides, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i];
    }
    s
}

/// The broadcast shape of two shapes under NumPy rules: align at the right; each pair of
/// dimensions must be equal or one of them 1.
///
/// # Errors
/// [`TensorError::ShapeMismatch`] naming `op` when a pair of dimensions differs and neither is 1.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(TensorError::shapes(
                op,
                a,
                b,
                format!("dimension {da} against {db} cannot be broadcast"),
            ));
        };
    }
    Ok(out)
}

/// Strides for reading a tensor of shape `from` as if it had the (broadcast) shape `to`:
/// broadcast dimensions get stride 0.
pub(crate) fn broadcast_strides(from: &[usize], to: &[usize]) -> Vec<usize> {
    let st = strides(from);
    let off = to.len() - from.len();
    (0..to.len())
        .map(|i| {
            if i < off || from[i - off] == 1 {
                0
            } else {
                st[i - off]
            }
        })
        .collect()
}

/// The one place an axis that may be negative is normalised: `-1` is the last axis, `-rank`
/// the first. Every op that takes an `isize` axis, here and in the autograd layer, calls
/// this (or [`norm_axis`]).
///
/// ```
/// use backprop_tensor::shape::try_norm_axis;
/// assert_eq!(try_norm_axis("sum", -1, 3), Ok(2));
/// assert_eq!(try_norm_axis("sum", 1, 3), Ok(1));
/// assert!(try_norm_axis("sum", 3, 3).unwrap_err().to_string().starts_with("sum: axis 3"));
/// ```
///
/// # Errors
/// If the axis is outside `-rank..rank`; the message names `op`, the axis and the rank.
pub fn try_norm_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        Err(TensorError::invalid(
            op,
            format!("axis {axis} is out of range for a tensor of rank {rank}"),
        ))
    } else {
        Ok(a as usize)
    }
}

/// [`try_norm_axis`] for ops that panic on a programming error.
///
/// ```
/// use backprop_tensor::shape::norm_axis;
/// assert_eq!(norm_axis("softmax", -2, 2), 0);
/// ```
///
/// # Panics
/// If the axis is out of range, with [`try_norm_axis`]'s message.
#[track_caller]
pub fn norm_axis(op: &'static str, axis: isize, rank: usize) -> usize {
    or_panic(try_norm_axis(op, axis, rank))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes("t", &[2, 3], &[3]).unwrap(), vec![2, 3]);
        assert_eq!(
            broadcast_shapes("t", &[4, 1, 3], &[2, 1]).unwrap(),
            vec![4, 2, 3]
        );
        assert_eq!(broadcast_shapes("t", &[], &[5]).unwrap(), vec![5]);
        let e = broadcast_shapes("add", &[2, 3], &[4])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("add") && e.contains("[2, 3]") && e.contains("[4]"),
            "{e}"
        );
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]), vec![0, 1, 0]);
    }

    #[test]
    fn negative_axes_count_from_the_end_and_out_of_range_ones_name_the_op() {
        for rank in 1..4usize {
            for axis in 0..rank {
                assert_eq!(try_norm_axis("t", axis as isize, rank), Ok(axis));
                assert_eq!(norm_axis("t", axis as isize - rank as isize, rank), axis);
            }
            for bad in [rank as isize, -(rank as isize) - 1] {
                let e = try_norm_axis("gather", bad, rank).unwrap_err().to_string();
                assert_eq!(
                    e,
                    format!("gather: axis {bad} is out of range for a tensor of rank {rank}")
                );
            }
        }
        assert!(try_norm_axis("sum", 0, 0).is_err(), "a scalar has no axes");
        let p = std::panic::catch_unwind(|| norm_axis("softmax", 2, 2)).unwrap_err();
        let msg = p.downcast::<String>().unwrap();
        assert!(msg.starts_with("softmax: axis 2 is out of range"), "{msg}");
    }
}
