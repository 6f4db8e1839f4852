//! The settings of a self-organizing map, each a typed value with one name list
//! (`ALL`, `name`, `parse`) that the CLI reads.

use crate::{positive, ClassicError};

macro_rules! named_enum {
    ($(#[$m:meta])* $ty:ident { $($(#[$vm:meta])* $v:ident => $n:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $ty { $($(#[$vm])* $v),+ }
        impl $ty {
            /// Every value, in the order the CLI lists them.
            pub const ALL: &'static [$ty] = &[$($ty::$v),+];
            /// The name the CLI and the reports use.
            pub fn name(self) -> &'static str {
                match self { $($ty::$v => $n),+ }
            }
            /// The value called `s` (`-` and `_` are the same), if any.
            pub fn parse(s: &str) -> Option<$ty> {
                let s = s.replace('-', "_");
                Self::ALL.iter().copied().find(|v| v.name() == s)
            }
            /// The names, comma-separated, for error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

named_enum!(
    /// How units sit on the map.
    Topology {
        /// A square lattice; the 8 surrounding units are adjacent.
        Rectangular => "rectangular",
        /// A hexagonal lattice: every other column shifted half a unit, columns
        /// `√3/2` apart, so each unit has 6 neighbours at distance 1.
        Hexagonal => "hexagonal",
    }
);

named_enum!(
    /// How strongly a unit at map distance `r` from the winner moves (σ: the radius).
    Neighborhood {
        /// `exp(−r² / 2σ²)`.
        Gaussian => "gaussian",
        /// `exp(−r²/2σ²)·(1 − r²/σ²)`: pulls the near units, pushes a ring further out.
        MexicanHat => "mexican_hat",
        /// 1 inside the square `|Δi| < σ, |Δj| < σ` (grid indices), else 0.
        Bubble => "bubble",
        /// `max(0, σ − |Δi|)·max(0, σ − |Δj|)` (grid indices).
        Triangle => "triangle",
    }
);

named_enum!(
    /// How the best-matching unit is chosen.
    Distance {
        /// `‖x − w‖₂`.
        Euclidean => "euclidean",
        /// `1 − x·w / (‖x‖‖w‖ + 10⁻⁸)`.
        Cosine => "cosine",
        /// `Σ |xᵢ − wᵢ|`.
        Manhattan => "manhattan",
        /// `max |xᵢ − wᵢ|`.
        Chebyshev => "chebyshev",
    }
);

named_enum!(
    /// How the learning rate or radius shrinks over `T` iterations (`t` counts from 0).
    Decay {
        /// `v / (1 + 2t/T)`: to a third of the start.
        Asymptotic => "asymptotic",
        /// `v·C/(C + t)` with `C = T/100`: towards zero.
        InverseToZero => "inverse_to_zero",
        /// `v·(1 − t/T)`.
        LinearToZero => "linear_to_zero",
        /// `v / (1 + t(v − 1)/T)`: towards 1 (for the radius).
        InverseToOne => "inverse_to_one",
        /// `v + t(1 − v)/T`: towards 1 (for the radius).
        LinearToOne => "linear_to_one",
    }
);

named_enum!(
    /// Where the weights start.
    Init {
        /// Uniform in [−1, 1]ᵈ, scaled to unit length.
        Random => "random",
        /// Random training samples.
        Sample => "sample",
        /// The plane of the data's first two principal components around its mean:
        /// `mean + a·pc₁ + b·pc₂`, `a, b` evenly from −1 to 1 across the map.
        Pca => "pca",
    }
);

named_enum!(
    /// How the weights are trained.
    TrainMode {
        /// One sample per iteration, `w ← w + η(t)·h(t)·(x − w)` (Kohonen 1982).
        Online => "online",
        /// All samples per iteration: each unit moves to the neighbourhood-weighted mean of
        /// the data, blended by η(t) (Kohonen 2013, "Essentials of the SOM").
        Batch => "batch",
    }
);

impl Decay {
    /// The value after `t` of `max` iterations, starting from `v`.
    pub fn at(self, v: f64, t: usize, max: usize) -> f64 {
        let (t, max) = (t as f64, max as f64);
        match self {
            Decay::Asymptotic => v / (1.0 + t / (max / 2.0)),
            Decay::InverseToZero => {
                let c = max / 100.0;
                v * c / (c + t)
            }
            Decay::LinearToZero => v * (1.0 - t / max),
            Decay::InverseToOne => v / (1.0 + t * (v - 1.0) / max),
            Decay::LinearToOne => v + t * (1.0 - v) / max,
        }
    }
}

/// Everything that defines a map before it sees data.
#[derive(Debug, Clone, PartialEq)]
pub struct SomConfig {
    /// Units along the first grid axis (MiniSom's `x`).
    pub rows: usize,
    /// Units along the second grid axis (MiniSom's `y`).
    pub cols: usize,
    /// The starting neighbourhood radius σ.
    pub sigma: f64,
    /// The starting learning rate η.
    pub learning_rate: f64,
    /// The lattice.
    pub topology: Topology,
    /// The neighbourhood function.
    pub neighborhood: Neighborhood,
    /// How the best-matching unit is found during training.
    pub distance: Distance,
    /// How η decays.
    pub lr_decay: Decay,
    /// How σ decays.
    pub sigma_decay: Decay,
    /// Where the weights start.
    pub init: Init,
    /// Seeds the initial weights and the random sample order.
    pub seed: u64,
}

impl Default for SomConfig {
    /// MiniSom's defaults on a 10 × 10 map: σ = 1, η = 0.5, Gaussian, Euclidean,
    /// asymptotic decay of both.
    fn default() -> Self {
        SomConfig {
            rows: 10,
            cols: 10,
            sigma: 1.0,
            learning_rate: 0.5,
            topology: Topology::Rectangular,
            neighborhood: Neighborhood::Gaussian,
            distance: Distance::Euclidean,
            lr_decay: Decay::Asymptotic,
            sigma_decay: Decay::Asymptotic,
            init: Init::Random,
            seed: 0,
        }
    }
}

/// The largest map accepted (units), so that a typo cannot ask for terabytes.
pub const MAX_UNITS: usize = 1 << 20;

impl SomConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first bad setting, named as the CLI spells it (`grid`, `sigma`, `lr`).
    pub fn validate(&self) -> Result<(), ClassicError> {
        if self.rows == 0 || self.cols == 0 {
            return Err(ClassicError::new(
                "grid",
                format!("{}x{}: both sides must be at least 1", self.rows, self.cols),
            ));
        }
        if self.rows.saturating_mul(self.cols) > MAX_UNITS {
            return Err(ClassicError::new(
                "grid",
                format!("{}x{}: more than {MAX_UNITS} units", self.rows, self.cols),
            ));
        }
        positive("sigma", self.sigma)?;
        positive("lr", self.learning_rate)?;
        Ok(())
    }

    /// The number of units.
    pub fn units(&self) -> usize {
        self.rows * self.cols
    }
}
