//! The offline run folder's names and links: run ids, the UTC stamp in `offline-run-<stamp>-<id>`,
//! `latest-run`, and the last `_step` of earlier folders of a resumed run.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::proto::Record;
use super::record_log::read_records;
use crate::error::{Error, Result};

/// 8 characters of [a-z0-9], as wandb's ids.
pub fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.write_u32(std::process::id());
    let mut n = hasher.finish();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| {
            let c = alphabet[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

/// `YYYYMMDD_HHMMSS` in UTC.
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}_{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).or_else(|_| std::env::var("HOSTNAME")).unwrap_or_default()
}

/// The highest history `_step` in earlier offline folders of run `id`.
pub fn last_step(wandb_dir: &Path, id: &str) -> Result<Option<i64>> {
    let Ok(entries) = std::fs::read_dir(wandb_dir) else { return Ok(None) };
    let suffix = format!("-{id}");
    let mut last = None;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with("offline-run-") && name.ends_with(&suffix)) {
            continue;
        }
        let file = entry.path().join(format!("run-{id}.wandb"));
        if !file.exists() {
            continue;
        }
        for bytes in read_records(&file)? {
            if let Ok(Record { history: Some(h), .. }) = Record::decode(bytes.as_slice()) {
                let step = h.step.map_or(0, |s| s.num);
                last = Some(last.map_or(step, |l: i64| l.max(step)));
            }
        }
    }
    Ok(last)
}

/// Points `wandb/latest-run` at `run_dir` (a relative symlink, replaced atomically).
pub fn point_latest_run(wandb_dir: &Path, run_dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let link = wandb_dir.join("latest-run");
        let tmp = wandb_dir.join(format!(".latest-run.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let target = run_dir.file_name().expect("a run folder has a name");
        std::os::unix::fs::symlink(target, &tmp).map_err(Error::io("cannot create", &tmp))?;
        std::fs::rename(&tmp, &link).map_err(Error::io("cannot replace", &link))?;
    }
    #[cfg(not(unix))]
    let _ = (wandb_dir, run_dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_match_known_dates() {
        assert_eq!(utc_stamp(0), "19700101_000000");
        assert_eq!(utc_stamp(951_782_400), "20000229_000000");
        assert_eq!(utc_stamp(1_795_806_362), "20261127_190602");
    }
}
