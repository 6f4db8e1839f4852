//! The command-line flags, as typed values. Every name list a flag accepts (optimizers,
//! losses, schedules) is read from the library's one definition of it.

use std::path::PathBuf;

use backprop_data::{Missing, Scaling, Task};
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

/// A whole-number flag: a negative or fractional value gets a message saying what is
/// allowed instead of clap's "unexpected argument '-1'" (the range itself, e.g. epochs ≥ 1,
/// is checked with the rest of the run's settings).
fn whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse::<T>()
        .map_err(|_| match s.trim().parse::<f64>() {
            Ok(v) if v < 0.0 => "must not be negative (a whole number ≥ 0)".to_string(),
            Ok(v) if v.fract() != 0.0 => "must be a whole number".to_string(),
            Ok(_) => "is out of range".to_string(),
            Err(_) => "is not a number".to_string(),
        })
}

fn optimizers() -> impl TypedValueParser<Value = OptimizerKind> {
    one_of(OptimizerKind::ALL, OptimizerKind::name)
}

fn losses() -> impl TypedValueParser<Value = LossKind> {
    one_of(LossKind::ALL, LossKind::name)
}

fn tasks() -> impl TypedValueParser<Value = Task> {
    one_of(Task::ALL, Task::name)
}

fn scalings() -> impl TypedValueParser<Value = Scaling> {
    one_of(Scaling::ALL, Scaling::name)
}

fn missing_policies() -> impl TypedValueParser<Value = Missing> {
    one_of(Missing::ALL, Missing::name)
}

/// Where the data comes from.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// mnist (shipped), idx (an MNIST-layout directory given by --data-dir), a synthetic 2-D
    /// set (circle, xor, gauss, spiral, plane, multigauss), a .csv file, or a sequence task:
    /// adding, copy, series:FILE (a time series), text:FILE (characters of a UTF-8 file).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Steps of a sequence task: the adding problem's length (default 100), the copy task's
    /// delay (10), a series' or a text's window (16, 24).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub steps: Option<usize>,
    /// A directory with train-/t10k- IDX files (e.g. Fashion-MNIST, KMNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Image encoding: grey ([0,1], the default), standardized, or binary (1 for ink). Images
    /// only; a CSV table's columns are scaled with --scale.
    #[arg(long)]
    pub encoding: Option<String>,
    /// Samples to generate for a synthetic set (the test set gets as many).
    #[arg(long, default_value_t = 1000, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub samples: usize,
    /// Noise of a synthetic set.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub noise: f64,
    /// CSV label column: a 0-based index or a header name (default: the last column).
    #[arg(long)]
    pub label_column: Option<String>,
    /// CSV task (default: classification; labels that look like numbers to predict are
    /// refused until a task is given).
    #[arg(long, value_parser = tasks())]
    pub task: Option<Task>,
    /// CSV feature scaling, fitted on the training rows (default: standard).
    #[arg(long, value_parser = scalings())]
    pub scale: Option<Scaling>,
    /// Missing CSV cells ("", NA, NaN, ?): an error naming the cell (default), drop the
    /// rows, or impute (training mean; most frequent category).
    #[arg(long, value_parser = missing_policies())]
    pub missing: Option<Missing>,
    /// Seed of a CSV file's held-out test fifth (stratified by class; default 0). Independent
    /// of --seed, so runs with different seeds are tested on the same rows.
    #[arg(long, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub split_seed: Option<u64>,
    /// Use only the first N samples (quick experiments): of the training split when
    /// training, of the test split for eval, predict --index, trace and visualize.
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub limit: Option<usize>,
}

