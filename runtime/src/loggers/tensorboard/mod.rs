//! `TensorBoardLogger`: Lightning's layout (`<save_dir>/<name>/version_N/events.out.tfevents.*`
//! and `hparams.yaml`), with scalars, hyperparameters (the hparams plugin), images, and
//! precision-recall curves in the pr_curves plugin's format.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::media::{ClassCurves, ConfusionTable, Image};
use super::{Logger, RunStatus, VersionDir};
use crate::error::Result;
use crate::fs::atomic_write;
use crate::hparams::SavedHparams;
use crate::module::Metrics;

mod event_file;
mod proto;

pub use event_file::{EventFile, masked_crc, read_events};
pub use proto::*;

/// Thresholds of a logged PR curve (evenly spaced in [0, 1]).
pub const PR_THRESHOLDS: usize = 201;

/// Writes TensorBoard event files (Lightning's `TensorBoardLogger`).
#[derive(Debug)]
pub struct TensorBoardLogger {
    dir: VersionDir,
    file: Option<EventFile>,
    hparams_logged: bool,
}

impl TensorBoardLogger {
    /// A logger writing under `save_dir/lightning_logs`.
    pub fn new(save_dir: impl Into<PathBuf>) -> Self {
        TensorBoardLogger { dir: VersionDir::new(Some(save_dir.into()), "lightning_logs"), file: None, hparams_logged: false }
    }

    /// A logger that writes under the Trainer's `default_root_dir`.
    pub fn default_root() -> Self {
        TensorBoardLogger { dir: VersionDir::new(None, "lightning_logs"), file: None, hparams_logged: false }
    }

    /// Sets the experiment name (default `lightning_logs`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.dir.set_name(name);
        self
    }

    /// Writes to `version_N` instead of the next free version.
    pub fn version(mut self, version: u32) -> Self {
        self.dir.set_version(version);
        self
    }

    /// The event file, once created.
    pub fn event_file(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path())
    }

    fn file(&mut self) -> Result<&mut EventFile> {
        if self.file.is_none() {
            let dir = self.dir.dir()?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
            let mut n = 0;
            let mut path;
            loop {
                path = dir.join(format!("events.out.tfevents.{}.{host}.{}.{n}", now.as_secs(), std::process::id()));
                if !path.exists() {
                    break;
                }
                n += 1;
            }
            let mut file = EventFile::create(&path)?;
            let first = Event { wall_time: now.as_secs_f64(), step: 0, file_version: Some("brain.Event:2".into()), summary: None };
            file.append(&first.encode_to_vec())?;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("created above"))
    }

    fn write(&mut self, step: u64, value: Vec<SummaryValue>) -> Result<()> {
        let event = Event { wall_time: wall_time(), step: step as i64, file_version: None, summary: Some(Summary { value }) };
        self.file()?.append(&event.encode_to_vec())
    }

    fn write_plugin(&mut self, tag: &str, plugin: &str, content: Vec<u8>, tensor: TensorProto, step: u64) -> Result<()> {
        let metadata = SummaryMetadata { plugin_data: Some(PluginData { plugin_name: plugin.into(), content }), display_name: String::new(), data_class: 2 };
        let value = SummaryValue { tag: tag.into(), metadata: Some(metadata), tensor: Some(tensor), ..Default::default() };
        self.write(step, vec![value])
    }
}

fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// An empty-string tensor (what the hparams plugin's summaries carry).
fn empty_tensor() -> TensorProto {
    TensorProto { dtype: 7, tensor_shape: Some(TensorShape { dim: Vec::new() }), float_val: Vec::new(), string_val: vec![Vec::new()] }
}

/// A hyperparameter value for the hparams plugin: numbers, strings and booleans as themselves,
/// anything else as its JSON text.
fn proto_value(value: &serde_json::Value) -> ProtoValue {
    match value {
        serde_json::Value::Number(n) => ProtoValue { number_value: n.as_f64(), ..Default::default() },
        serde_json::Value::Bool(b) => ProtoValue { bool_value: Some(*b), ..Default::default() },
        serde_json::Value::String(s) => ProtoValue { string_value: Some(s.clone()), ..Default::default() },
        other => ProtoValue { string_value: Some(other.to_string()), ..Default::default() },
    }
}

