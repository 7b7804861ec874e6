//! `CkptPath`: which checkpoint `fit_from` and `test_from` use, and how `last`/`best` are found.

use std::path::{Path, PathBuf};

use super::Trainer;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::module::LightningModule;

/// A checkpoint to resume or test from (Lightning's `ckpt_path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CkptPath {
    /// This file.
    Path(PathBuf),
    /// The most recently written checkpoint of this Trainer's checkpoint folders.
    Last,
    /// ModelCheckpoint's best checkpoint (of this run, or recorded in the last checkpoint).
    Best,
}

impl From<&str> for CkptPath {
    /// `"last"`, `"best"`, or a path.
    fn from(text: &str) -> Self {
        match text {
            "last" => CkptPath::Last,
            "best" => CkptPath::Best,
            path => CkptPath::Path(path.into()),
        }
    }
}

impl From<&Path> for CkptPath {
    fn from(path: &Path) -> Self {
        CkptPath::Path(path.to_path_buf())
    }
}

impl From<PathBuf> for CkptPath {
    fn from(path: PathBuf) -> Self {
        CkptPath::Path(path)
    }
}

impl<M: LightningModule> Trainer<M> {
    /// The folders checkpoints of this Trainer go to: callbacks' own dirpaths, and
    /// `checkpoints/` in every version folder of every logger (and under the root without one).
    fn checkpoint_dirs(&self) -> Vec<PathBuf> {
        let root = &self.config.default_root_dir;
        let mut dirs: Vec<PathBuf> = self.callbacks.iter().filter_map(|c| c.checkpoint_dirpath()).collect();
        dirs.push(root.join("checkpoints"));
        for logger in &self.loggers {
            let Ok(versions) = std::fs::read_dir(root.join(logger.name())) else { continue };
            dirs.extend(versions.filter_map(|v| v.ok()).map(|v| v.path().join("checkpoints")));
        }
        dirs
    }

    /// The newest `.ckpt` file in the checkpoint folders.
    fn last_checkpoint(&self) -> Result<PathBuf> {
        let dirs = self.checkpoint_dirs();
        let newest = dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max();
        newest.map(|(_, p)| p).ok_or_else(|| {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            Error::Config(format!("ckpt_path \"last\": no .ckpt file in {}; give a path instead", searched.join(", ")))
        })
    }

    /// The file a `CkptPath` names, checked to exist.
    pub(super) fn resolve_checkpoint(&self, ckpt: &CkptPath) -> Result<PathBuf> {
        let path = match ckpt {
            CkptPath::Path(path) => path.clone(),
            CkptPath::Last => self.last_checkpoint()?,
            CkptPath::Best => match &self.state.best_model_path {
                Some(path) => path.clone(),
                None => {
                    let last = self.last_checkpoint()?;
                    let checkpoint = Checkpoint::read(&last)?;
                    let best = checkpoint.header.callbacks.values().find_map(|s| s.get("best_model_path")?.as_str().map(PathBuf::from));
                    best.ok_or_else(|| {
                        Error::Config(format!(
                            "ckpt_path \"best\": no best checkpoint is known (the last checkpoint {} records none); add ModelCheckpoint with a `monitor`, or give a path",
                            last.display()
                        ))
                    })?
                }
            },
        };
        if !path.is_file() {
            return Err(Error::checkpoint(path, "no such file"));
        }
        Ok(path)
    }
}
