//! Trainer behaviour: early stopping, exact resume, the divergence guard, atomic
//! checkpoints, CSV training, and spec validation.

use std::collections::BTreeMap;
use std::io::Write;

use backprop_data::{load_csv, synthetic, CsvOptions, LabelColumn};
use backprop_nn::Module;
use backprop_train::checkpoint::atomic_write;
use backprop_train::{
    evaluate, Checkpoint, LossKind, ModelSpec, OptimizerKind, Quiet, ScheduleKind, Stop,
    TrainConfig, Trainer,
};

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-train-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn weights(m: &backprop_nn::Sequential<f32>) -> Vec<Vec<f32>> {
    m.params().iter().map(|(_, p)| p.value().to_vec()).collect()
}

#[test]
fn resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one() {
    let data = synthetic("spiral", 300, 0.1, 3).unwrap();
    let (train, val) = data.split(60, 3).unwrap();
    let spec = ModelSpec::from_json(r#"{"layers": [{"type": "linear", "out": 16}, {"type": "tanh"}, {"type": "dropout", "p": 0.2},
        {"type": "linear", "out": 2}]}"#).unwrap();
    let config = TrainConfig {
        epochs: 6,
        batch_size: 16,
        optimizer: OptimizerKind::Adam,
        lr: 0.01,
        momentum: 0.0,
        seed: 11,
        schedule: ScheduleKind::Cosine,
        ..Default::default()
    };

    let a = spec.build::<f32>(2, Some(2), 11).unwrap().model;
    let mut ta = Trainer::new(&a, config.clone()).unwrap();
    assert_eq!(
        ta.fit(&train, Some(&val), &mut Quiet, |_| Ok(())).unwrap(),
        Stop::Completed
    );

    // the same run, interrupted after 3 epochs and continued from the checkpoint file
    let dir = tmpdir("resume");
    let path = dir.join("model.safetensors");
    let b = spec.build::<f32>(2, Some(2), 11).unwrap().model;
    let mut tb = Trainer::new(&b, config.clone()).unwrap();
    let r = tb.fit(&train, Some(&val), &mut Quiet, |t| {
        t.checkpoint(BTreeMap::new()).save(&path)?;
        if t.epochs_done == 3 {
            Err("interrupted".into())
        } else {
            Ok(())
        }
    });
    assert_eq!(r, Err("interrupted".to_string()));
    drop(tb);
    let c = spec.build::<f32>(2, Some(2), 999).unwrap().model; // other initial weights: all must come from the file
    let mut tc = Trainer::new(&c, config.clone()).unwrap();
    tc.resume(&Checkpoint::load(&path).unwrap()).unwrap();
    assert_eq!(tc.epochs_done, 3);
    tc.fit(&train, Some(&val), &mut Quiet, |_| Ok(())).unwrap();
    assert_eq!(
        weights(&a),
        weights(&c),
        "resumed weights differ from the uninterrupted run"
    );
    assert_eq!(ta.history.epochs.len(), tc.history.epochs.len());
    assert_eq!(
        ta.history.epochs.last().unwrap().val_loss,
        tc.history.epochs.last().unwrap().val_loss
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn early_stopping_stops_and_restores_the_best_epoch() {
    // 40 noisy points and a wide network with a large step: validation loss soon rises
    let data = synthetic("gauss", 80, 1.5, 5).unwrap();
    let (train, val) = data.split(40, 5).unwrap();
    let spec = ModelSpec::mlp(&[64, 64], "relu", 0.0, 2).unwrap();
    let m = spec.build::<f32>(2, Some(2), 5).unwrap().model;
    let config = TrainConfig {
        epochs: 300,
        batch_size: 8,
        optimizer: OptimizerKind::Adam,
        lr: 0.01,
        momentum: 0.0,
        early_stopping: Some(5),
        seed: 5,
        ..Default::default()
    };
    let mut t = Trainer::new(&m, config).unwrap();
    let stop = t.fit(&train, Some(&val), &mut Quiet, |_| Ok(())).unwrap();
    let Stop::EarlyStopped { best_epoch } = stop else {
        panic!("expected early stopping, got {stop:?}")
    };
    let h = &t.history.epochs;
    assert!(h.len() < 300);
    assert_eq!(
        h.len(),
        best_epoch + 5,
        "stops after 5 epochs without improvement"
    );
    let best = h[best_epoch - 1].val_loss;
    assert!(h.iter().all(|r| r.val_loss >= best));
    // the model holds the best epoch's weights again
    let e = evaluate(&m, &val, LossKind::CrossEntropy);
    assert!(
        (e.loss - best).abs() < 1e-6,
        "restored val loss {} vs best {best}",
        e.loss
    );
}

#[test]
fn divergence_stops_the_run_names_the_parameter_and_keeps_the_last_good_checkpoint() {
    let data = synthetic("circle", 200, 0.1, 1).unwrap();
    let spec = ModelSpec::mlp(&[8], "relu", 0.0, 2).unwrap();
    let m = spec.build::<f32>(2, Some(2), 1).unwrap().model;
    // epoch 1 trains normally; from epoch 2 the rate is 1e300 (infinite in f32), so the
    // first update of epoch 2 makes the weights non-finite and the next loss is NaN
    let config = TrainConfig {
        epochs: 5,
        batch_size: 20,
        lr: 0.05,
        loss: LossKind::Squared,
        schedule: ScheduleKind::Step {
            epochs: 1,
            gamma: 1e300,
        },
        ..Default::default()
    };
    let dir = tmpdir("diverge");
    let path = dir.join("model.safetensors");
    let mut t = Trainer::new(&m, config).unwrap();
    let stop = t
        .fit(&data, None, &mut Quiet, |t| {
            t.checkpoint(BTreeMap::new()).save(&path)
        })
        .unwrap();
    let Stop::Diverged {
        epoch,
        step,
        parameter,
        loss,
    } = stop
    else {
        panic!("expected divergence, got {stop:?}")
    };
    assert_eq!(epoch, 2);
    assert_eq!(
        step, 2,
        "step 1 of epoch 2 broke the weights, step 2 sees the NaN loss"
    );
    assert!(!loss.is_finite());
    let p = parameter.expect("a parameter went non-finite");
    assert!(p.starts_with("fc"), "{p}");
    // the checkpoint on disk is epoch 1's, and finite
    let ck = Checkpoint::load(&path).unwrap();
    assert!(ck.metadata["backprop.training"].contains("\"epochs_done\":1"));
    assert!(ck.tensors.iter().all(|(_, t)| t.all_finite()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_interrupted_checkpoint_write_leaves_the_old_file_intact() {
    let dir = tmpdir("atomic");
    let path = dir.join("model.safetensors");
    let mut old = Checkpoint::default();
    old.tensors.push((
        "w".into(),
        backprop_tensor::Tensor::from_vec(vec![1.0, 2.0], &[2]),
    ));
    old.metadata.insert("k".into(), "v".into());
    old.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // a write that dies halfway through
    let new_bytes = vec![7u8; 1000];
    let r = atomic_write(&path, |f| {
        f.write_all(&new_bytes[..500])?;
        Err(std::io::Error::other("simulated crash mid-write"))
    });
    assert!(r.is_err());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the old checkpoint changed"
    );
    assert_eq!(Checkpoint::load(&path).unwrap(), old);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "temporary files left behind: {leftovers:?}"
    );
    // and a truncated file is rejected with a message naming it
    std::fs::write(dir.join("cut.safetensors"), &before[..before.len() - 3]).unwrap();
    let e = Checkpoint::load(&dir.join("cut.safetensors")).unwrap_err();
    assert!(
        e.contains("cut.safetensors") && e.contains("truncated"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn trains_on_a_csv_the_test_writes() {
    let dir = tmpdir("csv");
    let path = dir.join("points.csv");
    let mut text = String::from("x1,x2,x3,species\n");
    let mut rng = backprop_tensor::Rng::seed(4);
    for i in 0..150 {
        let (c, name) = [(0.0, "setosa"), (3.0, "versicolor"), (6.0, "virginica")][i % 3];
        text += &format!(
            "{:.3},{:.3},{:.3},{name}\n",
            c + rng.normal() * 0.5,
            -c + rng.normal() * 0.5,
            rng.normal()
        );
    }
    std::fs::write(&path, text).unwrap();
    let data = load_csv(
        &path,
        &CsvOptions {
            label: LabelColumn::Name("species".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (data.len(), data.features(), data.num_classes()),
        (150, 3, 3)
    );
    let (train, test) = data.split(30, 1).unwrap();
    let m = ModelSpec::mlp(&[16], "tanh", 0.0, 3)
        .unwrap()
        .build::<f32>(3, Some(3), 0)
        .unwrap()
        .model;
    let mut t = Trainer::new(
        &m,
        TrainConfig {
            epochs: 40,
            batch_size: 10,
            lr: 0.05,
            ..Default::default()
        },
    )
    .unwrap();
    t.fit(&train, None, &mut Quiet, |_| Ok(())).unwrap();
    let acc = evaluate(&m, &test, LossKind::CrossEntropy).accuracy;
    assert!(acc >= 0.95, "accuracy {acc}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_specs_are_rejected_with_the_layer_named() {
    let e = ModelSpec::from_json(
        r#"{"layers": [{"type": "linear", "out": 4}, {"type": "convolution"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("layer 2") && e.contains("unknown layer type \"convolution\""),
        "{e}"
    );
    let s = ModelSpec::from_json(r#"{"layers": [{"type": "linear", "out": 4}, {"type": "relu"}, {"type": "linear", "in": 5, "out": 2}]}"#).unwrap();
    let e = s.build::<f32>(3, Some(2), 0).err().unwrap().to_string();
    assert!(
        e.contains("layer 3 (linear)") && e.contains("expects 5 inputs but layer 2 gives 4"),
        "{e}"
    );
    let s = ModelSpec::from_json(r#"{"layers": [{"type": "linear", "out": 4}]}"#).unwrap();
    let e = s.build::<f32>(3, Some(10), 0).err().unwrap().to_string();
    assert!(e.contains("gives 4 outputs but the data needs 10"), "{e}");
    let s = ModelSpec::from_json(
        r#"{"layers": [{"type": "linear", "out": 2, "weight": [[1, 2, 3]]}]}"#,
    )
    .unwrap();
    let e = s.build::<f32>(3, None, 0).err().unwrap().to_string();
    assert!(
        e.contains("layer 1 (linear)") && e.contains("must be 2×3"),
        "{e}"
    );
    let e = ModelSpec::from_json(r#"{"layers": [{"type": "dropout"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer 1 (dropout)") && e.contains("p"), "{e}");
    let e = ModelSpec::from_toml("[[layers]]\ntype = \"linear\"\nout = 3\nbias = \"yes\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer 1 (linear)"), "{e}");
}

#[test]
fn a_spec_with_explicit_weights_builds_the_lectures_network_exactly() {
    // the worked example: 2-2-1 sigmoid network without biases
    let s = ModelSpec::from_toml(
        r#"
[[layers]]
type = "linear"
out = 2
bias = false
weight = [[0.1, 0.8], [0.4, 0.6]]
[[layers]]
type = "sigmoid"
[[layers]]
type = "linear"
out = 1
bias = false
weight = [[0.3, 0.9]]
[[layers]]
type = "sigmoid"
"#,
    )
    .unwrap();
    let m = s.build::<f64>(2, Some(1), 0).unwrap().model;
    let x = backprop_autograd::Var::constant(backprop_tensor::Tensor::from_vec(
        vec![0.35, 0.9],
        &[1, 2],
    ));
    let y = m.forward(&x, backprop_nn::Mode::Eval).item();
    assert!((y - 0.690283).abs() < 1e-6, "{y}");
}

#[test]
fn conv_specs_build_and_check_shapes() {
    let s = ModelSpec::from_json(
        r#"{"layers": [
            {"type": "conv2d", "out": 4, "kernel": [3, 2], "stride": 2, "padding": 1, "dilation": [2, 1]},
            {"type": "batch_norm"}, {"type": "relu"},
            {"type": "max_pool2d", "kernel": 2},
            {"type": "avg_pool2d", "kernel": [1, 2], "stride": 1},
            {"type": "global_avg_pool"},
            {"type": "linear", "out": 3}
        ]}"#,
    )
    .unwrap();
    let m = s
        .build_shaped::<f32>(2 * 12 * 10, Some([2, 12, 10]), Some(3), 0)
        .unwrap()
        .model;
    let names: Vec<String> = m.layers().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        names,
        ["reshape1", "conv1", "bn1", "relu1", "pool1", "avgpool1", "gap1", "fc1"]
    );
    let s = backprop_nn::Summary::of_sequential(&m, &[5, 240]);
    // conv: H = (12 + 2 − 2·2 − 1)/2 + 1 = 5, W = (10 + 2 − 1·1 − 1)/2 + 1 = 6; pool → 2×3; avg 1×2 → 2×2
    assert_eq!(s.rows[1].output_shape, vec![5, 4, 5, 6]);
    assert_eq!(s.rows[4].output_shape, vec![5, 4, 2, 3]);
    assert_eq!(s.rows[5].output_shape, vec![5, 4, 2, 2]);
    assert_eq!(s.rows[7].output_shape, vec![5, 3]);
    // without an image shape a conv layer on flat data asks for a reshape
    let e = s_err(&ModelSpec::lenet5(10), 784, None);
    assert!(
        e.contains("layer 1 (conv2d)") && e.contains("reshape"),
        "{e}"
    );
    // channel counts that do not chain
    let bad = ModelSpec::from_json(r#"{"layers": [{"type": "reshape", "shape": [1, 4, 4]}, {"type": "conv2d", "in": 3, "out": 2, "kernel": 3}, {"type": "flatten"}, {"type": "linear", "out": 2}]}"#).unwrap();
    let e = s_err(&bad, 16, None);
    assert!(
        e.contains("layer 2 (conv2d)")
            && e.contains("expects 3 input channels but layer 1 gives [1, 4, 4]"),
        "{e}"
    );
    let big = ModelSpec::from_json(r#"{"layers": [{"type": "reshape", "shape": [1, 4, 4]}, {"type": "conv2d", "out": 2, "kernel": 5}, {"type": "flatten"}, {"type": "linear", "out": 2}]}"#).unwrap();
    assert!(s_err(&big, 16, None).contains("layer 2 (conv2d)"));
    let unfinished = ModelSpec::from_json(r#"{"layers": [{"type": "reshape", "shape": [1, 4, 4]}, {"type": "conv2d", "out": 2, "kernel": 3}]}"#).unwrap();
    assert!(s_err(&unfinished, 16, None).contains("end with flatten and a linear layer"));
    // the presets
    let l5 = ModelSpec::lenet5(10)
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 0)
        .unwrap()
        .model;
    assert_eq!(l5.num_params(), 156 + 2416 + 48120 + 10164 + 850);
    let cnn = ModelSpec::cnn(10)
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 0)
        .unwrap()
        .model;
    assert!(cnn
        .layers()
        .any(|(_, l)| l.kind().starts_with("BatchNorm2d")));
}

fn s_err(s: &ModelSpec, inputs: usize, image: Option<[usize; 3]>) -> String {
    s.build_shaped::<f32>(inputs, image, None, 0)
        .err()
        .unwrap()
        .to_string()
}

#[test]
fn a_small_cnn_learns_and_resumes_exactly() {
    // 8×8 images of a bright horizontal or vertical bar, two classes
    let mut rng = backprop_tensor::Rng::seed(3);
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for i in 0..160 {
        let class = i % 2;
        let pos = 1 + rng.below(6);
        for r in 0..8 {
            for c in 0..8 {
                let on = if class == 0 { r == pos } else { c == pos };
                x.push(if on { 1.0 } else { 0.0 } + 0.1 * rng.normal() as f32);
            }
        }
        labels.push(class);
    }
    let data = backprop_data::Dataset {
        name: "bars".into(),
        x: backprop_tensor::Tensor::from_vec(x, &[160, 64]),
        targets: backprop_data::Targets::Classes {
            labels,
            names: vec!["h".into(), "v".into()],
        },
        image_shape: Some([1, 8, 8]),
    };
    let (train, val) = data.split(40, 1).unwrap();
    let spec = ModelSpec::from_json(
        r#"{"layers": [{"type": "conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "batch_norm"}, {"type": "relu"},
            {"type": "max_pool2d", "kernel": 2}, {"type": "flatten"}, {"type": "dropout", "p": 0.1}, {"type": "linear", "out": 2}]}"#,
    )
    .unwrap();
    let config = TrainConfig {
        epochs: 6,
        batch_size: 16,
        lr: 0.05,
        seed: 2,
        ..Default::default()
    };
    let a = spec
        .build_shaped::<f32>(64, data.image_shape, Some(2), 2)
        .unwrap()
        .model;
    let mut ta = Trainer::new(&a, config.clone()).unwrap();
    ta.fit(&train, Some(&val), &mut Quiet, |_| Ok(())).unwrap();
    let acc = evaluate(&a, &val, LossKind::CrossEntropy).accuracy;
    assert!(acc >= 0.95, "bar accuracy {acc}");
    // interrupted after 3 epochs, resumed from the file: the same weights and buffers
    let dir = tmpdir("cnn-resume");
    let path = dir.join("model.safetensors");
    let b = spec
        .build_shaped::<f32>(64, data.image_shape, Some(2), 2)
        .unwrap()
        .model;
    let mut tb = Trainer::new(&b, config.clone()).unwrap();
    let _ = tb.fit(&train, Some(&val), &mut Quiet, |t| {
        t.checkpoint(BTreeMap::new()).save(&path)?;
        if t.epochs_done == 3 {
            Err("stop".into())
        } else {
            Ok(())
        }
    });
    let c = spec
        .build_shaped::<f32>(64, data.image_shape, Some(2), 77)
        .unwrap()
        .model;
    let mut tc = Trainer::new(&c, config).unwrap();
    tc.resume(&Checkpoint::load(&path).unwrap()).unwrap();
    tc.fit(&train, Some(&val), &mut Quiet, |_| Ok(())).unwrap();
    let state = |m: &backprop_nn::Sequential<f32>| -> Vec<Vec<f32>> {
        m.params()
            .into_iter()
            .chain(m.buffers())
            .map(|(_, p)| p.value().to_vec())
            .collect()
    };
    assert_eq!(state(&a), state(&c));
    let _ = std::fs::remove_dir_all(dir);
}
