//! A Hopfield network remembers digits: ten binarised MNIST digits (one per class) stored by
//! the pseudo-inverse rule (the Hebbian rule confuses digits, which are strongly
//! correlated), then recalled from cues with 30% of the pixels flipped or the lower half
//! hidden. The pictures show the state every N/8 asynchronous unit updates, each captioned
//! with its energy, which only falls.
//!
//! `cargo run --release --example hopfield_mnist` → recall.png

use std::path::Path;

use backprop::classic::hopfield::{overlap, Hopfield, Storage};
use backprop::data::{digit_names, load_idx_pair, Encoding, Targets};
use backprop::train::plot::{captioned_tile_grid, write_png};
use backprop::Rng;

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let test =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let Targets::Classes { labels, .. } = &test.targets else {
        unreachable!("MNIST has classes")
    };
    let n = 784;
    // the first test digit of each class, binarised at grey level 0.5
    let mut patterns = Vec::new();
    for c in 0..10 {
        let i = labels
            .iter()
            .position(|&l| l == c)
            .expect("every class occurs");
        patterns.extend(test.x.data()[i * n..(i + 1) * n].iter().map(|&v| {
            if v > 0.5 {
                1i8
            } else {
                -1
            }
        }));
    }
    let net = Hopfield::store(&patterns, n, Storage::PseudoInverse)?;
    let mut rng = Rng::seed(3);
    let shown: &[usize] = if quick { &[3] } else { &[0, 3, 5, 8] };
    let snapshots = 9;
    let mut tiles = Vec::new();
    let mut captions = Vec::new();
    let mut all_monotone = true;
    let mut recalled = 0;
    for (k, &c) in shown.iter().enumerate() {
        let xi = &patterns[c * n..(c + 1) * n];
        let mut s = xi.to_vec();
        if k % 2 == 0 {
            s.iter_mut().for_each(|v| {
                if rng.uniform() < 0.3 {
                    *v = -*v
                }
            });
        } else {
            s[n / 2..].iter_mut().for_each(|v| *v = -1); // lower half blank
        }
        let mut order: Vec<usize> = (0..n).collect();
        let mut last = net.energy(&s);
        for step in 0..snapshots {
            tiles.push(s.iter().map(|&v| f32::from(v)).collect::<Vec<f32>>());
            captions.push(format!("E {:.0}", net.energy(&s)));
            if step == snapshots - 1 {
                break;
            }
            // the first row shows a whole sweep in 8 parts, then sweep by sweep
            if step % 8 == 0 {
                rng.shuffle(&mut order);
            }
            for &i in &order[(step % 8) * n / 8..(step % 8 + 1) * n / 8] {
                net.update_unit(&mut s, i);
            }
            let e = net.energy(&s);
            all_monotone &= e <= last + 1e-6 * last.abs();
            last = e;
        }
        // finish to rest
        net.run_async(&mut s, 20, c as u64);
        recalled += usize::from(overlap(&s, xi) > 0.99);
        println!(
            "digit {c}: cue {} → final overlap with the stored digit {:.3}, energy {:.1}",
            if k % 2 == 0 {
                "30% flipped"
            } else {
                "lower half hidden"
            },
            overlap(&s, xi),
            net.energy(&s)
        );
    }
    let (rgb, w, h) = captioned_tile_grid(
        "Hopfield recall of stored MNIST digits: every N/8 asynchronous updates, energy falling",
        &tiles,
        &captions,
        28,
        28,
        3,
        snapshots,
    )?;
    write_png(&out.join("recall.png"), &rgb, w, h)?;
    Ok(vec![
        ("recalled_fraction", recalled as f64 / shown.len() as f64),
        ("energy_monotone", f64::from(u8::from(all_monotone))),
    ])
}

#[path = "common/args.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("hopfield_mnist");
    let f = run(quick, &out)?;
    println!("{f:?}; wrote {}", out.join("recall.png").display());
    Ok(())
}
