//! fulmen's macros: `#[hyperparameters]`, `#[derive(LightningModule)]` and `#[derive(Layers)]`.
//!
//! Each entry point is a thin wrapper over a function on `proc_macro2` tokens: parse (darling for
//! attributes, a small syn grammar for layer specs), check, then generate. Errors are collected,
//! never panicked, and the impls are still emitted next to them so the user sees only real errors.

// syn's syntax trees are large (an Expr is 240 bytes) and live for one expansion: boxing
// them in every enum that holds one would buy nothing.
#![allow(clippy::large_enum_variant)]

use proc_macro::TokenStream;

mod hparams;
mod module;

/// Turns a struct into a hyperparameter set: serde, Debug, Clone, `new(required…)`, `with_*`
/// setters for defaulted fields, `validate()` and the `Hyperparameters` trait.
///
/// Field options: `#[hparam(default = EXPR, range = LOW..=HIGH)]`.
#[proc_macro_attribute]
pub fn hyperparameters(attr: TokenStream, item: TokenStream) -> TokenStream {
    hparams::expand(attr.into(), item.into()).into()
}

/// Implements `LightningModule` for a Burn module struct whose fields carry `#[layer(...)]` specs.
///
/// Struct options: `#[lightning(hparams = T, input_shape = [C, H, W] | field, loss = nll |
/// cross_entropy, metrics(accuracy), optimizer = adam(lr = field), forward = method, ...)]`.
#[proc_macro_derive(LightningModule, attributes(lightning, layer))]
pub fn derive_lightning_module(input: TokenStream) -> TokenStream {
    module::expand(input.into()).into()
}

/// A Burn module's `new` and `forward` from its `#[layer(...)]` chains, as
/// `#[derive(LightningModule)]` writes them, without the steps: a part of a model (a GAN's
/// generator and discriminator) that a LightningModule holds. Options go in
/// `#[layers(hparams = Config, input_shape = [..])]`; `forward` returns the layout the chain
/// ends in (a generator's `[B, C, H, W]` images, a discriminator's `[B, 1]` scores).
#[proc_macro_derive(Layers, attributes(layers, layer))]
pub fn derive_layers(input: TokenStream) -> TokenStream {
    module::expand_layers(input.into()).into()
}
