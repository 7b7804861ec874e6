//! `WandbLogger`: writes the offline run folder W&B's own client leaves with `WANDB_MODE=offline`
//! (`<save_dir>/wandb/offline-run-<UTC stamp>-<id>/run-<id>.wandb` + `files/`), which
//! `wandb sync` uploads later. No network and no Python are needed while training.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::media::{ClassCurves, ConfusionTable, Image, Table};
use super::{Logger, RunStatus};
use crate::error::{Error, Result};
use crate::hparams::SavedHparams;
use crate::module::Metrics;

mod folder;
mod json;
mod proto;
mod record_log;
mod sync;

use folder::{hostname, last_step, point_latest_run, random_id, utc_stamp};
use json::{flatten, hex, number, to_json};
pub use proto::*;
pub use record_log::{BLOCK, RecordLog, parse_records, read_records};
pub use sync::SyncOutcome;

/// Points of the interpolated precision-recall curve per class (`wandb.plot.pr_curve`'s default).
const PR_POINTS: usize = 21;

/// Logs to a Weights & Biases offline run (Lightning's `WandbLogger(offline=True)`).
#[derive(Debug)]
pub struct WandbLogger {
    project: String,
    name: Option<String>,
    entity: Option<String>,
    job_type: Option<String>,
    group: Option<String>,
    notes: Option<String>,
    tags: Vec<String>,
    id: Option<String>,
    resume: bool,
    save_dir: Option<PathBuf>,
    log_model: bool,
    sync_on_finish: bool,
    run: Option<Run>,
    checkpoints: Vec<PathBuf>,
}

/// The open run.
#[derive(Debug)]
struct Run {
    dir: PathBuf,
    id: String,
    log: RecordLog,
    num: i64,
    /// The next history `_step`.
    step: i64,
    started: Instant,
    start_time: f64,
    summary: BTreeMap<String, Value>,
    /// How the stages so far ended (`None`: none has; a run dropped then counts as failed).
    status: Option<RunStatus>,
    finished: bool,
}

impl WandbLogger {
    /// A logger for `project`; the run folder goes under the Trainer's `default_root_dir`
    /// unless [`save_dir`](Self::save_dir) says otherwise.
    pub fn new(project: impl Into<String>) -> Self {
        WandbLogger {
            project: project.into(),
            name: None,
            entity: None,
            job_type: None,
            group: None,
            notes: None,
            tags: Vec::new(),
            id: None,
            resume: false,
            save_dir: None,
            log_model: false,
            sync_on_finish: false,
            run: None,
            checkpoints: Vec::new(),
        }
    }

