//! The one definition of a training run: [`RunConfig`] says what to train on what, with
//! which settings, and where the results go; it owns the defaults policy (the learning rate
//! per optimizer, epochs and augmentation per preset, the regression loss) and validates
//! itself, returning a [`ConfigError`] that names the [`Field`]. The CLI only translates its
//! flags into a `RunConfig` and renders what [`RunConfig::prepare`] and the
//! [`Trainer`](crate::Trainer) return.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backprop_data::{
    adding_problem, copy_task, digit_names, load_idx_pair, load_table_split, parse_series,
    series_windows, synthetic, Dataset, Encoding, RawImages, Table, TableOptions, TableSchema,
    Targets, TextCorpus, SYNTHETIC,
};
use backprop_nn::{Module, Sequential, SpecError};
use backprop_optim::{OptimizerKind, ScheduleKind};
use serde_json::{json, Value};

use crate::config::{non_negative, ConfigError, Field, LossKind, TrainConfig};
use crate::saved::{encoding_to_json, model_metadata, table_metadata};
use crate::spec::ModelSpec;

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The shipped MNIST (`data/mnist`).
    Mnist,
    /// An MNIST-layout directory of IDX files (`train-`/`t10k-`, gzipped or raw).
    Idx(PathBuf),
    /// A CSV table; a fixed fifth of its rows (stratified by class, seeded by
    /// [`TableOptions::split_seed`]) is held out as the test set.
    Csv {
        /// The file.
        path: PathBuf,
        /// Label column, task, header, scaling, missing cells, split seed.
        table: TableOptions,
    },
    /// A sequence task for recurrent networks; its samples are sequences `[T, F]`.
    Sequence {
        /// Which task.
        task: SequenceTask,
        /// Its steps (length, delay or window; default [`SequenceTask::default_steps`]).
        steps: Option<usize>,
        /// Sequences to generate for the adding problem and the copy task (the test set
        /// gets as many).
        samples: usize,
    },
    /// A synthetic 2-D set (a test set of the same size is drawn with another seed).
    Synthetic {
        /// One of [`SYNTHETIC`].
        name: String,
        /// Points.
        samples: usize,
        /// Noise.
        noise: f64,
    },
}

impl DataSource {
    /// The short name a run directory and a checkpoint use (`mnist`, `spiral`, `iris`).
    pub fn short_name(&self) -> String {
        match self {
            DataSource::Mnist => "mnist".into(),
            DataSource::Idx(_) => "idx".into(),
            DataSource::Csv { path, .. } => path
                .file_stem()
                .map_or("csv".into(), |s| s.to_string_lossy().into_owned()),
            DataSource::Synthetic { name, .. } => name.clone(),
            DataSource::Sequence { task, .. } => task.short_name(),
        }
    }

    /// Whether this is a synthetic 2-D set.
    pub fn is_synthetic(&self) -> bool {
        matches!(self, DataSource::Synthetic { .. })
    }

    /// Whether this is character-level text (`text:FILE`).
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            DataSource::Sequence {
                task: SequenceTask::Text(_),
                ..
            }
        )
    }
}

/// A sequence task (see [`DataSource::Sequence`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SequenceTask {
    /// The adding problem over T steps (default 100): a regression whose mean predictor
    /// scores MSE 1/6.
    Adding,
    /// The copy task: 5 symbols of 8 recalled after a delay of T blanks (default 10).
    Copy,
    /// A series file (one number per line, or the last column of a CSV) cut into windows of
    /// T values (default 16), each predicting the next; the last fifth is the test set.
    Series(PathBuf),
    /// Character-level text from any UTF-8 file: windows of T characters (default 24), each
    /// predicting the next; the last tenth of the text is the test set.
    Text(PathBuf),
}

impl SequenceTask {
    /// The `--dataset` forms, for messages.
    pub const FORMS: &'static str = "adding, copy, series:FILE, text:FILE";

    /// Parses `adding`, `copy`, `series:FILE` or `text:FILE`; `None` for anything else.
    pub fn parse(s: &str) -> Option<SequenceTask> {
        match s.split_once(':') {
            None if s == "adding" => Some(SequenceTask::Adding),
            None if s == "copy" => Some(SequenceTask::Copy),
            Some(("series", f)) => Some(SequenceTask::Series(PathBuf::from(f))),
            Some(("text", f)) => Some(SequenceTask::Text(PathBuf::from(f))),
            _ => None,
        }
    }

    /// The `--dataset` value that names it (what a checkpoint records).
    pub fn name(&self) -> String {
        match self {
            SequenceTask::Adding => "adding".into(),
            SequenceTask::Copy => "copy".into(),
            SequenceTask::Series(p) => format!("series:{}", p.display()),
            SequenceTask::Text(p) => format!("text:{}", p.display()),
        }
    }

