//! Numerical precision, as Lightning's `precision` flag and its `plugins/precision`: which float
//! dtype the forward pass computes in, and the loss scaler of `16-mixed`.
//!
//! Mixed modes keep the model's parameters, the gradients the optimizer sees and its state in
//! f32 (the master weights). Each training step runs on a copy of the model whose parameters are
//! cast to the low dtype ([`CastParams`]): the cast is an autodiff op, so backward brings each
//! gradient back to its f32 parameter as f32, and the optimizer steps the f32 weights. The copy
//! costs one cast per parameter per step; casting the weights, not the model, is what keeps
//! one master copy that checkpoints, callbacks and validation read. What autocast keeps in f32
//! stays there: batch norm (its parameters are not cast and `fulmen::nn::batch_norm_forward`
//! runs it on an f32 copy of its input), softmax and log-softmax, the losses and the metrics
//! (the generated steps cast the logits to f32 first).

use std::fmt;
use std::str::FromStr;

use burn::module::{ModuleMapper, Param};
use burn::tensor::{DType, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The precision a Trainer trains in (Lightning's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// `32-true`: everything in f32 (the default).
    #[default]
    F32,
    /// `16-mixed`: forward in f16 on f32 master weights, with dynamic loss scaling.
    F16Mixed,
    /// `bf16-mixed`: forward in bf16 on f32 master weights (bf16 has f32's range: no scaling).
    Bf16Mixed,
    /// `16-true`: the whole model in f16 (each optimizer update computed in f32, its state f32).
    F16True,
    /// `bf16-true`: the whole model in bf16 (each optimizer update computed in f32, its state f32).
    Bf16True,
}

/// Every name `Precision` parses, canonical first, with Lightning's short aliases.
const NAMES: [(&str, Precision); 8] = [
    ("32-true", Precision::F32),
    ("16-mixed", Precision::F16Mixed),
    ("bf16-mixed", Precision::Bf16Mixed),
    ("16-true", Precision::F16True),
    ("bf16-true", Precision::Bf16True),
    ("32", Precision::F32),
    ("16", Precision::F16Mixed),
    ("bf16", Precision::Bf16Mixed),
];

impl Precision {
    /// The dtype the forward pass computes in.
    pub fn compute_dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16Mixed | Precision::F16True => FloatDType::F16,
            Precision::Bf16Mixed | Precision::Bf16True => FloatDType::BF16,
        }
    }

    /// Whether the optimizer steps f32 master weights while the forward runs in a low dtype.
    pub fn is_mixed(self) -> bool {
        matches!(self, Precision::F16Mixed | Precision::Bf16Mixed)
    }

    /// Whether the model itself is in a low dtype (`16-true`, `bf16-true`).
    pub fn is_low_true(self) -> bool {
        matches!(self, Precision::F16True | Precision::Bf16True)
    }

    /// Refuses a precision whose compute dtype `device` cannot compute in (bf16 on a wgpu
    /// adapter, for instance), naming the device (`name`) and the precisions it can compute in.
    pub fn check_device(self, device: &burn::tensor::Device, name: &str) -> Result<()> {
        if self == Precision::F32 || device.supports_dtype(self.compute_dtype()) {
            return Ok(());
        }
        let usable: Vec<&str> =
            NAMES[..5].iter().filter(|(_, p)| *p == Precision::F32 || device.supports_dtype(p.compute_dtype())).map(|(name, _)| *name).collect();
        Err(Error::Config(format!("precision {self} computes in {:?}, which {name} does not support; use {}", self.compute_dtype(), usable.join(" or "))))
    }

    /// Lightning's name (`bf16-mixed`).
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, p)| *p == self).map_or("32-true", |(name, _)| name)
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        if let Some((_, p)) = NAMES.iter().find(|(name, _)| *name == wanted) {
            return Ok(*p);
        }
        let known: Vec<&str> = NAMES[..5].iter().map(|(name, _)| *name).collect();
        let hint = match wanted.as_str() {
            "64" | "64-true" | "double" => "; f64 training is not supported (Burn's optimizers and fulmen's kernels are f32)",
            "transformer-engine" | "16-mixed-fp8" => "; fp8 is not supported",
            _ => "",
        };
        Err(Error::Config(format!("precision `{s}` is not one of {}{hint}", known.join(", "))))
    }
}

