//! The derive's rules, one function each, run over the model of the input ([`super::ast`]); each
//! adds its errors to the accumulator, so the user sees every broken rule at once. The shape
//! rules of literal sizes are [`super::shape`]'s walk.

use darling::error::Accumulator;
use fulmen_rules::shape::Layout;

use super::ast::{Fields, LayerField, type_named, type_text};
use super::attrs::{LightningOpts, OptimizerSpec};
use super::layers::{DropRate, Op, Size};
use super::{Loss, ops};

/// Generic structs are not supported.
pub fn no_generics(opts: &LightningOpts, errors: &mut Accumulator) {
    if !opts.generics.params.is_empty() {
        errors.push(darling::Error::custom("the derive does not support generic structs yet").with_span(&opts.generics));
    }
}

/// One `#[layer(...)]` per field.
pub fn one_layer_attribute(fields: &Fields, errors: &mut Accumulator) {
    for span in &fields.repeated {
        errors.push(darling::Error::custom("one #[layer(...)] per field; chain ops with commas inside it").with_span(span));
    }
}

/// Every field is built by a layer, holds the hyperparameters, or the user builds it (`init`).
pub fn every_field_is_built(fields: &Fields, opts: &LightningOpts, errors: &mut Accumulator) {
    if opts.init.is_some() {
        return;
    }
    for ident in &fields.plain {
        errors.push(
            darling::Error::custom(format!(
                "field `{ident}` has no #[layer(...)]: give it one, or write the constructor yourself and name it with `#[lightning(init = ...)]`"
            ))
            .with_span(ident),
        );
    }
}

/// A chain starts with the op that builds the field, of the type the field declares.
pub fn first_op_builds_the_field(layers: &[LayerField], errors: &mut Accumulator) {
    for layer in layers {
        match layer.descriptors.first().and_then(|d| d.builds) {
            None => errors.push(
                darling::Error::custom(format!("a layer spec starts with the op that builds the field: one of {}", ops::building())).with_span(&layer.spec),
            ),
            Some(expected) if !type_named(&layer.ty, expected) => errors.push(
                darling::Error::custom(format!(
                    "field `{}` is declared as `{}` but its layer builds a `{expected}`; declare it as `{expected}`",
                    layer.ident,
                    type_text(&layer.ty)
                ))
                .with_span(&layer.ty),
            ),
            Some(_) => {}
        }
    }
}

/// Only the first op of a chain builds a module.
pub fn one_module_per_field(layers: &[LayerField], errors: &mut Accumulator) {
    for layer in layers.iter().filter(|l| l.descriptors.first().is_some_and(|d| d.builds.is_some())) {
        if let Some(extra) = layer.descriptors.iter().skip(1).find_map(|d| d.builds) {
            errors.push(
                darling::Error::custom(format!("only the first op of a layer builds a module; move `{extra}` to a field of its own")).with_span(&layer.spec),
            );
        }
    }
}

/// Each `residual(from)` names a layer field at or before its own (whose input exists by then);
/// that field is marked, so the code keeps its input.
pub fn residuals_name_earlier_fields(layers: &mut [LayerField], errors: &mut Accumulator) {
    for at in 0..layers.len() {
        let sources: Vec<syn::Ident> = layers[at]
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Residual(from) => Some(from.clone()),
                _ => None,
            })
            .collect();
        for from in sources {
            match layers[..=at].iter().position(|l| l.ident == from) {
                Some(source) => layers[source].skipped = true,
                None => {
                    let earlier: Vec<String> = layers[..=at].iter().map(|l| l.ident.to_string()).collect();
                    let earlier: Vec<&str> = earlier.iter().map(String::as_str).collect();
                    errors.push(
                        darling::Error::custom(format!(
                            "`residual({from})` adds the input of a layer field at or before this one, and `{from}` is none{}; the fields are {}",
                            fulmen_rules::names::did_you_mean(&from.to_string(), &earlier),
                            earlier.join(", ")
                        ))
                        .with_span(&from),
                    );
                }
            }
        }
    }
}

