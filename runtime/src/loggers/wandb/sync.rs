//! `wandb sync` at the end of a run (`WandbLogger::sync_on_finish`).

use std::path::Path;

/// What `wandb sync` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Uploaded.
    Uploaded,
    /// The command ran and failed (no network, no API key, ...), with its message.
    Failed(String),
    /// The command is not installed.
    NotInstalled,
}

/// Runs `<program> sync <dir>` and prints the outcome; never an error (the run stays on disk).
pub fn sync(dir: &Path, program: &str) -> SyncOutcome {
    let outcome = match std::process::Command::new(program).arg("sync").arg(dir).output() {
        Ok(out) if out.status.success() => SyncOutcome::Uploaded,
        Ok(out) => SyncOutcome::Failed(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())),
        Err(_) => SyncOutcome::NotInstalled,
    };
    match &outcome {
        SyncOutcome::Uploaded => eprintln!("wandb sync: uploaded {}", dir.display()),
        SyncOutcome::Failed(why) => eprintln!("wandb sync failed ({why}); the run is kept, upload it later with `wandb sync {}`", dir.display()),
        SyncOutcome::NotInstalled => {
            eprintln!("wandb sync skipped: the `{program}` command is not installed (pip install wandb); upload later with `wandb sync {}`", dir.display())
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_reports_a_missing_or_failing_command_without_failing() {
        let dir = std::env::temp_dir();
        assert_eq!(sync(&dir, "fulmen-no-such-wandb-command"), SyncOutcome::NotInstalled);
        assert!(matches!(sync(&dir, "false"), SyncOutcome::Failed(_)));
        assert_eq!(sync(&dir, "true"), SyncOutcome::Uploaded);
    }
}
