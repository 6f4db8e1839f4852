//! The training loop.
//!
//! Per epoch: the model's random streams are reseeded and the data is shuffled from a seed
//! derived from (run seed, epoch), so a run resumed from a checkpoint at an epoch boundary
//! ends with exactly the weights of an uninterrupted run. Each step sets the learning rate
//! from the schedule (stepped per optimizer step), computes the loss, checks it is finite
//! (the divergence guard), backpropagates, clips and updates. At the end of an epoch the
//! validation set is evaluated, the history grows by one record, early stopping is
//! consulted, and the caller may write a checkpoint.

use std::collections::BTreeMap;
use std::time::Instant;

use backprop_autograd::{is_grad_disabled, no_grad, with_grad_state, Grads, Var};
use backprop_data::{random_shift, BatchTargets, Dataset, Targets};
use backprop_nn::loss::{self, Reduction};
use backprop_nn::{mix_seed, Mode, Module};
use backprop_optim::clip::clip_grad_norm;
use backprop_optim::schedule::LrSchedule;
use backprop_optim::Optimizer;
use backprop_tensor::ops::packing::SharedPacking;
use backprop_tensor::{profile, Element, Rng, Tensor};

use crate::checkpoint::Checkpoint;
use crate::config::{ConfigError, LossKind, TrainConfig};
use crate::history::{EpochRecord, History};
use crate::metrics::{Confusion, RegressionScores};
use crate::parallel::DataParallel;

/// Why a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// All epochs ran.
    Completed,
    /// Early stopping: the validation loss had not improved since `best_epoch`.
    EarlyStopped {
        /// The best epoch (1-based).
        best_epoch: usize,
    },
    /// The loss became NaN or infinite.
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// The first parameter with a non-finite value, if any.
        parameter: Option<String>,
        /// The loss value seen.
        loss: f64,
    },
}

/// Loss and accuracy of a model on a dataset.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Mean loss.
    pub loss: f64,
    /// Accuracy (NaN for regression).
    pub accuracy: f64,
    /// The confusion matrix (classification).
    pub confusion: Option<Confusion>,
}

/// Receives progress; the CLI draws bars with it, tests ignore it.
pub trait Observer {
    /// An epoch begins with `batches` steps.
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    /// A step ended.
    fn step(&mut self, _loss: f64, _accuracy: f64, _samples: usize) {}
    /// An epoch ended.
    fn epoch_end(&mut self, _record: &EpochRecord) {}
}

/// Batch rows × weights from which a step started outside the pool moves onto a pool worker
/// ([`Trainer::step`]).
const HOP_WORK: usize = 1 << 20;

/// A step's outcome as [`Trainer::step`] returns it.
type StepResult = Result<(f64, usize), f64>;

/// How long [`Trainer::train_epoch`] runs steps on a pool worker before it comes back to
/// report them: short enough for live progress, well under [`profile::MAX_SPIN`], the time
/// the other workers stay awake for one run.
const STEPS_RUN: std::time::Duration = std::time::Duration::from_millis(20);

/// Looks inside training steps (diagnostics): after backward it sees the step's whole-batch
/// gradients, after the optimizer's update the updated model. Installed with
/// [`Trainer::set_probe`]; without one the trainer does no extra work.
pub trait StepProbe: Send {
    /// Called after backward with the gradients (before clipping) and the step's η;
    /// `step` counts optimizer steps from 0, `steps_per_epoch` is the data's.
    fn after_backward(
        &mut self,
        step: usize,
        steps_per_epoch: usize,
        model: &dyn Module<f32>,
        grads: &Grads<f32>,
        lr: f64,
    );
    /// Called after the update of the same step.
    fn after_update(&mut self, step: usize, model: &dyn Module<f32>);
}

/// An observer that does nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// Builds the loss for a batch: the one place a [`LossKind`] becomes a loss function (the
/// trainer, the playground and `gradcheck` all call it). Generic so that gradient checks
/// run it in f64.
///
/// # Panics
/// If a classification loss is asked of regression targets (checked earlier by `fit`).
pub fn batch_loss<E: Element>(kind: LossKind, out: &Var<E>, targets: &BatchTargets) -> Var<E> {
    match targets {
        BatchTargets::Classes(labels) => {
            let classes = out.shape()[1];
            match kind {
                LossKind::CrossEntropy => loss::cross_entropy(out, labels, Reduction::Mean),
                LossKind::Squared => loss::half_squared_error(
                    out,
                    &Tensor::one_hot(labels, classes),
                    Reduction::Mean,
                ),
                LossKind::Absolute => {
                    loss::absolute_error(out, &Tensor::one_hot(labels, classes), Reduction::Mean)
                }
                LossKind::Hinge => loss::multiclass_hinge(out, labels, 1.0, Reduction::Mean),
            }
        }
        BatchTargets::Values(v) => {
            let v = v.cast::<E>();
            match kind {
                LossKind::Absolute => loss::absolute_error(out, &v, Reduction::Mean),
                _ => loss::half_squared_error(out, &v, Reduction::Mean),
            }
        }
    }
}

/// Evaluates a model (evaluation mode, nothing recorded) in batches of 1000.
pub fn evaluate(model: &dyn Module<f32>, data: &Dataset, kind: LossKind) -> Evaluation {
    let _g = backprop_autograd::NoGradGuard::new();
    model.reset_state(); // a stateful layer starts the evaluation from zeros
    let mut loss_sum = 0.0;
    let mut preds = Vec::with_capacity(data.len());
    for b in data.batches(1000, None) {
        let n = b.x.shape()[0];
        let out = Var::constant(batch_outputs(model, &b.x));
        loss_sum += batch_loss(kind, &out, &b.targets).item() as f64 * n as f64;
        if matches!(b.targets, BatchTargets::Classes(_)) {
            preds.extend(out.value().argmax(1));
        }
    }
    let (accuracy, confusion) = match &data.targets {
        Targets::Classes { labels, names } => {
            let c = Confusion::new(&preds, labels, names.len());
            (c.accuracy(), Some(c))
        }
        Targets::Values(_) => (f64::NAN, None),
    };
    Evaluation {
        loss: loss_sum / data.len().max(1) as f64,
        accuracy,
        confusion,
    }
}

