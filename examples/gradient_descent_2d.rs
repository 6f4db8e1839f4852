//! Gradient-descent paths from several starting points over the contours of three 2-D
//! functions: a bowl, Rosenbrock's valley, and a surface with several minima, where
//! different starting points reach different minima.
//!
//! `cargo run --release --example gradient_descent_2d` → bowl.png, rosenbrock.png, minima.png

use std::path::Path;

use backprop::train::plot::{contour_paths, write_png};
use backprop::{Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

/// f(x, y) as a Var expression, so the gradient comes from the engine.
fn eval(name: &str, p: &Var<f64>) -> Var<f64> {
    let x = p.narrow(0, 0, 1);
    let y = p.narrow(0, 1, 1);
    match name {
        // a stretched bowl: x² + 4y²
        "bowl" => x.mul(&x).add(&y.mul(&y).mul_scalar(4.0)).sum(),
        // Rosenbrock: (1 − x)² + 100(y − x²)²
        "rosenbrock" => {
            let a = x.neg().add_scalar(1.0);
            let b = y.sub(&x.mul(&x));
            a.mul(&a).add(&b.mul(&b).mul_scalar(100.0)).sum()
        }
        // several minima: 0.1(x² + y²) − tanh²(2x) − tanh²(2y) has a peak at the origin and
        // four minima near (±0.7, ±0.7)... plus the wide bowl around them
        _ => x
            .mul(&x)
            .add(&y.mul(&y))
            .mul_scalar(0.1)
            .sub(&x.mul_scalar(2.0).tanh().mul(&x.mul_scalar(2.0).tanh()))
            .sub(&y.mul_scalar(2.0).tanh().mul(&y.mul_scalar(2.0).tanh()))
            .sum(),
    }
}

fn value(name: &str, x: f64, y: f64) -> f64 {
    eval(name, &Var::constant(Tensor::from_vec(vec![x, y], &[2]))).item()
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let steps = if quick { 100 } else { 2000 };
    let size = if quick { 80 } else { 400 };
    let cases: [(&str, f64, (f64, f64, f64, f64), Vec<(f64, f64)>); 3] = [
        (
            "bowl",
            0.1,
            (-3.0, 3.0, -3.0, 3.0),
            vec![(-2.5, 2.5), (2.8, 1.0), (-1.0, -2.8)],
        ),
        (
            "rosenbrock",
            0.001,
            (-2.0, 2.0, -1.0, 3.0),
            vec![(-1.5, 2.5), (0.0, -0.5), (1.8, 2.9)],
        ),
        (
            "minima",
            0.05,
            (-4.0, 4.0, -4.0, 4.0),
            vec![(-3.5, 3.0), (0.3, 0.4), (3.2, -2.5), (-2.0, -3.5)],
        ),
    ];
    let mut figures = Vec::new();
    for (name, eta, bounds, starts) in cases {
        let mut paths = Vec::new();
        let mut ends = Vec::new();
        for (sx, sy) in starts {
            let mut p = vec![sx, sy];
            let mut path = vec![(sx, sy)];
            for _ in 0..steps {
                let v = Var::parameter(Tensor::from_vec(p.clone(), &[2]));
                let g = eval(name, &v).backward();
                let g = g.get(&v).unwrap().to_vec();
                p = vec![p[0] - eta * g[0], p[1] - eta * g[1]];
                path.push((p[0], p[1]));
            }
            println!(
                "{name}: from ({sx}, {sy}) to ({:.3}, {:.3}), f = {:.4}",
                p[0],
                p[1],
                value(name, p[0], p[1])
            );
            ends.push((p[0], p[1]));
            paths.push(path);
        }
        let img = contour_paths(|x, y| value(name, x, y), bounds, &paths, size);
        write_png(&out.join(format!("{name}.png")), &img, size, size)?;
        if name == "minima" {
            // how many different minima the starts reached
            let mut distinct: Vec<(f64, f64)> = Vec::new();
            for e in &ends {
                if distinct
                    .iter()
                    .all(|d| (d.0 - e.0).abs() + (d.1 - e.1).abs() > 0.5)
                {
                    distinct.push(*e);
                }
            }
            println!(
                "different starting points reached {} different minima",
                distinct.len()
            );
            figures.push(("distinct_minima", distinct.len() as f64));
        }
    }
    Ok(figures)
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("gradient_descent_2d");
    run(quick, &out).map(|_| ())
}
