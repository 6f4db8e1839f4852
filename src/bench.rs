//! `backprop bench`: the four anchor workloads of docs/PERFORMANCE.md on our engine, one
//! `RESULT` line each, in the format the peers' scripts in benches/peers/ print too.
//!
//! The workloads are a contract; keep them exactly as they are:
//!
//! - `mlp`: MLP 784-256-128-10 ReLU, softmax cross-entropy, SGD momentum 0.9, lr 0.05,
//!   batch 64, MNIST scaled to [0,1], seeded shuffling. The 2nd epoch's wall time; test
//!   accuracy after 5 epochs.
//! - `cnn`: conv 1→6 5×5 pad 2, ReLU, max pool 2; conv 6→16 5×5, ReLU, max pool 2; 400 →
//!   120 ReLU → 84 ReLU → 10. Same training. The 2nd epoch's time; accuracy after 3 epochs.
//! - `tiny`: two spirals, 1000 points, noise 0.1; MLP 2-16-16-2 tanh; plain SGD lr 0.1,
//!   batch 10, 200 epochs. The total wall time.
//! - `infer`: the `mlp` network: median latency of a one-sample forward pass over 10,000
//!   calls, and the throughput of batch-1024 forward passes.
//! - `lstm` (W5): row-by-row MNIST (28 steps of 28 pixels), one LSTM layer 28 → 128 whose
//!   final hidden state feeds a linear layer 128 → 10 (the `lstm` preset). Same training as
//!   `mlp`. The 2nd epoch's time; test accuracy after 3 epochs. Not part of `all` (it takes
//!   minutes).
//! - `cnn-bn` (W6): the `cnn` preset as `backprop summary --model cnn` prints it (conv-BN-ReLU
//!   blocks of 16, 32 and 64 channels of 3×3 kernels, 2×2 max pooling after the first two,
//!   a 128-unit ReLU layer; 426,234 parameters), batch norm in training mode, no
//!   augmentation; same training as `mlp`. The 2nd epoch's time, test accuracy after 3
//!   epochs, peak resident memory.
//! - `infer-cnn` (W7): the `cnn` preset after one epoch of that training: median latency of a
//!   one-image forward pass over 2,000 calls and the throughput of batch-256 forward passes.
//!
//! `--export PATH` writes the network `infer` or `infer-cnn` measured as ONNX, so the peers
//! (PyTorch, ONNX Runtime) run the very same weights.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use backprop_data::{digit_names, load_idx_pair, synthetic, Dataset, Encoding};
use backprop_nn::Module;
use backprop_tensor::{Rng, Tensor};
use backprop_train::{
    evaluate, predict_outputs, EpochRecord, LossKind, ModelSpec, Observer, OptimizerKind,
    ScheduleKind, TrainConfig, Trainer,
};

use crate::args::BenchArgs;
use backprop_train::run::default_mnist_dir;

/// Times each epoch.
#[derive(Default)]
struct EpochTimes {
    started: Option<Instant>,
    seconds: Vec<f64>,
}

impl Observer for EpochTimes {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {
        self.started = Some(Instant::now());
    }
    fn epoch_end(&mut self, _record: &EpochRecord) {
        if let Some(t) = self.started.take() {
            self.seconds.push(t.elapsed().as_secs_f64());
        }
    }
}

fn mnist(dir: &std::path::Path) -> Result<(Dataset, Dataset)> {
    let enc = Encoding::Grey;
    let train = load_idx_pair(dir, "train")?.into_dataset("mnist", enc, digit_names(10))?;
    let test = load_idx_pair(dir, "t10k")?.into_dataset("mnist", enc, digit_names(10))?;
    Ok((train, test))
}

fn sgd(epochs: usize, batch: usize, lr: f64, momentum: f64, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: batch,
        optimizer: OptimizerKind::Sgd,
        lr,
        momentum,
        schedule: ScheduleKind::Constant,
        seed,
        loss: LossKind::CrossEntropy,
        augment_shift: 0,
        ..TrainConfig::default()
    }
}