/// The run-time state of a training run over any [`Module`].
///
/// ```
/// use backprop_data::synthetic;
/// use backprop_nn::{Activation, Linear, Module, Sequential};
/// use backprop_tensor::Rng;
/// use backprop_train::{Quiet, Stop, TrainConfig, Trainer};
/// let data = synthetic("gauss", 200, 0.1, 1).unwrap();
/// let mut rng = Rng::seed(0);
/// let net = Sequential::<f32>::new()
///     .add("fc1", Linear::new(2, 8, &mut rng))
///     .add("tanh1", Activation::Tanh)
///     .add("fc2", Linear::new(8, 2, &mut rng));
/// let config = TrainConfig { epochs: 20, batch_size: 16, ..TrainConfig::default() };
/// let mut t = Trainer::new(&net, config).unwrap();
/// assert_eq!(t.fit(&data, None, &mut Quiet, |_| Ok(())).unwrap(), Stop::Completed);
/// assert!(t.history.epochs.last().unwrap().train_accuracy > 0.9);
/// ```
pub struct Trainer<'m> {
    /// The settings.
    pub config: TrainConfig,
    model: Held<'m>,
    optimizer: Box<dyn Optimizer<f32>>,
    /// Epochs finished so far.
    pub epochs_done: usize,
    step: usize,
    /// The history so far.
    pub history: History,
    best: Option<(f64, usize, Vec<Tensor<f32>>)>,
    bad_epochs: usize,
    /// Whether a step may split its batch in two halves computed side by side.
    shardable: bool,
    /// How many parameters the model has (a step's work is about this times the batch).
    weights: usize,
    /// The schedule for the current data size (steps per epoch), built on first use.
    schedule: Option<(usize, Box<dyn LrSchedule>)>,
    /// Sees each step's gradients and update (diagnostics), if set.
    probe: Option<Box<dyn StepProbe>>,
    /// The peers of a data-parallel run ([`Trainer::distribute`]).
    parallel: Option<DataParallel>,
    /// Runs of steps [`Trainer::train_epoch`] has taken to the pool (for the tests).
    #[cfg(test)]
    pool_runs: usize,
}

/// The model a trainer trains: borrowed from the caller, or owned (a session that keeps
/// its trainer alive between requests).
enum Held<'m> {
    Borrowed(&'m dyn Module<f32>),
    Owned(Box<dyn Module<f32>>),
}

impl Held<'_> {
    fn get(&self) -> &dyn Module<f32> {
        match self {
            Held::Borrowed(m) => *m,
            Held::Owned(m) => m.as_ref(),
        }
    }
}

/// Splits a batch so that each half keeps at least this many samples.
const MIN_SHARD: usize = 16;

/// A step's gradients: of the whole batch, or of its two halves with their size weights
/// (the optimizer blends them as it updates).
enum StepGrads {
    Whole(Grads<f32>),
    Halves(Grads<f32>, f32, Grads<f32>, f32),
}

impl StepGrads {
    /// The whole batch's gradients.
    fn whole(self) -> Grads<f32> {
        match self {
            StepGrads::Whole(g) => g,
            StepGrads::Halves(a, wa, b, wb) => backprop_optim::blend(&a, wa, &b, wb),
        }
    }
}

pub(crate) fn slice_targets(t: &BatchTargets, start: usize, len: usize) -> BatchTargets {
    match t {
        BatchTargets::Classes(l) => BatchTargets::Classes(l[start..start + len].to_vec()),
        BatchTargets::Values(v) => BatchTargets::Values(v.narrow(0, start, len)),
    }
}

/// What one epoch of training measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// Mean training loss over the epoch's steps (weighted by batch size).
    pub loss: f64,
    /// Share of training samples classified right during the epoch (NaN for regression).
    pub accuracy: f64,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
}

/// How an epoch of training ended.
#[derive(Debug, Clone, PartialEq)]
pub enum EpochOutcome {
    /// Every step ran.
    Done(EpochStats),
    /// The loss became NaN or infinite (see [`Stop::Diverged`]).
    Diverged(Stop),
}

impl Trainer<'static> {
    /// A trainer that owns its model (for a caller that keeps the trainer between calls,
    /// as a playground session does).
    ///
    /// # Errors
    /// If the configuration is invalid.
    pub fn owning(model: Box<dyn Module<f32>>, config: TrainConfig) -> Result<Self, ConfigError> {
        Self::holding(Held::Owned(model), config)
    }
}

impl<'m> Trainer<'m> {
    /// A trainer for `model`, any [`Module`].
    ///
    /// # Errors
    /// If the configuration is invalid.
    pub fn new(model: &'m dyn Module<f32>, config: TrainConfig) -> Result<Self, ConfigError> {
        Self::holding(Held::Borrowed(model), config)
    }

