//! An append-only file that only ever receives whole records: the W&B run file and the
//! TensorBoard event file are written through it, so a run killed at any moment (SIGKILL, an
//! out-of-memory kill, a lost node) leaves files that every reader takes without complaint.
//! A `BufWriter` would not: it writes its buffer out whenever it fills, often in the middle of a
//! record, and the part after the kill is never written.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Records are held in memory until this many bytes are pending, then written in one call.
const WRITE_AT: usize = 64 * 1024;

/// Appends framed records to a file, whole records per write.
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
}

impl RecordFile {
    /// Creates `path` (which must not exist).
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::options().write(true).create_new(true).open(path).map_err(Error::io("cannot create", path))?;
        Ok(RecordFile { path: path.to_path_buf(), file, pending: Vec::with_capacity(WRITE_AT) })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record's bytes, framing included.
    pub fn append(&mut self, record: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(record);
        if self.pending.len() >= WRITE_AT { self.flush() } else { Ok(()) }
    }

    /// Writes the pending records to the file.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = self.file.write_all(&self.pending);
        self.pending.clear();
        written.map_err(Error::io("cannot write", &self.path))
    }

    /// Flushes and asks the OS to persist the file.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.file.sync_all().map_err(Error::io("cannot write", &self.path))
    }
}

impl Drop for RecordFile {
    fn drop(&mut self) {
        // Best effort, as `BufWriter` does: an error here has no caller to go to.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_on_disk_always_ends_at_a_record_boundary() {
        let path = std::env::temp_dir().join(format!("fulmen-record-file-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut file = RecordFile::create(&path).unwrap();
        let (mut boundaries, mut end) = (vec![0u64], 0u64);
        // Sizes around the write threshold and a buffered writer's usual 8 KiB.
        for (i, size) in [100usize, 8_000, 9_000, 30_000, 70_000, 5, 65_536, 1, 200_000, 17].into_iter().enumerate() {
            file.append(&vec![i as u8; size]).unwrap();
            end += size as u64;
            boundaries.push(end);
            let on_disk = std::fs::metadata(&path).unwrap().len();
            assert!(boundaries.contains(&on_disk), "after record {i} the file ends at byte {on_disk}, inside a record");
        }
        drop(file);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(bytes.len() as u64, end, "dropping the file writes what was pending");
        assert_eq!(bytes[bytes.len() - 17..], [9u8; 17]);
    }
}
