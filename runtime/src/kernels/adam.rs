//! Adam as one pass over memory: on flex, each parameter's update reads the weight, the gradient
//! and both moments once and writes them back in place, in chunks spread over the threads.
//! Burn's `Adam` composes the same update from about thirteen tensor ops, each a separate pass
//! on one thread that allocates its result (`../shared/notes/cpu-speed-facts.md`).
//!
//! The arithmetic is Burn's, operation for operation and in the same order, so the results are
//! bit-identical to `burn::optim::Adam` (a test checks it) and the state is Burn's `AdamState`:
//! checkpoints written with either load into the other. Tensors that are not f32 on flex
//! (other devices, `*-true` runs' widened copies are f32 and take this path) go to Burn's Adam.

use burn::backend::flex::FlexTensor;
use burn::backend::{BackendTensor, DType, DispatchTensor, DispatchTensorKind};
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use super::timing::{Op, measure};

/// Elements per parallel task: large enough that a task outweighs its scheduling.
const CHUNK: usize = 1 << 15;

/// Adam (no weight decay, no AMSGrad) with the fused flex update; see the module doc.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    fallback: Adam,
}

impl FusedAdam {
    /// Adam with these betas and epsilon.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        let fallback = AdamConfig::new().with_beta_1(beta_1).with_beta_2(beta_2).with_epsilon(epsilon).build();
        FusedAdam { beta_1, beta_2, epsilon, fallback }
    }
}

/// An f32 flex tensor's primitive when it is dense and owns exactly its elements (offset 0, no
/// spare storage), so its storage can be updated as the tensor; else the tensor back.
fn flex_f32<const D: usize>(tensor: Tensor<D>) -> Result<FlexTensor, Box<Tensor<D>>> {
    let dispatch = tensor.into_dispatch();
    match dispatch.kind {
        DispatchTensorKind::Flex(BackendTensor::Float(t)) if dense_f32(&t) => Ok(t),
        kind => Err(Box::new(Tensor::from_dispatch(DispatchTensor { kind, ..dispatch }))),
    }
}

/// The tensor back from [`flex_f32`]'s answer, whichever it was.
fn unflex<const D: usize>(t: Result<FlexTensor, Box<Tensor<D>>>) -> Tensor<D> {
    t.map_or_else(|t| *t, from_flex)
}

/// One parallel task's share of the weight, gradient and moments.
type Chunks<'a> = (((&'a mut [f32], &'a [f32]), &'a mut [f32]), &'a mut [f32]);

fn dense_f32(t: &FlexTensor) -> bool {
    let n = t.layout().shape().num_elements();
    t.dtype() == DType::F32 && t.layout().contiguous_offsets() == Some((0, n)) && t.bytes().len() == n * size_of::<f32>()
}

fn from_flex<const D: usize>(t: FlexTensor) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor { kind: DispatchTensorKind::Flex(BackendTensor::Float(t)), autodiff: Default::default() })
}

/// The per-step constants of Burn's update, computed as Burn computes them (in f32).
#[derive(Debug, Clone, Copy)]
struct Step {
    beta_1: f32,
    beta_2: f32,
    /// `1 − β₁`, `1 − β₂`.
    keep_1: f32,
    keep_2: f32,
    /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
    factor: f32,
    /// `ε · √(1 − β₂ᵗ)`.
    epsilon: f32,
    lr: f32,
}

