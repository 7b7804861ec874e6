//! CIFAR-10 from the official binary archive: download (resumable, MD5-checked), safe extraction,
//! parsing of the fixed-size records, the tutorial's 45,000/5,000 seeded split and normalization.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::data::dataset::Dataset;

use super::batch::{ClassificationBatch, ImageBatcher, ImageItem, ImageSet, LoaderOptions};
use super::download::{Download, md5_file};
use super::transforms::Compose;
use super::{DataModule, Loader, SetupStage};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// The official archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Its published MD5.
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// Its size in bytes.
pub const CIFAR10_SIZE: u64 = 170_052_171;

const ARCHIVE: &str = "cifar-10-binary.tar.gz";
const FOLDER: &str = "cifar-10-batches-bin";
const TRAIN_FILES: [&str; 5] = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
const TEST_FILE: &str = "test_batch.bin";
const META_FILE: &str = "batches.meta.txt";
const IMAGE_LEN: usize = 3 * 32 * 32;
const RECORD_LEN: usize = 1 + IMAGE_LEN;

/// The tutorial's `CIFAR10DataModule`: `prepare_data` downloads and extracts once, `setup`
/// parses the batches and splits the 50,000 training images into 45,000/5,000 with a seeded shuffle.
#[derive(Debug, Clone)]
pub struct Cifar10DataModule {
    data_dir: PathBuf,
    url: String,
    md5: String,
    size: u64,
    idle_timeout: Duration,
    options: LoaderOptions,
    val_size: usize,
    show_progress: bool,
    transforms: Compose,
    train: Option<ImageSet>,
    val: Option<ImageSet>,
    test: Option<ImageSet>,
    classes: Vec<String>,
}

