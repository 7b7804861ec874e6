//! The `.wandb` file framing: a 7-byte header (`:W&B`, u16 LE 0xBEE1, version 0), then a
//! LevelDB-log stream in 32 KiB blocks counted from the file start. Each chunk has a 7-byte
//! header (u32 LE CRC-32/IEEE of type byte + payload, u16 LE length, u8 type) and never crosses a
//! block: a record too long for the rest of the block is split FIRST/MIDDLE/LAST, and a block
//! tail shorter than a chunk header is zero-padded.

use std::path::Path;

use crate::error::{Error, Result};
use crate::loggers::record_file::RecordFile;

/// The file header.
pub const FILE_HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xE1, 0xBE, 0];
/// The block size.
pub const BLOCK: usize = 32 * 1024;
/// The chunk header size.
pub const CHUNK_HEADER: usize = 7;

/// Chunk types.
const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// Appends records to a `.wandb` file.
#[derive(Debug)]
pub struct RecordLog {
    out: RecordFile,
    /// Bytes appended so far (the header included).
    offset: usize,
}

impl RecordLog {
    /// Creates `path` (which must not exist) and writes the file header.
    pub fn create(path: &Path) -> Result<Self> {
        let mut out = RecordFile::create(path)?;
        out.append(&FILE_HEADER)?;
        Ok(RecordLog { out, offset: FILE_HEADER.len() })
    }

    /// Appends one record (split into chunks as the blocks require).
    pub fn append(&mut self, record: &[u8]) -> Result<()> {
        let mut framed = Vec::with_capacity(record.len() + 2 * CHUNK_HEADER);
        let mut rest = record;
        let mut first = true;
        loop {
            let at = self.offset + framed.len();
            let left = BLOCK - at % BLOCK;
            if left < CHUNK_HEADER {
                framed.extend_from_slice(&[0u8; CHUNK_HEADER][..left]);
                continue;
            }
            let take = rest.len().min(left - CHUNK_HEADER);
            let end = take == rest.len();
            let kind = match (first, end) {
                (true, true) => FULL,
                (true, false) => FIRST,
                (false, true) => LAST,
                (false, false) => MIDDLE,
            };
            push_chunk(&mut framed, kind, &rest[..take]);
            rest = &rest[take..];
            first = false;
            if end {
                break;
            }
        }
        self.out.append(&framed)?;
        self.offset += framed.len();
        Ok(())
    }

