//! The `#[layer(...)]` grammar: a comma-separated chain of ops, the first of which builds the
//! field's module (`conv2d(3 -> 32, kernel = 3)`, `linear(auto -> 512)`, `batch_norm`), the rest
//! applied after it (`relu`, `max_pool(2)`, `log_softmax`, ...).

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Ident, LitInt, Token};

use super::ops::{self, Activation};

/// A size: a literal, a hparams field, or `auto` (inferred from the shapes).
#[derive(Debug, Clone)]
pub enum Size {
    /// Inferred (`auto`).
    Auto(Ident),
    /// A literal.
    Lit(LitInt),
    /// A field of the hyperparameters.
    Field(Ident),
}

impl quote::ToTokens for Size {
    fn to_tokens(&self, tokens: &mut proc_macro2::TokenStream) {
        match self {
            Size::Lit(lit) => lit.to_tokens(tokens),
            Size::Field(ident) | Size::Auto(ident) => ident.to_tokens(tokens),
        }
    }
}

impl Parse for Size {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(LitInt) {
            return Ok(Size::Lit(input.parse()?));
        }
        let ident: Ident = input.parse().map_err(|e| syn::Error::new(e.span(), "expected a size: a number, a hyperparameter field, or `auto`"))?;
        Ok(if ident == "auto" { Size::Auto(ident) } else { Size::Field(ident) })
    }
}

/// One argument of an op.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `in -> out`.
    Sizes(Size, Size),
    /// `key = value`.
    Named(Ident, syn::Expr),
    /// A bare value.
    Positional(syn::Expr),
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let fork = input.fork();
        if fork.parse::<Size>().is_ok() && fork.peek(Token![->]) {
            let from: Size = input.parse()?;
            input.parse::<Token![->]>()?;
            return Ok(Arg::Sizes(from, input.parse()?));
        }
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            return Ok(Arg::Named(key, input.parse()?));
        }
        Ok(Arg::Positional(input.parse()?))
    }
}

/// One op as written: `name` or `name(args)`.
#[derive(Debug, Clone)]
pub struct RawOp {
    /// The op name.
    pub name: Ident,
    /// Its arguments.
    pub args: Vec<Arg>,
}

impl Parse for RawOp {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        let mut args = Vec::new();
        if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            args = Punctuated::<Arg, Token![,]>::parse_terminated(&content)?.into_iter().collect();
        }
        Ok(RawOp { name, args })
    }
}

/// The chain in one `#[layer(...)]`.
#[derive(Debug, Clone)]
pub struct RawLayer(pub Vec<RawOp>);

impl Parse for RawLayer {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        Ok(RawLayer(Punctuated::<RawOp, Token![,]>::parse_terminated(input)?.into_iter().collect()))
    }
}

/// Padding of a window.
#[derive(Debug, Clone)]
pub enum Pad {
    /// None.
    Valid,
    /// Keep the size.
    Same,
    /// Explicit, per side.
    Explicit(Size),
}

/// A window's geometry.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    /// Kernel side.
    pub kernel: Size,
    /// Stride.
    pub stride: Size,
    /// Padding.
    pub padding: Pad,
    /// Dilation.
    pub dilation: Size,
}

/// A dropout probability.
#[derive(Debug, Clone)]
pub enum DropRate {
    /// A literal in `[0, 1)`.
    Lit(syn::Expr),
    /// A field of the hyperparameters.
    Field(Ident),
}

/// An op as read, and every size it mentions.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The op.
    pub op: Op,
    /// Its sizes (literals, hyperparameter fields, `auto`), defaults included.
    pub sizes: Vec<Size>,
}

