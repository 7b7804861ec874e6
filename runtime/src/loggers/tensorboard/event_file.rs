//! TensorBoard's event-file framing (TFRecord): per record, u64 LE length, u32 LE masked CRC-32C
//! of those 8 bytes, the payload, u32 LE masked CRC-32C of the payload.

use std::path::Path;

use crate::error::Result;
use crate::loggers::record_file::RecordFile;

/// TFRecord's checksum mask: rotate right by 15 bits, add a constant.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// Appends records to an event file.
#[derive(Debug)]
pub struct EventFile {
    out: RecordFile,
}

impl EventFile {
    /// Creates `path` (which must not exist).
    pub fn create(path: &Path) -> Result<Self> {
        Ok(EventFile { out: RecordFile::create(path)? })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.out.path()
    }

    /// Appends one record.
    pub fn append(&mut self, payload: &[u8]) -> Result<()> {
        let len = (payload.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(payload.len() + 16);
        record.extend_from_slice(&len);
        record.extend_from_slice(&masked_crc(&len).to_le_bytes());
        record.extend_from_slice(payload);
        record.extend_from_slice(&masked_crc(payload).to_le_bytes());
        self.out.append(&record)
    }

    /// Writes the pending records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()
    }

    /// Flushes and asks the OS to persist the file.
    pub fn sync(&mut self) -> Result<()> {
        self.out.sync()
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
