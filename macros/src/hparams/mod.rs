//! `#[hyperparameters]`: parse the struct and its `#[hparam]` options, check them, generate.

mod codegen;
mod parse;

use proc_macro2::TokenStream;

pub use parse::{HparamStruct, literal_value};

/// Expands `#[hyperparameters]` on `item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = match syn::parse2::<syn::DeriveInput>(item) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = darling::Error::accumulator();
    if !attr.is_empty() {
        errors.push(darling::Error::custom("#[hyperparameters] takes no arguments; put options on fields with #[hparam(...)]").with_span(&attr));
    }
    let (model, found) = HparamStruct::parse_all(&parsed);
    if let Some(found) = found {
        errors.push(found);
    }
    let body = match &model {
        Some(model) => codegen::generate(model),
        None => strip_hparam_attrs(parsed),
    };
    match errors.finish() {
        Ok(()) => body,
        Err(e) => {
            let errors = e.write_errors();
            quote::quote! { #body #errors }
        }
    }
}

/// The item without its `#[hparam]` attributes (emitted when it cannot be expanded, so the
/// only errors are the real ones).
fn strip_hparam_attrs(mut item: syn::DeriveInput) -> TokenStream {
    if let syn::Data::Struct(data) = &mut item.data {
        for field in data.fields.iter_mut() {
            field.attrs.retain(|a| !a.path().is_ident("hparam"));
        }
    }
    quote::quote!(#item)
}
