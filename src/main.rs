//! `backprop`: train, evaluate and inspect neural networks from the command line.
//!
//! Every user-supplied value is validated before work starts; errors name the flag or file
//! and exit non-zero without a backtrace.

mod args;
mod bench;
mod commands;
mod distributed;
mod images;
mod playground;
mod progress;
mod visualize;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::args::*;

#[derive(Parser)]
#[command(
    name = "backprop",
    version,
    about = "Neural networks from the lecture to the CPU: train, evaluate, inspect."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (default: an MLP on the shipped MNIST).
    Train(Box<TrainArgs>),
    /// Evaluate a saved model on a dataset's test split.
    Eval(EvalArgs),
    /// Classify images (PNG/PGM), IDX test samples or CSV rows with a saved model.
    Predict(PredictArgs),
    /// Show a model's layers, output shapes and parameter counts.
    Summary(SummaryArgs),
    /// Sample text from a character model (trained with --dataset text:FILE).
    Generate(GenerateArgs),
    /// Check a model's gradients against central differences in f64.
    Gradcheck(GradcheckArgs),
    /// List the datasets available.
    Datasets,
    /// Print one step of backpropagation in the lectures' notation (z, a, δ, ∂C/∂b, ∂C/∂w).
    Trace(TraceArgs),
    /// Draw a computation graph with every value and gradient (SVG, PNG, DOT): an expression
    /// (--expr, --set) or one training step of a model (--model/--model-path).
    Graph(Box<GraphArgs>),
    /// The learning-rate range test (Smith 2017): loss against an exponentially growing
    /// learning rate, plotted, with a suggested rate.
    LrFind(Box<LrFindArgs>),
    /// Draw a saved model's first-layer filters, its feature maps for one input, and the
    /// test patches that most strongly activate a filter (PNG).
    Visualize(VisualizeArgs),
    /// Serve the browser playground (live 2-D training, the math of each neuron) and the
    /// digits page on this machine.
    Playground(PlaygroundArgs),
    /// Import a safetensors state dict written elsewhere (PyTorch) for a model spec, as a
    /// model that eval, predict, export and `train --init-from` accept.
    Import(ImportArgs),
    /// Write a saved model in another format (ONNX) for other runtimes. Elman, LSTM and GRU
    /// layers become ONNX's RNN, LSTM and GRU operators; a layer without an exact ONNX form
    /// (a Jordan layer, a stateful recurrent layer) is refused by name.
    Export(ExportArgs),
    /// Run the performance workloads (mlp, cnn, tiny, infer, lstm, cnn-bn, infer-cnn) and print one RESULT line each.
    Bench(BenchArgs),
    /// Train a Kohonen self-organizing map on a dataset and draw it (U-matrix, hit map,
    /// component planes, units as images).
    Som(Box<SomArgs>),
    /// Fit an echo state network to a time series (Mackey-Glass, NARMA10 or a CSV column)
    /// and forecast it one step ahead and in closed loop.
    Esn(Box<EsnArgs>),
    /// Train a radial basis function network in two stages (k-means++ centres, widths from
    /// the clusters' radii, ridge output weights) and draw its centres and, on 2-D data, its
    /// decision boundary.
    Rbf(Box<RbfArgs>),
}

/// Training allocates and frees the same large buffers every step. glibc's malloc serves
/// blocks above its mmap threshold with fresh mappings and returns them on free, so every
/// step paid for page faults and zeroing (20–30% of an epoch in perf). Keeping freed memory
/// in the heap lets it be reused instead.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Rust ignores SIGPIPE, so writing to a closed pipe (`backprop trace | head`) fails with an
/// error the command would report as a bug. Restoring the default action ends the process
/// quietly instead, as other command-line tools do.
fn quiet_on_closed_pipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: resets one signal's disposition to the default before any threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    quiet_on_closed_pipe();
    // A panic is a bug in backprop, not in the user's input: say so in one line.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown");
        eprintln!("error: internal error (a bug in backprop, please report it): {msg}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => commands::train(*a),
        Command::Eval(a) => commands::eval(a),
        Command::Predict(a) => commands::predict(a),
        Command::Summary(a) => commands::summary(a),
        Command::Gradcheck(a) => commands::gradcheck(a),
        Command::Generate(a) => commands::generate(a),
        Command::Datasets => commands::datasets(),
        Command::Visualize(a) => visualize::visualize(a),
        Command::Trace(a) => commands::trace(a),
        Command::Graph(a) => commands::graph(*a),
        Command::LrFind(a) => commands::lr_find(*a),
        Command::Playground(a) => playground::playground(a),
        Command::Import(a) => commands::import(a),
        Command::Export(a) => commands::export(a),
        Command::Bench(a) => bench::bench(a),
        Command::Som(a) => commands::som(*a),
        Command::Esn(a) => commands::esn(*a),
        Command::Rbf(a) => commands::rbf(*a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        // clap's own checks: unique argument names, valid defaults, for every subcommand
        super::Cli::command().debug_assert();
    }
}
