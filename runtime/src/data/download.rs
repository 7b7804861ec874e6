//! Resumable, checksum-verified downloads: bytes go to `<dest>.part` (resumed with an HTTP Range
//! request after an interruption) and become `dest` only once their MD5 matches.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::error::{Error, Result};
use crate::progress::download_bar;

/// One file to download: where from, what it must be, and how long a silent server is waited for.
#[derive(Debug, Clone)]
pub struct Download<'a> {
    /// Where the file is.
    pub url: &'a str,
    /// Its MD5, as hex.
    pub md5: &'a str,
    /// Its size in bytes. A server announcing more is refused before a byte is written, and a body
    /// that runs past it is cut off and removed, so an endless body cannot fill the disk.
    pub size: u64,
    /// How long the server may send nothing (headers or body) before the download stops, keeping
    /// what it has for the next run to resume.
    pub idle_timeout: Duration,
    /// Shows a progress bar.
    pub show_progress: bool,
}

impl Download<'_> {
    /// Downloads to `dest` unless `dest` already exists, resuming a previous partial download, and
    /// checks the file's MD5. On a checksum mismatch or an oversized body nothing is left behind.
    pub fn to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Ok(());
        }
        let part = part_path(dest);
        self.fetch_into(&part)?;
        let actual = md5_file(&part)?;
        if !actual.eq_ignore_ascii_case(self.md5) {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Data(format!(
                "checksum mismatch for {}: expected MD5 {}, got {actual}. The file is corrupt or the server sends a \
                 different file; the partial download was removed, so run again to retry",
                self.url, self.md5
            )));
        }
        std::fs::rename(&part, dest).map_err(Error::io("cannot move the download into place at", dest))
    }

    fn fail(&self, what: String) -> Error {
        Error::Data(format!("cannot download {}: {what}", self.url))
    }

    /// The server sent more than the file's size: the bytes cannot be the file, so they go.
    fn oversized(&self, part: &Path, what: String) -> Error {
        let _ = std::fs::remove_file(part);
        self.fail(format!(
            "{what}, more than the file's {} bytes; nothing was kept. Check the URL, or give the size of the \
             archive you serve",
            self.size
        ))
    }

    fn fetch_into(&self, part: &Path) -> Result<()> {
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
        }
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if have > self.size {
            return Err(self.oversized(part, format!("{} already holds {have} bytes", part.display())));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(self.idle_timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.get(self.url);
        if have > 0 {
            request = request.header("Range", &format!("bytes={have}-"));
        }
        let response = request.call().map_err(|e| self.fail(e.to_string()))?;
        let start = match response.status().as_u16() {
            206 => have,
            200 => 0,
            416 if have > 0 => return Ok(()), // the partial file is already complete
            other => return Err(self.fail(format!("the server answered HTTP {other}"))),
        };
        let announced: Option<u64> = response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        if let Some(len) = announced
            && start.saturating_add(len) > self.size
        {
            return Err(self.oversized(part, format!("the server announces {} bytes", start.saturating_add(len))));
        }
        let mut file = if start > 0 {
            OpenOptions::new().append(true).open(part).map_err(Error::io("cannot open", part))?
        } else {
            File::create(part).map_err(Error::io("cannot create", part))?
        };
        let bar = download_bar(announced.map_or(self.size, |len| start + len), self.show_progress);
        bar.set_position(start);
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = start;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    bar.abandon();
                    let _ = file.sync_all();
                    let timed_out = e.get_ref().and_then(|inner| inner.downcast_ref::<ureq::Error>());
                    let why = if e.kind() == std::io::ErrorKind::TimedOut || matches!(timed_out, Some(ureq::Error::Timeout(_))) {
                        format!("the server sent nothing for {:?}", self.idle_timeout)
                    } else {
                        e.to_string()
                    };
                    return Err(self.fail(format!("interrupted after {total} bytes ({why}); run again to resume from {}", part.display())));
                }
            };
            if total + n as u64 > self.size {
                bar.abandon();
                drop(file);
                return Err(self.oversized(part, format!("the server sent {} bytes", total + n as u64)));
            }
            file.write_all(&buf[..n]).map_err(Error::io("cannot write", part))?;
            total += n as u64;
            bar.inc(n as u64);
        }
        file.sync_all().map_err(Error::io("cannot flush", part))?;
        bar.finish_and_clear();
        if let Some(len) = announced
            && total < start + len
        {
            return Err(self.fail(format!("the connection closed after {total} of {} bytes; run again to resume from {}", start + len, part.display())));
        }
        Ok(())
    }
}

/// The MD5 of a file, as lowercase hex.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(Error::io("cannot open", path))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(Error::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}
