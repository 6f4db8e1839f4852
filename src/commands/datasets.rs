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
    for (n, d) in [
        ("adding", "the adding problem: sum the two marked values of --steps (100) steps of (value, marker)   (--samples, --seed)"),
        ("copy", "the copy task: recall 5 symbols of 8 after --steps (10) blanks   (--samples, --seed)"),
        ("series:FILE", "a time series (one number per line, or a CSV's last column): windows of --steps (16) predict the next value; the last fifth is the test set"),
        ("text:FILE", "characters of a UTF-8 file (e.g. data/text/coriolanus.txt): windows of --steps (24) predict the next character; the last tenth is the test set"),
    ] {
        println!("{n:<12} sequence  {d}");
    }
    Ok(ExitCode::SUCCESS)
}
