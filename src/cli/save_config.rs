//! Lightning's `SaveConfigCallback`: the resolved config written as `config.yaml` into the run's
//! version folder, next to `hparams.yaml`, so the run can be repeated with `--config`.

use fulmen_runtime::{Callback, Error, LightningModule, Result, SetupStage, TrainerView};

/// Writes `config.yaml` once, on rank 0, when the run's log folder is known.
pub struct SaveConfigCallback {
    text: String,
    written: bool,
}

impl SaveConfigCallback {
    /// Will write `text`.
    pub fn new(text: String) -> Self {
        SaveConfigCallback { text, written: false }
    }
}

impl<M: LightningModule> Callback<M> for SaveConfigCallback {
    fn setup(&mut self, trainer: &mut TrainerView<'_, M>, _stage: SetupStage) -> Result<()> {
        let state = trainer.state();
        let Some(dir) = state.log_dir.clone().filter(|_| !self.written && state.is_global_zero()) else { return Ok(()) };
        let path = dir.join("config.yaml");
        if path.exists() {
            return Err(Error::Cli(format!(
                "{} already exists and belongs to another run; give this run its own folder (--trainer.default_root_dir DIR) or move that file",
                path.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(Error::io("cannot create", &dir))?;
        std::fs::write(&path, &self.text).map_err(Error::io("cannot write", &path))?;
        self.written = true;
        Ok(())
    }
}