    fn short_name(&self) -> String {
        match self {
            SequenceTask::Adding => "adding".into(),
            SequenceTask::Copy => "copy".into(),
            SequenceTask::Series(p) | SequenceTask::Text(p) => p
                .file_stem()
                .map_or("sequence".into(), |s| s.to_string_lossy().into_owned()),
        }
    }

    /// The steps when none are given: 100, 10, 16 and 24.
    pub fn default_steps(&self) -> usize {
        match self {
            SequenceTask::Adding => 100,
            SequenceTask::Copy => 10,
            SequenceTask::Series(_) => 16,
            SequenceTask::Text(_) => 24,
        }
    }

    /// The task's `steps` from a sequence's length `t` (a saved model's input shape).
    pub fn steps_from_length(&self, t: usize) -> usize {
        match self {
            SequenceTask::Copy => t.saturating_sub(COPY_SYMBOLS + 1),
            _ => t,
        }
    }
}

/// Epochs a character model trains for by default. On the shipped `coriolanus.txt`
/// (windows of 24, every character a target once an epoch) the `lstm` preset with Adam
/// (η = 0.002, cosine) reaches a test perplexity of 5.17 (a unigram model: 27.79) and writes
/// speaker names, verse lines and many real words; by the 8th epoch the validation loss
/// gains little (1.676, 1.671, 1.670 over the last three) while the training loss keeps
/// falling below it (1.52).
pub const TEXT_EPOCHS: usize = 8;

/// Adam's η for a character model: char-rnn's 0.002, twice Adam's general default, the rate
/// [`TEXT_EPOCHS`] was measured with.
const TEXT_ADAM_LR: f64 = 0.002;

/// The copy task's symbols to recall, and the alphabet they come from.
const COPY_SYMBOLS: usize = 5;
const COPY_ALPHABET: usize = 8;

/// The data of a run and how it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    /// Where it comes from.
    pub source: DataSource,
    /// How IDX images are encoded (`None`: grey levels in [0, 1]).
    pub encoding: Option<String>,
    /// Use only the first N training samples.
    pub limit: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: DataSource::Mnist,
            encoding: None,
            limit: None,
        }
    }
}

/// The shipped MNIST: `data/mnist` under the working directory, else under the source tree.
pub fn default_mnist_dir() -> PathBuf {
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
    }
}

/// What [`DataConfig::load`] read.
#[derive(Debug, Clone)]
pub struct LoadedData {
    /// The dataset's short name (`mnist`, `idx`, a synthetic set's name, the CSV's path).
    pub name: String,
    /// Training samples (before any validation split).
    pub train: Dataset,
    /// Test samples.
    pub test: Option<Dataset>,
    /// How inputs were encoded, as recorded in checkpoints.
    pub encoding: Value,
    /// Where IDX files came from, if anywhere.
    pub data_dir: Option<PathBuf>,
    /// For a table: its data contract (scaling, categories, classes), fitted on the
    /// training rows.
    pub table: Option<TableSchema>,
    /// For a table: the test rows' positions among its data rows (0-based).
    pub test_rows: Vec<usize>,
    /// For text: the perplexity of a unigram model (character frequencies of the training
    /// text) on the test text, the baseline a character model must beat.
    pub unigram_perplexity: Option<f64>,
}

fn data_err(field: Field) -> impl Fn(backprop_data::DataError) -> ConfigError {
    move |e| ConfigError::new(field, e.to_string())
}

impl DataConfig {
    /// Reads the data. `recorded` is the encoding saved with a model, which then takes
    /// precedence so a model sees inputs encoded as in training; `need_train` false reads
    /// only the test split where the format allows.
    ///
    /// # Errors
    /// A missing or malformed file, an unknown encoding, a bad synthetic size, naming the
    /// setting.
    pub fn load(
        &self,
        seed: u64,
        recorded: Option<&Value>,
        need_train: bool,
    ) -> Result<LoadedData, ConfigError> {
        let mut loaded = match &self.source {
            DataSource::Mnist => self.load_idx(&default_mnist_dir(), true, recorded, need_train)?,
            DataSource::Idx(dir) => self.load_idx(dir, false, recorded, need_train)?,
            DataSource::Synthetic {
                name,
                samples,
                noise,
            } => {
                if let Some(e) = &self.encoding {
                    return Err(ConfigError::new(
                        Field::Encoding,
                        format!("{e}: encodings apply to images; the 2-D set {name} is used as generated"),
                    ));
                }
                load_synthetic(name, *samples, *noise, seed)?
            }
            DataSource::Sequence {
                task,
                steps,
                samples,
            } => {
                if let Some(e) = &self.encoding {
                    return Err(ConfigError::new(
                        Field::Encoding,
                        format!("{e}: encodings apply to images; the sequences of {} are used as they are", task.name()),
                    ));
                }
                load_sequence(task, steps.unwrap_or(task.default_steps()), *samples, seed)?
            }
            DataSource::Csv { path, table } => {
                if let Some(e) = &self.encoding {
                    return Err(ConfigError::new(
                        Field::Encoding,
                        format!("{e}: encodings apply to images; a table's numeric columns are scaled with --scale (standard, minmax or none)"),
                    ));
                }
                load_table(path, table)?
            }
        };
        if let Some(n) = self.limit {
            if n == 0 {
                return Err(ConfigError::new(Field::Limit, "0: must be at least 1"));
            }
            let n = n.min(loaded.train.len());
            loaded.train = loaded.train.subset(&(0..n).collect::<Vec<_>>());
        }
        Ok(loaded)
    }

