//! The kernels as a Burn backend extension: ops on flex tensors, with hand-written backward
//! passes for flex under autodiff. Burn's macro routes a dispatch tensor to the `Flex` impl or,
//! when it tracks gradients, to the `Autodiff<Flex, C>` impl.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Bytes, DType, Flex, Shape, TensorMetadata, backend_extension};

use super::{conv2d, max_pool};

/// fulmen's fast ops. Called through [`super::conv2d`] and [`super::max_pool2d`], which check
/// that the tensors live on flex first (any other backend would panic here).
#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// conv2d with a bias.
    fn fulmen_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;
    /// conv2d without a bias.
    fn fulmen_conv2d_no_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;
    /// 2-D max pooling: kernel, stride, padding, dilation.
    fn fulmen_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> FloatTensor<Self>;
}

/// A contiguous copy (or the tensor itself when it is dense) and its shape.
fn dense<const D: usize>(t: &FlexTensor) -> (FlexTensor, [usize; D]) {
    let t = t.to_contiguous();
    let dims = t.shape().dims::<D>();
    (t, dims)
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("fulmen kernels run on contiguous f32 flex tensors (checked before dispatch)")
}

fn flex_f32(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(shape)), DType::F32)
}

fn flex_i64(values: Vec<i64>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(shape)), DType::I64)
}

fn conv_geometry(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> conv2d::Geometry {
    conv2d::Geometry::new(x, w, options.stride, options.padding, options.dilation, options.groups).unwrap_or_else(|e| panic!("{e}"))
}

fn conv_forward(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    let ((x, xs), (w, ws)) = (dense::<4>(x), dense::<4>(weight));
    let bias = bias.map(|b| b.to_contiguous());
    let g = conv_geometry(xs, ws, options);
    let out = conv2d::forward(&g, f32s(&x), f32s(&w), bias.as_ref().map(f32s));
    flex_f32(out, vec![g.batch, g.out_channels, g.output[0], g.output[1]])
}

fn pool_forward(x: &FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> (FlexTensor, FlexTensor) {
    let (x, xs) = dense::<4>(x);
    let g = max_pool::Geometry::new(xs, kernel, stride, padding, dilation).unwrap_or_else(|e| panic!("{e}"));
    let (out, indices) = max_pool::forward(&g, f32s(&x));
    let shape = vec![xs[0], xs[1], g.output[0], g.output[1]];
    (flex_f32(out, shape.clone()), flex_i64(indices, shape))
}

impl FastOps for Flex {
    fn fulmen_conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv_forward(&x, &weight, Some(&bias), &options)
    }
    fn fulmen_conv2d_no_bias(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv_forward(&x, &weight, None, &options)
    }
    fn fulmen_max_pool2d(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> FlexTensor {
        pool_forward(&x, kernel, stride, padding, dilation).0
    }
}

/// The conv2d backward: state = (checkpointed input, weight, options).
#[derive(Debug)]
struct Conv2dBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for Conv2dBackward<N> {
    type State = (NodeId, FlexTensor, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_id, weight, options) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_id);
        let ((x, xs), (w, ws), (grad, _)) = (dense::<4>(&x), dense::<4>(&weight), dense::<4>(&grad));
        let g = conv_geometry(xs, ws, &options);
        let parents = &ops.parents;
        let wanted = conv2d::Wanted { x: parents[0].is_some(), weight: parents[1].is_some(), bias: N == 3 && parents[N - 1].is_some() };
        let (dx, dw, db) = conv2d::backward(&g, f32s(&x), f32s(&w), f32s(&grad), wanted);
        if let (Some(node), Some(dx)) = (&parents[0], dx) {
            grads.register::<Flex>(node.id, flex_f32(dx, xs.to_vec()));
        }
        if let (Some(node), Some(dw)) = (&parents[1], dw) {
            grads.register::<Flex>(node.id, flex_f32(dw, ws.to_vec()));
        }
        if N == 3
            && let (Some(node), Some(db)) = (&parents[N - 1], db)
        {
            grads.register::<Flex>(node.id, flex_f32(db, vec![ws[0]]));
        }
    }
}

/// The max-pool backward: state = (the geometry, the argmax indices).
#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = (max_pool::Geometry, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        let (g, indices) = ops.state;
        let (grad, [n, c, _, _]) = dense::<4>(&grad);
        let indices = indices.to_contiguous();
        let dx = max_pool::backward(&g, f32s(&grad), indices.as_slice::<i64>().expect("i64 indices"));
        grads.register::<Flex>(node.id, flex_f32(dx, vec![n, c, g.input[0], g.input[1]]));
    }
}

impl<C: CheckpointStrategy> FastOps for Autodiff<Flex, C> {
    fn fulmen_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        match Conv2dBackward::<3>.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_id = prep.checkpoint(&x);
                let kept = weight.primitive().clone();
                let out = conv_forward(x.primitive(), weight.primitive(), Some(bias.primitive()), &options);
                prep.finish((x_id, kept, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(conv_forward(x.primitive(), weight.primitive(), Some(bias.primitive()), &options)),
        }
    }

    fn fulmen_conv2d_no_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        match Conv2dBackward::<2>.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_id = prep.checkpoint(&x);
                let kept = weight.primitive().clone();
                let out = conv_forward(x.primitive(), weight.primitive(), None, &options);
                prep.finish((x_id, kept, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(conv_forward(x.primitive(), weight.primitive(), None, &options)),
        }
    }

    fn fulmen_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> FloatTensor<Self> {
        match MaxPoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let dims = x.primitive().shape().dims::<4>();
                let g = max_pool::Geometry::new(dims, kernel, stride, padding, dilation).unwrap_or_else(|e| panic!("{e}"));
                let (out, indices) = pool_forward(x.primitive(), kernel, stride, padding, dilation);
                prep.finish((g, indices), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool_forward(x.primitive(), kernel, stride, padding, dilation).0),
        }
    }
}
