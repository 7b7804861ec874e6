//! `ModelCheckpoint`: save the best `save_top_k` checkpoints by a monitored metric, or the latest.

use std::path::PathBuf;

use super::{Callback, Mode, TrainerView};
use crate::error::{Error, Result};
use crate::module::LightningModule;

/// Saves checkpoints after each validation (or training epoch when there is no validation),
/// as Lightning's `ModelCheckpoint`. Without `monitor`, keeps the latest `save_top_k`.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    dirpath: Option<PathBuf>,
    filename: String,
    monitor: Option<String>,
    mode: Mode,
    save_top_k: i64,
    save_last: bool,
    weights_only: bool,
    every_n_epochs: u64,
    every_n_train_steps: u64,
    kept: Vec<(f64, PathBuf)>,
    best_model_path: Option<PathBuf>,
    best_model_score: Option<f64>,
    last_model_path: Option<PathBuf>,
    /// The folder of the latest save (stored, so a resume knows whether `kept` is still there).
    saved_dir: Option<PathBuf>,
}

impl Default for ModelCheckpoint {
    fn default() -> Self {
        ModelCheckpoint {
            dirpath: None,
            filename: "{epoch}-{step}".into(),
            monitor: None,
            mode: Mode::Min,
            save_top_k: 1,
            save_last: false,
            weights_only: false,
            every_n_epochs: 1,
            every_n_train_steps: 0,
            kept: Vec::new(),
            best_model_path: None,
            best_model_score: None,
            last_model_path: None,
            saved_dir: None,
        }
    }
}

impl ModelCheckpoint {
    /// Keeps the best checkpoint by `monitor` (mode min).
    pub fn monitor(monitor: impl Into<String>) -> Self {
        ModelCheckpoint { monitor: Some(monitor.into()), ..Self::default() }
    }
    /// Sets the folder (default `<log_dir>/checkpoints`).
    pub fn dirpath(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirpath = Some(dir.into());
        self
    }
    /// Sets the file name template: `{epoch}`, `{step}` and `{metric}` / `{metric:.2f}` become
    /// `name=value` (default `{epoch}-{step}`).
    pub fn filename(mut self, template: impl Into<String>) -> Self {
        self.filename = template.into();
        self
    }
    /// Sets the mode of the monitored metric.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    /// How many checkpoints to keep (`-1`: all, `0`: none but `last.ckpt`).
    pub fn save_top_k(mut self, k: i64) -> Self {
        self.save_top_k = k;
        self
    }
    /// Also write `last.ckpt` every time.
    pub fn save_last(mut self, on: bool) -> Self {
        self.save_last = on;
        self
    }
    /// Save weights only, without the optimizer state.
    pub fn save_weights_only(mut self, on: bool) -> Self {
        self.weights_only = on;
        self
    }
    /// The best checkpoint so far.
    pub fn best_model_path(&self) -> Option<&PathBuf> {
        self.best_model_path.as_ref()
    }
    /// Its monitored value.
    pub fn best_model_score(&self) -> Option<f64> {
        self.best_model_score
    }

    /// Saves every n epochs (default 1; 0 disables epoch-end saving).
    pub fn every_n_epochs(mut self, n: u64) -> Self {
        self.every_n_epochs = n;
        self
    }
    /// Saves every n optimizer steps instead of at epoch ends (0, the default, disables it).
    pub fn every_n_train_steps(mut self, n: u64) -> Self {
        self.every_n_train_steps = n;
        if n > 0 {
            self.every_n_epochs = 0;
        }
        self
    }
    /// The latest checkpoint written (`last.ckpt` with `save_last`).
    pub fn last_model_path(&self) -> Option<&PathBuf> {
        self.last_model_path.as_ref()
    }

    fn save<M: LightningModule>(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if trainer.state().sanity_checking || trainer.state().fast_dev_run {
            return Ok(());
        }
        let dir = self.dir(trainer);
        let score = match &self.monitor {
            Some(name) => trainer.state().metric(name, "ModelCheckpoint monitors it: log it in a step or change `monitor`")?,
            None => trainer.state().global_step as f64,
        };
        let mode = if self.monitor.is_some() { self.mode } else { Mode::Max };
        if self.save_top_k != 0 {
            let full = self.save_top_k > 0 && self.kept.len() as i64 >= self.save_top_k;
            let worst = self.kept.last().map(|(s, _)| *s);
            let qualifies = (self.monitor.is_none() || score.is_finite()) && (!full || worst.is_some_and(|w| mode.improves(score, w, 0.0)));
            if qualifies {
                let name = format_filename(&self.filename, trainer)?;
                let path = dir.join(format!("{name}.ckpt"));
                self.kept.retain(|(_, p)| p != &path);
                self.kept.push((score, path.clone()));
                self.kept.sort_by(|a, b| if mode.improves(a.0, b.0, 0.0) { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater });
                let (top_score, top_path) = self.kept[0].clone();
                // A best restored from an earlier run stays best until something beats it.
                if self.best_model_score.is_none_or(|best| !mode.improves(best, top_score, 0.0)) {
                    self.best_model_score = Some(top_score);
                    self.best_model_path = Some(top_path);
                }
                self.last_model_path = Some(path.clone());
                self.saved_dir = Some(dir.clone());
                trainer.save_checkpoint(&path, self.weights_only, &*self)?;
                while self.save_top_k > 0 && self.kept.len() as i64 > self.save_top_k {
                    let Some((_, old)) = self.kept.pop() else { break };
                    trainer.remove_checkpoint(&old)?;
                }
                trainer.set_best_model_path(self.best_model_path.clone());
                if let (Some(monitor), Some(best)) = (&self.monitor, self.best_model_score) {
                    trainer.log_summary(&format!("best_{monitor}"), best)?;
                }
            }
        }
        if self.save_last {
            self.write_last(trainer, dir)?;
        }
        Ok(())
    }