impl Cifar10DataModule {
    /// Data under `data_dir`; the URL is `FULMEN_CIFAR10_URL` when set, else the official one.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Cifar10DataModule {
            data_dir: data_dir.into(),
            url: std::env::var("FULMEN_CIFAR10_URL").unwrap_or_else(|_| CIFAR10_URL.to_string()),
            md5: CIFAR10_MD5.to_string(),
            size: CIFAR10_SIZE,
            idle_timeout: Duration::from_secs(30),
            options: LoaderOptions { batch_size: 32, num_workers: 2, seed: 42 },
            val_size: 5_000,
            show_progress: true,
            transforms: Compose::new(),
            train: None,
            val: None,
            test: None,
            classes: Vec::new(),
        }
    }
    /// Downloads from a mirror of the official archive instead.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }
    /// Expects another archive (one you built yourself in the same format): its MD5 and its size
    /// in bytes, which also caps the download.
    pub fn expected_archive(mut self, md5_hex: impl Into<String>, size: u64) -> Self {
        self.md5 = md5_hex.into();
        self.size = size;
        self
    }
    /// How long the server may send nothing before the download stops, keeping what it has for
    /// the next run to resume (default 30 s).
    pub fn download_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Sets how many training images go to validation (default 5,000).
    pub fn val_size(mut self, n: usize) -> Self {
        self.val_size = n;
        self
    }
    super::batch::loader_setters!();
    /// Sets the seed of the train/validation split and of the shuffling.
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self
    }
    /// Shows or hides the download progress bar.
    pub fn show_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }
    /// The URL the archive is downloaded from.
    pub fn source_url(&self) -> &str {
        &self.url
    }
    /// The folder the data lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// The batcher: mean/std 0.5 per channel, as the tutorial's transform.
    pub fn batcher(&self) -> ImageBatcher {
        ImageBatcher::new([3, 32, 32], &[0.5; 3], &[0.5; 3])
    }
    /// The first `n` validation images (after `setup(Fit)`), as the tutorial's `val_samples`.
    pub fn val_samples(&self, n: usize) -> Result<Vec<ImageItem>> {
        let val = self.val.as_ref().ok_or_else(|| Error::Data("call setup(SetupStage::Fit) before val_samples".into()))?;
        Ok((0..n).map_while(|i| val.item(i)).collect())
    }
    /// Sizes of the train, validation and test sets built by `setup`.
    pub fn sizes(&self) -> [usize; 3] {
        [&self.train, &self.val, &self.test].map(|s| s.as_ref().map_or(0, |s| s.len()))
    }

    fn folder(&self) -> PathBuf {
        self.data_dir.join(FOLDER)
    }

    fn extracted(&self) -> bool {
        let folder = self.folder();
        TRAIN_FILES.iter().chain([&TEST_FILE, &META_FILE]).all(|f| folder.join(f).is_file())
    }

    fn extract(&self, archive: &Path) -> Result<()> {
        let tmp = self.data_dir.join(format!("{FOLDER}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(Error::io("cannot create", &tmp))?;
        let result = extract_expected(archive, &tmp);
        if result.is_ok() {
            let folder = self.folder();
            let _ = std::fs::remove_dir_all(&folder);
            std::fs::rename(&tmp, &folder).map_err(Error::io("cannot move the extracted files to", &folder))?;
        } else {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn loader(&self, set: &ImageSet, train: bool) -> Loader<ClassificationBatch<4>> {
        self.options.loader(self.batcher(), set.clone(), train.then_some(&self.transforms))
    }
}

/// Copies only the seven expected files out of the archive, by exact name: no path from the
/// archive is ever joined to the file system, so nothing can escape `dest`.
fn extract_expected(archive: &Path, dest: &Path) -> Result<()> {
    let file = File::open(archive).map_err(Error::io("cannot open", archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| Error::Data(format!("{} is not a readable .tar.gz ({e}); delete it and run again", archive.display()));
    let wanted: Vec<&str> = TRAIN_FILES.iter().copied().chain([TEST_FILE, META_FILE]).collect();
    let mut found = Vec::new();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some(name) = path.strip_prefix(&format!("{FOLDER}/")).and_then(|n| wanted.iter().find(|w| **w == n)) else {
            continue;
        };
        let target = dest.join(name);
        let mut out = File::create(&target).map_err(Error::io("cannot create", &target))?;
        std::io::copy(&mut entry, &mut out).map_err(bad)?;
        found.push(*name);
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|w| !found.contains(w)).collect();
    if !missing.is_empty() {
        return Err(Error::Data(format!("{} lacks {FOLDER}/{}; it is not the CIFAR-10 binary archive", archive.display(), missing.join(", "))));
    }
    Ok(())
}

/// Parses CIFAR-10 binary batch files: records of one label byte and 3,072 pixel bytes.
fn read_batches(paths: &[PathBuf]) -> Result<ImageSet> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for path in paths {
        let mut bytes = Vec::new();
        File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(Error::io("cannot read", path))?;
        if bytes.is_empty() || bytes.len() % RECORD_LEN != 0 {
            return Err(Error::Data(format!(
                "{} has {} bytes, not a whole number of {RECORD_LEN}-byte CIFAR-10 records; delete the {FOLDER} folder and run again",
                path.display(),
                bytes.len()
            )));
        }
        for record in bytes.chunks_exact(RECORD_LEN) {
            if record[0] > 9 {
                return Err(Error::Data(format!("{} holds label {}; CIFAR-10 labels are 0..=9", path.display(), record[0])));
            }
            labels.push(record[0]);
            pixels.extend_from_slice(&record[1..]);
        }
    }
    Ok(ImageSet::new(pixels, labels, IMAGE_LEN))
}

impl DataModule for Cifar10DataModule {
    type Batch = ClassificationBatch<4>;

    /// The names in `batches.meta.txt` (after `setup`).
    fn class_names(&self) -> Option<Vec<String>> {
        (!self.classes.is_empty()).then(|| self.classes.clone())
    }

    fn prepare_data(&mut self) -> Result<()> {
        if self.extracted() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.data_dir).map_err(Error::io("cannot create", &self.data_dir))?;
        let archive = self.data_dir.join(ARCHIVE);
        if archive.exists() {
            let actual = md5_file(&archive)?;
            if !actual.eq_ignore_ascii_case(&self.md5) {
                return Err(Error::Data(format!(
                    "{} has MD5 {actual}, expected {}; delete it (or replace it with the official archive) and run again",
                    archive.display(),
                    self.md5
                )));
            }
        } else {
            let download = Download { url: &self.url, md5: &self.md5, size: self.size, idle_timeout: self.idle_timeout, show_progress: self.show_progress };
            download.to(&archive)?;
        }
        self.extract(&archive)
    }

    fn setup(&mut self, stage: SetupStage) -> Result<()> {
        self.options.check()?;
        self.transforms.check([3, 32, 32], [3, 32, 32])?;
        if !self.extracted() {
            return Err(Error::Data(format!("{} is missing; call prepare_data first", self.folder().display())));
        }
        let meta = self.folder().join(META_FILE);
        let text = std::fs::read_to_string(&meta).map_err(Error::io("cannot read", &meta))?;
        self.classes = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if self.classes.len() != 10 {
            return Err(Error::Data(format!("{} names {} classes, expected 10", meta.display(), self.classes.len())));
        }
        if matches!(stage, SetupStage::Fit | SetupStage::Validate) && self.train.is_none() {
            let all = read_batches(&TRAIN_FILES.map(|f| self.folder().join(f)))?;
            let n = all.len();
            if self.val_size == 0 || self.val_size >= n {
                return Err(Error::Config(format!("val_size {} must be between 1 and {} (the training images)", self.val_size, n - 1)));
            }
            let mut order: Vec<usize> = (0..n).collect();
            SplitMix64::new(self.options.seed).shuffle(&mut order);
            self.val = Some(all.select(&order[..self.val_size]));
            self.train = Some(all.select(&order[self.val_size..]));
        }
        if matches!(stage, SetupStage::Test | SetupStage::Predict) && self.test.is_none() {
            self.test = Some(read_batches(&[self.folder().join(TEST_FILE)])?);
        }
        Ok(())
    }

    fn train_dataloader(&self) -> Result<Loader<Self::Batch>> {
        let train = self.train.as_ref().ok_or_else(|| Error::Data("call setup(SetupStage::Fit) before train_dataloader".into()))?;
        Ok(self.loader(train, true))
    }
    fn val_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(self.val.as_ref().map(|v| self.loader(v, false)))
    }
    fn test_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(self.test.as_ref().map(|t| self.loader(t, false)))
    }
    fn predict_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        self.test_dataloader()
    }
}
