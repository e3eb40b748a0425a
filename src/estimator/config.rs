//! The settings of an [`Estimator`](super::Estimator): defaults and a builder; the negative
//! phase is one [`Method`] of [`crate::train`].

use crate::data::{Binarize, Order};
use crate::error::Result;
use crate::train::{Method, Schedule, TrainConfig};

/// The settings of an [`Estimator`](super::Estimator), with defaults for a first model and a
/// builder: `Config::default().hidden(64).epochs(20).seed(7)`.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `n_hidden` | 256 | hidden units `H` |
/// | `epochs` | 10 | passes over the data of [`fit`](super::Estimator::fit) |
/// | `batch_size` | 64 | rows per step; an epoch's last, shorter batch is used unless `drop_last` |
/// | `k` | 1 | Gibbs steps of the negative phase |
/// | `learning_rate` | 0.1 | the step size (of the first step, with `lr_end`) |
/// | `lr_end` | `None` | decay the rate linearly to this over `fit`'s steps |
/// | `method` | [`Method::Cd`] | how the negative phase samples |
/// | `momentum` | 0 | SGD momentum in `[0, 1)` |
/// | `momentum_start` | `None` | the momentum of the first `momentum_epochs` epochs (Hinton's 0.5, then `momentum`) |
/// | `momentum_epochs` | 5 | epochs that use `momentum_start` |
/// | `weight_decay` | 0 | L2 penalty on `W` |
/// | `centering` | `None` | centered gradient (Melchior et al. 2016) with offsets moving at this rate |
/// | `marginal_bias` | `true` | start visible biases at the logits of the data's column means |
/// | `binarize` | [`Binarize::Stochastic`] | how values in `[0, 1]` become training states |
/// | `order` | [`Order::Shuffled`] | a fresh permutation of the rows each epoch |
/// | `drop_last` | `false` | drop an epoch's last batch when shorter than `batch_size` |
/// | `batches_per_epoch` | `None` | train on the first batches of each epoch only (the notebook's 301) |
/// | `seed` | 0 | the one seed of initialisation, training and sampling |
///
/// ```
/// use rbm::{Config, Method};
/// let config = Config::default()
///     .hidden(32)
///     .k(3)
///     .method(Method::Pcd { chains: Some(100) })
///     .momentum(0.5)
///     .seed(7);
/// assert_eq!(config.n_hidden, 32);
/// assert!(config.validate().is_ok());
/// assert!(Config::default().learning_rate(-1.0).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// Hidden units `H` (`≥ 1`).
    pub n_hidden: usize,
    /// Epochs of [`fit`](super::Estimator::fit) (`≥ 1`).
    pub epochs: usize,
    /// Rows per training step (`≥ 1`).
    pub batch_size: usize,
    /// Gibbs steps of the negative phase (`≥ 1`).
    pub k: usize,
    /// The learning rate (`> 0`).
    pub learning_rate: f32,
    /// With `Some(end)`, the rate decays linearly from `learning_rate` to `end` over the steps
    /// of [`fit`](super::Estimator::fit).
    pub lr_end: Option<f32>,
    /// The negative phase's strategy.
    pub method: Method,
    /// SGD momentum, in `[0, 1)`.
    pub momentum: f32,
    /// With `Some(m)`, the momentum of the first [`momentum_epochs`](Self::momentum_epochs)
    /// epochs (in `[0, 1)`), `momentum` after them.
    pub momentum_start: Option<f32>,
    /// Epochs that use `momentum_start`.
    pub momentum_epochs: usize,
    /// L2 weight decay on `W` (`≥ 0`).
    pub weight_decay: f32,
    /// Centering's moving-average rate, in `(0, 1]`; `None` for none.
    pub centering: Option<f32>,
    /// Whether the visible biases start at `log(p / (1 − p))` of the data's column means.
    pub marginal_bias: bool,
    /// How values in `[0, 1]` become the visible states of a training batch.
    pub binarize: Binarize,
    /// The order of the rows in each epoch.
    pub order: Order,
    /// Whether an epoch drops its last batch when it is shorter than `batch_size`.
    pub drop_last: bool,
    /// With `Some(n)`, each epoch trains on its first `n` batches only (at most the batches
    /// the data have); `None`: on all of them.
    pub batches_per_epoch: Option<usize>,
    /// The one seed from which the initial weights, every training draw and the sampling
    /// streams are derived.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            n_hidden: 256,
            epochs: 10,
            batch_size: 64,
            k: 1,
            learning_rate: 0.1,
            lr_end: None,
            method: Method::Cd,
            momentum: 0.0,
            momentum_start: None,
            momentum_epochs: 5,
            weight_decay: 0.0,
            centering: None,
            marginal_bias: true,
            binarize: Binarize::Stochastic,
            order: Order::Shuffled,
            drop_last: false,
            batches_per_epoch: None,
            seed: 0,
        }
    }
}