/// Which model to build.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A preset (mlp, lenet5, cnn, rnn, lstm, gru) or a model spec file (.json or .toml). On a
    /// CSV table, mlp is one hidden layer of 100 ReLU units; elsewhere 256 and 128.
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Hidden layer widths for a quick MLP, e.g. 256,128 (overrides the preset's).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Activation of the quick MLP's hidden layers.
    #[arg(long)]
    pub activation: Option<String>,
    /// Dropout probability after each hidden layer of the quick MLP.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
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
    /// The optimizer (default: sgd; adam for a CSV table).
    #[arg(long, value_parser = optimizers())]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate η (default: 0.05 for sgd/nesterov, 0.001 for adam/adamw, 0.01 otherwise).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum for sgd/nesterov (default 0.9).
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Decoupled weight decay for adamw (default 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Samples per step: 1 = SGD, the dataset size = full-batch gradient descent (default:
    /// 64; 32 for a CSV table).
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>)]
    pub batch_size: Option<usize>,
    /// Epochs (default: 10; 15 for the cnn preset; 200 for a synthetic 2-D set; for a CSV
    /// table about 10,000 steps' worth, 30 to 400).
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>)]
    pub epochs: Option<usize>,
    /// L1 penalty λ₁.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub l1: f64,
    /// L2 penalty λ₂.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub l2: f64,
    /// Clip the global gradient norm (default: none; 1 for the Elman rnn preset).
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f64>,
    /// cosine (annealing to 0 over the run), constant, step:EPOCHS:GAMMA, exp:GAMMA, invsqrt
    /// (the lectures' η/√(epoch+1)), or plateau:PATIENCE:FACTOR.
    #[arg(long, default_value = "cosine")]
    pub lr_schedule: ScheduleKind,
    /// Shift training images randomly by up to N pixels (data augmentation; default 2 for the
    /// lenet5 and cnn presets, 0 otherwise).
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>)]
    pub augment: Option<usize>,
    /// Linear warm-up, in steps.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<usize>)]
    pub warmup: usize,
    /// Stop after N epochs without a better validation loss (restoring the best weights).
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>)]
    pub early_stopping: Option<usize>,
    /// Validation samples held out from the training data (default: 10%, at most 5000; none
    /// for a CSV table).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub validation: Option<usize>,
    /// Seed for initialization, shuffling and dropout.
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub seed: u64,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Output directory for the model, history and plots (default: runs/<dataset>-<model>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run saved in --out (optimizer state included).
    #[arg(long)]
    pub resume: bool,
    /// Replace the model already saved in --out (without it, an earlier run is never
    /// overwritten: the default directory moves on to a fresh name, an explicit --out is
    /// refused).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Start from these weights instead of random ones (fine-tuning): a safetensors state
    /// dict written by PyTorch or a backprop model file, checked name by name against the
    /// model spec.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Record per-layer diagnostics (gradient and weight norms, update-to-weight ratios,
    /// dead ReLU and saturated sigmoid/tanh shares) into diagnostics.csv/.json and plots, and
    /// warn of vanishing or exploding gradients, dead units and odd update ratios.
    #[arg(long)]
    pub diagnostics: bool,
    /// With --diagnostics: record every N steps (default: once per epoch).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true, requires = "diagnostics")]
    pub diagnostics_every: Option<usize>,
    /// Print one JSON object on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Data-parallel training over the processes of an MPI job (`mpirun -np N backprop
    /// train --distributed …`; needs a build with `--features mpi`). --batch-size is the
    /// global batch; rank 0 prints and writes the files.
    #[arg(long)]
    pub distributed: bool,
}

