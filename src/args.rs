//! The command-line flags, as typed values. Every name list a flag accepts (optimizers,
//! losses, schedules) is read from the library's one definition of it.

use std::path::PathBuf;

use backprop_optim::{OptimizerKind, ScheduleKind};
use backprop_train::LossKind;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;

/// A flag parser offering `all` by their names (shown in `--help` and in errors).
fn one_of<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(|&k| name(k))).map(move |s: String| {
        *all.iter()
            .find(|&&k| name(k) == s)
            .expect("clap checked the name")
    })
}

fn optimizers() -> impl TypedValueParser<Value = OptimizerKind> {
    one_of(OptimizerKind::ALL, OptimizerKind::name)
}

fn losses() -> impl TypedValueParser<Value = LossKind> {
    one_of(LossKind::ALL, LossKind::name)
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
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
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
    /// The loss: cross-entropy (the lectures' squared cost for regression data) by default.
    #[arg(long, value_parser = losses())]
    pub loss: Option<LossKind>,
    /// The optimizer.
    #[arg(long, default_value = "sgd", value_parser = optimizers())]
    pub optimizer: OptimizerKind,
    /// Learning rate η (default: 0.05 for sgd/nesterov, 0.001 for adam/adamw, 0.01 otherwise).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum for sgd/nesterov (default 0.9).
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Decoupled weight decay for adamw (default 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Samples per step: 1 = SGD, the dataset size = full-batch gradient descent.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Epochs (default: 10; 15 for the cnn preset; 200 for a synthetic 2-D set).
    #[arg(long, allow_negative_numbers = true)]
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
    pub lr_schedule: ScheduleKind,
    /// Shift training images randomly by up to N pixels (data augmentation; default 2 for the
    /// lenet5 and cnn presets, 0 otherwise).
    #[arg(long, allow_negative_numbers = true)]
    pub augment: Option<usize>,
    /// Linear warm-up, in steps.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub warmup: usize,
    /// Stop after N epochs without a better validation loss (restoring the best weights).
    #[arg(long, allow_negative_numbers = true)]
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
    /// squared (C = ½‖a − y‖²) or cross-entropy (default: a saved model's own loss, else
    /// squared).
    #[arg(long, value_parser = losses())]
    pub loss: Option<LossKind>,
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
    #[arg(long, default_value = "cross-entropy", value_parser = losses())]
    pub loss: LossKind,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn som_choice<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    one_of(all, name)
}

/// `backprop som`: a self-organizing map on any dataset the CLI reads.
#[derive(Args)]
pub struct SomArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The map's size, ROWSxCOLS (e.g. 10x10).
    #[arg(long, default_value = "10x10")]
    pub grid: String,
    /// The lattice.
    #[arg(long, default_value = "rectangular", value_parser = som_choice(backprop_classic::som::Topology::ALL, backprop_classic::som::Topology::name))]
    pub topology: backprop_classic::som::Topology,
    /// The neighbourhood function.
    #[arg(long, default_value = "gaussian", value_parser = som_choice(backprop_classic::som::Neighborhood::ALL, backprop_classic::som::Neighborhood::name))]
    pub neighborhood: backprop_classic::som::Neighborhood,
    /// The distance that picks the best-matching unit.
    #[arg(long, default_value = "euclidean", value_parser = som_choice(backprop_classic::som::Distance::ALL, backprop_classic::som::Distance::name))]
    pub distance: backprop_classic::som::Distance,
    /// The starting neighbourhood radius σ (in units).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub sigma: f64,
    /// The starting learning rate η.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub lr: f64,
    /// How η decays over the iterations.
    #[arg(long, default_value = "asymptotic", value_parser = som_choice(backprop_classic::som::Decay::ALL, backprop_classic::som::Decay::name))]
    pub lr_decay: backprop_classic::som::Decay,
    /// How σ decays over the iterations.
    #[arg(long, default_value = "asymptotic", value_parser = som_choice(backprop_classic::som::Decay::ALL, backprop_classic::som::Decay::name))]
    pub sigma_decay: backprop_classic::som::Decay,
    /// Initial weights.
    #[arg(long, default_value = "random", value_parser = som_choice(backprop_classic::som::Init::ALL, backprop_classic::som::Init::name))]
    pub init: backprop_classic::som::Init,
    /// online (one sample per iteration) or batch (all samples per iteration).
    #[arg(long, default_value = "online", value_parser = som_choice(backprop_classic::som::TrainMode::ALL, backprop_classic::som::TrainMode::name))]
    pub mode: backprop_classic::som::TrainMode,
    /// Iterations (default: one pass over the training samples online, 20 in batch mode).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Online: pick samples at random instead of in order.
    #[arg(long)]
    pub random_order: bool,
    /// Seed of the initial weights and the sample order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where to write the pictures and report.json (default: runs/som-<dataset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `backprop esn`: an echo state network on a time series, one-step and closed-loop.
#[derive(Args)]
pub struct EsnArgs {
    /// mackey-glass, narma10, or a CSV file whose first column is the series.
    #[arg(long, default_value = "mackey-glass")]
    pub series: String,
    /// Points to generate (mackey-glass, narma10).
    #[arg(long, default_value_t = 2000)]
    pub points: usize,
    /// Mackey-Glass delay τ.
    #[arg(long, default_value_t = 17.0, allow_negative_numbers = true)]
    pub tau: f64,
    /// Reservoir units.
    #[arg(long, default_value_t = 100)]
    pub units: usize,
    /// Spectral radius of the recurrent weights.
    #[arg(long, default_value_t = 1.25, allow_negative_numbers = true)]
    pub spectral_radius: f64,
    /// Leak rate in (0, 1].
    #[arg(long, default_value_t = 0.3, allow_negative_numbers = true)]
    pub leak_rate: f64,
    /// Input weights are ±this.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub input_scaling: f64,
    /// Fraction of non-zero recurrent weights.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub connectivity: f64,
    /// Fraction of units that receive each input.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub input_connectivity: f64,
    /// Biases uniform in ±this.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub bias_scaling: f64,
    /// The readout's ridge coefficient.
    #[arg(long, default_value_t = 1e-5, allow_negative_numbers = true)]
    pub ridge: f64,
    /// Initial states left out of the fit.
    #[arg(long, default_value_t = 100)]
    pub washout: usize,
    /// The last fraction of the steps held out as the test set.
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
    pub test_fraction: f64,
    /// Closed-loop steps generated after the training part (0: none; not for narma10).
    #[arg(long, default_value_t = 300)]
    pub generate: usize,
    /// Seed of the reservoir and the series.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write forecast.svg and report.json (default: runs/esn-<series>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