    fn encoding(&self, pixels: &[u8], recorded: Option<&Value>) -> Result<Encoding, ConfigError> {
        if let Some(v) = recorded {
            return crate::saved::encoding_from_json(v)
                .map_err(|e| ConfigError::new(Field::Encoding, e));
        }
        let name = self.encoding.as_deref().unwrap_or("grey");
        match Encoding::parse(name) {
            Some("grey") => Ok(Encoding::Grey),
            Some("binary") => Ok(Encoding::Binary),
            Some(_) => Ok(Encoding::standardized_from(pixels)),
            None => Err(ConfigError::new(
                Field::Encoding,
                format!("{name}: choose grey, standardized or binary"),
            )),
        }
    }

    fn load_idx(
        &self,
        dir: &Path,
        shipped: bool,
        recorded: Option<&Value>,
        need_train: bool,
    ) -> Result<LoadedData, ConfigError> {
        if !dir.is_dir() {
            return Err(ConfigError::new(
                Field::DataDir,
                format!("{}: no such directory", dir.display()),
            ));
        }
        let test_raw = load_idx_pair(dir, "t10k").map_err(data_err(Field::DataDir))?;
        let train_raw = if need_train {
            Some(load_idx_pair(dir, "train").map_err(data_err(Field::DataDir))?)
        } else {
            None
        };
        let classes = class_ids_used(dir, train_raw.iter().chain([&test_raw]))?;
        let encoding = self.encoding(&train_raw.as_ref().unwrap_or(&test_raw).pixels, recorded)?;
        let dname = if shipped {
            "mnist".to_string()
        } else {
            dir.display().to_string()
        };
        let names = digit_names(classes);
        let test = test_raw
            .clone()
            .into_dataset(&dname, encoding, names.clone())
            .map_err(data_err(Field::DataDir))?;
        let train = match train_raw {
            Some(r) => r
                .into_dataset(&dname, encoding, names)
                .map_err(data_err(Field::DataDir))?,
            None => test.clone(),
        };
        Ok(LoadedData {
            name: if shipped { "mnist" } else { "idx" }.into(),
            train,
            test: Some(test),
            encoding: encoding_to_json(&encoding),
            data_dir: Some(dir.to_path_buf()),
            table: None,
            test_rows: Vec::new(),
            unigram_perplexity: None,
        })
    }
}

