//! The Python reference readers (wandb, tensorboard, scikit-learn) for checks against the real
//! clients: `FULMEN_REFERENCE_PYTHON` when set (`.ci/run` sets it), else a venv at
//! `target/reference-venv`, created from tests/fixtures/readers/requirements.txt on first use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use fulmen::serde_json;

const REQUIREMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/readers/requirements.txt");
/// The checks script.
pub const CHECK_RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/readers/check_run.py");

/// The Python interpreter with the readers installed.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON.get_or_init(find_or_create).clone().unwrap_or_else(|e| panic!("{e}"))
}

fn find_or_create() -> Result<PathBuf, String> {
    if let Ok(python) = std::env::var("FULMEN_REFERENCE_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/reference-venv");
    let python = venv.join("bin/python");
    let marker = venv.join("installed.txt");
    let wanted = std::fs::read_to_string(REQUIREMENTS).map_err(|e| format!("cannot read {REQUIREMENTS}: {e}"))?;
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr))) }
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .map_err(|e| format!("the reader checks need Python 3 with venv (or FULMEN_REFERENCE_PYTHON): {e}"))?;
    run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "-r", REQUIREMENTS]))?;
    std::fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// Runs `check_run.py <mode> <spec>` with wandb's state kept out of $HOME; returns its output
/// on success and panics with it otherwise.
pub fn check(mode: &str, spec: &serde_json::Value, scratch: &Path) -> String {
    let spec_path = scratch.join(format!("spec-{mode}.json"));
    std::fs::write(&spec_path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
    let python = python();
    let bin = python.parent().expect("python lives in a bin folder");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(&python)
        .arg(CHECK_RUN)
        .arg(mode)
        .arg(&spec_path)
        .env("PATH", path)
        .env("WANDB_CACHE_DIR", scratch.join("wandb-cache"))
        .env("WANDB_DATA_DIR", scratch.join("wandb-data"))
        .env("WANDB_CONFIG_DIR", scratch.join("wandb-config"))
        .env("WANDB_MODE", "offline")
        .output()
        .expect("run the reader checks");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{mode} reader check failed:\n{text}");
    text
}
