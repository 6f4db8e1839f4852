//! The subcommands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use backprop_autograd::{gradcheck_vars, GradcheckOptions, Var};
use backprop_data::{Dataset, Targets, SYNTHETIC};
use backprop_nn::{Mode, Module, Sequential, Summary};
use backprop_tensor::{Rng, Tensor};
use backprop_train::plot::{decision_boundary, line_chart_svg, write_png, write_svg};
use backprop_train::{
    batch_loss, evaluate, predict_proba, Checkpoint, LossKind, ModelSpec, OptimizerKind,
    SavedModel, ScheduleKind, Stop, TrainConfig, Trainer,
};
use serde_json::{json, Value};

use crate::data::{default_mnist_dir, encoding_from, load, Loaded};
use crate::images::read_image;
use crate::progress::Bars;
use crate::{DataArgs, EvalArgs, GradcheckArgs, ModelArgs, PredictArgs, SummaryArgs, TrainArgs};

fn set_threads(n: Option<usize>) -> Result<()> {
    if let Some(n) = n {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow!("--threads {n}: {e}"))?;
    }
    Ok(())
}

fn parse_loss(s: &str) -> Result<LossKind> {
    Ok(match s {
        "cross-entropy" | "ce" | "cross_entropy" => LossKind::CrossEntropy,
        "squared" | "mse" | "quadratic" => LossKind::Squared,
        "absolute" | "l1" => LossKind::Absolute,
        "hinge" => LossKind::Hinge,
        other => bail!("--loss {other}: choose cross-entropy, squared, absolute or hinge"),
    })
}

fn parse_optimizer(s: &str) -> Result<OptimizerKind> {
    Ok(match s {
        "sgd" | "momentum" => OptimizerKind::Sgd,
        "nesterov" => OptimizerKind::Nesterov,
        "adagrad" => OptimizerKind::Adagrad,
        "rmsprop" => OptimizerKind::Rmsprop,
        "adam" => OptimizerKind::Adam,
        "adamw" => OptimizerKind::Adamw,
        other => {
            bail!("--optimizer {other}: choose sgd, nesterov, adagrad, rmsprop, adam or adamw")
        }
    })
}

fn parse_schedule(s: &str) -> Result<ScheduleKind> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |i: usize| -> Result<f64> {
        parts
            .get(i)
            .ok_or_else(|| anyhow!("--lr-schedule {s}: missing a number"))?
            .parse::<f64>()
            .map_err(|_| anyhow!("--lr-schedule {s}: {:?} is not a number", parts[i]))
    };
    Ok(match parts[0] {
        "constant" => ScheduleKind::Constant,
        "step" => ScheduleKind::Step { epochs: num(1)? as usize, gamma: num(2)? },
        "exp" | "exponential" => ScheduleKind::Exponential { gamma: num(1)? },
        "invsqrt" | "inv-sqrt" => ScheduleKind::InvSqrt,
        "cosine" => ScheduleKind::Cosine,
        "plateau" => ScheduleKind::Plateau { patience: num(1)? as usize, factor: num(2)? },
        _ => bail!("--lr-schedule {s}: choose constant, step:EPOCHS:GAMMA, exp:GAMMA, invsqrt, cosine or plateau:PATIENCE:FACTOR"),
    })
}

/// The spec the model flags describe.
fn model_spec(m: &ModelArgs, outputs: usize) -> Result<(ModelSpec, String)> {
    let quick = m.hidden.is_some() || m.activation.is_some() || m.dropout > 0.0;
    if !(0.0..1.0).contains(&m.dropout) {
        bail!("--dropout {}: must be in [0, 1)", m.dropout);
    }
    if m.model == "mlp" {
        let hidden = m.hidden.clone().unwrap_or_else(|| vec![256, 128]);
        if hidden.contains(&0) {
            bail!("--hidden: every width must be at least 1");
        }
        let spec = ModelSpec::mlp(
            &hidden,
            m.activation.as_deref().unwrap_or("relu"),
            m.dropout,
            outputs,
        )
        .map_err(|e| anyhow!("--activation: {e}"))?;
        return Ok((spec, "mlp".into()));
    }
    if quick {
        bail!("--hidden, --activation and --dropout shape the mlp preset; they cannot be combined with --model {}", m.model);
    }
    let path = Path::new(&m.model);
    if path.extension().is_some_and(|e| e == "json" || e == "toml") || path.exists() {
        let spec = ModelSpec::from_file(path).map_err(|e| anyhow!("--model {e}"))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        return Ok((spec, stem));
    }
    let spec =
        ModelSpec::preset(&m.model, outputs).map_err(|e| anyhow!("--model {}: {e}", m.model))?;
    Ok((spec, m.model.clone()))
}

