//! `metrics(...)`: `accuracy` (the batch mean), `Self::method`, and streaming metrics computed
//! over the epoch: `accuracy(average = micro | macro | weighted)` or `accuracy(top_k = 5)`,
//! `precision`, `recall`, `f1`, `fbeta(beta = 2)`, `auroc`, `average_precision`, each with
//! `average = micro | macro | weighted` (default macro; accuracy's default is micro; the
//! ranking metrics have no micro).

use darling::FromMeta;
use darling::ast::NestedMeta;
use proc_macro2::TokenStream;
use quote::quote;

/// The items of `metrics(...)` as written.
#[derive(Debug, Default)]
pub struct MetricList(pub Vec<syn::Meta>);

impl FromMeta for MetricList {
    fn from_list(items: &[NestedMeta]) -> darling::Result<Self> {
        let mut errors = darling::Error::accumulator();
        let metas = items
            .iter()
            .filter_map(|item| match item {
                NestedMeta::Meta(meta) => Some(meta.clone()),
                NestedMeta::Lit(lit) => {
                    errors.push(darling::Error::custom("expected a metric such as `accuracy` or `f1(average = macro)`").with_span(lit));
                    None
                }
            })
            .collect();
        errors.finish_with(MetricList(metas))
    }
}

/// A metric the generated steps log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// Top-1 accuracy of each batch, logged as `<stage>_acc`.
    Accuracy,
    /// The user's `Self::method(&self, output, targets) -> Tensor<1>`, logged as `<stage>_<method>`.
    Method(syn::Path),
    /// A streaming metric, computed over the epoch.
    Streaming(Streaming),
}

/// A streaming metric and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streaming {
    /// `accuracy`, `precision`, `recall`, `f1` or `fbeta`.
    pub kind: syn::Ident,
    /// `micro`, `macro` or `weighted`.
    pub average: Option<syn::Ident>,
    /// F-beta's beta.
    pub beta: Option<syn::Expr>,
    /// Accuracy's k.
    pub top_k: Option<syn::Expr>,
}

/// `key = value` where the value may be a keyword (`average = macro`).
struct Arg {
    key: syn::Ident,
    value: ArgValue,
}

enum ArgValue {
    Word(syn::Ident),
    Expr(syn::Expr),
}

impl syn::parse::Parse for Arg {
    fn parse(input: syn::parse::ParseStream) -> syn::Result<Self> {
        use syn::ext::IdentExt;
        let key = syn::Ident::parse_any(input)?;
        input.parse::<syn::Token![=]>()?;
        let value = if input.peek(syn::Ident::peek_any) && !input.peek2(syn::Token![::]) {
            ArgValue::Word(syn::Ident::parse_any(input)?)
        } else {
            ArgValue::Expr(input.parse()?)
        };
        Ok(Arg { key, value })
    }
}

const NAMES: [&str; 7] = ["accuracy", "precision", "recall", "f1", "fbeta", "auroc", "average_precision"];
const AVERAGES: [&str; 3] = ["micro", "macro", "weighted"];

