//! fulmen's checkpoint file: one file holding the weights (Burn's burnpack record), the optimizer
//! state, the position in training (epoch, global step, batches into the epoch), the
//! hyperparameters, every callback's state and the fulmen version; the header and every section
//! CRC-checked, written atomically. Nothing in it can execute code on load. The data order needs no state: the
//! loaders' shuffles are functions of the seed and the epoch.
//!
//! Layout (format 2): `FULMENCK`, u32 LE format version, u32 LE header length, u32 LE CRC-32 of
//! the header, the JSON [`CheckpointHeader`], then the sections in the header's order. Format 1
//! (no header CRC) is still read.

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, FloatDType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::atomic_write;
use crate::hparams::Hyperparameters;
use crate::optim::OptimizerConfig;
use crate::precision::{CastParams, GradScalerState, Precision};

const MAGIC: &[u8; 8] = b"FULMENCK";
const FORMAT_VERSION: u32 = 2;

/// Checks a saved optimizer state against the parameters it steps before Burn loads it (Burn
/// trusts it: a state tensor without a parameter id panics on load, one of another shape at the
/// first step). Every state tensor must belong to a parameter of `model` that `config` steps,
/// with that parameter's shape (or one element).
fn check_optimizer_state<M: Module>(model: &M, config: &OptimizerConfig, bytes: &[u8]) -> std::result::Result<(), String> {
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| format!("it cannot be read: {e}"))?;
    let tensors = reader.into_tensors().map_err(|e| format!("it cannot be read: {e}"))?;
    let mut shapes = ParamShapes::default();
    model.visit(&mut shapes);
    for tensor in tensors {
        let Some(id) = tensor.param_id else { return Err(format!("state `{}` names no parameter", tensor.name)) };
        let id = burn::module::ParamId::from(id);
        let Some(shape) = shapes.0.get(&id).filter(|_| config.params().is_none_or(|ids| ids.contains(&id))) else {
            return Err(format!("state `{}` belongs to a parameter this optimizer does not step (a checkpoint of another model?)", tensor.name));
        };
        let saved: Vec<usize> = tensor.shape.iter().copied().collect();
        if saved != *shape && saved.iter().product::<usize>() != 1 {
            return Err(format!("state `{}` has shape {saved:?}, its parameter {shape:?}", tensor.name));
        }
    }
    Ok(())
}

/// Every float parameter's shape, by id.
#[derive(Default)]
struct ParamShapes(std::collections::HashMap<burn::module::ParamId, Vec<usize>>);

impl burn::module::ModuleVisitor for ParamShapes {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
        self.0.insert(param.id, param.val().dims().to_vec());
    }
}

/// One stored section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Section {
    /// `model`, `optimizer` or `scheduler`.
    pub name: String,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32 of the bytes.
    pub crc32: u32,
}

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointHeader {
    /// fulmen version that wrote it.
    pub fulmen_version: String,
    /// Rust type name of the model.
    pub model_type: String,
    /// The epoch (0-based) it was written in.
    pub epoch: u64,
    /// Optimizer steps taken.
    pub global_step: u64,
    /// Training batches done in `epoch`.
    #[serde(default)]
    pub batches_in_epoch: usize,
    /// Whether `epoch`'s training batches were all done (a resumed fit starts at the next epoch).
    #[serde(default)]
    pub epoch_finished: bool,
    /// Training samples done in `epoch` (absent in checkpoints from before fulmen recorded it).
    #[serde(default)]
    pub samples_in_epoch: Option<u64>,
    /// Whether `epoch`'s validation had begun and not finished: a resumed fit runs it again.
    #[serde(default)]
    pub validation_pending: bool,
    /// The Trainer's seed, which orders the epoch's data; a mid-epoch resume needs the same.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The precision it was trained in (Lightning's name; absent: `32-true`). The weights and
    /// the optimizer state are f32 whatever it was, so a run resumes in any precision.
    #[serde(default)]
    pub precision: Option<String>,
    /// `16-mixed`'s loss scaler.
    #[serde(default)]
    pub grad_scaler: Option<GradScalerState>,
    /// The first optimizer's learning rate, as checkpoints before several optimizers wrote
    /// it; read when `optimizers` is empty.
    #[serde(default, skip_serializing)]
    pub lr: Option<f64>,
    /// Each optimizer's name and learning rate in force (the scheduler's, when it has one),
    /// in `configure_optimizers`' order; their states are the sections `optimizer`,
    /// `optimizer.1`, .. and `scheduler`, `scheduler.1`, ...
    #[serde(default)]
    pub optimizers: Vec<SavedOptimizer>,
    /// The model's hyperparameters.
    pub hparams: Option<serde_json::Value>,
    /// Callback states by state key.
    pub callbacks: serde_json::Map<String, serde_json::Value>,
    /// What `on_save_checkpoint` hooks added.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Sections that follow the header.
    pub sections: Vec<Section>,
}

