//! `EmaWeightAveraging`: an exponential moving average of the weights, as Lightning's
//! `EMAWeightAveraging` (torch's `AveragedModel` with `get_ema_multi_avg_fn`).
//!
//! After every `update_every_n_steps`-th optimizer step from `update_starting_at_step` on,
//! `average = decay · average + (1 − decay) · weights` (the first update copies the weights).
//! Validation runs on the average (swapped in at the validation epoch's start, the trained
//! weights swapped back at its end); when training ends the average replaces the weights, so
//! `fit` returns the averaged model. The average is kept on the device, out of autodiff, and
//! saved in checkpoints (the callback's state), so a resumed run averages exactly as an
//! uninterrupted one.

use std::collections::HashMap;

use base64::Engine;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Tensor};

use super::{Callback, TrainerView};
use crate::data::SetupStage;
use crate::error::{Error, Result};
use crate::module::LightningModule;

/// Keeps an exponential moving average of the module's weights (see the module docs).
#[derive(Debug)]
pub struct EmaWeightAveraging<M> {
    decay: f64,
    update_every_n_steps: u64,
    update_starting_at_step: u64,
    average: Option<M>,
    updates: u64,
    last_update_step: Option<u64>,
    trained: Option<M>,
    restored: Option<Vec<u8>>,
}

impl<M> EmaWeightAveraging<M> {
    /// An average with `decay` in [0, 1) (Lightning's default is 0.999), updated after every
    /// optimizer step.
    pub fn new(decay: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::Callback { callback: "EmaWeightAveraging".into(), reason: format!("decay must be in [0, 1), got {decay}") });
        }
        Ok(EmaWeightAveraging {
            decay,
            update_every_n_steps: 1,
            update_starting_at_step: 0,
            average: None,
            updates: 0,
            last_update_step: None,
            trained: None,
            restored: None,
        })
    }

    /// Updates after every n-th optimizer step only (n ≥ 1).
    pub fn update_every_n_steps(mut self, n: u64) -> Self {
        self.update_every_n_steps = n.max(1);
        self
    }

    /// Starts averaging at global step `step`: the first average holds the weights after
    /// that many optimizer steps (default 0: from the first step on).
    pub fn update_starting_at_step(mut self, step: u64) -> Self {
        self.update_starting_at_step = step;
        self
    }

    /// The averaged weights so far (`None` before the first update).
    pub fn average(&self) -> Option<&M> {
        self.average.as_ref()
    }

    /// How many times the average was updated.
    pub fn updates(&self) -> u64 {
        self.updates
    }
}

impl<M: LightningModule> EmaWeightAveraging<M> {
    /// Folds the module's current weights into the average.
    fn update(&mut self, module: &M) {
        let live = module.valid();
        self.average = Some(match self.average.take() {
            None => live,
            Some(average) => {
                let weights = Tensors::of(&live);
                average.map(&mut Blend { weights: &weights, decay: self.decay })
            }
        });
        self.updates += 1;
    }

    /// A checkpoint's average, rebuilt on the module's device once the module is at hand.
    fn materialize(&mut self, module: &M) -> Result<()> {
        if let Some(bytes) = self.restored.take() {
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| Error::serde(format!("corrupt average: {e}")).caused_by(e))?;
            let average = module.valid().try_load_record(record).map_err(|e| Error::serde(format!("the average does not fit the module: {e}")).caused_by(e))?;
            self.average = Some(average);
        }
        Ok(())
    }
}

impl<M: LightningModule> Callback<M> for EmaWeightAveraging<M> {
    fn state_dict(&self) -> Option<serde_json::Value> {
        let average = self.average.as_ref().and_then(|a| a.clone().into_record().into_bytes().ok());
        let average = average.map(|b| base64::engine::general_purpose::STANDARD.encode(&b[..]));
        Some(serde_json::json!({ "updates": self.updates, "last_update_step": self.last_update_step, "average": average }))
    }

    fn load_state_dict(&mut self, state: serde_json::Value) -> Result<()> {
        let bad = |what: &str| Error::serde(format!("EmaWeightAveraging state: {what}"));
        self.updates = state.get("updates").and_then(|v| v.as_u64()).ok_or_else(|| bad("no `updates` count"))?;
        self.last_update_step = state.get("last_update_step").and_then(|v| v.as_u64());
        self.average = None;
        self.restored = match state.get("average").and_then(|v| v.as_str()) {
            Some(text) => Some(base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| bad(&format!("the average is not base64: {e}")))?),
            None => None,
        };
        Ok(())
    }

    fn setup(&mut self, trainer: &mut TrainerView<'_, M>, _stage: SetupStage) -> Result<()> {
        self.materialize(trainer.module)
    }

    fn on_train_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, _batch_idx: usize) -> Result<()> {
        let step = trainer.state().global_step;
        let stepped = self.last_update_step.is_none_or(|last| step > last) && step > 0;
        if stepped && step >= self.update_starting_at_step && step.is_multiple_of(self.update_every_n_steps) {
            self.update(trainer.module);
            self.last_update_step = Some(step);
        }
        Ok(())
    }

    fn on_validation_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if let Some(average) = &self.average {
            let weights = Tensors::of(average);
            let trained = trainer.module.clone();
            *trainer.module = trained.clone().map(&mut Replace { weights: &weights });
            self.trained = Some(trained);
        }
        Ok(())
    }

    fn on_validation_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if let Some(trained) = self.trained.take() {
            *trainer.module = trained;
        }
        Ok(())
    }

    fn on_exception(&mut self, trainer: &mut TrainerView<'_, M>, _error: &Error) -> Result<()> {
        self.on_validation_epoch_end(trainer)
    }

    fn on_train_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if let Some(average) = &self.average {
            let weights = Tensors::of(average);
            *trainer.module = trainer.module.clone().map(&mut Replace { weights: &weights });
        }
        Ok(())
    }
}

/// A module's float tensors by parameter id.
struct Tensors(HashMap<ParamId, Box<dyn std::any::Any + Send>>);

impl Tensors {
    fn of<M: Module>(module: &M) -> Self {
        let mut tensors = Tensors(HashMap::new());
        module.visit(&mut tensors);
        tensors
    }

    fn get<const D: usize>(&self, id: ParamId) -> Option<Tensor<D>> {
        self.0.get(&id).and_then(|t| t.downcast_ref::<Tensor<D>>()).cloned()
    }
}

impl ModuleVisitor for Tensors {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.insert(param.id, Box::new(param.val()));
    }
}

/// `average · decay + weights · (1 − decay)`, parameter by parameter.
struct Blend<'a> {
    weights: &'a Tensors,
    decay: f64,
}

impl ModuleMapper for Blend<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(weights) = self.weights.get::<D>(param.id) else { return param };
        let decay = self.decay;
        param.map(|average| average.mul_scalar(decay) + weights.mul_scalar(1.0 - decay))
    }
}

/// Puts the (non-autodiff) `weights` into a module being trained, keeping each parameter's
/// id and whether it requires a gradient.
struct Replace<'a> {
    weights: &'a Tensors,
}

impl ModuleMapper for Replace<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(weights) = self.weights.get::<D>(param.id) else { return param };
        param.map(|current| {
            let tracked = current.is_require_grad();
            let replaced = Tensor::from_inner(weights);
            if tracked { replaced.require_grad() } else { replaced }
        })
    }
}