/// An op after semantic checks.
#[derive(Debug, Clone)]
pub enum Op {
    /// Builds a `Conv2d`.
    Conv2d { input: Size, output: Size, window: WindowSpec, groups: Size, bias: bool },
    /// Builds a `ConvTranspose2d` (PyTorch's ConvTranspose2d).
    ConvTranspose2d { input: Size, output: Size, window: WindowSpec, output_padding: Size, groups: Size, bias: bool },
    /// Nearest-neighbour upsampling by an integer scale.
    Upsample(Size),
    /// Builds a `Conv1d` over `[B, C, L]` sequences.
    Conv1d { input: Size, output: Size, window: WindowSpec, groups: Size, bias: bool },
    /// Builds an `Embedding` of token ids into channels.
    Embedding { vocab: Size, dim: Size },
    /// Builds a `Linear`.
    Linear { input: Size, output: Size, bias: bool },
    /// Builds a `BatchNorm` over the incoming channels.
    BatchNorm,
    /// Builds a `LayerNorm` over the incoming features (or a sequence's channels).
    LayerNorm,
    /// Builds a `GroupNorm` of this many groups over the incoming channels.
    GroupNorm(Size),
    /// Max pooling over a sequence.
    MaxPool1d(WindowSpec),
    /// Adds the input of the named layer field (a skip connection).
    Residual(Ident),
    /// Max pooling.
    MaxPool(WindowSpec),
    /// Average pooling.
    AvgPool(WindowSpec),
    /// Adaptive average pooling to `[h, w]`.
    AdaptiveAvgPool(Size, Size),
    /// Flatten `[B, C, H, W]` to `[B, C*H*W]`.
    Flatten,
    /// Dropout with a probability: a float literal or a hparams field (active only while
    /// training, i.e. on an autodiff device).
    Dropout(DropRate),
    /// An activation, with `leaky_relu`'s slope.
    Activation(Activation, Option<syn::Expr>),
}

struct ArgReader<'a> {
    op: &'a RawOp,
    positional: Vec<&'a syn::Expr>,
    sizes: Option<(Size, Size)>,
    named: Vec<(&'a Ident, &'a syn::Expr)>,
    /// A misspelt key was reported: a "missing key" error would only repeat it.
    misspelt: bool,
    /// Every size read, for the checks that look at all of an op's sizes.
    read: Vec<Size>,
    errors: darling::error::Accumulator,
}

impl<'a> ArgReader<'a> {
    fn new(op: &'a RawOp, allowed: &[&str]) -> Self {
        let mut reader =
            ArgReader { op, positional: Vec::new(), sizes: None, named: Vec::new(), misspelt: false, read: Vec::new(), errors: darling::Error::accumulator() };
        for arg in &op.args {
            match arg {
                Arg::Sizes(a, b) => reader.sizes = Some((a.clone(), b.clone())),
                Arg::Positional(e) => reader.positional.push(e),
                Arg::Named(key, value) => {
                    let name = key.to_string();
                    if !allowed.contains(&name.as_str()) {
                        reader.misspelt = true;
                        reader.errors.push(darling::Error::unknown_field_with_alts(&name, allowed.iter()).with_span(key));
                    } else if reader.named.iter().any(|(k, _)| *k == key) {
                        reader.errors.push(darling::Error::duplicate_field(&name).with_span(key));
                    } else {
                        reader.named.push((key, value));
                    }
                }
            }
        }
        reader
    }

    fn named(&self, key: &str) -> Option<&'a syn::Expr> {
        self.named.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn size(&mut self, key: &str, position: Option<usize>, default: Option<u64>) -> Size {
        let size = self.size_of(key, position, default);
        self.read.push(size.clone());
        size
    }

    fn size_of(&mut self, key: &str, position: Option<usize>, default: Option<u64>) -> Size {
        let expr = self.named(key).or_else(|| position.and_then(|p| self.positional.get(p).copied()));
        match expr {
            Some(e) => match expr_size(e) {
                Some(size) => size,
                None => {
                    self.errors.push(darling::Error::custom(format!("`{key}` must be a number or a hyperparameter field")).with_span(e));
                    Size::Lit(LitInt::new("1", e.span()))
                }
            },
            None => match default {
                Some(d) => Size::Lit(LitInt::new(&d.to_string(), self.op.name.span())),
                None => {
                    if !self.misspelt {
                        self.errors.push(darling::Error::custom(format!("`{}` needs `{key} = ...`", self.op.name)).with_span(&self.op.name));
                    }
                    Size::Lit(LitInt::new("1", self.op.name.span()))
                }
            },
        }
    }

