//! `backprop predict`: class probabilities for images, test samples or CSV rows.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use backprop_data::TableSchema;
use backprop_tensor::Tensor;
use backprop_train::{predict_outputs, predict_proba, SavedModel};
use serde_json::json;

use super::{load_saved_model, saved_test_set};
use crate::args::PredictArgs;
use crate::images::read_image;

fn encoding_from(v: &serde_json::Value) -> Result<backprop_data::Encoding> {
    backprop_train::saved::encoding_from_json(v).map_err(|e| anyhow!(e))
}

/// `predict --segment`: each image is a number written digit by digit.
fn predict_numbers(a: &PredictArgs, saved: &SavedModel) -> Result<ExitCode> {
    let encoding = match saved.encoding.get("encoding").and_then(|e| e.as_str()) {
        Some("none") | None => bail!("--segment: this model was not trained on images"),
        Some(_) => encoding_from(&saved.encoding)?,
    };
    if saved.inputs != 784 {
        bail!(
            "--segment: the model takes {} inputs; reading numbers needs a 28×28 digit model",
            saved.inputs
        );
    }
    if a.images.is_empty() {
        bail!("--segment: give the images of numbers to read");
    }
    let mut results = Vec::new();
    for p in &a.images {
        let img = read_image(p)?;
        let mut px = img.pixels;
        let mean = px.iter().map(|&v| v as f64).sum::<f64>() / px.len().max(1) as f64;
        if mean > 127.0 {
            px.iter_mut().for_each(|v| *v = 255 - *v);
        }
        let segs = backprop_data::segment_digits(&px, img.width, img.height);
        if segs.is_empty() {
            bail!("{}: no digits found (no ink)", p.display());
        }
        let x = Tensor::from_vec(
            segs.iter()
                .flat_map(|s| s.pixels.iter().map(|&b| encoding.encode(b)))
                .collect(),
            &[segs.len(), 784],
        );
        let probs = predict_proba(&saved.model, &x);
        let c = probs.shape()[1];
        let mut number = String::new();
        let mut digits = Vec::new();
        for (k, s) in segs.iter().enumerate() {
            let pr = &probs.data()[k * c..(k + 1) * c];
            let best = (0..c).max_by(|&i, &j| pr[i].total_cmp(&pr[j])).unwrap();
            let label = saved
                .classes
                .get(best)
                .cloned()
                .unwrap_or_else(|| best.to_string());
            number += &label;
            digits.push(
                json!({"digit": label, "confidence": pr[best], "box": [s.x0, s.x1, s.y0, s.y1]}),
            );
        }
        if !a.json {
            let conf: Vec<String> = digits
                .iter()
                .map(|d| {
                    format!(
                        "{} ({:.3})",
                        d["digit"].as_str().unwrap_or("?"),
                        d["confidence"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            println!("{}: {number}   {}", p.display(), conf.join(" "));
        }
        results.push(json!({"input": p.display().to_string(), "number": number, "digits": digits}));
    }
    if a.json {
        println!("{}", json!({ "numbers": results }));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn predict(a: PredictArgs) -> Result<ExitCode> {
    let saved = load_saved_model(&a.model_path)?;
    if a.segment {
        return predict_numbers(&a, &saved);
    }
    if a.images.is_empty() && a.index.is_empty() && a.csv.is_none() {
        bail!("nothing to predict: give image files, --index N,... or --csv FILE");
    }
    let schema = saved.table().map_err(|e| anyhow!("--model-path {e}"))?;
    let mut rows: Vec<(String, Vec<f32>)> = Vec::new();
    let mut notes = Vec::new();
    let encoding = match saved.encoding.get("encoding").and_then(|e| e.as_str()) {
        Some("none") | None => None,
        Some(_) => Some(encoding_from(&saved.encoding)?),
    };
    // one unreadable image does not cost the others their predictions: each is reported,
    // and the command fails at the end
    let mut unreadable = Vec::new();
    for p in &a.images {
        match image_row(p, &saved, encoding, &mut notes) {
            Ok(row) => rows.push((p.display().to_string(), row)),
            Err(e) if a.images.len() > 1 => unreadable.push(format!("{e:#}")),
            Err(e) => return Err(e),
        }
    }
    let mut truth: Vec<Option<String>> = vec![None; rows.len()];
    if !a.index.is_empty() {
        let (_, test) = saved_test_set(&saved, &a.data)?;
        for &i in &a.index {
            if i >= test.len() {
                bail!("--index {i}: the test split has {} samples", test.len());
            }
            let f = test.features();
            rows.push((
                format!("test[{i}]"),
                test.x.data()[i * f..(i + 1) * f].to_vec(),
            ));
            truth.push(true_label(&test, i, &saved));
        }
    }
    if let Some(csv) = &a.csv {
        rows.extend(csv_rows(csv, saved.inputs, schema.as_ref())?);
    }
    truth.resize(rows.len(), None);
    let n = rows.len();
    if n == 0 {
        bail!("{}", unreadable.join("\n"));
    }
    let x = Tensor::from_vec(
        rows.iter().flat_map(|(_, v)| v.iter().copied()).collect(),
        &[n, saved.inputs],
    );
    for note in &notes {
        eprintln!("note: {note}");
    }
    let out = if saved.classes.is_empty() {
        values(&a, &saved, schema.as_ref(), &rows, &x)
    } else {
        classes(&a, &saved, &rows, &truth, &x)
    };
    if a.json {
        println!("{}", json!({ "predictions": out }));
    }
    if !unreadable.is_empty() {
        bail!(
            "{} of {} images could not be classified:\n{}",
            unreadable.len(),
            a.images.len(),
            unreadable.join("\n")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Regression: the predicted value of each row, in the target's units.
fn values(
    a: &PredictArgs,
    saved: &SavedModel,
    schema: Option<&TableSchema>,
    rows: &[(String, Vec<f32>)],
    x: &Tensor<f32>,
) -> Vec<serde_json::Value> {
    let y = predict_outputs(&saved.model, x);
    let c = y.shape()[1];
    let mut out = Vec::new();
    for (k, (name, _)) in rows.iter().enumerate() {
        let v: Vec<f64> = y.data()[k * c..(k + 1) * c]
            .iter()
            .map(|&o| schema.map_or(o as f64, |s| s.unscale_target(o as f64)))
            .collect();
        if a.json {
            out.push(json!({"input": name, "value": if c == 1 { json!(v[0]) } else { json!(v) }}));
        } else {
            let shown: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
            println!("{name}: predicted {}", shown.join(", "));
        }
    }
    out
}

/// Classification: the class and the top probabilities of each row.
fn classes(
    a: &PredictArgs,
    saved: &SavedModel,
    rows: &[(String, Vec<f32>)],
    truth: &[Option<String>],
    x: &Tensor<f32>,
) -> Vec<serde_json::Value> {
    let probs = predict_proba(&saved.model, x);
    let c = probs.shape()[1];
    let mut out = Vec::new();
    for (k, (name, _)) in rows.iter().enumerate() {
        let p = &probs.data()[k * c..(k + 1) * c];
        let best = (0..c).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap();
        let label = saved
            .classes
            .get(best)
            .cloned()
            .unwrap_or_else(|| best.to_string());
        let truth = truth[k].as_deref();
        if a.json {
            out.push(json!({"input": name, "class": best, "label": label, "true_label": truth, "probabilities": p}));
        } else {
            let mut order: Vec<usize> = (0..c).collect();
            order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
            let top: Vec<String> = order
                .iter()
                .take(3)
                .map(|&i| {
                    format!(
                        "{}: {:.4}",
                        saved
                            .classes
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| i.to_string()),
                        p[i]
                    )
                })
                .collect();
            let truth = truth.map_or(String::new(), |t| {
                let mark = if t == label { "right" } else { "wrong" };
                format!("   true: {t} ({mark})")
            });
            println!(
                "{name}: class {label} (p = {:.4})   top: {}{truth}",
                p[best],
                top.join(", ")
            );
        }
    }
    out
}

/// Feature rows of `--csv FILE`. With a table model's contract, columns are found by the
/// header's names (or by position, with or without the label column) and encoded as in
/// training; otherwise each line is `inputs` numbers.
fn csv_rows(
    csv: &Path,
    inputs: usize,
    schema: Option<&TableSchema>,
) -> Result<Vec<(String, Vec<f32>)>> {
    if let Some(schema) = schema {
        let table = schema.read_table(csv).map_err(|e| anyhow!("--csv {e}"))?;
        let columns = schema.locate(&table).map_err(|e| anyhow!("--csv {e}"))?;
        let all: Vec<usize> = (0..table.rows.len()).collect();
        let x = schema
            .encode_features(&table, &columns, &all)
            .map_err(|e| anyhow!("--csv {e}"))?;
        let w = schema.inputs();
        return Ok(table
            .rows
            .iter()
            .zip(x.data().chunks_exact(w))
            .map(|(r, v)| (format!("{}:{}", csv.display(), r.line), v.to_vec()))
            .collect());
    }
    let text = std::fs::read_to_string(csv)
        .with_context(|| format!("--csv {}: cannot read", csv.display()))?;
    let mut rows = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let vals: std::result::Result<Vec<f32>, _> =
            line.split(',').map(|c| c.trim().parse::<f32>()).collect();
        match vals {
            Ok(v) if v.len() == inputs => rows.push((format!("{}:{}", csv.display(), ln + 1), v)),
            Ok(v) => bail!(
                "--csv {}: line {} has {} values, the model takes {}",
                csv.display(),
                ln + 1,
                v.len(),
                inputs
            ),
            Err(_) if ln == 0 => continue, // a header
            Err(_) => bail!(
                "--csv {}: line {} has a value that is not a number",
                csv.display(),
                ln + 1
            ),
        }
    }
    Ok(rows)
}

/// One image as the model's input row: read, size-checked, inverted if it is dark ink on a
/// light background (the model saw light digits on black), encoded as in training.
fn image_row(
    p: &std::path::Path,
    saved: &SavedModel,
    encoding: Option<backprop_data::Encoding>,
    notes: &mut Vec<String>,
) -> Result<Vec<f32>> {
    let enc =
        encoding.ok_or_else(|| anyhow!("{}: this model was not trained on images", p.display()))?;
    let img = read_image(p)?;
    if img.width * img.height != saved.inputs {
        let side = (saved.inputs as f64).sqrt() as usize;
        bail!(
            "{}: the image is {}×{} but the model expects {side}×{side} ({} pixels)",
            p.display(),
            img.width,
            img.height,
            saved.inputs
        );
    }
    let mut px = img.pixels;
    let mean = px.iter().map(|&v| v as f64).sum::<f64>() / px.len().max(1) as f64;
    if mean > 127.0 {
        px.iter_mut().for_each(|v| *v = 255 - *v);
        notes.push(format!(
            "{}: inverted (dark ink on a light background)",
            p.display()
        ));
    }
    Ok(px.iter().map(|&b| enc.encode(b)).collect())
}

/// Test sample `i`'s label, by the model's class names (`None` for regression data).
fn true_label(test: &backprop_data::Dataset, i: usize, saved: &SavedModel) -> Option<String> {
    match &test.targets {
        backprop_data::Targets::Classes { labels, .. } => {
            let c = labels[i];
            Some(
                saved
                    .classes
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| c.to_string()),
            )
        }
        _ => None,
    }
}