/// One optimizer as a checkpoint records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedOptimizer {
    /// Its label (`OptimizerConfig::label`).
    pub name: String,
    /// Its learning rate in force.
    pub lr: f64,
}

/// A checkpoint read back: its header and its sections.
#[derive(Debug)]
pub struct Checkpoint {
    /// The header.
    pub header: CheckpointHeader,
    model: Vec<u8>,
    /// Section name → bytes, for every optimizer and scheduler section.
    states: std::collections::BTreeMap<String, Vec<u8>>,
}

/// The section names of optimizer `index`'s state and its scheduler's.
fn state_sections(index: usize) -> (String, String) {
    match index {
        0 => ("optimizer".into(), "scheduler".into()),
        i => (format!("optimizer.{i}"), format!("scheduler.{i}")),
    }
}

/// Where training stood when a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Position {
    /// The epoch (0-based).
    pub epoch: u64,
    /// Optimizer steps taken.
    pub global_step: u64,
    /// Training batches done in `epoch`.
    pub batches_in_epoch: usize,
    /// Whether `epoch`'s training batches were all done.
    pub epoch_finished: bool,
    /// Training samples done in `epoch`, when the checkpoint says.
    pub samples_in_epoch: Option<u64>,
    /// Whether `epoch`'s validation had begun and not finished.
    pub validation_pending: bool,
    /// The Trainer's seed, which orders the data the position counts.
    pub seed: Option<u64>,
    /// The precision being trained in.
    pub precision: Precision,
    /// `16-mixed`'s loss scaler.
    pub grad_scaler: Option<GradScalerState>,
}

impl CheckpointHeader {
    /// Where training stood.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch,
            global_step: self.global_step,
            batches_in_epoch: self.batches_in_epoch,
            epoch_finished: self.epoch_finished,
            samples_in_epoch: self.samples_in_epoch,
            validation_pending: self.validation_pending,
            seed: self.seed,
            precision: self.precision.as_deref().and_then(|p| p.parse().ok()).unwrap_or_default(),
            grad_scaler: self.grad_scaler,
        }
    }
}

