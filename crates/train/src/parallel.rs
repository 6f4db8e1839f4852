//! Data parallelism: one training run spread over several processes ("ranks").
//!
//! The design is Horovod's synchronous data parallelism, on any transport that offers the
//! [`Collective`] operations (the `backprop` binary implements them on MPI behind its `mpi`
//! feature; tests implement them with threads):
//!
//! - **Start**: rank 0's whole training state (weights, buffers, optimizer moments, epoch
//!   and step counters, history) is broadcast as checkpoint bytes ([`Trainer::distribute`]),
//!   so every rank starts identical, whether fresh or resumed, whatever the rank count
//!   of the run that wrote the checkpoint.
//! - **Step**: every rank draws the same global batch (the shuffle and augmentation seeds
//!   do not depend on the rank) and computes the loss and gradients of its contiguous shard,
//!   rows `⌊r·n/N⌋ .. ⌊(r+1)·n/N⌋`. Its gradients, scaled by its share of the batch, are
//!   flattened in the model's parameter order into one buffer and summed over the ranks in
//!   fixed buckets of [`BUCKET`] elements, always in the same order; every rank then clips
//!   and steps its optimizer on the same sum, so the weights stay identical without being
//!   sent again. The batch's loss and accuracy are summed the same way (in f64).
//! - **Equivalence**: a rank computes its shard whole (no further split), and the
//!   single-process trainer computes a batch of a sample-independent model as two halves
//!   blended `wa·a + wb·b`; so 2 ranks × 32 samples perform exactly the arithmetic of one
//!   process × 64 and give bit-identical weights (the integration test checks this).
//! - **Batch norm**: batch statistics are per rank (each normalises over its own shard, as
//!   PyTorch's DistributedDataParallel does without SyncBatchNorm); the running mean and
//!   variance buffers are averaged over the ranks at the end of every epoch, before
//!   evaluation and the checkpoint. Dropout draws a different stream on every rank.
//! - **Epoch end**: rank 0 alone evaluates the validation set and broadcasts the result, so
//!   schedules that watch the validation loss and early stopping decide alike everywhere.
//!   The caller lets rank 0 alone print, write checkpoints and history.
//!
//! `batch_size` is the global batch: a run keeps its meaning (and its checkpoint resumes
//! exactly) on any number of ranks.

use std::collections::BTreeMap;

use backprop_autograd::Grads;
use backprop_data::BatchTargets;
use backprop_nn::{mix_seed, Module};
use backprop_tensor::Tensor;

use crate::checkpoint::Checkpoint;
use crate::trainer::{slice_targets, Trainer};

/// Elements per all-reduce: gradients are summed in contiguous buckets of this size (64 MiB
/// of f32, Horovod's fusion-buffer size), so one large model does not need one message the
/// size of all its gradients, and small models take one message per step.
pub const BUCKET: usize = 1 << 24;

/// The collective operations a data-parallel run needs. Every rank calls them in the same
/// order with buffers of the same length, from the thread that runs its trainer.
pub trait Collective: Send {
    /// This process's index, 0-based.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Sums `buf` elementwise over all ranks in place; every rank receives the same bits,
    /// and the same inputs give the same result in every run.
    fn all_reduce_sum(&self, buf: &mut [f32]);
    /// As [`Collective::all_reduce_sum`], in f64.
    fn all_reduce_sum_f64(&self, buf: &mut [f64]);
    /// Replaces `bytes` on every rank by rank 0's bytes (of any length).
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>);
}

/// A trainer's link to its peers: the transport and the rules above.
pub struct DataParallel {
    comm: Box<dyn Collective>,
}

