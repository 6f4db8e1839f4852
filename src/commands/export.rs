//! `backprop export`: a saved model as an ONNX file for other runtimes.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use backprop_onnx::{ExportOptions, INPUT, LOGITS, OPSET, PROBABILITIES};
use backprop_train::checkpoint::{atomic_write, is_training_key};
use serde_json::json;

use super::load_saved_model;
use crate::args::{ExportArgs, ExportFormat};

pub fn export(a: ExportArgs) -> Result<ExitCode> {
    let saved = load_saved_model(&a.model_path)?;
    let ExportFormat::Onnx = a.format;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| saved.path.with_file_name("model.onnx"));
    let options = ExportOptions {
        probabilities: !saved.classes.is_empty(),
        // what a consumer needs to encode inputs and name classes travels along
        metadata: saved
            .meta
            .iter()
            .filter(|(k, _)| k.starts_with("backprop.") && !is_training_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        name: saved
            .meta
            .get("backprop.dataset")
            .cloned()
            .unwrap_or_default(),
    };
    let model = backprop_onnx::export(&saved.model, &[saved.inputs], &options)
        .map_err(|e| anyhow!("--model-path {}: {e}", saved.path.display()))?;
    let bytes = backprop_onnx::to_bytes(&model);
    atomic_write(&out, |f| f.write_all(&bytes))
        .with_context(|| format!("--out {}: cannot write the model", out.display()))?;
    let outputs: Vec<&str> = if options.probabilities {
        vec![LOGITS, PROBABILITIES]
    } else {
        vec![LOGITS]
    };
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    if a.json {
        println!(
            "{}",
            json!({"out": out.display().to_string(), "format": "onnx", "opset": OPSET, "nodes": nodes,
                   "bytes": bytes.len(), "input": INPUT, "outputs": outputs})
        );
    } else {
        println!(
            "wrote {} (ONNX opset {OPSET}, {nodes} nodes, {} bytes): input {INPUT:?} [batch, {}], outputs {}",
            out.display(),
            bytes.len(),
            saved.inputs,
            outputs.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