impl Logger for TensorBoardLogger {
    crate::version_dir_methods!(dir);
    /// `hparams.yaml`, and the hparams plugin's experiment and session-start summaries.
    fn log_hyperparams(&mut self, hparams: &SavedHparams) -> Result<()> {
        atomic_write(&self.dir.dir()?.join("hparams.yaml"), hparams.to_yaml()?.as_bytes())?;
        let values = hparams.values.as_object().cloned().unwrap_or_default();
        let infos = values
            .keys()
            .map(|name| HParamInfo {
                name: name.clone(),
                description: hparams.fields.iter().find(|f| f.name == name).map(|f| f.doc.to_string()).unwrap_or_default(),
            })
            .collect();
        let experiment = HParamsPluginData { version: 0, experiment: Some(Experiment { hparam_infos: infos, metric_infos: Vec::new() }), ..Default::default() };
        let start = SessionStartInfo { hparams: values.iter().map(|(k, v)| (k.clone(), proto_value(v))).collect(), start_time_secs: wall_time() };
        let session = HParamsPluginData { version: 0, session_start_info: Some(start), ..Default::default() };
        self.write_plugin("_hparams_/experiment", "hparams", experiment.encode_to_vec(), empty_tensor(), 0)?;
        self.write_plugin("_hparams_/session_start_info", "hparams", session.encode_to_vec(), empty_tensor(), 0)?;
        self.hparams_logged = true;
        self.flush()
    }
    fn log_metrics(&mut self, metrics: &Metrics, step: u64) -> Result<()> {
        // `epoch` is a position, not a curve (Lightning's TensorBoardLogger skips it too).
        let values = metrics
            .iter()
            .filter(|(k, _)| k.as_str() != "epoch")
            .map(|(k, v)| SummaryValue { tag: k.clone(), simple_value: Some(*v as f32), ..Default::default() })
            .collect::<Vec<_>>();
        if values.is_empty() {
            return Ok(());
        }
        self.write(step, values)
    }
    fn takes_images(&self) -> bool {
        true
    }
    /// One image summary per image, tagged `<key>/<index>`.
    fn log_images(&mut self, key: &str, images: &[Image], step: u64) -> Result<()> {
        let mut values = Vec::new();
        for (i, image) in images.iter().enumerate() {
            let encoded = SummaryImage { height: image.height() as i32, width: image.width() as i32, colorspace: 3, encoded_image_string: image.to_png()? };
            values.push(SummaryValue { tag: format!("{key}/{i}"), image: Some(encoded), ..Default::default() });
        }
        self.write(step, values)?;
        self.flush()
    }
    /// One pr_curves-plugin summary per class, tagged `<key>/<class>`: a `[6, thresholds]` tensor
    /// of true/false positives, true/false negatives, precision and recall.
    fn log_pr_curves(&mut self, key: &str, curves: &ClassCurves, step: u64) -> Result<()> {
        let content = PrCurvePluginData { version: 0, num_thresholds: PR_THRESHOLDS as u32 }.encode_to_vec();
        for (class, curve) in curves.classes.iter().zip(&curves.curves) {
            let rows = curve.at_thresholds(PR_THRESHOLDS);
            let tensor = TensorProto {
                dtype: 1,
                tensor_shape: Some(TensorShape { dim: vec![TensorDim { size: 6 }, TensorDim { size: PR_THRESHOLDS as i64 }] }),
                float_val: rows.iter().flatten().map(|&v| v as f32).collect(),
                string_val: Vec::new(),
            };
            self.write_plugin(&format!("{key}/{class}"), "pr_curves", content.clone(), tensor, step)?;
        }
        self.flush()
    }
    /// The matrix drawn as an image (TensorBoard has no confusion-matrix plugin).
    fn log_confusion_matrix(&mut self, key: &str, matrix: &ConfusionTable, step: u64) -> Result<()> {
        let image = crate::plots::confusion_matrix(matrix)?;
        self.log_images(key, &[image], step)
    }
    fn flush(&mut self) -> Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
    fn finalize(&mut self, status: RunStatus) -> Result<()> {
        if self.hparams_logged {
            let end = SessionEndInfo { status: if status == RunStatus::Success { 1 } else { 2 }, end_time_secs: wall_time() };
            let data = HParamsPluginData { version: 0, session_end_info: Some(end), ..Default::default() };
            self.write_plugin("_hparams_/session_end_info", "hparams", data.encode_to_vec(), empty_tensor(), 0)?;
            self.hparams_logged = false;
        }
        match self.file.as_mut() {
            Some(file) => file.sync(),
            None => Ok(()),
        }
    }
}
