//! The fit loop: sanity check, then epochs of training batches, each followed by validation.

use std::path::{Path, PathBuf};

use super::batches::Batches;
use super::hooks::Hook;
use super::loss_watch::LossWatch;
use super::optimization::{Learner, Optimization};
use super::results::{EpochResults, Target};
use super::{Trainer, TrainerState};
use crate::checkpoint::{Checkpoint, Position};
use crate::data::{DataModule, Loader, SetupStage};
use crate::error::{Error, Result};
use crate::module::{Batch, LightningModule, Stage, StepContext};
use crate::precision::{GradScaler, Precision};
use crate::progress::Bar;
use crate::summary::ModelSummary;

/// The seed of the device generator for `epoch` on `rank`: a resumed run draws what the full
/// run drew, and the ranks of a data-parallel run draw different dropout masks.
fn epoch_seed(seed: u64, epoch: u64, rank: usize) -> u64 {
    let mut rng = crate::rng::SplitMix64::new(seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (rank as u64).wrapping_mul(0x94D0_49BB_1331_11EB));
    rng.next_u64()
}

/// What a resumed fit's first epoch has done already.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Done {
    /// Nothing: the epoch starts from its first batch.
    Nothing,
    /// This many training batches (checkpoints from before fulmen recorded samples).
    Batches(usize),
    /// This many training samples: they survive a change of batch size, as the loader orders
    /// samples, not batches.
    Samples(u64),
    /// All its training; its validation is still to run.
    Training,
}

impl Done {
    /// The epoch to resume in, and what of it is done.
    fn at(start: Position) -> (u64, Done) {
        match (start.epoch_finished, start.validation_pending, start.samples_in_epoch) {
            (true, false, _) => (start.epoch + 1, Done::Nothing),
            (true, true, _) => (start.epoch, Done::Training),
            (false, _, Some(0)) => (start.epoch, Done::Nothing),
            (false, _, Some(samples)) => (start.epoch, Done::Samples(samples)),
            (false, _, None) => (start.epoch, Done::Batches(start.batches_in_epoch)),
        }
    }

    /// Whether batch `index` was trained before (`samples` counts the samples skipped so far).
    fn skips(self, index: usize, samples: u64) -> bool {
        match self {
            Done::Batches(n) => index < n,
            Done::Samples(n) => samples < n,
            Done::Nothing | Done::Training => false,
        }
    }

    /// A skipped batch must end at or before the resume point: the next sample is the first one
    /// the checkpoint's run did not train on.
    fn check_skipped(self, epoch: u64, samples: u64) -> Result<()> {
        match self {
            Done::Samples(n) if samples > n => Err(Error::Data(format!(
                "the run resumes after sample {n} of epoch {epoch}, which falls inside a batch of this run's batch size \
                 (its batches end at sample {samples}); resume with a batch size that divides {n}, such as the \
                 checkpoint's, or from a checkpoint written at an epoch's end"
            ))),
            _ => Ok(()),
        }
    }

    /// After the epoch, the resume point must have been reached.
    fn check_reached(self, epoch: u64, batches: usize, samples: u64) -> Result<()> {
        let (what, needed, had) = match self {
            Done::Batches(n) if batches < n => ("batch", n as u64, batches as u64),
            Done::Samples(n) if samples < n => ("sample", n, samples),
            _ => return Ok(()),
        };
        Err(Error::Data(format!(
            "the run resumes after {what} {needed} of epoch {epoch}, but this run's epoch has {had}: the checkpoint was \
             written with other data or other limits; resume with those, or from a checkpoint written at an epoch's end"
        )))
    }
}

