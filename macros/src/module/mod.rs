//! `#[derive(LightningModule)]` and `#[derive(Layers)]`: read the options and the fields
//! (`ast`), check every rule (`check`, and `shape` for literal sizes), generate (`codegen`).

mod ast;
mod attrs;
mod check;
mod codegen;
mod layers;
mod metrics;
mod ops;
mod shape;

use fulmen_rules::shape::Layout;
use proc_macro2::TokenStream;

pub use ast::LayerField;
pub use attrs::{LightningOpts, OptimizerSpec};
pub use metrics::Metric;

/// Which derive is expanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    /// `#[derive(LightningModule)]`: the layers, the steps, the optimizer.
    Lightning,
    /// `#[derive(Layers)]`: a Burn module's `new` and `forward` from its layers, for parts of a
    /// model (a GAN's generator and discriminator).
    Layers,
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

/// Everything the code generator needs, after checks.
#[derive(Debug)]
pub struct ModuleModel {
    /// Struct options.
    pub opts: LightningOpts,
    /// The fields with layers, in declaration order.
    pub layers: Vec<LayerField>,
    /// The field holding the hyperparameters.
    pub hparams_field: Option<syn::Ident>,
    /// Which derive.
    pub derive: Derive,
    /// The layout of the model's input (from its first op, or the input shape's length).
    pub input: Layout,
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
            let fallback = codegen::fallback(&input, attrs::parse(&input).ok().as_ref(), Derive::Lightning);
            let errors = errors.write_errors();
            quote::quote! { #fallback #errors }
        }
    }
}

/// Expands `#[derive(Layers)]`.
pub fn expand_layers(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    match attrs::parse_layers(&input).and_then(|opts| analyze_with(&input, opts, Derive::Layers)) {
        Ok(model) => codegen::generate(&model),
        Err(errors) => {
            let fallback = codegen::fallback(&input, attrs::parse_layers(&input).ok().as_ref(), Derive::Layers);
            let errors = errors.write_errors();
            quote::quote! { #fallback #errors }
        }
    }
}

/// Parses and checks `#[derive(LightningModule)]`, collecting every error.
pub fn analyze(input: &syn::DeriveInput) -> darling::Result<ModuleModel> {
    analyze_with(input, attrs::parse(input)?, Derive::Lightning)
}

/// Reads either derive's input, then applies every rule, collecting every error.
fn analyze_with(input: &syn::DeriveInput, mut opts: LightningOpts, derive: Derive) -> darling::Result<ModuleModel> {
    let syn::Data::Struct(syn::DataStruct { fields: syn::Fields::Named(named), .. }) = &input.data else {
        return Err(darling::Error::custom("the derive needs a struct with named fields").with_span(&input.ident));
    };
    let mut errors = darling::Error::accumulator();
    let fields = ast::read(named, &opts, &mut errors);
    check::no_generics(&opts, &mut errors);
    check::one_layer_attribute(&fields, &mut errors);
    check::every_field_is_built(&fields, &opts, &mut errors);
    check::hparams_are_stored(&opts, &fields, &mut errors);
    let ast::Fields { mut layers, hparams, .. } = fields;
    check::first_op_builds_the_field(&layers, &mut errors);
    check::one_module_per_field(&layers, &mut errors);
    check::residuals_name_earlier_fields(&mut layers, &mut errors);
    ast::default_input_shape(&mut opts, &layers);
    let input_layout = check::input_layout(&layers, &opts, &mut errors);
    check::normalized_input_has_a_shape(&layers, &opts, &mut errors);
    check::chain_layouts(&layers, input_layout, &mut errors);
    check::auto_needs_an_input_shape(&layers, &opts, &mut errors);
    check::forward_features_applies(&opts, input_layout, &mut errors);
    errors.handle(shape::check(&layers, opts.input_shape.as_ref(), input_layout));
    let loss = check::loss(&opts, &layers, &mut errors);
    let metrics: Vec<Metric> = opts.metrics.0.iter().filter_map(|m| errors.handle(metrics::parse(m))).collect();
    let optimizer = match &opts.optimizer {
        Some(expr) => errors.handle(OptimizerSpec::parse(expr)),
        None => Some(OptimizerSpec { kind: syn::Ident::new("adam", proc_macro2::Span::call_site()), lr: syn::parse_quote!(1e-3) }),
    };
    check::hparams_fields_need_hparams(&opts, &layers, optimizer.as_ref(), &mut errors);
    check::manual_optimization_has_a_step(&opts, &mut errors);
    let optimizer = errors.finish_with(optimizer)?.ok_or_else(|| darling::Error::custom("the optimizer could not be read"))?;
    Ok(ModuleModel { opts, layers, hparams_field: hparams, derive, input: input_layout, loss, metrics, optimizer })
}

#[cfg(test)]
mod tests {
    use super::layers::Op;
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
        assert_eq!(model.input, Layout::Map);
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
