//! A Gaussian radial basis layer (Broomhead & Lowe 1988) with learnable centres and widths:
//! `φⱼ(x) = exp(−‖x − cⱼ‖² / 2σⱼ²)`. Put a linear layer after it for an RBF network trained
//! end to end by backpropagation (`backprop_classic::rbf` trains one in two stages instead).
//!
//! # Shapes
//! `x: [batch, in] → φ: [batch, centres]`; parameters `centres: [centres, in]`,
//! `widths: [centres]`.
//!
//! ```
//! use backprop_autograd::Var;
//! use backprop_nn::{Mode, Module, Rbf};
//! use backprop_tensor::{Rng, Tensor};
//! let layer = Rbf::<f32>::new(2, 3, &mut Rng::seed(0));
//! layer.centres.set_value(Tensor::zeros(&[3, 2]));
//! let phi = layer.forward(&Var::constant(Tensor::from_vec(vec![0.0, 0.0, 1.0, 1.0], &[2, 2])), Mode::Eval);
//! // at a centre φ = 1; at distance √2 with σ = 1, φ = e⁻¹
//! let v = phi.value().to_vec();
//! assert!((v[0] - 1.0).abs() < 1e-6 && (v[3] - (-1.0f32).exp()).abs() < 1e-6);
//! ```

use backprop_autograd::Var;
use backprop_tensor::{Element, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::layers::{flat_width, BuiltLayer};
use crate::module::{Mode, Module};
use crate::spec::{add_counts, count, InputKind, LayerConfig, LayerError, LayerPlan};

/// The layer: centres (rows) and one width per centre.
pub struct Rbf<E: Element = f32> {
    /// `[centres, in]`.
    pub centres: Var<E>,
    /// σⱼ, `[centres]`.
    pub widths: Var<E>,
}

impl<E: Element> Rbf<E> {
    /// `centres` basis functions on `inputs` features: centres drawn from N(0, 1), widths 1.
    pub fn new(inputs: usize, centres: usize, rng: &mut Rng) -> Self {
        Rbf {
            centres: Var::parameter(Tensor::rand_normal(&[centres, inputs], 0.0, 1.0, rng)),
            widths: Var::parameter(Tensor::full(&[centres], E::from_f64(1.0))),
        }
    }
}

/// An [`Rbf`] layer's configuration: `{"type": "rbf", "centres": 100}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbfConfig {
    /// Input width, if stated; checked against the width that reaches the layer.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub inputs: Option<usize>,
    /// Basis functions.
    pub centres: usize,
}

impl LayerConfig for RbfConfig {
    const TYPE: &'static str = "rbf";
    const PREFIX: &'static str = "rbf";
    const INPUT: InputKind = InputKind::Flat;

    /// # Shapes
    /// `[in] → [centres]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let out = self.plan(in_shape)?.out_shape;
        Ok((Box::new(Rbf::<E>::new(in_shape[0], self.centres, rng)), out))
    }

    /// Centres `[centres, in]` and one width per centre.
    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let width = flat_width(self.inputs, in_shape)?;
        if self.centres == 0 {
            return Err(LayerError::Invalid("centres must be at least 1".into()));
        }
        let params = add_counts(count(&[self.centres, width])?, self.centres as u64)?;
        Ok(LayerPlan::new(vec![self.centres], params))
    }
}

impl<E: Element> Module<E> for Rbf<E> {
    /// `‖x − c‖² = ‖x‖² − 2x·c + ‖c‖²` (one GEMM), then `exp(−d² / 2σ²)`.
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let xc = x.linear(&self.centres, None); // [n, k]
        let x2 = x.mul(x).sum_axis(-1, true); // [n, 1]
        let c2 = self.centres.mul(&self.centres).sum_axis(-1, false); // [k]
        let d2 = x2.add(&c2).sub(&xc.mul_scalar(E::from_f64(2.0)));
        let two_var = self.widths.mul(&self.widths).mul_scalar(E::from_f64(2.0)); // [k]
        d2.div(&two_var).neg().exp()
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        vec![
            ("centres".into(), self.centres.clone()),
            ("widths".into(), self.widths.clone()),
        ]
    }
    fn kind(&self) -> String {
        let s = self.centres.shape();
        format!("Rbf({} → {})", s[1], s[0])
    }
}
