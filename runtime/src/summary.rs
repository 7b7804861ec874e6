//! The model summary printed when `fit` starts: one row per top-level layer with its type and
//! parameter count, then total and trainable counts (Lightning's ModelSummary).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// One top-level layer of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    /// Field name.
    pub name: String,
    /// Module type, as Burn names it.
    pub kind: String,
    /// Parameters in the layer.
    pub params: usize,
}

/// A model's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// Top-level layers in declaration order.
    pub layers: Vec<LayerRow>,
    /// All parameters.
    pub total: usize,
    /// Parameters that receive gradients.
    pub trainable: usize,
}

#[derive(Default)]
struct Collector {
    depth: usize,
    summary: Option<ModelSummary>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.depth += 1;
        let summary = self.summary.get_or_insert(ModelSummary { layers: Vec::new(), total: 0, trainable: 0 });
        match self.depth {
            1 => summary.layers.push(LayerRow { name: name.to_string(), kind: "Param".into(), params: 0 }),
            2 => {
                if let Some(row) = summary.layers.last_mut() {
                    row.kind = container_type.rsplit(':').next().unwrap_or(container_type).to_string();
                }
            }
            _ => {}
        }
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.depth = self.depth.saturating_sub(1);
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.lazy_shape().num_elements();
        let summary = self.summary.get_or_insert(ModelSummary { layers: Vec::new(), total: 0, trainable: 0 });
        summary.total += n;
        if param.val().is_require_grad() {
            summary.trainable += n;
        }
        if let Some(row) = summary.layers.last_mut() {
            row.params += n;
        }
    }
}

impl ModelSummary {
    /// Summarizes `model` (trainable counts are meaningful on a model prepared for training).
    pub fn of<M: Module>(model: &M) -> Self {
        let mut collector = Collector::default();
        model.visit(&mut collector);
        collector.summary.unwrap_or(ModelSummary { layers: Vec::new(), total: 0, trainable: 0 })
    }

    /// The table as Lightning prints it.
    pub fn render(&self) -> String {
        let name_w = self.layers.iter().map(|l| l.name.len()).max().unwrap_or(4).max(4);
        let kind_w = self.layers.iter().map(|l| l.kind.len()).max().unwrap_or(4).max(4);
        let mut out = format!("  | {:<name_w$} | {:<kind_w$} | {:>8}\n", "Name", "Type", "Params");
        out.push_str(&format!("{}\n", "-".repeat(name_w + kind_w + 19)));
        for (i, l) in self.layers.iter().enumerate() {
            out.push_str(&format!("{i:<2}| {:<name_w$} | {:<kind_w$} | {:>8}\n", l.name, l.kind, human(l.params)));
        }
        out.push_str(&format!("{}\n", "-".repeat(name_w + kind_w + 19)));
        out.push_str(&format!("{:<8} Trainable params\n", human(self.trainable)));
        out.push_str(&format!("{:<8} Non-trainable params\n", human(self.total - self.trainable)));
        out.push_str(&format!("{:<8} Total params\n", human(self.total)));
        out.push_str(&format!("{:<8.3} Total estimated model params size (MB)", self.total as f64 * 4.0 / 1e6));
        out
    }
}

/// `1234567` → `1.2 M`, as Lightning abbreviates.
fn human(n: usize) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} K", n as f64 / 1e3),
        _ => format!("{:.1} M", n as f64 / 1e6),
    }
}
