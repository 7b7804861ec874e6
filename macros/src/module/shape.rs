//! The compile-time walk of a literal `input_shape` through the chain, with `fulmen-rules`'
//! arithmetic (the one the generated `new()` applies at run time): an impossible layer is a
//! compile error naming the layer, pointing at the argument to change. The walk stops quietly at
//! the first size that is a hyperparameter field (known only at run time, where `new()` checks
//! the rest), and at a 2-d op after the shape is flat (the chain check reports that).

use fulmen_rules::shape::{Blame, Layout, Padding, Shape, ShapeError, Window};
use syn::spanned::Spanned;

use super::LayerField;
use super::layers::{Op, Pad, Size, WindowSpec};

/// A literal size, or `None` for a field (or `auto`, which the rules resolve).
fn lit(size: &Size) -> Option<usize> {
    match size {
        Size::Lit(l) => l.base10_parse().ok(),
        _ => None,
    }
}

/// The window, when every part of it is a literal.
fn window(w: &WindowSpec) -> Option<Window> {
    let padding = match &w.padding {
        Pad::Valid => Padding::Valid,
        Pad::Same => Padding::Same,
        Pad::Explicit(p) => Padding::Explicit(lit(p)?),
    };
    Some(Window { kernel: lit(&w.kernel)?, stride: lit(&w.stride)?, padding, dilation: lit(&w.dilation)? })
}