/// A builder method per field.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl Config {
            $(
                $(#[$doc])*
                ///
                /// A builder step: takes the settings and returns them changed, e.g.
                #[doc = concat!("`Config::default().", stringify!($name), "(…)`.")]
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets `n_hidden`.
    hidden: n_hidden: usize;
    /// Sets `epochs`.
    epochs: epochs: usize;
    /// Sets `batch_size`.
    batch_size: batch_size: usize;
    /// Sets `k`.
    k: k: usize;
    /// Sets `learning_rate`.
    learning_rate: learning_rate: f32;
    /// Sets `lr_end`.
    lr_end: lr_end: Option<f32>;
    /// Sets `method`.
    method: method: Method;
    /// Sets `momentum`.
    momentum: momentum: f32;
    /// Sets `momentum_start`.
    momentum_start: momentum_start: Option<f32>;
    /// Sets `momentum_epochs`.
    momentum_epochs: momentum_epochs: usize;
    /// Sets `weight_decay`.
    weight_decay: weight_decay: f32;
    /// Sets `centering`.
    centering: centering: Option<f32>;
    /// Sets `marginal_bias`.
    marginal_bias: marginal_bias: bool;
    /// Sets `binarize`.
    binarize: binarize: Binarize;
    /// Sets `order`.
    order: order: Order;
    /// Sets `drop_last`.
    drop_last: drop_last: bool;
    /// Sets `batches_per_epoch`.
    batches_per_epoch: batches_per_epoch: Option<usize>;
    /// Sets `seed`.
    seed: seed: u64;
}

impl Config {
    /// Checks every value's domain.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the first value out of its domain (by
    /// this type's field names).
    ///
    /// ```
    /// use rbm::{Config, Error, Method};
    /// assert!(Config::default().validate().is_ok());
    /// let bad = Config::default().method(Method::Pcd { chains: Some(0) }).validate();
    /// assert!(matches!(bad, Err(Error::Config(e)) if e.field == "method (chains)"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.n_hidden == 0 || self.epochs == 0 {
            let field = if self.n_hidden == 0 {
                "n_hidden"
            } else {
                "epochs"
            };
            return Err(crate::Error::config(field, "at least 1", 0));
        }
        if self.batches_per_epoch == Some(0) {
            return Err(crate::Error::config("batches_per_epoch", "at least 1", 0));
        }
        // The low-level checks, their fields named as here.
        self.train_config(1).validate().map_err(|e| match e {
            crate::Error::Config(mut c) => {
                c.field = match c.field.as_str() {
                    "lr" => "learning_rate".into(),
                    "chains" | "fast_weights" | "tempering" => format!("method ({})", c.field),
                    _ => c.field,
                };
                crate::Error::Config(c)
            }
            other => other,
        })
    }

    /// The low-level training configuration of these settings for a fit whose epochs have
    /// `batches_per_epoch` batches each: the learning-rate decay (if any) spans all
    /// [`epochs`](Self::epochs), the initial momentum (if any) the first
    /// [`momentum_epochs`](Self::momentum_epochs).
    ///
    /// ```
    /// use rbm::{Config, Method};
    /// let low = Config::default().k(3).epochs(10).lr_end(Some(0.0)).train_config(100);
    /// assert_eq!((low.k, low.anneal_steps, low.method), (3, 1000, Method::Cd));
    /// assert_eq!(low.lr_at(500), 0.05);
    /// ```
    pub fn train_config(&self, batches_per_epoch: usize) -> TrainConfig {
        let per_epoch = batches_per_epoch as u64;
        TrainConfig {
            k: self.k,
            lr: self.learning_rate,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            method: self.method,
            seed: self.seed,
            lr_end: self.lr_end,
            anneal_steps: if self.lr_end.is_some() {
                per_epoch.saturating_mul(self.epochs as u64).max(1)
            } else {
                0
            },
            momentum_start: self.momentum_start,
            momentum_steps: if self.momentum_start.is_some() {
                per_epoch.saturating_mul(self.momentum_epochs as u64)
            } else {
                0
            },
            centering: self.centering,
        }
    }

    /// The epoch loop's schedule of these settings: [`epochs`](Self::epochs) epochs of
    /// [`batches_per_epoch`](Self::batches_per_epoch) batches (or all), in
    /// [`order`](Self::order), [`binarize`](Self::binarize)d.
    ///
    /// ```
    /// let s = rbm::Config::default().epochs(3).batches_per_epoch(Some(301)).schedule();
    /// assert_eq!((s.epochs, s.batches_per_epoch), (3, Some(301)));
    /// ```
    pub fn schedule(&self) -> Schedule {
        Schedule {
            epochs: self.epochs,
            batches_per_epoch: self.batches_per_epoch,
            order: self.order,
            binarize: self.binarize,
            drop_last: self.drop_last,
        }
    }
}
