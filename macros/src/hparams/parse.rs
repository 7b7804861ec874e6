//! The hyperparameter struct as the macro sees it, and the compile-time checks on it.

use darling::FromMeta;

/// Options of one field's `#[hparam(...)]`.
#[derive(Debug, Default, FromMeta)]
struct HparamOptions {
    default: Option<RawExpr>,
    range: Option<syn::Expr>,
    choices: Option<syn::Expr>,
    skip: darling::util::Flag,
}

/// An expression exactly as written (darling would read a string literal's contents as code;
/// here `default = "adam"` is the string).
#[derive(Debug)]
struct RawExpr(syn::Expr);

impl FromMeta for RawExpr {
    fn from_expr(expr: &syn::Expr) -> darling::Result<Self> {
        Ok(RawExpr(expr.clone()))
    }
}

/// The allowed values from `choices = [a, b, ..]`.
#[derive(Debug, Clone)]
pub struct Choices {
    /// The values.
    pub values: Vec<syn::Expr>,
    /// The list as written, for messages.
    pub text: String,
    /// The list, for spans.
    pub expr: syn::Expr,
}

/// An inclusive or half-open numeric range from `range = LOW..=HIGH` (either end may be open).
#[derive(Debug, Clone)]
pub struct Range {
    /// Lower bound.
    pub low: Option<syn::Expr>,
    /// Upper bound.
    pub high: Option<syn::Expr>,
    /// `..=` rather than `..`.
    pub inclusive: bool,
    /// The range as written, for messages.
    pub text: String,
    /// The expression, for spans.
    pub expr: syn::Expr,
}

/// One field.
#[derive(Debug)]
pub struct HparamField {
    /// The field with `#[hparam]` removed.
    pub field: syn::Field,
    /// Its name.
    pub ident: syn::Ident,
    /// Default value, which makes the field optional in `new()` and in YAML.
    pub default: Option<syn::Expr>,
    /// Allowed range.
    pub range: Option<Range>,
    /// Allowed values.
    pub choices: Option<Choices>,
    /// `skip`: neither saved nor loaded; takes its default when loaded.
    pub skip: bool,
    /// The doc comment, one line per `///` line.
    pub doc: String,
}

/// The whole struct.
#[derive(Debug)]
pub struct HparamStruct {
    /// The input with the fields' `#[hparam]` attributes removed.
    pub input: syn::DeriveInput,
    /// The named fields.
    pub fields: Vec<HparamField>,
}

const NUMERIC: [&str; 14] = ["f32", "f64", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize"];

/// The primitive name of a field type (`f64`, `usize`...), if it is a plain path.
pub fn primitive(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => Some(p.path.segments[0].ident.to_string()),
        _ => None,
    }
}

/// Whether a field type is a numeric primitive (the only types `range` applies to).
pub fn is_numeric(ty: &syn::Type) -> bool {
    primitive(ty).is_some_and(|p| NUMERIC.contains(&p.as_str()))
}

/// Whether a field type is a float primitive.
pub fn is_float(ty: &syn::Type) -> bool {
    matches!(primitive(ty).as_deref(), Some("f32" | "f64"))
}

impl HparamStruct {
    /// Parses and checks, collecting every error.
    #[cfg(test)]
    pub fn parse(input: &syn::DeriveInput) -> darling::Result<Self> {
        match Self::parse_all(input) {
            (Some(model), None) => Ok(model),
            (_, Some(errors)) => Err(errors),
            (None, None) => Err(darling::Error::custom("unreachable: no model and no error")),
        }
    }