    /// Bytes appended so far, the file header included (where the next chunk starts).
    pub fn offset(&self) -> usize {
        self.offset
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

/// One chunk: u32 LE CRC-32 of type byte + payload, u16 LE length, u8 type, the payload.
fn push_chunk(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(payload);
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// Reads every whole record of a `.wandb` file; stops at a truncated tail (a run killed
/// mid-write) and errors on a bad header or checksum.
pub fn read_records(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(Error::io("cannot read", path))?;
    parse_records(&bytes).map_err(|reason| Error::Media { what: format!("the W&B run file {}", path.display()), reason: format!("not readable: {reason}") })
}

/// [`read_records`] over bytes.
pub fn parse_records(bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    if bytes.len() < FILE_HEADER.len() || bytes[..FILE_HEADER.len()] != FILE_HEADER {
        return Err("the file header is not `:W&B` 0xBEE1 version 0".into());
    }
    let (mut pos, mut records, mut pending) = (FILE_HEADER.len(), Vec::new(), None::<Vec<u8>>);
    while pos < bytes.len() {
        let left = BLOCK - pos % BLOCK;
        if left < CHUNK_HEADER {
            pos += left;
            continue;
        }
        if pos + CHUNK_HEADER > bytes.len() {
            break;
        }
        let header = &bytes[pos..pos + CHUNK_HEADER];
        let crc = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let len = u16::from_le_bytes([header[4], header[5]]) as usize;
        let kind = header[6];
        let start = pos + CHUNK_HEADER;
        if start + len > bytes.len() {
            break;
        }
        if kind == 0 && len == 0 && crc == 0 {
            // Zero padding up to the block end.
            pos += left;
            continue;
        }
        let payload = &bytes[start..start + len];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[kind]);
        hasher.update(payload);
        if hasher.finalize() != crc {
            return Err(format!("checksum mismatch in the chunk at byte {pos}"));
        }
        match kind {
            FULL => records.push(payload.to_vec()),
            FIRST => pending = Some(payload.to_vec()),
            MIDDLE | LAST => {
                let Some(mut record) = pending.take() else {
                    return Err(format!("a continuation chunk at byte {pos} without a first chunk"));
                };
                record.extend_from_slice(payload);
                if kind == LAST {
                    records.push(record);
                } else {
                    pending = Some(record);
                }
            }
            other => return Err(format!("unknown chunk type {other} at byte {pos}")),
        }
        pos = start + len;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(records: &[Vec<u8>]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("fulmen-record-log-{}-{}", std::process::id(), records.len()));
        let _ = std::fs::remove_file(&dir);
        let mut log = RecordLog::create(&dir).unwrap();
        for r in records {
            log.append(r).unwrap();
        }
        log.flush().unwrap();
        drop(log);
        let bytes = std::fs::read(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        bytes
    }

    /// Every chunk stays inside its block, padding only where a header cannot fit.
    fn check_layout(bytes: &[u8]) {
        let mut pos = FILE_HEADER.len();
        while pos < bytes.len() {
            let left = BLOCK - pos % BLOCK;
            if left < CHUNK_HEADER {
                assert!(bytes[pos..pos + left.min(bytes.len() - pos)].iter().all(|&b| b == 0), "padding at {pos} is not zeros");
                pos += left;
                continue;
            }
            let len = u16::from_le_bytes([bytes[pos + 4], bytes[pos + 5]]) as usize;
            assert!(CHUNK_HEADER + len <= left, "the chunk at {pos} crosses a block boundary");
            pos += CHUNK_HEADER + len;
        }
        assert_eq!(pos, bytes.len(), "the last block is not padded");
    }

    #[test]
    fn records_ending_near_a_block_boundary_round_trip() {
        // The first record fills block 0 up to `gap` bytes before its end; the second follows.
        for gap in 0..=20 {
            let first_len = BLOCK - FILE_HEADER.len() - CHUNK_HEADER - gap;
            let records = vec![vec![0xAB; first_len], b"next".to_vec(), vec![7u8; 100]];
            let bytes = write(&records);
            check_layout(&bytes);
            assert_eq!(parse_records(&bytes).unwrap(), records, "gap {gap}");
            if gap == CHUNK_HEADER {
                // Exactly a header's room left: an empty FIRST chunk, then the record in block 1.
                let at = BLOCK - CHUNK_HEADER;
                assert_eq!((bytes[at + 4], bytes[at + 5], bytes[at + 6]), (0, 0, FIRST));
            }
            if gap < CHUNK_HEADER {
                assert!(bytes[BLOCK - gap..BLOCK].iter().all(|&b| b == 0), "gap {gap} not zero-padded");
            }
        }
    }

    #[test]
    fn records_larger_than_a_block_are_split() {
        let big: Vec<u8> = (0..3 * BLOCK + 123).map(|i| (i % 251) as u8).collect();
        let records = vec![b"a".to_vec(), big, b"b".to_vec(), Vec::new()];
        let bytes = write(&records);
        check_layout(&bytes);
        assert_eq!(parse_records(&bytes).unwrap(), records);
    }

    #[test]
    fn the_file_never_ends_inside_a_record_so_a_killed_run_stays_readable() {
        // wandb's reader calls a file ending inside a record incomplete: check what is on disk
        // after every append, without flushing, as a SIGKILL would leave it.
        let path = std::env::temp_dir().join(format!("fulmen-record-log-killed-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut log = RecordLog::create(&path).unwrap();
        let mut ends = vec![0, FILE_HEADER.len()];
        // Many small records (history rows) and some larger than a buffer or a block.
        let sizes = [8_000usize, 9_000, 20, 40_000, 3, 70_000, 8_185, 100_000, 1].into_iter().chain(std::iter::repeat_n(97, 2_000));
        for (i, size) in sizes.enumerate() {
            log.append(&vec![i as u8; size]).unwrap();
            ends.push(log.offset());
            let on_disk = std::fs::read(&path).unwrap();
            assert!(ends.contains(&on_disk.len()), "after record {i} the file ends at byte {}, inside a record", on_disk.len());
            if on_disk.len() > FILE_HEADER.len() {
                assert_eq!(parse_records(&on_disk).unwrap().len(), ends.iter().position(|&e| e == on_disk.len()).unwrap() - 1);
            }
        }
        drop(log);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_flipped_byte_is_a_checksum_error_and_a_cut_tail_is_dropped() {
        let records = vec![b"hello".to_vec(), b"world".to_vec()];
        let mut bytes = write(&records);
        let cut = parse_records(&bytes[..bytes.len() - 2]).unwrap();
        assert_eq!(cut, vec![b"hello".to_vec()]);
        bytes[FILE_HEADER.len() + CHUNK_HEADER + 1] ^= 0x10;
        assert!(parse_records(&bytes).unwrap_err().contains("checksum"));
        bytes[0] = b'X';
        assert!(parse_records(&bytes).unwrap_err().contains("header"));
    }
}
