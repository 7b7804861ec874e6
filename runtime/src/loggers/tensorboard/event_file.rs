//! TensorBoard's event-file framing (TFRecord): per record, u64 LE length, u32 LE masked CRC-32C
//! of those 8 bytes, the payload, u32 LE masked CRC-32C of the payload.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// TFRecord's checksum mask: rotate right by 15 bits, add a constant.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// Appends records to an event file.
#[derive(Debug)]
pub struct EventFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventFile {
    /// Creates `path` (which must not exist).
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::options().write(true).create_new(true).open(path).map_err(Error::io("cannot create", path))?;
        Ok(EventFile { path: path.to_path_buf(), out: BufWriter::new(file) })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    pub fn append(&mut self, payload: &[u8]) -> Result<()> {
        let len = (payload.len() as u64).to_le_bytes();
        let result = (|| {
            self.out.write_all(&len)?;
            self.out.write_all(&masked_crc(&len).to_le_bytes())?;
            self.out.write_all(payload)?;
            self.out.write_all(&masked_crc(payload).to_le_bytes())
        })();
        result.map_err(Error::io("cannot write", &self.path))
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(Error::io("cannot write", &self.path))
    }

    /// Flushes and asks the OS to persist the file.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.out.get_ref().sync_all().map_err(Error::io("cannot write", &self.path))
    }
}

/// Reads the payloads of an event file, checking both checksums of every record; a truncated
/// last record (a killed writer) ends the list.
pub fn read_events(bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let (mut pos, mut out) = (0usize, Vec::new());
    while pos + 12 <= bytes.len() {
        let len_bytes = &bytes[pos..pos + 8];
        let crc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes"));
        if masked_crc(len_bytes) != crc {
            return Err(format!("length checksum mismatch at byte {pos}"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let start = pos + 12;
        if start + len + 4 > bytes.len() {
            break;
        }
        let payload = &bytes[start..start + len];
        let crc = u32::from_le_bytes(bytes[start + len..start + len + 4].try_into().expect("4 bytes"));
        if masked_crc(payload) != crc {
            return Err(format!("payload checksum mismatch at byte {start}"));
        }
        out.push(payload.to_vec());
        pos = start + len + 4;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc(b""), 0u32.rotate_right(15).wrapping_add(0xA282_EAD8));
    }

    #[test]
    fn records_round_trip_and_corruption_is_caught() {
        let path = std::env::temp_dir().join(format!("fulmen-events-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut file = EventFile::create(&path).unwrap();
        file.append(b"first").unwrap();
        file.append(&[9u8; 1000]).unwrap();
        file.sync().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read_events(&bytes).unwrap(), vec![b"first".to_vec(), vec![9u8; 1000]]);
        assert_eq!(read_events(&bytes[..bytes.len() - 3]).unwrap().len(), 1);
        bytes[14] ^= 1;
        assert!(read_events(&bytes).unwrap_err().contains("payload checksum"));
    }
}