    fn flag(&mut self, key: &str, default: bool) -> bool {
        match self.named(key) {
            None => default,
            Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. })) => b.value,
            Some(e) => {
                self.errors.push(darling::Error::custom(format!("`{key}` must be `true` or `false`")).with_span(e));
                default
            }
        }
    }

    /// The padding; `no_same` names the op (as the rules do) when it has no `same` padding.
    fn padding(&mut self, no_same: Option<&'static str>) -> Pad {
        let allow_same = no_same.is_none();
        match self.named("padding") {
            None => Pad::Valid,
            Some(syn::Expr::Path(p)) if p.path.is_ident("valid") => Pad::Valid,
            Some(syn::Expr::Path(p)) if p.path.is_ident("same") && allow_same => Pad::Same,
            Some(e @ syn::Expr::Path(p)) if p.path.is_ident("same") => {
                let op = no_same.unwrap_or_default();
                self.errors.push(darling::Error::custom(fulmen_rules::shape::ShapeError::NoSamePadding { op }).with_span(e));
                Pad::Valid
            }
            Some(e) => match expr_size(e) {
                Some(size) if !matches!(size, Size::Auto(_)) => {
                    self.read.push(size.clone());
                    Pad::Explicit(size)
                }
                _ => {
                    let options = if allow_same { "a number, `same` or `valid`" } else { "a number or `valid`" };
                    self.errors.push(darling::Error::custom(format!("`padding` must be {options}")).with_span(e));
                    Pad::Valid
                }
            },
        }
    }

    fn sizes(&mut self) -> (Size, Size) {
        let (from, to) = self.sizes.take().unwrap_or_else(|| {
            self.errors.push(
                darling::Error::custom(format!("`{}` needs its sizes as `in -> out` (each a number, a hyperparameter field or `auto`)", self.op.name))
                    .with_span(&self.op.name),
            );
            (Size::Auto(self.op.name.clone()), Size::Lit(LitInt::new("1", self.op.name.span())))
        });
        self.read.extend([from.clone(), to.clone()]);
        (from, to)
    }

    /// An output size is never inferred: it is what the layer is for.
    fn no_auto_output(&mut self, output: &Size) {
        if let Size::Auto(auto) = output {
            let what = match self.op.name.to_string().as_str() {
                "linear" => "output size of a linear layer".to_string(),
                "embedding" => "size of an embedding".to_string(),
                name => format!("output channels of a {name}"),
            };
            self.errors.push(darling::Error::custom(format!("the {what} cannot be `auto`; write a number or a hyperparameter field")).with_span(auto));
        }
    }

    /// A window: `kernel` (first unnamed argument), `stride` (default 1, or the kernel for a
    /// pool), `padding` (`no_same`: the op has no `same`), `dilation`.
    fn window(&mut self, pool: bool, no_same: Option<&'static str>) -> WindowSpec {
        let kernel = self.size("kernel", Some(0), None);
        let stride = match self.named("stride") {
            None if pool => kernel.clone(),
            _ => self.size("stride", None, Some(1)),
        };
        WindowSpec { kernel, stride, padding: self.padding(no_same), dilation: self.size("dilation", None, Some(1)) }
    }

    fn no_sizes(&mut self) {
        if self.sizes.is_some() {
            self.errors.push(darling::Error::custom(format!("`{}` takes no `in -> out` sizes", self.op.name)).with_span(&self.op.name));
        }
    }

    fn max_positional(&mut self, n: usize) {
        if let Some(extra) = self.positional.get(n) {
            self.errors.push(darling::Error::custom(format!("`{}` takes at most {n} unnamed argument(s)", self.op.name)).with_span(*extra));
        }
    }
}

fn expr_size(expr: &syn::Expr) -> Option<Size> {
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => Some(Size::Lit(i.clone())),
        syn::Expr::Path(p) => p.path.get_ident().map(|i| if i == "auto" { Size::Auto(i.clone()) } else { Size::Field(i.clone()) }),
        _ => None,
    }
}

impl RawOp {
    /// Checks the op's name and arguments against its descriptor, then reads them.
    pub fn resolve(&self) -> darling::Result<Resolved> {
        let name = self.name.to_string();
        let Some(descriptor) = ops::find(&name) else {
            let known = ops::names();
            return Err(darling::Error::custom(format!(
                "`{name}` is not a layer op{}; the ops are {}. For anything else, write the layer yourself: \
                 build the fields in `#[lightning(init = method)]` and apply them in `forward = method`",
                fulmen_rules::names::did_you_mean(&name, &known),
                known.join(", ")
            ))
            .with_span(&self.name));
        };
        let mut r = ArgReader::new(self, descriptor.keys);
        if !descriptor.sizes {
            r.no_sizes();
        }
        r.max_positional(descriptor.positional);
        let op = if let Some(activation) = descriptor.activation {
            let slope = r.named("slope").or_else(|| r.positional.first().copied()).cloned();
            Op::Activation(activation, slope)
        } else {
            self.read(&name, &mut r)
        };
        let ArgReader { errors, read, .. } = r;
        errors.finish_with(Resolved { op, sizes: read })
    }

