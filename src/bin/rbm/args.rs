//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rbm::experiments::gates::GateFn;

/// Restricted Boltzmann Machines on hand-optimized CPU kernels.
#[derive(Parser, Debug)]
#[command(name = "rbm", version, about)]
pub struct Cli {
    /// Worker threads (default: one per core). Results do not depend on it.
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Learn a logic gate (the reference notebook's first experiment): 3 visible units [x, y, f(x,y)].
    Gates(GatesArgs),
    /// Train an RBM on an IDX dataset (MNIST, Fashion-MNIST) by CD-k or PCD-k.
    Train(TrainArgs),
    /// Generate images from a trained model: from noise, or from test images with pixels clamped.
    Sample(SampleArgs),
    /// Evaluate a model on a dataset: log Z and the test log-likelihood by AIS (with bounds),
    /// optionally RAISE and exact log Z, pseudo-log-likelihood, reconstruction error.
    Eval(EvalArgs),
    /// Measure training and sampling throughput on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `rbm bench train|sample`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// CD-k training steps on MNIST rows: rows/s and dense-equivalent GFLOP/s.
    Train(BenchTrainArgs),
    /// Gibbs steps from noise (the notebook's generation figure): chain-steps/s.
    Sample(BenchSampleArgs),
}

/// `rbm bench train`.
#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// Gibbs steps of CD-k.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Rows per batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Hidden units.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden: u32,
    /// MNIST folder (default: found by name; synthetic rows without one).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train on from this model (a model file, 784 visible units) instead of a fresh 784–H
    /// one: a trained model's chains change fewer units per step, which its Gibbs passes
    /// use, so later epochs run at a different speed from the first.
    #[arg(long, conflicts_with = "hidden")]
    pub model: Option<PathBuf>,
    /// Seconds to measure (after up to 1 s of warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `rbm bench sample`.
#[derive(Args, Debug)]
pub struct BenchSampleArgs {
    /// Chains run side by side.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub chains: u32,
    /// Hidden units (of the random model; see --model).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden: u32,
    /// Sample this trained model (a model file) instead of a random 784–H one with
    /// W ~ N(0, 0.05²): a trained model's chains change fewer units per step, and a step
    /// costs in proportion to the changes.
    #[arg(long, conflicts_with = "hidden")]
    pub model: Option<PathBuf>,
    /// Gibbs steps per timed call (each chain runs them on its own; 1 = one step of all
    /// chains per call, as the PyTorch baseline loops).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps_per_call: u32,
    /// Seconds to measure.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `rbm gates`.
#[derive(Args, Debug)]
pub struct GatesArgs {
    /// The truth function.
    #[arg(long, default_value = "and", value_enum)]
    pub function: GateArg,
    /// Gibbs steps of CD-k (the notebook: 4 "out of equilibrium", 30 "at equilibrium").
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Epochs.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Batches per epoch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batches: u32,
    /// Rows per batch.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f32,
    /// Hidden units.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden: u32,
    /// Chains per input for the clamped accuracy.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    pub chains: u32,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Chains of the bit stability and bit correction plots.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub trace_chains: u32,
    /// Output folder: model.safetensors, stability.svg, correction.svg.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object per line on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A truth function, as the CLI spells it.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum GateArg {
    /// x ∧ y
    And,
    /// x ∨ y
    Or,
    /// x ⊕ y
    Xor,
    /// ¬(x ∧ y)
    Nand,
    /// ¬(x ∨ y)
    Nor,
    /// ¬(x ⊕ y)
    Xnor,
    /// ¬x
    Not,
}

impl From<GateArg> for GateFn {
    fn from(g: GateArg) -> Self {
        match g {
            GateArg::And => GateFn::And,
            GateArg::Or => GateFn::Or,
            GateArg::Xor => GateFn::Xor,
            GateArg::Nand => GateFn::Nand,
            GateArg::Nor => GateFn::Nor,
            GateArg::Xnor => GateFn::Xnor,
            GateArg::Not => GateFn::Not,
        }
    }
}

/// `rbm train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Folder holding the four IDX files (raw or .gz). With --resume: where the data is now,
    /// if it moved.
    #[arg(
        long,
        conflicts_with = "dataset",
        required_unless_present_any = ["dataset", "resume"]
    )]
    pub data: Option<PathBuf>,
    /// A dataset by name, found in $RBM_DATA/NAME, ./data/NAME or /usr/share/datasets/NAME.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,
    /// A recipe (the notebook's, or the best found here); flags given beside it override it.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Hidden units [default: 500].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub hidden: Option<u32>,
    /// Gibbs steps of CD-k [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: Option<u32>,
    /// Persistent CD: negative chains continue across batches.
    #[arg(long)]
    pub pcd: bool,
    /// Rows per batch [default: 64].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: Option<u32>,
    /// SGD learning rate [default: 0.01].
    #[arg(long)]
    pub lr: Option<f32>,
    /// SGD momentum [default: 0].
    #[arg(long)]
    pub momentum: Option<f32>,
    /// L2 weight decay on W [default: 0].
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// PCD with this many persistent chains (instead of one per batch row); implies --pcd.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub chains: Option<u32>,
    /// Decay the learning rate linearly to this value over the whole run.
    #[arg(long)]
    pub lr_end: Option<f32>,
    /// Momentum of the first --momentum-epochs epochs (Hinton's guide: 0.5, then --momentum 0.9).
    #[arg(long)]
    pub momentum_start: Option<f32>,
    /// Epochs that use --momentum-start [default: 5].
    #[arg(long, requires = "momentum_start")]
    pub momentum_epochs: Option<u32>,
    /// Centering (Melchior et al. 2016): offsets follow the data means at this rate (e.g. 0.01).
    #[arg(long)]
    pub centering: Option<f32>,
    /// Fast-weights PCD (Tieleman & Hinton 2009) with this fast learning rate; implies --pcd.
    #[arg(long, conflicts_with = "temperatures")]
    pub fast_lr: Option<f32>,
    /// Decay of the fast weights per step [default: 0.95].
    #[arg(long, requires = "fast_lr")]
    pub fast_decay: Option<f32>,
    /// Parallel tempering with this many inverse temperatures (spaced evenly from 1 down to
    /// --beta-min) as the negative phase; implies --pcd.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
    pub temperatures: Option<u32>,
    /// The hottest chains' inverse temperature [default: 0.5].
    #[arg(long, requires = "temperatures")]
    pub beta_min: Option<f32>,
    /// Epochs [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,
    /// Batches per epoch [default: all of the training set].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batches_per_epoch: Option<u32>,
    /// Binarization of the pixels [default: stochastic].
    #[arg(long, value_enum)]
    pub binarize: Option<BinarizeArg>,
    /// Visible biases from the training data's pixel marginals (Hinton's guide) instead of 0.
    #[arg(long)]
    pub marginal_bias: bool,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: model.safetensors, metrics.csv, loss.svg, inputs.png, reconstructions.png,
    /// samples.png, filters.png, run.json (and checkpoint.safetensors).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Replace the run that --out holds (its model, checkpoint, metrics, figures and
    /// run.json are removed before training starts). Without it, a folder holding a run is
    /// refused.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// With --resume: the files --data (or the recorded folder) names hold the run's data,
    /// though they are not byte for byte the files the run started on (recompressed, say).
    /// Without it, a resume whose data differ from the run's (name, size, SHA-256) is refused.
    #[arg(long, requires = "resume")]
    pub data_moved: bool,
    /// Every N batches, save the model, the optimizer's momentum, the PCD chains, the position
    /// of the random streams and of the run to OUT/checkpoint.safetensors (atomically: a run
    /// killed at any moment keeps the previous checkpoint).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Continue the run in RUNDIR from its checkpoint.safetensors, with the settings it was
    /// started with; it ends exactly as the run would have without the interruption.
    #[arg(
        long,
        value_name = "RUNDIR",
        conflicts_with_all = [
            "out", "preset", "hidden", "k", "pcd", "batch", "lr", "momentum", "weight_decay",
            "epochs", "batches_per_epoch", "binarize", "marginal_bias", "seed", "eval_every",
            "sample_steps", "chains", "lr_end", "momentum_start", "momentum_epochs", "centering", "fast_lr", "fast_decay", "temperatures", "beta_min"
        ]
    )]
    pub resume: Option<PathBuf>,
    /// Every N epochs (and after the last), estimate the test log-likelihood by a cheap AIS
    /// (50 runs, 1000 temperatures, the first 1000 test rows) and log it in metrics.csv.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub eval_every: Option<u32>,
    /// Print one JSON object per epoch (and a final one) on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Snapshot steps of samples.png [default: 1,k,2k,100,1000,10000].
    #[arg(long, value_delimiter = ',', hide = true)]
    pub sample_steps: Option<Vec<usize>>,
}

