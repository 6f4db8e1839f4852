//! `backprop export` and `backprop import` end to end: a trained model's state dict is plain
//! (its training state lives beside it), exports to ONNX, imports back to the same test
//! accuracy, fine-tunes with `--init-from`, and bad imports fail naming the tensor.

use std::path::PathBuf;
use std::process::{Command, Output};

use backprop::train::checkpoint::training_path;
use backprop::train::Checkpoint;
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backprop"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAYON_NUM_THREADS", "2")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "backprop-interop-test-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[track_caller]
fn json_of(args: &[&str]) -> Value {
    let o = run(args);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{args:?} failed: {s}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(s.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {s}"))
}

#[track_caller]
fn fails_with(args: &[&str], needles: &[&str]) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{args:?} succeeded");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks {n:?}:\n{err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
}

#[test]
fn a_trained_model_exports_imports_fine_tunes_and_bad_imports_name_the_tensor() {
    let d = tmpdir("roundtrip");
    let p = |s: &str| d.join(s).display().to_string();
    let data = [
        "--dataset",
        "circle",
        "--samples",
        "200",
        "--hidden",
        "8",
        "--seed",
        "0",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        extra
            .iter()
            .chain(data.iter())
            .map(|s| s.to_string())
            .collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    let t = with(&[
        "train",
        "--epochs",
        "3",
        "--optimizer",
        "adam",
        "--json",
        "--out",
        &p("run"),
    ]);
    let trained = json_of(&args(&t));
    // the model file is a plain state dict; the optimizer state is beside it
    let model = d.join("run").join("model.safetensors");
    let ck = Checkpoint::load_model(&model).unwrap();
    let names: Vec<&str> = ck.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("fc")), "{names:?}");
    assert!(!ck.metadata.contains_key("backprop.training"));
    assert!(training_path(&model).is_file());

    let e = json_of(&[
        "export",
        "--model-path",
        &p("run"),
        "--format",
        "onnx",
        "--out",
        &p("m.onnx"),
        "--json",
    ]);
    assert_eq!(e["opset"], 21);
    assert_eq!(e["outputs"], serde_json::json!(["logits", "probabilities"]));
    assert!(std::fs::metadata(d.join("m.onnx")).unwrap().len() > 100);

    // the state dict imports for the same spec and scores the same on the test split
    let i = with(&[
        "import",
        "--weights",
        model.to_str().unwrap(),
        "--json",
        "--out",
        &p("imp"),
    ]);
    let imported = json_of(&args(&i));
    assert_eq!(imported["test_accuracy"], trained["test_accuracy"]);
    let ev = json_of(&[
        "eval",
        "--model-path",
        &p("imp"),
        "--samples",
        "200",
        "--json",
    ]);
    assert_eq!(ev["test_accuracy"], trained["test_accuracy"]);
    // an imported model has no training state: --resume says how to fine-tune instead
    let r = with(&["train", "--resume", "--epochs", "1", "--out", &p("imp")]);
    fails_with(&args(&r), &["--init-from"]);
    let f = with(&[
        "train",
        "--init-from",
        model.to_str().unwrap(),
        "--epochs",
        "1",
        "--json",
        "--out",
        &p("tuned"),
    ]);
    let tuned = json_of(&args(&f));
    assert_eq!(tuned["epochs"], 1, "{tuned}");
    // one epoch moved the weights it started from
    let after = Checkpoint::load_model(&d.join("tuned").join("model.safetensors")).unwrap();
    let w = |c: &Checkpoint| c.get("fc1.weight").unwrap().to_vec();
    assert_eq!(w(&after).len(), w(&ck).len());
    assert_ne!(w(&after), w(&ck));

    // a spec that does not match, and a file that is not there
    let bad: Vec<String> = [
        "import",
        "--weights",
        model.to_str().unwrap(),
        "--dataset",
        "circle",
        "--samples",
        "200",
        "--hidden",
        "9",
        "--out",
        &p("bad"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fails_with(
        &args(&bad),
        &[
            "--weights",
            "\"fc1.weight\" has shape [8, 2] in the file but [9, 2]",
        ],
    );
    fails_with(
        &[
            "import",
            "--weights",
            &p("nowhere.safetensors"),
            "--dataset",
            "circle",
            "--out",
            &p("bad"),
        ],
        &["nowhere.safetensors", "cannot read"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_recurrent_model_exports_and_a_jordan_model_is_refused_by_name() {
    let d = tmpdir("recurrent-export");
    let p = |s: &str| d.join(s).display().to_string();
    let gru = r#"{"layers": [{"type": "gru", "hidden": 4, "num_layers": 2, "bidirectional": true}, {"type": "linear", "out": 1}]}"#;
    let jordan =
        r#"{"layers": [{"type": "jordan", "hidden": 4, "out": 3}, {"type": "linear", "out": 1}]}"#;
    for (name, spec) in [("gru", gru), ("jordan", jordan)] {
        std::fs::write(d.join(format!("{name}.json")), spec).unwrap();
        json_of(&[
            "train",
            "--dataset",
            "adding",
            "--steps",
            "6",
            "--samples",
            "64",
            "--epochs",
            "1",
            "--model",
            &p(&format!("{name}.json")),
            "--out",
            &p(name),
            "--json",
        ]);
    }
    let e = json_of(&[
        "export",
        "--model-path",
        &p("gru"),
        "--out",
        &p("gru.onnx"),
        "--json",
    ]);
    assert_eq!(e["outputs"], serde_json::json!(["logits"]));
    let bytes = std::fs::read(d.join("gru.onnx")).unwrap();
    assert!(bytes.windows(3).any(|w| w == b"GRU"), "no GRU operator");
    fails_with(
        &[
            "export",
            "--model-path",
            &p("jordan"),
            "--out",
            &p("jordan.onnx"),
        ],
        &["layer jordan1 (Jordan(", "cannot be exported to ONNX"],
    );
    assert!(!d.join("jordan.onnx").exists());
    let _ = std::fs::remove_dir_all(&d);
}