/// The number of classes IDX labels need (the largest label plus one, at least 2).
///
/// # Errors
/// When the labels leave most of that range unused (one stray label of 200 among digits
/// would make a 201-class model): a corrupt or foreign label file.
fn class_ids_used<'a>(
    dir: &Path,
    raws: impl Iterator<Item = &'a RawImages>,
) -> Result<usize, ConfigError> {
    let mut used = std::collections::BTreeMap::<usize, usize>::new();
    for r in raws {
        for &l in &r.labels {
            *used.entry(l).or_default() += 1;
        }
    }
    let classes = used.keys().next_back().map_or(0, |m| m + 1).max(2);
    if classes > 2 && used.len() * 2 < classes {
        let (&max, &count) = used.iter().next_back().expect("labels exist");
        return Err(ConfigError::new(
            Field::DataDir,
            format!(
                "{}: the labels use {} distinct class ids, but the largest is {max} ({count} image{}), which would make a {classes}-class model with most classes never seen; class ids should run from 0 without large gaps (a corrupt label file?)",
                dir.display(),
                used.len(),
                if count == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(classes)
}

fn load_synthetic(
    name: &str,
    samples: usize,
    noise: f64,
    seed: u64,
) -> Result<LoadedData, ConfigError> {
    if samples < 2 {
        return Err(ConfigError::new(
            Field::Samples,
            format!("{samples}: a synthetic set needs at least 2 samples"),
        ));
    }
    non_negative(Field::Noise, noise)?;
    let train = synthetic(name, samples, noise, seed).map_err(data_err(Field::Dataset))?;
    let test = synthetic(name, samples, noise, seed.wrapping_add(1_000_003))
        .map_err(data_err(Field::Dataset))?;
    Ok(LoadedData {
        name: name.to_string(),
        train,
        test: Some(test),
        encoding: json!({"encoding": "none"}),
        data_dir: None,
        table: None,
        test_rows: Vec::new(),
        unigram_perplexity: None,
    })
}

/// Steps beyond which a sequence task is refused before anything is generated.
const MAX_STEPS: usize = 100_000;

fn load_sequence(
    task: &SequenceTask,
    steps: usize,
    samples: usize,
    seed: u64,
) -> Result<LoadedData, ConfigError> {
    if steps == 0 || steps > MAX_STEPS {
        return Err(ConfigError::new(
            Field::Steps,
            format!("{steps}: must be in 1..={MAX_STEPS}"),
        ));
    }
    let generated = matches!(task, SequenceTask::Adding | SequenceTask::Copy);
    if generated && !(2..=1_000_000).contains(&samples) {
        return Err(ConfigError::new(
            Field::Samples,
            format!("{samples}: a generated sequence task needs 2 to 1,000,000 samples"),
        ));
    }
    let test_seed = seed.wrapping_add(1_000_003);
    let ds = data_err(Field::Dataset);
    let mut unigram = None;
    let (train, test) = match task {
        SequenceTask::Adding => (
            adding_problem(samples, steps.max(2), seed).map_err(&ds)?,
            adding_problem(samples, steps.max(2), test_seed).map_err(&ds)?,
        ),
        SequenceTask::Copy => {
            let make = |s| copy_task(samples, COPY_SYMBOLS, steps, COPY_ALPHABET, s);
            (make(seed).map_err(&ds)?, make(test_seed).map_err(&ds)?)
        }
        SequenceTask::Series(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new(Field::Dataset, format!("{name}: {e}")))?;
            let values = parse_series(&name, &text).map_err(&ds)?;
            let cut = values.len() * 4 / 5;
            let train = series_windows(&name, &values[..cut], steps).map_err(&ds)?;
            // the test windows start where training ends, so the two overlap in no target
            let test =
                series_windows(&name, &values[cut.saturating_sub(steps)..], steps).map_err(&ds)?;
            (train, test)
        }
        SequenceTask::Text(path) => {
            let name = path.display().to_string();
            let corpus = TextCorpus::load(path).map_err(&ds)?;
            let cut = corpus.chars.len() * 9 / 10;
            let n = corpus.chars.len();
            let train = corpus.windows(&name, 0..cut, steps).map_err(&ds)?;
            let test = corpus
                .windows(&name, cut.saturating_sub(steps)..n, steps)
                .map_err(&ds)?;
            unigram = Some(corpus.unigram_perplexity(0..cut, cut..n));
            (train, test)
        }
    };
    Ok(LoadedData {
        name: task.name(),
        train,
        test: Some(test),
        encoding: json!({"encoding": "none"}),
        data_dir: None,
        table: None,
        test_rows: Vec::new(),
        unigram_perplexity: unigram,
    })
}

fn load_table(path: &Path, opts: &TableOptions) -> Result<LoadedData, ConfigError> {
    let table = Table::load(path).map_err(data_err(Field::Dataset))?;
    let split = load_table_split(table, opts).map_err(data_err(Field::Dataset))?;
    Ok(LoadedData {
        name: path.display().to_string(),
        train: split.train,
        test: Some(split.test),
        encoding: json!({"encoding": "none"}),
        data_dir: None,
        table: Some(split.schema),
        test_rows: split.test_rows,
        unigram_perplexity: None,
    })
}

/// Which model to build.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelChoice {
    /// A named preset: one of [`backprop_nn::spec::PRESETS`].
    Preset(String),
    /// The quick MLP: hidden widths, their activation, dropout after each.
    Mlp {
        /// Hidden widths.
        hidden: Vec<usize>,
        /// Their activation, by its spec name (`relu`, `tanh`, `prelu`, ...).
        activation: String,
        /// Dropout probability after each (0: none).
        dropout: f64,
    },
    /// A spec file (`.json` or `.toml`).
    SpecFile(PathBuf),
    /// A spec given directly.
    Spec(ModelSpec),
}

impl ModelChoice {
    /// The label a run directory uses (`mlp`, `lenet5`, a spec file's stem).
    pub fn label(&self) -> String {
        match self {
            ModelChoice::Preset(p) => p.clone(),
            ModelChoice::Mlp { .. } => "mlp".into(),
            ModelChoice::SpecFile(p) => p
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned()),
            ModelChoice::Spec(_) => "model".into(),
        }
    }

    /// Whether this is a convolutional preset (trained with shift augmentation by default).
    fn is_conv_preset(&self) -> bool {
        matches!(self, ModelChoice::Preset(p) if p == "lenet5" || p == "cnn")
    }

    /// The spec for data with `outputs` outputs; on a table (`table`) the `mlp` preset is
    /// one hidden layer of 100 ReLU units (scikit-learn's default), since the image preset's
    /// 256-128 overfits a few hundred noisy rows.
    ///
    /// # Errors
    /// As [`ModelChoice::spec`].
    pub fn spec_for(&self, outputs: usize, table: bool) -> Result<ModelSpec, ConfigError> {
        if table && *self == ModelChoice::Preset("mlp".into()) {
            return ModelSpec::mlp(&[100], "relu", 0.0, outputs)
                .map_err(|e| ConfigError::new(Field::Model, e.to_string()));
        }
        self.spec(outputs)
    }

    /// The Elman preset's gradient-norm clip, 1: without it the plain recurrent network's
    /// gradients explode through time under the default SGD (Pascanu, Mikolov & Bengio 2013).
    fn default_clip(&self) -> Option<f64> {
        matches!(self, ModelChoice::Preset(p) if p == "rnn").then_some(1.0)
    }

    /// The spec, with the output width the data needs.
    ///
    /// # Errors
    /// An unknown preset, an unreadable spec file, hidden widths of 0, dropout outside
    /// [0, 1).
    pub fn spec(&self, outputs: usize) -> Result<ModelSpec, ConfigError> {
        match self {
            ModelChoice::Preset(name) => ModelSpec::preset(name, outputs)
                .map_err(|e| ConfigError::new(Field::Model, format!("{name}: {e}"))),
            ModelChoice::Mlp {
                hidden,
                activation,
                dropout,
            } => {
                if hidden.contains(&0) {
                    return Err(ConfigError::new(
                        Field::Hidden,
                        "every width must be at least 1",
                    ));
                }
                if !(0.0..1.0).contains(dropout) {
                    return Err(ConfigError::new(
                        Field::Dropout,
                        format!("{dropout}: must be in [0, 1)"),
                    ));
                }
                ModelSpec::mlp(hidden, activation, *dropout, outputs)
                    .map_err(|e| ConfigError::new(Field::Activation, e.to_string()))
            }
            ModelChoice::SpecFile(path) => ModelSpec::from_file(path)
                .map_err(|e| ConfigError::new(Field::Model, e.to_string())),
            ModelChoice::Spec(s) => Ok(s.clone()),
        }
    }
}

/// A whole training run as a user describes it. Unset options take the defaults policy
/// of [`RunConfig::train_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// The data.
    pub data: DataConfig,
    /// The model.
    pub model: ModelChoice,
    /// Validation samples held out from the training data (default: 10%, at most 5000;
    /// none for a table).
    pub validation: Option<usize>,
    /// The loss (default: cross-entropy, or squared for regression data).
    pub loss: Option<LossKind>,
    /// The optimizer (default: SGD; Adam for a table or text).
    pub optimizer: Option<OptimizerKind>,
    /// η₀ (default: the optimizer's [`OptimizerKind::default_lr`]; 0.002 for Adam on text).
    pub lr: Option<f64>,
    /// Momentum (default 0.9; only SGD and Nesterov use it).
    pub momentum: Option<f64>,
    /// AdamW's decoupled weight decay (default 0.01).
    pub weight_decay: Option<f64>,
    /// The schedule.
    pub schedule: ScheduleKind,
    /// Linear warm-up, in steps.
    pub warmup: usize,
    /// L1 penalty.
    pub l1: f64,
    /// L2 penalty.
    pub l2: f64,
    /// Clip the global gradient norm (default: none; 1 for the Elman `rnn` preset).
    pub clip: Option<f64>,
    /// Epochs (default: 10; 15 for the cnn preset; 200 for a synthetic 2-D set;
    /// [`TEXT_EPOCHS`] for text; for a table, enough for about 10,000 steps, within
    /// 30..=400).
    pub epochs: Option<usize>,
    /// Samples per step (default 64; 32 for a table).
    pub batch_size: Option<usize>,
    /// Stop after this many epochs without a better validation loss (default: off).
    pub early_stopping: Option<usize>,
    /// Shift training images by up to this many pixels (default 2 for the lenet5 and cnn
    /// presets, 0 otherwise).
    pub augment: Option<usize>,
    /// The seed of initialization, shuffling, dropout and splits.
    pub seed: u64,
    /// Where the model, history and plots go (default: `runs/<dataset>-<model>`).
    pub out: Option<PathBuf>,
    /// Continue the run saved in the output directory.
    pub resume: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            data: DataConfig::default(),
            model: ModelChoice::Preset("mlp".into()),
            validation: None,
            loss: None,
            optimizer: None,
            lr: None,
            momentum: None,
            weight_decay: None,
            schedule: ScheduleKind::Cosine,
            warmup: 0,
            l1: 0.0,
            l2: 0.0,
            clip: None,
            epochs: None,
            batch_size: None,
            early_stopping: None,
            augment: None,
            seed: 0,
            out: None,
            resume: false,
        }
    }
}

