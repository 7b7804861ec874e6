//! Lightning's `<save_dir>/<name>/version_N` folders, shared by the CSV and TensorBoard loggers.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A logger's run folder: `<save_dir>/<name>/version_<N>`, N the next free number unless set.
#[derive(Debug, Clone)]
pub struct VersionDir {
    save_dir: Option<PathBuf>,
    name: String,
    version: Option<u32>,
}

impl VersionDir {
    /// Under `save_dir` (`None`: the Trainer's `default_root_dir`), in experiment `name`.
    pub fn new(save_dir: Option<PathBuf>, name: &str) -> Self {
        VersionDir { save_dir, name: name.to_string(), version: None }
    }
    /// The experiment name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The save dir, once known.
    pub fn save_dir(&self) -> Option<PathBuf> {
        self.save_dir.clone()
    }
    /// The version number, once chosen.
    pub fn version(&self) -> Option<u32> {
        self.version
    }
    /// Renames the experiment.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }
    /// Fixes the version number.
    pub fn set_version(&mut self, version: u32) {
        self.version = Some(version);
    }
    /// Uses `root` when no save dir was given.
    pub fn set_default_root(&mut self, root: &Path) {
        self.save_dir.get_or_insert_with(|| root.to_path_buf());
    }
    /// `<save_dir>/<name>` while the version is still open (so loggers sharing it can agree).
    pub fn unversioned_base(&self) -> Option<PathBuf> {
        self.version.is_none().then(|| self.base())
    }
    fn base(&self) -> PathBuf {
        self.save_dir.clone().unwrap_or_else(|| PathBuf::from(".")).join(&self.name)
    }
    /// The version folder, created; picks the next free version on first use.
    pub fn dir(&mut self) -> Result<PathBuf> {
        let base = self.base();
        let version = match self.version {
            Some(v) => v,
            None => *self.version.insert(next_version(&base)?),
        };
        let dir = base.join(format!("version_{version}"));
        std::fs::create_dir_all(&dir).map_err(Error::io("cannot create", &dir))?;
        Ok(dir)
    }
}

/// The next free `version_N` folder under `dir` (0 when there is none), as Lightning numbers them.
pub fn next_version(dir: &Path) -> Result<u32> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("cannot list", dir)(e)),
    };
    let max = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("version_")?.parse::<u32>().ok())
        .max();
    Ok(max.map_or(0, |m| m + 1))
}

/// The `Logger` methods of a logger whose run folder is the [`VersionDir`] in field `$field`
/// (name, save dir, version, log dir and the shared-version handshake).
#[macro_export]
#[doc(hidden)]
macro_rules! version_dir_methods {
    ($field:ident) => {
        fn name(&self) -> &str {
            self.$field.name()
        }
        fn set_default_root(&mut self, root: &std::path::Path) {
            self.$field.set_default_root(root);
        }
        fn log_dir(&mut self) -> $crate::Result<Option<std::path::PathBuf>> {
            self.$field.dir().map(Some)
        }
        fn save_dir(&self) -> Option<std::path::PathBuf> {
            self.$field.save_dir()
        }
        fn version(&self) -> Option<String> {
            self.$field.version().map(|v| v.to_string())
        }
        fn unversioned_base(&self) -> Option<std::path::PathBuf> {
            self.$field.unversioned_base()
        }
        fn set_version(&mut self, version: u32) {
            self.$field.set_version(version);
        }
    };
}