impl<M: LightningModule> Trainer<M> {
    /// `fit`, optionally resuming from `resume` (a checkpoint read back, with its path).
    pub(super) fn run_fit<D: DataModule<Batch = M::Batch>>(&mut self, model: M, dm: &mut D, resume: Option<(PathBuf, Checkpoint)>) -> Result<M> {
        let device = self.device.clone();
        let train_loader = dm.train_dataloader()?.to_device(&device);
        let val_loader = dm.val_dataloader()?.map(|l| l.to_device(&device));
        let validation_enabled = val_loader.is_some() && self.config.limit_val_batches.batches(Some(1)) != Some(0);
        self.state = TrainerState {
            default_root_dir: self.config.default_root_dir.clone(),
            validation_enabled,
            fitting: true,
            fast_dev_run: self.config.fast_dev_run > 0,
            seed: self.config.seed,
            precision: self.config.precision,
            log_dir: self.state.log_dir.take(),
            class_names: self.state.class_names.take(),
            global_rank: self.state.global_rank,
            world_size: self.state.world_size,
            ..TrainerState::default()
        };
        let model = match &resume {
            Some((path, checkpoint)) => {
                let expected = std::any::type_name::<M>();
                if checkpoint.header.model_type != expected {
                    let reason = format!("it holds a `{}`, not a `{expected}`", checkpoint.header.model_type);
                    return Err(Error::checkpoint(path.clone(), reason));
                }
                checkpoint.load_weights(model, path)?
            }
            None => model,
        };
        let model = match &self.ddp {
            Some(ddp) => ddp.broadcast_module(model.to_device(&device))?,
            None => model,
        };
        let model = model.to_device(&device.clone().autodiff()).train();
        let precision = self.config.precision;
        // `*-true` trains the low-dtype model itself; mixed modes keep f32 master weights.
        let model = if precision.is_mixed() { model } else { crate::precision::for_compute(model, precision) };
        let optimizers = model.configure_optimizers().0;
        let optimizers = match &resume {
            Some((path, checkpoint)) => checkpoint.load_optimizers(&model, optimizers, path)?,
            None => optimizers,
        };
        let mut scaler = (precision == Precision::F16Mixed).then(|| GradScaler::new(self.config.grad_scaler));
        if let (Some(scaler), Some((path, checkpoint))) = (&mut scaler, &resume)
            && let Some(state) = checkpoint.header.grad_scaler
        {
            scaler.load_state(state).map_err(|e| Error::checkpoint(path.clone(), e.to_string()))?;
        }
        self.state.grad_scaler = scaler.as_ref().map(GradScaler::state);
        let mut learner = Learner::new(model, optimizers, precision, scaler, self.ddp.clone());
        let mut optimization = Optimization::new(&learner, &self.config)?;
        let start = match &resume {
            Some((path, checkpoint)) => self.restore(learner.parts().0, path, checkpoint)?,
            None => Position::default(),
        };
        self.start_loggers(learner.model().hparams())?;
        if let Some(ddp) = &self.ddp {
            // Every rank names checkpoints in rank 0's version folder (only rank 0 writes them).
            self.state.log_dir = ddp.broadcast_path(self.state.log_dir.take(), "the broadcast of rank 0's log folder")?;
        }
        if self.config.enable_model_summary {
            println!("{}", ModelSummary::of(learner.model()).render());
        }
        let result = self.fit_stages(&mut learner, &mut optimization, &train_loader, val_loader.as_ref(), start);
        if let Err(error) = &result {
            let (model, optimizers) = learner.parts();
            // The original error matters more than one from a callback's on_exception.
            let _ = self.call_callbacks(model, optimizers, Hook::Exception(error));
        }
        result?;
        Ok(learner.into_model().valid())
    }

    /// Restores the position and the callbacks' and module's states from a checkpoint; returns
    /// the position to resume from.
    fn restore(&mut self, model: &mut M, path: &Path, checkpoint: &Checkpoint) -> Result<Position> {
        let header = &checkpoint.header;
        let mut position = header.position();
        if let Some(samples) = position.samples_in_epoch
            && position.batches_in_epoch as u64 > samples
        {
            let reason = format!(
                "its position is inconsistent: {} batches but {samples} samples done in epoch {} (every batch has a \
                 sample); the header was edited. Resume from another checkpoint",
                position.batches_in_epoch, position.epoch
            );
            return Err(Error::checkpoint(path, reason));
        }
        let mid_epoch = !position.epoch_finished && position.batches_in_epoch > 0;
        if mid_epoch && position.samples_in_epoch.is_some() && header.seed != self.config.seed {
            let seed = |s: Option<u64>| s.map_or("no seed".to_string(), |s| format!("seed {s}"));
            let reason = format!(
                "it was written in the middle of epoch {} by a run with {}, and this run has {}: the epoch's data comes in \
                 another order, so the batches still to train cannot be found. Resume with the checkpoint's seed, or from a \
                 checkpoint written at an epoch's end",
                position.epoch,
                seed(header.seed),
                seed(self.config.seed)
            );
            return Err(Error::checkpoint(path, reason));
        }
        self.state.epoch = position.epoch;
        self.state.global_step = position.global_step;
        self.state.resumed_from = Some(path.to_path_buf());
        for callback in &mut self.callbacks {
            if let Some(state) = header.callbacks.get(&callback.state_key()) {
                callback.load_state_dict(state.clone()).map_err(|e| {
                    let reason = format!("the state of callback `{}` cannot be restored: {e}", callback.state_key());
                    Error::checkpoint(path, reason).caused_by(e)
                })?;
            }
        }
        model.on_load_checkpoint(&header.extra)?;
        for callback in &mut self.callbacks {
            callback.on_load_checkpoint(&self.state, &header.extra)?;
        }
        // Checkpoints count the samples of the epoch's order all ranks trained on; each of this
        // run's ranks skips its share of them.
        let world = self.state.world_size.max(1) as u64;
        if let Some(samples) = position.samples_in_epoch
            && mid_epoch
        {
            if !samples.is_multiple_of(world) {
                let reason = format!(
                    "it was written after sample {samples} of epoch {}, which {world} ranks cannot share equally; resume on a \
                     number of ranks that divides {samples} (the checkpoint's run had its batches end there), or from a checkpoint \
                     written at an epoch's end",
                    position.epoch
                );
                return Err(Error::checkpoint(path, reason));
            }
            position.samples_in_epoch = Some(samples / world);
        }
        Ok(position)
    }