/// Writes a checkpoint of `model` (and the states of `optimizers`) to `path`, atomically.
pub fn save<M: Module>(
    path: &Path,
    model: &M,
    optimizers: &[OptimizerConfig],
    position: Position,
    hparams: Option<serde_json::Value>,
    callbacks: serde_json::Map<String, serde_json::Value>,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::checkpoint(path, format!("{what}: {e}"));
    // f32 weights whatever the precision, so any run loads them.
    let model = model.clone().map(&mut CastParams::into_leaves(FloatDType::F32));
    let model_bytes = model.into_record().into_bytes().map_err(|e| fail("cannot serialize the weights", &e))?;
    let mut blobs: Vec<(String, Vec<u8>)> = vec![("model".into(), model_bytes.to_vec())];
    for (i, config) in optimizers.iter().enumerate() {
        let (optimizer, scheduler) = state_sections(i);
        let bytes = config.optimizer.into_bytes().map_err(|e| fail("cannot serialize the optimizer state", &e))?;
        blobs.push((optimizer, bytes.to_vec()));
        if let Some(schedule) = &config.scheduler {
            let bytes = schedule.scheduler.to_record().into_bytes().map_err(|e| fail("cannot serialize the scheduler state", &e))?;
            blobs.push((scheduler, bytes.to_vec()));
        }
    }
    let header = CheckpointHeader {
        fulmen_version: env!("CARGO_PKG_VERSION").to_string(),
        model_type: std::any::type_name::<M>().to_string(),
        epoch: position.epoch,
        global_step: position.global_step,
        batches_in_epoch: position.batches_in_epoch,
        epoch_finished: position.epoch_finished,
        samples_in_epoch: position.samples_in_epoch,
        validation_pending: position.validation_pending,
        seed: position.seed,
        precision: Some(position.precision.to_string()),
        grad_scaler: position.grad_scaler,
        lr: None,
        optimizers: optimizers.iter().map(|c| SavedOptimizer { name: c.label().to_string(), lr: c.lr }).collect(),
        hparams,
        callbacks,
        extra,
        sections: blobs.iter().map(|(name, b)| Section { name: name.to_string(), len: b.len() as u64, crc32: crc32fast::hash(b) }).collect(),
    };
    let header_json = serde_json::to_vec(&header).map_err(|e| fail("cannot serialize the header", &e))?;
    let total = 20 + header_json.len() + blobs.iter().map(|(_, b)| b.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&header_json).to_le_bytes());
    out.extend_from_slice(&header_json);
    for (_, b) in &blobs {
        out.extend_from_slice(b);
    }
    atomic_write(path, &out)
}