    /// Parses and checks: the struct as far as it could be read (so the expansion can still be
    /// emitted next to the errors, sparing the user knock-on errors) and every error found.
    pub fn parse_all(input: &syn::DeriveInput) -> (Option<Self>, Option<darling::Error>) {
        if !input.generics.params.is_empty() {
            let error = darling::Error::custom("#[hyperparameters] structs cannot be generic: hyperparameters are saved and loaded as plain values");
            return (None, Some(error.with_span(&input.generics)));
        }
        let mut errors = darling::Error::accumulator();
        let mut input = input.clone();
        let data = match &mut input.data {
            syn::Data::Struct(data) => data,
            syn::Data::Enum(e) => {
                let error = darling::Error::custom("#[hyperparameters] goes on a struct with named fields, not an enum; wrap the enum in a struct field");
                return (None, Some(with(errors, error.with_span(&e.enum_token))));
            }
            syn::Data::Union(u) => {
                let error = darling::Error::custom("#[hyperparameters] goes on a struct with named fields, not a union");
                return (None, Some(with(errors, error.with_span(&u.union_token))));
            }
        };
        let syn::Fields::Named(named) = &mut data.fields else {
            let error =
                darling::Error::custom("#[hyperparameters] needs named fields (`struct Config { lr: f64 }`): each field is a named setting in hparams.yaml");
            return (None, Some(with(errors, error.with_span(&data.fields))));
        };
        let mut fields = Vec::new();
        for field in named.named.iter_mut() {
            let Some(ident) = field.ident.clone() else { continue };
            let mut options = HparamOptions::default();
            let mut seen = false;
            let mut kept = Vec::new();
            for attr in field.attrs.drain(..) {
                if !attr.path().is_ident("hparam") {
                    kept.push(attr);
                    continue;
                }
                if seen {
                    errors.push(darling::Error::custom("duplicate #[hparam] attribute; put every option in one #[hparam(...)]").with_span(&attr));
                    continue;
                }
                seen = true;
                if let Some(o) = errors.handle(HparamOptions::from_meta(&attr.meta)) {
                    options = o;
                }
            }
            field.attrs = kept;
            let range = options.range.as_ref().and_then(|r| errors.handle(parse_range(r)));
            let choices = options.choices.as_ref().and_then(|c| errors.handle(parse_choices(c)));
            if options.skip.is_present() && options.default.is_none() {
                errors.push(
                    darling::Error::custom(format!(
                        "`skip` needs a `default = ...`: `{ident}` is not saved, so loading hparams.yaml or a checkpoint takes its default"
                    ))
                    .with_span(&syn::Ident::new("skip", options.skip.span())),
                );
            }
            let doc = doc_text(&field.attrs);
            let checked =
                HparamField { field: field.clone(), ident, default: options.default.map(|d| d.0), range, choices, skip: options.skip.is_present(), doc };
            errors.handle(checked.check());
            fields.push(checked);
        }
        (Some(HparamStruct { input, fields }), errors.finish().err())
    }
}

/// The errors collected so far plus `last`, as one error (finishing the accumulator).
pub fn with(mut errors: darling::error::Accumulator, last: darling::Error) -> darling::Error {
    errors.push(last);
    darling::Error::multiple(errors.into_inner())
}