/// `rbm sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// The model file (model.safetensors of a run folder).
    #[arg(long)]
    pub model: PathBuf,
    /// Chains, side by side in each row of the figure.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub chains: u32,
    /// Gibbs steps after which a row is drawn (0: the starting images).
    #[arg(long, value_delimiter = ',', default_value = "1,3,6,100,1000,10000")]
    pub steps: Vec<usize>,
    /// Starting states: the notebook's noise patches, or test images (thresholded at 0.5).
    #[arg(long, value_enum, default_value = "noise")]
    pub init: InitArg,
    /// Hold this half of each starting image fixed and sample the rest (with --init data:
    /// inpainting; the rest starts blank).
    #[arg(long, value_enum)]
    pub clamp: Option<ClampArg>,
    /// Density of the second (18 × 18) noise patch [default: 0.4 for a Fashion-MNIST model,
    /// else 0.3].
    #[arg(long)]
    pub density: Option<f32>,
    /// Folder of the IDX files for --init data [default: the model's training data].
    #[arg(long, conflicts_with = "dataset")]
    pub data: Option<PathBuf>,
    /// A dataset by name for --init data.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,
    /// Index of the first test image used by --init data.
    #[arg(long, default_value_t = 0)]
    pub first: usize,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The PNG file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Starting states of `rbm sample`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitArg {
    /// Half the chains from a 24 × 24 centred patch of density 0.1, half from 18 × 18.
    Noise,
    /// Test images.
    Data,
}

