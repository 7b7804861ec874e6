//! The compile-time walk of a literal `input_shape` through the chain, with `fulmen-rules`'
//! arithmetic (the one the generated `new()` applies at run time): an impossible layer is a
//! compile error naming the layer, pointing at the argument to change. The walk stops quietly at
//! the first size that is a hyperparameter field (known only at run time, where `new()` checks
//! the rest), and at a 2-d op after the shape is flat (the chain check reports that).

use fulmen_rules::shape::{Blame, Padding, Shape, ShapeError, Window};
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

/// Parses `[C, H, W]` of integer literals.
fn literal_shape(expr: &syn::Expr) -> Option<[usize; 3]> {
    let syn::Expr::Array(array) = expr else { return None };
    let values: Vec<usize> = array
        .elems
        .iter()
        .map(|e| match e {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse().ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    values.try_into().ok()
}

/// The argument of `op` an error blames, for its span.
fn blamed(op: &Op, blame: Blame) -> Option<proc_macro2::Span> {
    let window = match op {
        Op::Conv2d { window, .. } | Op::ConvTranspose2d { window, .. } | Op::MaxPool(window) | Op::AvgPool(window) => Some(window),
        _ => None,
    };
    match (blame, op) {
        (Blame::Input, Op::Conv2d { input, .. } | Op::ConvTranspose2d { input, .. } | Op::Linear { input, .. }) => Some(input.span()),
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

/// Walks the chain from a literal input shape, collecting an error per impossible layer.
pub fn check(layers: &[LayerField], input_shape: Option<&syn::Expr>) -> darling::Result<()> {
    let mut errors = darling::Error::accumulator();
    let Some(start) = input_shape.and_then(literal_shape) else { return errors.finish() };
    let mut shape = Shape::Map(start);
    let mut refuse = |layer: &LayerField, op: &Op, e: ShapeError| {
        let error = darling::Error::custom(format!("`{}`: {e}", layer.ident));
        errors.push(match blamed(op, e.blames()) {
            Some(span) => error.with_span(&span),
            None => error.with_span(&layer.ident),
        });
    };
    'chain: for layer in layers {
        for op in &layer.ops {
            if op.needs_map() && matches!(shape, Shape::Flat(_)) {
                break 'chain;
            }
            let next = match op {
                Op::Conv2d { input, output, window: w, .. } => {
                    // Reported, and the walk goes on with the channels the layer declares out.
                    if let Err(e) = shape.input_channels("conv2d", lit(input)) {
                        refuse(layer, op, e);
                    }
                    let (Some(out), Some(w)) = (lit(output), window(w)) else { break 'chain };
                    shape.conv2d(None, out, w)
                }
                Op::ConvTranspose2d { input, output, window: w, output_padding, .. } => {
                    if let Err(e) = shape.input_channels("conv_transpose2d", lit(input)) {
                        refuse(layer, op, e);
                    }
                    let (Some(out), Some(w), Some(extra)) = (lit(output), window(w), lit(output_padding)) else { break 'chain };
                    shape.conv_transpose2d(None, out, w, extra)
                }
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
                let ty = match chain.split(['(', ',']).next() {
                    Some("conv2d") => "Conv2d",
                    Some("conv_transpose2d") => "ConvTranspose2d",
                    Some("batch_norm") => "BatchNorm",
                    _ => "Linear",
                };
                format!("#[layer({chain})] l{i}: {ty},")
            })
            .collect();
        syn::parse_str(&format!("#[lightning(hparams = Cfg, input_shape = {input_shape})] struct M {{ {fields} #[module(skip)] hparams: Cfg }}")).unwrap()
    }

    /// The compile-time answer: the reasons of the errors, without the layer name.
    fn at_compile_time(shape: [usize; 3], chains: &[&str]) -> Vec<String> {
        match analyze(&model(&format!("{shape:?}"), chains)) {
            Ok(_) => Vec::new(),
            Err(e) => e.flatten().into_iter().map(|e| e.to_string().split_once(": ").map(|(_, r)| r.to_string()).unwrap_or_default()).collect(),
        }
    }

    /// The run-time answer: the chain parsed with its input shape left to run time, then the
    /// tracker driven through its ops as `new()` does.
    fn at_run_time(shape: [usize; 3], chains: &[&str]) -> Vec<String> {
        let parsed = analyze(&model("input_shape", chains)).expect("no compile-time shape check without a literal shape");
        let mut tracker = ShapeTracker::image(shape);
        run(&mut tracker, &parsed.layers).err().map(|e| e.to_string().split_once(": ").map(|(_, r)| r.to_string()).unwrap_or_default()).into_iter().collect()
    }

    fn run(tracker: &mut ShapeTracker, layers: &[LayerField]) -> fulmen::Result<()> {
        for layer in layers {
            let name = layer.ident.to_string();
            for op in &layer.ops {
                match op {
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
        let cases: &[([usize; 3], &[&str], Option<&str>)] = &[
            // The tutorial CNN.
            (
                [3, 32, 32],
                &[
                    "conv2d(3 -> 32, kernel = 3), relu",
                    "conv2d(32 -> 32, kernel = 3), relu, max_pool(2)",
                    "conv2d(32 -> 64, kernel = 3), relu",
                    "conv2d(64 -> 64, kernel = 3), relu, max_pool(2)",
                    "linear(1600 -> 512), relu",
                ],
                None,
            ),
            ([3, 4, 4], &["conv2d(3 -> 8, kernel = 5)"], Some("conv2d kernel 5 does not fit the 4x4 feature map")),
            ([3, 9, 9], &["conv2d(3 -> 8, kernel = 3, dilation = 5)"], Some("conv2d kernel 3 (dilation 5) does not fit the 9x9")),
            ([1, 8, 8], &["conv2d(3 -> 8, kernel = 3)"], Some("declares 3 input channels but receives 1")),
            ([3, 7, 9], &["conv2d(3 -> 8, kernel = 5, padding = same)", "linear(504 -> 2)"], None),
            ([3, 8, 8], &["conv2d(3 -> 8, kernel = 3, padding = same, stride = 2)"], Some("padding = same keeps the size only with stride 1")),
            ([3, 8, 8], &["conv2d(3 -> 8, kernel = 3, padding = 1, stride = 2)", "linear(128 -> 2)"], None),
            ([3, 5, 5], &["conv2d(3 -> 8, kernel = 3), max_pool(2)", "linear(auto -> 2)"], None),
            ([3, 6, 6], &["conv2d(3 -> 8, kernel = 3), max_pool(2), max_pool(2), max_pool(2)"], Some("pooling kernel 2 does not fit the 1x1 feature map")),
            ([3, 6, 6], &["conv2d(3 -> 8, kernel = 3), avg_pool(3, stride = 1, padding = 1)", "linear(128 -> 2)"], None),
            ([3, 6, 6], &["conv2d(3 -> 8, kernel = 3), adaptive_avg_pool(2, 1)", "linear(16 -> 2)"], None),
            ([3, 6, 6], &["conv2d(3 -> 8, kernel = 3), flatten", "linear(100 -> 2)"], Some("declares 100 input features but receives 128")),
            ([2, 3, 3], &["linear(17 -> 4)"], Some("receives 18 (2x3x3 flattened)")),
            ([3, 8, 8], &["conv2d(3 -> 4, kernel = 3), relu", "batch_norm, dropout(0.1)", "linear(144 -> 2), log_softmax"], None),
            // DCGAN's generator, from noise as a 1x1 map.
            (
                [16, 1, 1],
                &[
                    "conv_transpose2d(16 -> 32, kernel = 4), relu",
                    "conv_transpose2d(32 -> 8, kernel = 4, stride = 2, padding = 1), upsample(2)",
                    "conv2d(8 -> 3, kernel = 3, padding = 1), tanh",
                    "linear(768 -> 2)",
                ],
                None,
            ),
            ([8, 7, 7], &["conv_transpose2d(8 -> 8, kernel = 3, stride = 2, padding = 1, output_padding = 1)", "linear(1568 -> 2)"], None),
            ([8, 5, 5], &["conv_transpose2d(8 -> 8, kernel = 3, stride = 2, output_padding = 2)"], Some("output_padding 2 must be below its stride (2)")),
            ([8, 1, 1], &["conv_transpose2d(8 -> 8, kernel = 1, padding = 1)"], Some("padding 1 leaves nothing of the 1x1 feature map")),
            ([4, 5, 5], &["conv_transpose2d(2 -> 8, kernel = 3)"], Some("conv_transpose2d declares 2 input channels but receives 4")),
            ([4, 5, 5], &["conv2d(4 -> 4, kernel = 3), upsample(0)"], Some("upsample scale must be at least 1")),
            ([4, 5, 5], &["conv2d(4 -> 4, kernel = 3), upsample(3)", "linear(324 -> 2)"], None),
        ];
        for (shape, chains, refused) in cases {
            let (compile, run) = (at_compile_time(*shape, chains), at_run_time(*shape, chains));
            assert_eq!(compile, run, "{shape:?} {chains:?}");
            match refused {
                None => assert!(compile.is_empty(), "{shape:?} {chains:?}: {compile:?}"),
                Some(reason) => assert!(compile.len() == 1 && compile[0].contains(reason), "{shape:?} {chains:?}: {compile:?}"),
            }
        }
    }
}
