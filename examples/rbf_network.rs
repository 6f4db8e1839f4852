//! Radial basis function networks trained in two stages (k-means++ centres, each width the
//! RMS radius of its cluster, ridge output weights in closed form): decision boundaries on
//! the 2-D sets with the centres marked, and MNIST with 1,000 centres.
//!
//! `cargo run --release --example rbf_network` → rbf_<set>.png

use std::path::Path;

use backprop::classic::rbf::{RbfConfig, RbfNet};
use backprop::data::{digit_names, load_idx_pair, synthetic, Encoding, Targets};
use backprop::train::plot::decision_boundary_png;

type Figures = Vec<(&'static str, f64)>;

fn labels(t: &Targets) -> Vec<usize> {
    match t {
        Targets::Classes { labels, .. } => labels.clone(),
        Targets::Values(_) => unreachable!("classification sets"),
    }
}

fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let mut figures = Figures::new();
    for (name, centres) in [("circle", 12), ("xor", 12), ("gauss", 6), ("spiral", 40)] {
        let train = synthetic(name, 500, 0.1, 1)?;
        let test = synthetic(name, 500, 0.1, 2)?;
        let (ytr, yte) = (labels(&train.targets), labels(&test.targets));
        let cfg = RbfConfig {
            centres,
            ridge: 1e-4,
            ..RbfConfig::default()
        };
        let net = RbfNet::fit_classifier(train.x.data(), 2, &ytr, 2, &cfg)?;
        let acc = accuracy(&net.classify(test.x.data()), &yte);
        println!(
            "{name}: {centres} centres, test accuracy {:.1}%",
            100.0 * acc
        );
        // the centres drawn as a third "class" of points over the boundary
        let mut pts: Vec<[f32; 2]> = train.x.data().chunks(2).map(|p| [p[0], p[1]]).collect();
        let mut lab = ytr.clone();
        pts.extend(net.centres.chunks(2).map(|c| [c[0], c[1]]));
        lab.extend(std::iter::repeat_n(2, centres));
        decision_boundary_png(
            &out.join(format!("rbf_{name}.png")),
            &format!(
                "RBF network, {centres} Gaussian centres (green), {name}: test {:.1}%",
                100.0 * acc
            ),
            (&pts, &lab),
            None,
            3,
            |g| {
                net.predict(g)
                    .chunks(2)
                    .map(|r| {
                        let e = [r[0].exp(), r[1].exp()];
                        vec![e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1]), 0.0]
                    })
                    .collect()
            },
        )?;
        figures.push((
            match name {
                "circle" => "circle_acc",
                "xor" => "xor_acc",
                "gauss" => "gauss_acc",
                _ => "spiral_acc",
            },
            acc,
        ));
    }
    // MNIST: 1,000 centres from k-means on 20,000 images, all 60,000 for the output weights
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let mut train =
        load_idx_pair(&dir, "train")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let test =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let (centres, samples) = if quick { (50, 2000) } else { (1000, 60000) };
    train = train.subset(&(0..samples).collect::<Vec<_>>());
    let cfg = RbfConfig {
        centres,
        kmeans_iterations: if quick { 3 } else { 10 },
        kmeans_samples: 20000,
        ridge: 1e-4,
        width_scale: 1.0,
        seed: 0,
    };
    let t = std::time::Instant::now();
    let net = RbfNet::fit_classifier(train.x.data(), 784, &labels(&train.targets), 10, &cfg)?;
    let acc = accuracy(&net.classify(test.x.data()), &labels(&test.targets));
    println!(
        "MNIST: {centres} centres, {samples} training images, test accuracy {:.2}% ({:.1} s)",
        100.0 * acc,
        t.elapsed().as_secs_f64()
    );
    figures.push(("mnist_acc", acc));
    Ok(figures)
}

#[path = "common/args.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("rbf_network");
    run(quick, &out)?;
    println!("wrote the pictures to {}", out.display());
    Ok(())
}
