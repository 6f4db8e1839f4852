//! `backprop train`: flags → [`RunConfig`] → prepared run → [`Trainer`] → report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use backprop_data::{Dataset, Targets};
use backprop_nn::Module;
use backprop_tensor::Tensor;
use backprop_train::import::import_state_dict;
use backprop_train::plot::{decision_boundary_png, training_curves};
use backprop_train::{
    evaluate, predict_proba, Checkpoint, Evaluation, History, PreparedRun, RunConfig, Stop, Trainer,
};
use serde_json::{json, Value};

use super::{data_config, flag_error, model_choice, num_or_null, pct, set_threads};
use crate::args::TrainArgs;
use crate::progress::Bars;

/// The flags as a run configuration; nothing is read yet.
fn run_config(a: &TrainArgs) -> Result<RunConfig> {
    Ok(RunConfig {
        data: data_config(&a.data)?,
        model: model_choice(&a.model)?,
        validation: a.validation,
        loss: a.loss,
        optimizer: a.optimizer,
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        schedule: a.lr_schedule,
        warmup: a.warmup,
        l1: a.l1,
        l2: a.l2,
        clip: a.clip,
        epochs: a.epochs,
        batch_size: a.batch_size,
        early_stopping: a.early_stopping,
        augment: a.augment,
        seed: a.seed,
        out: a.out.clone(),
        resume: a.resume,
    })
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

pub fn train(a: TrainArgs) -> Result<ExitCode> {
    let started = Instant::now();
    set_threads(a.threads)?;
    let config = run_config(&a)?;
    config.validate().map_err(flag_error)?;
    let out = config.out_dir();
    let created = !out.exists();
    ensure_writable(&out)?;
    let run = match config.prepare().map_err(flag_error) {
        Ok(run) => run,
        Err(e) => {
            // a run that never started leaves no empty directory behind
            if created {
                let _ = std::fs::remove_dir(&out);
            }
            return Err(e);
        }
    };
    if let Some(w) = &a.init_from {
        let r = import_state_dict(run.module(), w).map_err(|e| {
            if created {
                let _ = std::fs::remove_dir(&out);
            }
            anyhow!("--init-from {e}")
        })?;
        if !a.json {
            eprintln!("starting from the {} tensors of {}", r.tensors, w.display());
        }
    }
    let mut trainer = Trainer::new(run.module(), run.config.clone()).map_err(flag_error)?;
    if a.resume {
        resume(&mut trainer, &run, a.json)?;
    }
    if !a.json {
        announce(&run);
    }
    let model_path = run.model_path();
    let out = run.out.clone();
    let meta = run.metadata.clone();
    let stop = trainer
        .fit(
            &run.train,
            run.validation.as_ref(),
            &mut Bars::new(false),
            |t| {
                t.checkpoint(meta.clone()).save(&model_path)?;
                t.history.write(&out)
            },
        )
        .map_err(|e| anyhow!(e))?;
    let history = trainer.history.clone();
    drop(trainer);
    let plots = write_plots(&run, &history)?;
    if let Stop::Diverged { .. } = stop {
        return diverged(&stop, &run, a.json, started);
    }
    let train_eval = evaluate(run.module(), &run.train, run.config.loss);
    let test_eval = run
        .data
        .test
        .as_ref()
        .map(|t| evaluate(run.module(), t, run.config.loss));
    let report = Report {
        run: &run,
        history: &history,
        stop: &stop,
        train: &train_eval,
        test: test_eval.as_ref(),
        plots: &plots,
        seconds: started.elapsed().as_secs_f64(),
    };
    if a.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// `--resume`: the saved weights, optimizer state and history, checked against the spec.
fn resume(trainer: &mut Trainer, run: &PreparedRun, quiet: bool) -> Result<()> {
    let path = run.model_path();
    let ck = Checkpoint::load(&path).map_err(|e| anyhow!("--resume: {e}"))?;
    if ck.metadata.get("backprop.spec") != run.metadata.get("backprop.spec") {
        bail!(
            "--resume: the model in {} was built from another spec; use the same --model/--hidden flags",
            path.display()
        );
    }
    trainer
        .resume(&ck)
        .map_err(|e| anyhow!("--resume {}: {e}", path.display()))?;
    if trainer.epochs_done >= trainer.config.epochs {
        bail!(
            "--resume: the run in {} already finished its {} epochs; raise --epochs to train on",
            path.display(),
            trainer.epochs_done
        );
    }
    if !quiet {
        eprintln!(
            "resuming {} after epoch {}",
            path.display(),
            trainer.epochs_done
        );
    }
    Ok(())
}

fn announce(run: &PreparedRun) {
    eprintln!(
        "training {} on {} ({} train, {} validation, {} test samples; {} inputs, {} outputs; {} parameters)",
        run.model.kind(),
        run.data.name,
        run.train.len(),
        run.validation.as_ref().map_or(0, |v| v.len()),
        run.data.test.as_ref().map_or(0, |t| t.len()),
        run.train.features(),
        run.train.outputs(),
        run.model.num_params()
    );
}

/// The training curves and, for 2-D classification, the decision boundary.
fn write_plots(run: &PreparedRun, history: &History) -> Result<Vec<PathBuf>> {
    let name = run.out.file_name().map_or_else(
        || run.out.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let classification = matches!(run.data.train.targets, Targets::Classes { .. });
    let mut plots =
        training_curves(&run.out, &name, history, classification).map_err(|e| anyhow!(e))?;
    let Targets::Classes { labels, names } = &run.data.train.targets else {
        return Ok(plots);
    };
    if run.data.train.features() != 2 || history.epochs.is_empty() {
        return Ok(plots);
    }
    let points = |d: &Dataset| -> Vec<[f32; 2]> {
        d.x.data().chunks_exact(2).map(|c| [c[0], c[1]]).collect()
    };
    let train_pts = points(&run.data.train);
    let test = run.data.test.as_ref().and_then(|t| match &t.targets {
        Targets::Classes { labels, .. } => Some((points(t), labels.clone())),
        Targets::Values(_) => None,
    });
    let outputs = run.data.train.outputs();
    let path = run.out.join("decision_boundary.png");
    decision_boundary_png(
        &path,
        &format!(
            "{name}: decision boundary after {} epochs",
            history.epochs.len()
        ),
        (&train_pts, labels),
        test.as_ref().map(|(p, l)| (p.as_slice(), l.as_slice())),
        names.len(),
        |grid| {
            let x = Tensor::from_vec(grid.to_vec(), &[grid.len() / 2, 2]);
            let p = predict_proba(run.module(), &x);
            p.data().chunks_exact(outputs).map(|c| c.to_vec()).collect()
        },
    )
    .map_err(|e| anyhow!(e))?;
    plots.push(path);
    Ok(plots)
}

fn diverged(stop: &Stop, run: &PreparedRun, json: bool, started: Instant) -> Result<ExitCode> {
    let Stop::Diverged {
        epoch,
        step,
        parameter,
        loss,
    } = stop
    else {
        unreachable!("called for a diverged run")
    };
    let model_path = run.model_path();
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
    if json {
        println!(
            "{}",
            json!({"diverged": true, "epoch": epoch, "step": step, "loss": num_or_null(*loss), "parameter": parameter, "model_path": model_path, "seconds": started.elapsed().as_secs_f64()})
        );
    }
    bail!("training diverged at epoch {epoch}, step {step} (loss = {loss}); {which}; {kept}. Try a smaller --lr or --clip.")
}

/// What a finished run prints.
struct Report<'a> {
    run: &'a PreparedRun,
    history: &'a History,
    stop: &'a Stop,
    train: &'a Evaluation,
    test: Option<&'a Evaluation>,
    plots: &'a [PathBuf],
    seconds: f64,
}

impl Report<'_> {
    fn json(&self) -> Value {
        let (stopped, best_epoch) = match self.stop {
            Stop::EarlyStopped { best_epoch } => ("early_stopped", Some(*best_epoch)),
            _ => ("completed", None),
        };
        let last = self.history.epochs.last();
        let mut o = json!({
            "dataset": self.run.data.name,
            "epochs": self.history.epochs.len(),
            "stopped": stopped,
            "best_epoch": best_epoch,
            "train_loss": num_or_null(self.train.loss),
            "train_accuracy": num_or_null(self.train.accuracy),
            "val_loss": num_or_null(last.map_or(f64::NAN, |r| r.val_loss)),
            "val_accuracy": num_or_null(last.map_or(f64::NAN, |r| r.val_accuracy)),
            "test_loss": self.test.map_or(Value::Null, |e| num_or_null(e.loss)),
            "test_accuracy": self.test.map_or(Value::Null, |e| num_or_null(e.accuracy)),
            "seconds": self.seconds,
            "model_path": self.run.model_path(),
            "history_path": self.run.out.join("history.csv"),
            "plots": self.plots,
            "parameters": self.run.model.num_params(),
        });
        if let Some(c) = self.test.and_then(|e| e.confusion.as_ref()) {
            o["confusion_matrix"] = json!(c.counts);
            o["precision"] = json!(c.precision());
            o["recall"] = json!(c.recall());
        }
        o
    }

    fn print(&self) {
        if let Stop::EarlyStopped { best_epoch } = self.stop {
            println!(
                "early stopping after epoch {}: restored the best epoch, {best_epoch}",
                self.history.epochs.len()
            );
        }
        if let (Some(c), Targets::Classes { names, .. }) = (
            self.test.and_then(|e| e.confusion.as_ref()),
            &self.run.data.train.targets,
        ) {
            if names.len() <= 12 {
                println!(
                    "test confusion matrix (rows: true class, columns: predicted):\n{}",
                    c.table(names)
                );
            }
        }
        let line = |name: &str, pad: &str, e: &Evaluation| {
            if e.accuracy.is_finite() {
                println!(
                    "{name} accuracy {pad}{}  loss {:.4}",
                    pct(e.accuracy),
                    e.loss
                );
            } else {
                println!("{name} loss {:.5}", e.loss);
            }
        };
        line("train", "", self.train);
        if let Some(e) = self.test {
            line("test", " ", e);
        }
        let n = self.history.epochs.len();
        let ran: f64 = self.history.epochs.iter().map(|r| r.seconds).sum();
        println!(
            "{n} epoch{} in {:.1}s ({:.1}s training)",
            if n == 1 { "" } else { "s" },
            self.seconds,
            ran
        );
        println!("model:   {}", self.run.model_path().display());
        println!(
            "history: {} (and history.json)",
            self.run.out.join("history.csv").display()
        );
        for p in self.plots {
            println!("plot:    {}", p.display());
        }
    }
}
