//! `#[derive(LightningModule)]`: read the options and layer specs, check the chain, generate.

mod attrs;
mod codegen;
mod layers;
mod metrics;
mod ops;
mod shape;

use proc_macro2::TokenStream;

pub use attrs::{LightningOpts, OptimizerSpec};
pub use layers::{Op, RawLayer, Size};
pub use metrics::Metric;

/// A field built from a `#[layer(...)]` spec.
#[derive(Debug)]
pub struct LayerField {
    /// Field name.
    pub ident: syn::Ident,
    /// The ops, the first one building the field's module.
    pub ops: Vec<Op>,
}

/// Which loss the generated steps use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// `nll` (the model ends in `log_softmax`).
    Nll,
    /// `cross_entropy` (the model outputs logits).
    CrossEntropy,
    /// The user's `Self::method(&self, output, targets) -> Tensor<1>`.
    Method(syn::Path),
}

/// `Self::name`: a user method named in an option.
fn user_method(path: &syn::Path) -> bool {
    path.segments.len() == 2 && path.segments[0].ident == "Self"
}

/// Everything the code generator needs, after checks.
#[derive(Debug)]
pub struct ModuleModel {
    /// Struct options.
    pub opts: LightningOpts,
    /// The fields with layers, in declaration order.
    pub layers: Vec<LayerField>,
    /// The field holding the hyperparameters.
    pub hparams_field: Option<syn::Ident>,
    /// Rank of the model's input tensor (4 for images, 2 for vectors).
    pub input_rank: usize,
    /// The loss.
    pub loss: Loss,
    /// The metrics.
    pub metrics: Vec<Metric>,
    /// The optimizer.
    pub optimizer: OptimizerSpec,
}

