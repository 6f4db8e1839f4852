//! `backprop graph`: the computation graph with every value and gradient, drawn as SVG, PNG
//! and Graphviz DOT — of an expression (`--expr`, `--set`) or of one training step of a model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use backprop_train::checkpoint::atomic_write;
use backprop_train::graph::{
    evaluate_expr, fmt_num, parse_assignments, parse_expr, step_graph, Graph, Level,
};

use crate::args::{GraphArgs, TraceArgs};

pub fn graph(a: GraphArgs) -> Result<ExitCode> {
    let drawing = match &a.expr {
        Some(src) => expression(src, a.set.as_deref())?,
        None => step(&a)?,
    };
    write_all(&drawing, &a.out)?;
    Ok(ExitCode::SUCCESS)
}

fn expression(src: &str, set: Option<&str>) -> Result<Graph> {
    let expr = parse_expr(src).map_err(|e| anyhow!("--expr \"{src}\": {e}"))?;
    let values = match set {
        Some(s) => parse_assignments(s).map_err(|e| anyhow!("--set: {e}"))?,
        None => Default::default(),
    };
    let g = evaluate_expr(&expr, &values).map_err(|e| {
        if e.column == 0 {
            anyhow!("--set: {e}")
        } else {
            anyhow!("--set: {} (at column {} of --expr)", e.message, e.column)
        }
    })?;
    let out = &g.nodes[g.output()];
    println!("out = {}", fmt_num(out.value));
    for (name, _) in expr.variables() {
        let n = g.variable(&name).expect("evaluated");
        println!("  ∂out/∂{name} = {}", fmt_num(n.grad.unwrap_or(0.0)));
    }
    Ok(g.to_graph(src))
}

fn step(a: &GraphArgs) -> Result<Graph> {
    if a.model.is_none() && a.model_path.is_none() {
        bail!("give --expr EXPRESSION (with --set), or --model SPEC / --model-path MODEL for one training step");
    }
    let level = match a.level.as_str() {
        "op" => Level::Op,
        "layer" => Level::Layer,
        _ => Level::Auto,
    };
    let t = TraceArgs {
        model: a.model.clone(),
        model_path: a.model_path.clone(),
        input: a.input.clone(),
        index: a.index,
        target: a.target.clone(),
        loss: a.loss,
        lr: 1.0,
        data: a.data.clone(),
        json: false,
    };
    let (model, input, cost) = super::trace::prepare(&t)?;
    let g = step_graph(&model, &input, &cost).map_err(|e| anyhow!("{e}"))?;
    let level = g.resolve(level);
    let drawing = g
        .to_graph(level, &a.expand)
        .map_err(|e| anyhow!("--expand: {e}"))?;
    println!(
        "C = {} ({}); {} nodes in the engine's graph, drawn at {} level as {} boxes",
        fmt_num(g.cost),
        g.cost_text,
        g.nodes.len(),
        if level == Level::Op { "op" } else { "layer" },
        drawing.nodes.len()
    );
    Ok(drawing)
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    atomic_write(path, |f| std::io::Write::write_all(f, bytes))
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_all(g: &Graph, stem: &Path) -> Result<()> {
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("--out {}: cannot create {}", stem.display(), dir.display())
        })?;
    }
    let svg = with_ext(stem, "svg");
    write(&svg, g.to_svg().as_bytes()).map_err(|e| anyhow!("--out {}: {e}", svg.display()))?;
    let dot = with_ext(stem, "dot");
    write(&dot, g.to_dot().as_bytes()).map_err(|e| anyhow!("--out {}: {e}", dot.display()))?;
    println!("svg: {}\ndot: {}", svg.display(), dot.display());
    let png = with_ext(stem, "png");
    match g.to_png() {
        Ok(bytes) => {
            write(&png, &bytes).map_err(|e| anyhow!("--out {}: {e}", png.display()))?;
            println!("png: {}", png.display());
        }
        Err(e) => eprintln!("warning: no PNG: {e}"),
    }
    Ok(())
}