impl DataParallel {
    /// This rank's index.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.comm.size()
    }

    /// Rows `start..start + len` of a global batch of `n` that this rank computes.
    pub fn shard(&self, n: usize) -> (usize, usize) {
        let (r, s) = (self.rank(), self.size());
        let start = r * n / s;
        (start, (r + 1) * n / s - start)
    }

    /// The seed of this rank's random streams (dropout) for a run seed: rank 0 keeps it.
    pub(crate) fn rank_seed(&self, seed: u64) -> u64 {
        match self.rank() {
            0 => seed,
            r => mix_seed(seed, r as u64),
        }
    }

    /// One step's loss, right count and gradients of the whole global batch: `run` computes
    /// this rank's shard, the results are summed over the ranks.
    pub(crate) fn forward_backward(
        &self,
        model: &dyn Module<f32>,
        x: Tensor<f32>,
        targets: &BatchTargets,
        run: impl FnOnce(Tensor<f32>, &BatchTargets) -> (f64, usize, Grads<f32>),
    ) -> (f64, usize, Grads<f32>) {
        let n = x.shape()[0];
        let (start, len) = self.shard(n);
        let (loss, right, grads) = if len == 0 {
            (0.0, 0, Grads::new())
        } else {
            run(x.narrow(0, start, len), &slice_targets(targets, start, len))
        };
        // the same expression as the single-process blend of two halves
        let w = len as f32 / n as f32;
        self.reduce(model, &grads, w, f64::from(w) * loss, right)
    }

    /// Sums `w·grads` (flattened in parameter order), the weighted loss and the right count
    /// over the ranks. A parameter that no rank has a gradient for stays without one, as
    /// it would in a single process.
    fn reduce(
        &self,
        model: &dyn Module<f32>,
        grads: &Grads<f32>,
        w: f32,
        loss: f64,
        right: usize,
    ) -> (f64, usize, Grads<f32>) {
        let params = model.params();
        let total: usize = params
            .iter()
            .map(|(_, p)| p.with_value(|v| v.numel()))
            .sum();
        let mut flat = Vec::with_capacity(total);
        let mut stats = vec![loss, right as f64];
        for (_, p) in &params {
            match grads.get(p) {
                Some(g) => {
                    flat.extend(g.data().iter().map(|&x| w * x));
                    stats.push(1.0);
                }
                None => {
                    flat.resize(flat.len() + p.with_value(|v| v.numel()), 0.0);
                    stats.push(0.0);
                }
            }
        }
        for bucket in flat.chunks_mut(BUCKET) {
            self.comm.all_reduce_sum(bucket);
        }
        self.comm.all_reduce_sum_f64(&mut stats);
        let mut out = Grads::new();
        let mut at = 0;
        for (k, (_, p)) in params.iter().enumerate() {
            let shape = p.shape();
            let len: usize = shape.iter().product();
            if stats[2 + k] > 0.0 {
                out.insert(p, Tensor::from_vec(flat[at..at + len].to_vec(), &shape));
            }
            at += len;
        }
        (stats[0], stats[1].round() as usize, out)
    }

    /// Averages the model's buffers (batch norm's running statistics) over the ranks, in
    /// f64 so that buffers equal on every rank come back unchanged.
    pub(crate) fn average_buffers(&self, model: &dyn Module<f32>) {
        let buffers = model.buffers();
        if buffers.is_empty() || self.size() == 1 {
            return;
        }
        let mut flat: Vec<f64> = buffers
            .iter()
            .flat_map(|(_, b)| {
                b.value()
                    .data()
                    .iter()
                    .map(|&x| f64::from(x))
                    .collect::<Vec<_>>()
            })
            .collect();
        self.comm.all_reduce_sum_f64(&mut flat);
        let s = self.size() as f64;
        let mut at = 0;
        for (_, b) in &buffers {
            let shape = b.shape();
            let len: usize = shape.iter().product();
            let v = flat[at..at + len].iter().map(|&x| (x / s) as f32).collect();
            b.set_value(Tensor::from_vec(v, &shape));
            at += len;
        }
    }

    /// `f()` computed on rank 0 alone and received by every rank.
    pub(crate) fn from_root(&self, f: impl FnOnce() -> Vec<f64>) -> Vec<f64> {
        let mut bytes = if self.rank() == 0 {
            f().iter().flat_map(|x| x.to_le_bytes()).collect()
        } else {
            Vec::new()
        };
        self.comm.broadcast_bytes(&mut bytes);
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    }
}

impl Trainer<'_> {
    /// Makes this trainer one rank of a data-parallel run over `comm` (see the
    /// [module docs](crate::parallel)): rank 0's whole training state (weights, optimizer,
    /// counters, history; loaded from a checkpoint or fresh) is sent to every rank, and
    /// from now on every step computes this rank's shard and sums the gradients over the
    /// ranks. All ranks must call it, then train with the same data and configuration.
    ///
    /// # Errors
    /// If rank 0's state does not fit this rank's model (the ranks were given other
    /// models).
    pub fn distribute(&mut self, comm: Box<dyn Collective>) -> Result<(), String> {
        let mut bytes = if comm.rank() == 0 {
            self.checkpoint(BTreeMap::new()).to_bytes()
        } else {
            Vec::new()
        };
        comm.broadcast_bytes(&mut bytes);
        if comm.rank() != 0 {
            let ck = Checkpoint::from_bytes(&bytes)
                .map_err(|e| format!("rank 0's training state: {e}"))?;
            self.resume(&ck)
                .map_err(|e| format!("rank 0's training state does not fit: {e}"))?;
        }
        self.set_parallel(DataParallel { comm });
        Ok(())
    }
}