    fn holding(model: Held<'m>, config: TrainConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let shardable = model.get().sample_independent();
        let weights = model
            .get()
            .params()
            .iter()
            .map(|(_, p)| p.shape().iter().product::<usize>())
            .sum();
        let optimizer = config
            .optimizer
            .build(model.get().params(), &config.optimizer_settings());
        Ok(Trainer {
            config,
            model,
            optimizer,
            epochs_done: 0,
            step: 0,
            history: History::default(),
            best: None,
            bad_epochs: 0,
            shardable,
            weights,
            schedule: None,
            probe: None,
            parallel: None,
            #[cfg(test)]
            pool_runs: 0,
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &dyn Module<f32> {
        self.model.get()
    }

    /// Installs a probe that sees every step's gradients and update (see [`StepProbe`]);
    /// returns the previous one. With a probe, a step's two half-batch gradients are
    /// combined before the update (the same update, in one more pass over the gradients).
    pub fn set_probe(&mut self, probe: Option<Box<dyn StepProbe>>) -> Option<Box<dyn StepProbe>> {
        std::mem::replace(&mut self.probe, probe)
    }

    /// The data-parallel link, if this trainer is one rank of several.
    pub fn parallel(&self) -> Option<&DataParallel> {
        self.parallel.as_ref()
    }

    pub(crate) fn set_parallel(&mut self, p: DataParallel) {
        self.parallel = Some(p);
    }

    /// Optimizer steps taken so far.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// One batch's forward and backward pass: its mean loss, how many samples it classified
    /// right, and the gradients. Models whose samples are independent (see
    /// [`Module::sample_independent`]) split the batch in two halves computed side by side on the
    /// thread pool and combine their gradients weighted by size; the split does not depend
    /// on the number of threads, so neither do the results.
    fn forward_backward(&self, x: Tensor<f32>, targets: &BatchTargets) -> (f64, usize, StepGrads) {
        let kind = self.config.loss;
        let model = self.model.get();
        let run = |x: Tensor<f32>, t: &BatchTargets| -> (f64, usize, Grads<f32>) {
            let out = model.forward(&Var::constant(x), Mode::Train);
            let l = batch_loss(kind, &out, t);
            let lv = f64::from(l.item());
            let mut right = 0;
            if let BatchTargets::Classes(labels) = t {
                right = out
                    .value()
                    .argmax(1)
                    .iter()
                    .zip(labels)
                    .filter(|(p, l)| p == l)
                    .count();
            }
            drop(out);
            (lv, right, l.backward())
        };
        let n = x.shape()[0];
        // a rank of a data-parallel run computes its shard whole (see `parallel`)
        if !self.shardable || n < 2 * MIN_SHARD || self.parallel.is_some() {
            let (l, r, g) = run(x, targets);
            return (l, r, StepGrads::Whole(g));
        }
        let h = n / 2;
        let (xa, xb) = (x.narrow(0, 0, h), x.narrow(0, h, n - h));
        let (ta, tb) = (
            slice_targets(targets, 0, h),
            slice_targets(targets, h, n - h),
        );
        // each half records as this thread does, whichever worker runs it (one inside a
        // `no_grad` of its own, waiting, may take the second)
        let disabled = is_grad_disabled();
        // the halves pack each weight for the sparse forward kernel once between them;
        // `shared` (and with it its hold on the weights) is gone before the update
        let shared = SharedPacking::new();
        let half = |x: Tensor<f32>, t: &BatchTargets| {
            shared.run(|| with_grad_state(disabled, || profile::sharing_the_pool(|| run(x, t))))
        };
        let ((la, ra, ga), (lb, rb, gb)) = rayon::join(|| half(xa, &ta), || half(xb, &tb));
        drop(shared);
        let (wa, wb) = (h as f32 / n as f32, (n - h) as f32 / n as f32);
        (
            f64::from(wa) * la + f64::from(wb) * lb,
            ra + rb,
            StepGrads::Halves(ga, wa, gb, wb),
        )
    }

    /// The schedule for `steps_per_epoch`, (re)built when the data size changes; a resumed
    /// run replays its validation history into it so a plateau schedule continues.
    fn schedule_for(&mut self, steps_per_epoch: usize) -> &mut Box<dyn LrSchedule> {
        if self
            .schedule
            .as_ref()
            .is_none_or(|(s, _)| *s != steps_per_epoch)
        {
            let c = &self.config;
            let mut s = c.schedule.build(c.lr, c.epochs, steps_per_epoch, c.warmup);
            for r in &self.history.epochs {
                if r.val_loss.is_finite() {
                    s.observe(r.val_loss);
                }
            }
            self.schedule = Some((steps_per_epoch, s));
        }
        &mut self.schedule.as_mut().expect("just built").1
    }

    /// One training step on a batch: the schedule's learning rate, forward, loss, backward,
    /// clipping, the optimizer's update. Returns the batch's mean loss and how many samples
    /// it classified right, or the loss (and no update) if it is not finite.
    ///
    /// This is the step `backprop train` and the playground share. Called from outside
    /// the thread pool, a step of a million multiply-adds or more (batch × weights) runs on
    /// one of the pool's workers (and waits for it).
    pub fn step(
        &mut self,
        x: Tensor<f32>,
        targets: &BatchTargets,
        steps_per_epoch: usize,
    ) -> Result<(f64, usize), f64> {
        // A step started outside the pool runs on one of its workers: the step's parallel
        // kernels then hand work to the other worker directly, where from outside each of
        // them would wake the pool and put this thread to sleep until it finished (about
        // 6% of W6's epoch went to those wake-ups). Marked as having the pool to itself,
        // its kernels split as they would from outside; the two halves of a batch are
        // marked as sharing it. A data-parallel rank stays on its own thread, which is the
        // one that talks to MPI. A small step (fewer than about a million multiply-adds
        // forward, as W3's 338 weights at batch 10) stays here: handing it over would cost
        // more than the step.
        if self.hops(x.shape().first().copied().unwrap_or(0)) {
            // it records as this thread does: the worker may be inside a `no_grad` of its own
            let disabled = is_grad_disabled();
            return rayon::scope(|_| {
                with_grad_state(disabled, || {
                    profile::alone_on_the_pool(|| self.step(x, targets, steps_per_epoch))
                })
            });
        }
        let t = self.step;
        let lr = self.schedule_for(steps_per_epoch).lr(t);
        self.optimizer.set_lr(lr);
        let (lv, right, mut grads) = match &self.parallel {
            None => self.forward_backward(x, targets),
            Some(p) => {
                let (l, r, g) = p.forward_backward(self.model(), x, targets, |x, t| {
                    let (l, r, g) = self.forward_backward(x, t);
                    (l, r, g.whole())
                });
                (l, r, StepGrads::Whole(g))
            }
        };
        if !lv.is_finite() {
            return Err(lv);
        }
        if let Some(p) = self.probe.as_mut() {
            let whole = grads.whole();
            p.after_backward(t, steps_per_epoch, self.model.get(), &whole, lr);
            grads = StepGrads::Whole(whole);
        }
        match (grads, self.config.clip) {
            (StepGrads::Halves(a, wa, b, wb), None) => self.optimizer.step_blend(&a, wa, &b, wb),
            (g, clip) => {
                let mut g = g.whole();
                if let Some(c) = clip {
                    clip_grad_norm(&mut g, c);
                }
                self.optimizer.step(&g);
            }
        }
        if let Some(p) = self.probe.as_mut() {
            p.after_update(t, self.model.get());
        }
        self.step += 1;
        Ok((lv, right))
    }

    /// Whether a step of `rows` samples started on this thread moves onto a pool worker
    /// (see [`Trainer::step`]).
    fn hops(&self, rows: usize) -> bool {
        self.parallel.is_none()
            && rows * self.weights >= HOP_WORK
            && rayon::current_thread_index().is_none()
            && rayon::current_num_threads() > 1
    }

    /// The data's batch size and steps per epoch.
    fn batching(&self, train: &Dataset) -> (usize, usize) {
        let bs = self.config.batch_size.min(train.len().max(1));
        (bs, train.len().div_ceil(bs))
    }

    /// Trains one epoch (epoch `epochs_done + 1`): the model's random streams reseeded and
    /// the data shuffled from seeds derived from (run seed, epoch), then one [`step`] per
    /// batch; a completed epoch advances `epochs_done`. Does not evaluate or record history;
    /// [`fit`] does.
    ///
    /// [`step`]: Trainer::step
    /// [`fit`]: Trainer::fit
    ///
    /// # Errors
    /// If the data does not fit the loss (a classification loss on regression data).
    pub fn train_epoch(
        &mut self,
        train: &Dataset,
        observer: &mut dyn Observer,
    ) -> Result<EpochOutcome, String> {
        if matches!(train.targets, Targets::Values(_)) && self.config.loss.needs_classes() {
            return Err(format!(
                "the {} loss needs classes but this dataset is a regression task; use squared or absolute",
                self.config.loss
            ));
        }
        let epoch = self.epochs_done + 1;
        let (bs, steps_per_epoch) = self.batching(train);
        let seed = mix_seed(self.config.seed, 2 * epoch as u64);
        let seed = self.parallel.as_ref().map_or(seed, |p| p.rank_seed(seed));
        self.model().reseed(seed);
        self.model().reset_state();
        let mut rng = Rng::seed(mix_seed(self.config.seed, 2 * epoch as u64 + 1));
        observer.epoch_start(epoch, self.config.epochs, steps_per_epoch);
        let classification = matches!(train.targets, Targets::Classes { .. });
        let (mut loss_sum, mut right, mut seen) = (0.0f64, 0usize, 0usize);
        let mut batches = train.batches(bs, Some(&mut rng));
        // Steps that would each move onto a pool worker (see `step`) go there in runs of
        // up to `STEPS_RUN` of time, taking their batches there too: between two steps the
        // other workers, kept awake for the run, do not wait for this thread to gather the
        // next batch and wake them (that gap and the wake-up after it cost the MLP's epoch
        // about 15%). A last, smaller batch goes with the run. The observer hears of a run's
        // steps when the run is back, as it would have step by step.
        let hop = self.hops(bs);
        let mut done = Vec::new();
        let mut k = 0;
        while batches.len() > 0 {
            let shift = self.config.augment_shift;
            let mut run = |t: &mut Self, done: &mut Vec<(StepResult, usize)>| {
                let started = Instant::now();
                let mut last = started;
                for batch in batches.by_ref() {
                    let n = batch.x.shape()[0];
                    let mut bx = batch.x;
                    if let (Some(img), s) = (train.image_shape, shift) {
                        random_shift(&mut bx, img, s, &mut rng);
                    }
                    let r = t.step(bx, &batch.targets, steps_per_epoch);
                    let stop = r.is_err();
                    done.push((r, n));
                    if stop || !hop {
                        break;
                    }
                    // back before a step like the last one would end past STEPS_RUN
                    let now = Instant::now();
                    if (now - started) + (now - last) >= STEPS_RUN {
                        break;
                    }
                    last = now;
                }
            };
            if hop {
                // it records as this thread does: the worker may be inside a `no_grad`
                let disabled = is_grad_disabled();
                rayon::scope(|_| {
                    with_grad_state(disabled, || {
                        profile::alone_on_the_pool(|| run(self, &mut done))
                    })
                });
                #[cfg(test)]
                {
                    self.pool_runs += 1;
                }
            } else {
                run(self, &mut done);
            }
            for (r, n) in done.drain(..) {
                k += 1;
                let (lv, batch_right) = match r {
                    Ok(r) => r,
                    Err(loss) => {
                        let parameter = self
                            .model()
                            .params()
                            .into_iter()
                            .find(|(_, p)| !p.with_value(|v| v.all_finite()))
                            .map(|(n, _)| n);
                        return Ok(EpochOutcome::Diverged(Stop::Diverged {
                            epoch,
                            step: k,
                            parameter,
                            loss,
                        }));
                    }
                };
                loss_sum += lv * n as f64;
                right += batch_right;
                seen += n;
                let acc = if classification {
                    batch_right as f64 / n as f64
                } else {
                    f64::NAN
                };
                observer.step(lv, acc, n);
            }
        }
        self.epochs_done = epoch;
        Ok(EpochOutcome::Done(EpochStats {
            loss: loss_sum / seen.max(1) as f64,
            accuracy: if classification {
                right as f64 / seen.max(1) as f64
            } else {
                f64::NAN
            },
            lr: self.optimizer.lr(),
        }))
    }

    /// Trains until `config.epochs` epochs are done, early stopping fires, or the loss
    /// diverges. `on_epoch` runs after every completed epoch (to write a checkpoint); its
    /// error stops the run.
    ///
    /// # Errors
    /// If the data does not fit the loss (a classification loss on regression data), or
    /// `on_epoch` fails.
    pub fn fit(
        &mut self,
        train: &Dataset,
        val: Option<&Dataset>,
        observer: &mut dyn Observer,
        mut on_epoch: impl FnMut(&Trainer) -> Result<(), String>,
    ) -> Result<Stop, String> {
        while self.epochs_done < self.config.epochs {
            let t0 = Instant::now();
            let stats = match self.train_epoch(train, observer)? {
                EpochOutcome::Done(s) => s,
                EpochOutcome::Diverged(stop) => return Ok(stop),
            };
            let stop = self.end_epoch(stats, val, t0, observer);
            on_epoch(self)?;
            if let Some(s) = stop {
                return Ok(s);
            }
        }
        Ok(Stop::Completed)
    }

    /// After an epoch: validation, the schedule told, the history record, early stopping
    /// consulted (and the best weights restored at the end).
    fn end_epoch(
        &mut self,
        stats: EpochStats,
        val: Option<&Dataset>,
        t0: Instant,
        observer: &mut dyn Observer,
    ) -> Option<Stop> {
        let epoch = self.epochs_done;
        let validate = || match val {
            Some(v) if !v.is_empty() => {
                let e = evaluate(self.model(), v, self.config.loss);
                vec![e.loss, e.accuracy]
            }
            _ => vec![f64::NAN, f64::NAN],
        };
        let v = match &self.parallel {
            None => validate(),
            Some(p) => {
                p.average_buffers(self.model());
                p.from_root(validate)
            }
        };
        let (val_loss, val_accuracy) = (v[0], v[1]);
        if val_loss.is_finite() {
            if let Some((_, s)) = self.schedule.as_mut() {
                s.observe(val_loss);
            }
        }
        let record = EpochRecord {
            epoch,
            train_loss: stats.loss,
            train_accuracy: stats.accuracy,
            val_loss,
            val_accuracy,
            lr: stats.lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        observer.epoch_end(&record);
        self.history.epochs.push(record);
        let mut stop = None;
        if let (Some(patience), true) = (self.config.early_stopping, val_loss.is_finite()) {
            if self.best.as_ref().is_none_or(|(b, _, _)| val_loss < *b) {
                self.best = Some((val_loss, epoch, self.snapshot()));
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
                if self.bad_epochs >= patience {
                    let best_epoch = self.best.as_ref().map_or(epoch, |b| b.1);
                    stop = Some(Stop::EarlyStopped { best_epoch });
                }
            }
        }
        let last = stop.is_some() || self.epochs_done == self.config.epochs;
        if last && self.config.restore_best {
            if let Some((_, _, w)) = &self.best {
                self.restore_snapshot(&w.clone());
            }
        }
        stop
    }

    fn snapshot(&self) -> Vec<Tensor<f32>> {
        state_vars(self.model())
            .iter()
            .map(|(_, p)| p.value())
            .collect()
    }

    fn restore_snapshot(&self, w: &[Tensor<f32>]) {
        for ((_, p), t) in state_vars(self.model()).iter().zip(w) {
            p.set_value(t.clone());
        }
    }

    /// The model, the optimizer state and the training state as a checkpoint (with
    /// `metadata` added to the training keys).
    pub fn checkpoint(&self, mut metadata: BTreeMap<String, String>) -> Checkpoint {
        let mut tensors: Vec<(String, Tensor<f32>)> = state_vars(self.model())
            .into_iter()
            .map(|(n, p)| (n, p.value()))
            .collect();
        for (n, t) in self.optimizer.state() {
            tensors.push((format!("optimizer.{n}"), t));
        }
        if let Some((_, _, w)) = &self.best {
            let names: Vec<String> = state_vars(self.model())
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            for (n, t) in names.iter().zip(w) {
                tensors.push((format!("best.{n}"), t.clone()));
            }
        }
        let state = serde_json::json!({
            "epochs_done": self.epochs_done,
            "step": self.step,
            "bad_epochs": self.bad_epochs,
            "best_val_loss": self.best.as_ref().map(|b| b.0),
            "best_epoch": self.best.as_ref().map(|b| b.1),
            "config": self.config,
        });
        // what the outputs mean belongs to the model (eval reads it without training state)
        metadata.insert(
            "backprop.loss".into(),
            serde_json::json!(self.config.loss).to_string(),
        );
        metadata.insert("backprop.training".into(), state.to_string());
        metadata.insert("backprop.history".into(), self.history.to_json());
        Checkpoint { tensors, metadata }
    }

    /// Restores weights, optimizer state and training state from a checkpoint written by
    /// [`Trainer::checkpoint`], to continue the run.
    ///
    /// # Errors
    /// If the checkpoint does not match the model (missing tensor, other shape) or its
    /// training state is unreadable.
    pub fn resume(&mut self, ck: &Checkpoint) -> Result<(), String> {
        let state = ck
            .metadata
            .get("backprop.training")
            .ok_or("the checkpoint has no training state to resume from (it holds weights only, e.g. imported ones: fine-tune them with --init-from instead)")?;
        load_weights(self.model(), ck)?;
        let opt: Vec<(String, Tensor<f32>)> = ck
            .tensors
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix("optimizer.")
                    .map(|s| (s.to_string(), t.clone()))
            })
            .collect();
        self.optimizer.load_state(&opt)?;
        let state: serde_json::Value = serde_json::from_str(state)
            .map_err(|e| format!("the checkpoint's training state is unreadable: {e}"))?;
        let get = |k: &str| state.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        self.epochs_done = get("epochs_done");
        self.step = get("step");
        self.bad_epochs = get("bad_epochs");
        if let (Some(v), Some(e)) = (
            state.get("best_val_loss").and_then(|v| v.as_f64()),
            state.get("best_epoch").and_then(|v| v.as_u64()),
        ) {
            let names: Vec<String> = state_vars(self.model())
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let w: Option<Vec<Tensor<f32>>> = names
                .iter()
                .map(|n| ck.get(&format!("best.{n}")).cloned())
                .collect();
            if let Some(w) = w {
                self.best = Some((v, e as usize, w));
            }
        }
        if let Some(h) = ck.metadata.get("backprop.history") {
            self.history = History::from_json(h)?;
        }
        Ok(())
    }
}

/// Everything a checkpoint holds of a model: its parameters, then its buffers.
fn state_vars(model: &dyn Module<f32>) -> Vec<(String, Var<f32>)> {
    let mut v = model.params();
    v.extend(model.buffers());
    v
}

/// Copies a checkpoint's tensors into a model's parameters and buffers.
///
/// # Errors
/// If a parameter is missing from the checkpoint or has another shape.
pub fn load_weights(model: &dyn Module<f32>, ck: &Checkpoint) -> Result<(), String> {
    for (name, p) in state_vars(model) {
        let t = ck
            .get(&name)
            .ok_or_else(|| format!("the checkpoint has no tensor {name:?} that the model needs"))?;
        if t.shape() != p.shape().as_slice() {
            return Err(format!(
                "tensor {name:?} has shape {:?} in the checkpoint but {:?} in the model",
                t.shape(),
                p.shape()
            ));
        }
        p.set_value(t.clone());
    }
    Ok(())
}

/// Rows from which [`predict_outputs`] splits a batch in two halves.
pub const SPLIT_ROWS: usize = 128;

/// The model's raw outputs for a batch of inputs (evaluation mode, nothing recorded):
/// regression predictions, or class logits.
///
/// A batch of at least [`SPLIT_ROWS`] rows, for a model whose samples are independent in
/// evaluation ([`Module::sample_independent_in_eval`]), goes as two halves side by side on
/// the thread pool, each through the whole network on one thread: one hand-off to the pool
/// per call instead of one per parallel kernel. The split does not depend on the thread
/// count, so neither does the result. Called from inside the pool, the batch goes whole.
///
/// One sample runs inside [`team::scope`](backprop_tensor::team::scope): its large products
/// split in two with the partner thread (a prediction's latency). [`evaluate`] and
/// [`regression_scores`] score their batches without it, so scoring a data set during
/// training never starts the partner, even for a last batch of one sample.
pub fn predict_outputs(model: &dyn Module<f32>, x: &Tensor<f32>) -> Tensor<f32> {
    if x.shape().first() == Some(&1) {
        // wake the partner while the first layers run
        return backprop_tensor::team::scope(|| {
            backprop_tensor::team::wake();
            batch_outputs(model, x)
        });
    }
    batch_outputs(model, x)
}

/// [`predict_outputs`] without the partner thread.
fn batch_outputs(model: &dyn Module<f32>, x: &Tensor<f32>) -> Tensor<f32> {
    let whole = |x: Tensor<f32>| no_grad(|| model.forward(&Var::constant(x), Mode::Eval).value());
    let n = x.shape().first().copied().unwrap_or(0);
    if n < SPLIT_ROWS
        || x.rank() < 2
        || rayon::current_thread_index().is_some()
        || !model.sample_independent_in_eval()
    {
        return whole(x.clone());
    }
    let h = n / 2;
    let (a, b) = rayon::join(|| whole(x.narrow(0, 0, h)), || whole(x.narrow(0, h, n - h)));
    if a.rank() == 0 || a.shape()[0] != h || b.shape()[0] != n - h {
        // an output without one row per sample: the batch goes whole
        return whole(x.clone());
    }
    Tensor::concat(&[&a, &b], 0)
}

/// Regression scores of `model` on `data` in the target's units: `unscale` maps a model
/// output (and a stored target) back to them, e.g. [`TableSchema::unscale_target`].
/// Scores the first output column.
///
/// [`TableSchema::unscale_target`]: backprop_data::TableSchema::unscale_target
pub fn regression_scores(
    model: &dyn Module<f32>,
    data: &Dataset,
    unscale: impl Fn(f64) -> f64,
) -> Option<RegressionScores> {
    let Targets::Values(y) = &data.targets else {
        return None;
    };
    let out = y.shape()[1];
    let mut pred = Vec::with_capacity(data.len());
    for b in data.batches(1000, None) {
        let o = batch_outputs(model, &b.x);
        pred.extend(o.data().chunks_exact(out).map(|r| unscale(r[0] as f64)));
    }
    let truth: Vec<f64> = y
        .data()
        .chunks_exact(out)
        .map(|r| unscale(r[0] as f64))
        .collect();
    Some(RegressionScores::new(&pred, &truth))
}

/// Predicted class probabilities for a batch of inputs (softmax of the outputs).
pub fn predict_proba(model: &dyn Module<f32>, x: &Tensor<f32>) -> Tensor<f32> {
    predict_outputs(model, x).softmax(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ModelSpec;

    #[test]
    fn predictions_split_in_halves_are_each_halfs_own_outputs() {
        let model = ModelSpec::cnn(3)
            .build_shaped::<f32>(64, Some([1, 8, 8]), Some(3), 2)
            .unwrap()
            .model;
        let mut rng = backprop_tensor::Rng::seed(9);
        let n = SPLIT_ROWS + 3;
        let x = Tensor::<f32>::rand_normal(&[n, 64], 0.0, 1.0, &mut rng);
        // batch norm in evaluation: the halves may go apart
        assert!(!model.sample_independent() && model.sample_independent_in_eval());
        let fwd = |x: Tensor<f32>| no_grad(|| model.forward(&Var::constant(x), Mode::Eval).value());
        let split = predict_outputs(&model, &x);
        // each half computed alone on one thread, as the split computes it
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let h = n / 2;
        let halves = one.install(|| {
            let (a, b) = (fwd(x.narrow(0, 0, h)), fwd(x.narrow(0, h, n - h)));
            [a.to_vec(), b.to_vec()].concat()
        });
        assert_eq!(split.shape(), [n, 3]);
        assert_eq!(split.to_vec(), halves, "not each half's own outputs");
        let whole = fwd(x.clone());
        for (a, b) in split.data().iter().zip(whole.data()) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} against {b}");
        }
        // below the split size, or from inside the pool, the batch goes whole
        let small = x.narrow(0, 0, SPLIT_ROWS - 1);
        assert_eq!(
            predict_outputs(&model, &small).to_vec(),
            fwd(small.clone()).to_vec()
        );
        let inside = one.install(|| predict_outputs(&model, &x));
        assert_eq!(inside.to_vec(), one.install(|| fwd(x.clone())).to_vec());
    }

    /// Records the pool worker each step's backward pass ran on.
    struct WhereItRan(std::sync::Arc<std::sync::Mutex<Vec<Option<usize>>>>);

    impl StepProbe for WhereItRan {
        fn after_backward(
            &mut self,
            _: usize,
            _: usize,
            _: &dyn Module<f32>,
            _: &Grads<f32>,
            _: f64,
        ) {
            self.0.lock().unwrap().push(rayon::current_thread_index());
        }
        fn after_update(&mut self, _: usize, _: &dyn Module<f32>) {}
    }

    /// [`WhereItRan`] that also makes each step last at least 100 µs.
    struct SlowWhere(WhereItRan);

    impl StepProbe for SlowWhere {
        fn after_backward(
            &mut self,
            step: usize,
            steps: usize,
            model: &dyn Module<f32>,
            grads: &Grads<f32>,
            lr: f64,
        ) {
            self.0.after_backward(step, steps, model, grads, lr);
        }
        fn after_update(&mut self, _: usize, _: &dyn Module<f32>) {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    #[test]
    fn a_step_from_outside_the_pool_runs_on_a_worker_and_gives_the_same_update() {
        // 64 rows × 16,771 weights: past HOP_WORK
        let spec = ModelSpec::mlp(&[128, 64], "tanh", 0.0, 3).unwrap();
        let x = Tensor::<f32>::rand_normal(&[64, 64], 0.0, 1.0, &mut Rng::seed(3));
        let targets = BatchTargets::Classes((0..64).map(|i| (i * 5) % 3).collect());
        let train = |inside: Option<&rayon::ThreadPool>| {
            let model = spec.build::<f32>(64, Some(3), 4).unwrap().model;
            let mut t = Trainer::new(&model, TrainConfig::default()).unwrap();
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            t.set_probe(Some(Box::new(WhereItRan(seen.clone()))));
            for _ in 0..3 {
                match inside {
                    Some(pool) => pool.install(|| t.step(x.clone(), &targets, 1)).unwrap(),
                    None => t.step(x.clone(), &targets, 1).unwrap(),
                };
            }
            drop(t);
            let params: Vec<f32> = model
                .params()
                .into_iter()
                .flat_map(|(_, p)| p.value().to_vec())
                .collect();
            let seen = seen.lock().unwrap().clone();
            (params, seen)
        };
        let (outside, seen) = train(None);
        // this test's thread is not a worker: with a pool of two threads or more, the step
        // went to one of them
        let hops = rayon::current_num_threads() > 1;
        assert!(rayon::current_thread_index().is_none());
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|w| w.is_some() == hops), "{seen:?}");
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (inside, seen) = train(Some(&one));
        assert_eq!(seen, vec![Some(0); 3]);
        // the same bits, whichever thread ran the step and however many the pool has. (Run
        // with the crate's other tests, this caught a step taken by a worker that was inside
        // another test's `no_grad`, and so recorded nothing: a step now records as the
        // thread that called it.)
        assert_eq!(outside, inside);
        // a small step stays on the calling thread
        let small = ModelSpec::mlp(&[8], "tanh", 0.0, 3)
            .unwrap()
            .build::<f32>(64, Some(3), 4)
            .unwrap()
            .model;
        let mut t = Trainer::new(&small, TrainConfig::default()).unwrap();
        assert!(t.weights * 64 < HOP_WORK);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        t.set_probe(Some(Box::new(WhereItRan(seen.clone()))));
        t.step(x.clone(), &targets, 1).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![None]);
    }

