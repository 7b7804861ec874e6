//! `Cifar10DataModule` against a small archive in the exact CIFAR-10 binary format, served from a
//! loopback HTTP server: download, checksum, resume, extraction, parsing, split, normalization.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use fulmen::prelude::*;

use crate::probe::temp_dir;

const CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// One CIFAR-10 batch file of `n` records: label `i % 10`, every pixel `(label * 20 + i) % 256`.
fn batch_file(n: usize, offset: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let label = ((i + offset) % 10) as u8;
        out.push(label);
        out.extend(std::iter::repeat_n(((label as usize * 20 + i) % 256) as u8, 3072));
    }
    out
}

/// A cifar-10-binary.tar.gz with `per_batch` images in each of the 5 training batches and
/// `test` test images, plus an entry that tries to escape the data folder.
fn archive(per_batch: usize, test: usize, first_batch: Option<Vec<u8>>) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        tar.append(&header, data).unwrap();
    };
    add("cifar-10-batches-bin/batches.meta.txt", (CLASSES.join("\n") + "\n\n").as_bytes());
    for b in 1..=5 {
        let data = match (&first_batch, b) {
            (Some(custom), 1) => custom.clone(),
            _ => batch_file(per_batch, b),
        };
        add(&format!("cifar-10-batches-bin/data_batch_{b}.bin"), &data);
    }
    add("cifar-10-batches-bin/test_batch.bin", &batch_file(test, 0));
    add("cifar-10-batches-bin/readme.html", b"<html></html>");
    add("../escaped.txt", b"must never be written");
    tar.into_inner().unwrap().finish().unwrap()
}

/// What the server does wrong on its first response (later ones are served in full).
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Announces the full length but closes after this many bytes.
    Cut(usize),
    /// Sends this many bytes, then nothing for 10 s with the connection open.
    Stall(usize),
    /// Announces no length and sends the file followed by zeros without end.
    Endless,
    /// Announces twice the file's length.
    Oversized,
}

/// A loopback HTTP server for one file. It honours `Range: bytes=N-`.
struct Server {
    url: String,
    md5: String,
    size: u64,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

fn serve(body: Vec<u8>, fault: Fault) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    let (md5, size) = (md5_of(&body), body.len() as u64);
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().take(8).enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(v.trim().trim_end_matches('-').to_string());
                }
            }
            seen.lock().unwrap().push(range.clone());
            let fault = if n == 0 { fault } else { Fault::None };
            let start: usize = range.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
            let part = &body[start.min(body.len())..];
            let length = match fault {
                Fault::Endless => String::new(),
                Fault::Oversized => format!("Content-Length: {}\r\n", 2 * part.len()),
                _ => format!("Content-Length: {}\r\n", part.len()),
            };
            let head = if range.is_some() {
                format!("HTTP/1.1 206 Partial Content\r\n{length}Content-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n", body.len() - 1, body.len())
            } else {
                format!("HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n")
            };
            let _ = stream.write_all(head.as_bytes());
            match fault {
                Fault::Cut(cut) => {
                    let _ = stream.write_all(&part[..cut]);
                }
                Fault::Stall(cut) => {
                    let _ = stream.write_all(&part[..cut]);
                    let _ = stream.flush();
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_secs(10));
                        drop(stream);
                    });
                    continue;
                }
                Fault::Endless => {
                    let _ = stream.write_all(part);
                    let zeros = vec![0u8; 1 << 16];
                    while stream.write_all(&zeros).is_ok() {}
                }
                Fault::None | Fault::Oversized => {
                    let _ = stream.write_all(part);
                }
            }
            let _ = stream.flush();
        }
    });
    Server { url, md5, size, ranges }
}

fn md5_of(bytes: &[u8]) -> String {
    static SERVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = temp_dir(&format!("cifar-md5-of-{n}")).join("archive");
    std::fs::write(&p, bytes).unwrap();
    let md5 = fulmen::data::md5_file(&p).unwrap();
    let _ = std::fs::remove_dir_all(p.parent().unwrap());
    md5
}

fn module(dir: &std::path::Path, server: &Server) -> Cifar10DataModule {
    Cifar10DataModule::new(dir).url(&server.url).expected_archive(&server.md5, server.size).val_size(10).batch_size(4).num_workers(0).show_progress(false)
}