    /// The run's display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The W&B entity (user or team) to upload to.
    pub fn entity(mut self, entity: impl Into<String>) -> Self {
        self.entity = Some(entity.into());
        self
    }
    /// The job type (`train`, `eval`, ...).
    pub fn job_type(mut self, job_type: impl Into<String>) -> Self {
        self.job_type = Some(job_type.into());
        self
    }
    /// Groups runs together in the UI.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
    /// A longer description.
    pub fn notes(mut self, notes: impl Into<String>) -> Self {
        self.notes = Some(notes.into());
        self
    }
    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }
    /// The run id (letters, digits, `-`, `_`); random when not given.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Continues the run with this [`id`](Self::id) (W&B's `resume="allow"`): the new folder is
    /// marked resumed and its `_step` continues after the earlier folders' last row.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }
    /// The folder that holds `wandb/`.
    pub fn save_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.save_dir = Some(dir.into());
        self
    }
    /// Lists the checkpoints ModelCheckpoint wrote (those still on disk at the end) as run
    /// files, so `wandb sync` uploads them.
    pub fn log_model(mut self, on: bool) -> Self {
        self.log_model = on;
        self
    }
    /// Runs `wandb sync <run dir>` when the run ends, if the `wandb` command is installed; its
    /// outcome is printed, and a missing command or failed upload never fails training.
    pub fn sync_on_finish(mut self, on: bool) -> Self {
        self.sync_on_finish = on;
        self
    }

    /// The run folder, once the run has started.
    pub fn run_dir(&self) -> Option<&Path> {
        self.run.as_ref().map(|r| r.dir.as_path())
    }

    /// The run id, once the run has started.
    pub fn run_id(&self) -> Option<&str> {
        self.run.as_ref().map(|r| r.id.as_str())
    }

    fn wandb_dir(&self) -> PathBuf {
        self.save_dir.clone().unwrap_or_else(|| PathBuf::from(".")).join("wandb")
    }

    fn started(&mut self) -> Result<&mut Run> {
        if self.run.is_none() {
            self.run = Some(self.start()?);
        }
        Ok(self.run.as_mut().expect("started above"))
    }

    fn start(&self) -> Result<Run> {
        let id = match &self.id {
            Some(id) => {
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(Error::Media { what: "a W&B run".into(), reason: format!("the run id `{id}` may only hold letters, digits, `-` and `_`") });
                }
                id.clone()
            }
            None => random_id(),
        };
        let wandb_dir = self.wandb_dir();
        let previous_step = if self.resume { last_step(&wandb_dir, &id)? } else { None };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut stamp = utc_stamp(now.as_secs());
        let mut dir = wandb_dir.join(format!("offline-run-{stamp}-{id}"));
        // Two starts in one second with the same id (a resume right after a run) get distinct folders.
        let mut secs = now.as_secs();
        while dir.exists() {
            secs += 1;
            stamp = utc_stamp(secs);
            dir = wandb_dir.join(format!("offline-run-{stamp}-{id}"));
        }
        std::fs::create_dir_all(dir.join("files")).map_err(Error::io("cannot create", &dir))?;
        let log = RecordLog::create(&dir.join(format!("run-{id}.wandb")))?;
        let start_time = now.as_secs_f64();
        let step = previous_step.map_or(0, |s| s + 1);
        let mut run =
            Run { dir, id: id.clone(), log, num: 0, step, started: Instant::now(), start_time, summary: BTreeMap::new(), status: None, finished: false };
        let record = RunRecord {
            run_id: id,
            entity: self.entity.clone().unwrap_or_default(),
            project: self.project.clone(),
            config: None,
            run_group: self.group.clone().unwrap_or_default(),
            job_type: self.job_type.clone().unwrap_or_default(),
            display_name: self.name.clone().unwrap_or_default(),
            notes: self.notes.clone().unwrap_or_default(),
            tags: self.tags.clone(),
            host: hostname(),
            starting_step: step,
            start_time: Some(Timestamp { seconds: now.as_secs() as i64, nanos: now.subsec_nanos() as i32 }),
            resumed: previous_step.is_some(),
        };
        run.write(Record { run: Some(record), ..Default::default() })?;
        point_latest_run(&wandb_dir, &run.dir)?;
        Ok(run)
    }

    /// Logs one history row of JSON values (scalars or media dictionaries), with `_step`,
    /// `_runtime` and `_timestamp`, and mirrors it into the summary.
    fn log_row(&mut self, row: BTreeMap<String, Value>) -> Result<()> {
        let run = self.started()?;
        let runtime = run.started.elapsed().as_secs_f64();
        let mut row = row;
        row.insert("_step".into(), json!(run.step));
        row.insert("_runtime".into(), json!(runtime));
        row.insert("_timestamp".into(), json!(run.start_time + runtime));
        let mut items = Vec::new();
        let mut summary = Vec::new();
        for (key, value) in &row {
            for (path, json) in flatten(key, value) {
                items.push(HistoryItem { key: String::new(), nested_key: path.clone(), value_json: json.clone() });
                summary.push(SummaryItem { key: String::new(), nested_key: path, value_json: json });
            }
            if !key.starts_with('_') {
                run.summary.insert(key.clone(), value.clone());
            }
        }
        let step = run.step;
        run.write(Record { summary: Some(SummaryRecord { update: summary }), ..Default::default() })?;
        run.write(Record { history: Some(HistoryRecord { item: items, step: Some(HistoryStep { num: step }) }), ..Default::default() })?;
        run.step += 1;
        run.log.flush()
    }

    /// Writes `bytes` to `files/<subdir>/<key>_<step>_<hash>.<ext>`, lists it as a run file, and
    /// returns its path relative to `files/` and its SHA-256.
    fn add_media(&mut self, subdir: &str, key: &str, ext: &str, bytes: &[u8]) -> Result<(String, String)> {
        let run = self.started()?;
        let sha = hex(&Sha256::digest(bytes));
        let safe: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let relative = format!("media/{subdir}/{safe}_{}_{}.{ext}", run.step, &sha[..20]);
        crate::fs::atomic_write(&run.dir.join("files").join(&relative), bytes)?;
        run.write(Record { files: Some(FilesRecord { files: vec![FilesItem { path: relative.clone() }] }), ..Default::default() })?;
        Ok((relative, sha))
    }

    fn table_value(&mut self, key: &str, table: &Table) -> Result<Value> {
        let body = serde_json::to_vec(&json!({ "columns": table.columns, "data": table.rows }))
            .map_err(|e| Error::Media { what: format!("table `{key}`"), reason: format!("cannot encode it: {e}") })?;
        let (path, sha) = self.add_media("table", key, "table.json", &body)?;
        Ok(json!({
            "_type": "table-file",
            "path": path,
            "sha256": sha,
            "size": body.len(),
            "ncols": table.columns.len(),
            "nrows": table.rows.len(),
        }))
    }

    /// A W&B custom chart: the table under `<key>_table` and the Vega preset in the config.
    fn log_chart(&mut self, key: &str, preset: &str, fields: Value, strings: Value, table: &Table, step: u64) -> Result<()> {
        let table_key = format!("{key}_table");
        let panel = json!({
            "panel_type": "Vega2",
            "panel_config": {
                "panelDefId": preset,
                "fieldSettings": fields,
                "stringSettings": strings,
                "transform": { "name": "tableWithLeafColNames" },
                "userQuery": { "queryFields": [{
                    "name": "runSets",
                    "args": [{ "name": "runSets", "value": "${runSets}" }],
                    "fields": [
                        { "name": "id", "fields": [] },
                        { "name": "name", "fields": [] },
                        { "name": "_defaultColorIndex", "fields": [] },
                        { "name": "summaryTable", "args": [{ "name": "tableKey", "value": table_key }], "fields": [] }
                    ]
                }]}
            }
        });
        let item = ConfigItem { key: String::new(), nested_key: vec!["_wandb".into(), "visualize".into(), key.into()], value_json: panel.to_string() };
        self.started()?.write(Record { config: Some(ConfigRecord { update: vec![item] }), ..Default::default() })?;
        let value = self.table_value(&table_key, table)?;
        self.log_row(BTreeMap::from([(table_key, value), ("trainer/global_step".into(), json!(step))]))
    }

    /// Ends a stage: lists the checkpoints (with `log_model`), writes the summary and persists
    /// the file. The run stays open for later stages (`test` after `fit`).
    fn end_stage(&mut self, status: RunStatus) -> Result<()> {
        let checkpoints = std::mem::take(&mut self.checkpoints);
        let Some(run) = self.run.as_mut() else { return Ok(()) };
        if run.finished {
            return Ok(());
        }
        run.status = Some(run.status.map_or(status, |earlier| earlier.then(status)));
        let mut listed = Vec::new();
        for path in checkpoints.iter().filter(|p| p.exists()) {
            let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
            let relative = format!("checkpoints/{name}");
            let target = run.dir.join("files").join(&relative);
            std::fs::create_dir_all(target.parent().expect("has a parent")).map_err(Error::io("cannot create", &target))?;
            let _ = std::fs::remove_file(&target);
            if std::fs::hard_link(path, &target).is_err() {
                std::fs::copy(path, &target).map_err(Error::io("cannot copy a checkpoint to", &target))?;
            }
            listed.push(FilesItem { path: relative });
        }
        if !listed.is_empty() {
            run.write(Record { files: Some(FilesRecord { files: listed }), ..Default::default() })?;
        }
        let update = run.summary.iter().map(|(k, v)| SummaryItem { key: k.clone(), nested_key: Vec::new(), value_json: to_json(v) }).collect();
        run.write(Record { summary: Some(SummaryRecord { update }), ..Default::default() })?;
        run.log.sync()
    }

    /// Closes the run: the exit record (exit code 0, 1 for a failure, 255 for Ctrl-C, as wandb
    /// writes them), then `wandb sync` if asked. Called when the logger is dropped (with its
    /// Trainer); nothing can be logged afterwards.
    pub fn finish(&mut self) -> Result<()> {
        let sync_on_finish = self.sync_on_finish;
        let Some(run) = self.run.as_mut() else { return Ok(()) };
        if run.finished {
            return Ok(());
        }
        let exit_code = match run.status.unwrap_or(RunStatus::Failed) {
            RunStatus::Success => 0,
            RunStatus::Failed => 1,
            RunStatus::Interrupted => 255,
        };
        let runtime = run.started.elapsed().as_secs() as i32;
        run.write(Record { exit: Some(RunExitRecord { exit_code, runtime }), ..Default::default() })?;
        run.log.sync()?;
        run.finished = true;
        if sync_on_finish {
            sync::sync(&run.dir, "wandb");
        }
        Ok(())
    }
}