/// Trains `spec` on MNIST; returns the 2nd epoch's seconds and the test accuracy.
fn train_mnist(
    spec: &ModelSpec,
    data: &(Dataset, Dataset),
    epochs: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    let built = spec
        .build_shaped::<f32>(784, data.0.image_shape, Some(10), seed)
        .map_err(|e| anyhow!("{e}"))?;
    let mut trainer =
        Trainer::new(&built.model, sgd(epochs, 64, 0.05, 0.9, seed)).map_err(|e| anyhow!(e))?;
    let mut times = EpochTimes::default();
    trainer
        .fit(&data.0, None, &mut times, |_| Ok(()))
        .map_err(|e| anyhow!(e))?;
    let acc = evaluate(&built.model, &data.1, LossKind::CrossEntropy).accuracy;
    Ok((times.seconds[1.min(times.seconds.len() - 1)], acc))
}

fn peak_rss_mb() -> f64 {
    // VmHWM: the resident set's high-water mark
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Every workload `backprop bench` knows (`all` runs the first four).
pub const WORKLOADS: &[&str] = &["mlp", "cnn", "tiny", "infer", "lstm", "cnn-bn", "infer-cnn"];

pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    let workloads: Vec<&str> = match a.workload.as_str() {
        "all" => vec!["mlp", "cnn", "tiny", "infer"],
        w if WORKLOADS.contains(&w) => vec![w],
        other => bail!("workload {other:?}: choose {} or all", WORKLOADS.join(", ")),
    };
    if a.export.is_some() && !workloads.iter().all(|w| w.starts_with("infer")) {
        bail!("--export writes the network of `infer` or `infer-cnn`: name one of them");
    }
    if a.threads == 0 {
        bail!("--threads must be at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .stack_size(crate::commands::POOL_STACK)
        .build_global()
        .map_err(|e| anyhow!("--threads {}: {e}", a.threads))?;
    let dir = a.data_dir.clone().unwrap_or_else(default_mnist_dir);
    let needs_mnist = workloads.iter().any(|w| *w != "tiny");
    let data = if needs_mnist {
        Some(mnist(&dir).map_err(|e| anyhow!("--data-dir {}: {e}", dir.display()))?)
    } else {
        None
    };
    let (t, seed) = (a.threads, a.seed);
    for w in workloads {
        let mnist = || {
            data.as_ref()
                .expect("MNIST is loaded for every workload but tiny")
        };
        match w {
            "mlp" => {
                let spec =
                    ModelSpec::mlp(&[256, 128], "relu", 0.0, 10).map_err(|e| anyhow!("{e}"))?;
                let (epoch_s, acc) = train_mnist(&spec, mnist(), 5, seed)?;
                println!("RESULT impl=backprop workload=mlp threads={t} epoch_s={epoch_s:.4} test_acc={acc:.4}");
            }
            "cnn" | "cnn-bn" => {
                let spec = if w == "cnn" {
                    ModelSpec::lenet5(10)
                } else {
                    ModelSpec::cnn(10)
                };
                let (epoch_s, acc) = train_mnist(&spec, mnist(), 3, seed)?;
                println!(
                    "RESULT impl=backprop workload={w} threads={t} epoch_s={epoch_s:.4} test_acc={acc:.4} peak_rss_mb={:.0}",
                    peak_rss_mb()
                );
            }
            "lstm" => {
                let spec = ModelSpec::recurrent("lstm", 10);
                let (epoch_s, acc) = train_mnist(&spec, mnist(), 3, seed)?;
                println!("RESULT impl=backprop workload=lstm threads={t} epoch_s={epoch_s:.4} test_acc={acc:.4}");
            }
            "tiny" => tiny(t, seed)?,
            "infer-cnn" => infer_cnn(mnist(), t, seed, a.export.as_deref())?,
            _ => infer(&mnist().1, t, seed, a.export.as_deref())?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// W3: a 2-16-16-2 tanh network on the spiral, 200 epochs of batch 10.
fn tiny(threads: usize, seed: u64) -> Result<()> {
    let set = synthetic("spiral", 1000, 0.1, seed)?;
    let spec = ModelSpec::mlp(&[16, 16], "tanh", 0.0, 2).map_err(|e| anyhow!("{e}"))?;
    let built = spec
        .build::<f32>(2, Some(2), seed)
        .map_err(|e| anyhow!("{e}"))?;
    let mut trainer =
        Trainer::new(&built.model, sgd(200, 10, 0.1, 0.0, seed)).map_err(|e| anyhow!(e))?;
    let started = Instant::now();
    trainer
        .fit(&set, None, &mut backprop_train::Quiet, |_| Ok(()))
        .map_err(|e| anyhow!(e))?;
    let total = started.elapsed().as_secs_f64();
    let acc = evaluate(&built.model, &set, LossKind::CrossEntropy).accuracy;
    println!("RESULT impl=backprop workload=tiny threads={threads} total_s={total:.4} train_acc={acc:.4}");
    Ok(())
}

/// W4: the MLP's one-sample latency and batch-1024 throughput on MNIST test images.
fn infer(test: &Dataset, threads: usize, seed: u64, export: Option<&Path>) -> Result<()> {
    let spec = ModelSpec::mlp(&[256, 128], "relu", 0.0, 10).map_err(|e| anyhow!("{e}"))?;
    let model = spec
        .build::<f32>(784, Some(10), seed)
        .map_err(|e| anyhow!("{e}"))?
        .model;
    if let Some(path) = export {
        export_onnx(&model, path)?;
    }
    let (latency, per_s) = inference_speed(&model, test, seed, (10_000, 1024, 50));
    println!(
        "RESULT impl=backprop workload=infer threads={threads} latency_us={:.2} samples_per_s={per_s:.0}",
        latency * 1e6,
    );
    Ok(())
}

/// W7: the `cnn` preset after one epoch of W6's training: one-image latency and batch-256
/// throughput on MNIST test images.
fn infer_cnn(
    data: &(Dataset, Dataset),
    threads: usize,
    seed: u64,
    export: Option<&Path>,
) -> Result<()> {
    let model = ModelSpec::cnn(10)
        .build_shaped::<f32>(784, data.0.image_shape, Some(10), seed)
        .map_err(|e| anyhow!("{e}"))?
        .model;
    let mut trainer = Trainer::new(&model, sgd(1, 64, 0.05, 0.9, seed)).map_err(|e| anyhow!(e))?;
    trainer
        .fit(&data.0, None, &mut backprop_train::Quiet, |_| Ok(()))
        .map_err(|e| anyhow!(e))?;
    drop(trainer);
    if let Some(path) = export {
        export_onnx(&model, path)?;
    }
    let acc = evaluate(&model, &data.1, LossKind::CrossEntropy).accuracy;
    let (latency, per_s) = inference_speed(&model, &data.1, seed, (2_000, 256, 30));
    println!(
        "RESULT impl=backprop workload=infer-cnn threads={threads} latency_us={:.2} samples_per_s={per_s:.0} test_acc={acc:.4}",
        latency * 1e6,
    );
    Ok(())
}

/// Writes `model` (taking 784 inputs) as ONNX to `path`, for the peers to run.
fn export_onnx(model: &dyn Module<f32>, path: &Path) -> Result<()> {
    let proto = backprop_onnx::export(model, &[784], &backprop_onnx::ExportOptions::default())
        .map_err(|e| anyhow!("--export: {e}"))?;
    std::fs::write(path, backprop_onnx::to_bytes(&proto))
        .with_context(|| format!("--export {}: cannot write the model", path.display()))
}

/// The median latency (seconds) of a one-sample forward pass over `calls` calls, and the
/// samples per second of `batch`-sample forward passes (median of `reps`), on test samples
/// drawn with `seed`; evaluation mode, no graph recorded.
fn inference_speed(
    model: &dyn Module<f32>,
    test: &Dataset,
    seed: u64,
    (calls, batch, reps): (usize, usize, usize),
) -> (f64, f64) {
    let one = test.x.narrow(0, 0, 1);
    let mut rng = Rng::seed(seed);
    let idx: Vec<usize> = (0..batch).map(|_| rng.below(test.len())).collect();
    let many = test.x.index_select(0, &idx);
    let forward = |x: &Tensor<f32>| -> f32 { predict_outputs(model, x).data()[0] };
    let timed = |x: &Tensor<f32>, warm: usize, n: usize, sink: &mut f32| -> f64 {
        for _ in 0..warm {
            *sink += forward(x);
        }
        let mut t = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            *sink += forward(x);
            t.push(t0.elapsed().as_secs_f64());
        }
        median(t)
    };
    let mut sink = 0.0f32;
    let latency = timed(&one, calls / 20, calls, &mut sink);
    let per_batch = timed(&many, 5, reps, &mut sink);
    std::hint::black_box(sink);
    (latency, batch as f64 / per_batch)
}