/// A run ready to train: the data split, the model built, the settings resolved.
pub struct PreparedRun {
    /// The resolved settings.
    pub config: TrainConfig,
    /// The data as read.
    pub data: LoadedData,
    /// Training samples (after holding out validation).
    pub train: Dataset,
    /// Validation samples.
    pub validation: Option<Dataset>,
    /// The spec the model was built from.
    pub spec: ModelSpec,
    /// The model.
    pub model: Sequential<f32>,
    /// The output directory.
    pub out: PathBuf,
    /// What a checkpoint of this run records besides the training state.
    pub metadata: BTreeMap<String, String>,
}

impl PreparedRun {
    /// Where the model is saved.
    pub fn model_path(&self) -> PathBuf {
        self.out.join("model.safetensors")
    }

    /// The model as a [`Module`].
    pub fn module(&self) -> &dyn Module<f32> {
        &self.model
    }
}

impl RunConfig {
    /// The output directory.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            PathBuf::from("runs").join(format!(
                "{}-{}",
                self.data.source.short_name(),
                self.model.label()
            ))
        })
    }

    /// The defaults policy: the settings for this run on classification or regression data
    /// (for a table, as if it had 1000 training rows; [`RunConfig::prepare`] uses the real
    /// count).
    ///
    /// # Errors
    /// A setting out of range, or a classification loss asked of regression data.
    pub fn train_config(&self, regression: bool) -> Result<TrainConfig, ConfigError> {
        self.resolve(regression, 1000)
    }

    /// The defaults policy for a run on `rows` training samples. Images and 2-D sets train
    /// with SGD (momentum 0.9, η = 0.05, cosine) in batches of 64. A table, typically a few
    /// hundred rows of standardized features, trains with Adam (η = 0.001, cosine) in
    /// batches of 32 for about 10,000 steps (30 to 400 epochs) on all its training rows: no
    /// validation split and no early stopping by default, since a validation set of a few
    /// dozen rows costs more training data than its noisy signal is worth, and the cosine
    /// schedule's decay to 0 ends the run settled. (Measured against scikit-learn by
    /// `benches/peers/tabular.py`.) Text (`text:FILE`) trains with Adam (η = 0.002, cosine)
    /// for [`TEXT_EPOCHS`] epochs, the settings measured on the shipped text.
    fn resolve(&self, regression: bool, rows: usize) -> Result<TrainConfig, ConfigError> {
        let table = matches!(self.data.source, DataSource::Csv { .. });
        let text = self.data.source.is_text();
        let optimizer = self.optimizer.unwrap_or(if table || text {
            OptimizerKind::Adam
        } else {
            OptimizerKind::Sgd
        });
        let batch_size = self.batch_size.unwrap_or(if table { 32 } else { 64 });
        let loss = match (self.loss, regression) {
            (Some(l), true) if l.needs_classes() => {
                return Err(ConfigError::new(
                    Field::Loss,
                    format!("{l}: the dataset is a regression task; use squared or absolute"),
                ))
            }
            (Some(l), _) => l,
            (None, true) => LossKind::Squared,
            (None, false) => LossKind::CrossEntropy,
        };
        let steps_per_epoch = rows.div_ceil(batch_size.max(1)).max(1);
        let epochs = self.epochs.unwrap_or(if table {
            10_000usize.div_ceil(steps_per_epoch).clamp(30, 400)
        } else if self.data.source.is_synthetic() {
            200
        } else if text {
            TEXT_EPOCHS
        } else if self.model == ModelChoice::Preset("cnn".into()) {
            15
        } else {
            10
        });
        let momentum = self.momentum.unwrap_or(0.9);
        let config = TrainConfig {
            epochs,
            batch_size,
            optimizer,
            lr: self.lr.unwrap_or(match optimizer {
                OptimizerKind::Adam if text => TEXT_ADAM_LR,
                _ => optimizer.default_lr(),
            }),
            momentum: if optimizer.uses_momentum() {
                momentum
            } else {
                0.0
            },
            weight_decay: self.weight_decay.unwrap_or(0.01),
            l1: self.l1,
            l2: self.l2,
            clip: self.clip.or(self.model.default_clip()),
            schedule: self.schedule,
            warmup: self.warmup,
            early_stopping: self.early_stopping,
            restore_best: true,
            seed: self.seed,
            loss,
            augment_shift: self
                .augment
                .unwrap_or(if self.model.is_conv_preset() { 2 } else { 0 }),
        };
        config.validate()?;
        if !(0.0..1.0).contains(&momentum) {
            return Err(ConfigError::new(
                Field::Momentum,
                format!("{momentum}: must be in [0, 1)"),
            ));
        }
        Ok(config)
    }

    /// Checks what can be checked before reading any data.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.train_config(false).map(|_| ())?;
        if self.resume && !self.out_dir().join("model.safetensors").is_file() {
            return Err(ConfigError::new(
                Field::Resume,
                format!(
                    "there is no saved run at {}",
                    self.out_dir().join("model.safetensors").display()
                ),
            ));
        }
        Ok(())
    }

    /// Reads the data, resolves the settings, builds the model and holds out validation.
    ///
    /// # Errors
    /// Any setting, file or spec problem, naming the setting.
    pub fn prepare(&self) -> Result<PreparedRun, ConfigError> {
        self.validate()?;
        let data = self.data.load(self.seed, None, true)?;
        let regression = matches!(data.train.targets, Targets::Values(_));
        let config = self.resolve(regression, data.train.len())?;
        let table = matches!(self.data.source, DataSource::Csv { .. });
        let (inputs, outputs) = (data.train.features(), data.train.outputs());
        if let (Some(img), s) = (data.train.image_shape, config.augment_shift) {
            if s >= img[1].min(img[2]) {
                return Err(ConfigError::new(
                    Field::Augment,
                    format!(
                        "{s}: a shift must be smaller than the {}×{} images",
                        img[1], img[2]
                    ),
                ));
            }
        }
        let spec = self.model.spec_for(outputs, table)?;
        let model_error = |e: SpecError| ConfigError::new(Field::Model, e.to_string());
        let plan = spec
            .plan(inputs, data.train.image_shape, Some(outputs))
            .map_err(model_error)?;
        let needed = plan.training_bytes(4, config.optimizer.state_slots(), config.batch_size);
        let what = format!("training with batches of {}", config.batch_size);
        plan.check_fits(needed, &what).map_err(model_error)?;
        let built = spec
            .build_shaped::<f32>(inputs, data.train.image_shape, Some(outputs), self.seed)
            .map_err(model_error)?;
        let val_count = self.validation.unwrap_or_else(|| {
            if table {
                0
            } else {
                (data.train.len() / 10).min(5000)
            }
        });
        let (train, validation) = if val_count > 0 {
            let (t, v) = data.train.split(val_count, self.seed).map_err(|e| {
                ConfigError::new(Field::Validation, format!("{val_count}: {}", e.message))
            })?;
            (t, Some(v))
        } else {
            (data.train.clone(), None)
        };
        let mut metadata = model_metadata(
            &spec,
            &data.name,
            &data.train,
            &data.encoding,
            data.data_dir.as_deref(),
        );
        if let Some(t) = &data.table {
            table_metadata(&mut metadata, t);
        }
        Ok(PreparedRun {
            config,
            train,
            validation,
            spec,
            model: built.model,
            out: self.out_dir(),
            metadata,
            data,
        })
    }
}

