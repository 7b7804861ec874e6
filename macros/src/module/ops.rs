//! The table of layer ops: one descriptor per op, from which the parser takes the names and
//! arguments it accepts (and its "did you mean" lists), the chain check which ops build a
//! module and which layouts each takes and gives, and the README its op list (a test renders
//! the table and finds it there).

use fulmen_rules::shape::Layout;

/// One op of the `#[layer(...)]` grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpDescriptor {
    /// The name written in `#[layer(...)]`.
    pub name: &'static str,
    /// How it is written, for the docs.
    pub signature: &'static str,
    /// Whether it takes `in -> out` sizes.
    pub sizes: bool,
    /// Its named arguments.
    pub keys: &'static [&'static str],
    /// How many unnamed arguments it takes.
    pub positional: usize,
    /// The Burn module type it builds as a field's first op (`None`: it applies to the tensor).
    pub builds: Option<&'static str>,
    /// The activation it is, if it is one.
    pub activation: Option<Activation>,
    /// The layouts it takes; the first is what a model starting with it takes.
    pub takes: &'static [Layout],
    /// The layout it gives (`None`: the one it takes).
    pub gives: Option<Layout>,
}

/// An activation function, applied elementwise (or over the class dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    LeakyRelu,
    Gelu,
    Silu,
    Sigmoid,
    Tanh,
    Softmax,
    LogSoftmax,
}

impl Activation {
    /// Whether it turns scores into (log-)probabilities, so the loss must not apply softmax again.
    pub fn normalizes(self) -> bool {
        matches!(self, Activation::Softmax | Activation::LogSoftmax)
    }
}

const fn op(name: &'static str, signature: &'static str) -> OpDescriptor {
    OpDescriptor { name, signature, sizes: false, keys: &[], positional: 0, builds: None, activation: None, takes: ANY, gives: None }
}

const fn activation(name: &'static str, which: Activation) -> OpDescriptor {
    OpDescriptor { activation: Some(which), ..op(name, name) }
}

const WINDOW: &[&str] = &["kernel", "stride", "padding", "dilation"];
const CONV: &[&str] = &["kernel", "stride", "padding", "dilation", "groups", "bias"];
/// Any float layout: elementwise ops, norms over channels.
const ANY: &[Layout] = &[Layout::Map, Layout::Seq, Layout::Flat];
const MAP: &[Layout] = &[Layout::Map];
const SEQ: &[Layout] = &[Layout::Seq];

/// Every op, in the order the docs list them: the module-building ops first.
pub const OPS: &[OpDescriptor] = &[
    OpDescriptor {
        sizes: true,
        keys: CONV,
        positional: 1,
        builds: Some("Conv2d"),
        takes: MAP,
        ..op("conv2d", "conv2d(in -> out, kernel = k, stride, padding = n|same|valid, dilation, groups, bias)")
    },
    OpDescriptor {
        sizes: true,
        keys: &["kernel", "stride", "padding", "output_padding", "dilation", "groups", "bias"],
        positional: 1,
        builds: Some("ConvTranspose2d"),
        takes: MAP,
        ..op("conv_transpose2d", "conv_transpose2d(in -> out, kernel = k, stride, padding = n, output_padding, dilation, groups, bias)")
    },
    OpDescriptor { sizes: true, keys: CONV, positional: 1, builds: Some("Conv1d"), takes: SEQ, ..op("conv1d", "conv1d(in -> out, kernel = k, ..)") },
    OpDescriptor { sizes: true, builds: Some("Embedding"), takes: &[Layout::Tokens], gives: Some(Layout::Seq), ..op("embedding", "embedding(vocab -> dim)") },
    OpDescriptor {
        sizes: true,
        keys: &["bias"],
        builds: Some("Linear"),
        takes: &[Layout::Flat, Layout::Map, Layout::Seq],
        gives: Some(Layout::Flat),
        ..op("linear", "linear(in -> out, bias)")
    },
    OpDescriptor { builds: Some("BatchNorm"), ..op("batch_norm", "batch_norm") },
    OpDescriptor { builds: Some("LayerNorm"), takes: &[Layout::Flat, Layout::Seq], ..op("layer_norm", "layer_norm") },
    OpDescriptor { keys: &["groups"], positional: 1, builds: Some("GroupNorm"), ..op("group_norm", "group_norm(groups)") },
    activation("relu", Activation::Relu),
    OpDescriptor { keys: &["slope"], positional: 1, ..activation("leaky_relu", Activation::LeakyRelu) }.signed("leaky_relu(slope)"),
    activation("gelu", Activation::Gelu),
    activation("silu", Activation::Silu),
    activation("sigmoid", Activation::Sigmoid),
    activation("tanh", Activation::Tanh),
    activation("softmax", Activation::Softmax),
    activation("log_softmax", Activation::LogSoftmax),
    OpDescriptor { keys: WINDOW, positional: 1, takes: MAP, ..op("max_pool", "max_pool(k, stride, padding, dilation)") },
    OpDescriptor { keys: WINDOW, positional: 1, takes: MAP, ..op("avg_pool", "avg_pool(..)") },
    OpDescriptor { positional: 2, takes: MAP, ..op("adaptive_avg_pool", "adaptive_avg_pool(h, w)") },
    OpDescriptor { keys: WINDOW, positional: 1, takes: SEQ, ..op("max_pool1d", "max_pool1d(k, ..)") },
    OpDescriptor { keys: &["scale"], positional: 1, takes: MAP, ..op("upsample", "upsample(scale)") },
    OpDescriptor { keys: &["p"], positional: 1, ..op("dropout", "dropout(p)") },
    OpDescriptor { keys: &["from"], positional: 1, ..op("residual", "residual(layer)") },
    OpDescriptor { gives: Some(Layout::Flat), ..op("flatten", "flatten") },
];

impl OpDescriptor {
    const fn signed(self, signature: &'static str) -> Self {
        OpDescriptor { signature, ..self }
    }
}

/// The op named `name`.
pub fn find(name: &str) -> Option<&'static OpDescriptor> {
    OPS.iter().find(|op| op.name == name)
}

/// The ops that build a field, as the docs write them, for messages.
pub fn building() -> String {
    OPS.iter().filter(|op| op.builds.is_some()).map(|op| op.name).collect::<Vec<_>>().join(", ")
}

/// Every op name, for "did you mean".
pub fn names() -> Vec<&'static str> {
    OPS.iter().map(|op| op.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The docs' op list: the ops that build a field, then those applied after it.
    fn doc_list() -> (String, String) {
        let list = |builds: bool| OPS.iter().filter(|op| op.builds.is_some() == builds).map(|op| format!("`{}`", op.signature)).collect::<Vec<_>>().join(", ");
        (list(true), list(false))
    }

    #[test]
    fn names_are_unique_and_activations_are_marked() {
        let mut seen = names();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), OPS.len());
        assert_eq!(OPS.iter().filter(|op| op.activation.is_some()).count(), 8);
        assert!(OPS.iter().all(|op| op.signature.starts_with(op.name)));
    }

    /// The README lists the ops as this table does, in its order.
    #[test]
    fn the_readme_lists_every_op_from_the_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        let (builds, applied) = doc_list();
        assert!(
            readme.contains(&format!("the first op builds the field — {builds} — the rest apply after it: {applied}")),
            "README's op list is not\n{builds}\n{applied}"
        );
    }
}