/// Reads one item of `metrics(...)`.
pub fn parse(meta: &syn::Meta) -> darling::Result<Metric> {
    let path = meta.path();
    if path.segments.len() == 2 && path.segments[0].ident == "Self" && matches!(meta, syn::Meta::Path(_)) {
        return Ok(Metric::Method(path.clone()));
    }
    let Some(kind) = path.get_ident().filter(|i| NAMES.contains(&i.to_string().as_str())) else {
        let name = quote!(#path).to_string().replace(' ', "");
        return Err(darling::Error::unknown_value_with_alts(&name, NAMES.iter().chain(&["Self::method"])).with_span(path));
    };
    let mut spec = Streaming { kind: kind.clone(), average: None, beta: None, top_k: None };
    let args = match meta {
        syn::Meta::Path(_) if kind == "accuracy" => return Ok(Metric::Accuracy),
        syn::Meta::Path(_) if kind == "fbeta" => return Err(darling::Error::custom("`fbeta` needs its beta: `fbeta(beta = 2)`").with_span(kind)),
        syn::Meta::Path(_) => return Ok(Metric::Streaming(spec)),
        syn::Meta::NameValue(nv) => return Err(darling::Error::custom("write metric options in parentheses: `f1(average = macro)`").with_span(&nv.eq_token)),
        syn::Meta::List(list) => list.parse_args_with(syn::punctuated::Punctuated::<Arg, syn::Token![,]>::parse_terminated)?,
    };
    let mut errors = darling::Error::accumulator();
    for arg in args {
        let key = arg.key.to_string();
        let expr = |value: &ArgValue| match value {
            ArgValue::Word(w) => syn::parse_quote!(#w),
            ArgValue::Expr(e) => e.clone(),
        };
        match key.as_str() {
            "average" => match &arg.value {
                ArgValue::Word(w) if AVERAGES.contains(&w.to_string().as_str()) => spec.average = Some(w.clone()),
                ArgValue::Word(w) => errors.push(darling::Error::custom("`average` is `micro`, `macro` or `weighted`").with_span(w)),
                ArgValue::Expr(e) => errors.push(darling::Error::custom("`average` is `micro`, `macro` or `weighted`").with_span(e)),
            },
            "beta" if kind == "fbeta" => spec.beta = Some(expr(&arg.value)),
            "top_k" if kind == "accuracy" => spec.top_k = Some(expr(&arg.value)),
            _ => {
                let allowed: &[&str] = match kind.to_string().as_str() {
                    "fbeta" => &["average", "beta"],
                    "accuracy" => &["average", "top_k"],
                    _ => &["average"],
                };
                errors.push(darling::Error::unknown_field_with_alts(&key, allowed.iter()).with_span(&arg.key));
            }
        }
    }
    if kind == "fbeta" && spec.beta.is_none() {
        errors.push(darling::Error::custom("`fbeta` needs its beta: `fbeta(beta = 2)`").with_span(kind));
    }
    if (kind == "auroc" || kind == "average_precision") && spec.average.as_ref().is_some_and(|a| a == "micro") {
        errors.push(darling::Error::custom("ranking metrics average `macro` or `weighted`, not `micro`").with_span(kind));
    }
    if spec.top_k.is_some() && spec.average.as_ref().is_some_and(|a| a != "micro") {
        errors.push(darling::Error::custom("top-k accuracy is micro-averaged only; drop `average`").with_span(kind));
    }
    errors.finish_with(Metric::Streaming(spec))
}

impl Streaming {
    /// The expression building the metric for `classes` classes.
    pub fn constructor(&self, p: &TokenStream) -> TokenStream {
        let average = self.average.as_ref().map(|a| {
            let variant = syn::Ident::new(&capitalized(&a.to_string()), a.span());
            quote!(.average(#p::metrics::Average::#variant))
        });
        match self.kind.to_string().as_str() {
            "accuracy" => {
                let top_k = self.top_k.as_ref().map(|k| quote!(.top_k((#k) as usize)));
                quote!(#p::metrics::Accuracy::new(classes) #average #top_k)
            }
            "precision" => quote!(#p::metrics::Precision::new(classes) #average),
            "recall" => quote!(#p::metrics::Recall::new(classes) #average),
            "f1" => quote!(#p::metrics::f1(classes) #average),
            "auroc" => quote!(#p::metrics::Auroc::new(classes) #average),
            "average_precision" => quote!(#p::metrics::AveragePrecision::new(classes) #average),
            _ => {
                let beta = self.beta.clone().unwrap_or_else(|| syn::parse_quote!(1.0));
                quote!(#p::metrics::FBeta::new(classes, (#beta) as f64) #average)
            }
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(list: syn::Meta) -> (Vec<Metric>, Vec<String>) {
        let syn::Meta::List(list) = list else { unreachable!("a list") };
        let items = NestedMeta::parse_meta_list(list.tokens).expect("items");
        let metas = MetricList::from_list(&items).expect("metas").0;
        let mut errors = Vec::new();
        let metrics = metas.iter().filter_map(|m| parse(m).map_err(|e| errors.extend(e.flatten().into_iter().map(|e| e.to_string()))).ok()).collect();
        (metrics, errors)
    }

    #[test]
    fn streaming_metrics_and_their_options() {
        let (metrics, errors) = parse_all(syn::parse_quote!(metrics(accuracy, f1, fbeta(beta = 2, average = weighted), accuracy(top_k = 5), Self::mine)));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(metrics[0], Metric::Accuracy);
        assert!(matches!(&metrics[1], Metric::Streaming(s) if s.kind == "f1" && s.average.is_none()));
        assert!(matches!(&metrics[2], Metric::Streaming(s) if s.average.as_ref().is_some_and(|a| a == "weighted") && s.beta.is_some()));
        assert!(matches!(&metrics[4], Metric::Method(_)));
        let code = match &metrics[3] {
            Metric::Streaming(s) => s.constructor(&quote!(p)).to_string(),
            other => panic!("{other:?}"),
        };
        assert!(code.contains("top_k") && code.contains("Accuracy"), "{code}");

        let (_, errors) = parse_all(syn::parse_quote!(metrics(f2, fbeta, f1(average = mean), precision(top_k = 2), accuracy(top_k = 2, average = macro))));
        assert_eq!(errors.len(), 5, "{errors:#?}");
        let all = errors.join("\n");
        for part in ["f2", "needs its beta", "`micro`, `macro` or `weighted`", "top_k", "micro-averaged only"] {
            assert!(all.contains(part), "{part}: {all}");
        }
    }
}