/// The half of the image held fixed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClampArg {
    /// The top rows.
    Top,
    /// The bottom rows.
    Bottom,
    /// The left columns.
    Left,
    /// The right columns.
    Right,
}

impl ClampArg {
    /// The clamp mask of a `height × width` image: true where a pixel is held fixed.
    pub fn mask(self, height: usize, width: usize) -> Vec<bool> {
        (0..height * width)
            .map(|i| {
                let (y, x) = (i / width, i % width);
                match self {
                    ClampArg::Top => y < height / 2,
                    ClampArg::Bottom => y >= height / 2,
                    ClampArg::Left => x < width / 2,
                    ClampArg::Right => x >= width / 2,
                }
            })
            .collect()
    }
}

/// `rbm eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model file (model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Folder holding the IDX files (raw or .gz); the training split gives AIS's base rate.
    #[arg(long, conflicts_with = "dataset", required_unless_present = "dataset")]
    pub data: Option<PathBuf>,
    /// A dataset by name, found in $RBM_DATA/NAME, ./data/NAME or /usr/share/datasets/NAME.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,
    /// The split whose rows are scored.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// How the rows are binarized: one Bernoulli(pixel/255) draw with a fixed seed (as in the
    /// literature), or pixel/255 > 0.5.
    #[arg(long, value_enum, default_value = "stochastic")]
    pub binarize: EvalBinarizeArg,
    /// Score only the first N rows of the split [default: all].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rows: Option<u32>,
    /// AIS runs.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub ais_runs: u32,
    /// AIS temperatures, spread like the standard schedule (1e-3 steps to 0.5, 1e-4 to 0.9,
    /// 1e-5 to 1 at 14500).
    #[arg(long, default_value_t = 14_500, value_parser = clap::value_parser!(u32).range(3..))]
    pub ais_betas: u32,
    /// Also estimate the log-likelihood by reverse annealing (RAISE): the conservative side.
    #[arg(long)]
    pub reverse: bool,
    /// Rows (evenly spaced through the scored rows) that RAISE runs from, one run each.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub reverse_rows: u32,
    /// Also compute log Z exactly (needs a layer of at most 25 units).
    #[arg(long)]
    pub exact: bool,
    /// Pseudo-log-likelihood: over all single-bit flips, or scikit-learn's one random flip.
    #[arg(long, value_enum, default_value = "exact")]
    pub pll: PllArg,
    /// Seed of AIS, RAISE, the reconstructions and the random flips (not of the binarization,
    /// whose seed is fixed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the results as one JSON object, the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// A dataset split.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SplitArg {
    /// The test split (t10k-*).
    Test,
    /// The training split.
    Train,
}

/// Binarization of evaluation rows.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum EvalBinarizeArg {
    /// One Bernoulli(pixel/255) draw per pixel, with a fixed seed.
    Stochastic,
    /// pixel/255 > 0.5.
    Threshold,
}

/// Pseudo-log-likelihood variant.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PllArg {
    /// The sum over all V single-bit flips.
    Exact,
    /// V times one random flip per row (scikit-learn's score_samples).
    One,
}

/// Datasets known by name.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DatasetArg {
    /// MNIST handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST.
    FashionMnist,
}

impl DatasetArg {
    /// The folder name searched for.
    pub fn folder(self) -> &'static str {
        match self {
            DatasetArg::Mnist => "mnist",
            DatasetArg::FashionMnist => "fashion-mnist",
        }
    }
}

/// Presets: the reference notebook's recipes, and the best ones found here.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// 784–500, CD-3, lr 0.01, batch 64, 10 epochs of the first 301 batches, unshuffled.
    SeedMnist,
    /// 784–500, CD-2, lr 0.01, batch 32, 40 epochs of the first 501 batches, unshuffled.
    SeedFashion,
    /// 784–500, centered CD-10, batch 100, lr 0.05 → 0, momentum 0.5 → 0.9, visible biases
    /// from the marginals, 220 shuffled epochs (docs/quality.md).
    BestMnist,
    /// The same recipe for Fashion-MNIST, 200 epochs.
    BestFashion,
}

/// Pixel binarization.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum BinarizeArg {
    /// A fresh Bernoulli(pixel/255) draw per batch (the notebook).
    Stochastic,
    /// pixel/255 > 0.5.
    Threshold,
    /// pixel/255 as a probability, not binarized.
    None,
}