impl Checkpoint {
    /// Reads and verifies a checkpoint file: magic, version, header, every section's length and CRC.
    pub fn read(path: &Path) -> Result<Self> {
        let fail = |reason: String| Error::checkpoint(path, reason);
        let bytes = std::fs::read(path).map_err(Error::io("cannot read checkpoint", path))?;
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(fail("not a fulmen checkpoint (bad magic bytes)".into()));
        }
        let word = |at: usize| bytes.get(at..at + 4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        let version = word(8).unwrap_or_default();
        let (header_start, crc) = match version {
            1 => (16usize, None),
            FORMAT_VERSION => (20, Some(word(16).ok_or_else(|| fail("truncated: the header is cut off".into()))?)),
            _ => return Err(fail(format!("format version {version}, this fulmen reads versions 1 and {FORMAT_VERSION}; use a matching fulmen"))),
        };
        let header_len = word(12).unwrap_or_default() as usize;
        let header_end = header_start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or_else(|| fail("truncated: the header is cut off".into()))?;
        let header_bytes = &bytes[header_start..header_end];
        if crc.is_some_and(|crc| crc != crc32fast::hash(header_bytes)) {
            return Err(fail("corrupt: the header fails its CRC-32 check (was it edited?); use another checkpoint".into()));
        }
        let header: CheckpointHeader = serde_json::from_slice(header_bytes).map_err(|e| fail(format!("corrupt header: {e}")).caused_by(e))?;
        let mut offset = header_end;
        let (mut model, mut states) = (None, std::collections::BTreeMap::new());
        for s in &header.sections {
            let end = offset
                .checked_add(s.len as usize)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| fail(format!("truncated: section `{}` needs {} bytes, the file ends {} bytes in", s.name, s.len, bytes.len() - offset)))?;
            let blob = &bytes[offset..end];
            if crc32fast::hash(blob) != s.crc32 {
                return Err(fail(format!("corrupt: section `{}` fails its CRC-32 check", s.name)));
            }
            let known = |prefix: &str| {
                s.name == prefix || s.name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')).is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n > 0))
            };
            match s.name.as_str() {
                "model" => model = Some(blob.to_vec()),
                _ if known("optimizer") || known("scheduler") => {
                    if states.insert(s.name.clone(), blob.to_vec()).is_some() {
                        return Err(fail(format!("section `{}` appears twice", s.name)));
                    }
                }
                other => return Err(fail(format!("unknown section `{other}`"))),
            }
            offset = end;
        }
        if offset != bytes.len() {
            return Err(fail(format!("{} unexpected bytes after the last section", bytes.len() - offset)));
        }
        let model = model.ok_or_else(|| fail("holds no model weights".into()))?;
        Ok(Checkpoint { header, model, states })
    }

    /// Loads the weights into `model` (which must have the same structure and shapes).
    pub fn load_weights<M: Module>(&self, model: M, path: &Path) -> Result<M> {
        let fail = |reason: String| Error::checkpoint(path, reason);
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.model.clone())).map_err(|e| fail(format!("corrupt weights: {e}")).caused_by(e))?;
        model.try_load_record(record).map_err(|e| {
            fail(format!("the weights do not fit {} (it was written for {}): {e}", std::any::type_name::<M>(), self.header.model_type)).caused_by(e)
        })
    }

    /// The optimizers' names and learning rates as stored (older checkpoints: one, unnamed).
    fn saved_optimizers(&self) -> Vec<Option<SavedOptimizer>> {
        if !self.header.optimizers.is_empty() {
            return self.header.optimizers.iter().cloned().map(Some).collect();
        }
        if self.states.contains_key("optimizer") || self.header.lr.is_some() {
            return vec![self.header.lr.map(|lr| SavedOptimizer { name: String::new(), lr })];
        }
        Vec::new()
    }

    /// Loads each optimizer's state, its scheduler's state and its learning rate into
    /// `configs` (the module's `configure_optimizers`), which must match the stored ones in
    /// count and order. A checkpoint written without optimizer state (`save_weights_only`)
    /// leaves them fresh.
    pub fn load_optimizers<M: Module>(&self, model: &M, mut configs: Vec<OptimizerConfig>, path: &Path) -> Result<Vec<OptimizerConfig>> {
        let fail = |reason: String| Error::checkpoint(path, reason);
        let saved = self.saved_optimizers();
        if saved.is_empty() {
            return Ok(configs);
        }
        if saved.len() != configs.len() {
            let names = |n: Vec<String>| n.join(", ");
            return Err(fail(format!(
                "it holds the state of {} optimizer(s) [{}], configure_optimizers returns {} [{}]",
                saved.len(),
                names(saved.iter().map(|s| s.as_ref().map_or("?".into(), |s| s.name.clone())).collect()),
                configs.len(),
                names(configs.iter().map(|c| c.label().to_string()).collect()),
            )));
        }
        for (i, (config, saved)) in configs.iter_mut().zip(&saved).enumerate() {
            if let Some(saved) = saved.as_ref().filter(|s| !s.name.is_empty() && s.name != config.label()) {
                return Err(fail(format!(
                    "optimizer {i} is `{}` in the checkpoint and `{}` in configure_optimizers; keep their order and names",
                    saved.name,
                    config.label()
                )));
            }
            let (optimizer, scheduler) = state_sections(i);
            if let Some(bytes) = self.states.get(&optimizer) {
                check_optimizer_state(model, config, bytes)
                    .map_err(|reason| fail(format!("the state of optimizer {i} ({}) does not fit the model: {reason}", config.label())))?;
                config.optimizer = config
                    .optimizer
                    .clone()
                    .from_bytes(Bytes::from_bytes_vec(bytes.clone()))
                    .map_err(|e| fail(format!("the state of optimizer {i} does not fit: {e}")).caused_by(e))?;
            }
            match (self.states.get(&scheduler), &mut config.scheduler) {
                (Some(bytes), Some(schedule)) => {
                    let record = burn::lr_scheduler::LrSchedulerRecord::from_bytes(Bytes::from_bytes_vec(bytes.clone()))
                        .map_err(|e| fail(format!("corrupt scheduler state: {e}")).caused_by(e))?;
                    schedule.scheduler = schedule.scheduler.clone().load_record(record);
                }
                (Some(_), None) => {
                    return Err(fail(format!(
                        "it holds a learning-rate scheduler's state for optimizer {i} ({}), but configure_optimizers returns it without a scheduler",
                        config.label()
                    )));
                }
                _ => {}
            }
            if let Some(saved) = saved {
                config.lr = saved.lr;
            }
        }
        Ok(configs)
    }

    /// The stored hyperparameters, parsed and validated as `H`.
    pub fn hparams<H: Hyperparameters>(&self, path: &Path) -> Result<H> {
        let value = self.header.hparams.clone().ok_or_else(|| Error::checkpoint(path, "holds no hyperparameters (the model had none when it was saved)"))?;
        H::from_value(value).map_err(|e| Error::checkpoint(path, e.to_string()).caused_by(e))
    }
}