    /// Records what an observer hears.
    #[derive(Default)]
    struct Heard(Vec<(u64, u64, usize)>);

    impl Observer for Heard {
        fn step(&mut self, loss: f64, accuracy: f64, samples: usize) {
            self.0.push((loss.to_bits(), accuracy.to_bits(), samples));
        }
    }

    #[test]
    fn an_epoch_takes_its_steps_to_the_pool_in_runs_with_the_same_results() {
        // 64 rows × 16,771 weights: past HOP_WORK; 300 full batches and one of 17 rows
        let spec = ModelSpec::mlp(&[128, 64], "tanh", 0.0, 3).unwrap();
        let n = 64 * 300 + 17;
        let data = Dataset {
            name: "runs".into(),
            x: Tensor::<f32>::rand_normal(&[n, 64], 0.0, 1.0, &mut Rng::seed(5)),
            targets: Targets::Classes {
                labels: (0..n).map(|i| (i * 7) % 3).collect(),
                names: vec!["a".into(), "b".into(), "c".into()],
            },
            image_shape: None,
        };
        // epoch 1 trains; from epoch 2 the rate is 1e298, infinite in f32, and the run diverges
        let config = TrainConfig {
            epochs: 3,
            lr: 0.01,
            schedule: backprop_optim::ScheduleKind::Step {
                epochs: 1,
                gamma: 1e300,
            },
            ..TrainConfig::default()
        };
        let train = |inside: Option<&rayon::ThreadPool>| {
            let model = spec.build::<f32>(64, Some(3), 4).unwrap().model;
            let mut t = Trainer::new(&model, config.clone()).unwrap();
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            // at least 30 ms an epoch, so at least two runs of 20 ms
            t.set_probe(Some(Box::new(SlowWhere(WhereItRan(seen.clone())))));
            let mut heard = Heard::default();
            let epoch = |t: &mut Trainer, heard: &mut Heard| match inside {
                Some(pool) => pool.install(|| t.train_epoch(&data, heard)).unwrap(),
                None => t.train_epoch(&data, heard).unwrap(),
            };
            let first = epoch(&mut t, &mut heard);
            assert!(matches!(first, EpochOutcome::Done(_)));
            let params: Vec<f32> = model
                .params()
                .into_iter()
                .flat_map(|(_, p)| p.value().to_vec())
                .collect();
            let second = epoch(&mut t, &mut heard);
            let EpochOutcome::Diverged(Stop::Diverged { epoch, step, .. }) = second else {
                panic!("expected divergence in epoch 2");
            };
            let seen = seen.lock().unwrap().clone();
            (params, heard.0, (epoch, step), seen, t.pool_runs)
        };
        let (outside, heard, diverged, seen, runs) = train(None);
        // every batch's step was heard, in order, with its size
        assert_eq!(
            heard.len(),
            301 + 1,
            "epoch 1's steps, then epoch 2's before the one whose loss was NaN"
        );
        assert_eq!(heard[..301].iter().map(|h| h.2).sum::<usize>(), n);
        assert_eq!((heard[299].2, heard[300].2), (64, 17));
        assert_eq!(diverged, (2, 2), "step 1 of epoch 2 broke the weights");
        if rayon::current_num_threads() > 1 {
            // each step ran on a worker, and the steps went there in runs: more than one
            // in epoch 1 (30 ms at least), then epoch 2's; not one run per step
            assert!(seen.iter().all(Option::is_some), "{seen:?}");
            assert!(runs > 2 && runs <= 300, "{runs} runs");
        }
        // the same as step after step on the calling thread, inside a pool
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (inside, heard_inside, diverged_inside, seen, runs) = train(Some(&one));
        assert_eq!(runs, 0);
        assert!(seen.iter().all(|w| *w == Some(0)));
        assert_eq!(outside, inside);
        assert_eq!(heard, heard_inside);
        assert_eq!(diverged, diverged_inside);
    }