/// The names of the synthetic sets, for messages.
pub fn synthetic_names() -> String {
    SYNTHETIC.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spiral() -> RunConfig {
        RunConfig {
            data: DataConfig {
                source: DataSource::Synthetic {
                    name: "spiral".into(),
                    samples: 100,
                    noise: 0.1,
                },
                ..DataConfig::default()
            },
            ..RunConfig::default()
        }
    }

    #[test]
    fn the_defaults_policy_lives_here() {
        let c = RunConfig::default().train_config(false).unwrap();
        assert_eq!((c.lr, c.momentum, c.epochs), (0.05, 0.9, 10));
        assert_eq!(c.loss, LossKind::CrossEntropy);
        let adam = RunConfig {
            optimizer: Some(OptimizerKind::Adam),
            ..RunConfig::default()
        };
        let c = adam.train_config(true).unwrap();
        assert_eq!((c.lr, c.momentum, c.loss), (0.001, 0.0, LossKind::Squared));
        assert_eq!(spiral().train_config(false).unwrap().epochs, 200);
        let cnn = RunConfig {
            model: ModelChoice::Preset("cnn".into()),
            ..RunConfig::default()
        };
        let c = cnn.train_config(false).unwrap();
        assert_eq!((c.epochs, c.augment_shift), (15, 2));
        assert_eq!(cnn.out_dir(), PathBuf::from("runs/mnist-cnn"));
    }

    #[test]
    fn text_trains_a_character_model_with_adam() {
        let text = RunConfig {
            data: DataConfig {
                source: DataSource::Sequence {
                    task: SequenceTask::Text("play.txt".into()),
                    steps: None,
                    samples: 1000,
                },
                ..DataConfig::default()
            },
            model: ModelChoice::Preset("lstm".into()),
            ..RunConfig::default()
        };
        assert!(text.data.source.is_text() && !DataSource::Mnist.is_text());
        let c = text.train_config(false).unwrap();
        assert_eq!(
            (c.optimizer, c.lr, c.epochs, c.batch_size),
            (OptimizerKind::Adam, 0.002, TEXT_EPOCHS, 64)
        );
        assert_eq!(c.schedule, ScheduleKind::Cosine);
        // another optimizer keeps its own η; a given η or epoch count is kept
        let sgd = RunConfig {
            optimizer: Some(OptimizerKind::Sgd),
            ..text.clone()
        };
        let c = sgd.train_config(false).unwrap();
        assert_eq!(
            (c.optimizer, c.lr, c.epochs),
            (OptimizerKind::Sgd, 0.05, TEXT_EPOCHS)
        );
        let given = RunConfig {
            lr: Some(0.01),
            epochs: Some(3),
            ..text
        };
        let c = given.train_config(false).unwrap();
        assert_eq!((c.lr, c.epochs), (0.01, 3));
        assert_eq!(SequenceTask::Text("play.txt".into()).default_steps(), 24);
        // other sequence tasks keep the general policy
        let adding = RunConfig {
            data: DataConfig {
                source: DataSource::Sequence {
                    task: SequenceTask::Adding,
                    steps: None,
                    samples: 100,
                },
                ..DataConfig::default()
            },
            ..RunConfig::default()
        };
        let c = adding.train_config(true).unwrap();
        assert_eq!((c.optimizer, c.epochs), (OptimizerKind::Sgd, 10));
    }

    #[test]
    fn errors_name_the_field() {
        let f = |c: RunConfig| c.prepare().err().map(|e| e.field);
        assert_eq!(
            f(RunConfig {
                lr: Some(-1.0),
                ..spiral()
            }),
            Some(Field::Lr)
        );
        assert_eq!(
            f(RunConfig {
                loss: Some(LossKind::Hinge),
                data: DataConfig {
                    source: DataSource::Synthetic {
                        name: "plane".into(),
                        samples: 50,
                        noise: 0.0
                    },
                    ..DataConfig::default()
                },
                ..RunConfig::default()
            }),
            Some(Field::Loss)
        );
        assert_eq!(
            f(RunConfig {
                model: ModelChoice::Preset("resnet".into()),
                ..spiral()
            }),
            Some(Field::Model)
        );
        let mut c = spiral();
        c.data.source = DataSource::Synthetic {
            name: "spiral".into(),
            samples: 1,
            noise: 0.1,
        };
        assert_eq!(f(c), Some(Field::Samples));
        let mut c = spiral();
        c.data.source = DataSource::Idx("/no/such/dir".into());
        assert_eq!(f(c), Some(Field::DataDir));
    }

    #[test]
    fn prepare_builds_the_model_for_the_data() {
        let run = spiral().prepare().unwrap();
        assert_eq!(
            run.train.len() + run.validation.as_ref().unwrap().len(),
            100
        );
        assert_eq!(run.model.params()[0].1.shape(), vec![256, 2]);
        assert_eq!(run.metadata["backprop.dataset"], "spiral");
        assert_eq!(run.out, PathBuf::from("runs/spiral-mlp"));
    }

    #[test]
    fn a_table_gets_the_small_table_defaults_and_a_split_fixed_apart_from_the_seed() {
        let dir = std::env::temp_dir().join(format!("backprop-run-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let mut text = "a,b,y\n".to_string();
        for i in 0..100 {
            text += &format!("{},{},{}\n", i % 7, (i * 3) % 11, i % 2);
        }
        std::fs::write(&path, text).unwrap();
        let table = |seed| RunConfig {
            data: DataConfig {
                source: DataSource::Csv {
                    path: path.clone(),
                    table: TableOptions::default(),
                },
                ..DataConfig::default()
            },
            seed,
            ..RunConfig::default()
        };
        let run = table(0).prepare().unwrap();
        let c = &run.config;
        assert_eq!(
            (c.optimizer, c.lr, c.batch_size),
            (OptimizerKind::Adam, 0.001, 32)
        );
        // 80 training rows: 3 steps an epoch, so 10,000 steps would be 3334 epochs; at most 400
        assert_eq!((c.epochs, c.early_stopping), (400, None));
        assert!(
            run.validation.is_none(),
            "a table trains on all its training rows"
        );
        assert_eq!(
            run.model.params()[0].1.shape(),
            vec![100, 2],
            "one hidden layer of 100"
        );
        assert!(run.metadata.contains_key("backprop.table"));
        let other = table(9).prepare().unwrap();
        assert_eq!(other.data.test_rows, run.data.test_rows);
        assert_eq!(run.data.test_rows.len(), 20);
        let mut enc = table(0);
        enc.data.encoding = Some("binary".into());
        assert_eq!(enc.prepare().err().map(|e| e.field), Some(Field::Encoding));
        let _ = std::fs::remove_dir_all(dir);
    }
}