/// Makes sure `dir` exists and can be written, before any long work.
fn ensure_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "--out {}: cannot create the output directory",
            dir.display()
        )
    })?;
    let probe = dir.join(".backprop-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: the directory is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn metadata(spec: &ModelSpec, loaded: &Loaded) -> BTreeMap<String, String> {
    backprop_train::saved::model_metadata(
        spec,
        &loaded.name,
        &loaded.train,
        &loaded.encoding,
        loaded.data_dir.as_deref(),
    )
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn num_or_null(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

pub fn train(a: TrainArgs) -> Result<ExitCode> {
    let started = Instant::now();
    set_threads(a.threads)?;
    // everything that can be checked without data, first
    let loss = parse_loss(&a.loss)?;
    let optimizer = parse_optimizer(&a.optimizer)?;
    let schedule = parse_schedule(&a.lr_schedule)?;
    let lr = a.lr.unwrap_or(match optimizer {
        OptimizerKind::Sgd | OptimizerKind::Nesterov => 0.05,
        OptimizerKind::Adam | OptimizerKind::Adamw => 0.001,
        _ => 0.01,
    });
    let dataset_name = a.data.dataset.clone().unwrap_or_else(|| {
        if a.data.data_dir.is_some() {
            "idx".into()
        } else {
            "mnist".into()
        }
    });
    let synthetic = SYNTHETIC.contains(&dataset_name.as_str());
    let config = TrainConfig {
        epochs: a.epochs.unwrap_or(if synthetic {
            200
        } else if a.model.model == "cnn" {
            15
        } else {
            10
        }),
        batch_size: a.batch_size,
        optimizer,
        lr,
        momentum: if matches!(optimizer, OptimizerKind::Sgd | OptimizerKind::Nesterov) {
            a.momentum
        } else {
            0.0
        },
        weight_decay: a.weight_decay,
        l1: a.l1,
        l2: a.l2,
        clip: a.clip,
        schedule,
        warmup: a.warmup,
        early_stopping: a.early_stopping,
        restore_best: true,
        seed: a.seed,
        loss,
        augment_shift: a
            .augment
            .unwrap_or(if matches!(a.model.model.as_str(), "lenet5" | "cnn") {
                2
            } else {
                0
            }),
    };
    config.validate().map_err(|e| {
        let flag = if e.contains("learning rate") {
            "--lr"
        } else if e.contains("batch size") {
            "--batch-size"
        } else if e.contains("epochs") {
            "--epochs"
        } else if e.contains("momentum") {
            "--momentum"
        } else if e.contains("clipping") {
            "--clip"
        } else {
            "a training flag"
        };
        anyhow!("{flag}: {e}")
    })?;
    let model_label = if a.model.model == "mlp" {
        "mlp".to_string()
    } else {
        Path::new(&a.model.model)
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    };
    let short_name = Path::new(&dataset_name)
        .file_stem()
        .map_or(dataset_name.clone(), |s| s.to_string_lossy().into_owned());
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{short_name}-{model_label}")));
    ensure_writable(&out)?;
    let model_path = out.join("model.safetensors");
    if a.resume && !model_path.is_file() {
        bail!(
            "--resume: there is no saved run at {}",
            model_path.display()
        );
    }

    let loaded = load(&a.data, a.seed, None, true)?;
    // regression data with the default loss: use the quadratic cost instead
    let config = if matches!(loaded.train.targets, Targets::Values(_))
        && matches!(loss, LossKind::CrossEntropy)
        && a.loss == "cross-entropy"
    {
        TrainConfig {
            loss: LossKind::Squared,
            ..config
        }
    } else {
        config
    };
    if matches!(loaded.train.targets, Targets::Values(_))
        && matches!(config.loss, LossKind::CrossEntropy | LossKind::Hinge)
    {
        bail!(
            "--loss {}: the dataset is a regression task; use squared or absolute",
            a.loss
        );
    }
    let inputs = loaded.train.features();
    let outputs = loaded.train.outputs();
    let (spec, _) = model_spec(&a.model, outputs)?;
    let built = spec
        .build_shaped::<f32>(inputs, loaded.train.image_shape, Some(outputs), a.seed)
        .map_err(|e| anyhow!("--model {}: {e}", a.model.model))?;
    let model = built.model;

    let val_count = a
        .validation
        .unwrap_or_else(|| (loaded.train.len() / 10).min(5000));
    let (train_set, val_set) = if val_count > 0 {
        let (t, v) = loaded
            .train
            .split(val_count, a.seed)
            .map_err(|e| anyhow!("--validation {val_count}: {}", e.message))?;
        (t, Some(v))
    } else {
        (loaded.train.clone(), None)
    };

    let mut trainer = Trainer::new(&model, config.clone()).map_err(|e| anyhow!(e))?;
    let meta = metadata(&spec, &loaded);
    if a.resume {
        let ck = Checkpoint::load(&model_path).map_err(|e| anyhow!("--resume: {e}"))?;
        if ck.metadata.get("backprop.spec") != meta.get("backprop.spec") {
            bail!("--resume: the model in {} was built from another spec; use the same --model/--hidden flags", model_path.display());
        }
        trainer
            .resume(&ck)
            .map_err(|e| anyhow!("--resume {}: {e}", model_path.display()))?;
        if !a.json {
            eprintln!(
                "resuming {} after epoch {}",
                model_path.display(),
                trainer.epochs_done
            );
        }
    }
    if !a.json {
        eprintln!(
            "training {} on {} ({} train, {} validation, {} test samples; {} inputs, {} outputs; {} parameters)",
            model.kind(),
            loaded.name,
            train_set.len(),
            val_set.as_ref().map_or(0, |v| v.len()),
            loaded.test.as_ref().map_or(0, |t| t.len()),
            inputs,
            outputs,
            model.num_params()
        );
    }
    let mut bars = Bars::new(false);
    let history_dir = out.clone();
    let stop = trainer
        .fit(&train_set, val_set.as_ref(), &mut bars, |t| {
            t.checkpoint(meta.clone()).save(&model_path)?;
            t.history.write(&history_dir)
        })
        .map_err(|e| anyhow!(e))?;
    let history = trainer.history.clone();
    drop(trainer);

    let mut plots = Vec::new();
    let epochs_x: Vec<f64> = history.epochs.iter().map(|r| r.train_loss).collect();
    if !epochs_x.is_empty() {
        let lp = out.join("loss.svg");
        write_svg(
            &lp,
            &line_chart_svg(
                "loss",
                "loss",
                &[
                    ("train", epochs_x),
                    (
                        "validation",
                        history.epochs.iter().map(|r| r.val_loss).collect(),
                    ),
                ],
            ),
        )
        .map_err(|e| anyhow!(e))?;
        plots.push(lp);
        if matches!(loaded.train.targets, Targets::Classes { .. }) {
            let ap = out.join("accuracy.svg");
            let series = [
                (
                    "train",
                    history.epochs.iter().map(|r| r.train_accuracy).collect(),
                ),
                (
                    "validation",
                    history.epochs.iter().map(|r| r.val_accuracy).collect(),
                ),
            ];
            write_svg(&ap, &line_chart_svg("accuracy", "accuracy", &series))
                .map_err(|e| anyhow!(e))?;
            plots.push(ap);
        }
    }
    if inputs == 2 {
        if let Targets::Classes { labels, .. } = &loaded.train.targets {
            let pts: Vec<[f32; 2]> = loaded
                .train
                .x
                .data()
                .chunks_exact(2)
                .map(|c| [c[0], c[1]])
                .collect();
            let size = 400;
            let img = decision_boundary(&pts, labels, size, |grid| {
                let p = predict_proba(
                    &model,
                    &Tensor::from_vec(grid.to_vec(), &[grid.len() / 2, 2]),
                );
                p.data().chunks_exact(outputs).map(|c| c.to_vec()).collect()
            });
            let bp = out.join("decision_boundary.png");
            write_png(&bp, &img, size, size).map_err(|e| anyhow!(e))?;
            plots.push(bp);
        }
    }

    let history_path = out.join("history.csv");
    if let Stop::Diverged {
        epoch,
        step,
        parameter,
        loss,
    } = &stop
    {
        let which = parameter.as_deref().map_or(
            "no parameter is non-finite yet: the loss overflowed in the forward pass".to_string(),
            |p| format!("first non-finite parameter: {p}"),
        );
        let kept = if *epoch > 1 {
            format!(
                "the checkpoint of epoch {} is kept at {}",
                epoch - 1,
                model_path.display()
            )
        } else {
            "no epoch completed, so no checkpoint was written".to_string()
        };
        if a.json {
            println!(
                "{}",
                json!({"diverged": true, "epoch": epoch, "step": step, "loss": num_or_null(*loss), "parameter": parameter, "model_path": model_path, "seconds": started.elapsed().as_secs_f64()})
            );
        }
        bail!("training diverged at epoch {epoch}, step {step} (loss = {loss}); {which}; {kept}. Try a smaller --lr or --clip.");
    }

    let train_eval = evaluate(&model, &train_set, config.loss);
    let test_eval = loaded
        .test
        .as_ref()
        .map(|t| evaluate(&model, t, config.loss));
    let seconds = started.elapsed().as_secs_f64();
    let (stopped, best_epoch) = match &stop {
        Stop::EarlyStopped { best_epoch } => ("early_stopped", Some(*best_epoch)),
        _ => ("completed", None),
    };
    if a.json {
        let mut o = json!({
            "dataset": loaded.name,
            "epochs": history.epochs.len(),
            "stopped": stopped,
            "best_epoch": best_epoch,
            "train_loss": num_or_null(train_eval.loss),
            "train_accuracy": num_or_null(train_eval.accuracy),
            "val_loss": num_or_null(history.epochs.last().map_or(f64::NAN, |r| r.val_loss)),
            "val_accuracy": num_or_null(history.epochs.last().map_or(f64::NAN, |r| r.val_accuracy)),
            "test_loss": test_eval.as_ref().map_or(Value::Null, |e| num_or_null(e.loss)),
            "test_accuracy": test_eval.as_ref().map_or(Value::Null, |e| num_or_null(e.accuracy)),
            "seconds": seconds,
            "model_path": model_path,
            "history_path": history_path,
            "plots": plots,
            "parameters": model.num_params(),
        });
        if let Some(c) = test_eval.as_ref().and_then(|e| e.confusion.as_ref()) {
            o["confusion_matrix"] = json!(c.counts);
            o["precision"] = json!(c.precision());
            o["recall"] = json!(c.recall());
        }
        println!("{o}");
    } else {
        if let Stop::EarlyStopped { best_epoch } = stop {
            println!(
                "early stopping after epoch {}: restored the best epoch, {best_epoch}",
                history.epochs.len()
            );
        }
        if let Some(e) = &test_eval {
            if let (Some(c), Targets::Classes { names, .. }) = (&e.confusion, &loaded.train.targets)
            {
                if names.len() <= 12 {
                    println!(
                        "test confusion matrix (rows: true class, columns: predicted):\n{}",
                        c.table(names)
                    );
                }
            }
        }
        if train_eval.accuracy.is_finite() {
            println!(
                "train accuracy {}  loss {:.4}",
                pct(train_eval.accuracy),
                train_eval.loss
            );
        } else {
            println!("train loss {:.5}", train_eval.loss);
        }
        if let Some(e) = &test_eval {
            if e.accuracy.is_finite() {
                println!("test accuracy  {}  loss {:.4}", pct(e.accuracy), e.loss);
            } else {
                println!("test loss {:.5}", e.loss);
            }
        }
        println!("{} epochs in {:.1}s", history.epochs.len(), seconds);
        println!("model:   {}", model_path.display());
        println!("history: {} (and history.json)", history_path.display());
        for p in &plots {
            println!("plot:    {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A model saved by `train`, rebuilt.
pub struct Saved {
    pub model: Sequential<f32>,
    pub meta: BTreeMap<String, String>,
    pub inputs: usize,
    pub classes: Vec<String>,
    pub encoding: Value,
}

/// Loads and rebuilds a model saved by `train` (a file or its run directory).
pub fn load_saved_model(path: &Path) -> Result<Saved> {
    let m = SavedModel::load(path).map_err(|e| anyhow!("--model-path {e}"))?;
    Ok(Saved {
        model: m.model,
        meta: m.meta,
        inputs: m.inputs,
        classes: m.classes,
        encoding: m.encoding,
    })
}

/// The data flags, filled from a saved model where the user gave none.
fn data_for(saved: &Saved, d: &DataArgs) -> DataArgs {
    let mut d = d.clone();
    if d.dataset.is_none() && d.data_dir.is_none() {
        match saved.meta.get("backprop.dataset").map(String::as_str) {
            Some("idx") => d.data_dir = saved.meta.get("backprop.data_dir").map(PathBuf::from),
            Some(name) => d.dataset = Some(name.to_string()),
            None => {}
        }
    }
    d
}

/// The test split of the data a saved model was trained on (or of the data the flags name),
/// encoded as in training.
pub fn saved_test_set(saved: &Saved, flags: &DataArgs) -> Result<(String, Dataset)> {
    let d = data_for(saved, flags);
    let enc = (saved.encoding.get("encoding").and_then(|e| e.as_str()) != Some("none"))
        .then_some(&saved.encoding);
    let loaded = load(&d, 0, enc, false)?;
    let test = loaded
        .test
        .ok_or_else(|| anyhow!("the dataset has no test split"))?;
    Ok((loaded.name, test))
}

pub fn eval(a: EvalArgs) -> Result<ExitCode> {
    set_threads(a.threads)?;
    let saved = load_saved_model(&a.model_path)?;
    let (name, test) = saved_test_set(&saved, &a.data)?;
    let test = &test;
    if test.features() != saved.inputs {
        bail!(
            "the model takes {} inputs but {} has {} features",
            saved.inputs,
            name,
            test.features()
        );
    }
    let kind = match &test.targets {
        Targets::Classes { .. } => LossKind::CrossEntropy,
        Targets::Values(_) => LossKind::Squared,
    };
    let kind = saved
        .meta
        .get("backprop.training")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| serde_json::from_value::<LossKind>(v["config"]["loss"].clone()).ok())
        .unwrap_or(kind);
    let e = evaluate(&saved.model, test, kind);
    if a.json {
        let mut o = json!({"dataset": name, "samples": test.len(), "test_loss": num_or_null(e.loss), "test_accuracy": num_or_null(e.accuracy)});
        if let Some(c) = &e.confusion {
            o["confusion_matrix"] = json!(c.counts);
            o["precision"] = json!(c.precision());
            o["recall"] = json!(c.recall());
        }
        println!("{o}");
    } else {
        if let (Some(c), Targets::Classes { names, .. }) = (&e.confusion, &test.targets) {
            if names.len() <= 12 {
                println!("{}", c.table(names));
            }
        }
        if e.accuracy.is_finite() {
            println!(
                "test accuracy {} on {} samples of {} (loss {:.4})",
                pct(e.accuracy),
                test.len(),
                name,
                e.loss
            );
        } else {
            println!(
                "test loss {:.5} on {} samples of {}",
                e.loss,
                test.len(),
                name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `predict --segment`: each image is a number written digit by digit.
fn predict_numbers(a: &PredictArgs, saved: &Saved) -> Result<ExitCode> {
    let encoding = match saved.encoding.get("encoding").and_then(|e| e.as_str()) {
        Some("none") | None => bail!("--segment: this model was not trained on images"),
        Some(_) => encoding_from(&saved.encoding)?,
    };
    if saved.inputs != 784 {
        bail!(
            "--segment: the model takes {} inputs; reading numbers needs a 28×28 digit model",
            saved.inputs
        );
    }
    if a.images.is_empty() {
        bail!("--segment: give the images of numbers to read");
    }
    let mut results = Vec::new();
    for p in &a.images {
        let img = read_image(p)?;
        let mut px = img.pixels;
        let mean = px.iter().map(|&v| v as f64).sum::<f64>() / px.len().max(1) as f64;
        if mean > 127.0 {
            px.iter_mut().for_each(|v| *v = 255 - *v);
        }
        let segs = backprop_data::segment_digits(&px, img.width, img.height);
        if segs.is_empty() {
            bail!("{}: no digits found (no ink)", p.display());
        }
        let x = Tensor::from_vec(
            segs.iter()
                .flat_map(|s| s.pixels.iter().map(|&b| encoding.encode(b)))
                .collect(),
            &[segs.len(), 784],
        );
        let probs = predict_proba(&saved.model, &x);
        let c = probs.shape()[1];
        let mut number = String::new();
        let mut digits = Vec::new();
        for (k, s) in segs.iter().enumerate() {
            let pr = &probs.data()[k * c..(k + 1) * c];
            let best = (0..c).max_by(|&i, &j| pr[i].total_cmp(&pr[j])).unwrap();
            let label = saved
                .classes
                .get(best)
                .cloned()
                .unwrap_or_else(|| best.to_string());
            number += &label;
            digits.push(
                json!({"digit": label, "confidence": pr[best], "box": [s.x0, s.x1, s.y0, s.y1]}),
            );
        }
        if !a.json {
            let conf: Vec<String> = digits
                .iter()
                .map(|d| {
                    format!(
                        "{} ({:.3})",
                        d["digit"].as_str().unwrap_or("?"),
                        d["confidence"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            println!("{}: {number}   {}", p.display(), conf.join(" "));
        }
        results.push(json!({"input": p.display().to_string(), "number": number, "digits": digits}));
    }
    if a.json {
        println!("{}", json!({ "numbers": results }));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn predict(a: PredictArgs) -> Result<ExitCode> {
    let saved = load_saved_model(&a.model_path)?;
    if a.segment {
        return predict_numbers(&a, &saved);
    }
    if a.images.is_empty() && a.index.is_empty() && a.csv.is_none() {
        bail!("nothing to predict: give image files, --index N,... or --csv FILE");
    }
    let mut rows: Vec<(String, Vec<f32>)> = Vec::new();
    let mut notes = Vec::new();
    let encoding = match saved.encoding.get("encoding").and_then(|e| e.as_str()) {
        Some("none") | None => None,
        Some(_) => Some(encoding_from(&saved.encoding)?),
    };
    for p in &a.images {
        let enc = encoding
            .ok_or_else(|| anyhow!("{}: this model was not trained on images", p.display()))?;
        let img = read_image(p)?;
        if img.width * img.height != saved.inputs {
            let side = (saved.inputs as f64).sqrt() as usize;
            bail!(
                "{}: the image is {}×{} but the model expects {side}×{side} ({} pixels)",
                p.display(),
                img.width,
                img.height,
                saved.inputs
            );
        }
        let mut px = img.pixels;
        // the model saw light digits on a dark background; invert a dark-on-light image
        let mean = px.iter().map(|&v| v as f64).sum::<f64>() / px.len().max(1) as f64;
        if mean > 127.0 {
            px.iter_mut().for_each(|v| *v = 255 - *v);
            notes.push(format!(
                "{}: inverted (dark ink on a light background)",
                p.display()
            ));
        }
        rows.push((
            p.display().to_string(),
            px.iter().map(|&b| enc.encode(b)).collect(),
        ));
    }
    if !a.index.is_empty() {
        let (_, test) = saved_test_set(&saved, &a.data)?;
        for &i in &a.index {
            if i >= test.len() {
                bail!("--index {i}: the test split has {} samples", test.len());
            }
            let f = test.features();
            rows.push((
                format!("test[{i}]"),
                test.x.data()[i * f..(i + 1) * f].to_vec(),
            ));
        }
    }
    if let Some(csv) = &a.csv {
        let text = std::fs::read_to_string(csv)
            .with_context(|| format!("--csv {}: cannot read", csv.display()))?;
        for (ln, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let vals: std::result::Result<Vec<f32>, _> =
                line.split(',').map(|c| c.trim().parse::<f32>()).collect();
            match vals {
                Ok(v) if v.len() == saved.inputs => {
                    rows.push((format!("{}:{}", csv.display(), ln + 1), v))
                }
                Ok(v) => bail!(
                    "--csv {}: line {} has {} values, the model takes {}",
                    csv.display(),
                    ln + 1,
                    v.len(),
                    saved.inputs
                ),
                Err(_) if ln == 0 => continue, // a header
                Err(_) => bail!(
                    "--csv {}: line {} has a value that is not a number",
                    csv.display(),
                    ln + 1
                ),
            }
        }
    }
    let n = rows.len();
    let x = Tensor::from_vec(
        rows.iter().flat_map(|(_, v)| v.iter().copied()).collect(),
        &[n, saved.inputs],
    );
    let probs = predict_proba(&saved.model, &x);
    let c = probs.shape()[1];
    let mut out = Vec::new();
    for note in &notes {
        eprintln!("note: {note}");
    }
    for (k, (name, _)) in rows.iter().enumerate() {
        let p = &probs.data()[k * c..(k + 1) * c];
        let best = (0..c).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap();
        let label = saved
            .classes
            .get(best)
            .cloned()
            .unwrap_or_else(|| best.to_string());
        if a.json {
            out.push(json!({"input": name, "class": best, "label": label, "probabilities": p}));
        } else {
            let mut order: Vec<usize> = (0..c).collect();
            order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
            let top: Vec<String> = order
                .iter()
                .take(3)
                .map(|&i| {
                    format!(
                        "{}: {:.4}",
                        saved
                            .classes
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| i.to_string()),
                        p[i]
                    )
                })
                .collect();
            println!(
                "{name}: class {label} (p = {:.4})   top: {}",
                p[best],
                top.join(", ")
            );
        }
    }
    if a.json {
        println!("{}", json!({ "predictions": out }));
    }
    Ok(ExitCode::SUCCESS)
}

/// Input width, output width and image shape: from the flags, else from the dataset.
fn dims_for(
    data: &DataArgs,
    inputs: Option<usize>,
    outputs: Option<usize>,
) -> Result<(usize, usize, Option<[usize; 3]>)> {
    if let (Some(i), Some(o)) = (inputs, outputs) {
        // a square single-channel image if the width is a square number
        let side = (i as f64).sqrt().round() as usize;
        return Ok((
            i,
            o,
            (side * side == i && side > 1).then_some([1, side, side]),
        ));
    }
    let loaded = load(data, 0, None, false)?;
    Ok((
        inputs.unwrap_or(loaded.train.features()),
        outputs.unwrap_or(loaded.train.outputs()),
        loaded.train.image_shape,
    ))
}

pub fn summary(a: SummaryArgs) -> Result<ExitCode> {
    let (model, inputs) = if let Some(p) = &a.model_path {
        let s = load_saved_model(p)?;
        (s.model, s.inputs)
    } else {
        let (inputs, outputs, image) = dims_for(&a.data, a.inputs, a.outputs)?;
        let (spec, _) = model_spec(&a.model, outputs)?;
        let built = spec
            .build_shaped::<f32>(inputs, image, Some(outputs), 0)
            .map_err(|e| anyhow!("--model {}: {e}", a.model.model))?;
        (built.model, inputs)
    };
    let s = Summary::of_sequential(&model, &[1, inputs]);
    if a.json {
        let layers: Vec<Value> = s.rows.iter().map(|r| json!({"name": r.name, "type": r.kind, "output_shape": r.output_shape, "params": r.params})).collect();
        println!(
            "{}",
            json!({"input_shape": s.input_shape, "layers": layers, "total_params": s.total_params, "weights": s.weights, "biases": s.biases})
        );
    } else {
        println!("{s}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gradcheck(a: GradcheckArgs) -> Result<ExitCode> {
    let loss = parse_loss(&a.loss)?;
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (inputs, outputs, image) = dims_for(&a.data, a.inputs, a.outputs)?;
    let (spec, _) = model_spec(&a.model, outputs)?;
    let built = spec
        .build_shaped::<f64>(inputs, image, Some(outputs), a.seed)
        .map_err(|e| anyhow!("--model {}: {e}", a.model.model))?;
    let model = built.model;
    let mut rng = Rng::seed(a.seed ^ 0x6C);
    let x = Var::constant(Tensor::<f64>::rand_normal(
        &[a.batch, inputs],
        0.0,
        1.0,
        &mut rng,
    ));
    let labels: Vec<usize> = (0..a.batch).map(|_| rng.below(outputs.max(1))).collect();
    let params = model.params();
    let vars: Vec<Var<f64>> = params.iter().map(|(_, p)| p.clone()).collect();
    let f = || {
        model.reseed(a.seed);
        let out = model.forward(&x, Mode::Train);
        let l = match loss {
            LossKind::CrossEntropy => {
                backprop_nn::loss::cross_entropy(&out, &labels, backprop_nn::Reduction::Mean)
            }
            LossKind::Hinge => backprop_nn::loss::multiclass_hinge(
                &out,
                &labels,
                1.0,
                backprop_nn::Reduction::Mean,
            ),
            LossKind::Squared => backprop_nn::loss::half_squared_error(
                &out,
                &Tensor::one_hot(&labels, outputs),
                backprop_nn::Reduction::Mean,
            ),
            LossKind::Absolute => backprop_nn::loss::absolute_error(
                &out,
                &Tensor::one_hot(&labels, outputs),
                backprop_nn::Reduction::Mean,
            ),
        };
        let _ = batch_loss;
        l
    };
    let opts = GradcheckOptions {
        max_elements: (a.max_elements > 0).then_some(a.max_elements),
        ..Default::default()
    };
    let report = gradcheck_vars(f, &vars, opts);
    if a.json {
        let ps: Vec<Value> = report
            .inputs
            .iter()
            .zip(&params)
            .map(|(r, (n, _))| json!({"name": n, "shape": r.shape, "max_abs_err": r.max_abs_err, "max_rel_err": r.max_rel_err, "passed": r.passed}))
            .collect();
        println!(
            "{}",
            json!({"passed": report.passed(), "max_abs_err": report.max_abs_err(), "max_rel_err": report.max_rel_err(), "parameters": ps})
        );
    } else {
        println!(
            "{:<16} {:<12} {:>12} {:>12}  result",
            "parameter", "shape", "max abs err", "max rel err"
        );
        for (r, (n, _)) in report.inputs.iter().zip(&params) {
            println!(
                "{:<16} {:<12} {:>12.3e} {:>12.3e}  {}",
                n,
                format!("{:?}", r.shape),
                r.max_abs_err,
                r.max_rel_err,
                if r.passed { "ok" } else { "FAIL" }
            );
        }
        println!(
            "{}",
            if report.passed() {
                "gradcheck passed"
            } else {
                "gradcheck FAILED"
            }
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

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

pub fn trace(a: crate::TraceArgs) -> Result<ExitCode> {
    use backprop_train::trace::{trace as run_trace, TraceCost};
    if !(a.lr.is_finite() && a.lr >= 0.0) {
        bail!("--lr {}: must be a non-negative number", a.lr);
    }
    // the model, in f64
    let (model, mut input, mut label) = match (&a.model, &a.model_path) {
        (Some(spec_name), None) => {
            if a.input.is_empty() {
                bail!("--input: give the input values, e.g. --input 0.35,0.9");
            }
            let m = ModelArgs {
                model: spec_name.clone(),
                hidden: None,
                activation: None,
                dropout: 0.0,
            };
            let (spec, _) = model_spec(&m, 0)?;
            // the width the spec's first layer states (through `in` or explicit weights)
            let stated = match spec.layers.first() {
                Some(backprop_train::LayerSpec::Linear(c)) => c
                    .inputs
                    .or_else(|| c.weight.as_ref().and_then(|w| w.first().map(Vec::len))),
                _ => None,
            };
            if let Some(k) = stated.filter(|&k| k != a.input.len()) {
                bail!(
                    "--input: the input has {} values but the model's first layer takes {k}",
                    a.input.len()
                );
            }
            let built = spec
                .build_shaped::<f64>(a.input.len(), None, None, 0)
                .map_err(|e| anyhow!("--model {spec_name}: {e}"))?;
            (built.model, a.input.clone(), None)
        }
        (None, Some(path)) => {
            let saved = load_saved_model(path)?;
            let spec: ModelSpec = serde_json::from_str(&saved.meta["backprop.spec"])?;
            let image: Option<[usize; 3]> = saved
                .meta
                .get("backprop.image_shape")
                .and_then(|s| serde_json::from_str(s).ok());
            let built = spec
                .build_shaped::<f64>(saved.inputs, image, None, 0)
                .map_err(|e| anyhow!("--model-path: {e}"))?;
            for ((_, p64), (_, p32)) in built.model.params().iter().zip(saved.model.params()) {
                p64.set_value(p32.value().cast());
            }
            let (input, label) = match a.index {
                Some(i) => {
                    let (_, test) = saved_test_set(&saved, &a.data)?;
                    if i >= test.len() {
                        bail!("--index {i}: the test split has {} samples", test.len());
                    }
                    let f = test.features();
                    let label = match &test.targets {
                        Targets::Classes { labels, .. } => Some(labels[i]),
                        Targets::Values(_) => None,
                    };
                    (
                        test.x.data()[i * f..(i + 1) * f]
                            .iter()
                            .map(|&v| v as f64)
                            .collect(),
                        label,
                    )
                }
                None => (a.input.clone(), None),
            };
            (built.model, input, label)
        }
        _ => bail!("give either --model SPEC or --model-path MODEL"),
    };
    if input.is_empty() {
        bail!("--input or --index: nothing to trace");
    }
    let cost = match parse_loss(&a.loss)? {
        LossKind::Squared => {
            let target = if !a.target.is_empty() {
                a.target.clone()
            } else if let Some(k) = label.take() {
                let outputs = model
                    .params()
                    .iter()
                    .rev()
                    .find(|(n, _)| n.ends_with("weight"))
                    .map_or(0, |(_, p)| p.shape()[0]);
                (0..outputs)
                    .map(|j| if j == k { 1.0 } else { 0.0 })
                    .collect()
            } else {
                bail!("--target: give the target values for the squared cost");
            };
            TraceCost::Squared(target)
        }
        LossKind::CrossEntropy => {
            let k = match (a.target.as_slice(), label) {
                ([t], _) if *t >= 0.0 && t.fract() == 0.0 => *t as usize,
                ([], Some(k)) => k,
                _ => bail!("--target: cross-entropy needs one class index"),
            };
            TraceCost::CrossEntropy(k)
        }
        _ => bail!(
            "--loss {}: trace supports squared and cross-entropy",
            a.loss
        ),
    };
    let t = run_trace(&model, &input, &cost, a.lr).map_err(|e| anyhow!(e))?;
    input.clear();
    if a.json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}
