//! The model of a derive's input: its fields, each `#[layer(...)]` chain read against the op
//! table, and the field holding the hyperparameters. Reading reports only what stops a field
//! from being read (a chain that does not parse, an unknown op); [`super::check`] holds the
//! rules.

use darling::error::Accumulator;
use syn::spanned::Spanned;

use super::attrs::LightningOpts;
use super::layers::{Op, RawLayer, Size};
use super::ops::{self, OpDescriptor};

/// A field built from a `#[layer(...)]` spec.
#[derive(Debug)]
pub struct LayerField {
    /// Field name.
    pub ident: syn::Ident,
    /// Its declared type.
    pub ty: syn::Type,
    /// Where its `#[layer(...)]` is.
    pub spec: proc_macro2::Span,
    /// The ops, the first one building the field's module.
    pub ops: Vec<Op>,
    /// Each op's descriptor.
    pub descriptors: Vec<&'static OpDescriptor>,
    /// Every size its ops mention.
    pub sizes: Vec<Size>,
    /// Whether a later `residual(..)` adds this field's input.
    pub skipped: bool,
}

/// A derive input's fields, as read.
#[derive(Debug, Default)]
pub struct Fields {
    /// The fields with layers, in declaration order.
    pub layers: Vec<LayerField>,
    /// The field holding the hyperparameters.
    pub hparams: Option<syn::Ident>,
    /// Fields with no `#[layer(...)]` that do not hold the hyperparameters.
    pub plain: Vec<syn::Ident>,
    /// Fields with more than one `#[layer(...)]`: the second one.
    pub repeated: Vec<proc_macro2::Span>,
}

/// Reads a struct's named fields: its layer chains, its hyperparameters field, the rest.
pub fn read(named: &syn::FieldsNamed, opts: &LightningOpts, errors: &mut Accumulator) -> Fields {
    let mut fields = Fields::default();
    for field in &named.named {
        let Some(ident) = field.ident.clone() else { continue };
        let specs: Vec<_> = field.attrs.iter().filter(|a| a.path().is_ident("layer")).collect();
        fields.repeated.extend(specs.iter().skip(1).map(|s| s.span()));
        let Some(spec) = specs.first() else {
            let holds_hparams = opts.hparams.as_ref().is_some_and(|h| same_type(&field.ty, h)) || ident == "hparams";
            if holds_hparams && opts.hparams.is_some() {
                fields.hparams = Some(ident);
            } else {
                fields.plain.push(ident);
            }
            continue;
        };
        let Some(raw) = errors.handle(spec.parse_args::<RawLayer>().map_err(darling::Error::from)) else { continue };
        let resolved: Vec<_> = raw.0.iter().filter_map(|op| errors.handle(op.resolve())).collect();
        if resolved.len() != raw.0.len() {
            continue;
        }
        let descriptors = raw.0.iter().filter_map(|op| ops::find(&op.name.to_string())).collect();
        let sizes = resolved.iter().flat_map(|r| r.sizes.iter().cloned()).collect();
        let ops = resolved.into_iter().map(|r| r.op).collect();
        fields.layers.push(LayerField { ident, ty: field.ty.clone(), spec: spec.span(), ops, descriptors, sizes, skipped: false });
    }
    fields
}

/// Without `input_shape`, `auto` reads the hyperparameters' `input_shape` field (a missing field
/// is then reported at the `auto`).
pub fn default_input_shape(opts: &mut LightningOpts, layers: &[LayerField]) {
    if opts.input_shape.is_some() || opts.hparams.is_none() {
        return;
    }
    let auto = layers.iter().flat_map(|l| &l.sizes).find_map(|s| match s {
        Size::Auto(auto) => Some(auto.clone()),
        _ => None,
    });
    if let Some(auto) = auto {
        let field = syn::Ident::new("input_shape", auto.span());
        opts.input_shape = Some(syn::parse_quote!(#field));
    }
}

fn last_segment(ty: &syn::Type) -> Option<&syn::Ident> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

/// A type as written, without spaces.
pub fn type_text(ty: &syn::Type) -> String {
    quote::quote!(#ty).to_string().replace(' ', "")
}

/// Whether the type's last path segment is `name`.
pub fn type_named(ty: &syn::Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|i| i == name)
}

fn same_type(ty: &syn::Type, path: &syn::Path) -> bool {
    match (last_segment(ty), path.segments.last()) {
        (Some(a), Some(b)) => *a == b.ident,
        _ => false,
    }
}
