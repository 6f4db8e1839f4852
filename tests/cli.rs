//! The `backprop` binary end to end: training, eval, predict, summary, gradcheck, and the
//! errors users get for bad input (a clear message, a non-zero exit, never a panic).

#[allow(dead_code)]
#[path = "../examples/read_numbers.rs"]
mod read_numbers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backprop"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("RAYON_NUM_THREADS", "2");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-cli-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json_of(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        s,
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(s.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {s}"))
}

/// A failed run: non-zero exit, an `error:` line mentioning every `needle`, no panic.
#[track_caller]
/// Runs the binary in an empty temporary directory (a run with no `--out` would otherwise
/// go to `runs/` beside the sources) and checks that it fails with every needle in its
/// message, does not panic and leaves nothing behind there.
fn fails_with(args: &[&str], needles: &[&str]) {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cwd = tmpdir(&format!("fails-{n}"));
    let o = bin()
        .current_dir(&cwd)
        .args(args)
        .output()
        .expect("the binary runs");
    let left: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let _ = std::fs::remove_dir_all(&cwd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(left.is_empty(), "{args:?} left {left:?} behind");
    assert!(!o.status.success(), "{args:?} succeeded; stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks {n:?}:\n{err}");
    }
    assert!(
        !err.contains("panicked")
            && !err.contains("internal error")
            && !err.contains("RUST_BACKTRACE"),
        "{args:?} panicked:\n{err}"
    );
}

fn write_png(path: &Path, w: usize, h: usize, px: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), w as u32, h as u32);
    e.set_color(png::ColorType::Grayscale);
    e.set_depth(png::BitDepth::Eight);
    e.write_header().unwrap().write_image_data(px).unwrap();
}