/// Expands the derive.
pub fn expand(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    match analyze(&input) {
        Ok(model) => codegen::generate(&model),
        Err(errors) => {
            let fallback = codegen::fallback(&input, attrs::parse(&input).ok().as_ref());
            let errors = errors.write_errors();
            quote::quote! { #fallback #errors }
        }
    }
}

/// Parses and checks, collecting every error.
pub fn analyze(input: &syn::DeriveInput) -> darling::Result<ModuleModel> {
    let mut opts = attrs::parse(input)?;
    let syn::Data::Struct(syn::DataStruct { fields: syn::Fields::Named(named), .. }) = &input.data else {
        return Err(darling::Error::custom("#[derive(LightningModule)] needs a struct with named fields").with_span(&input.ident));
    };
    let mut errors = darling::Error::accumulator();
    if !opts.generics.params.is_empty() {
        errors.push(darling::Error::custom("#[derive(LightningModule)] does not support generic structs yet").with_span(&opts.generics));
    }

    let mut layers = Vec::new();
    let mut hparams_field = None;
    for field in &named.named {
        let Some(ident) = field.ident.clone() else { continue };
        let specs: Vec<_> = field.attrs.iter().filter(|a| a.path().is_ident("layer")).collect();
        if specs.len() > 1 {
            errors.push(darling::Error::custom("one #[layer(...)] per field; chain ops with commas inside it").with_span(specs[1]));
        }
        let Some(spec) = specs.first() else {
            let is_hparams = opts.hparams.as_ref().is_some_and(|h| same_type(&field.ty, h)) || ident == "hparams";
            if is_hparams && opts.hparams.is_some() {
                hparams_field = Some(ident);
            } else if opts.init.is_none() {
                errors.push(
                    darling::Error::custom(format!(
                        "field `{ident}` has no #[layer(...)]: give it one, or write the constructor yourself and name it with `#[lightning(init = ...)]`"
                    ))
                    .with_span(&field.ident),
                );
            }
            continue;
        };
        let Some(raw) = errors.handle(spec.parse_args::<RawLayer>().map_err(darling::Error::from)) else { continue };
        let ops: Vec<Op> = raw.0.iter().filter_map(|op| errors.handle(op.resolve())).collect();
        if ops.len() != raw.0.len() {
            continue;
        }
        // What each op builds, from the op table.
        let builds: Vec<Option<&str>> = raw.0.iter().map(|op| ops::find(&op.name.to_string()).and_then(|d| d.builds)).collect();
        match builds.first().copied().flatten() {
            None => errors
                .push(darling::Error::custom("a layer spec starts with the op that builds the field: conv2d(..), linear(..) or batch_norm").with_span(spec)),
            Some(expected) if !type_named(&field.ty, expected) => errors.push(
                darling::Error::custom(format!(
                    "field `{ident}` is declared as `{}` but its layer builds a `{expected}`; declare it as `{expected}`",
                    type_text(&field.ty)
                ))
                .with_span(&field.ty),
            ),
            Some(_) => {}
        }
        let first_builds = builds.first().copied().flatten().is_some();
        if let Some(extra) = builds.iter().skip(1).copied().flatten().find(|_| first_builds) {
            errors.push(darling::Error::custom(format!("only the first op of a layer builds a module; move `{extra}` to a field of its own")).with_span(spec));
        }
        layers.push(LayerField { ident, ops });
    }
    if let Some(h) = &opts.hparams
        && hparams_field.is_none()
    {
        errors.push(
            darling::Error::custom(format!(
                "the model stores no hyperparameters: add a field `#[module(skip)] hparams: {}`",
                quote::quote!(#h).to_string().replace(' ', "")
            ))
            .with_span(h),
        );
    }

    // Without `input_shape`, `auto` reads the hyperparameters' `input_shape` field (a missing
    // field is then reported at the `auto`).
    if opts.input_shape.is_none()
        && opts.hparams.is_some()
        && let Some(auto) = layers.iter().flat_map(|l| l.ops.iter().flat_map(sizes_of)).find_map(|s| match s {
            Size::Auto(auto) => Some(auto.clone()),
            _ => None,
        })
    {
        let field = syn::Ident::new("input_shape", auto.span());
        opts.input_shape = Some(syn::parse_quote!(#field));
    }
    let input_rank = errors.handle(check_chain(&layers, &opts)).unwrap_or(4);
    if let Some(features) = &opts.forward_features {
        if opts.forward.is_some() {
            errors.push(
                darling::Error::custom("`forward_features` has no effect when `forward` is yours too: call it from your forward and drop this option")
                    .with_span(features),
            );
        } else if input_rank == 2 {
            errors.push(
                darling::Error::custom("`forward_features` replaces the convolutional part of the chain, but this model starts flat (with a linear layer)")
                    .with_span(features),
            );
        }
    }
    errors.handle(shape::check(&layers, opts.input_shape.as_ref()));
    let ends_in_log_softmax = layers.last().and_then(|l| l.ops.last()).is_some_and(|op| matches!(op, Op::Activation(a, _) if a.normalizes()));
    let loss = match &opts.loss {
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
    };
    let metrics: Vec<Metric> = opts.metrics.0.iter().filter_map(|m| errors.handle(metrics::parse(m))).collect();
    let optimizer = match &opts.optimizer {
        Some(expr) => errors.handle(OptimizerSpec::parse(expr)),
        None => Some(OptimizerSpec { kind: syn::Ident::new("adam", proc_macro2::Span::call_site()), lr: syn::parse_quote!(1e-3) }),
    };
    if let Some(opt) = &optimizer
        && let syn::Expr::Path(p) = &opt.lr
        && opts.hparams.is_none()
    {
        errors.push(darling::Error::custom("the learning rate names a hyperparameter field, but the model has no `hparams = ...`").with_span(p));
    }
    if opts.hparams.is_none() {
        for layer in &layers {
            for op in &layer.ops {
                if let Op::Dropout(layers::DropRate::Field(f)) = op {
                    errors.push(darling::Error::custom(format!("`{f}` names a hyperparameter field, but the model has no `hparams = ...`")).with_span(f));
                }
            }
            for size in layer.ops.iter().flat_map(sizes_of) {
                if let Size::Field(f) = size {
                    errors.push(darling::Error::custom(format!("`{f}` names a hyperparameter field, but the model has no `hparams = ...`")).with_span(f));
                }
            }
        }
    }
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
    let optimizer = errors.finish_with(optimizer)?.ok_or_else(|| darling::Error::custom("the optimizer could not be read"))?;
    Ok(ModuleModel { opts, layers, hparams_field, input_rank, loss, metrics, optimizer })
}

/// Ranks through the chain: images stay 4-d through convs and pools; the first linear (or
/// `flatten`) makes them 2-d. Returns the input rank.
fn check_chain(layers: &[LayerField], opts: &LightningOpts) -> darling::Result<usize> {
    let mut errors = darling::Error::accumulator();
    let first = layers.first().and_then(|l| l.ops.first());
    let input_rank = match first {
        Some(Op::Linear { .. }) => 2,
        _ => 4,
    };
    let mut rank = input_rank;
    let shape_known = opts.input_shape.is_some();
    for layer in layers {
        for op in &layer.ops {
            match op {
                op if op.needs_map() && rank == 2 => errors.push(
                    darling::Error::custom(format!(
                        "`{}` needs a [B, C, H, W] feature map, but the input is already flat here; move it before the first linear layer",
                        layer.ident
                    ))
                    .with_span(&layer.ident),
                ),
                Op::Linear { .. } | Op::Flatten => rank = 2,
                _ => {}
            }
            if let Op::Linear { input: Size::Auto(auto), .. } = op
                && !shape_known
            {
                errors.push(
                    darling::Error::custom(
                        "`auto` needs the input shape: add `input_shape = [C, H, W]` to #[lightning(...)], or `hparams = ...` with an `input_shape` field",
                    )
                    .with_span(auto),
                );
            }
        }
    }
    errors.finish_with(input_rank)
}

/// The sizes an op mentions.
pub fn sizes_of(op: &Op) -> Vec<&Size> {
    match op {
        Op::Conv2d { input, output, window, groups, .. } => {
            let mut v = vec![input, output, &window.kernel, &window.stride, &window.dilation, groups];
            if let layers::Pad::Explicit(p) = &window.padding {
                v.push(p);
            }
            v
        }
        Op::ConvTranspose2d { input, output, window, output_padding, groups, .. } => {
            let mut v = vec![input, output, &window.kernel, &window.stride, &window.dilation, output_padding, groups];
            if let layers::Pad::Explicit(p) = &window.padding {
                v.push(p);
            }
            v
        }
        Op::Upsample(scale) => vec![scale],
        Op::Linear { input, output, .. } => vec![input, output],
        Op::MaxPool(w) | Op::AvgPool(w) => vec![&w.kernel, &w.stride, &w.dilation],
        Op::AdaptiveAvgPool(h, w) => vec![h, w],
        _ => Vec::new(),
    }
}

fn last_segment(ty: &syn::Type) -> Option<&syn::Ident> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

fn type_text(ty: &syn::Type) -> String {
    quote::quote!(#ty).to_string().replace(' ', "")
}

fn type_named(ty: &syn::Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|i| i == name)
}

fn same_type(ty: &syn::Type, path: &syn::Path) -> bool {
    match (last_segment(ty), path.segments.last()) {
        (Some(a), Some(b)) => *a == b.ident,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(input: syn::DeriveInput) -> Vec<String> {
        match analyze(&input) {
            Ok(_) => Vec::new(),
            Err(e) => e.flatten().into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn the_seed_cnn_parses_into_its_chain() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[lightning(hparams = Cfg, loss = nll, metrics(accuracy), optimizer = adam(lr = learning_rate))]
            struct M {
                #[layer(conv2d(3 -> 32, kernel = 3, padding = same, stride = 1), relu, max_pool(2))] c: Conv2d,
                #[layer(linear(auto -> num_classes), log_softmax)] f: Linear,
                #[module(skip)] hparams: Cfg,
            }
        };
        let model = analyze(&input).expect("valid");
        assert_eq!(model.layers.len(), 2);
        assert_eq!(model.layers[0].ops.len(), 3);
        assert_eq!(model.input_rank, 4);
        assert_eq!(model.loss, Loss::Nll);
        assert_eq!(model.metrics, vec![Metric::Accuracy]);
        assert_eq!(model.optimizer.kind, "adam");
        assert_eq!(model.hparams_field.as_ref().map(|i| i.to_string()), Some("hparams".into()));
        let shape = model.opts.input_shape.as_ref().map(|e| quote::quote!(#e).to_string());
        assert_eq!(shape.as_deref(), Some("input_shape"), "auto defaults to the hparams' input_shape");
    }

    #[test]
    fn every_error_is_collected() {
        let errors = errors_of(syn::parse_quote! {
            #[lightning(hparams = Cfg, optimiser = adam)]
            struct M {
                #[layer(conv2d(3 -> 32, kernal = 3))] c: Conv2d,
                #[layer(relu6)] r: Linear,
                extra: usize,
                #[module(skip)] hparams: Cfg,
            }
        });
        assert_eq!(errors.len(), 1, "darling stops at the struct options first: {errors:?}");
        assert!(errors[0].contains("optimiser") && errors[0].contains("optimizer"), "{errors:?}");

        let errors = errors_of(syn::parse_quote! {
            #[lightning(hparams = Cfg)]
            struct M {
                #[layer(conv2d(3 -> 32, kernal = 3))] c: Conv2d,
                #[layer(relu6)] r: Linear,
                #[layer(linear(4 -> 2))] wrong: Conv2d,
                extra: usize,
                #[module(skip)] hparams: Cfg,
            }
        });
        assert_eq!(errors.len(), 4, "no knock-on errors: {errors:#?}");
        let all = errors.join("\n");
        assert!(all.contains("kernal") && all.contains("kernel"), "{all}");
        assert!(all.contains("relu6") && all.contains("relu"), "{all}");
        assert!(all.contains("`wrong` is declared as `Conv2d`") && all.contains("builds a `Linear`"), "{all}");
        assert!(all.contains("`extra` has no #[layer"), "{all}");
    }

    #[test]
    fn cross_entropy_after_log_softmax_is_rejected() {
        let errors = errors_of(syn::parse_quote! {
            #[lightning(loss = cross_entropy)]
            struct M { #[layer(linear(4 -> 2), log_softmax)] f: Linear }
        });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("loss = nll"), "{errors:?}");
    }

    #[test]
    fn literal_input_shapes_are_checked_at_compile_time() {
        let errors = errors_of(syn::parse_quote! {
            #[lightning(input_shape = [3, 4, 4])]
            struct M { #[layer(conv2d(3 -> 8, kernel = 5))] c: Conv2d, #[layer(linear(auto -> 2))] f: Linear }
        });
        assert_eq!(
            errors,
            vec!["`c`: conv2d kernel 5 does not fit the 4x4 feature map it receives; use a smaller kernel, padding, or fewer pooling layers before it"]
        );
        let errors = errors_of(syn::parse_quote! {
            #[lightning(input_shape = [3, 32, 32])]
            struct M {
                #[layer(conv2d(1 -> 8, kernel = 3, padding = same), max_pool(2))] c: Conv2d,
                #[layer(linear(1000 -> 2))] f: Linear,
            }
        });
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("declares 1 input channels but receives 3"), "{errors:#?}");
        assert!(errors[1].contains("declares 1000 input features but receives 2048 (8x16x16 flattened)"), "{errors:#?}");
    }

    #[test]
    fn a_hyperparameter_size_ends_the_compile_time_walk() {
        let errors = errors_of(syn::parse_quote! {
            #[lightning(hparams = Cfg, input_shape = [3, 8, 8])]
            struct M {
                #[layer(conv2d(3 -> width, kernel = 3))] c: Conv2d,
                #[layer(linear(12345 -> 2))] f: Linear,
                #[module(skip)] hparams: Cfg,
            }
        });
        assert!(errors.is_empty(), "left to new() at run time: {errors:#?}");
    }

    #[test]
    fn auto_without_any_input_shape_is_rejected() {
        let errors = errors_of(syn::parse_quote! {
            struct M { #[layer(conv2d(3 -> 8, kernel = 3))] c: Conv2d, #[layer(linear(auto -> 2))] f: Linear }
        });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("input_shape"), "{errors:?}");
    }

    #[test]
    fn user_loss_metrics_features_and_dropout() {
        let model = analyze(&syn::parse_quote! {
            #[lightning(hparams = Cfg, input_shape = [1, 8, 8], forward_features = feats, loss = Self::focal, metrics(accuracy, Self::top2))]
            struct M {
                #[layer(conv2d(1 -> 4, kernel = 3), relu)] c: Conv2d,
                #[layer(linear(auto -> 2), dropout(p = drop))] f: Linear,
                #[module(skip)] hparams: Cfg,
            }
        })
        .expect("valid");
        assert!(matches!(&model.loss, Loss::Method(p) if p.segments[1].ident == "focal"));
        assert!(matches!(&model.metrics[..], [Metric::Accuracy, Metric::Method(p)] if p.segments[1].ident == "top2"));
        assert!(matches!(&model.layers[1].ops[1], Op::Dropout(layers::DropRate::Field(f)) if f == "drop"));

        let errors = errors_of(syn::parse_quote! {
            #[lightning(forward = mine, forward_features = feats, loss = focal, metrics(top2))]
            struct M {
                #[layer(linear(4 -> 8), dropout(1.0))] a: Linear,
                #[layer(linear(8 -> 2), dropout(p = rate))] b: Linear,
            }
        });
        let all = errors.join("\n");
        assert_eq!(errors.len(), 5, "{errors:#?}");
        for part in ["forward_features", "focal", "top2", "outside [0, 1)", "`rate` names a hyperparameter field"] {
            assert!(all.contains(part), "{part}: {all}");
        }
    }
}
