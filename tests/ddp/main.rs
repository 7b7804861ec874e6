//! Data-parallel training under a real `mpirun` (Open MPI), one compute thread per rank.
//!
//! This binary is both the test driver (what `cargo test` runs) and, with `worker` as its first
//! argument, one rank of a run (`worker.rs`). Its own harness runs the cases in `cases.rs`, each
//! launching processes, one after another, and prints libtest's lines.

mod cases;
mod worker;

use std::io::Write;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        std::process::exit(worker::run(Path::new(&args[2]), &args[3..]));
    }
    // libtest's flags (`--nocapture`, `--test-threads N`) are accepted; a bare word filters.
    let filter = (1..args.len()).find(|&i| !args[i].starts_with('-') && args[i - 1] != "--test-threads").map(|i| args[i].clone());
    let cases: Vec<_> = cases::ALL.iter().filter(|(name, _)| filter.as_ref().is_none_or(|f| name.contains(f.as_str()))).collect();
    println!("\nrunning {} tests", cases.len());
    let mut failed = Vec::new();
    for (name, case) in &cases {
        print!("test {name} ... ");
        let _ = std::io::stdout().flush();
        match std::panic::catch_unwind(case) {
            Ok(()) => println!("ok"),
            Err(_) => {
                println!("FAILED");
                failed.push(*name);
            }
        }
    }
    let outcome = if failed.is_empty() { "ok" } else { "FAILED" };
    if !failed.is_empty() {
        println!("\nfailures:\n    {}", failed.join("\n    "));
    }
    println!(
        "\ntest result: {outcome}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out\n",
        cases.len() - failed.len(),
        failed.len(),
        cases::ALL.len() - cases.len()
    );
    std::process::exit(i32::from(!failed.is_empty()));
}
