//! The table of layer ops: one descriptor per op, from which the parser takes the names and
//! arguments it accepts (and its "did you mean" lists), the chain check which ops build a
//! module, and the README its op list (a test renders the table and finds it there).

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
    OpDescriptor { name, signature, sizes: false, keys: &[], positional: 0, builds: None, activation: None }
}

const fn activation(name: &'static str, which: Activation) -> OpDescriptor {
    OpDescriptor { activation: Some(which), ..op(name, name) }
}

const WINDOW: &[&str] = &["kernel", "stride", "padding", "dilation"];

/// Every op, in the order the docs list them: the module-building ops first.
pub const OPS: &[OpDescriptor] = &[
    OpDescriptor {
        sizes: true,
        keys: &["kernel", "stride", "padding", "dilation", "groups", "bias"],
        positional: 1,
        builds: Some("Conv2d"),
        ..op("conv2d", "conv2d(in -> out, kernel = k, stride, padding = n|same|valid, dilation, groups, bias)")
    },
    OpDescriptor {
        sizes: true,
        keys: &["kernel", "stride", "padding", "output_padding", "dilation", "groups", "bias"],
        positional: 1,
        builds: Some("ConvTranspose2d"),
        ..op("conv_transpose2d", "conv_transpose2d(in -> out, kernel = k, stride, padding = n, output_padding, dilation, groups, bias)")
    },
    OpDescriptor { sizes: true, keys: &["bias"], builds: Some("Linear"), ..op("linear", "linear(in -> out, bias)") },
    OpDescriptor { builds: Some("BatchNorm"), ..op("batch_norm", "batch_norm") },
    activation("relu", Activation::Relu),
    OpDescriptor { keys: &["slope"], positional: 1, ..activation("leaky_relu", Activation::LeakyRelu) }.signed("leaky_relu(slope)"),
    activation("gelu", Activation::Gelu),
    activation("silu", Activation::Silu),
    activation("sigmoid", Activation::Sigmoid),
    activation("tanh", Activation::Tanh),
    activation("softmax", Activation::Softmax),
    activation("log_softmax", Activation::LogSoftmax),
    OpDescriptor { keys: WINDOW, positional: 1, ..op("max_pool", "max_pool(k, stride, padding, dilation)") },
    OpDescriptor { keys: WINDOW, positional: 1, ..op("avg_pool", "avg_pool(..)") },
    OpDescriptor { positional: 2, ..op("adaptive_avg_pool", "adaptive_avg_pool(h, w)") },
    OpDescriptor { keys: &["scale"], positional: 1, ..op("upsample", "upsample(scale)") },
    OpDescriptor { keys: &["p"], positional: 1, ..op("dropout", "dropout(p)") },
    op("flatten", "flatten"),
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
