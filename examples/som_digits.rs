//! Kohonen's self-organizing map on MNIST: a 15 × 15 map trained online from PCA initial
//! weights. The U-matrix shows the borders between digit regions, the hit map which digit
//! each unit wins most, and the units' weights are prototypes of handwritten digits.
//! (`backprop som` does the same for any dataset, with every option.)
//!
//! `cargo run --release --example som_digits` → u_matrix.png, hit_map.png, unit_weights.png

use std::path::Path;

use backprop::classic::plot::{hit_map_png, u_matrix_png, unit_images_png};
use backprop::classic::som::{Init, Som, SomConfig, TrainMode};
use backprop::data::{digit_names, load_idx_pair, Encoding, Targets};

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let mut train =
        load_idx_pair(&dir, "train")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let (side, samples, iterations) = if quick {
        (6, 2000, 4000)
    } else {
        (15, 60000, 30000)
    };
    train = train.subset(&(0..samples).collect::<Vec<_>>());
    let Targets::Classes { labels, names } = &train.targets else {
        unreachable!("MNIST has classes")
    };
    let cfg = SomConfig {
        rows: side,
        cols: side,
        sigma: 3.0,
        learning_rate: 0.5,
        init: Init::Pca,
        ..SomConfig::default()
    };
    let x = train.x.data();
    let mut som = Som::new(&cfg, 784)?;
    som.init_weights(x)?;
    let t = std::time::Instant::now();
    som.train(x, iterations, TrainMode::Online, false)?;
    let secs = t.elapsed().as_secs_f64();
    let (qe, te) = (som.quantization_error(x), som.topographic_error(x));
    // how pure the units are: the fraction of samples whose unit's majority label is theirs
    let lm = som.labels_map(x, labels, 10);
    let purity = lm
        .iter()
        .map(|c| c.iter().max().copied().unwrap_or(0))
        .sum::<usize>() as f64
        / samples as f64;
    println!("{side}×{side} map, {iterations} online iterations in {secs:.2} s: quantization error {qe:.3}, topographic error {te:.3}, majority-label purity {:.1}%", 100.0 * purity);
    u_matrix_png(
        &out.join("u_matrix.png"),
        "U-matrix of a SOM on MNIST (bright: borders between digit regions)",
        &som,
    )?;
    hit_map_png(
        &out.join("hit_map.png"),
        "Majority digit per unit (paler: fewer hits)",
        &som,
        &lm,
        names,
    )?;
    unit_images_png(
        &out.join("unit_weights.png"),
        "The units' weights: a map of digit prototypes",
        &som,
        28,
        28,
    )?;
    Ok(vec![
        ("quantization_error", qe),
        ("topographic_error", te),
        ("purity", purity),
    ])
}

#[path = "common/args.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("som_digits");
    run(quick, &out)?;
    println!("wrote the pictures to {}", out.display());
    Ok(())
}
