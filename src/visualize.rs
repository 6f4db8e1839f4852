//! `backprop visualize`: pictures of what a trained network has learned.
//!
//! - `filters.png`: the first layer's filters (a conv layer's kernels, or a linear layer's
//!   rows shown as images), each scaled to its own range;
//! - `feature_maps_<layer>.png`: every conv layer's output maps for one input;
//! - `top_patches_filter<K>.png`: the input patches, from the test split, that most strongly
//!   activate filter K of the first conv layer (the lectures' way to see what a filter
//!   detects).
//!
//! Every picture has a title strip saying which layer, which filter and which input it
//! shows, and a label under each tile where the tiles are wide enough.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use backprop_autograd::{no_grad, Var};
use backprop_nn::{Mode, Module};
use backprop_tensor::Tensor;
use backprop_train::plot::{captioned_tile_grid, write_png};
use backprop_train::{LayerSpec, ModelSpec};
use serde_json::json;

use crate::args::VisualizeArgs;
use crate::commands::{load_saved_model, saved_test_set};

/// Width and height of one input image of a saved model.
fn image_of(meta: &std::collections::BTreeMap<String, String>, inputs: usize) -> [usize; 3] {
    meta.get("backprop.image_shape")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| {
            let side = (inputs as f64).sqrt().round() as usize;
            if side * side == inputs {
                [1, side, side]
            } else {
                [1, 1, inputs]
            }
        })
}