fn parse_range(expr: &syn::Expr) -> darling::Result<Range> {
    let syn::Expr::Range(r) = expr else {
        return Err(darling::Error::custom("`range` takes a range such as `1e-6..=1.0`, `1..`, or `..=10`").with_span(expr));
    };
    let inclusive = matches!(r.limits, syn::RangeLimits::Closed(_));
    let text = quote::quote!(#expr).to_string().replace(' ', "");
    Ok(Range { low: r.start.as_deref().cloned(), high: r.end.as_deref().cloned(), inclusive, text, expr: expr.clone() })
}

fn parse_choices(expr: &syn::Expr) -> darling::Result<Choices> {
    let syn::Expr::Array(array) = expr else {
        return Err(darling::Error::custom("`choices` takes a list such as `[\"adam\", \"sgd\"]` or `[16, 32, 64]`").with_span(expr));
    };
    if array.elems.is_empty() {
        return Err(darling::Error::custom("`choices` is empty: no value would be valid").with_span(expr));
    }
    let text = array.elems.iter().map(|e| quote::quote!(#e).to_string().replace(' ', "")).collect::<Vec<_>>().join(", ");
    Ok(Choices { values: array.elems.iter().cloned().collect(), text: format!("[{text}]"), expr: expr.clone() })
}

/// The field's doc comment: its `///` lines, with the one leading space each has removed.
fn doc_text(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(syn::MetaNameValue { value: syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }), .. }) => Some(s.value()),
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').unwrap_or(&line).trim_end().to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

/// A literal as comparable text (`"adam"` → `adam`, `-1.0` → `-1`, `Kind::A` → `Kind::A`), for
/// checking a default against its choices; `None` when it is not a literal or a path.
fn comparable(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(format!("str:{}", s.value())),
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => Some(format!("bool:{}", b.value)),
        syn::Expr::Path(p) => Some(format!("path:{}", quote::quote!(#p).to_string().replace(' ', ""))),
        _ => literal_value(expr).map(|v| format!("num:{v}")),
    }
}

/// Whether an expression can be evaluated in a `const fn`: literals (not strings), paths to
/// constants or unit variants, and arrays, tuples, casts and arithmetic of those.
pub fn const_evaluable(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit, .. }) => !matches!(lit, syn::Lit::Str(_) | syn::Lit::ByteStr(_) | syn::Lit::CStr(_)),
        syn::Expr::Path(_) => true,
        syn::Expr::Unary(u) => const_evaluable(&u.expr),
        syn::Expr::Binary(b) => const_evaluable(&b.left) && const_evaluable(&b.right),
        syn::Expr::Paren(p) => const_evaluable(&p.expr),
        syn::Expr::Group(g) => const_evaluable(&g.expr),
        syn::Expr::Cast(c) => const_evaluable(&c.expr),
        syn::Expr::Array(a) => a.elems.iter().all(const_evaluable),
        syn::Expr::Tuple(t) => t.elems.iter().all(const_evaluable),
        syn::Expr::Repeat(r) => const_evaluable(&r.expr),
        _ => false,
    }
}

/// Whether a field type is `String`.
pub fn is_string(ty: &syn::Type) -> bool {
    primitive(ty).as_deref() == Some("String")
}

/// A numeric literal's value (with an optional leading minus), if the expression is one.
pub fn literal_value(expr: &syn::Expr) -> Option<f64> {
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Float(f), .. }) => f.base10_parse().ok(),
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<f64>().ok(),
        syn::Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => literal_value(expr).map(|v| -v),
        syn::Expr::Paren(p) => literal_value(&p.expr),
        _ => None,
    }
}

/// `f64::NAN`, `f32::INFINITY`, `f64::NEG_INFINITY`, `1.0 / 0.0`...: a default that can never be valid.
fn non_finite(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Path(p) => p.path.segments.last().is_some_and(|s| matches!(s.ident.to_string().as_str(), "NAN" | "INFINITY" | "NEG_INFINITY")),
        syn::Expr::Unary(u) => non_finite(&u.expr),
        syn::Expr::Binary(syn::ExprBinary { op: syn::BinOp::Div(_), right, .. }) => literal_value(right) == Some(0.0),
        syn::Expr::Paren(p) => non_finite(&p.expr),
        _ => false,
    }
}