    #[test]
    fn a_batch_split_in_halves_gives_the_whole_batch_gradient() {
        let model = ModelSpec::mlp(&[16, 8], "tanh", 0.0, 3)
            .unwrap()
            .build::<f32>(5, Some(3), 4)
            .unwrap()
            .model;
        let mut t = Trainer::new(&model, TrainConfig::default()).unwrap();
        assert!(t.shardable);
        let x = Tensor::<f32>::rand_normal(&[45, 5], 0.0, 1.0, &mut Rng::seed(9));
        let labels: Vec<usize> = (0..45).map(|i| (i * 7) % 3).collect();
        let targets = BatchTargets::Classes(labels);
        let (l2, r2, g2) = t.forward_backward(x.clone(), &targets);
        assert!(matches!(g2, StepGrads::Halves(..)));
        let g2 = g2.whole();
        t.shardable = false;
        let (l1, r1, g1) = t.forward_backward(x, &targets);
        let g1 = g1.whole();
        assert!((l1 - l2).abs() < 1e-6 * l1.abs().max(1.0), "{l1} vs {l2}");
        assert_eq!(r1, r2);
        assert_eq!(g1.len(), g2.len());
        for (id, a) in g1.iter() {
            let b = g2.get_id(*id).unwrap();
            for (x, y) in a.data().iter().zip(b.data()) {
                assert!((x - y).abs() <= 1e-5 * x.abs().max(1e-2), "{x} vs {y}");
            }
        }
        // dropout and batch norm keep the batch whole
        let with_dropout = ModelSpec::mlp(&[16], "relu", 0.5, 3)
            .unwrap()
            .build::<f32>(5, Some(3), 4)
            .unwrap()
            .model;
        assert!(
            !Trainer::new(&with_dropout, TrainConfig::default())
                .unwrap()
                .shardable
        );
    }
}