pub fn visualize(a: VisualizeArgs) -> Result<ExitCode> {
    for (flag, v) in [("--top", a.top), ("--search", a.search)] {
        if v == 0 {
            bail!("{flag} 0: must be at least 1");
        }
    }
    let saved = load_saved_model(&a.model_path)?;
    let image = image_of(&saved.meta, saved.inputs);
    let out = a.out.clone().unwrap_or_else(|| {
        let p = if a.model_path.is_dir() {
            a.model_path.clone()
        } else {
            a.model_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        p.join("visualize")
    });
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow!("--out {}: cannot create the directory: {e}", out.display()))?;
    let mut written: Vec<PathBuf> = Vec::new();

    // 1. the first layer's filters
    let params = saved.model.params();
    let first = params
        .iter()
        .find(|(n, _)| n.ends_with("weight"))
        .ok_or_else(|| anyhow!("the model has no weights to show"))?;
    let w = first.1.value();
    let layer = first.0.trim_end_matches(".weight");
    let (tiles, labels, th, tw, title) = match w.shape() {
        [o, c, kh, kw] => {
            // one tile per (filter, input channel)
            let t: Vec<Vec<f32>> = (0..o * c)
                .map(|k| w.data()[k * kh * kw..(k + 1) * kh * kw].to_vec())
                .collect();
            let labels: Vec<String> = (0..o * c)
                .map(|k| match c {
                    1 => format!("filter {k}"),
                    _ => format!("f{} ch{}", k / c, k % c),
                })
                .collect();
            let title = format!(
                "{layer}: {o} filters × {c} input channel{}, {kh}×{kw}; each tile scaled to its own range (dark = low)",
                if *c == 1 { "" } else { "s" }
            );
            (t, labels, *kh, *kw, title)
        }
        [o, i] if *i == image.iter().product::<usize>() => {
            let t: Vec<Vec<f32>> = (0..*o)
                .map(|k| w.data()[k * i..(k + 1) * i].to_vec())
                .collect();
            let labels: Vec<String> = (0..*o).map(|k| format!("unit {k}")).collect();
            let title = format!(
                "{layer}: the input weights of its {o} units as {}×{} images (dark = low)",
                image[1],
                image[2] * image[0]
            );
            (t, labels, image[1], image[2] * image[0], title)
        }
        s => bail!("the first layer's weights {s:?} are neither conv kernels nor image-sized rows"),
    };
    let scale = (96 / th.max(tw)).clamp(2, 16);
    let (rgb, gw, gh) =
        captioned_tile_grid(&title, &tiles, &labels, th, tw, scale, 8).map_err(|e| anyhow!(e))?;
    let p = out.join("filters.png");
    write_png(&p, &rgb, gw, gh).map_err(|e| anyhow!(e))?;
    written.push(p);

    // 2. feature maps of each conv layer for one input
    let (_, test) = saved_test_set(&saved, &a.data)?;
    if a.index >= test.len() {
        bail!(
            "--index {}: the test split has {} samples",
            a.index,
            test.len()
        );
    }
    let f = test.features();
    let x = Tensor::from_vec(
        test.x.data()[a.index * f..(a.index + 1) * f].to_vec(),
        &[1, f],
    );
    no_grad(|| {
        let mut h = Var::constant(x.clone());
        for (name, layer) in saved.model.layers() {
            h = layer.forward(&h, Mode::Eval);
            if layer.kind().starts_with("Conv2d") {
                let v = h.value();
                let (c, mh, mw) = (v.shape()[1], v.shape()[2], v.shape()[3]);
                let maps: Vec<Vec<f32>> = (0..c)
                    .map(|k| v.data()[k * mh * mw..(k + 1) * mh * mw].to_vec())
                    .collect();
                let labels: Vec<String> = (0..c).map(|k| format!("channel {k}")).collect();
                let title = format!(
                    "{name}: its {c} feature maps ({mh}×{mw}) for test input #{}",
                    a.index
                );
                let scale = (112 / mh.max(mw)).clamp(2, 8);
                let (rgb, gw, gh) = captioned_tile_grid(&title, &maps, &labels, mh, mw, scale, 8)
                    .map_err(|e| anyhow!(e))?;
                let p = out.join(format!("feature_maps_{name}.png"));
                write_png(&p, &rgb, gw, gh).map_err(|e| anyhow!(e))?;
                written.push(p);
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;

    // 3. the test patches that most strongly activate a filter of the first conv layer
    let layers: Vec<(&str, &dyn Module<f32>)> = saved.model.layers().collect();
    if let Some(pos) = layers
        .iter()
        .position(|(_, l)| l.kind().starts_with("Conv2d"))
    {
        let conv_w = params
            .iter()
            .find(|(n, _)| n == &format!("{}.weight", layers[pos].0))
            .map(|(_, p)| p.value())
            .ok_or_else(|| anyhow!("conv weights not found"))?;
        let (o, kh, kw) = (conv_w.shape()[0], conv_w.shape()[2], conv_w.shape()[3]);
        if a.filter >= o {
            bail!(
                "--filter {}: the first conv layer has {o} filters (0..{})",
                a.filter,
                o - 1
            );
        }
        let (stride, pad, dil) = first_conv_geometry(&saved.meta)?;
        let n = test.len().min(a.search);
        // (activation, image, y, x) of the strongest responses
        let mut best: Vec<(f32, usize, usize, usize)> = Vec::new();
        for start in (0..n).step_by(500) {
            let idx: Vec<usize> = (start..(start + 500).min(n)).collect();
            let b = test.batch(&idx);
            let maps = no_grad(|| {
                let mut h = Var::constant(b.x.clone());
                for (_, l) in &layers[..=pos] {
                    h = l.forward(&h, Mode::Eval);
                }
                h.value()
            });
            let (mh, mw) = (maps.shape()[2], maps.shape()[3]);
            for (bi, &img) in idx.iter().enumerate() {
                let plane = &maps.data()[(bi * o + a.filter) * mh * mw..][..mh * mw];
                for (k, &v) in plane.iter().enumerate() {
                    best.push((v, img, k / mw, k % mw));
                }
            }
            best.sort_by(|p, q| q.0.total_cmp(&p.0));
            best.truncate(a.top);
        }
        let [_, ih, iw] = image;
        let patches: Vec<Vec<f32>> = best
            .iter()
            .map(|&(_, img, y, x)| {
                let mut patch = vec![0.0; kh * kw];
                for i in 0..kh {
                    for j in 0..kw {
                        let yy = (y * stride.0 + i * dil.0) as isize - pad.0 as isize;
                        let xx = (x * stride.1 + j * dil.1) as isize - pad.1 as isize;
                        if yy >= 0 && xx >= 0 && (yy as usize) < ih && (xx as usize) < iw {
                            // the first input channel (greyscale images have only one)
                            patch[i * kw + j] =
                                test.x.data()[img * f + (yy as usize) * iw + xx as usize];
                        }
                    }
                }
                patch
            })
            .collect();
        let labels: Vec<String> = best.iter().map(|b| format!("#{}", b.1)).collect();
        let title = format!(
            "the {} test patches ({kh}×{kw}) that most activate filter {} of {}; under each, the test input it is from",
            patches.len(),
            a.filter,
            layers[pos].0
        );
        let scale = (64 / kh.max(kw)).clamp(2, 16);
        let (rgb, gw, gh) = captioned_tile_grid(&title, &patches, &labels, kh, kw, scale, 8)
            .map_err(|e| anyhow!(e))?;
        let p = out.join(format!("top_patches_filter{}.png", a.filter));
        write_png(&p, &rgb, gw, gh).map_err(|e| anyhow!(e))?;
        written.push(p);
    } else if !a.json {
        eprintln!(
            "note: the model has no conv layer, so no feature maps or top patches were drawn"
        );
    }
    if a.json {
        println!("{}", json!({ "images": written }));
    } else {
        for p in &written {
            println!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `(stride, padding, dilation)`, each as (rows, columns).
type ConvGeometry = ((usize, usize), (usize, usize), (usize, usize));

/// Stride, padding and dilation of the first conv layer, from the model's saved spec.
fn first_conv_geometry(meta: &std::collections::BTreeMap<String, String>) -> Result<ConvGeometry> {
    let spec: ModelSpec = serde_json::from_str(
        meta.get("backprop.spec")
            .ok_or_else(|| anyhow!("the model has no spec"))?,
    )?;
    spec.layers
        .iter()
        .find_map(|l| match l {
            LayerSpec::Conv2d(c) => Some((c.stride.hw(), c.padding.hw(), c.dilation.hw())),
            _ => None,
        })
        .ok_or_else(|| anyhow!("the model's spec has no conv layer"))
}
