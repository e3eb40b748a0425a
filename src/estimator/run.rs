//! Long runs: a fit observed at every step and epoch (progress, checkpoints, estimates on
//! the way), and a run continued from a checkpoint — what `rbm train` is made of.

use super::{Config, Estimator, Fitted};
use crate::data::RowSource;
use crate::error::{Error, Result};
use crate::io::checkpoint::Checkpoint;
use crate::train::{Observer, RunPosition, Trainer, train_dataset_from};

impl Estimator {
    /// [`fit`](Self::fit), reporting to `observer` after every step (with the model, the
    /// trainer and the run's position: the place to save a [`Checkpoint`]) and every epoch.
    /// An error from the observer stops training; the estimator then keeps what it had
    /// before.
    ///
    /// # Errors
    /// Those of [`fit`](Self::fit), and the observer's.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// use rbm::train::{Observer, RunPosition, Trainer};
    ///
    /// /// Counts the steps.
    /// struct Steps(u64);
    /// impl Observer for Steps {
    ///     fn step_end(&mut self, _: &Rbm, trainer: &Trainer, _: &RunPosition) -> rbm::Result<()> {
    ///         self.0 = trainer.steps();
    ///         Ok(())
    ///     }
    /// }
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(3).batch_size(4));
    /// let mut steps = Steps(0);
    /// rbm.fit_observed(&Rows::new(&data, 4)?, &mut steps)?;
    /// assert_eq!(steps.0, 3 * 2); // 6 rows: batches of 4 and 2
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn fit_observed(
        &mut self,
        data: &(impl RowSource + ?Sized),
        observer: &mut impl Observer,
    ) -> Result<&mut Self> {
        let mut fitted = self.start(data)?;
        let mut position = RunPosition::default();
        continue_run(&mut fitted, &self.config, data, &mut position, observer)?;
        self.fitted = Some(fitted);
        Ok(self)
    }

    /// The model that [`fit`](Self::fit) starts from (weights drawn from the seed, visible
    /// biases from `data`'s column means with [`Config::marginal_bias`]) and its trainer at
    /// step 0, without training: [`fit_from`](Self::fit_from) the default position then
    /// trains it as `fit` would. Replaces any model fitted before.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings or a model too large for memory;
    /// [`Error::Shape`] for data with no rows.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// use rbm::train::RunPosition;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let config = Config::default().hidden(4).epochs(3);
    /// let mut rbm = Estimator::new(config.clone());
    /// rbm.initialize(&rows)?.fit_from(&rows, &mut RunPosition::default(), &mut ())?;
    /// assert_eq!(rbm.model(), Estimator::new(config).fit(&rows)?.model());
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn initialize(&mut self, data: &(impl RowSource + ?Sized)) -> Result<&mut Self> {
        self.fitted = Some(self.start(data)?);
        Ok(self)
    }

    /// An estimator that continues the run saved in `checkpoint` on `data` (the rows it was
    /// trained on), with the position to continue from: [`fit_from`](Self::fit_from) then
    /// ends with the model an uninterrupted run would have made, bit for bit.
    ///
    /// The settings are read back from the checkpoint's training configuration and
    /// schedule; [`Config::marginal_bias`], which shapes only the initial model, is not
    /// recorded there and reads `false`.
    ///
    /// # Errors
    /// [`Error::Shape`] (or [`Error::Dataset`]) if the rows do not have the model's visible
    /// units; [`Error::Config`] if the checkpoint's schedule does not fit the data; those of
    /// [`Trainer::resume`].
    ///
    /// ```
    /// use rbm::prelude::*;
    /// use rbm::checkpoint::Checkpoint;
    /// use rbm::train::{Observer, RunPosition, Schedule, Trainer};
    ///
    /// /// Keeps a checkpoint of the run after its step 3.
    /// struct At3(Schedule, Option<Checkpoint>);
    /// impl Observer for At3 {
    ///     fn step_end(&mut self, model: &Rbm, trainer: &Trainer, at: &RunPosition) -> rbm::Result<()> {
    ///         if trainer.steps() == 3 {
    ///             self.1 = Some(Checkpoint::of(model, trainer, &self.0, at));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let config = Config::default().hidden(4).epochs(4).batch_size(2).seed(3);
    /// let mut whole = Estimator::new(config.clone());
    /// let mut at3 = At3(config.schedule(), None);
    /// whole.fit_observed(&rows, &mut at3)?;
    /// let (mut resumed, mut position) = Estimator::resume(at3.1.unwrap(), &rows)?;
    /// resumed.fit_from(&rows, &mut position, &mut ())?;
    /// assert_eq!(resumed.model(), whole.model());
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn resume(
        checkpoint: Checkpoint,
        data: &(impl RowSource + ?Sized),
    ) -> Result<(Estimator, RunPosition)> {
        let Checkpoint {
            model,
            config: low,
            schedule,
            position,
            ..
        } = &checkpoint;
        data.check_row_len(model.n_visible())?;
        let per_epoch = schedule.batches_per_epoch_for(data.n_rows(), low.batch_size)?;
        let config = Config {
            n_hidden: model.n_hidden(),
            epochs: schedule.epochs,
            batch_size: low.batch_size,
            k: low.k,
            learning_rate: low.lr,
            lr_end: low.lr_end,
            method: low.method,
            momentum: low.momentum,
            momentum_start: low.momentum_start,
            momentum_epochs: (low.momentum_steps / per_epoch as u64) as usize,
            weight_decay: low.weight_decay,
            centering: low.centering,
            marginal_bias: false,
            binarize: schedule.binarize,
            order: schedule.order,
            drop_last: schedule.drop_last,
            batches_per_epoch: schedule.batches_per_epoch,
            seed: low.seed,
        };
        let trainer = checkpoint.trainer()?;
        let position = position.clone();
        let fitted = Fitted {
            model: checkpoint.model,
            trainer: Some(trainer),
            history: position.history.clone(),
            marginals: Some(data.column_means()),
        };
        let estimator = Estimator {
            config,
            fitted: Some(fitted),
            draws: 0,
        };
        Ok((estimator, position))
    }

    /// Trains on from `position` (where [`resume`](Self::resume) left a run, or the
    /// position an observer saw) to the end of [`Config::epochs`], reporting to `observer`
    /// (`&mut ()` for none); on return `position` is where the run stands — at the end, or
    /// after the last good step if training stopped on an error. A fitted model without a
    /// trainer (from [`load`](Self::load)) gets a new one at step 0.
    ///
    /// # Errors
    /// [`Error::NotFitted`] without a model; those of [`fit_observed`](Self::fit_observed);
    /// [`Error::Config`] if `position` is not within the schedule.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// use rbm::train::RunPosition;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(3).batch_size(2));
    /// // From the start of epoch 1 (after `initialize`, the model of step 0).
    /// let mut at = RunPosition { epoch: 1, ..RunPosition::default() };
    /// rbm.initialize(&rows)?.fit_from(&rows, &mut at, &mut ())?;
    /// assert_eq!((at.epoch, rbm.trainer().unwrap().steps()), (3, 2 * 3));
    /// assert!(rbm.fit_from(&rows, &mut RunPosition { epoch: 9, ..at }, &mut ()).is_err());
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn fit_from(
        &mut self,
        data: &(impl RowSource + ?Sized),
        position: &mut RunPosition,
        observer: &mut impl Observer,
    ) -> Result<&mut Self> {
        let per_epoch = self.batches_per_epoch(data.n_rows());
        let fitted = self.fitted.as_mut().ok_or(Error::NotFitted)?;
        if fitted.trainer.is_none() {
            let config = self.config.train_config(per_epoch);
            fitted.trainer = Some(Trainer::new(&fitted.model, config)?);
        }
        continue_run(fitted, &self.config, data, position, observer)?;
        Ok(self)
    }

    /// The trainer of the last fit (its step count, state and last reconstruction), if the
    /// model was fitted here or resumed.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(2).batch_size(3));
    /// rbm.fit(&Rows::new(&data, 4)?)?;
    /// assert_eq!(rbm.trainer().map(|t| t.steps()), Some(4));
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn trainer(&self) -> Option<&Trainer> {
        self.fitted.as_ref().and_then(|f| f.trainer.as_ref())
    }
}

/// Trains `fitted` from `position` to the end of `config`'s schedule, keeping the epochs'
/// statistics in its history.
fn continue_run(
    fitted: &mut Fitted,
    config: &Config,
    data: &(impl RowSource + ?Sized),
    position: &mut RunPosition,
    observer: &mut impl Observer,
) -> Result<()> {
    if data.n_rows() == 0 {
        return Err(Error::shape("rows to fit", "at least one row", 0));
    }
    let trainer = fitted.trainer.as_mut().ok_or(Error::NotFitted)?;
    let result = train_dataset_from(
        &mut fitted.model,
        trainer,
        data,
        &config.schedule(),
        position,
        observer,
    );
    fitted.history.clone_from(&position.history);
    result
}

/// No observation: `fit_from(data, &mut position, &mut ())`.
impl Observer for () {}
