//! Data-parallel training over an in-process transport (threads standing for ranks): the
//! same rules the MPI build runs, checked without MPI. `tests/mpi.rs` at the workspace root
//! runs them over MPI.

use std::sync::{Arc, Barrier, Mutex};

use backprop_data::synthetic;
use backprop_nn::Module;
use backprop_train::{
    Collective, ModelSpec, OptimizerKind, Quiet, ScheduleKind, Stop, TrainConfig, Trainer,
};

/// Ranks as threads: each posts its buffer, all sum the posts in rank order.
struct Threads {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

struct Shared {
    barrier: Barrier,
    f32s: Mutex<Vec<Vec<f32>>>,
    f64s: Mutex<Vec<Vec<f64>>>,
    bytes: Mutex<Vec<u8>>,
}

impl Threads {
    fn group(size: usize) -> Vec<Threads> {
        let shared = Arc::new(Shared {
            barrier: Barrier::new(size),
            f32s: Mutex::new(vec![Vec::new(); size]),
            f64s: Mutex::new(vec![Vec::new(); size]),
            bytes: Mutex::new(Vec::new()),
        });
        (0..size)
            .map(|rank| Threads {
                rank,
                size,
                shared: shared.clone(),
            })
            .collect()
    }
}

fn sum_posts<T: Copy + std::ops::Add<Output = T>>(
    me: &Threads,
    slots: &Mutex<Vec<Vec<T>>>,
    buf: &mut [T],
) {
    slots.lock().unwrap()[me.rank] = buf.to_vec();
    me.shared.barrier.wait();
    {
        let posts = slots.lock().unwrap();
        for (i, x) in buf.iter_mut().enumerate() {
            *x = posts[0][i];
            for p in &posts[1..] {
                *x = *x + p[i];
            }
        }
    }
    me.shared.barrier.wait();
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) {
        sum_posts(self, &self.shared.f32s, buf);
    }
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
        sum_posts(self, &self.shared.f64s, buf);
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
        if self.rank == 0 {
            *self.shared.bytes.lock().unwrap() = bytes.clone();
        }
        self.shared.barrier.wait();
        if self.rank != 0 {
            *bytes = self.shared.bytes.lock().unwrap().clone();
        }
        self.shared.barrier.wait();
    }
}

fn config(batch_size: usize) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size,
        optimizer: OptimizerKind::Sgd,
        lr: 0.05,
        momentum: 0.9,
        seed: 5,
        schedule: ScheduleKind::Cosine,
        ..Default::default()
    }
}

/// Trains the spec on a spiral in one process, and on `ranks` threads; returns the
/// weights of each and the ranks' histories' last training loss.
fn train(
    spec: &ModelSpec,
    ranks: usize,
    batch: usize,
    seed_rank0: u64,
) -> Vec<(Vec<Vec<f32>>, f64)> {
    let data = synthetic("spiral", 640, 0.1, 3).unwrap();
    let (train, val) = data.split(64, 3).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = Threads::group(ranks)
            .into_iter()
            .map(|comm| {
                let (train, val) = (&train, &val);
                s.spawn(move || {
                    // ranks other than 0 start from other weights: distribute sends rank 0's
                    let seed = if comm.rank == 0 { seed_rank0 } else { 99 };
                    let model = spec.build::<f32>(2, Some(2), seed).unwrap().model;
                    let mut t = Trainer::new(&model, config(batch)).unwrap();
                    t.distribute(Box::new(comm)).unwrap();
                    assert_eq!(
                        t.fit(train, Some(val), &mut Quiet, |_| Ok(())).unwrap(),
                        Stop::Completed
                    );
                    let w = model
                        .params()
                        .iter()
                        .map(|(_, p)| p.value().to_vec())
                        .collect();
                    (w, t.history.epochs.last().unwrap().train_loss)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn single(spec: &ModelSpec, batch: usize) -> (Vec<Vec<f32>>, f64) {
    let data = synthetic("spiral", 640, 0.1, 3).unwrap();
    let (train, val) = data.split(64, 3).unwrap();
    let model = spec.build::<f32>(2, Some(2), 1).unwrap().model;
    let mut t = Trainer::new(&model, config(batch)).unwrap();
    t.fit(&train, Some(&val), &mut Quiet, |_| Ok(())).unwrap();
    let w = model
        .params()
        .iter()
        .map(|(_, p)| p.value().to_vec())
        .collect();
    (w, t.history.epochs.last().unwrap().train_loss)
}

#[test]
fn two_ranks_of_half_a_batch_give_the_weights_of_one_process_bit_for_bit() {
    let spec = ModelSpec::mlp(&[32, 16], "tanh", 0.0, 2).unwrap();
    // 576 training samples: 9 global batches of 64 per epoch, 27 steps
    let (w1, loss1) = single(&spec, 64);
    let ranks = train(&spec, 2, 64, 1);
    for (w, loss) in &ranks {
        assert_eq!(w, &w1, "a rank's weights differ from the single process's");
        assert_eq!(*loss, loss1);
    }
}

#[test]
fn three_ranks_of_uneven_shards_stay_identical_and_close_to_one_process() {
    // a batch of 50 splits 16/17/17; the sum runs in another order than one process's
    let spec = ModelSpec::mlp(&[16], "relu", 0.0, 2).unwrap();
    let (w1, _) = single(&spec, 50);
    let ranks = train(&spec, 3, 50, 1);
    assert_eq!(ranks[0].0, ranks[1].0);
    assert_eq!(ranks[0].0, ranks[2].0);
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (a, b) in ranks[0].0.iter().flatten().zip(w1.iter().flatten()) {
        num += f64::from(a - b).powi(2);
        den += f64::from(*b).powi(2);
    }
    assert!(
        (num / den).sqrt() < 1e-4,
        "relative difference {}",
        (num / den).sqrt()
    );
}

#[test]
fn a_batch_norm_model_keeps_every_ranks_running_statistics_equal() {
    let spec = ModelSpec::from_json(
        r#"{"layers": [{"type": "linear", "out": 16}, {"type": "batch_norm"}, {"type": "relu"},
        {"type": "dropout", "p": 0.1}, {"type": "linear", "out": 2}]}"#,
    )
    .unwrap();
    let data = synthetic("spiral", 640, 0.1, 3).unwrap();
    let (train, val) = data.split(64, 3).unwrap();
    let results: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = Threads::group(2)
            .into_iter()
            .map(|comm| {
                let (spec, train, val) = (&spec, &train, &val);
                s.spawn(move || {
                    let model = spec.build::<f32>(2, Some(2), 1).unwrap().model;
                    let mut t = Trainer::new(&model, config(64)).unwrap();
                    t.distribute(Box::new(comm)).unwrap();
                    t.fit(train, Some(val), &mut Quiet, |_| Ok(())).unwrap();
                    let mut v = model.params();
                    v.extend(model.buffers());
                    v.iter().map(|(_, p)| p.value().to_vec()).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results[0], results[1]);
}
