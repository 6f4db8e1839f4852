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
use backprop_data::Dataset;
use backprop_nn::{Mode, Module, Sequential};
use backprop_tensor::Tensor;
use backprop_train::plot::{captioned_tile_grid, write_png};
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
    let (_, test) = saved_test_set(&saved, &a.data)?;
    if a.index >= test.len() {
        bail!(
            "--index {}: the test split has {} samples",
            a.index,
            test.len()
        );
    }
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow!("--out {}: cannot create the directory: {e}", out.display()))?;
    let mut written = vec![filters_png(&saved.model, image, &out)?];
    written.extend(feature_map_pngs(&saved.model, &test, a.index, &out)?);
    match top_patches_png(&saved.model, &test, image, &a, &out)? {
        Some(p) => written.push(p),
        None if !a.json => eprintln!(
            "note: the model has no conv layer, so no feature maps or top patches were drawn"
        ),
        None => {}
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

/// Writes a captioned grid of `th × tw` tiles to `path`.
fn tile_png(
    path: PathBuf,
    title: &str,
    tiles: &[Vec<f32>],
    labels: &[String],
    (th, tw): (usize, usize),
    scale: usize,
) -> Result<PathBuf> {
    let (rgb, gw, gh) =
        captioned_tile_grid(title, tiles, labels, th, tw, scale, 8).map_err(|e| anyhow!(e))?;
    write_png(&path, &rgb, gw, gh).map_err(|e| anyhow!(e))?;
    Ok(path)
}

/// `filters.png`: the first layer's filters (conv kernels, or a linear layer's rows shown as
/// images).
fn filters_png(model: &Sequential, image: [usize; 3], out: &Path) -> Result<PathBuf> {
    let params = model.params();
    let (name, w) = params
        .iter()
        .find(|(n, _)| n.ends_with("weight"))
        .ok_or_else(|| anyhow!("the model has no weights to show"))?;
    let w = w.value();
    let layer = name.trim_end_matches(".weight");
    let (tiles, labels, th, tw, title) = match w.shape() {
        [o, c, kh, kw] => {
            // one tile per (filter, input channel)
            let t: Vec<Vec<f32>> = w
                .data()
                .chunks_exact(kh * kw)
                .map(<[f32]>::to_vec)
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
            let t: Vec<Vec<f32>> = w.data().chunks_exact(*i).map(<[f32]>::to_vec).collect();
            let labels: Vec<String> = (0..*o).map(|k| format!("unit {k}")).collect();
            let (th, tw) = (image[1], image[2] * image[0]);
            let title = format!(
                "{layer}: the input weights of its {o} units as {th}×{tw} images (dark = low)"
            );
            (t, labels, th, tw, title)
        }
        s => bail!("the first layer's weights {s:?} are neither conv kernels nor image-sized rows"),
    };
    let scale = (96 / th.max(tw)).clamp(2, 16);
    tile_png(
        out.join("filters.png"),
        &title,
        &tiles,
        &labels,
        (th, tw),
        scale,
    )
}

/// `feature_maps_<layer>.png`: every conv layer's output maps for test input `index`.
fn feature_map_pngs(
    model: &Sequential,
    test: &Dataset,
    index: usize,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let f = test.features();
    let x = Tensor::from_vec(test.x.data()[index * f..(index + 1) * f].to_vec(), &[1, f]);
    let mut written = Vec::new();
    no_grad(|| {
        let mut h = Var::constant(x);
        for (name, layer) in model.layers() {
            h = layer.forward(&h, Mode::Eval);
            if layer.as_conv2d().is_none() {
                continue;
            }
            let v = h.value();
            let (c, mh, mw) = (v.shape()[1], v.shape()[2], v.shape()[3]);
            let maps: Vec<Vec<f32>> = v
                .data()
                .chunks_exact(mh * mw)
                .map(<[f32]>::to_vec)
                .collect();
            let labels: Vec<String> = (0..c).map(|k| format!("channel {k}")).collect();
            let title = format!("{name}: its {c} feature maps ({mh}×{mw}) for test input #{index}");
            let scale = (112 / mh.max(mw)).clamp(2, 8);
            let path = out.join(format!("feature_maps_{name}.png"));
            written.push(tile_png(path, &title, &maps, &labels, (mh, mw), scale)?);
        }
        Ok(written)
    })
}

/// `top_patches_filter<K>.png`: the test patches that most strongly activate filter K of the
/// first conv layer; `None` for a model without one.
fn top_patches_png(
    model: &Sequential,
    test: &Dataset,
    image: [usize; 3],
    a: &VisualizeArgs,
    out: &Path,
) -> Result<Option<PathBuf>> {
    let layers: Vec<(&str, &dyn Module<f32>)> = model.layers().collect();
    let Some((pos, conv)) = layers
        .iter()
        .enumerate()
        .find_map(|(i, (_, l))| l.as_conv2d().map(|c| (i, c)))
    else {
        return Ok(None);
    };
    let w = conv.weight.value();
    let (o, kh, kw) = (w.shape()[0], w.shape()[2], w.shape()[3]);
    if a.filter >= o {
        bail!(
            "--filter {}: the first conv layer has {o} filters (0..{})",
            a.filter,
            o - 1
        );
    }
    let best = strongest_responses(&layers[..=pos], test, a.filter, a.search, a.top);
    let p = conv.params;
    let [_, ih, iw] = image;
    let f = test.features();
    let patches: Vec<Vec<f32>> = best
        .iter()
        .map(|&(_, img, y, x)| {
            let mut patch = vec![0.0; kh * kw];
            for i in 0..kh {
                for j in 0..kw {
                    let yy = (y * p.stride.0 + i * p.dilation.0) as isize - p.padding.0 as isize;
                    let xx = (x * p.stride.1 + j * p.dilation.1) as isize - p.padding.1 as isize;
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
    let path = out.join(format!("top_patches_filter{}.png", a.filter));
    tile_png(path, &title, &patches, &labels, (kh, kw), scale).map(Some)
}

/// `(activation, image, y, x)` of the `top` strongest responses of `filter` (the last of
/// `layers` is the conv layer) over the first `search` test images.
fn strongest_responses(
    layers: &[(&str, &dyn Module<f32>)],
    test: &Dataset,
    filter: usize,
    search: usize,
    top: usize,
) -> Vec<(f32, usize, usize, usize)> {
    let n = test.len().min(search);
    let mut best: Vec<(f32, usize, usize, usize)> = Vec::new();
    for start in (0..n).step_by(500) {
        let idx: Vec<usize> = (start..(start + 500).min(n)).collect();
        let b = test.batch(&idx);
        let maps = no_grad(|| {
            let mut h = Var::constant(b.x.clone());
            for (_, l) in layers {
                h = l.forward(&h, Mode::Eval);
            }
            h.value()
        });
        let (o, mh, mw) = (maps.shape()[1], maps.shape()[2], maps.shape()[3]);
        for (bi, &img) in idx.iter().enumerate() {
            let plane = &maps.data()[(bi * o + filter) * mh * mw..][..mh * mw];
            for (k, &v) in plane.iter().enumerate() {
                best.push((v, img, k / mw, k % mw));
            }
        }
        best.sort_by(|p, q| q.0.total_cmp(&p.0));
        best.truncate(top);
    }
    best
}
