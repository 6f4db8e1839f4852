//! Seeded parameter initializers.
//!
//! Fans follow PyTorch: for a weight of shape `[out, in, k...]`, `fan_in = in·Πk` and
//! `fan_out = out·Πk`.
//!
//! | initializer | distribution |
//! |---|---|
//! | `Zeros`, `Constant(c)` | all 0, all c |
//! | `Uniform { lo, hi }` | U(lo, hi) |
//! | `Normal { mean, std }` | N(mean, std²) |
//! | `XavierUniform` (Glorot & Bengio 2010) | U(−a, a), a = √(6 / (fan_in + fan_out)) |
//! | `XavierNormal` | N(0, 2 / (fan_in + fan_out)) |
//! | `HeUniform` (He et al. 2015) | U(−a, a), a = √(6 / fan_in) |
//! | `HeNormal` | N(0, 2 / fan_in) |
//! | `LecunUniform` (PyTorch's `Linear` default) | U(−a, a), a = 1/√fan_in |

use backprop_tensor::{Element, Rng, Tensor};

/// How to fill a new parameter.
///
/// ```
/// use backprop_nn::Init;
/// use backprop_tensor::{Rng, Tensor};
/// let w: Tensor = Init::HeUniform.tensor(&[256, 784], &mut Rng::seed(0));
/// let bound = (6.0f32 / 784.0).sqrt();
/// assert!(w.data().iter().all(|v| v.abs() <= bound));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All equal to the value.
    Constant(f64),
    /// Uniform on `[lo, hi)`.
    Uniform {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Glorot/Xavier uniform: U(−a, a), a = √(6/(fan_in+fan_out)).
    XavierUniform,
    /// Glorot/Xavier normal: N(0, 2/(fan_in+fan_out)).
    XavierNormal,
    /// He/Kaiming uniform: U(−a, a), a = √(6/fan_in).
    HeUniform,
    /// He/Kaiming normal: N(0, 2/fan_in).
    HeNormal,
    /// U(−1/√fan_in, 1/√fan_in): PyTorch's default for linear and conv layers.
    LecunUniform,
}

/// `(fan_in, fan_out)` of a weight shape `[out, in, k...]`; a 1-D shape has fan_in = fan_out = its length.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (shape[0], shape[0]),
        _ => {
            let receptive: usize = shape[2..].iter().product();
            (shape[1] * receptive, shape[0] * receptive)
        }
    }
}

impl Init {
    /// The initializers a spec names, in the order error messages list them.
    pub const NAMES: &'static [&'static str] = &[
        "lecun_uniform",
        "he_uniform",
        "he_normal",
        "xavier_uniform",
        "xavier_normal",
        "zeros",
    ];

    /// The initializer a spec names (also `default`, `kaiming_*`, `glorot_*`).
    ///
    /// ```
    /// use backprop_nn::Init;
    /// assert_eq!(Init::from_name("kaiming_uniform"), Some(Init::HeUniform));
    /// assert_eq!(Init::from_name("orthogonal"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Init> {
        Some(match name {
            "lecun_uniform" | "default" => Init::LecunUniform,
            "he_uniform" | "kaiming_uniform" => Init::HeUniform,
            "he_normal" | "kaiming_normal" => Init::HeNormal,
            "xavier_uniform" | "glorot_uniform" => Init::XavierUniform,
            "xavier_normal" | "glorot_normal" => Init::XavierNormal,
            "zeros" => Init::Zeros,
            _ => return None,
        })
    }

    /// A new tensor of `shape` drawn from this initializer.
    pub fn tensor<E: Element>(&self, shape: &[usize], rng: &mut Rng) -> Tensor<E> {
        let (fi, fo) = fans(shape);
        let (fi, fo) = (fi.max(1) as f64, fo.max(1) as f64);
        match *self {
            Init::Zeros => Tensor::zeros(shape),
            Init::Constant(c) => Tensor::full(shape, E::from_f64(c)),
            Init::Uniform { lo, hi } => Tensor::rand_uniform(shape, lo, hi, rng),
            Init::Normal { mean, std } => Tensor::rand_normal(shape, mean, std, rng),
            Init::XavierUniform => {
                let a = (6.0 / (fi + fo)).sqrt();
                Tensor::rand_uniform(shape, -a, a, rng)
            }
            Init::XavierNormal => Tensor::rand_normal(shape, 0.0, (2.0 / (fi + fo)).sqrt(), rng),
            Init::HeUniform => {
                let a = (6.0 / fi).sqrt();
                Tensor::rand_uniform(shape, -a, a, rng)
            }
            Init::HeNormal => Tensor::rand_normal(shape, 0.0, (2.0 / fi).sqrt(), rng),
            Init::LecunUniform => {
                let a = 1.0 / fi.sqrt();
                Tensor::rand_uniform(shape, -a, a, rng)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(t: &Tensor<f64>) -> f64 {
        let n = t.numel() as f64;
        let m = t.data().iter().sum::<f64>() / n;
        (t.data().iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt()
    }

    #[test]
    fn each_initializer_has_its_scale() {
        let mut rng = Rng::seed(3);
        let shape = [200, 300];
        let (fi, fo) = (300.0f64, 200.0f64);
        let uniform_std = |a: f64| a / 3f64.sqrt();
        let cases: [(Init, f64); 5] = [
            (Init::XavierUniform, uniform_std((6.0 / (fi + fo)).sqrt())),
            (Init::XavierNormal, (2.0 / (fi + fo)).sqrt()),
            (Init::HeUniform, uniform_std((6.0 / fi).sqrt())),
            (Init::HeNormal, (2.0 / fi).sqrt()),
            (
                Init::Normal {
                    mean: 0.0,
                    std: 0.3,
                },
                0.3,
            ),
        ];
        for (init, want) in cases {
            let s = std_of(&init.tensor(&shape, &mut rng));
            assert!(
                (s / want - 1.0).abs() < 0.02,
                "{init:?}: std {s}, want {want}"
            );
        }
        assert_eq!(
            Init::Zeros.tensor::<f32>(&[3], &mut rng).to_vec(),
            vec![0.0; 3]
        );
        assert_eq!(
            Init::Constant(0.5).tensor::<f32>(&[2], &mut rng).to_vec(),
            vec![0.5; 2]
        );
        let u: Tensor<f64> = Init::Uniform { lo: 2.0, hi: 3.0 }.tensor(&[1000], &mut rng);
        assert!(u.data().iter().all(|v| (2.0..3.0).contains(v)));
        assert_eq!(fans(&[6, 3, 5, 5]), (75, 150));
    }

    #[test]
    fn initializers_are_seeded() {
        let a: Tensor = Init::HeNormal.tensor(&[4, 4], &mut Rng::seed(1));
        let b: Tensor = Init::HeNormal.tensor(&[4, 4], &mut Rng::seed(1));
        assert_eq!(a, b);
    }
}