/// A module mapper that casts every float parameter to `dtype`, except batch norm's (autocast
/// keeps batch norm in f32, and its running statistics are shared between a module and its
/// copies, so casting them in a copy would cast the original's).
pub struct CastParams {
    dtype: FloatDType,
    /// The cast parameters are new leaves (`*-true`, checkpoints) rather than autodiff ops on
    /// the originals (mixed precision, whose gradients must reach the f32 weights).
    leaves: bool,
    /// How deep inside a `BatchNorm` the mapper is.
    in_batch_norm: usize,
}

impl CastParams {
    /// Casts to `dtype` as a recorded op: backward brings the gradients to the originals.
    pub fn new(dtype: FloatDType) -> Self {
        CastParams { dtype, leaves: false, in_batch_norm: 0 }
    }

    /// Casts to `dtype` into new parameters of their own (trainable where the originals were).
    pub fn into_leaves(dtype: FloatDType) -> Self {
        CastParams { dtype, leaves: true, in_batch_norm: 0 }
    }
}

impl ModuleMapper for CastParams {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        if container_type == "Struct:BatchNorm" {
            self.in_batch_norm += 1;
        }
    }
    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if container_type == "Struct:BatchNorm" {
            self.in_batch_norm -= 1;
        }
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.in_batch_norm > 0 || param.val().dtype() == DType::from(self.dtype) {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let trainable = tensor.is_require_grad();
        let cast = cast(tensor, self.dtype.into());
        let cast = if !self.leaves {
            cast
        } else if trainable {
            cast.detach().require_grad()
        } else {
            cast.detach()
        };
        Param::from_mapped_value(id, cast, mapper)
    }
}

/// `model` with its parameters in `precision`'s compute dtype (batch norm's stay f32), as new
/// parameters: the `*-true` model trained, or any model evaluated; itself in `32-true`.
pub fn for_compute<M: burn::module::Module>(model: M, precision: Precision) -> M {
    match precision {
        Precision::F32 => model,
        p => model.map(&mut CastParams::into_leaves(p.compute_dtype())),
    }
}

/// `batch` as a step in `precision` takes it: its float inputs in the compute dtype.
pub fn cast_batch<B: crate::module::Batch>(batch: B, precision: Precision) -> B {
    match precision {
        Precision::F32 => batch,
        p => batch.cast_inputs(p.compute_dtype()),
    }
}

/// Runs the first step of a stage in a low precision so that a panic inside it (Burn's, when a
/// tensor made in f32 meets the low-dtype weights in a hand-written step) becomes an error
/// naming the precision and the fix; in `32-true`, or for later steps (`first` false), runs
/// `step` as it is.
pub(crate) fn guard_first_step<T>(precision: Precision, first: bool, stage: &str, step: impl FnOnce() -> Result<T>) -> Result<T> {
    if precision == Precision::F32 || !first {
        return step();
    }
    install_quiet_hook();
    QUIET.with(|quiet| quiet.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(step));
    QUIET.with(|quiet| quiet.set(false));
    result.unwrap_or_else(|payload| {
        let message = match (payload.downcast_ref::<String>(), payload.downcast_ref::<&str>()) {
            (Some(s), _) => s.clone(),
            (_, Some(s)) => s.to_string(),
            _ => "a panic without a message".to_string(),
        };
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        Err(Error::Module(format!(
            "the first {stage} step failed under precision {precision}: {message}. The parameters are {:?} there, and a tensor \
             in another dtype met them: one created in the step (`Tensor::zeros`, `from_floats`: cast it with \
             `fulmen::precision::cast(x, weight.dtype())`), or an input your batch type does not cast (implement \
             `Batch::cast_inputs`, or call the layers through `fulmen::nn::*_forward`, which cast their input)",
            precision.compute_dtype()
        )))
    })
}

