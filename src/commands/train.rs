//! `backprop train`: flags → [`RunConfig`] → prepared run → [`Trainer`] → report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use backprop_data::{Dataset, Targets};
use backprop_nn::Module;
use backprop_tensor::Tensor;
use backprop_train::diagnose::learning_warnings;
use backprop_train::diagnostics::{Diagnostics, DiagnosticsLog, Warning};
use backprop_train::import::import_state_dict;
use backprop_train::metrics::RegressionScores;
use backprop_train::plot::{decision_boundary_png, training_curves};
use backprop_train::{
    evaluate, predict_proba, regression_scores, Checkpoint, Evaluation, History, Observer,
    PreparedRun, Quiet, RunConfig, Stop, Trainer,
};
use serde_json::{json, Value};

use super::{data_config, flag_error, model_choice, num_or_null, pct, set_threads};
use crate::args::TrainArgs;
use crate::distributed::{self, Peers};
use crate::progress::Bars;

/// The flags as a run configuration; nothing is read yet.
pub(super) fn run_config(a: &TrainArgs) -> Result<RunConfig> {
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

/// Removes the directories `dirs` (innermost first) where they are empty: what a run that
/// did not start had created.
fn remove_empty(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// Where the run goes without replacing an earlier one: `--resume` and `--overwrite` use
/// `--out` as it is; an explicit `--out` holding a model is refused; the default directory
/// (e.g. runs/mnist-mlp) moves on to the first free `-2`, `-3`, ... and says so.
fn fresh_out(config: &mut RunConfig, a: &TrainArgs) -> Result<()> {
    let dir = config.out_dir();
    let holds_model = |d: &Path| d.join("model.safetensors").exists();
    if a.resume || a.overwrite || !holds_model(&dir) {
        return Ok(());
    }
    if a.out.is_some() {
        bail!(
            "--out {}: the directory already holds a trained model; pass --overwrite to replace it, --resume to continue it, or choose another --out",
            dir.display()
        );
    }
    let name = dir
        .file_name()
        .map_or("run".into(), |n| n.to_string_lossy().into_owned());
    let fresh = (2..)
        .map(|k| dir.with_file_name(format!("{name}-{k}")))
        .find(|d| !d.exists())
        .expect("a free name");
    if !a.json {
        eprintln!(
            "{} holds an earlier run (kept); this one goes to {} (--overwrite replaces it instead)",
            dir.display(),
            fresh.display()
        );
    }
    config.out = Some(fresh);
    Ok(())
}

/// The run the flags describe, prepared: settings checked, a fresh output directory made,
/// data read, the model built (from `--init-from`'s weights if given). A run that fails here
/// leaves no directory behind. Only the process that writes the files (`root`; every rank
/// but 0 of a distributed run is not) looks at the output directory.
fn start(a: &TrainArgs, root: bool) -> Result<PreparedRun> {
    set_threads(a.threads)?;
    let mut config = run_config(a)?;
    config.validate().map_err(flag_error)?;
    // the directories this run creates (the output directory and any missing parents, e.g.
    // `runs/`), innermost first
    let mut created = Vec::new();
    if root {
        fresh_out(&mut config, a)?;
        let out = config.out_dir();
        created = out
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        if let Err(e) = ensure_writable(&out) {
            remove_empty(&created);
            return Err(e);
        }
    }
    // a run that never started leaves no empty directory behind
    let remove_created = || remove_empty(&created);
    let run = match config.prepare().map_err(flag_error) {
        Ok(run) => run,
        Err(e) => {
            remove_created();
            return Err(e);
        }
    };
    if let Some(w) = &a.init_from {
        let r = import_state_dict(run.module(), w).map_err(|e| {
            remove_created();
            anyhow!("--init-from {e}")
        })?;
        if !a.json && root {
            eprintln!("starting from the {} tensors of {}", r.tensors, w.display());
        }
    }
    Ok(run)
}

pub fn train(a: TrainArgs) -> Result<ExitCode> {
    match distributed::join(a.distributed, a.threads)? {
        None => train_on(a, None),
        Some(peers) => peers.finish(train_on(a, Some(&peers))),
    }
}

/// A run in this process, alone or as one rank of a distributed run (rank 0 alone reads
/// `--resume`'s checkpoint, prints, and writes checkpoints, history and plots).
fn train_on(a: TrainArgs, peers: Option<&Peers>) -> Result<ExitCode> {
    let started = Instant::now();
    let root = peers.is_none_or(|p| p.rank() == 0);
    let run = start(&a, root)?;
    let mut trainer = Trainer::new(run.module(), run.config.clone()).map_err(flag_error)?;
    if a.resume && root {
        resume(&mut trainer, &run, a.json)?;
    }
    let diagnostics = (a.diagnostics && root)
        .then(|| install_diagnostics(&mut trainer, &run, a.diagnostics_every.unwrap_or(0)));
    if let Some(p) = peers {
        trainer.distribute(p.collective()).map_err(|e| anyhow!(e))?;
    }
    let resumed_after = trainer.epochs_done;
    if !a.json && root {
        announce(&run, peers);
    }
    let model_path = run.model_path();
    let out = run.out.clone();
    let meta = run.metadata.clone();
    // every epoch of a long run is saved; short epochs (small tables) at most every 2 s,
    // and the last one after the loop, so syncing files does not dominate the run
    let saved_at = std::cell::Cell::new((None::<Instant>, trainer.epochs_done));
    let save = |t: &Trainer| -> std::result::Result<(), String> {
        if !root {
            return Ok(());
        }
        t.checkpoint(meta.clone()).save(&model_path)?;
        saved_at.set((Some(Instant::now()), t.epochs_done));
        t.history.write(&out)
    };
    let (mut bars, mut quiet) = (Bars::new(false), Quiet);
    let observer: &mut dyn Observer = if root { &mut bars } else { &mut quiet };
    let stop = trainer
        .fit(
            &run.train,
            run.validation.as_ref(),
            observer,
            |t| match saved_at.get().0 {
                Some(at) if at.elapsed().as_secs_f64() < 2.0 => Ok(()),
                _ => save(t),
            },
        )
        .map_err(|e| anyhow!(e))?;
    if !matches!(stop, Stop::Diverged { .. }) && trainer.epochs_done > 0 {
        save(&trainer).map_err(|e| anyhow!(e))?;
    }
    if !root {
        return Ok(ExitCode::SUCCESS);
    }
    let history = trainer.history.clone();
    drop(trainer);
    let mut plots = write_plots(&run, &history)?;
    if let Some(log) = &diagnostics {
        let written = log
            .lock()
            .unwrap()
            .write(&run.out)
            .map_err(|e| anyhow!(e))?;
        plots.extend(
            written
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "svg")),
        );
    }
    if let Stop::Diverged { .. } = stop {
        return diverged(&stop, &run, saved_at.get().1, a.json, started);
    }
    let train_eval = evaluate(run.module(), &run.train, run.config.loss);
    let test_eval = run
        .data
        .test
        .as_ref()
        .map(|t| evaluate(run.module(), t, run.config.loss));
    let (scores, warnings) = diagnose(&run, &history, &train_eval);
    let report = Report {
        run: &run,
        history: &history,
        stop: &stop,
        train: &train_eval,
        test: test_eval.as_ref(),
        scores,
        warnings: &warnings,
        plots: &plots,
        seconds: started.elapsed().as_secs_f64(),
        resumed_after,
    };
    if a.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// `--diagnostics`: a probe on the trainer that records per-layer figures and prints each
/// warning as it is raised; dead and saturated units are measured on the first 256
/// training samples.
fn install_diagnostics(
    trainer: &mut Trainer,
    run: &PreparedRun,
    every: usize,
) -> std::sync::Arc<std::sync::Mutex<DiagnosticsLog>> {
    let n = run.train.len().min(256);
    let probe_x = run.train.x.narrow(0, 0, n);
    let d = Diagnostics::new(
        every,
        probe_x,
        run.config.lr,
        Box::new(|w: &Warning| eprintln!("warning: {}", w.message)),
    );
    let log = d.log();
    trainer.set_probe(Some(Box::new(d)));
    log
}

/// Regression scores in the target's units: training and test split.
type Scores = (Option<RegressionScores>, Option<RegressionScores>);

/// The regression scores, and the warnings of a run that did not learn (printed as found).
fn diagnose(run: &PreparedRun, history: &History, train: &Evaluation) -> (Scores, Vec<String>) {
    let unscale = |y: f64| run.data.table.as_ref().map_or(y, |s| s.unscale_target(y));
    let train_scores = regression_scores(run.module(), &run.train, unscale);
    let test_scores =
        (run.data.test.as_ref()).and_then(|t| regression_scores(run.module(), t, unscale));
    let warnings = learning_warnings(history, train, train_scores.as_ref());
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    ((train_scores, test_scores), warnings)
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

fn announce(run: &PreparedRun, peers: Option<&Peers>) {
    if let Some(p) = peers {
        eprintln!(
            "distributed over {} ranks: each computes {} of every batch of {}",
            p.size(),
            if p.size() == 1 {
                "all".to_string()
            } else {
                format!("1/{}", p.size())
            },
            run.config.batch_size
        );
    }
    if let Some(t) = &run.data.table {
        let cats: Vec<String> = t
            .features
            .iter()
            .filter(|f| matches!(f.kind, backprop_data::FeatureKind::Categorical { .. }))
            .map(|f| format!("{} ({} categories)", f.name, f.width()))
            .collect();
        eprintln!(
            "table: label {:?} ({}), {} feature columns → {} inputs, scaling {}, missing cells: {}, test split seed {}{}",
            t.label,
            match t.classes().len() {
                0 => "regression".to_string(),
                k => format!("{k} classes"),
            },
            t.features.len(),
            t.inputs(),
            t.scale.name(),
            t.missing.name(),
            t.split_seed,
            if cats.is_empty() { String::new() } else { format!("; one-hot: {}", cats.join(", ")) }
        );
    }
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

fn diverged(
    stop: &Stop,
    run: &PreparedRun,
    saved_epoch: usize,
    json: bool,
    started: Instant,
) -> Result<ExitCode> {
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
    let kept = if saved_epoch > 0 {
        format!(
            "the checkpoint of epoch {saved_epoch} is kept at {}",
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

/// Regression scores as JSON (non-finite values as null).
pub fn scores_json(s: &RegressionScores) -> Value {
    json!({"mse": num_or_null(s.mse), "rmse": num_or_null(s.rmse), "mae": num_or_null(s.mae), "r2": num_or_null(s.r2)})
}

/// `R² 0.512  RMSE 53.2  MAE 43.1  MSE 2830`.
pub fn scores_line(s: &RegressionScores) -> String {
    format!(
        "R² {:.4}  RMSE {:.4}  MAE {:.4}  MSE {:.4}",
        s.r2, s.rmse, s.mae, s.mse
    )
}

/// What a finished run prints.
struct Report<'a> {
    run: &'a PreparedRun,
    history: &'a History,
    stop: &'a Stop,
    train: &'a Evaluation,
    test: Option<&'a Evaluation>,
    scores: Scores,
    warnings: &'a [String],
    plots: &'a [PathBuf],
    seconds: f64,
    /// Epochs an earlier invocation trained (0 unless resumed).
    resumed_after: usize,
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
        if let Some(s) = &self.scores.1 {
            o["test_scores"] = scores_json(s);
        }
        if let Some(s) = &self.scores.0 {
            o["train_scores"] = scores_json(s);
        }
        if let (Some(u), Some(e)) = (self.run.data.unigram_perplexity, self.test) {
            o["test_perplexity"] = num_or_null(e.loss.exp());
            o["unigram_perplexity"] = num_or_null(u);
        }
        if let Some(t) = &self.run.data.table {
            o["inputs"] = json!(t.input_names());
            o["test_rows"] = json!(self.run.data.test_rows);
        }
        o["warnings"] = json!(self.warnings);
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
        if let (Some(u), Some(e)) = (self.run.data.unigram_perplexity, self.test) {
            println!(
                "test perplexity {:.3} per character (a unigram model of the training text: {u:.3})",
                e.loss.exp()
            );
        }
        for (name, s) in [("train", &self.scores.0), ("test ", &self.scores.1)] {
            if let Some(s) = s {
                println!("{name} {}", scores_line(s));
            }
        }
        let total = self.history.epochs.len();
        let now = &self.history.epochs[self.resumed_after.min(total)..];
        let n = now.len();
        let ran: f64 = now.iter().map(|r| r.seconds).sum();
        let resumed = if self.resumed_after > 0 {
            format!(
                ", resumed after epoch {} ({total} in all)",
                self.resumed_after
            )
        } else {
            String::new()
        };
        println!(
            "{n} epoch{} in {:.1}s ({:.1}s training{resumed})",
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
