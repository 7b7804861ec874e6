//! `#[hyperparameters]`: parse the struct and its `#[hparam]` options, check them, generate.

mod codegen;
mod parse;

use proc_macro2::TokenStream;

pub use parse::HparamStruct;

/// Expands `#[hyperparameters]` on `item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = darling::Error::accumulator();
    if !attr.is_empty() {
        errors.push(darling::Error::custom("#[hyperparameters] takes no arguments; put options on fields with #[hparam(...)]").with_span(&attr));
    }
    let parsed = match syn::parse2::<syn::DeriveInput>(item.clone()) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let model = errors.handle(HparamStruct::parse(&parsed));
    let body = match &model {
        Some(model) => codegen::generate(model),
        None => item,
    };
    match errors.finish() {
        Ok(()) => body,
        Err(e) => {
            let errors = e.write_errors();
            quote::quote! { #body #errors }
        }
    }
}
