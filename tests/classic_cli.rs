//! `backprop som`, `backprop esn` and `backprop rbf`: a small run each, and bad flags
//! refused with a message that names the flag.

use std::process::Command;

fn backprop(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args(args)
        .output()
        .expect("runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> String {
    let d = std::env::temp_dir().join(format!(
        "backprop-classic-cli-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d.display().to_string()
}

#[test]
fn som_trains_on_a_synthetic_set_and_draws_it() {
    let out = tmp("som");
    let (ok, stdout, stderr) = backprop(&[
        "som",
        "--dataset",
        "gauss",
        "--samples",
        "200",
        "--grid",
        "4x5",
        "--topology",
        "hexagonal",
        "--iterations",
        "400",
        "--out",
        &out,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["units"], 20);
    assert!(j["train"]["quantization_error"].as_f64().unwrap() < 1.0);
    for f in [
        "u_matrix.png",
        "hit_map.png",
        "component_planes.png",
        "report.json",
    ] {
        assert!(std::path::Path::new(&out).join(f).exists(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn som_and_esn_refuse_bad_flags() {
    let out = tmp("bad");
    for (args, needle) in [
        (
            vec!["som", "--dataset", "gauss", "--grid", "4by5"],
            "--grid",
        ),
        (vec!["som", "--dataset", "gauss", "--grid", "0x5"], "--grid"),
        (
            vec!["som", "--dataset", "gauss", "--sigma", "-1"],
            "--sigma",
        ),
        (vec!["som", "--dataset", "gauss", "--lr", "0"], "--lr"),
        (
            vec!["som", "--dataset", "gauss", "--iterations", "0"],
            "--iterations",
        ),
        (
            vec!["som", "--dataset", "gauss", "--neighborhood", "cone"],
            "--neighborhood",
        ),
        (vec!["som", "--dataset", "nope"], "--dataset"),
        (vec!["esn", "--units", "0"], "--units"),
        (vec!["esn", "--leak-rate", "2"], "--leak-rate"),
        (vec!["esn", "--spectral-radius", "-1"], "--spectral-radius"),
        (vec!["esn", "--test-fraction", "1.5"], "--test-fraction"),
        (vec!["esn", "--series", "no-such.csv"], "--series"),
        (
            vec!["esn", "--points", "50", "--washout", "100"],
            "--washout",
        ),
        (
            vec!["rbf", "--dataset", "xor", "--centres", "0"],
            "--centres",
        ),
        (
            vec![
                "rbf",
                "--dataset",
                "xor",
                "--samples",
                "50",
                "--centres",
                "60",
            ],
            "--centres",
        ),
        (
            vec!["rbf", "--dataset", "xor", "--width-scale", "0"],
            "--width-scale",
        ),
        (vec!["rbf", "--dataset", "xor", "--ridge", "-1"], "--ridge"),
        (
            vec!["rbf", "--dataset", "xor", "--kmeans-samples", "5"],
            "--kmeans-samples",
        ),
        (vec!["rbf", "--dataset", "nope"], "--dataset"),
    ] {
        let mut a = args.clone();
        a.extend(["--out", out.as_str()]);
        let (ok, _, stderr) = backprop(&a);
        assert!(!ok, "{args:?} was accepted");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("internal error"), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn esn_fits_mackey_glass_and_reads_a_csv_series() {
    let out = tmp("esn");
    let (ok, stdout, stderr) = backprop(&[
        "esn",
        "--points",
        "800",
        "--generate",
        "50",
        "--out",
        &out,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(j["one_step_nrmse"].as_f64().unwrap() < 0.05, "{j}");
    assert!(std::path::Path::new(&out).join("forecast.svg").exists());
    let csv = std::path::Path::new(&out).join("s.csv");
    let text: String = std::iter::once("x".to_string())
        .chain((0..400).map(|t| format!("{}", (t as f64 * 0.2).sin())))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&csv, text).unwrap();
    let (ok, _, stderr) = backprop(&["esn", "--series", csv.to_str().unwrap(), "--out", &out]);
    assert!(ok, "{stderr}");
    std::fs::write(&csv, "x\n1\nabc\n").unwrap();
    let (ok, _, stderr) = backprop(&["esn", "--series", csv.to_str().unwrap(), "--out", &out]);
    assert!(!ok && stderr.contains("line 3"), "{stderr}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn rbf_trains_on_a_two_d_set_and_a_table_and_draws_them() {
    let out = tmp("rbf");
    let (ok, stdout, stderr) = backprop(&[
        "rbf",
        "--dataset",
        "circle",
        "--samples",
        "300",
        "--centres",
        "12",
        "--out",
        &out,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["centres"], 12);
    assert!(j["test"]["accuracy"].as_f64().unwrap() > 0.9, "{j}");
    let widths = &j["widths"];
    assert!(widths["min"].as_f64().unwrap() > 0.0, "{j}");
    for f in ["centres.png", "decision_boundary.png", "report.json"] {
        let p = std::path::Path::new(&out).join(f);
        assert!(
            std::fs::metadata(&p)
                .map(|m| m.len() > 100)
                .unwrap_or(false),
            "{f}"
        );
    }
    // regression on a CSV table: y = sin(3x) with a little noise
    let csv = std::path::Path::new(&out).join("sine.csv");
    let rows: Vec<String> = (0..300)
        .map(|i| {
            let x = -1.0 + 2.0 * ((i * 37) % 300) as f64 / 299.0;
            format!("{x},{}", (3.0 * x).sin() + 0.01 * ((i * 7) % 5) as f64)
        })
        .collect();
    std::fs::write(&csv, format!("x,y\n{}\n", rows.join("\n"))).unwrap();
    let (ok, stdout, stderr) = backprop(&[
        "rbf",
        "--dataset",
        csv.to_str().unwrap(),
        "--task",
        "regression",
        "--centres",
        "15",
        "--width-scale",
        "3",
        "--ridge",
        "1e-8",
        "--out",
        &out,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // the targets are standardized (unit variance): an RMSE of 0.1 is a tenth of their spread
    assert!(j["test"]["rmse"].as_f64().unwrap() < 0.1, "{j}");
    let _ = std::fs::remove_dir_all(&out);
}
