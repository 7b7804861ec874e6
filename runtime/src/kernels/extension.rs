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
use half::{bf16, f16};

use super::elementwise::{BF16_EXPONENT, F16_EXPONENT, half_kept, map_in_place, relu, relu_grad, zip_in_place};
use super::timing::{Op, measure};
use super::{cast, conv2d, max_pool};

/// fulmen's fast ops. Called through [`super::conv2d`] and [`super::max_pool2d`], which check
/// that the tensors live on flex first (any other backend would panic here).
#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// conv2d with a bias.
    fn fulmen_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;
    /// conv2d without a bias.
    fn fulmen_conv2d_no_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;
    /// ReLU (any rank), on the threads.
    fn fulmen_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// A cast between f32 and f16 or bf16 (any rank), on the threads.
    fn fulmen_cast(x: FloatTensor<Self>, dtype: DType) -> FloatTensor<Self>;
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
    let out = measure(Op::ConvForward, || conv2d::forward(&g, f32s(&x), f32s(&w), bias.as_ref().map(f32s)));
    flex_f32(out, vec![g.batch, g.out_channels, g.output[0], g.output[1]])
}

fn pool_forward(x: &FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> (FlexTensor, FlexTensor) {
    let (x, xs) = dense::<4>(x);
    let g = max_pool::Geometry::new(xs, kernel, stride, padding, dilation).unwrap_or_else(|e| panic!("{e}"));
    let (out, indices) = measure(Op::PoolForward, || max_pool::forward(&g, f32s(&x)));
    let shape = vec![xs[0], xs[1], g.output[0], g.output[1]];
    (flex_f32(out, shape.clone()), flex_i64(indices, shape))
}

/// `x` as a dense tensor this op may write: itself when it is dense and the only handle to its
/// storage, else a dense copy.
fn writable(x: FlexTensor) -> FlexTensor {
    let n = x.layout().shape().num_elements();
    if x.is_unique() && x.layout().contiguous_offsets() == Some((0, n)) && x.bytes().len() == n * x.dtype().size() {
        return x;
    }
    let x = x.to_contiguous();
    let (start, end) = x.layout().contiguous_offsets().expect("contiguous");
    let size = x.dtype().size();
    let bytes = Bytes::from_bytes_vec(x.bytes()[start * size..end * size].to_vec());
    FlexTensor::new(bytes, Layout::contiguous(x.layout().shape().clone()), x.dtype())
}

/// `x` in `dtype` (f32 ↔ f16 / bf16; checked by the caller).
fn cast_forward(x: &FlexTensor, dtype: DType) -> FlexTensor {
    let x = x.to_contiguous();
    let shape = x.layout().shape().clone();
    let bytes = match (x.dtype(), dtype) {
        (DType::F32, DType::F16) => Bytes::from_elems(cast::f32_to_f16(f32s(&x))),
        (DType::F32, DType::BF16) => Bytes::from_elems(cast::f32_to_bf16(f32s(&x))),
        (DType::F16, DType::F32) => Bytes::from_elems(cast::f16_to_f32(x.as_slice().expect("contiguous f16"))),
        (DType::BF16, DType::F32) => Bytes::from_elems(cast::bf16_to_f32(x.as_slice().expect("contiguous bf16"))),
        (from, to) => panic!("fulmen_cast: {from:?} to {to:?} is not a fast cast (checked before dispatch)"),
    };
    FlexTensor::new(bytes, Layout::contiguous(shape), dtype)
}

/// ReLU of an f32, f16 or bf16 tensor (the low ones on their bits, unconverted).
fn relu_forward(x: FlexTensor) -> FlexTensor {
    measure(Op::ReluForward, || {
        let mut out = writable(x);
        match out.dtype() {
            DType::F32 => map_in_place(out.storage_mut::<f32>(), relu),
            DType::F16 => map_in_place(out.storage_mut::<f16>(), |h| if half_kept(h.to_bits(), F16_EXPONENT) { h } else { f16::ZERO }),
            _ => map_in_place(out.storage_mut::<bf16>(), |h| if half_kept(h.to_bits(), BF16_EXPONENT) { h } else { bf16::ZERO }),
        }
        out
    })
}

/// The gradient `grad` kept where `output` is positive or NaN (both of one dtype).
fn relu_backward(output: &FlexTensor, grad: FlexTensor) -> FlexTensor {
    measure(Op::ReluBackward, || {
        let output = output.to_contiguous();
        let mut dx = writable(grad);
        match dx.dtype() {
            DType::F32 => zip_in_place(dx.storage_mut::<f32>(), f32s(&output), relu_grad),
            DType::F16 => {
                let keep = |g: f16, o: f16| if half_kept(o.to_bits(), F16_EXPONENT) { g } else { f16::ZERO };
                zip_in_place(dx.storage_mut::<f16>(), output.as_slice::<f16>().expect("contiguous f16"), keep);
            }
            _ => {
                let keep = |g: bf16, o: bf16| if half_kept(o.to_bits(), BF16_EXPONENT) { g } else { bf16::ZERO };
                zip_in_place(dx.storage_mut::<bf16>(), output.as_slice::<bf16>().expect("contiguous bf16"), keep);
            }
        }
        dx
    })
}

impl FastOps for Flex {
    fn fulmen_conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv_forward(&x, &weight, Some(&bias), &options)
    }
    fn fulmen_conv2d_no_bias(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv_forward(&x, &weight, None, &options)
    }
    fn fulmen_relu(x: FlexTensor) -> FlexTensor {
        relu_forward(x)
    }
    fn fulmen_cast(x: FlexTensor, dtype: DType) -> FlexTensor {
        cast_forward(&x, dtype)
    }
    fn fulmen_max_pool2d(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> FlexTensor {
        pool_forward(&x, kernel, stride, padding, dilation).0
    }
}

/// The cast backward: the gradient cast back to the input's dtype (state), as Burn's cast.
#[derive(Debug)]
struct CastBackward;

impl Backward<Flex, 1> for CastBackward {
    type State = DType;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        grads.register::<Flex>(node.id, cast_forward(&grad, ops.state));
    }
}

/// The ReLU backward: state = the output, whose sign masks the gradient.
#[derive(Debug)]
struct ReluBackward;

impl Backward<Flex, 1> for ReluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        let dx = relu_backward(&ops.state, grad);
        grads.register::<Flex>(node.id, dx);
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
        let (dx, dw, db) = measure(Op::ConvBackward, || conv2d::backward(&g, f32s(&x), f32s(&w), f32s(&grad), wanted));
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
        let dx = measure(Op::PoolBackward, || max_pool::backward(&g, f32s(&grad), indices.as_slice::<i64>().expect("i64 indices")));
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

    fn fulmen_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match ReluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = relu_forward(x.into_primitive());
                prep.finish(out.clone(), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(relu_forward(x.into_primitive())),
        }
    }

    fn fulmen_cast(x: FloatTensor<Self>, dtype: DType) -> FloatTensor<Self> {
        match CastBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let from = x.primitive().dtype();
                prep.finish(from, cast_forward(x.primitive(), dtype))
            }
            OpsKind::UnTracked(prep) => prep.finish(cast_forward(x.primitive(), dtype)),
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