/// Models that can be rebuilt from their hyperparameters; `#[derive(LightningModule)]` implements it.
pub trait FromHparams: Module + Sized {
    /// The hyperparameter struct.
    type Hparams: Hyperparameters;
    /// Builds a freshly initialized model on `device`.
    fn from_hparams(hparams: Self::Hparams, device: &burn::tensor::Device) -> Result<Self>;

    /// Rebuilds the model from a checkpoint's stored hyperparameters and weights
    /// (Lightning's `load_from_checkpoint`).
    fn load_from_checkpoint(path: impl AsRef<Path>, device: &burn::tensor::Device) -> Result<Self> {
        let path = path.as_ref();
        let checkpoint = Checkpoint::read(path)?;
        let model = Self::from_hparams(checkpoint.hparams(path)?, device)?;
        checkpoint.load_weights(model, path)
    }
}

/// For generated code: validates a model's hyperparameters through its `FromHparams` impl, so
/// a type that is not `#[hyperparameters]` is reported once, at that impl.
#[doc(hidden)]
pub fn validate_hparams<M: FromHparams>(hparams: &M::Hparams) -> Result<()> {
    hparams.validate()
}

/// For generated code: a model's saved hyperparameters, through its `FromHparams` impl.
#[doc(hidden)]
pub fn saved_hparams<M: FromHparams>(hparams: &M::Hparams) -> Option<crate::hparams::SavedHparams> {
    hparams.saved().ok()
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};

    use super::*;

    /// Adam's state after one step on `layer`, as a checkpoint section holds it.
    fn adam_state(layer: Linear) -> (OptimizerConfig, Vec<u8>) {
        let device = Device::flex().autodiff();
        let layer = layer.to_device(&device).train();
        let loss = layer.forward(Tensor::<2>::ones([4, 3], &device)).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let mut config = crate::optim::adam(1e-3);
        let _ = config.optimizer.step(config.rates(), layer, grads);
        let bytes = config.optimizer.into_bytes().unwrap().to_vec();
        (crate::optim::adam(1e-3), bytes)
    }

    #[test]
    fn an_optimizer_state_of_other_shapes_or_other_parameters_is_refused() {
        let device = Device::flex();
        let layer = LinearConfig::new(3, 2).init(&device);
        let (config, bytes) = adam_state(layer.clone());
        check_optimizer_state(&layer, &config, &bytes).unwrap();
        // The same parameter ids with other shapes: Burn would load it and panic at the next step.
        let reshaped = Linear { weight: Param::initialized(layer.weight.id, Tensor::zeros([5, 2], &device)), ..layer.clone() };
        let err = check_optimizer_state(&reshaped, &config, &bytes).unwrap_err();
        assert!(err.contains("has shape [3, 2], its parameter [5, 2]"), "{err}");
        // Another model's parameters: Burn would drop the state silently.
        let other = LinearConfig::new(3, 2).init(&device);
        let err = check_optimizer_state(&other, &config, &bytes).unwrap_err();
        assert!(err.contains("does not step"), "{err}");
        // An optimizer restricted to a part steps only that part's parameters.
        let narrowed = crate::optim::adam(1e-3).on(&other);
        assert!(check_optimizer_state(&layer, &narrowed, &bytes).unwrap_err().contains("does not step"));
        assert!(check_optimizer_state(&layer, &config, b"not a burnpack").unwrap_err().contains("cannot be read"));
    }
}