#[test]
fn downloads_verifies_extracts_parses_and_splits() {
    let root = temp_dir("cifar-ok");
    let data = root.join("data");
    let bytes = archive(12, 7, None);
    let server = serve(bytes, Fault::None);
    let mut dm = module(&data, &server);
    dm.prepare_data().unwrap();
    dm.setup(SetupStage::Fit).unwrap();
    dm.setup(SetupStage::Test).unwrap();
    assert_eq!(dm.sizes(), [50, 10, 7]);
    assert_eq!(dm.class_names(), Some(CLASSES.map(String::from).to_vec()));
    assert!(!root.join("escaped.txt").exists() && !data.join("escaped.txt").exists(), "an archive path escaped the data folder");
    assert!(!data.join("cifar-10-batches-bin/readme.html").exists(), "only the expected files are extracted");

    // The test set in order: image i has label i % 10 and pixels (label*20 + i) / 255, normalized by 0.5/0.5.
    let batch = dm.test_dataloader().unwrap().unwrap().iter().next().unwrap().unwrap();
    assert_eq!(batch.inputs.dims(), [4, 3, 32, 32]);
    let targets: Vec<i64> = batch.targets.into_data().iter::<i64>().collect();
    assert_eq!(targets, vec![0, 1, 2, 3]);
    let pixels: Vec<f32> = batch.inputs.into_data().try_to_vec().unwrap();
    let expected = ((20 + 1) as f32 / 255.0 - 0.5) / 0.5;
    assert!((pixels[3072] - expected).abs() < 1e-6, "{} vs {expected}", pixels[3072]);

    // The same seed splits the same way; present files are not downloaded again.
    let mut again = module(&data, &server);
    again.prepare_data().unwrap();
    again.setup(SetupStage::Fit).unwrap();
    let first = |dm: &Cifar10DataModule| dm.val_samples(10).unwrap();
    assert_eq!(first(&dm), first(&again));
    assert_eq!(server.ranges.lock().unwrap().len(), 1, "the archive was downloaded twice");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_checksum_mismatch_is_an_error_that_leaves_nothing_behind() {
    let root = temp_dir("cifar-md5");
    let data = root.join("data");
    let server = serve(archive(2, 2, None), Fault::None);
    let wrong = "00000000000000000000000000000000";
    let err = module(&data, &server).expected_archive(wrong, server.size).prepare_data().unwrap_err().to_string();
    assert!(err.contains("checksum mismatch") && err.contains(&server.url), "{err}");
    let left: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let root = temp_dir("cifar-resume");
    let data = root.join("data");
    let bytes = archive(6, 3, None);
    let half = bytes.len() / 2;
    let server = serve(bytes, Fault::Cut(half));
    let err = module(&data, &server).prepare_data().unwrap_err().to_string();
    assert!(err.contains("resume"), "{err}");
    assert_eq!(std::fs::metadata(data.join("cifar-10-binary.tar.gz.part")).unwrap().len(), half as u64);
    let mut dm = module(&data, &server);
    dm.prepare_data().unwrap();
    dm.setup(SetupStage::Fit).unwrap();
    assert_eq!(dm.sizes()[0] + dm.sizes()[1], 30);
    assert_eq!(*server.ranges.lock().unwrap(), vec![None, Some(half.to_string())], "the second request must ask for the rest");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_server_that_stalls_mid_body_times_out_and_the_next_run_resumes() {
    let root = temp_dir("cifar-stall");
    let data = root.join("data");
    let bytes = archive(6, 3, None);
    let third = bytes.len() / 3;
    let server = serve(bytes, Fault::Stall(third));
    let timeout = std::time::Duration::from_millis(500);
    let err = module(&data, &server).download_idle_timeout(timeout).prepare_data().unwrap_err().to_string();
    assert!(err.contains(&format!("interrupted after {third} bytes (the server sent nothing for 500ms)")), "{err}");
    assert!(err.contains("run again to resume"), "{err}");
    assert_eq!(std::fs::metadata(data.join("cifar-10-binary.tar.gz.part")).unwrap().len(), third as u64);
    module(&data, &server).prepare_data().unwrap();
    assert_eq!(*server.ranges.lock().unwrap(), vec![None, Some(third.to_string())]);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn an_endless_body_is_cut_off_at_the_archive_size_and_removed() {
    let root = temp_dir("cifar-endless");
    let data = root.join("data");
    let server = serve(archive(2, 2, None), Fault::Endless);
    let err = module(&data, &server).prepare_data().unwrap_err().to_string();
    assert!(err.contains(&format!("more than the file's {} bytes; nothing was kept", server.size)), "{err}");
    let left: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // The next run starts over and gets the file.
    module(&data, &server).prepare_data().unwrap();
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_server_announcing_more_than_the_archive_is_refused_before_writing() {
    let root = temp_dir("cifar-oversized");
    let data = root.join("data");
    let server = serve(archive(2, 2, None), Fault::Oversized);
    let err = module(&data, &server).prepare_data().unwrap_err().to_string();
    assert!(err.contains(&format!("the server announces {} bytes, more than the file's {} bytes", 2 * server.size, server.size)), "{err}");
    assert!(std::fs::read_dir(&data).unwrap().next().is_none(), "a file was written");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_batch_file_of_the_wrong_size_is_a_clear_error() {
    let root = temp_dir("cifar-size");
    let data = root.join("data");
    let mut bad = batch_file(3, 0);
    bad.truncate(bad.len() - 5);
    let bytes = archive(3, 2, Some(bad));
    let server = serve(bytes, Fault::None);
    let mut dm = module(&data, &server).val_size(2);
    dm.prepare_data().unwrap();
    let err = dm.setup(SetupStage::Fit).unwrap_err().to_string();
    assert!(err.contains("data_batch_1.bin") && err.contains("3073-byte"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn an_unreachable_server_is_an_error_naming_the_url() {
    let root = temp_dir("cifar-down");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz");
    let err = Cifar10DataModule::new(root.join("data")).url(&url).show_progress(false).prepare_data().unwrap_err().to_string();
    assert!(err.contains(&url), "{err}");
    let _ = std::fs::remove_dir_all(root);
}