/// A model with `hparams = T` keeps them in a field.
pub fn hparams_are_stored(opts: &LightningOpts, fields: &Fields, errors: &mut Accumulator) {
    if let Some(h) = &opts.hparams
        && fields.hparams.is_none()
    {
        errors.push(
            darling::Error::custom(format!(
                "the model stores no hyperparameters: add a field `#[module(skip)] hparams: {}`",
                quote::quote!(#h).to_string().replace(' ', "")
            ))
            .with_span(h),
        );
    }
}

/// The input's layout: the first op's, or a literal `input_shape`'s where the first op takes it;
/// a literal of a length the first op does not take is an error.
pub fn input_layout(layers: &[LayerField], opts: &LightningOpts, errors: &mut Accumulator) -> Layout {
    let Some(first) = layers.first().and_then(|l| l.descriptors.first()) else { return Layout::Map };
    let Some(shape @ syn::Expr::Array(array)) = &opts.input_shape else { return first.takes[0] };
    match Layout::of_input(array.elems.len(), first.takes[0] == Layout::Tokens) {
        Some(layout) if first.takes.contains(&layout) => layout,
        _ => {
            errors.push(
                darling::Error::custom(format!(
                    "input_shape has {} dimensions, but the first op, {}, takes {}; give its dimensions",
                    array.elems.len(),
                    first.name,
                    first.takes[0].dims()
                ))
                .with_span(shape),
            );
            first.takes[0]
        }
    }
}

/// A norm as the first op learns its size from `input_shape` only.
pub fn normalized_input_has_a_shape(layers: &[LayerField], opts: &LightningOpts, errors: &mut Accumulator) {
    let Some(first) = layers.first() else { return };
    if first.descriptors.first().and_then(|d| d.builds).is_some_and(|b| b.ends_with("Norm")) && opts.input_shape.is_none() {
        errors.push(
            darling::Error::custom(format!("`{}` normalizes the model's input, whose size only `input_shape = [..]` gives; add it", first.ident))
                .with_span(&first.ident),
        );
    }
}

/// Each op takes the layout it receives (`fulmen-rules`' `Layout::feeds`, from the op table),
/// and a residual adds a layout equal to its own; the first broken op ends the walk.
pub fn chain_layouts(layers: &[LayerField], input: Layout, errors: &mut Accumulator) {
    let mut layout = input;
    let mut at_input = Vec::new();
    for layer in layers {
        at_input.push((&layer.ident, layout));
        for (op, descriptor) in layer.ops.iter().zip(&layer.descriptors) {
            let step = layout.feeds(descriptor.name, descriptor.takes).and_then(|()| match op {
                Op::Residual(from) => {
                    let skipped = at_input.iter().find(|(f, _)| *f == from).map_or(layout, |(_, l)| *l);
                    layout.residual(&from.to_string(), skipped)
                }
                _ => Ok(()),
            });
            if let Err(e) = step {
                errors.push(darling::Error::custom(format!("`{}`: {e}", layer.ident)).with_span(&layer.ident));
                return;
            }
            layout = descriptor.gives.unwrap_or(layout);
        }
    }
}

/// `linear(auto -> n)` needs an input shape to infer from.
pub fn auto_needs_an_input_shape(layers: &[LayerField], opts: &LightningOpts, errors: &mut Accumulator) {
    if opts.input_shape.is_some() {
        return;
    }
    for op in layers.iter().flat_map(|l| &l.ops) {
        if let Op::Linear { input: Size::Auto(auto), .. } = op {
            errors.push(
                darling::Error::custom(
                    "`auto` needs the input shape: add `input_shape = [C, H, W]` to #[lightning(...)], or `hparams = ...` with an `input_shape` field",
                )
                .with_span(auto),
            );
        }
    }
}

/// `forward_features` replaces the `[C, H, W]` part of a generated forward.
pub fn forward_features_applies(opts: &LightningOpts, input: Layout, errors: &mut Accumulator) {
    let Some(features) = &opts.forward_features else { return };
    if opts.forward.is_some() {
        errors.push(
            darling::Error::custom("`forward_features` has no effect when `forward` is yours too: call it from your forward and drop this option")
                .with_span(features),
        );
    } else if input != Layout::Map {
        errors.push(
            darling::Error::custom(format!("`forward_features` replaces the [C, H, W] part of the chain, but this model takes {}", input.dims()))
                .with_span(features),
        );
    }
}

/// `Self::name`: a user method named in an option.
fn user_method(path: &syn::Path) -> bool {
    path.segments.len() == 2 && path.segments[0].ident == "Self"
}

/// The loss: `nll` after a (log-)softmax, `cross_entropy` otherwise, unless named; cross-entropy
/// after a softmax would apply it twice.
pub fn loss(opts: &LightningOpts, layers: &[LayerField], errors: &mut Accumulator) -> Loss {
    let ends_in_log_softmax = layers.last().and_then(|l| l.ops.last()).is_some_and(|op| matches!(op, Op::Activation(a, _) if a.normalizes()));
    match &opts.loss {
        None if ends_in_log_softmax => Loss::Nll,
        None => Loss::CrossEntropy,
        Some(l) if user_method(l) => Loss::Method(l.clone()),
        Some(l) if l.is_ident("nll") => Loss::Nll,
        Some(l) if l.is_ident("cross_entropy") => {
            if ends_in_log_softmax {
                errors.push(
                    darling::Error::custom("the model already ends in (log_)softmax, so cross_entropy would apply softmax twice; use `loss = nll`")
                        .with_span(l),
                );
            }
            Loss::CrossEntropy
        }
        Some(l) => {
            let name = quote::quote!(#l).to_string().replace(' ', "");
            errors.push(darling::Error::unknown_value_with_alts(&name, ["nll", "cross_entropy"].iter()).with_span(l));
            Loss::CrossEntropy
        }
    }
}

/// A size, dropout rate or learning rate that names a hyperparameter field needs `hparams = T`.
pub fn hparams_fields_need_hparams(opts: &LightningOpts, layers: &[LayerField], optimizer: Option<&OptimizerSpec>, errors: &mut Accumulator) {
    if opts.hparams.is_some() {
        return;
    }
    if let Some(opt) = optimizer
        && let syn::Expr::Path(p) = &opt.lr
    {
        errors.push(darling::Error::custom("the learning rate names a hyperparameter field, but the model has no `hparams = ...`").with_span(p));
    }
    for layer in layers {
        let rates = layer.ops.iter().filter_map(|op| match op {
            Op::Dropout(DropRate::Field(f)) => Some(f),
            _ => None,
        });
        let sizes = layer.sizes.iter().filter_map(|s| match s {
            Size::Field(f) => Some(f),
            _ => None,
        });
        for f in rates.chain(sizes) {
            errors.push(darling::Error::custom(format!("`{f}` names a hyperparameter field, but the model has no `hparams = ...`")).with_span(f));
        }
    }
}

/// `automatic_optimization = false` needs the user's manual step.
pub fn manual_optimization_has_a_step(opts: &LightningOpts, errors: &mut Accumulator) {
    if let Some(flag) = &opts.automatic_optimization
        && !flag.value
        && opts.training_step.is_none()
    {
        errors.push(
            darling::Error::custom(
                "manual optimization needs your training step: add `training_step = method`, with \
                 `fn method(step: &mut ManualStep<'_, Self>, batch: Self::Batch) -> Result<()>`",
            )
            .with_span(flag),
        );
    }
}
