//! Cost of one streaming-metric update per batch on the CPU (flex) backend, next to the cost
//! of the batch-mean accuracy the generated steps log: `cargo bench --bench metric_update`.
//! Set BENCH_ITERS to change the number of timed updates (default 2000).

use std::time::Instant;

use fulmen::metrics::{Accuracy, Average, ConfusionMatrix, Metric, Precision, accuracy, f1};
use fulmen::prelude::*;

fn main() {
    let device = Device::flex();
    let iters: usize = std::env::var("BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    for (batch, classes) in [(32, 10), (128, 10), (128, 100)] {
        let scores = Tensor::<2>::random([batch, classes], fulmen::burn::tensor::Distribution::Default, &device);
        let targets = Tensor::<1, Int>::from_data(
            fulmen::burn::tensor::TensorData::new((0..batch as i64).map(|i| i % classes as i64).collect::<Vec<_>>(), [batch]),
            &device,
        );
        println!("batch {batch}, {classes} classes ({iters} updates, then one compute):");
        let mut metrics: Vec<Box<dyn Metric>> = vec![
            Box::new(Accuracy::new(classes)),
            Box::new(Accuracy::new(classes).top_k(5.min(classes))),
            Box::new(f1(classes)),
            Box::new(Precision::new(classes).average(Average::Weighted)),
            Box::new(ConfusionMatrix::new(classes)),
        ];
        for metric in metrics.iter_mut() {
            let start = Instant::now();
            for _ in 0..iters {
                metric.update(&scores, &targets).expect("update");
            }
            let value = metric.compute().expect("compute");
            let per = start.elapsed().as_secs_f64() / iters as f64 * 1e6;
            let shown = value.scalar().map_or("matrix".to_string(), |v| format!("{v:.4}"));
            println!("  {:<22} {per:>8.1} µs/update  (value {shown})", metric.name());
        }
        let start = Instant::now();
        let mut sum = Tensor::<1>::zeros([1], &device);
        for _ in 0..iters {
            sum = sum + accuracy(scores.clone(), targets.clone());
        }
        let _ = sum.into_scalar::<f32>();
        let per = start.elapsed().as_secs_f64() / iters as f64 * 1e6;
        println!("  {:<22} {per:>8.1} µs/update  (batch mean, as the generated steps log `acc`)", "accuracy (tensor)");
    }
}
