//! A step's gradients in one flat f32 vector on the device, as PyTorch DDP's reducer packs them
//! into a bucket: the parameters in the model's order (the same on every replica), so one
//! all-reduce — MPI's through the host or NCCL's on the device — averages them all.
//!
//! Which parameters have a gradient can differ between replicas (a branch one batch did not
//! take), so the replicas first agree on it ([`presence`], summed across the ranks); the bucket
//! then holds every parameter some replica has a gradient for, zeros where this one has none.

use std::collections::HashSet;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor};

/// For each parameter of `ids` (every parameter when `None`), in the model's order: 1 when
/// `grads` holds its gradient, else 0.
pub fn presence<M: Module>(model: &M, grads: &GradientsParams, ids: Option<&HashSet<ParamId>>) -> Vec<f32> {
    let mut visitor = Presence { ids, grads, flags: Vec::new() };
    model.visit(&mut visitor);
    visitor.flags
}

/// The bucket: the gradients of the parameters `present` marks (in [`presence`]'s order),
/// flattened, in f32, zeros for those this replica has none of. `None` when none is marked.
pub fn pack<M: Module>(model: &M, grads: &GradientsParams, ids: Option<&HashSet<ParamId>>, present: &[bool]) -> Option<Tensor<1>> {
    let mut visitor = Pack { marks: Marks { ids, present, index: 0 }, grads, parts: Vec::new() };
    model.visit(&mut visitor);
    (!visitor.parts.is_empty()).then(|| Tensor::cat(visitor.parts, 0))
}

/// Writes a bucket laid out by [`pack`] (and summed across the replicas) back into `grads`:
/// each marked parameter gets its slice times `scale`, in the dtype of its gradient (of the
/// parameter where this replica had none).
pub fn unpack<M: Module>(model: &M, grads: &mut GradientsParams, bucket: Tensor<1>, ids: Option<&HashSet<ParamId>>, present: &[bool], scale: f32) {
    model.visit(&mut Unpack { marks: Marks { ids, present, index: 0 }, grads, bucket, offset: 0, scale });
}

struct Presence<'a> {
    ids: Option<&'a HashSet<ParamId>>,
    grads: &'a GradientsParams,
    flags: Vec<f32>,
}

impl ModuleVisitor for Presence<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.ids.is_none_or(|ids| ids.contains(&param.id)) {
            self.flags.push(if self.grads.get::<D>(param.id).is_some() { 1.0 } else { 0.0 });
        }
    }
}

/// Walks [`presence`]'s order: which of the visited parameters are in the bucket.
struct Marks<'a> {
    ids: Option<&'a HashSet<ParamId>>,
    present: &'a [bool],
    /// The next parameter's position in `present`.
    index: usize,
}

impl Marks<'_> {
    /// Whether the parameter `id`, visited next, is in the bucket.
    fn next(&mut self, id: &ParamId) -> bool {
        if self.ids.is_some_and(|ids| !ids.contains(id)) {
            return false;
        }
        self.index += 1;
        self.present.get(self.index - 1).copied().unwrap_or(false)
    }
}

struct Pack<'a> {
    marks: Marks<'a>,
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for Pack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.marks.next(&param.id) {
            return;
        }
        let size = param.shape().num_elements();
        let part = match self.grads.get::<D>(param.id) {
            Some(grad) => {
                let grad = if grad.dtype() == DType::F32 { grad } else { grad.cast(DType::F32) };
                grad.reshape([size])
            }
            None => Tensor::zeros([size], &param.val().device()),
        };
        self.parts.push(part);
    }
}

struct Unpack<'a> {
    marks: Marks<'a>,
    grads: &'a mut GradientsParams,
    bucket: Tensor<1>,
    /// Where the next marked parameter's values start in `bucket`.
    offset: usize,
    scale: f32,
}

