//! The 2-D demonstration sets of TensorFlow Playground, seeded, with settable noise.
//! Points lie roughly in [−1, 1]².
//!
//! | name | task | description |
//! |---|---|---|
//! | `circle` | 2 classes | a disk of one class inside a ring of the other |
//! | `xor` | 2 classes | the class is whether x₁ and x₂ have the same sign |
//! | `gauss` | 2 classes | two Gaussian blobs |
//! | `spiral` | 2 classes | two interleaved spirals |
//! | `plane` | regression | y = (x₁ + x₂)/2 |
//! | `multigauss` | regression | a sum of Gaussian bumps of both signs |

use backprop_tensor::{Rng, Tensor};

use crate::dataset::{Dataset, Targets};
use crate::error::{DataError, Result};

/// Names of the synthetic sets.
pub const SYNTHETIC: [&str; 6] = ["circle", "xor", "gauss", "spiral", "plane", "multigauss"];

/// Names of the synthetic sets with a settable number of classes.
pub const SYNTHETIC_MULTICLASS: [&str; 2] = ["blobs", "spirals"];

/// Generates `n` points in `classes` classes (2–8): `blobs`, Gaussian blobs evenly spaced on
/// a circle, or `spirals`, one interleaved spiral arm per class. Classes alternate, so every
/// class has `n/classes` points (±1).
///
/// # Errors
/// If the name is unknown or `classes` is not in 2..=8.
///
/// ```
/// use backprop_data::synthetic_multiclass;
/// let d = synthetic_multiclass("spirals", 300, 3, 0.1, 1).unwrap();
/// assert_eq!((d.len(), d.features(), d.num_classes()), (300, 2, 3));
/// assert!(synthetic_multiclass("blobs", 30, 9, 0.0, 1).is_err());
/// ```
pub fn synthetic_multiclass(
    name: &str,
    n: usize,
    classes: usize,
    noise: f64,
    seed: u64,
) -> Result<Dataset> {
    if !(2..=8).contains(&classes) {
        return Err(DataError::new(
            name,
            format!("needs 2 to 8 classes, not {classes}"),
        ));
    }
    let mut rng = Rng::seed(seed);
    let mut x = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    let turn = std::f64::consts::TAU / classes as f64;
    for i in 0..n {
        let class = i % classes;
        let (px, py) = match name {
            "blobs" => {
                let a = turn * class as f64;
                let s = 0.12 + 0.4 * noise;
                (
                    0.6 * a.cos() + s * rng.normal(),
                    0.6 * a.sin() + s * rng.normal(),
                )
            }
            "spirals" => {
                let t = rng.uniform();
                let r = 0.05 + 0.95 * t;
                let a = 1.25 * std::f64::consts::TAU * t + turn * class as f64;
                (
                    r * a.cos() + noise * 0.25 * rng.normal(),
                    r * a.sin() + noise * 0.25 * rng.normal(),
                )
            }
            other => {
                return Err(DataError::new(
                    other,
                    format!(
                        "is not a multiclass synthetic dataset; choose one of {}",
                        SYNTHETIC_MULTICLASS.join(", ")
                    ),
                ))
            }
        };
        x.extend([px as f32, py as f32]);
        labels.push(class);
    }
    Ok(Dataset {
        name: format!("{name}{classes}"),
        x: Tensor::from_vec(x, &[n, 2]),
        targets: Targets::Classes {
            labels,
            names: (0..classes).map(|c| c.to_string()).collect(),
        },
        image_shape: None,
    })
}