thread_local! {
    /// Set while a guarded step runs on this thread: its panic becomes an error, not a message.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once per process, a panic hook that stays silent on a thread running a guarded
/// step and passes every other panic to the hook that was in place.
fn install_quiet_hook() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|quiet| quiet.get()) {
                previous(info);
            }
        }));
    });
}

/// `tensor` in `dtype` (itself when it already is).
pub fn cast<const D: usize>(tensor: Tensor<D>, dtype: DType) -> Tensor<D> {
    crate::kernels::cast(tensor, dtype)
}

/// The options of `16-mixed`'s dynamic loss scaler, with PyTorch `GradScaler`'s defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradScalerConfig {
    /// The first scale (default 2^16).
    pub init_scale: f64,
    /// The scale's factor after `growth_interval` steps in a row with finite gradients (default 2).
    pub growth_factor: f64,
    /// The scale's factor after a step with an inf or NaN gradient (default 0.5).
    pub backoff_factor: f64,
    /// Finite steps in a row before the scale grows (default 2,000).
    pub growth_interval: u32,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        GradScalerConfig { init_scale: 65536.0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000 }
    }
}

impl GradScalerConfig {
    /// Checks the options, naming the one that makes no sense.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(format!("grad_scaler: {what}")));
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return bad(&format!("init_scale {} must be a positive number", self.init_scale));
        }
        if !(self.growth_factor.is_finite() && self.growth_factor > 1.0) {
            return bad(&format!("growth_factor {} must be above 1", self.growth_factor));
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            return bad(&format!("backoff_factor {} must be between 0 and 1", self.backoff_factor));
        }
        if self.growth_interval == 0 {
            return bad("growth_interval must be at least 1");
        }
        Ok(())
    }
}

/// A dynamic loss scaler (PyTorch's `GradScaler`): the loss is multiplied by the scale before
/// backward so small f16 gradients do not flush to zero; the gradients are divided by it before
/// clipping and the step; a step whose gradients hold an inf or NaN is skipped and the scale
/// backs off; after `growth_interval` finite steps in a row it grows.
#[derive(Debug, Clone, PartialEq)]
pub struct GradScaler {
    config: GradScalerConfig,
    state: GradScalerState,
}

/// What a checkpoint keeps of a [`GradScaler`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradScalerState {
    /// The scale in force.
    pub scale: f64,
    /// Finite steps in a row since the scale last changed.
    pub growth_tracker: u32,
    /// Steps skipped for an inf or NaN gradient, over the whole run.
    pub skipped_steps: u64,
}

impl GradScaler {
    /// A scaler starting at `config.init_scale`.
    pub fn new(config: GradScalerConfig) -> Self {
        GradScaler { config, state: GradScalerState { scale: config.init_scale, growth_tracker: 0, skipped_steps: 0 } }
    }

    /// The scale in force.
    pub fn scale(&self) -> f64 {
        self.state.scale
    }

    /// Its state, for a checkpoint.
    pub fn state(&self) -> GradScalerState {
        self.state
    }

    /// Restores a checkpoint's state, refusing values no scaler reaches.
    pub fn load_state(&mut self, state: GradScalerState) -> Result<()> {
        if !(state.scale.is_finite() && state.scale > 0.0) {
            return Err(Error::Config(format!("the checkpoint's loss scale {} is not a positive number", state.scale)));
        }
        self.state = state;
        Ok(())
    }

    /// `loss` times the scale.
    pub fn scale_loss(&self, loss: Tensor<1>) -> Tensor<1> {
        loss.mul_scalar(self.state.scale)
    }

    /// The factor that unscales gradients.
    pub fn inverse(&self) -> f64 {
        1.0 / self.state.scale
    }

