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
        // Each folder once, however it was named.
        let mut seen = std::collections::HashSet::new();
        dirs.retain(|d| seen.insert(std::path::absolute(d).unwrap_or_else(|_| d.clone())));
        dirs
    }

    /// The newest `.ckpt` file in the checkpoint folders. A `.ckpt` entry that cannot be read
    /// (a broken link, say) is an error, not skipped: the next newest may be from long before.
    fn last_checkpoint(&self) -> Result<PathBuf> {
        let dirs = self.checkpoint_dirs();
        let mut newest = None;
        for path in dirs.iter().filter_map(|d| std::fs::read_dir(d).ok()).flatten().filter_map(|e| e.ok()).map(|e| e.path()) {
            if path.extension().is_none_or(|x| x != "ckpt") {
                continue;
            }
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| Error::checkpoint(&path, format!("ckpt_path \"last\" found it but cannot read it ({e}); remove or repair it, or give a path")))?;
            if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
                newest = Some((modified, path));
            }
        }
        newest.map(|(_, p)| p).ok_or_else(|| {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            Error::Config(format!("ckpt_path \"last\": no .ckpt file in {}; give a path instead", searched.join(", ")))
        })
    }

    /// The file a `CkptPath` names (`"last"`, `"best"` or a path, as `fit_from` and `test_from`
    /// find it), checked to exist.
    pub fn resolve_checkpoint(&self, ckpt: &CkptPath) -> Result<PathBuf> {
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
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Err(Error::checkpoint(path, "is a folder, not a checkpoint file: name a .ckpt file in it, or use \"last\"")),
            Ok(_) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::checkpoint(path, "no such file")),
            Err(e) => Err(Error::checkpoint(path, format!("cannot be read: {e}")).caused_by(e)),
        }
    }
}