    /// The op's arguments, read as its descriptor says.
    fn read(&self, name: &str, r: &mut ArgReader<'_>) -> Op {
        match name {
            "conv2d" | "conv1d" => {
                let (input, output) = r.sizes();
                let window = r.window(false, None);
                let groups = r.size("groups", None, Some(1));
                let bias = r.flag("bias", true);
                r.no_auto_output(&output);
                if name == "conv2d" { Op::Conv2d { input, output, window, groups, bias } } else { Op::Conv1d { input, output, window, groups, bias } }
            }
            "embedding" => {
                let (vocab, dim) = r.sizes();
                r.no_auto_output(&vocab);
                r.no_auto_output(&dim);
                Op::Embedding { vocab, dim }
            }
            "conv_transpose2d" => {
                let (input, output) = r.sizes();
                let window = r.window(false, Some("conv_transpose2d"));
                let output_padding = r.size("output_padding", None, Some(0));
                let groups = r.size("groups", None, Some(1));
                let bias = r.flag("bias", true);
                r.no_auto_output(&output);
                Op::ConvTranspose2d { input, output, window, output_padding, groups, bias }
            }
            "upsample" => {
                let scale = r.size("scale", Some(0), None);
                Op::Upsample(scale)
            }
            "linear" => {
                let (input, output) = r.sizes();
                let bias = r.flag("bias", true);
                r.no_auto_output(&output);
                Op::Linear { input, output, bias }
            }
            "max_pool" | "avg_pool" | "max_pool1d" => {
                let window = r.window(true, Some("pooling"));
                match name {
                    "max_pool" => Op::MaxPool(window),
                    "avg_pool" => Op::AvgPool(window),
                    _ => Op::MaxPool1d(window),
                }
            }
            "group_norm" => {
                let groups = r.size("groups", Some(0), None);
                Op::GroupNorm(groups)
            }
            "layer_norm" => Op::LayerNorm,
            "residual" => match r.named("from").or_else(|| r.positional.first().copied()) {
                Some(syn::Expr::Path(p)) if p.path.get_ident().is_some() => {
                    let from = p.path.get_ident().cloned().unwrap_or_else(|| self.name.clone());
                    Op::Residual(from)
                }
                other => {
                    let error = darling::Error::custom("`residual` names the layer field whose input it adds: `residual(conv1)`");
                    r.errors.push(match other {
                        Some(e) => error.with_span(e),
                        None => error.with_span(&self.name),
                    });
                    Op::Residual(self.name.clone())
                }
            },
            "adaptive_avg_pool" => {
                let h = r.size("output", Some(0), None);
                let w = if r.positional.len() > 1 { r.size("output", Some(1), None) } else { h.clone() };
                Op::AdaptiveAvgPool(h, w)
            }
            "batch_norm" => Op::BatchNorm,
            "flatten" => Op::Flatten,
            "dropout" => {
                let rate = match r.named("p").or_else(|| r.positional.first().copied()) {
                    Some(syn::Expr::Path(path)) if path.path.get_ident().is_some() => {
                        path.path.get_ident().map_or(DropRate::Lit(syn::parse_quote!(0.5)), |i| DropRate::Field(i.clone()))
                    }
                    Some(e) => match crate::hparams::literal_value(e).map(fulmen_rules::range::dropout_probability) {
                        Some(Ok(())) => DropRate::Lit(e.clone()),
                        Some(Err(reason)) => {
                            r.errors.push(darling::Error::custom(reason).with_span(e));
                            DropRate::Lit(syn::parse_quote!(0.5))
                        }
                        None => {
                            r.errors.push(darling::Error::custom("the dropout probability must be a number in [0, 1) or a hyperparameter field").with_span(e));
                            DropRate::Lit(syn::parse_quote!(0.5))
                        }
                    },
                    None if r.misspelt => DropRate::Lit(syn::parse_quote!(0.5)),
                    None => {
                        r.errors.push(darling::Error::custom("`dropout` needs its probability: `dropout(0.25)` or `dropout(p = field)`").with_span(&self.name));
                        DropRate::Lit(syn::parse_quote!(0.5))
                    }
                };
                Op::Dropout(rate)
            }
            other => unreachable!("`{other}` is in the op table but read nowhere"),
        }
    }
}