impl Drop for WandbLogger {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            eprintln!("W&B: could not close the run: {e}");
        }
    }
}

impl Run {
    fn write(&mut self, mut record: Record) -> Result<()> {
        self.num += 1;
        record.num = self.num;
        self.log.append(&record.encode_to_vec())
    }
}

impl Logger for WandbLogger {
    fn name(&self) -> &str {
        &self.project
    }
    fn set_default_root(&mut self, root: &Path) {
        self.save_dir.get_or_insert_with(|| root.to_path_buf());
    }
    fn save_dir(&self) -> Option<PathBuf> {
        self.save_dir.clone()
    }
    /// The run id.
    fn version(&self) -> Option<String> {
        self.run.as_ref().map(|r| r.id.clone()).or_else(|| self.id.clone())
    }
    /// `<save_dir>/<project>/<run id>`: where checkpoints go by default (as Lightning's).
    fn log_dir(&mut self) -> Result<Option<PathBuf>> {
        let save_dir = self.save_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let project = self.project.clone();
        let id = self.started()?.id.clone();
        let dir = save_dir.join(project).join(id);
        std::fs::create_dir_all(&dir).map_err(Error::io("cannot create", &dir))?;
        Ok(Some(dir))
    }
    fn log_hyperparams(&mut self, hparams: &SavedHparams) -> Result<()> {
        let update = hparams
            .values
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| ConfigItem { key: k.clone(), nested_key: Vec::new(), value_json: v.to_string() })
            .collect();
        let run = self.started()?;
        run.write(Record { config: Some(ConfigRecord { update }), ..Default::default() })?;
        run.log.flush()
    }
    fn log_metrics(&mut self, metrics: &Metrics, step: u64) -> Result<()> {
        let mut row: BTreeMap<String, Value> = metrics.iter().map(|(k, v)| (k.clone(), number(*v))).collect();
        row.insert("trainer/global_step".into(), json!(step));
        self.log_row(row)
    }
    fn takes_images(&self) -> bool {
        true
    }
    fn log_images(&mut self, key: &str, images: &[Image], step: u64) -> Result<()> {
        let Some(first) = images.first() else { return Ok(()) };
        let mut filenames = Vec::new();
        for image in images {
            filenames.push(self.add_media("images", key, "png", &image.to_png()?)?.0);
        }
        let same_size = images.iter().all(|i| (i.width(), i.height()) == (first.width(), first.height()));
        let mut value = json!({
            "_type": "images/separated",
            "width": first.width(),
            "height": first.height(),
            "format": "png",
            "count": images.len(),
            "filenames": filenames,
        });
        if !same_size {
            // W&B lays a grid out at one size; record the largest.
            value["width"] = json!(images.iter().map(Image::width).max());
            value["height"] = json!(images.iter().map(Image::height).max());
        }
        if images.iter().any(|i| i.caption().is_some()) {
            value["captions"] = json!(images.iter().map(|i| i.caption().unwrap_or("")).collect::<Vec<_>>());
        }
        self.log_row(BTreeMap::from([(key.to_string(), value), ("trainer/global_step".into(), json!(step))]))
    }
    fn log_table(&mut self, key: &str, table: &Table, step: u64) -> Result<()> {
        let value = self.table_value(key, table)?;
        self.log_row(BTreeMap::from([(key.to_string(), value), ("trainer/global_step".into(), json!(step))]))
    }
    /// W&B's PR-curve chart (`wandb.plot.pr_curve`): per class, precision at 21 recall points.
    fn log_pr_curves(&mut self, key: &str, curves: &ClassCurves, step: u64) -> Result<()> {
        let mut rows = Vec::new();
        for (class, curve) in curves.classes.iter().zip(&curves.curves) {
            if curve.positives == 0.0 {
                continue; // wandb plots the classes present in the targets
            }
            for (recall, precision) in curve.interpolated(PR_POINTS) {
                rows.push(vec![json!(class), json!(precision), json!(recall)]);
            }
        }
        let table = Table::new(vec!["class".into(), "precision".into(), "recall".into()], rows)?;
        let fields = json!({ "x": "recall", "y": "precision", "class": "class" });
        let strings = json!({ "title": "Precision-Recall Curve", "x-axis-title": "Recall", "y-axis-title": "Precision" });
        self.log_chart(key, "wandb/area-under-curve/v0", fields, strings, &table, step)
    }
    /// W&B's confusion-matrix chart (`wandb.plot.confusion_matrix`).
    fn log_confusion_matrix(&mut self, key: &str, matrix: &ConfusionTable, step: u64) -> Result<()> {
        let mut rows = Vec::new();
        for (actual, row) in matrix.classes.iter().zip(&matrix.matrix) {
            for (predicted, count) in matrix.classes.iter().zip(row) {
                rows.push(vec![json!(actual), json!(predicted), number(*count)]);
            }
        }
        let table = Table::new(vec!["Actual".into(), "Predicted".into(), "nPredictions".into()], rows)?;
        let fields = json!({ "Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions" });
        let strings = json!({ "title": "Confusion Matrix Curve" });
        self.log_chart(key, "wandb/confusion_matrix/v1", fields, strings, &table, step)
    }
    fn log_summary(&mut self, key: &str, value: f64) -> Result<()> {
        let run = self.started()?;
        run.summary.insert(key.to_string(), number(value));
        let item = SummaryItem { key: key.to_string(), nested_key: Vec::new(), value_json: to_json(&number(value)) };
        run.write(Record { summary: Some(SummaryRecord { update: vec![item] }), ..Default::default() })?;
        run.log.flush()
    }
    fn after_save_checkpoint(&mut self, path: &Path) -> Result<()> {
        if self.log_model && !self.checkpoints.iter().any(|p| p == path) {
            self.checkpoints.push(path.to_path_buf());
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        match self.run.as_mut() {
            Some(run) => run.log.flush(),
            None => Ok(()),
        }
    }
    fn finalize(&mut self, status: RunStatus) -> Result<()> {
        self.end_stage(status)
    }
}
