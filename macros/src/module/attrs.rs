//! `#[lightning(...)]`: the struct-level options of `#[derive(LightningModule)]`.

use darling::FromDeriveInput;

/// Struct options, as darling reads them (unknown keys get a "did you mean" error).
#[derive(Debug, FromDeriveInput)]
#[darling(attributes(lightning), supports(struct_named))]
pub struct LightningOpts {
    /// The struct name.
    pub ident: syn::Ident,
    /// Its generics (must be empty).
    pub generics: syn::Generics,
    /// The `#[hyperparameters]` type stored in the model.
    pub hparams: Option<syn::Path>,
    /// `[C, H, W]` literal or the name of a hparams field holding it.
    pub input_shape: Option<syn::Expr>,
    /// `nll`, `cross_entropy`, or `Self::method` (a user loss `fn(&self, output, targets) -> Tensor<1>`).
    pub loss: Option<syn::Path>,
    /// Metrics logged by the generated steps.
    #[darling(default)]
    pub metrics: super::metrics::MetricList,
    /// `adam(lr = field_or_literal)`, `adamw(..)`, `sgd(..)`.
    pub optimizer: Option<syn::Expr>,
    /// A user constructor `fn(hparams, &Device) -> Result<Self>` replacing the generated `new`.
    pub init: Option<syn::Ident>,
    /// User method replacing the generated `forward_features`.
    pub forward_features: Option<syn::Ident>,
    /// User method replacing the generated `forward`.
    pub forward: Option<syn::Ident>,
    /// User method replacing the generated `training_step`.
    pub training_step: Option<syn::Ident>,
    /// User method replacing the generated `validation_step`.
    pub validation_step: Option<syn::Ident>,
    /// User method replacing the generated `test_step`.
    pub test_step: Option<syn::Ident>,
    /// User method replacing the generated `predict_step`.
    pub predict_step: Option<syn::Ident>,
    /// User method replacing the generated `configure_optimizers`.
    pub configure_optimizers: Option<syn::Ident>,
    /// `false`: manual optimization; `training_step` then names the manual step
    /// `fn(&mut ManualStep<'_, Self>, Batch) -> Result<()>`.
    pub automatic_optimization: Option<syn::LitBool>,
}

/// The optimizer named by `optimizer = kind(lr = value)`.
#[derive(Debug)]
pub struct OptimizerSpec {
    /// `adam`, `adamw` or `sgd`.
    pub kind: syn::Ident,
    /// The learning rate: a literal or a hparams field.
    pub lr: syn::Expr,
}

const OPTIMIZERS: [&str; 3] = ["adam", "adamw", "sgd"];

impl OptimizerSpec {
    /// Parses `adam(lr = learning_rate)`, `adam(1e-3)` or plain `adam` (lr 1e-3).
    pub fn parse(expr: &syn::Expr) -> darling::Result<Self> {
        let (func, args) = match expr {
            syn::Expr::Call(call) => (&*call.func, call.args.iter().collect::<Vec<_>>()),
            syn::Expr::Path(_) => (expr, Vec::new()),
            _ => return Err(darling::Error::custom("expected an optimizer such as `adam(lr = learning_rate)`").with_span(expr)),
        };
        let syn::Expr::Path(path) = func else {
            return Err(darling::Error::custom("expected an optimizer name: adam, adamw or sgd").with_span(func));
        };
        let kind = path.path.get_ident().cloned().ok_or_else(|| darling::Error::custom("expected adam, adamw or sgd").with_span(func))?;
        if !OPTIMIZERS.contains(&kind.to_string().as_str()) {
            return Err(darling::Error::unknown_value_with_alts(&kind.to_string(), OPTIMIZERS.iter()).with_span(&kind));
        }
        let lr = match args.as_slice() {
            [] => syn::parse_quote!(1e-3),
            [syn::Expr::Assign(assign)] if matches!(&*assign.left, syn::Expr::Path(p) if p.path.is_ident("lr")) => (*assign.right).clone(),
            [syn::Expr::Assign(assign)] => {
                return Err(darling::Error::custom("the optimizer takes `lr = ...`").with_span(&assign.left));
            }
            [value] => (*value).clone(),
            [_, extra, ..] => return Err(darling::Error::custom("the optimizer takes one argument, `lr = ...`").with_span(extra)),
        };
        Ok(OptimizerSpec { kind, lr })
    }
}

/// Parses the derive input's options.
pub fn parse(input: &syn::DeriveInput) -> darling::Result<LightningOpts> {
    LightningOpts::from_derive_input(input)
}

/// `#[layers(...)]`: the struct-level options of `#[derive(Layers)]`, the subset of
/// `#[lightning(...)]` that concerns the layers.
#[derive(Debug, FromDeriveInput)]
#[darling(attributes(layers), supports(struct_named))]
struct LayersOpts {
    ident: syn::Ident,
    generics: syn::Generics,
    /// The `#[hyperparameters]` type stored in the module.
    hparams: Option<syn::Path>,
    /// The input shape: a literal or the name of a hparams field holding it.
    input_shape: Option<syn::Expr>,
}

/// Parses `#[derive(Layers)]`'s options, as the derive's common options.
pub fn parse_layers(input: &syn::DeriveInput) -> darling::Result<LightningOpts> {
    let LayersOpts { ident, generics, hparams, input_shape } = LayersOpts::from_derive_input(input)?;
    Ok(LightningOpts {
        ident,
        generics,
        hparams,
        input_shape,
        loss: None,
        metrics: Default::default(),
        optimizer: None,
        init: None,
        forward_features: None,
        forward: None,
        training_step: None,
        validation_step: None,
        test_step: None,
        predict_step: None,
        configure_optimizers: None,
        automatic_optimization: None,
    })
}