/// Parses an input shape of integer literals (`[C, H, W]`, `[C, L]`, `[L]`) in `layout`.
fn literal_shape(expr: &syn::Expr, layout: Layout) -> Option<Shape> {
    let syn::Expr::Array(array) = expr else { return None };
    let values: Vec<usize> = array
        .elems
        .iter()
        .map(|e| match e {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse().ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    Shape::new(layout, &values)
}

/// The argument of `op` an error blames, for its span.
fn blamed(op: &Op, blame: Blame) -> Option<proc_macro2::Span> {
    let window = match op {
        Op::Conv2d { window, .. }
        | Op::Conv1d { window, .. }
        | Op::ConvTranspose2d { window, .. }
        | Op::MaxPool(window)
        | Op::AvgPool(window)
        | Op::MaxPool1d(window) => Some(window),
        _ => None,
    };
    match (blame, op) {
        (Blame::Input, Op::Conv2d { input, .. } | Op::Conv1d { input, .. } | Op::ConvTranspose2d { input, .. } | Op::Linear { input, .. }) => {
            Some(input.span())
        }
        (Blame::Kernel, _) => window.map(|w| w.kernel.span()),
        (Blame::Stride, _) => window.map(|w| w.stride.span()),
        (Blame::Padding, _) => window.and_then(|w| match &w.padding {
            Pad::Explicit(p) => Some(p.span()),
            _ => None,
        }),
        (Blame::OutputPadding, Op::ConvTranspose2d { output_padding, .. }) => Some(output_padding.span()),
        _ => None,
    }
}

/// Walks the chain from a literal input shape in the `input` layout, collecting an error per
/// impossible layer.
pub fn check(layers: &[LayerField], input_shape: Option<&syn::Expr>, input: Layout) -> darling::Result<()> {
    let mut errors = darling::Error::accumulator();
    let Some(mut shape) = input_shape.and_then(|s| literal_shape(s, input)) else { return errors.finish() };
    let mut at_input: Vec<(&syn::Ident, Shape)> = Vec::new();
    let mut refuse = |layer: &LayerField, op: &Op, e: ShapeError| {
        let error = darling::Error::custom(format!("`{}`: {e}", layer.ident));
        errors.push(match blamed(op, e.blames()) {
            Some(span) => error.with_span(&span),
            None => error.with_span(&layer.ident),
        });
    };
    'chain: for layer in layers {
        at_input.push((&layer.ident, shape));
        for (op, descriptor) in layer.ops.iter().zip(&layer.descriptors) {
            // A layout an op does not take is the layout walk's error.
            if shape.layout().feeds(descriptor.name, descriptor.takes).is_err() {
                break 'chain;
            }
            let next = match op {
                Op::Conv2d { input, output, window: w, .. } | Op::Conv1d { input, output, window: w, .. } => {
                    let conv1d = matches!(op, Op::Conv1d { .. });
                    // Reported, and the walk goes on with the channels the layer declares out.
                    if let Err(e) = shape.input_channels(if conv1d { "conv1d" } else { "conv2d" }, lit(input)) {
                        refuse(layer, op, e);
                    }
                    let (Some(out), Some(w)) = (lit(output), window(w)) else { break 'chain };
                    if conv1d { shape.conv1d(None, out, w) } else { shape.conv2d(None, out, w) }
                }
                Op::ConvTranspose2d { input, output, window: w, output_padding, .. } => {
                    if let Err(e) = shape.input_channels("conv_transpose2d", lit(input)) {
                        refuse(layer, op, e);
                    }
                    let (Some(out), Some(w), Some(extra)) = (lit(output), window(w), lit(output_padding)) else { break 'chain };
                    shape.conv_transpose2d(None, out, w, extra)
                }
                Op::Embedding { vocab, dim } => {
                    let (Some(vocab), Some(dim)) = (lit(vocab), lit(dim)) else { break 'chain };
                    shape.embedding(vocab, dim)
                }
                Op::MaxPool1d(w) => {
                    let Some(w) = window(w) else { break 'chain };
                    shape.pool1d(w)
                }
                Op::LayerNorm => shape.layer_norm().map(|_| shape),
                Op::GroupNorm(groups) => {
                    let Some(groups) = lit(groups) else { break 'chain };
                    shape.group_norm(groups).map(|_| shape)
                }
                Op::Residual(from) => match at_input.iter().find(|(f, _)| *f == from) {
                    Some((_, skipped)) => shape.residual(&from.to_string(), *skipped),
                    None => break 'chain,
                },
                Op::Upsample(scale) => {
                    let Some(scale) = lit(scale) else { break 'chain };
                    shape.upsample(scale)
                }
                Op::MaxPool(w) | Op::AvgPool(w) => {
                    let Some(w) = window(w) else { break 'chain };
                    shape.pool(w)
                }
                Op::AdaptiveAvgPool(h, w) => {
                    let (Some(h), Some(w)) = (lit(h), lit(w)) else { break 'chain };
                    shape.adaptive_pool([h, w])
                }
                Op::Flatten => Ok(shape.flatten()),
                Op::Linear { input, output, .. } => {
                    if let Err(e) = shape.features(lit(input), &quote::ToTokens::to_token_stream(output).to_string()) {
                        refuse(layer, op, e);
                    }
                    let Some(out) = lit(output) else { break 'chain };
                    Ok(Shape::Flat(out))
                }
                _ => Ok(shape),
            };
            match next {
                Ok(next) => shape = next,
                Err(e) => {
                    refuse(layer, op, e);
                    break 'chain;
                }
            }
        }
    }
    errors.finish()
}

/// Every shape rule, fed the same chains through this compile-time walk and through the
/// run-time path (`fulmen::shape::ShapeTracker`, driven as the generated `new()` drives it):
/// both accept the same chains and refuse the same ones with the same reason.
#[cfg(test)]
mod tests {
    use fulmen::shape::ShapeTracker;

    use super::super::{LayerField, analyze};
    use super::*;

    /// A model with one field per layer chain, its input shape given by `input_shape`.
    fn model(input_shape: &str, chains: &[&str]) -> syn::DeriveInput {
        let fields: String = chains
            .iter()
            .enumerate()
            .map(|(i, chain)| {
                let first = chain.split(['(', ',']).next().unwrap_or_default();
                let ty = super::super::ops::find(first).and_then(|op| op.builds).unwrap_or("Linear");
                format!("#[layer({chain})] l{i}: {ty},")
            })
            .collect();
        syn::parse_str(&format!("#[lightning(hparams = Cfg, input_shape = {input_shape})] struct M {{ {fields} #[module(skip)] hparams: Cfg }}")).unwrap()
    }

    /// The compile-time answer: the reasons of the errors, without the layer name.
    fn at_compile_time(shape: &[usize], chains: &[&str]) -> Vec<String> {
        match analyze(&model(&format!("{shape:?}"), chains)) {
            Ok(_) => Vec::new(),
            Err(e) => e.flatten().into_iter().map(|e| e.to_string().split_once(": ").map(|(_, r)| r.to_string()).unwrap_or_default()).collect(),
        }
    }

    /// The run-time answer: the chain parsed with its input shape left to run time, then the
    /// tracker driven through its ops as `new()` does.
    fn at_run_time(shape: &[usize], chains: &[&str]) -> Vec<String> {
        let parsed = analyze(&model("input_shape", chains)).expect("no compile-time shape check without a literal shape");
        // The layout of a literal shape of this length, as the derive reads it.
        let layout = fulmen_rules::shape::Layout::of_input(shape.len(), parsed.input == fulmen_rules::shape::Layout::Tokens).unwrap();
        let mut tracker = ShapeTracker::input(layout, shape).unwrap();
        run(&mut tracker, &parsed.layers).err().map(|e| e.to_string().split_once(": ").map(|(_, r)| r.to_string()).unwrap_or_default()).into_iter().collect()
    }

    fn run(tracker: &mut ShapeTracker, layers: &[LayerField]) -> fulmen::Result<()> {
        let mut at_input = Vec::new();
        for layer in layers {
            let name = layer.ident.to_string();
            at_input.push((name.clone(), tracker.shape()));
            for op in &layer.ops {
                match op {
                    Op::Conv1d { input, output, window: w, .. } => {
                        let input = lit(input).unwrap_or_else(|| tracker.channels());
                        tracker.apply(&name, |s| s.conv1d(Some(input), lit(output).unwrap(), window(w).unwrap()))?;
                    }
                    Op::Embedding { vocab, dim } => tracker.apply(&name, |s| s.embedding(lit(vocab).unwrap(), lit(dim).unwrap()))?,
                    Op::MaxPool1d(w) => tracker.apply(&name, |s| s.pool1d(window(w).unwrap()))?,
                    Op::LayerNorm => tracker.apply(&name, |s| s.layer_norm().map(|_| s))?,
                    Op::GroupNorm(g) => tracker.apply(&name, |s| s.group_norm(lit(g).unwrap()).map(|_| s))?,
                    Op::Residual(from) => {
                        let skipped = at_input.iter().find(|(f, _)| from == f).map(|(_, s)| *s).unwrap();
                        tracker.apply(&name, |s| s.residual(&from.to_string(), skipped))?;
                    }
                    Op::Conv2d { input, output, window: w, .. } => {
                        let input = lit(input).unwrap_or_else(|| tracker.channels());
                        tracker.apply(&name, |s| s.conv2d(Some(input), lit(output).unwrap(), window(w).unwrap()))?;
                    }
                    Op::ConvTranspose2d { input, output, window: w, output_padding, .. } => {
                        let input = lit(input).unwrap_or_else(|| tracker.channels());
                        tracker.apply(&name, |s| s.conv_transpose2d(Some(input), lit(output).unwrap(), window(w).unwrap(), lit(output_padding).unwrap()))?;
                    }
                    Op::Upsample(scale) => tracker.apply(&name, |s| s.upsample(lit(scale).unwrap()))?,
                    Op::MaxPool(w) | Op::AvgPool(w) => tracker.apply(&name, |s| s.pool(window(w).unwrap()))?,
                    Op::AdaptiveAvgPool(h, w) => tracker.apply(&name, |s| s.adaptive_pool([lit(h).unwrap(), lit(w).unwrap()]))?,
                    Op::Flatten => tracker.apply(&name, |s| Ok(s.flatten()))?,
                    Op::Linear { input, output, .. } => {
                        tracker.linear(&name, lit(input), lit(output).unwrap())?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    #[test]
    fn compile_time_and_run_time_give_the_same_answers() {
        let cases: &[(&[usize], &[&str], Option<&str>)] = &[
            // The tutorial CNN.
            (
                &[3, 32, 32],
                &[
                    "conv2d(3 -> 32, kernel = 3), relu",
                    "conv2d(32 -> 32, kernel = 3), relu, max_pool(2)",
                    "conv2d(32 -> 64, kernel = 3), relu",
                    "conv2d(64 -> 64, kernel = 3), relu, max_pool(2)",
                    "linear(1600 -> 512), relu",
                ],
                None,
            ),
            (&[3, 4, 4], &["conv2d(3 -> 8, kernel = 5)"], Some("conv2d kernel 5 does not fit the 4x4 feature map")),
            (&[3, 9, 9], &["conv2d(3 -> 8, kernel = 3, dilation = 5)"], Some("conv2d kernel 3 (dilation 5) does not fit the 9x9")),
            (&[1, 8, 8], &["conv2d(3 -> 8, kernel = 3)"], Some("declares 3 input channels but receives 1")),
            (&[3, 7, 9], &["conv2d(3 -> 8, kernel = 5, padding = same)", "linear(504 -> 2)"], None),
            (&[3, 8, 8], &["conv2d(3 -> 8, kernel = 3, padding = same, stride = 2)"], Some("padding = same keeps the size only with stride 1")),
            (&[3, 8, 8], &["conv2d(3 -> 8, kernel = 3, padding = 1, stride = 2)", "linear(128 -> 2)"], None),
            (&[3, 5, 5], &["conv2d(3 -> 8, kernel = 3), max_pool(2)", "linear(auto -> 2)"], None),
            (&[3, 6, 6], &["conv2d(3 -> 8, kernel = 3), max_pool(2), max_pool(2), max_pool(2)"], Some("pooling kernel 2 does not fit the 1x1 feature map")),
            (&[3, 6, 6], &["conv2d(3 -> 8, kernel = 3), avg_pool(3, stride = 1, padding = 1)", "linear(128 -> 2)"], None),
            (&[3, 6, 6], &["conv2d(3 -> 8, kernel = 3), adaptive_avg_pool(2, 1)", "linear(16 -> 2)"], None),
            (&[3, 6, 6], &["conv2d(3 -> 8, kernel = 3), flatten", "linear(100 -> 2)"], Some("declares 100 input features but receives 128")),
            (&[2, 3, 3], &["linear(17 -> 4)"], Some("receives 18 (2x3x3 flattened)")),
            (&[3, 8, 8], &["conv2d(3 -> 4, kernel = 3), relu", "batch_norm, dropout(0.1)", "linear(144 -> 2), log_softmax"], None),
            // DCGAN's generator, from noise as a 1x1 map.
            (
                &[16, 1, 1],
                &[
                    "conv_transpose2d(16 -> 32, kernel = 4), relu",
                    "conv_transpose2d(32 -> 8, kernel = 4, stride = 2, padding = 1), upsample(2)",
                    "conv2d(8 -> 3, kernel = 3, padding = 1), tanh",
                    "linear(768 -> 2)",
                ],
                None,
            ),
            (&[8, 7, 7], &["conv_transpose2d(8 -> 8, kernel = 3, stride = 2, padding = 1, output_padding = 1)", "linear(1568 -> 2)"], None),
            (&[8, 5, 5], &["conv_transpose2d(8 -> 8, kernel = 3, stride = 2, output_padding = 2)"], Some("output_padding 2 must be below its stride (2)")),
            (&[8, 1, 1], &["conv_transpose2d(8 -> 8, kernel = 1, padding = 1)"], Some("padding 1 leaves nothing of the 1x1 feature map")),
            (&[4, 5, 5], &["conv_transpose2d(2 -> 8, kernel = 3)"], Some("conv_transpose2d declares 2 input channels but receives 4")),
            (&[4, 5, 5], &["conv2d(4 -> 4, kernel = 3), upsample(0)"], Some("upsample scale must be at least 1")),
            (&[4, 5, 5], &["conv2d(4 -> 4, kernel = 3), upsample(3)", "linear(324 -> 2)"], None),
            // A text classifier: token ids, embedding, conv1d, pool, linear.
            (&[20], &["embedding(1000 -> 32)", "conv1d(32 -> 64, kernel = 3, padding = 1), relu, max_pool1d(2)", "linear(640 -> 4)"], None),
            (&[20], &["embedding(1000 -> 32)", "conv1d(16 -> 64, kernel = 3)"], Some("conv1d declares 16 input channels but receives 32")),
            (&[4], &["embedding(10 -> 8)", "conv1d(8 -> 8, kernel = 5)"], Some("conv1d kernel 5 does not fit the length-4 sequence")),
            (&[9], &["embedding(10 -> 8), max_pool1d(3, stride = 2)", "linear(33 -> 2)"], Some("declares 33 input features but receives 32 (8x4 flattened)")),
            (&[8, 6], &["conv1d(8 -> 8, kernel = 3, padding = same, stride = 2)"], Some("padding = same keeps the size only with stride 1")),
            (&[8, 6], &["conv1d(8 -> 12, kernel = 4, padding = same)", "group_norm(3), gelu", "layer_norm", "linear(72 -> 2)"], None),
            (&[8, 6], &["conv1d(8 -> 12, kernel = 3)", "group_norm(5)"], Some("group_norm groups = 5 must be at least 1 and divide the 12 channels")),
            (&[16], &["linear(16 -> 16), relu", "layer_norm", "linear(16 -> 16), residual(l0)", "linear(16 -> 2)"], None),
            // A residual block, and one whose convolution changes the size.
            (
                &[8, 6, 6],
                &["conv2d(8 -> 8, kernel = 3, padding = same), relu", "batch_norm", "conv2d(8 -> 8, kernel = 3, padding = 1), residual(l0), relu"],
                None,
            ),
            (
                &[8, 6, 6],
                &["conv2d(8 -> 8, kernel = 3), relu", "conv2d(8 -> 8, kernel = 1), residual(l0)"],
                Some("residual(l0) adds the input of `l0`, a 8x6x6 feature map, to a 8x4x4 feature map"),
            ),
        ];
        for (shape, chains, refused) in cases {
            let (compile, run) = (at_compile_time(shape, chains), at_run_time(shape, chains));
            assert_eq!(compile, run, "{shape:?} {chains:?}");
            match refused {
                None => assert!(compile.is_empty(), "{shape:?} {chains:?}: {compile:?}"),
                Some(reason) => assert!(compile.len() == 1 && compile[0].contains(reason), "{shape:?} {chains:?}: {compile:?}"),
            }
        }
    }
}