    /// The hooks and loops of `fit` after setup.
    fn fit_stages(
        &mut self,
        learner: &mut Learner<M>,
        optimization: &mut Optimization<M>,
        train_loader: &Loader<M::Batch>,
        val_loader: Option<&Loader<M::Batch>>,
        start: Position,
    ) -> Result<()> {
        self.call_learner(learner, Hook::Setup(SetupStage::Fit))?;
        self.call_learner(learner, Hook::FitStart)?;
        if let (Some(val), true) = (val_loader, self.state.validation_enabled && self.config.num_sanity_val_steps > 0) {
            self.state.sanity_checking = true;
            let (model, optimizers) = learner.parts();
            self.call_callbacks(model, optimizers, Hook::SanityCheckStart)?;
            let limit = self.config.num_sanity_val_steps;
            self.run_validation(learner, val, Some(limit))?;
            let (model, optimizers) = learner.parts();
            self.call_callbacks(model, optimizers, Hook::SanityCheckEnd)?;
            self.state.sanity_checking = false;
        }
        self.call_learner(learner, Hook::StageStart(Stage::Train))?;

        let (mut epoch, mut done) = Done::at(start);
        let max_epochs = self.config.max_epochs.unwrap_or(u64::MAX);
        let max_steps = self.config.max_steps.unwrap_or(u64::MAX);
        // Replay the data order of the epochs already done (only when there is one left to train).
        if epoch < max_epochs && self.state.global_step < max_steps {
            for _ in 0..epoch {
                drop(train_loader.iter());
            }
        }
        while epoch < max_epochs && self.state.global_step < max_steps && !self.state.should_stop {
            self.state.epoch = epoch;
            if let Some(seed) = self.config.seed {
                self.device.seed(epoch_seed(seed, epoch, self.state.global_rank));
            }
            match std::mem::replace(&mut done, Done::Nothing) {
                Done::Training => {
                    // Interrupted in its validation: the epoch's training is done, its validation is not.
                    drop(train_loader.iter());
                    self.state.stage = Some(Stage::Train);
                    self.state.train_batches_done = start.batches_in_epoch;
                    self.state.train_samples_done = start.samples_in_epoch.unwrap_or(0);
                    self.state.train_epoch_finished = true;
                }
                skip => {
                    let _shard = crate::strategy::shard::enter(self.shard(true));
                    self.train_epoch(learner, optimization, train_loader, skip)?
                }
            }
            if self.state.validation_enabled
                && (epoch + 1).is_multiple_of(self.config.check_val_every_n_epoch)
                && let Some(val) = val_loader
            {
                self.run_validation(learner, val, None)?;
            }
            self.state.stage = Some(Stage::Train);
            self.call_learner(learner, Hook::EpochEnd(Stage::Train))?;
            self.bars.set_metrics(&self.state.progress_bar_metrics);
            self.bars.finish(Bar::Main);
            if !self.bars.drawn() {
                let line = crate::progress::format_metrics(&self.state.progress_bar_metrics);
                let batches = self.state.train_batches_done;
                self.bars.println(&format!("Epoch {epoch}: {batches} batches, global step {} | {line}", self.state.global_step));
            }
            for logger in &mut self.loggers {
                logger.flush()?;
            }
            self.agree_on_stopping(epoch)?;
            epoch += 1;
        }
        self.state.epoch = epoch;
        if let Some(reason) = &self.state.stop_reason {
            self.bars.println(&format!("Stopped early: {reason}"));
        }
        self.call_learner(learner, Hook::StageEnd(Stage::Train))?;
        self.call_learner(learner, Hook::FitEnd)?;
        self.call_learner(learner, Hook::Teardown(SetupStage::Fit))?;
        self.state.stage = None;
        Ok(())
    }