impl Step {
    fn new(adam: &FusedAdam, time: usize, lr: LearningRate) -> Self {
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - adam.beta_2.powi(t)).sqrt();
        Step {
            beta_1: adam.beta_1,
            beta_2: adam.beta_2,
            keep_1: 1.0 - adam.beta_1,
            keep_2: 1.0 - adam.beta_2,
            factor: bias_correction2_sqrt / (1.0 - adam.beta_1.powi(t)),
            epsilon: adam.epsilon * bias_correction2_sqrt,
            lr: lr as f32,
        }
    }

    /// One element: the moments (`first` when there were none) and the new weight.
    #[inline(always)]
    fn apply(&self, w: &mut f32, g: f32, m: &mut f32, v: &mut f32, first: bool) {
        if first {
            *m = g * self.keep_1;
            *v = (g * g) * self.keep_2;
        } else {
            *m = *m * self.beta_1 + g * self.keep_1;
            *v = *v * self.beta_2 + (g * g) * self.keep_2;
        }
        let update = (*m * self.factor) / (v.sqrt() + self.epsilon);
        *w -= update * self.lr;
    }

    /// The update over whole slices, in parallel chunks.
    fn run(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], first: bool) {
        let task = |(((w, g), m), v): Chunks<'_>| {
            for (((w, g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                self.apply(w, *g, m, v, first);
            }
        };
        if w.len() <= CHUNK {
            task((((w, g), m), v));
        } else {
            w.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK)).for_each(task);
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(&self, lr: LearningRate, tensor: Tensor<D>, grad: Tensor<D>, state: Option<Self::State<D>>) -> (Tensor<D>, Option<Self::State<D>>) {
        let shape = tensor.shape();
        let fallback = |tensor: Tensor<D>, grad: Tensor<D>, state| self.fallback.step(lr, tensor, grad, state);
        if grad.shape() != shape || grad.dtype() != DType::F32 {
            return fallback(tensor, grad, state);
        }
        let (mut w, g) = match (flex_f32(tensor), flex_f32(grad)) {
            (Ok(w), Ok(g)) => (w, g),
            (w, g) => return fallback(unflex(w), unflex(g), state),
        };
        let (time, moments) = match state {
            Some(AdamState { momentum: AdaptiveMomentumState { time, moment_1, moment_2, max_moment_2: None } }) => {
                match (flex_f32(moment_1), flex_f32(moment_2)) {
                    (Ok(m), Ok(v)) if m.layout().shape() == w.layout().shape() && v.layout().shape() == w.layout().shape() => (time, Some((m, v))),
                    (m, v) => {
                        let momentum = AdaptiveMomentumState::new(time, unflex(m), unflex(v));
                        return fallback(from_flex(w), from_flex(g), Some(AdamState::new(momentum)));
                    }
                }
            }
            Some(other) => return fallback(from_flex(w), from_flex(g), Some(other)),
            None => (0, None),
        };
        let first = moments.is_none();
        let zeros = || FlexTensor::zeros(w.layout().shape().clone(), DType::F32);
        let (mut m, mut v) = moments.unwrap_or_else(|| (zeros(), zeros()));
        let step = Step::new(self, time + 1, lr);
        // `storage_mut` writes in place when the tensor is the only handle to its storage, and
        // copies it first otherwise (a weight a caller still holds is never changed under it).
        measure(Op::OptimizerUpdate, || {
            step.run(w.storage_mut::<f32>(), g.as_slice::<f32>().expect("checked"), m.storage_mut::<f32>(), v.storage_mut::<f32>(), first)
        });
        let momentum = AdaptiveMomentumState::new(time + 1, from_flex(m), from_flex(v));
        (from_flex(w), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    fn bits<const D: usize>(t: &Tensor<D>) -> Vec<u32> {
        t.to_data().try_to_vec::<f32>().expect("f32").iter().map(|v| v.to_bits()).collect()
    }

    /// Five steps on a tensor large enough for parallel chunks and a small one: weights and
    /// moments equal Burn's Adam to the bit, and the state round-trips between the two.
    #[test]
    fn the_fused_update_is_burns_adam_to_the_bit() {
        let device = Device::flex();
        let (fused, burn) = (FusedAdam::new(0.9, 0.999, 1e-8), AdamConfig::new().with_epsilon(1e-8).build());
        for len in [CHUNK * 3 + 17, 5] {
            let start = Tensor::<1>::random([len], Distribution::Normal(0.0, 1.0), &device);
            let (mut a, mut b) = (start.clone(), start);
            let (mut sa, mut sb) = (None, None);
            for step in 0..5 {
                let grad = Tensor::<1>::random([len], Distribution::Normal(0.0, 0.1 + step as f64), &device);
                let lr = 1e-3 * (step + 1) as f64;
                (a, sa) = fused.step(lr, a, grad.clone(), sa);
                (b, sb) = burn.step(lr, b, grad, sb);
                assert_eq!(bits(&a), bits(&b), "weights after step {step}, {len} elements");
            }
            let (ma, mb) = (sa.expect("state").momentum, sb.expect("state").momentum);
            assert_eq!((ma.time, bits(&ma.moment_1), bits(&ma.moment_2)), (mb.time, bits(&mb.moment_1), bits(&mb.moment_2)));
        }
    }

    /// A weight still shared elsewhere (a clone held by the caller) is not written in place.
    #[test]
    fn a_shared_weight_is_copied_not_overwritten() {
        let device = Device::flex();
        let w = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), &device);
        let kept = w.clone();
        let grad = Tensor::<2>::ones([2, 2], &device);
        let (moved, _) = FusedAdam::new(0.9, 0.999, 1e-8).step(0.5, w, grad, None);
        assert_eq!(kept.to_data().try_to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert!(moved.to_data().try_to_vec::<f32>().unwrap().iter().all(|v| *v < 4.0));
    }
}
