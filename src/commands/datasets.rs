//! `backprop datasets`: what can be trained on.

use std::process::ExitCode;

use anyhow::Result;
use backprop_train::run::default_mnist_dir;

pub fn datasets() -> Result<ExitCode> {
    let dir = default_mnist_dir();
    let count = |prefix: &str| {
        backprop_data::read_idx(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")))
            .map(|a| a.dims[0])
    };
    match (count("train"), count("t10k")) {
        (Ok(tr), Ok(te)) => println!("mnist        shipped   {tr} train / {te} test images, 28×28 greyscale, 10 classes   ({})", dir.display()),
        _ => println!("mnist        missing   expected at {}", dir.display()),
    }
    println!("idx          --data-dir DIR with train-/t10k-{{images-idx3,labels-idx1}}-ubyte[.gz] (Fashion-MNIST, KMNIST, ...)");
    for (n, d) in [
        ("circle", "2-D, 2 classes: a disk inside a ring"),
        ("xor", "2-D, 2 classes: same sign or not"),
        ("gauss", "2-D, 2 classes: two Gaussian blobs"),
        ("spiral", "2-D, 2 classes: two interleaved spirals"),
        ("plane", "2-D regression: y = (x1 + x2)/2"),
        ("multigauss", "2-D regression: Gaussian bumps"),
    ] {
        println!("{n:<12} synthetic {d}   (--samples, --noise, --seed)");
    }
    println!("FILE.csv     numeric features and a label column (--label-column NAME|INDEX, --task classification|regression)");
    Ok(ExitCode::SUCCESS)
}