impl ModuleVisitor for Unpack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.marks.next(&param.id) {
            return;
        }
        let shape = param.shape();
        let end = self.offset + shape.num_elements();
        let values = self.bucket.clone().slice(self.offset..end);
        self.offset = end;
        let dtype = self.grads.get::<D>(param.id).map_or_else(|| param.val().dtype(), |g| g.dtype());
        let grad: Tensor<D> = values.mul_scalar(self.scale).reshape(shape);
        let grad = if dtype == DType::F32 { grad } else { grad.cast(dtype) };
        self.grads.register::<D>(param.id, grad);
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::{Initializer, Linear, LinearConfig};
    use burn::tensor::Device;

    use super::*;

    fn layer() -> Linear {
        LinearConfig::new(3, 2).with_initializer(Initializer::Zeros).init(&Device::flex())
    }

    fn values<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<D>>) -> Option<Vec<f32>> {
        grads.get::<D>(param.id).map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32"))
    }

    #[test]
    fn a_bucket_holds_the_gradients_in_order_and_unpacks_them_scaled() {
        let model = layer();
        let device = Device::flex();
        let bias = model.bias.as_ref().expect("bias");
        let mut grads = GradientsParams::new();
        grads.register::<2>(model.weight.id, Tensor::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device));
        grads.register::<1>(bias.id, Tensor::from_floats([7.0, 8.0], &device).cast(DType::F16));
        assert_eq!(presence(&model, &grads, None), [1.0, 1.0]);
        let bucket = pack(&model, &grads, None, &[true, true]).expect("two gradients");
        assert_eq!(bucket.clone().into_data().try_to_vec::<f32>().expect("f32"), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        // The bucket of two replicas summed, averaged back.
        unpack(&model, &mut grads, bucket.clone().add(bucket), None, &[true, true], 0.5);
        assert_eq!(values(&grads, &model.weight), Some(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        assert_eq!(values(&grads, bias), Some(vec![7.0, 8.0]));
        assert_eq!(grads.get::<1>(bias.id).expect("bias").dtype(), DType::F16, "a gradient keeps its dtype");
    }

    #[test]
    fn a_gradient_only_another_replica_has_is_zeros_here_and_one_none_has_stays_absent() {
        let model = layer();
        let device = Device::flex();
        let bias = model.bias.as_ref().expect("bias");
        let mut grads = GradientsParams::new();
        grads.register::<1>(bias.id, Tensor::from_floats([1.0, -1.0], &device));
        assert_eq!(presence(&model, &grads, None), [0.0, 1.0]);
        // Another replica had the weight's gradient: this one packs zeros in its place.
        let bucket = pack(&model, &grads, None, &[true, true]).expect("marked");
        assert_eq!(bucket.dims(), [8]);
        let other = Tensor::from_floats([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0], &device);
        unpack(&model, &mut grads, bucket.add(other), None, &[true, true], 0.5);
        assert_eq!(values(&grads, &model.weight), Some(vec![1.0; 6]));
        assert_eq!(values(&grads, bias), Some(vec![2.0, 1.0]));
        // No replica has a gradient for the weight: it stays without one.
        let mut grads = GradientsParams::new();
        grads.register::<1>(bias.id, Tensor::from_floats([1.0, -1.0], &device));
        let bucket = pack(&model, &grads, None, &[false, true]).expect("the bias");
        assert_eq!(bucket.dims(), [2]);
        unpack(&model, &mut grads, bucket, None, &[false, true], 1.0);
        assert_eq!(values(&grads, &model.weight), None);
        assert!(pack(&model, &grads, None, &[false, false]).is_none());
    }

    #[test]
    fn only_the_parameters_of_one_optimizer_are_packed() {
        let model = layer();
        let device = Device::flex();
        let bias = model.bias.as_ref().expect("bias");
        let mut grads = GradientsParams::new();
        grads.register::<2>(model.weight.id, Tensor::ones([3, 2], &device));
        grads.register::<1>(bias.id, Tensor::from_floats([4.0, 4.0], &device));
        let ids = HashSet::from([bias.id]);
        assert_eq!(presence(&model, &grads, Some(&ids)), [1.0]);
        let bucket = pack(&model, &grads, Some(&ids), &[true]).expect("the bias");
        unpack(&model, &mut grads, bucket, Some(&ids), &[true], 0.25);
        assert_eq!(values(&grads, bias), Some(vec![1.0, 1.0]));
        assert_eq!(values(&grads, &model.weight), Some(vec![1.0; 6]), "another optimizer's gradient is left alone");
    }
}
