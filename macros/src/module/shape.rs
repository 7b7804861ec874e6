//! The compile-time twin of the runtime's shape tracking: when `input_shape` is a literal
//! `[C, H, W]`, the chain is walked here and an impossible layer is a compile error naming the
//! layer and both numbers. The walk stops quietly at the first size that is a hyperparameter
//! field (known only at run time, where `new()` checks the rest).

use super::LayerField;
use super::layers::{Op, Pad, Size, WindowSpec};

/// The shape between layers: a `[C, H, W]` map or a flat vector.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Map([u64; 3]),
    Flat(u64),
}

/// A literal size, or `None` for a field (or `auto`, which the caller resolves).
fn lit(size: &Size) -> Option<u64> {
    match size {
        Size::Lit(l) => l.base10_parse().ok(),
        _ => None,
    }
}

/// Output side of a window over `input`, or `None` when the window does not fit.
fn output_side(input: u64, kernel: u64, stride: u64, pad: u64, dilation: u64) -> Option<u64> {
    let span = dilation * kernel.saturating_sub(1) + 1;
    let padded = input + 2 * pad;
    (padded >= span && stride > 0).then(|| (padded - span) / stride + 1)
}

/// `(kernel, stride, padding, dilation)` when all are literals; `same` keeps the size.
fn window(w: &WindowSpec) -> Option<(&Size, u64, u64, Option<u64>, u64)> {
    let pad = match &w.padding {
        Pad::Valid => Some(0),
        Pad::Same => None,
        Pad::Explicit(p) => Some(lit(p)?),
    };
    Some((&w.kernel, lit(&w.kernel)?, lit(&w.stride)?, pad, lit(&w.dilation)?))
}

/// Parses `[C, H, W]` of integer literals.
fn literal_shape(expr: &syn::Expr) -> Option<[u64; 3]> {
    let syn::Expr::Array(array) = expr else { return None };
    let values: Vec<u64> = array
        .elems
        .iter()
        .map(|e| match e {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse().ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    values.try_into().ok()
}

/// Walks the chain from a literal input shape, collecting an error per impossible layer.
pub fn check(layers: &[LayerField], input_shape: Option<&syn::Expr>) -> darling::Result<()> {
    let mut errors = darling::Error::accumulator();
    let Some(start) = input_shape.and_then(literal_shape) else { return errors.finish() };
    let mut shape = Shape::Map(start);
    'chain: for layer in layers {
        let name = &layer.ident;
        for op in &layer.ops {
            let next = match (op, shape) {
                (Op::Conv2d { input, output, window: w, .. }, Shape::Map([c, h, wd])) => {
                    if let Some(declared) = lit(input)
                        && declared != c
                    {
                        errors.push(
                            darling::Error::custom(format!(
                                "`{name}`: conv2d declares {declared} input channels but receives {c}; write `conv2d({c} -> ..)` or `conv2d(auto -> ..)`"
                            ))
                            .with_span(input),
                        );
                    }
                    let (Some(out), Some((kernel_size, k, s, pad, d))) = (lit(output), window(w)) else { break 'chain };
                    match pad {
                        None => Shape::Map([out, h, wd]),
                        Some(p) => match (output_side(h, k, s, p, d), output_side(wd, k, s, p, d)) {
                            (Some(oh), Some(ow)) => Shape::Map([out, oh, ow]),
                            _ => {
                                errors.push(too_big(name, "conv2d", k, d, h, wd).with_span(kernel_size));
                                break 'chain;
                            }
                        },
                    }
                }
                (Op::MaxPool(w) | Op::AvgPool(w), Shape::Map([c, h, wd])) => {
                    let Some((kernel_size, k, s, pad, d)) = window(w) else { break 'chain };
                    let p = pad.unwrap_or(0);
                    match (output_side(h, k, s, p, d), output_side(wd, k, s, p, d)) {
                        (Some(oh), Some(ow)) => Shape::Map([c, oh, ow]),
                        _ => {
                            errors.push(too_big(name, "pooling", k, d, h, wd).with_span(kernel_size));
                            break 'chain;
                        }
                    }
                }
                (Op::AdaptiveAvgPool(oh, ow), Shape::Map([c, _, _])) => {
                    let (Some(oh), Some(ow)) = (lit(oh), lit(ow)) else { break 'chain };
                    Shape::Map([c, oh, ow])
                }
                (Op::Flatten, Shape::Map([c, h, w])) => Shape::Flat(c * h * w),
                (Op::Linear { input, output, .. }, current) => {
                    let (n, dims) = match current {
                        Shape::Map([c, h, w]) => (c * h * w, format!(" ({c}x{h}x{w} flattened)")),
                        Shape::Flat(n) => (n, String::new()),
                    };
                    if let Some(declared) = lit(input)
                        && declared != n
                    {
                        let out = match output {
                            Size::Lit(l) => l.to_string(),
                            Size::Field(f) => f.to_string(),
                            Size::Auto(a) => a.to_string(),
                        };
                        errors.push(
                            darling::Error::custom(format!(
                                "`{name}`: linear declares {declared} input features but receives {n}{dims}; write `linear({n} -> {out})` or `linear(auto -> {out})`"
                            ))
                            .with_span(input),
                        );
                    }
                    let Some(out) = lit(output) else { break 'chain };
                    Shape::Flat(out)
                }
                (_, current) => current,
            };
            shape = next;
        }
    }
    errors.finish()
}

fn too_big(name: &syn::Ident, op: &str, kernel: u64, dilation: u64, h: u64, w: u64) -> darling::Error {
    let dilated = if dilation > 1 { format!(" (dilation {dilation})") } else { String::new() };
    darling::Error::custom(format!(
        "`{name}`: {op} kernel {kernel}{dilated} does not fit the {h}x{w} feature map it receives; use a smaller kernel, padding, or fewer pooling layers before it"
    ))
}