/// Generates `n` points of a named set with noise level `noise` (0 = none; 0.1–0.5 typical).
///
/// # Errors
/// If the name is unknown.
///
/// ```
/// use backprop_data::synthetic;
/// let d = synthetic("spiral", 200, 0.1, 7).unwrap();
/// assert_eq!((d.len(), d.features(), d.num_classes()), (200, 2, 2));
/// assert!(synthetic("moons", 10, 0.0, 0).is_err());
/// ```
pub fn synthetic(name: &str, n: usize, noise: f64, seed: u64) -> Result<Dataset> {
    let mut rng = Rng::seed(seed);
    let mut x = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    match name {
        "circle" => {
            for i in 0..n {
                let inside = i % 2 == 0;
                let r = if inside {
                    rng.uniform_range(0.0, 0.5)
                } else {
                    rng.uniform_range(0.7, 1.0)
                };
                let a = rng.uniform_range(0.0, std::f64::consts::TAU);
                x.extend([
                    r * a.cos() + noise * 0.5 * rng.normal(),
                    r * a.sin() + noise * 0.5 * rng.normal(),
                ]);
                labels.push(usize::from(inside));
            }
        }
        "xor" => {
            for _ in 0..n {
                let pad = 0.06;
                let mut p = [rng.uniform_range(-1.0, 1.0), rng.uniform_range(-1.0, 1.0)];
                for v in &mut p {
                    *v += if *v > 0.0 { pad } else { -pad };
                }
                labels.push(usize::from(p[0] * p[1] > 0.0));
                x.extend([
                    p[0] + noise * 0.5 * rng.normal(),
                    p[1] + noise * 0.5 * rng.normal(),
                ]);
            }
        }
        "gauss" => {
            for i in 0..n {
                let c = if i % 2 == 0 { 0.4 } else { -0.4 };
                let s = 0.1 + 0.4 * noise;
                x.extend([c + s * rng.normal(), c + s * rng.normal()]);
                labels.push(usize::from(i % 2 == 0));
            }
        }
        "spiral" => {
            for i in 0..n {
                let class = i % 2;
                let t = rng.uniform();
                let r = 0.05 + 0.95 * t;
                let a = 1.75 * std::f64::consts::TAU * t + std::f64::consts::PI * class as f64;
                x.extend([
                    r * a.cos() + noise * 0.25 * rng.normal(),
                    r * a.sin() + noise * 0.25 * rng.normal(),
                ]);
                labels.push(class);
            }
        }
        "plane" => {
            for _ in 0..n {
                let p = [rng.uniform_range(-1.0, 1.0), rng.uniform_range(-1.0, 1.0)];
                values.push((p[0] + p[1]) / 2.0 + noise * 0.2 * rng.normal());
                x.extend(p);
            }
        }
        "multigauss" => {
            let bumps = [
                (-0.6, 0.6, 1.0),
                (0.6, 0.6, -1.0),
                (-0.6, -0.6, -1.0),
                (0.6, -0.6, 1.0),
                (0.0, 0.0, 0.7),
            ];
            for _ in 0..n {
                let p = [rng.uniform_range(-1.0, 1.0), rng.uniform_range(-1.0, 1.0)];
                let v: f64 = bumps
                    .iter()
                    .map(|&(cx, cy, s)| {
                        s * (-((p[0] - cx).powi(2) + (p[1] - cy).powi(2)) / 0.08).exp()
                    })
                    .sum();
                values.push(v + noise * 0.2 * rng.normal());
                x.extend(p);
            }
        }
        other => {
            return Err(DataError::new(
                other,
                format!(
                    "is not a synthetic dataset; choose one of {}",
                    SYNTHETIC.join(", ")
                ),
            ));
        }
    }
    let x = Tensor::from_vec(x.into_iter().map(|v| v as f32).collect(), &[n, 2]);
    let targets = if matches!(name, "plane" | "multigauss") {
        Targets::Values(Tensor::from_vec(
            values.into_iter().map(|v| v as f32).collect(),
            &[n, 1],
        ))
    } else {
        Targets::Classes {
            labels,
            names: vec!["0".into(), "1".into()],
        }
    };
    Ok(Dataset {
        name: name.to_string(),
        x,
        targets,
        image_shape: None,
    })
}