    /// One training epoch (skipping what `done` says was trained before a resume) and its epoch
    /// metrics. How each batch becomes optimizer steps is `optimization`'s.
    fn train_epoch(&mut self, learner: &mut Learner<M>, optimization: &mut Optimization<M>, loader: &Loader<M::Batch>, done: Done) -> Result<()> {
        let epoch = self.state.epoch;
        let max_steps = self.config.max_steps.unwrap_or(u64::MAX);
        self.state.stage = Some(Stage::Train);
        self.state.train_batches_done = 0;
        self.state.train_samples_done = 0;
        self.state.train_epoch_finished = false;
        // A resumed epoch keeps the learning rate it had (restored from the checkpoint).
        optimization.on_train_epoch_start(learner, !matches!(done, Done::Nothing));
        self.call_learner(learner, Hook::EpochStart(Stage::Train))?;
        let mut results = EpochResults::default();
        let mut batches = Batches::new(loader, self.config.limit_train_batches, None, "training", Bar::Main, format!("Epoch {epoch}"));
        let mut losses = LossWatch::new(self.config.precision);
        let mut exhausted = true;
        loop {
            if self.state.global_step >= max_steps && !batches.at_bound() {
                exhausted = false;
                break;
            }
            let stop = self.stop_requested(true);
            let Some((batch_idx, batch)) = batches.next(&mut self.bars, (epoch, self.state.global_step), stop)? else { break };
            if done.skips(batch_idx, self.state.train_samples_done) {
                self.state.train_batches_done = batch_idx + 1;
                self.state.train_samples_done += batch.batch_size() as u64;
                done.check_skipped(epoch, self.state.train_samples_done)?;
                continue;
            }
            self.call_learner(learner, Hook::BatchStart(Stage::Train, batch_idx))?;
            let steps_before = self.state.global_step;
            let mut ctx = StepContext::new(Stage::Train, batch_idx, batch.batch_size(), epoch, steps_before);
            let closes_epoch = batches.bound().is_some_and(|l| batch_idx + 1 >= l);
            let loss = optimization.run(self, learner, batch, &mut ctx, closes_epoch)?;
            results.record_step(&mut ctx)?;
            if let Some(loss) = &loss {
                losses.record(loss, steps_before);
            }
            let batches_done = batch_idx + 1;
            self.state.train_batches_done = batches_done;
            self.state.train_samples_done += ctx.batch_size() as u64;
            self.bars.set_position(Bar::Main, batches_done as u64);
            if self.state.global_step > steps_before {
                let every = self.config.log_every_n_steps;
                if self.state.global_step / every > steps_before / every {
                    let metrics = results.step_values(Target::Logger);
                    self.state.callback_metrics.extend(metrics.clone());
                    self.log_row(metrics, self.state.global_step - 1)?;
                }
                if (batches_done as u64).is_multiple_of(self.config.progress_bar_refresh_rate) {
                    losses.check(epoch)?;
                    results.check_labels()?;
                    let shown = results.step_values(Target::ProgBar);
                    self.state.progress_bar_metrics.extend(shown);
                    self.bars.set_metrics(&self.state.progress_bar_metrics);
                }
            }
            self.call_learner(learner, Hook::BatchEnd(Stage::Train, batch_idx))?;
        }
        done.check_reached(epoch, self.state.train_batches_done, self.state.train_samples_done)?;
        self.state.train_epoch_finished = exhausted;
        losses.check(epoch)?;
        let output = results.epoch_values_across(self.ddp.as_ref())?;
        self.publish_epoch(output, Stage::Train)
    }

    /// In a data-parallel run, every rank stops when one asked to (EarlyStopping decides on
    /// values that may differ by rank; `request_stop` may be called on one rank only).
    fn agree_on_stopping(&mut self, epoch: u64) -> Result<()> {
        let Some(ddp) = &self.ddp else { return Ok(()) };
        if ddp.any(self.state.should_stop, &format!("the stop decision after epoch {epoch}"))? && !self.state.should_stop {
            self.state.should_stop = true;
            self.state.stop_reason = Some("another rank asked to stop".into());
        }
        Ok(())
    }

    /// One validation run (hooks included); its epoch metrics are published unless this is the
    /// sanity check.
    fn run_validation(&mut self, learner: &mut Learner<M>, loader: &Loader<M::Batch>, limit: Option<usize>) -> Result<()> {
        self.state.stage = Some(Stage::Validation);
        self.call_learner(learner, Hook::StageStart(Stage::Validation))?;
        self.call_learner(learner, Hook::EpochStart(Stage::Validation))?;
        let mut snapshot = crate::precision::for_compute(learner.model().valid(), self.config.precision);
        self.state.validation_pending = !self.state.sanity_checking;
        let output = self.evaluate(&mut snapshot, loader, Stage::Validation, limit)?;
        if !self.state.sanity_checking {
            self.publish_epoch(output, Stage::Validation)?;
        }
        self.state.validation_pending = false;
        self.call_learner(learner, Hook::EpochEnd(Stage::Validation))?;
        self.call_learner(learner, Hook::StageEnd(Stage::Validation))?;
        self.state.stage = Some(Stage::Train);
        Ok(())
    }
}
