//! Resumable, checksum-verified downloads: bytes go to `<dest>.part` (resumed with an HTTP Range
//! request after an interruption) and become `dest` only once their MD5 matches.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::error::{Error, Result};
use crate::progress::download_bar;

/// Downloads `url` to `dest` unless `dest` already exists, resuming a previous partial download,
/// and checks the file's MD5 against `md5_hex`. On a checksum mismatch nothing is left behind.
pub fn download_verified(url: &str, dest: &Path, md5_hex: &str, show_progress: bool) -> Result<()> {
    if dest.exists() {
        return Ok(());
    }
    let part = part_path(dest);
    fetch_into(url, &part, show_progress)?;
    let actual = md5_file(&part)?;
    if !actual.eq_ignore_ascii_case(md5_hex) {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Data(format!(
            "checksum mismatch for {url}: expected MD5 {md5_hex}, got {actual}. The file is corrupt or the \
             server sends a different file; the partial download was removed, so run again to retry"
        )));
    }
    std::fs::rename(&part, dest).map_err(Error::io("cannot move the download into place at", dest))
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

fn fetch_into(url: &str, part: &Path, show_progress: bool) -> Result<()> {
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
    }
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", &format!("bytes={have}-"));
    }
    let fail = |what: String| Error::Data(format!("cannot download {url}: {what}"));
    let response = request.call().map_err(|e| fail(e.to_string()))?;
    let status = response.status().as_u16();
    let (mut file, start) = match status {
        206 => (OpenOptions::new().append(true).open(part).map_err(Error::io("cannot open", part))?, have),
        200 => (File::create(part).map_err(Error::io("cannot create", part))?, 0),
        416 if have > 0 => return Ok(()), // the partial file is already complete
        other => return Err(fail(format!("the server answered HTTP {other}"))),
    };
    let remaining: Option<u64> = response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let bar = download_bar(remaining.map(|r| r + start), show_progress);
    bar.set_position(start);
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                return Err(fail(format!("interrupted after {} bytes ({e}); run again to resume from {}", start + received, part.display())));
            }
        };
        file.write_all(&buf[..n]).map_err(Error::io("cannot write", part))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    file.sync_all().map_err(Error::io("cannot flush", part))?;
    bar.finish_and_clear();
    if let Some(expected) = remaining
        && received < expected
    {
        return Err(fail(format!(
            "the connection closed after {} of {} bytes; run again to resume from {}",
            start + received,
            start + expected,
            part.display()
        )));
    }
    Ok(())
}