    /// After a step: `finite` says whether its gradients were all finite (else it was skipped).
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.state.growth_tracker += 1;
            if self.state.growth_tracker >= self.config.growth_interval {
                self.state.scale *= self.config.growth_factor;
                self.state.growth_tracker = 0;
            }
        } else {
            self.state.scale *= self.config.backoff_factor;
            self.state.growth_tracker = 0;
            self.state.skipped_steps += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::tensor::Device;

    use super::*;

    #[derive(Module, Debug)]
    struct Net {
        conv: Conv2d,
        bn: BatchNorm,
        fc: Linear,
    }

    #[test]
    fn names_parse_as_lightnings_and_others_are_errors_listing_them() {
        for (name, p) in NAMES {
            assert_eq!(name.parse::<Precision>().unwrap(), p);
        }
        assert_eq!("BF16-Mixed".parse::<Precision>().unwrap(), Precision::Bf16Mixed);
        assert_eq!(Precision::F16Mixed.to_string(), "16-mixed");
        let err = "64-true".parse::<Precision>().unwrap_err().to_string();
        assert!(err.contains("32-true, 16-mixed, bf16-mixed, 16-true, bf16-true") && err.contains("f64"), "{err}");
    }

    /// The mixed-precision step's mechanism on flex: the cast copy computes in the low dtype
    /// (batch norm stays f32), and backward brings f32 gradients to the f32 parameters.
    #[test]
    fn a_cast_copy_computes_low_and_its_gradients_come_back_in_f32() {
        for dtype in [FloatDType::BF16, FloatDType::F16] {
            let device = Device::flex().autodiff();
            let net = Net {
                conv: Conv2dConfig::new([3, 4], [3, 3]).init(&device),
                bn: BatchNormConfig::new(4).init(&device),
                fc: LinearConfig::new(4 * 8 * 8, 3).init(&device),
            };
            let low = net.clone().map(&mut CastParams::new(dtype));
            assert_eq!(low.conv.weight.val().dtype(), DType::from(dtype));
            assert_eq!(low.fc.weight.val().dtype(), DType::from(dtype));
            assert_eq!(low.bn.gamma.val().dtype(), DType::F32);
            assert_eq!(low.conv.weight.id, net.conv.weight.id);
            let x = Tensor::<4>::random([2, 3, 10, 10], burn::tensor::Distribution::Default, &device);
            let y = low.conv.forward(cast(x, dtype.into()));
            assert_eq!(y.dtype(), DType::from(dtype));
            let y = cast(low.bn.forward(cast(y, DType::F32)), dtype.into());
            let loss = low.fc.forward(y.flatten::<2>(1, 3)).cast(FloatDType::F32).powi_scalar(2).mean();
            let grads = loss.backward();
            for grad in [net.conv.weight.val().grad(&grads).unwrap(), net.fc.weight.val().grad(&grads).unwrap().unsqueeze()] {
                assert_eq!(grad.dtype(), DType::F32);
                assert!(grad.abs().sum().into_scalar::<f32>() > 0.0);
            }
            assert_eq!(net.bn.gamma.val().grad(&grads).unwrap().dtype(), DType::F32);
        }
    }

    #[test]
    fn flex_computes_in_every_precision() {
        for (_, precision) in NAMES {
            precision.check_device(&Device::flex(), "flex").unwrap();
        }
    }

    #[test]
    fn the_scaler_backs_off_on_overflow_and_grows_after_its_interval() {
        let mut scaler = GradScaler::new(GradScalerConfig { growth_interval: 3, ..Default::default() });
        assert_eq!(scaler.scale(), 65536.0);
        scaler.update(false);
        assert_eq!((scaler.scale(), scaler.state().skipped_steps), (32768.0, 1));
        scaler.update(true);
        scaler.update(true);
        assert_eq!(scaler.scale(), 32768.0);
        scaler.update(true);
        assert_eq!((scaler.scale(), scaler.state().growth_tracker), (65536.0, 0));
        scaler.update(true);
        scaler.update(false);
        assert_eq!(scaler.state(), GradScalerState { scale: 32768.0, growth_tracker: 0, skipped_steps: 2 });
        let err = GradScalerConfig { backoff_factor: 1.5, ..Default::default() }.check().unwrap_err().to_string();
        assert!(err.contains("backoff_factor 1.5"), "{err}");
        assert!(scaler.load_state(GradScalerState { scale: f64::NAN, growth_tracker: 0, skipped_steps: 0 }).is_err());
    }
}
