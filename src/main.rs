//! `backprop`: train, evaluate and inspect neural networks from the command line.
//!
//! Every user-supplied value is validated before work starts; errors name the flag or file
//! and exit non-zero without a backtrace.

mod bench;
mod commands;
mod data;
mod images;
mod playground;
mod progress;
mod visualize;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    /// Check a model's gradients against central differences in f64.
    Gradcheck(GradcheckArgs),
    /// List the datasets available.
    Datasets,
    /// Print one step of backpropagation in the lectures' notation (z, a, δ, ∂C/∂b, ∂C/∂w).
    Trace(TraceArgs),
    /// Draw a saved model's first-layer filters, its feature maps for one input, and the
    /// test patches that most strongly activate a filter (PNG).
    Visualize(VisualizeArgs),
    /// Serve the browser playground (live 2-D training, the math of each neuron) and the
    /// digits page on this machine.
    Playground(PlaygroundArgs),
    /// Run the performance workloads (mlp, cnn, tiny, infer) and print one RESULT line each.
    Bench(BenchArgs),
}

/// Where the data comes from.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// mnist (shipped), idx (an MNIST-layout directory given by --data-dir), a synthetic 2-D
    /// set (circle, xor, gauss, spiral, plane, multigauss), or a .csv file.
    #[arg(long)]
    pub dataset: Option<String>,
    /// A directory with train-/t10k- IDX files (e.g. Fashion-MNIST, KMNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Image encoding: grey ([0,1]), standardized, or binary (1 for ink).
    #[arg(long, default_value = "grey")]
    pub encoding: String,
    /// Samples to generate for a synthetic set (the test set gets as many).
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Noise of a synthetic set.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// CSV label column: a 0-based index or a header name (default: the last column).
    #[arg(long)]
    pub label_column: Option<String>,
    /// CSV task: classification or regression.
    #[arg(long, default_value = "classification")]
    pub task: String,
    /// Use only the first N training samples (quick experiments).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Which model to build.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A preset (mlp, lenet5, cnn) or a model spec file (.json or .toml).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Hidden layer widths for a quick MLP, e.g. 256,128 (overrides the preset's).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Activation of the quick MLP's hidden layers.
    #[arg(long)]
    pub activation: Option<String>,
    /// Dropout probability after each hidden layer of the quick MLP.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// cross-entropy, squared (the lectures' quadratic cost), absolute, or hinge.
    #[arg(long, default_value = "cross-entropy")]
    pub loss: String,
    /// sgd, nesterov, adagrad, rmsprop, adam or adamw.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Learning rate η (default: 0.05 for sgd/nesterov, 0.001 for adam/adamw, 0.01 otherwise).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum for sgd/nesterov.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Decoupled weight decay for adamw.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Samples per step: 1 = SGD, the dataset size = full-batch gradient descent.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Epochs (default: 10; 15 for the cnn preset; 200 for a synthetic 2-D set).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// L1 penalty λ₁.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub l1: f64,
    /// L2 penalty λ₂.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub l2: f64,
    /// Clip the global gradient norm.
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f64>,
    /// cosine (annealing to 0 over the run), constant, step:EPOCHS:GAMMA, exp:GAMMA, invsqrt
    /// (the lectures' η/√(epoch+1)), or plateau:PATIENCE:FACTOR.
    #[arg(long, default_value = "cosine")]
    pub lr_schedule: String,
    /// Shift training images randomly by up to N pixels (data augmentation; default 2 for the
    /// lenet5 and cnn presets, 0 otherwise).
    #[arg(long)]
    pub augment: Option<usize>,
    /// Linear warm-up, in steps.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Stop after N epochs without a better validation loss (restoring the best weights).
    #[arg(long)]
    pub early_stopping: Option<usize>,
    /// Validation samples held out from the training data (default: 10%, at most 5000).
    #[arg(long)]
    pub validation: Option<usize>,
    /// Seed for initialization, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory for the model, history and plots (default: runs/<dataset>-<model>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run saved in --out (optimizer state included).
    #[arg(long)]
    pub resume: bool,
    /// Print one JSON object on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The saved model (a model.safetensors written by train, or its directory).
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: PathBuf,
    /// Override the dataset recorded in the model.
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PredictArgs {
    /// The saved model.
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: PathBuf,
    /// PNG or PGM images to classify.
    pub images: Vec<PathBuf>,
    /// Indices into the dataset's test split (IDX datasets).
    #[arg(long, value_delimiter = ',')]
    pub index: Vec<usize>,
    /// A CSV file of feature rows (no label column) to classify.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Read each image as a number: split it into digits, normalize each as MNIST does, and
    /// classify them left to right.
    #[arg(long)]
    pub segment: bool,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Summarise a saved model instead of a spec.
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Input width (instead of reading the dataset).
    #[arg(long)]
    pub inputs: Option<usize>,
    /// Output width (instead of reading the dataset).
    #[arg(long)]
    pub outputs: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TraceArgs {
    /// A model spec file (.json/.toml, e.g. with explicit weights) or a preset.
    #[arg(long, conflicts_with = "model_path")]
    pub model: Option<String>,
    /// A saved model instead of a spec.
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: Option<PathBuf>,
    /// The input values, comma-separated (e.g. 0.35,0.9).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub input: Vec<f64>,
    /// Use this test sample of the model's dataset as the input (and its label as the target).
    #[arg(long)]
    pub index: Option<usize>,
    /// The target: values for the squared cost, or a class index for cross-entropy.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub target: Vec<f64>,
    /// squared (C = ½‖a − y‖²) or cross-entropy.
    #[arg(long, default_value = "squared")]
    pub loss: String,
    /// η for the step shown.
    #[arg(long, default_value_t = 1.0)]
    pub lr: f64,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the trace as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct VisualizeArgs {
    /// The saved model.
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: PathBuf,
    /// Where to write the PNGs (default: a `visualize` folder next to the model).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The test sample whose feature maps are drawn.
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// The first conv layer's filter whose strongest patches are drawn.
    #[arg(long, default_value_t = 0)]
    pub filter: usize,
    /// How many patches.
    #[arg(long, default_value_t = 32)]
    pub top: usize,
    /// How many test samples to search for them.
    #[arg(long, default_value_t = 5000)]
    pub search: usize,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// mlp, cnn, tiny, infer or all (see docs/PERFORMANCE.md).
    #[arg(default_value = "all")]
    pub workload: String,
    /// Threads (the workloads' contract is 2).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seed of data order and initial weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// MNIST-layout IDX directory (default: the shipped data/mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct PlaygroundArgs {
    /// The address to listen on (loopback by default; other machines cannot connect).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// The MNIST checkpoint the digits page uses; when the file does not exist, the default
    /// MLP is trained into it on first use (default: where `backprop train` saves it).
    #[arg(long)]
    pub digits_model: Option<PathBuf>,
    /// Epochs of that first-use training.
    #[arg(long, default_value_t = 3)]
    pub digits_epochs: usize,
    /// MNIST-layout IDX directory for that training (default: the shipped data/mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Most sessions (browser tabs) kept at once.
    #[arg(long, default_value_t = 32)]
    pub max_sessions: usize,
    /// Most sessions training at the same time.
    #[arg(long, default_value_t = 4)]
    pub max_playing: usize,
    /// Seconds after which an unwatched, idle session is closed.
    #[arg(long, default_value_t = 600)]
    pub session_ttl: u64,
}

#[derive(Args)]
pub struct GradcheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input width (default: the dataset's).
    #[arg(long)]
    pub inputs: Option<usize>,
    /// Output width (default: the dataset's).
    #[arg(long)]
    pub outputs: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Samples in the random check batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Check at most this many elements of each parameter (evenly spaced); 0 = all.
    #[arg(long, default_value_t = 64)]
    pub max_elements: usize,
    /// Loss to differentiate.
    #[arg(long, default_value = "cross-entropy")]
    pub loss: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
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

fn main() -> ExitCode {
    tune_allocator();
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
        Command::Datasets => commands::datasets(),
        Command::Visualize(a) => visualize::visualize(a),
        Command::Trace(a) => commands::trace(a),
        Command::Playground(a) => playground::playground(a),
        Command::Bench(a) => bench::bench(a),
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