#[derive(Args)]
pub struct LrFindArgs {
    /// The run to test: every `train` flag (dataset, model, optimizer, batch size...).
    #[command(flatten)]
    pub train: TrainArgs,
    /// The first learning rate of the range.
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    pub start_lr: f64,
    /// The last learning rate of the range.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub end_lr: f64,
    /// Training steps (batches) from the first to the last rate.
    #[arg(long, default_value_t = 200, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub iterations: usize,
    /// Also train with each of these rates for --epochs (default 1) and report the
    /// validation loss of each, to check the suggestion (e.g. 0.003,0.01,0.03,0.1,0.3).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub sweep: Vec<f64>,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The saved model (a model.safetensors written by train, or its directory).
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: PathBuf,
    /// Override the dataset recorded in the model.
    #[command(flatten)]
    pub data: DataArgs,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
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
    #[arg(long, value_delimiter = ',', value_parser = whole::<usize>, allow_negative_numbers = true)]
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

/// `backprop generate`: text from a character model.
#[derive(Args)]
pub struct GenerateArgs {
    /// The saved character model (trained with --dataset text:FILE).
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: PathBuf,
    /// The text to continue (every character must be one the model knows).
    #[arg(long)]
    pub prompt: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 200, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub length: usize,
    /// Sampling temperature: 1 draws from the model's probabilities, lower is more
    /// conservative, higher more adventurous.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temperature: f64,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub threads: Option<usize>,
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
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub inputs: Option<usize>,
    /// Output width (instead of reading the dataset).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
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
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub index: Option<usize>,
    /// The target: values for the squared cost, or a class index for cross-entropy.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub target: Vec<f64>,
    /// squared (C = ½‖a − y‖²) or cross-entropy (default: a saved model's own loss, else
    /// squared).
    #[arg(long, value_parser = losses())]
    pub loss: Option<LossKind>,
    /// η for the step shown.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub lr: f64,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the trace as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct GraphArgs {
    /// An expression to draw, e.g. "sigmoid(w1*x1 + w2*x2 + b)": + − × ÷ (or + - * /), ^ with
    /// a number, exp, log, tanh, sigmoid, relu, max(a, b), parentheses.
    #[arg(long, conflicts_with_all = ["model", "model_path"])]
    pub expr: Option<String>,
    /// The values of the expression's names: x1=1,x2=-2,w1=0.5,w2=-1,b=0.1.
    #[arg(long, allow_hyphen_values = true, requires = "expr")]
    pub set: Option<String>,
    /// Instead of an expression, one training step of a model spec (.json/.toml) or preset.
    #[arg(long, conflicts_with = "model_path")]
    pub model: Option<String>,
    /// Instead of an expression, one training step of a saved model.
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: Option<PathBuf>,
    /// The input values of the step, comma-separated (e.g. 0.35,0.9).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub input: Vec<f64>,
    /// Use this test sample of a saved model's dataset as the input (and its label as the target).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub index: Option<usize>,
    /// The target: values for the squared cost, or a class index for cross-entropy.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub target: Vec<f64>,
    /// squared or cross-entropy (default: a saved model's own loss, else squared).
    #[arg(long, value_parser = losses())]
    pub loss: Option<LossKind>,
    /// op (every engine op), layer (one box per layer), or auto (op level up to 60 nodes).
    #[arg(long, default_value = "auto", value_parser = ["auto", "op", "layer"])]
    pub level: String,
    /// At layer level, draw these layers op by op (comma-separated names, e.g. fc2,cost).
    #[arg(long, value_delimiter = ',')]
    pub expand: Vec<String>,
    /// Where to write: PATH.svg, PATH.png and PATH.dot.
    #[arg(long, default_value = "graph")]
    pub out: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
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
    #[arg(long, default_value_t = 0, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub index: usize,
    /// The first conv layer's filter whose strongest patches are drawn.
    #[arg(long, default_value_t = 0, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub filter: usize,
    /// How many patches.
    #[arg(long, default_value_t = 32, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub top: usize,
    /// How many test samples to search for them.
    #[arg(long, default_value_t = 5000, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub search: usize,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// mlp, cnn, tiny, infer, lstm, cnn-bn, infer-cnn, or all (the first four; see
    /// docs/PERFORMANCE.md).
    #[arg(default_value = "all")]
    pub workload: String,
    /// Threads (the workloads' contract is 2).
    #[arg(long, default_value_t = 2, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub threads: usize,
    /// Seed of data order and initial weights.
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub seed: u64,
    /// MNIST-layout IDX directory (default: the shipped data/mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write the network that `infer` or `infer-cnn` measures to this ONNX file, so the
    /// peers run the same weights.
    #[arg(long)]
    pub export: Option<PathBuf>,
}

#[derive(Args)]
pub struct PlaygroundArgs {
    /// The address to listen on (loopback by default; other machines cannot connect).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 8080, value_parser = whole::<u16>, allow_negative_numbers = true)]
    pub port: u16,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// The MNIST checkpoint the digits page uses; when the file does not exist, the default
    /// MLP is trained into it on first use (default: where `backprop train` saves it).
    #[arg(long)]
    pub digits_model: Option<PathBuf>,
    /// Epochs of that first-use training.
    #[arg(long, default_value_t = 3, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub digits_epochs: usize,
    /// MNIST-layout IDX directory for that training (default: the shipped data/mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Most sessions (browser tabs) kept at once.
    #[arg(long, default_value_t = 32, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub max_sessions: usize,
    /// Most sessions training at the same time.
    #[arg(long, default_value_t = 4, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub max_playing: usize,
    /// Seconds after which an unwatched, idle session is closed.
    #[arg(long, default_value_t = 600, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub session_ttl: u64,
    /// Most connections open at once (frame streams included); one more gets a 503.
    #[arg(long, default_value_t = 512, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (idle and slow connections are
    /// closed after it), and again its body.
    #[arg(long, default_value_t = 10, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub request_timeout: u64,
}

#[derive(Args)]
pub struct GradcheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input width (default: the dataset's).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub inputs: Option<usize>,
    /// Output width (default: the dataset's).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub outputs: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Samples in the random check batch.
    #[arg(long, default_value_t = 4, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub batch: usize,
    /// Check at most this many elements of each parameter (evenly spaced); 0 = all.
    #[arg(long, default_value_t = 64, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub max_elements: usize,
    /// Loss to differentiate (default: cross-entropy, or the squared cost for a model with
    /// one output, where a softmax over one class would be constant).
    #[arg(long, value_parser = losses())]
    pub loss: Option<LossKind>,
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub seed: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The safetensors state dict to import (e.g. PyTorch's
    /// `safetensors.torch.save_file(model.state_dict(), path)`).
    #[arg(long)]
    pub weights: PathBuf,
    /// The data the model takes (its input width, image shape, classes and encoding are
    /// recorded with the model, as `train` records them).
    #[command(flatten)]
    pub data: DataArgs,
    /// The model spec the weights belong to; `backprop summary` shows the names it builds.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output directory for model.safetensors (default: runs/<dataset>-<model>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The seed the data is read with (synthetic sets and splits), as given to `train`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// ONNX (opset 21): runs in ONNX Runtime, tract and most serving stacks. Elman (tanh,
    /// ReLU), LSTM and GRU layers become ONNX's RNN, LSTM and GRU operators; a Jordan layer
    /// and a stateful recurrent layer are refused.
    Onnx,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The saved model (a model.safetensors written by train or import, or its directory).
    #[arg(long = "model-path", alias = "checkpoint")]
    pub model_path: PathBuf,
    /// The format to write.
    #[arg(long, value_enum, default_value = "onnx")]
    pub format: ExportFormat,
    /// The file to write (default: model.onnx beside the model).
    #[arg(long)]
    pub out: Option<PathBuf>,
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
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub iterations: Option<usize>,
    /// Online: pick samples at random instead of in order.
    #[arg(long)]
    pub random_order: bool,
    /// Seed of the initial weights and the sample order.
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub seed: u64,
    /// Threads (default: all cores).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Where to write the pictures and report.json (default: runs/som-<dataset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `backprop rbf`: a radial basis function network trained in two stages on any dataset
/// the CLI reads.
#[derive(Args)]
pub struct RbfArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Gaussian basis functions (k-means clusters), at most the training samples.
    #[arg(long, default_value_t = 100, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub centres: usize,
    /// Lloyd iterations after the k-means++ start (0: the k-means++ picks as they are).
    #[arg(long, default_value_t = 10, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub kmeans_iterations: usize,
    /// Run k-means on a seeded random subset of this many training samples (0: all).
    #[arg(long, default_value_t = 20_000, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub kmeans_samples: usize,
    /// Each width σⱼ is this times the RMS distance of cluster j's samples to its centre.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub width_scale: f64,
    /// Ridge coefficient of the output weights (per sample; the bias is not penalised).
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    pub ridge: f64,
    /// Seed of k-means++, the k-means subset and a synthetic set.
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub seed: u64,
    /// Threads (default: all cores).
    #[arg(long, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Where to write the pictures and report.json (default: runs/rbf-<dataset>).
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
    #[arg(long, default_value_t = 2000, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub points: usize,
    /// Mackey-Glass delay τ.
    #[arg(long, default_value_t = 17.0, allow_negative_numbers = true)]
    pub tau: f64,
    /// Reservoir units.
    #[arg(long, default_value_t = 100, value_parser = whole::<usize>, allow_negative_numbers = true)]
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
    #[arg(long, default_value_t = 100, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub washout: usize,
    /// The last fraction of the steps held out as the test set.
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
    pub test_fraction: f64,
    /// Closed-loop steps generated after the training part (0: none; not for narma10).
    #[arg(long, default_value_t = 300, value_parser = whole::<usize>, allow_negative_numbers = true)]
    pub generate: usize,
    /// Seed of the reservoir and the series.
    #[arg(long, default_value_t = 0, value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub seed: u64,
    /// Where to write forecast.svg and report.json (default: runs/esn-<series>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
