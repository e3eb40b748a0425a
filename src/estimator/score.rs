//! How good a fitted [`Estimator`]'s model is: pseudo-likelihood per row, and the mean
//! log-likelihood exactly or by AIS or RAISE, with its bounds.

use super::{Estimator, all_rows};
use crate::data::{Binarize, RowSource};
use crate::error::{Error, Result};
use crate::eval::{
    self, AisConfig, AisEstimate, BaseRate, PseudoLikelihood, RaiseConfig, RaiseEstimate, Schedule,
    ais, exact_log_z, pseudo_log_likelihood, raise,
};

/// How [`Estimator::log_likelihood`] computes the mean log-likelihood `mean(−F(v)) − log Z`.
///
/// ```
/// use rbm::prelude::*;
/// let rbm = Estimator::from_model(Rbm::new(9, 6, 1)?, Config::default());
/// let data = rbm::datasets::bars_and_stripes(3);
/// let rows = Rows::new(&data, 9)?;
/// let exact = rbm.log_likelihood(&rows, LogLikelihood::Exact)?; // 2^6 hidden states
/// let ais = rbm.log_likelihood(&rows, LogLikelihood::Ais { runs: 32, temperatures: 500 })?;
/// assert!((exact.estimate - ais.estimate).abs() < 0.05);
/// assert_eq!(LogLikelihood::AIS, LogLikelihood::Ais { runs: 100, temperatures: 14_500 });
/// # Ok::<(), rbm::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLikelihood {
    /// `log Z` by enumerating the smaller layer (at most
    /// [`MAX_EXACT_UNITS`](crate::eval::MAX_EXACT_UNITS) units).
    Exact,
    /// Annealed importance sampling: `runs` independent runs over the standard schedule of
    /// `temperatures` inverse temperatures (100 and 14,500 in the literature), from a base
    /// rate of the training data's column means. Tends to overestimate the log-likelihood.
    Ais {
        /// Independent runs (`≥ 2` for bounds).
        runs: usize,
        /// Inverse temperatures (`≥ 3`).
        temperatures: usize,
    },
    /// Reverse annealing (RAISE) from each row: tends to underestimate it, the conservative
    /// side beside AIS. Costs one AIS run per row and run.
    Raise {
        /// Runs per row (`≥ 1`).
        runs_per_row: usize,
        /// Inverse temperatures (`≥ 3`).
        temperatures: usize,
    },
}

impl LogLikelihood {
    /// AIS with the literature's settings: 100 runs, 14,500 temperatures.
    pub const AIS: LogLikelihood = LogLikelihood::Ais {
        runs: 100,
        temperatures: 14_500,
    };
}

/// A mean log-likelihood in nats per row, with its bounds.
///
/// ```
/// use rbm::prelude::*;
/// let rbm = Estimator::from_model(Rbm::new(4, 3, 1)?, Config::default());
/// let data = rbm::datasets::bars_and_stripes(2);
/// let ll = rbm.log_likelihood(&Rows::new(&data, 4)?, LogLikelihood::Exact)?;
/// assert_eq!((ll.lower, ll.upper, ll.rows), (ll.estimate, ll.estimate, 6));
/// assert!(ll.log_z.is_some() && ll.ais.is_none());
/// # Ok::<(), rbm::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Likelihood {
    /// The estimate (exact for [`LogLikelihood::Exact`]).
    pub estimate: f64,
    /// A lower bound: for AIS from `log Z + 3` standard errors of the mean weight, for RAISE
    /// the estimate minus 3 standard errors over rows, for the exact value the value itself.
    pub lower: f64,
    /// An upper bound, likewise (`+∞` when AIS's weights are too spread to bound `log Z`
    /// from below).
    pub upper: f64,
    /// `log Z` (exact or AIS's estimate); `None` for RAISE, which estimates each row's
    /// `log p(v)` directly.
    pub log_z: Option<f64>,
    /// AIS's whole estimate (its bounds on `log Z`, `log Z` of the base rate, every run's
    /// log-weight, the effective sample size), for [`LogLikelihood::Ais`].
    pub ais: Option<AisEstimate>,
    /// RAISE's estimate of each row, for [`LogLikelihood::Raise`].
    pub raise: Option<RaiseEstimate>,
    /// The rows scored.
    pub rows: usize,
    /// How it was computed.
    pub method: LogLikelihood,
}