impl HparamField {
    fn check(&self) -> darling::Result<()> {
        let mut errors = darling::Error::accumulator();
        let ty = &self.field.ty;
        let name = &self.ident;
        if let Some(default) = &self.default
            && is_float(ty)
            && non_finite(default)
        {
            errors.push(darling::Error::custom(format!("default of `{name}` is not a finite number; hyperparameters must be finite")).with_span(default));
        }
        if let Some(range) = &self.range {
            if !is_numeric(ty) {
                errors.push(
                    darling::Error::custom(format!(
                        "`range` needs a numeric field, but `{name}` is `{}`; remove `range` or use a number type",
                        quote::quote!(#ty).to_string().replace(' ', "")
                    ))
                    .with_span(ty),
                );
            }
            let (low, high) = (range.low.as_ref().and_then(literal_value), range.high.as_ref().and_then(literal_value));
            let empty = matches!((low, high), (Some(l), Some(h)) if fulmen_rules::range::is_empty(&l, &h, range.inclusive));
            if empty {
                errors.push(
                    darling::Error::custom(format!("range `{}` of `{name}` is empty: its start is not below its end", range.text)).with_span(&range.expr),
                );
            }
            if !empty
                && let Some(default) = &self.default
                && let Some(value) = literal_value(default)
                && fulmen_rules::range::outside(&value, low.as_ref(), high.as_ref(), range.inclusive)
            {
                errors.push(darling::Error::custom(format!("default {value} of `{name}` is outside its range `{}`", range.text)).with_span(default));
            }
        }
        if let Some(choices) = &self.choices
            && let Some(default) = &self.default
            && let Some(value) = comparable(default)
            && choices.values.iter().all(|c| comparable(c).is_some())
            && !choices.values.iter().any(|c| comparable(c).as_ref() == Some(&value))
        {
            errors.push(
                darling::Error::custom(format!(
                    "default `{}` of `{name}` is not one of its choices {}",
                    quote::quote!(#default).to_string().replace(' ', ""),
                    choices.text
                ))
                .with_span(default),
            );
        }
        errors.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(input: syn::DeriveInput) -> Vec<String> {
        match HparamStruct::parse(&input) {
            Ok(_) => Vec::new(),
            Err(e) => e.flatten().into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_struct_keeps_defaults_and_ranges() {
        let parsed = HparamStruct::parse(&syn::parse_quote! {
            struct C { n: usize, #[hparam(default = 2e-4, range = 1e-6..=1.0)] lr: f64 }
        })
        .expect("valid");
        assert!(parsed.fields[0].default.is_none());
        let range = parsed.fields[1].range.as_ref().expect("range");
        assert!(range.inclusive);
        assert_eq!(range.text, "1e-6..=1.0");
    }

    #[test]
    fn every_field_error_is_collected() {
        let errors = errors_of(syn::parse_quote! {
            struct C {
                #[hparam(default = 5.0, range = 0.0..=1.0)] a: f64,
                #[hparam(default = f64::NAN)] b: f64,
                #[hparam(range = 1..3)] c: String,
                #[hparam(rnage = 1..3)] d: u32,
                #[hparam(range = 3..3)] e: u32,
            }
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        let all = errors.join("\n");
        assert!(all.contains("outside its range"), "{all}");
        assert!(all.contains("not a finite number"), "{all}");
        assert!(all.contains("numeric field"), "{all}");
        assert!(all.contains("rnage") && all.contains("range"), "{all}");
        assert!(all.contains("is empty"), "{all}");
    }

    #[test]
    fn enums_tuples_and_generics_are_rejected() {
        assert_eq!(errors_of(syn::parse_quote! { enum E { A } }).len(), 1);
        assert_eq!(errors_of(syn::parse_quote! { struct T(f64); }).len(), 1);
        assert_eq!(errors_of(syn::parse_quote! { struct G<T> { t: T } }).len(), 1);
    }

    #[test]
    fn choices_skip_and_docs() {
        let parsed = HparamStruct::parse(&syn::parse_quote! {
            struct C {
                /// Which optimizer.
                ///
                /// Adam by default.
                #[hparam(default = "adam", choices = ["adam", "sgd"])] opt: String,
                #[hparam(default = 2, skip)] workers: usize,
            }
        })
        .expect("valid");
        let opt = &parsed.fields[0];
        assert!(matches!(&opt.default, Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(_), .. }))), "a string default stays a string");
        assert_eq!(opt.choices.as_ref().map(|c| c.text.as_str()), Some("[\"adam\", \"sgd\"]"));
        assert_eq!(opt.doc, "Which optimizer.\n\nAdam by default.");
        assert!(parsed.fields[1].skip && !opt.skip);

        let errors = errors_of(syn::parse_quote! {
            struct C {
                #[hparam(default = "adamw", choices = ["adam", "sgd"])] a: String,
                #[hparam(default = 3, choices = [1, 2])] b: u32,
                #[hparam(choices = 1..3)] c: u32,
                #[hparam(choices = [])] d: u32,
                #[hparam(skip)] e: u32,
            }
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        let all = errors.join("\n");
        for part in ["`\"adamw\"` of `a`", "`3` of `b`", "takes a list", "is empty", "`skip` needs a `default"] {
            assert!(all.contains(part), "{part}: {all}");
        }
    }

    #[test]
    fn const_evaluable_defaults() {
        for yes in
            [quote::quote!(1e-3), quote::quote!(-1), quote::quote!([3, 32, 32]), quote::quote!(f64::EPSILON), quote::quote!(Kind::A), quote::quote!(2 * 64)]
        {
            assert!(const_evaluable(&syn::parse2(yes.clone()).unwrap()), "{yes}");
        }
        for no in [quote::quote!("adam"), quote::quote!(String::from("adam")), quote::quote!(vec![1]), quote::quote!(x.into())] {
            assert!(!const_evaluable(&syn::parse2(no.clone()).unwrap()), "{no}");
        }
    }
}
