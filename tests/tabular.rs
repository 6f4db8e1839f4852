//! CSV tables through the `backprop` binary: training with the defaults, the checkpoint's data
//! contract used by `eval` and `predict`, regression output, categories and missing cells,
//! the fixed test split, and the flags refused where they do not apply.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        "backprop-tabular-test-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json_of(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "failed: {s}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {s}"))
}

/// A failed run: non-zero exit, an `error:` line mentioning every `needle`, no panic.
#[track_caller]
fn fails_with(args: &[&str], needles: &[&str]) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{args:?} succeeded; stderr: {err}");
    assert!(err.starts_with("error:"), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks {n:?}:\n{err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{args:?} panicked:\n{err}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Three classes of points around (0,0), (4,0), (0,4) in the units of a wide-ranging
/// second column (×1000), so that unscaled they would be hard to learn.
fn three_blobs(path: &Path, rows: usize) {
    let mut t = String::from("x,y,kind\n");
    for i in 0..rows {
        let k = i % 3;
        let (cx, cy) = [(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)][k];
        let j = ((i * 7919) % 100) as f64 / 100.0 - 0.5;
        t += &format!(
            "{},{},{}\n",
            cx + j,
            (cy - j) * 1000.0,
            ["ant", "bee", "cat"][k]
        );
    }
    std::fs::write(path, t).unwrap();
}

#[test]
fn eval_maps_labels_through_the_checkpoints_classes() {
    let d = tmpdir("classes");
    let csv = d.join("train.csv");
    three_blobs(&csv, 150);
    let out = d.join("run");
    let t = json_of(&run(&[
        "train",
        "--dataset",
        s(&csv),
        "--epochs",
        "40",
        "--json",
        "--out",
        s(&out),
    ]));
    assert!(t["test_accuracy"].as_f64().unwrap() >= 0.95, "{t}");
    assert_eq!(t["inputs"], serde_json::json!(["x", "y"]));
    // eval with no flags: the training file's test split, the same rows as in training
    let e = json_of(&run(&["eval", "--model-path", s(&out), "--json"]));
    assert_eq!(e["test_accuracy"], t["test_accuracy"]);
    assert_eq!(
        e["samples"].as_u64().unwrap(),
        t["test_rows"].as_array().unwrap().len() as u64
    );
    // another file holding only two of the classes, columns reordered: labels map through
    // the model's three classes, so the confusion matrix stays 3×3 with "cat" in row 2
    let other = d.join("other.csv");
    std::fs::write(&other, "kind,y,x\ncat,4000,0\ncat,3900,0.1\nbee,0,4\n").unwrap();
    let e = json_of(&run(&[
        "eval",
        "--model-path",
        s(&out),
        "--dataset",
        s(&other),
        "--json",
    ]));
    let cm = &e["confusion_matrix"];
    assert_eq!(cm.as_array().unwrap().len(), 3, "{e}");
    assert_eq!(
        cm[2][2].as_u64().unwrap() + cm[2][0].as_u64().unwrap() + cm[2][1].as_u64().unwrap(),
        2
    );
    assert_eq!(
        cm[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        1
    );
    assert_eq!(e["test_accuracy"].as_f64().unwrap(), 1.0, "{e}");
    // a label the model never learned is an error naming it (not a re-indexed class)
    let five = d.join("five.csv");
    std::fs::write(
        &five,
        "x,y,kind\n0,0,ant\n4,0,bee\n0,4000,cat\n1,1,dog\n2,2,eel\n",
    )
    .unwrap();
    fails_with(
        &["eval", "--model-path", s(&out), "--dataset", s(&five)],
        &["five.csv", "line 5", "\"dog\"", "ant, bee, cat"],
    );
    // the contract is fixed: flags that would change it are refused, not ignored
    fails_with(
        &["eval", "--model-path", s(&out), "--task", "regression"],
        &["--task", "data contract"],
    );
    fails_with(
        &["eval", "--model-path", s(&out), "--label-column", "x"],
        &["--label-column"],
    );
    fails_with(
        &["eval", "--model-path", s(&out), "--encoding", "binary"],
        &["--encoding"],
    );
    // predict reads feature rows by the header's names, with or without the label column
    let rows = d.join("rows.csv");
    std::fs::write(&rows, "y,x\n0,4\n4000,0\n").unwrap();
    let p = json_of(&run(&[
        "predict",
        "--model-path",
        s(&out),
        "--csv",
        s(&rows),
        "--json",
    ]));
    let labels: Vec<&str> = p["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["bee", "cat"], "{p}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn the_test_split_does_not_move_with_the_seed() {
    let d = tmpdir("split");
    let csv = d.join("blobs.csv");
    three_blobs(&csv, 60);
    let rows = |seed: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            s(&csv),
            "--epochs",
            "2",
            "--json",
            "--seed",
            seed,
        ];
        let out = d.join(format!("run{seed}{}", extra.len()));
        args.extend_from_slice(&["--out", s(&out)]);
        args.extend_from_slice(extra);
        json_of(&run(&args))["test_rows"].clone()
    };
    let a = rows("0", &[]);
    assert_eq!(a.as_array().unwrap().len(), 12);
    assert_eq!(
        rows("7", &[]),
        a,
        "another training seed, the same test rows"
    );
    assert_ne!(
        rows("0", &["--split-seed", "1"]),
        a,
        "another split seed, other rows"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn regression_predicts_values_in_the_labels_units() {
    let d = tmpdir("regression");
    let csv = d.join("price.csv");
    let mut t = String::from("area,rooms,price\n");
    for i in 0..120 {
        let area = 40.0 + (i as f64 * 37.0) % 100.0;
        let rooms = 1 + i % 4;
        t += &format!(
            "{area},{rooms},{:.2}\n",
            1000.0 * area + 5000.0 * rooms as f64 + 0.5
        );
    }
    std::fs::write(&csv, &t).unwrap();
    // without --task the decimal prices are refused with a hint, not made into classes
    fails_with(
        &["train", "--dataset", s(&csv), "--out", s(&d.join("no"))],
        &["--task regression", "price"],
    );
    let out = d.join("run");
    let r = json_of(&run(&[
        "train",
        "--dataset",
        s(&csv),
        "--task",
        "regression",
        "--json",
        "--out",
        s(&out),
    ]));
    let r2 = r["test_scores"]["r2"].as_f64().unwrap();
    assert!(r2 > 0.95, "{r}");
    assert!(r["test_scores"]["rmse"].as_f64().unwrap() < 10_000.0, "{r}");
    let e = json_of(&run(&["eval", "--model-path", s(&out), "--json"]));
    assert_eq!(e["test_scores"]["r2"].as_f64().unwrap(), r2);
    for key in ["mse", "rmse", "mae"] {
        assert!(e["test_scores"][key].as_f64().unwrap() > 0.0, "{e}");
    }
    let rows = d.join("new.csv");
    std::fs::write(&rows, "area,rooms\n80,2\n").unwrap();
    let p = json_of(&run(&[
        "predict",
        "--model-path",
        s(&out),
        "--csv",
        s(&rows),
        "--json",
    ]));
    let v = p["predictions"][0]["value"].as_f64().unwrap();
    // 1000·80 + 5000·2 = 90,000: a value in the label's units, not a probability
    assert!((v - 90_000.0).abs() < 6_000.0, "{p}");
    let text = run(&["predict", "--model-path", s(&out), "--csv", s(&rows)]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("predicted"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn categories_and_missing_cells_train_with_the_documented_options() {
    let d = tmpdir("categories");
    let csv = d.join("fruit.csv");
    let mut t = String::from("weight,colour,origin,ripe\n");
    for i in 0..90 {
        let colour = ["green", "yellow", "brown"][i % 3];
        let weight = if i % 17 == 5 {
            "NA".to_string()
        } else {
            format!("{}", 100 + (i * 13) % 50)
        };
        let origin = if i % 23 == 4 {
            ""
        } else {
            ["north", "south"][i % 2]
        };
        t += &format!(
            "{weight},{colour},{origin},{}\n",
            if colour == "green" { "no" } else { "yes" }
        );
    }
    std::fs::write(&csv, &t).unwrap();
    let out = d.join("run");
    fails_with(
        &["train", "--dataset", s(&csv), "--out", s(&out)],
        &[
            "fruit.csv",
            "line 6, column 3 (origin)",
            "missing value \"\"",
            "--missing",
        ],
    );
    assert!(!out.exists(), "a failed run leaves no directory");
    let r = json_of(&run(&[
        "train",
        "--dataset",
        s(&csv),
        "--missing",
        "impute",
        "--epochs",
        "60",
        "--json",
        "--out",
        s(&out),
    ]));
    assert!(r["test_accuracy"].as_f64().unwrap() >= 0.9, "{r}");
    assert_eq!(r["inputs"].as_array().unwrap().len(), 1 + 3 + 2, "{r}");
    let dropped = json_of(&run(&[
        "train",
        "--dataset",
        s(&csv),
        "--missing",
        "drop",
        "--epochs",
        "5",
        "--json",
        "--out",
        s(&d.join("drop")),
    ]));
    let n = |v: &Value| v["test_rows"].as_array().unwrap().len();
    assert!(n(&dropped) < n(&r), "dropping rows shrinks the table");
    // summary shows the expanded width
    let sm = run(&["summary", "--dataset", s(&csv), "--missing", "impute"]);
    let sm = String::from_utf8_lossy(&sm.stdout);
    assert!(sm.contains("Linear(6 → 100)"), "{sm}");
    // new rows: categories one-hot as in training, a missing cell imputed
    let rows = d.join("new.csv");
    std::fs::write(
        &rows,
        "weight,colour,origin\n120,green,north\nNA,yellow,south\n",
    )
    .unwrap();
    let p = json_of(&run(&[
        "predict",
        "--model-path",
        s(&out),
        "--csv",
        s(&rows),
        "--json",
    ]));
    let labels: Vec<&str> = p["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["no", "yes"], "{p}");
    // an unseen category is an error naming it
    std::fs::write(&rows, "weight,colour,origin\n120,purple,north\n").unwrap();
    fails_with(
        &["predict", "--model-path", s(&out), "--csv", s(&rows)],
        &["new.csv", "\"purple\"", "brown, green, yellow"],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn csv_flags_are_refused_where_they_do_not_apply() {
    let d = tmpdir("flags");
    let o = d.join("x");
    fails_with(
        &[
            "train",
            "--dataset",
            "spiral",
            "--label-column",
            "1",
            "--out",
            s(&o),
        ],
        &["--label-column", "CSV"],
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "spiral",
            "--task",
            "regression",
            "--out",
            s(&o),
        ],
        &["--task", "CSV"],
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "spiral",
            "--scale",
            "none",
            "--out",
            s(&o),
        ],
        &["--scale", "CSV"],
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "spiral",
            "--encoding",
            "foo",
            "--out",
            s(&o),
        ],
        &["--encoding", "foo"],
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "spiral",
            "--encoding",
            "binary",
            "--out",
            s(&o),
        ],
        &["--encoding", "images"],
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "mnist",
            "--label-column",
            "3",
            "--out",
            s(&o),
        ],
        &["--label-column"],
    );
    let csv = d.join("t.csv");
    three_blobs(&csv, 30);
    fails_with(
        &[
            "train",
            "--dataset",
            s(&csv),
            "--encoding",
            "standardized",
            "--out",
            s(&o),
        ],
        &["--encoding", "--scale"],
    );
    fails_with(
        &["train", "--dataset", s(&csv), "--task", "sideways"],
        &["sideways"],
    );
    let _ = std::fs::remove_dir_all(d);
}

fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn idx_class_ids_with_a_large_gap_are_refused() {
    let d = tmpdir("idx");
    std::fs::write(d.join("train-images-idx3-ubyte"), idx(&[6, 2, 2], &[7; 24])).unwrap();
    std::fs::write(
        d.join("train-labels-idx1-ubyte"),
        idx(&[6], &[0, 1, 2, 1, 0, 200]),
    )
    .unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx(&[2, 2, 2], &[0; 8])).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(&[2], &[0, 1])).unwrap();
    fails_with(
        &[
            "train",
            "--data-dir",
            s(&d),
            "--epochs",
            "1",
            "--out",
            s(&d.join("run")),
        ],
        &[
            "--data-dir",
            "largest is 200",
            "201-class",
            "4 distinct class ids",
        ],
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn the_shipped_iris_file_trains_as_the_readme_shows() {
    let d = tmpdir("iris");
    let r = json_of(&run(&[
        "train",
        "--dataset",
        "data/iris/iris.csv",
        "--label-column",
        "species",
        "--epochs",
        "60",
        "--json",
        "--out",
        s(&d.join("run")),
    ]));
    assert_eq!(r["test_rows"].as_array().unwrap().len(), 30);
    assert!(r["test_accuracy"].as_f64().unwrap() >= 0.8, "{r}");
    assert_eq!(r["warnings"].as_array().unwrap().len(), 0, "{r}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_run_that_does_not_learn_says_so() {
    let d = tmpdir("flat");
    let csv = d.join("blobs.csv");
    three_blobs(&csv, 60);
    let o = run(&[
        "train",
        "--dataset",
        s(&csv),
        "--lr",
        "0.000000001",
        "--epochs",
        "5",
        "--json",
        "--out",
        s(&d.join("run")),
    ]);
    let r = json_of(&o);
    let w = r["warnings"].as_array().unwrap();
    assert!(
        w.iter()
            .any(|w| w.as_str().unwrap().contains("hardly fell")),
        "{r}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: the training loss hardly fell"));
    // a run that learns has none (the iris test checks the shipped file the same way)
    let ok = json_of(&run(&[
        "train",
        "--dataset",
        s(&csv),
        "--epochs",
        "30",
        "--json",
        "--out",
        s(&d.join("ok")),
    ]));
    assert_eq!(ok["warnings"].as_array().unwrap().len(), 0, "{ok}");
    let _ = std::fs::remove_dir_all(d);
}