impl Estimator {
    /// The pseudo-log-likelihood of each row of `data`, `Σ_i log p(v_i | v_{−i})` over all
    /// `V` units, in nats (≤ 0): higher is better. Rows that are not 0/1 are binarized as
    /// [`Config::binarize`](super::Config::binarize) says (grey values: stochastically), from
    /// a fixed stream, so the same rows always get the same scores. (scikit-learn's
    /// `score_samples` estimates the same sum from one random unit per row: see
    /// [`PseudoLikelihood::OneFlip`].)
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Shape`] (or [`Error::Dataset`]) if the rows do not have
    /// the model's visible units.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(50).batch_size(6));
    /// let scores = rbm.fit(&rows)?.score_samples(&rows)?;
    /// assert_eq!(scores.len(), 6);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn score_samples(&self, data: &(impl RowSource + ?Sized)) -> Result<Vec<f64>> {
        let model = self.fitted_model()?;
        let rows = all_rows(model, data, self.evaluation_binarize())?;
        pseudo_log_likelihood(model, &rows, PseudoLikelihood::Exact)
    }

    /// The mean log-likelihood of the rows of `data`, in nats per row, by `method`, with its
    /// bounds. Rows are binarized as for [`score_samples`](Self::score_samples). AIS and
    /// RAISE draw from the estimator's seed; their base rate is the column means of the data
    /// the model was fitted to (or, for a model loaded without them, of `data`).
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Shape`] (or [`Error::Dataset`]) if the rows do not have
    /// the model's visible units; [`Error::Config`] if both layers are too large to enumerate
    /// (exact) or the runs or temperatures are too few, and (naming the model's parameters)
    /// if the estimate is not finite: a model whose parameters are too large for f64 sums.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(3);
    /// let rows = Rows::new(&data, 9)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(8).epochs(20).batch_size(7));
    /// rbm.fit(&rows)?;
    /// let exact = rbm.log_likelihood(&rows, LogLikelihood::Exact)?;
    /// let ais = rbm.log_likelihood(&rows, LogLikelihood::Ais { runs: 50, temperatures: 1000 })?;
    /// assert!((exact.estimate - ais.estimate).abs() < 0.1, "{exact:?} {ais:?}");
    /// assert!(ais.lower <= ais.estimate && ais.estimate <= ais.upper);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn log_likelihood(
        &self,
        data: &(impl RowSource + ?Sized),
        method: LogLikelihood,
    ) -> Result<Likelihood> {
        let model = self.fitted_model()?;
        let rows = all_rows(model, data, self.evaluation_binarize())?;
        let n = rows.len() / model.n_visible();
        let mean_neg_f = eval::mean_neg_free_energy(model, &rows)?;
        let seed = self.config.seed;
        let result = match method {
            LogLikelihood::Exact => {
                let log_z = exact_log_z(model)?;
                let ll = mean_neg_f - log_z;
                Likelihood {
                    estimate: ll,
                    lower: ll,
                    upper: ll,
                    log_z: Some(log_z),
                    ais: None,
                    raise: None,
                    rows: n,
                    method,
                }
            }
            LogLikelihood::Ais { runs, temperatures } => {
                let config = AisConfig {
                    runs,
                    schedule: Schedule::standard_with(temperatures)?,
                    seed,
                };
                let est = ais(model, &self.base_rate(data)?, &config)?;
                let (ll, lower, upper) = est.log_likelihood(mean_neg_f);
                Likelihood {
                    estimate: ll,
                    lower,
                    upper,
                    log_z: Some(est.log_z),
                    ais: Some(est),
                    raise: None,
                    rows: n,
                    method,
                }
            }
            LogLikelihood::Raise {
                runs_per_row,
                temperatures,
            } => {
                let config = RaiseConfig {
                    runs_per_row,
                    schedule: Schedule::standard_with(temperatures)?,
                    seed,
                };
                let est = raise(model, &self.base_rate(data)?, &rows, &config)?;
                Likelihood {
                    estimate: est.mean,
                    lower: est.mean - 3.0 * est.std_error,
                    upper: est.mean + 3.0 * est.std_error,
                    log_z: None,
                    ais: None,
                    raise: Some(est),
                    rows: n,
                    method,
                }
            }
        };
        if !result.estimate.is_finite() {
            return Err(Error::config(
                "model parameters",
                "values small enough for a finite log-likelihood",
                format!(
                    "an estimate of {} (log Z {:?})",
                    result.estimate, result.log_z
                ),
            ));
        }
        Ok(result)
    }

    /// How evaluation turns rows into 0/1 states: as training does, grey values stochastically.
    fn evaluation_binarize(&self) -> Binarize {
        match self.config.binarize {
            Binarize::Threshold => Binarize::Threshold,
            Binarize::Stochastic | Binarize::None => Binarize::Stochastic,
        }
    }

    /// The base rate that AIS and RAISE anneal from: the column means of `marginals` (each in
    /// `[0, 1]`, one per visible unit), smoothed towards ½ as
    /// [`BaseRate::from_marginals`] does. Replaces the means recorded when fitting: for a
    /// model trained elsewhere, give its training data's (as `rbm eval` does), so that the
    /// base rate does not depend on the rows scored.
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Shape`] unless there is one mean per visible unit;
    /// [`Error::Config`] for a mean outside `[0, 1]`.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let rbm = Estimator::from_model(Rbm::new(4, 2, 1)?, Config::default())
    ///     .with_base_rate(vec![0.1, 0.5, 0.5, 0.9])?;
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn with_base_rate(mut self, marginals: Vec<f64>) -> Result<Self> {
        let fitted = self.fitted.as_mut().ok_or(Error::NotFitted)?;
        let nv = fitted.model.n_visible();
        if marginals.len() != nv {
            return Err(Error::shape(
                "base rate marginals",
                format!("{nv} values (the visible units)"),
                marginals.len(),
            ));
        }
        BaseRate::from_marginals(&marginals, BaseRate::DEFAULT_SMOOTHING)?;
        fitted.marginals = Some(marginals);
        Ok(self)
    }

    /// The base rate of AIS and RAISE: the training data's column means, else `data`'s.
    fn base_rate(&self, data: &(impl RowSource + ?Sized)) -> Result<BaseRate> {
        let known = self.fitted.as_ref().and_then(|f| f.marginals.clone());
        let marginals = known.unwrap_or_else(|| data.column_means());
        BaseRate::from_marginals(&marginals, BaseRate::DEFAULT_SMOOTHING)
    }
}