#[test]
fn mnist_train_then_eval_reproduces_and_predict_reads_pngs() {
    let out = tmpdir("mnist");
    let o = out.to_str().unwrap();
    let t = json_of(&run(&[
        "train",
        "--limit",
        "8000",
        "--epochs",
        "2",
        "--validation",
        "1000",
        "--json",
        "--out",
        o,
    ]));
    for k in [
        "test_accuracy",
        "test_loss",
        "epochs",
        "seconds",
        "model_path",
    ] {
        assert!(!t[k].is_null(), "train --json lacks {k}: {t}");
    }
    assert_eq!(t["epochs"], 2);
    let acc = t["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.85, "test accuracy {acc}");
    let model = t["model_path"].as_str().unwrap().to_string();
    assert!(
        Path::new(&model).is_file()
            && out.join("history.csv").is_file()
            && out.join("history.json").is_file()
            && out.join("loss.svg").is_file()
    );
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");

    // eval on the saved model reproduces the test accuracy
    let e = json_of(&run(&["eval", "--model-path", &model, "--json"]));
    assert_eq!(e["test_accuracy"].as_f64().unwrap(), acc);
    assert!((e["test_loss"].as_f64().unwrap() - t["test_loss"].as_f64().unwrap()).abs() < 1e-9);

    // predict on PNGs written from test images 0..3 (a 7, a 2 and a 1)
    let raw = backprop_data::load_idx_pair(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
        "t10k",
    )
    .unwrap();
    let mut args = vec![
        "predict".to_string(),
        "--model-path".into(),
        model.clone(),
        "--json".into(),
    ];
    for i in 0..3 {
        let p = out.join(format!("digit{i}.png"));
        write_png(&p, 28, 28, &raw.pixels[i * 784..(i + 1) * 784]);
        args.push(p.display().to_string());
    }
    let p = json_of(&bin().args(&args).output().unwrap());
    let preds = p["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    for (i, pr) in preds.iter().enumerate() {
        assert_eq!(
            pr["class"].as_u64().unwrap() as usize,
            raw.labels[i],
            "image {i}: {pr}"
        );
        let sum: f64 = pr["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-4);
    }
    // the same images by index into the test split agree
    let q = json_of(&run(&[
        "predict",
        "--model-path",
        &model,
        "--index",
        "0,1,2",
        "--json",
    ]));
    for i in 0..3 {
        assert_eq!(q["predictions"][i]["class"], preds[i]["class"]);
        // and carry the true label
        let truth = q["predictions"][i]["true_label"].as_str().unwrap();
        assert_eq!(truth, raw.labels[i].to_string());
    }
    let shown = run(&["predict", "--model-path", &model, "--index", "0"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("true: 7 (right)"), "{shown}");
    // a wrongly sized image is refused with its size named
    let small = out.join("small.png");
    write_png(&small, 10, 10, &[0u8; 100]);
    fails_with(
        &["predict", "--model-path", &model, small.to_str().unwrap()],
        &["small.png", "10×10", "28×28"],
    );
    // ...and among good ones it costs only itself: the others are classified, the exit fails
    let good = out.join("digit0.png");
    let mixed = run(&[
        "predict",
        "--model-path",
        &model,
        good.to_str().unwrap(),
        small.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&mixed.stderr);
    assert!(!mixed.status.success());
    assert!(String::from_utf8_lossy(&mixed.stdout).contains("digit0.png: class 7"));
    assert!(
        err.contains("1 of 2 images") && err.contains("small.png"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_spiral_run_fits_and_draws_its_decision_boundary() {
    let out = tmpdir("spiral");
    let t = json_of(&run(&[
        "train",
        "--dataset",
        "spiral",
        "--epochs",
        "150",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]));
    let acc = t["train_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "spiral training accuracy {acc}");
    let png = out.join("decision_boundary.png");
    assert!(t["plots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap().ends_with("decision_boundary.png")));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn resume_continues_a_run() {
    let out = tmpdir("resume");
    let o = out.to_str().unwrap();
    json_of(&run(&[
        "train",
        "--dataset",
        "xor",
        "--samples",
        "200",
        "--epochs",
        "3",
        "--json",
        "--out",
        o,
    ]));
    // a resumed run with a larger epoch budget picks up at epoch 4
    let r = bin()
        .args([
            "train",
            "--dataset",
            "xor",
            "--samples",
            "200",
            "--epochs",
            "5",
            "--out",
            o,
            "--resume",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(
        err.contains("resuming") && err.contains("after epoch 3") && err.contains("epoch   4/5"),
        "{err}"
    );
    // the closing line counts this invocation's epochs, and says it resumed
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("2 epochs in") && stdout.contains("resumed after epoch 3 (5 in all)"),
        "{stdout}"
    );
    let h = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(h.lines().count(), 6);
    // a finished run is not resumed silently
    fails_with(
        &[
            "train",
            "--dataset",
            "xor",
            "--samples",
            "200",
            "--epochs",
            "5",
            "--out",
            o,
            "--resume",
        ],
        &["--resume", "already finished its 5 epochs", "--epochs"],
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn an_earlier_run_is_never_replaced_without_being_asked() {
    let d = tmpdir("overwrite");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            "xor",
            "--samples",
            "100",
            "--epochs",
            "1",
        ];
        args.extend(extra);
        // the default output directory is relative: run inside the temporary directory
        bin().current_dir(&d).args(&args).output().unwrap()
    };
    let first = train(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let model = d.join("runs/xor-mlp/model.safetensors");
    let before = std::fs::read(&model).unwrap();
    // the default directory holds a run: the next one goes to a fresh name and says so
    let second = train(&["--seed", "5"]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert!(
        err.contains("holds an earlier run") && err.contains("xor-mlp-2"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&second.stdout).contains("runs/xor-mlp-2/model.safetensors"));
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "the first run's model changed"
    );
    assert!(d.join("runs/xor-mlp-2/model.safetensors").is_file());
    // an explicit --out holding a model is refused, unless --overwrite says so
    let out = d.join("runs/xor-mlp");
    let o = out.to_str().unwrap();
    let refused = train(&["--out", o]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("--out") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    let replaced = train(&["--out", o, "--overwrite", "--seed", "9"]);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    assert_ne!(std::fs::read(&model).unwrap(), before);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn trains_on_a_csv_written_here() {
    let dir = tmpdir("csv");
    let csv = dir.join("data.csv");
    let mut s = String::from("a,b,label\n");
    for i in 0..200 {
        let c = if i % 2 == 0 { 1.0 } else { -1.0 };
        let j = (i as f64 * 0.37).sin() * 0.4;
        s += &format!(
            "{},{},{}\n",
            c + j,
            c - j,
            if c > 0.0 { "pos" } else { "neg" }
        );
    }
    std::fs::write(&csv, s).unwrap();
    let t = json_of(&run(&[
        "train",
        "--dataset",
        csv.to_str().unwrap(),
        "--label-column",
        "label",
        "--epochs",
        "20",
        "--json",
        "--out",
        dir.join("run").to_str().unwrap(),
    ]));
    assert!(t["test_accuracy"].as_f64().unwrap() >= 0.95, "{t}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn summary_and_gradcheck_and_datasets() {
    let s = json_of(&run(&[
        "summary",
        "--inputs",
        "3",
        "--outputs",
        "2",
        "--hidden",
        "4",
        "--activation",
        "sigmoid",
        "--json",
    ]));
    assert_eq!(s["total_params"], 26);
    assert_eq!(
        (s["weights"].as_u64(), s["biases"].as_u64()),
        (Some(20), Some(6))
    );
    let text =
        String::from_utf8_lossy(&run(&["summary", "--dataset", "spiral"]).stdout).to_string();
    assert!(
        text.contains("fc1") && text.contains("total parameters"),
        "{text}"
    );
    let g = json_of(&run(&[
        "gradcheck",
        "--inputs",
        "5",
        "--outputs",
        "3",
        "--hidden",
        "6,4",
        "--activation",
        "tanh",
        "--json",
    ]));
    assert_eq!(g["passed"], true, "{g}");
    assert!(g["max_rel_err"].as_f64().unwrap() < 1e-6);
    assert_eq!(g["parameters"].as_array().unwrap().len(), 6);
    let d = run(&["datasets"]);
    let text = String::from_utf8_lossy(&d.stdout);
    assert!(
        d.status.success()
            && text.contains("mnist")
            && text.contains("60000")
            && text.contains("spiral"),
        "{text}"
    );
}

fn idx_bytes(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// A directory of IDX files with 4 train and 2 test images of 2×2, optionally broken.
fn idx_dir(tag: &str, train_images: Vec<u8>) -> PathBuf {
    let d = tmpdir(tag);
    std::fs::write(d.join("train-images-idx3-ubyte"), train_images).unwrap();
    std::fs::write(
        d.join("train-labels-idx1-ubyte"),
        idx_bytes(&[4], &[0, 1, 0, 1]),
    )
    .unwrap();
    std::fs::write(
        d.join("t10k-images-idx3-ubyte"),
        idx_bytes(&[2, 2, 2], &[0; 8]),
    )
    .unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx_bytes(&[2], &[0, 1])).unwrap();
    d
}

#[test]
fn bad_data_is_reported_with_the_file_and_the_problem() {
    fails_with(
        &["train", "--data-dir", "/nonexistent/backprop-data"],
        &[
            "--data-dir",
            "/nonexistent/backprop-data",
            "no such directory",
        ],
    );
    let good = idx_bytes(&[4, 2, 2], &[0; 16]);
    let d = idx_dir("truncated", good[..good.len() - 5].to_vec());
    fails_with(
        &["train", "--data-dir", d.to_str().unwrap()],
        &["train-images-idx3-ubyte", "truncated"],
    );
    let mut bad_magic = good.clone();
    bad_magic[2] = 0x0b;
    bad_magic[0] = 7;
    let d2 = idx_dir("magic", bad_magic);
    fails_with(
        &["train", "--data-dir", d2.to_str().unwrap()],
        &["train-images-idx3-ubyte", "magic"],
    );
    let d3 = idx_dir("counts", idx_bytes(&[5, 2, 2], &[0; 20]));
    fails_with(
        &["train", "--data-dir", d3.to_str().unwrap()],
        &["train-labels-idx1-ubyte", "4 labels", "5 images"],
    );
    // the good directory trains
    let d4 = idx_dir("good", good);
    let o = run(&[
        "train",
        "--data-dir",
        d4.to_str().unwrap(),
        "--epochs",
        "1",
        "--validation",
        "0",
        "--out",
        d4.join("run").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let csv = d4.join("bad.csv");
    std::fs::write(&csv, "x,y,label\n1,2,a\n3,oops,b\n5,6,a\n7,8,b\n9,10,a\n").unwrap();
    fails_with(
        &["train", "--dataset", csv.to_str().unwrap()],
        &["bad.csv", "line 3", "column 2", "oops", "not a number"],
    );
    for d in [d, d2, d3, d4] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn bad_specs_and_flags_are_rejected_before_training() {
    let d = tmpdir("specs");
    let unknown = d.join("unknown.json");
    std::fs::write(
        &unknown,
        r#"{"layers": [{"type": "linear", "out": 8}, {"type": "conv9d"}]}"#,
    )
    .unwrap();
    fails_with(
        &[
            "train",
            "--dataset",
            "xor",
            "--model",
            unknown.to_str().unwrap(),
        ],
        &["unknown.json", "layer 2", "unknown layer type", "conv9d"],
    );
    let chain = d.join("chain.toml");
    std::fs::write(&chain, "[[layers]]\ntype = \"linear\"\nout = 8\n[[layers]]\ntype = \"relu\"\n[[layers]]\ntype = \"linear\"\nin = 6\nout = 2\n").unwrap();
    fails_with(
        &[
            "train",
            "--dataset",
            "xor",
            "--model",
            chain.to_str().unwrap(),
        ],
        &["layer 3 (linear)", "expects 6 inputs but layer 2 gives 8"],
    );
    fails_with(
        &["train", "--dataset", "xor", "--lr", "-0.1"],
        &["--lr", "positive"],
    );
    fails_with(
        &["train", "--dataset", "xor", "--batch-size", "0"],
        &["--batch-size", "at least 1"],
    );
    let file = d.join("a-file");
    std::fs::write(&file, "").unwrap();
    fails_with(
        &[
            "train",
            "--dataset",
            "xor",
            "--out",
            file.join("sub").to_str().unwrap(),
        ],
        &["--out", "cannot create the output directory"],
    );
    fails_with(
        &["train", "--dataset", "moons"],
        &["--dataset moons", "unknown dataset"],
    );
    fails_with(
        &["train", "--dataset", "xor", "--optimizer", "lbfgs"],
        &["--optimizer", "lbfgs", "possible values: sgd"],
    );
    fails_with(
        &["train", "--dataset", "xor", "--activation", "swoosh"],
        &["--activation", "swoosh"],
    );
    fails_with(
        &["train", "--dataset", "xor", "--lr-schedule", "step:x:0.5"],
        &["--lr-schedule"],
    );
    fails_with(
        &["eval", "--model-path", unknown.to_str().unwrap()],
        &["unknown.json", "not a valid checkpoint"],
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "xor",
            "--resume",
            "--out",
            d.join("none").to_str().unwrap(),
        ],
        &["--resume", "no saved run"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn divergence_is_reported_and_exits_non_zero() {
    let d = tmpdir("diverge");
    fails_with(
        &[
            "train",
            "--dataset",
            "circle",
            "--epochs",
            "3",
            "--lr",
            "1e38",
            "--loss",
            "squared",
            "--lr-schedule",
            "constant",
            "--out",
            d.to_str().unwrap(),
        ],
        &["diverged at epoch 1", "step"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn lenet5_trains_summarises_and_visualizes() {
    let s = json_of(&run(&["summary", "--model", "lenet5", "--json"]));
    assert_eq!(s["total_params"], 61706);
    let shapes: Vec<String> = s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["output_shape"].to_string())
        .collect();
    assert!(
        shapes.contains(&"[1,6,28,28]".to_string()) && shapes.contains(&"[1,16,5,5]".to_string()),
        "{shapes:?}"
    );
    let out = tmpdir("lenet");
    let o = out.to_str().unwrap();
    // 1,800 images, one epoch of 113 steps: enough for LeNet to start learning (≈ 67%)
    let t = json_of(&run(&[
        "train",
        "--model",
        "lenet5",
        "--limit",
        "2000",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--lr-schedule",
        "constant",
        "--validation",
        "200",
        "--json",
        "--out",
        o,
    ]));
    assert!(t["test_accuracy"].as_f64().unwrap() > 0.5, "{t}");
    let model = t["model_path"].as_str().unwrap();
    let v = json_of(&run(&[
        "visualize",
        "--model-path",
        model,
        "--filter",
        "3",
        "--search",
        "300",
        "--top",
        "9",
        "--json",
        "--out",
        out.join("vis").to_str().unwrap(),
    ]));
    let images: Vec<String> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for want in [
        "filters.png",
        "feature_maps_conv1.png",
        "feature_maps_conv2.png",
        "top_patches_filter3.png",
    ] {
        let p = images
            .iter()
            .find(|p| p.ends_with(want))
            .unwrap_or_else(|| panic!("{want} missing from {images:?}"));
        assert!(std::fs::read(p).unwrap().starts_with(b"\x89PNG"));
    }
    fails_with(
        &["visualize", "--model-path", model, "--filter", "6"],
        &["--filter 6", "6 filters"],
    );
    // eval reproduces the CNN's test accuracy too
    let e = json_of(&run(&["eval", "--model-path", model, "--json"]));
    assert_eq!(e["test_accuracy"], t["test_accuracy"]);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn trace_prints_the_worked_example() {
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/specs/worked_example.toml"
    );
    let o = run(&[
        "trace", "--model", spec, "--input", "0.35,0.9", "--target", "0.5",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in [
        "0.690283", "0.272326", "0.872998", "0.099071", "0.797611", "0.397140", "0.592646", "BP1",
        "BP2", "BP3", "BP4",
    ] {
        if want == "BP3" {
            continue; // no biases in this network
        }
        assert!(text.contains(want), "the trace lacks {want}:\n{text}");
    }
    let j = json_of(&run(&[
        "trace", "--model", spec, "--input", "0.35,0.9", "--target", "0.5", "--json",
    ]));
    let out = j["layers"][1]["a"][0].as_f64().unwrap();
    assert!((out - 0.690283).abs() < 1e-6);
    let w2 = &j["layers"][1]["new_weight"][0];
    assert!(
        (w2[0].as_f64().unwrap() - 0.272326).abs() < 1e-6
            && (w2[1].as_f64().unwrap() - 0.872998).abs() < 1e-6
    );
    let w1 = &j["layers"][0]["new_weight"];
    assert!((w1[1][1].as_f64().unwrap() - 0.5926455).abs() < 1e-7);
    assert!(j["bp2_error"].as_f64().unwrap() < 1e-12);
    fails_with(
        &[
            "trace", "--model", spec, "--input", "0.35", "--target", "0.5",
        ],
        &["input has 1 values", "takes 2"],
    );
    fails_with(
        &["trace", "--model", spec, "--input", "0.35,0.9"],
        &["--target"],
    );
}

#[test]
fn predict_segment_reads_six_digit_numbers() {
    // the default MLP (the README's main job)
    let out = tmpdir("segment");
    let t = json_of(&run(&[
        "train",
        "--json",
        "--out",
        out.join("run").to_str().unwrap(),
    ]));
    let model = t["model_path"].as_str().unwrap().to_string();
    // 300 numbers of six MNIST test digits, side by side with uneven gaps of 0–10 pixels
    let raw = backprop_data::load_idx_pair(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
        "t10k",
    )
    .unwrap();
    let mut truth = Vec::new();
    let mut files = Vec::new();
    for (k, n) in read_numbers::make_numbers(&raw, 300, 2026)
        .into_iter()
        .enumerate()
    {
        let p = out.join(format!("number{k}.png"));
        write_png(&p, n.width, n.height, &n.pixels);
        files.push(p.display().to_string());
        truth.push(n.truth);
    }
    let mut args = vec![
        "predict".to_string(),
        "--model-path".into(),
        model,
        "--segment".into(),
        "--json".into(),
    ];
    args.extend(files);
    let r = json_of(&bin().args(&args).output().unwrap());
    let numbers = r["numbers"].as_array().unwrap();
    assert_eq!(numbers.len(), 300);
    let (mut right, mut whole, mut counted) = (0, 0, 0);
    for (n, want) in numbers.iter().zip(&truth) {
        let got = n["number"].as_str().unwrap();
        right += got
            .chars()
            .zip(want.chars())
            .filter(|(a, b)| a == b)
            .count();
        whole += usize::from(got == want);
        counted += usize::from(got.len() == 6);
        assert!(n["digits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["confidence"].as_f64().unwrap() > 0.0));
    }
    let digit_accuracy = right as f64 / 1800.0;
    eprintln!("segmentation: {right}/1800 digits, {whole}/300 whole numbers, {counted}/300 with six digits");
    assert!(digit_accuracy >= 0.97, "{right}/1800 digits right");
    assert!(
        counted >= 297,
        "only {counted}/300 numbers split into six digits"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn trace_reads_a_saved_model_and_a_test_sample() {
    let out = tmpdir("trace-ckpt");
    let t = json_of(&run(&[
        "train",
        "--dataset",
        "xor",
        "--samples",
        "100",
        "--epochs",
        "2",
        "--hidden",
        "4",
        "--activation",
        "tanh",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]));
    let model = t["model_path"].as_str().unwrap();
    // the class label of test sample 3 is the target; cross-entropy from the logits
    let j = json_of(&run(&[
        "trace",
        "--model-path",
        model,
        "--index",
        "3",
        "--loss",
        "cross-entropy",
        "--lr",
        "0.1",
        "--json",
    ]));
    assert_eq!(j["layers"].as_array().unwrap().len(), 2);
    assert_eq!(j["input"].as_array().unwrap().len(), 2);
    assert!(
        j["bp1_error"].as_f64().unwrap() < 1e-9 && j["bp2_error"].as_f64().unwrap() < 1e-9,
        "{j}"
    );
    // BP3: ∂C/∂b = δ in every layer
    for l in j["layers"].as_array().unwrap() {
        assert_eq!(l["grad_bias"], l["delta"]);
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn recurrent_presets_train_summarise_evaluate_and_predict() {
    // GRU(28 → 128): 3·128·(28 + 128 + 2) parameters, then Linear(128 → 10)
    let s = json_of(&run(&["summary", "--model", "gru", "--json"]));
    assert_eq!(s["total_params"], 3 * 128 * (28 + 128 + 2) + 1290);
    assert_eq!(s["layers"][0]["output_shape"].to_string(), "[1,28,28]");
    let out = tmpdir("gru");
    let o = out.to_str().unwrap();
    // 900 images, one epoch of 57 steps with Adam at a constant 0.005: well above chance
    let t = json_of(&run(&[
        "train",
        "--model",
        "gru",
        "--limit",
        "1000",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--optimizer",
        "adam",
        "--lr",
        "0.005",
        "--lr-schedule",
        "constant",
        "--validation",
        "100",
        "--json",
        "--out",
        o,
    ]));
    let acc = t["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.3, "{t}");
    let model = t["model_path"].as_str().unwrap().to_string();
    let e = json_of(&run(&["eval", "--model-path", &model, "--json"]));
    assert_eq!(e["test_accuracy"].as_f64().unwrap(), acc);
    let p = json_of(&run(&[
        "predict",
        "--model-path",
        &model,
        "--index",
        "0,1",
        "--json",
    ]));
    assert_eq!(p["predictions"].as_array().unwrap().len(), 2);
    // a spec layer with a bad setting is refused, naming the file and the layer
    let spec = out.join("bad.json");
    std::fs::write(
        &spec,
        r#"{"layers": [{"type": "lstm", "hidden": 0}, {"type": "linear", "out": 10}]}"#,
    )
    .unwrap();
    fails_with(
        &[
            "train",
            "--model",
            spec.to_str().unwrap(),
            "--limit",
            "100",
            "--out",
            out.join("bad-run").to_str().unwrap(),
        ],
        &["layer 1 (lstm)", "at least 1"],
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_character_model_trains_with_the_text_defaults_and_continues_a_prompt() {
    let dir = tmpdir("text");
    let path = dir.join("cycle.txt");
    std::fs::write(&path, "abcd\n".repeat(400)).unwrap();
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    let dataset = format!("text:{}", path.display());
    let t = json_of(&run(&[
        "train",
        "--dataset",
        &dataset,
        "--model",
        "lstm",
        "--json",
        "--out",
        o,
    ]));
    // the text defaults: 8 epochs (Adam, η = 0.002, windows of 24)
    assert_eq!(t["epochs"], 8, "{t}");
    // five equally frequent characters: a unigram model's perplexity is 5; here the next
    // character follows from the last, so a trained model is nearly certain of it
    let unigram = t["unigram_perplexity"].as_f64().unwrap();
    let perplexity = t["test_perplexity"].as_f64().unwrap();
    assert!((unigram - 5.0).abs() < 0.01, "{t}");
    assert!(perplexity < 1.5, "{t}");
    // a prompt as long as the window (24); a shorter one is padded with its first character,
    // windows the model never saw in training
    let prompt = "abcd\n".repeat(5);
    let g = json_of(&run(&[
        "generate",
        "--model-path",
        o,
        "--prompt",
        &prompt,
        "--length",
        "20",
        "--temperature",
        "0.5",
        "--json",
    ]));
    assert_eq!(g["generated"].as_str().unwrap(), "abcd\n".repeat(4), "{g}");
    let _ = std::fs::remove_dir_all(dir);
}