    /// Writes `last.ckpt` in `dir`.
    fn write_last<M: LightningModule>(&mut self, trainer: &mut TrainerView<'_, M>, dir: PathBuf) -> Result<()> {
        let path = dir.join("last.ckpt");
        self.last_model_path = Some(path.clone());
        self.saved_dir = Some(dir);
        trainer.save_checkpoint(&path, self.weights_only, &*self)?;
        Ok(())
    }
}

/// Expands `{epoch}`, `{step}` and `{metric[:.Nf]}` into `name=value`.
fn format_filename<M: LightningModule>(template: &str, trainer: &TrainerView<'_, M>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| Error::Callback { callback: "ModelCheckpoint".into(), reason: format!("the filename `{template}` has an unclosed `{{`") })?
            + start;
        let field = &rest[start + 1..end];
        let (name, spec) = field.split_once(':').unwrap_or((field, ""));
        let value = match name {
            "epoch" => trainer.state().epoch.to_string(),
            "step" => trainer.state().global_step.to_string(),
            metric => {
                let v = trainer.state().metric(metric, "it appears in the ModelCheckpoint filename template")?;
                match spec.strip_prefix('.').and_then(|s| s.strip_suffix('f')).and_then(|p| p.parse::<usize>().ok()) {
                    Some(precision) => format!("{v:.precision$}"),
                    None => format!("{v}"),
                }
            }
        };
        out.push_str(&format!("{name}={value}"));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ModelCheckpoint {
    /// The folder: `dirpath`, else `checkpoints/` in the run's version folder; absolute, so
    /// the paths in checkpoints (best, last, top k) still name the files when a run is resumed
    /// or tested from another working directory.
    fn dir<M: LightningModule>(&self, trainer: &TrainerView<'_, M>) -> PathBuf {
        let dir = match &self.dirpath {
            Some(dir) => dir.clone(),
            None => trainer.state().log_dir.clone().unwrap_or_else(|| trainer.state().default_root_dir.clone()).join("checkpoints"),
        };
        std::path::absolute(&dir).unwrap_or(dir)
    }

    fn epoch_due(&self, epoch: u64) -> bool {
        self.every_n_epochs > 0 && (epoch + 1).is_multiple_of(self.every_n_epochs)
    }
}

impl<M: LightningModule> Callback<M> for ModelCheckpoint {
    fn state_key(&self) -> String {
        // As Lightning's: two checkpoint callbacks that differ in these keep separate states.
        let monitor = self.monitor.as_deref().unwrap_or("none");
        format!(
            "ModelCheckpoint{{monitor={monitor}, mode={:?}, every_n_train_steps={}, every_n_epochs={}}}",
            self.mode, self.every_n_train_steps, self.every_n_epochs
        )
        .to_lowercase()
    }
    fn state_dict(&self) -> Option<serde_json::Value> {
        let kept: Vec<_> = self.kept.iter().map(|(s, p)| serde_json::json!([super::score_to_json(*s), p])).collect();
        Some(serde_json::json!({
            "dirpath": self.saved_dir,
            "best_model_path": self.best_model_path,
            "best_model_score": self.best_model_score.map(super::score_to_json),
            "last_model_path": self.last_model_path,
            "best_k_models": kept,
        }))
    }
    fn load_state_dict(&mut self, state: serde_json::Value) -> Result<()> {
        let path = |key: &str| state.get(key).and_then(|v| v.as_str()).map(PathBuf::from);
        self.best_model_path = path("best_model_path");
        self.best_model_score = super::score_from_json(state.get("best_model_score"));
        self.last_model_path = path("last_model_path");
        // The kept files count against `save_top_k` only when this run writes to the same folder.
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        if let (Some(dir), Some(saved)) = (&self.dirpath, path("dirpath"))
            && absolute(dir) == absolute(&saved)
        {
            let kept = state.get("best_k_models").and_then(|v| v.as_array()).cloned().unwrap_or_default();
            self.kept = kept
                .iter()
                .filter_map(|pair| Some((super::score_from_json(pair.get(0))?, PathBuf::from(pair.get(1)?.as_str()?))))
                .filter(|(_, p)| p.is_file())
                .collect();
        }
        Ok(())
    }
    fn writes_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint_dirpath(&self) -> Option<PathBuf> {
        self.dirpath.clone()
    }
    fn on_fit_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        trainer.set_best_model_path(self.best_model_path.clone());
        Ok(())
    }
    fn on_validation_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if self.epoch_due(trainer.state().epoch) { self.save(trainer) } else { Ok(()) }
    }
    fn on_train_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if !trainer.state().validation_enabled && self.epoch_due(trainer.state().epoch) { self.save(trainer) } else { Ok(()) }
    }
    /// On Ctrl-C, `save_last` writes `last.ckpt` at the interrupted position, so `fit_from(.., "last")`
    /// continues from there.
    fn on_exception(&mut self, trainer: &mut TrainerView<'_, M>, error: &Error) -> Result<()> {
        if !self.save_last || !matches!(error, Error::Interrupted { .. }) || trainer.state().fast_dev_run || !trainer.state().fitting {
            return Ok(());
        }
        let dir = self.dir(trainer);
        self.write_last(trainer, dir)
    }
    fn on_train_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, _batch_idx: usize) -> Result<()> {
        if self.every_n_train_steps > 0 && trainer.state().global_step.is_multiple_of(self.every_n_train_steps) { self.save(trainer) } else { Ok(()) }
    }
}
