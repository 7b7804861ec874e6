//! README's tour, compiled as a user crate exactly as written and run twice on a small CIFAR-10
//! folder: the Trainer's `seed` makes the two runs log identical metrics.

use std::path::Path;
use std::process::Command;

use crate::probe::temp_dir;

/// The first ```rust block after "## A tour" in README.md.
fn tour_code() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let tour = &readme[readme.find("## A tour").expect("README has a tour")..];
    let start = tour.find("```rust\n").expect("the tour has a rust block") + "```rust\n".len();
    let end = start + tour[start..].find("```").expect("the block ends");
    tour[start..end].to_string()
}

/// `./data/cifar-10-batches-bin` with 5,050 training images (the tour's 5,000 go to validation)
/// and 100 test images of seeded noise.
fn write_cifar_folder(root: &Path) {
    let folder = root.join("data/cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    let mut rng = fulmen::rng::SplitMix64::new(9);
    let mut batch = |n: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(n * 3073);
        for _ in 0..n {
            out.push(rng.below(10) as u8);
            out.extend((0..3072).map(|_| rng.below(256) as u8));
        }
        out
    };
    for b in 1..=5 {
        std::fs::write(folder.join(format!("data_batch_{b}.bin")), batch(1010)).unwrap();
    }
    std::fs::write(folder.join("test_batch.bin"), batch(100)).unwrap();
    let classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
    std::fs::write(folder.join("batches.meta.txt"), classes.join("\n")).unwrap();
}

#[test]
fn the_tour_runs_as_written_and_twice_gives_the_same_metrics() {
    let code = tour_code();
    assert!(code.contains(".seed(42)"), "the tour seeds its Trainer");
    let binary = crate::user_crate::build("readme_tour", &code);
    let root = temp_dir("readme-tour");
    write_cifar_folder(&root);
    let run = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(root.join("data"), dir.join("data")).unwrap();
        let output = Command::new(&binary).current_dir(&dir).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "the tour failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let metrics = std::fs::read_to_string(dir.join("lightning_logs/version_0/metrics.csv")).expect("the tour logs metrics.csv");
        (stdout, metrics)
    };
    let (first_out, first) = run("first");
    let (_, second) = run("second");
    assert!(first.lines().count() > 2 && first.contains("val_loss") && first_out.contains("test_acc"), "{first_out}\n{first}");
    assert_eq!(first, second, "two runs of the tour logged different metrics");
    let _ = std::fs::remove_dir_all(root);
}
