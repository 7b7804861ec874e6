//! EmaWeightAveraging against an average computed by hand from the weights after every step;
//! validation sees the average and training continues from its own weights; the average
//! survives a resume.

use std::sync::{Arc, Mutex};

use fulmen::TrainerBuilder;
use fulmen::prelude::*;

use crate::probe::{PointsData, Probe, temp_dir};

type Seen = Arc<Mutex<Vec<(String, Vec<f32>)>>>;

/// Records the module's weights after each training batch, at each validation start and at
/// each training epoch end (it runs after the averaging callback).
struct Watch(Seen);

impl Watch {
    fn push(&self, what: &str, module: &Probe) {
        self.0.lock().unwrap().push((what.to_string(), module.values()));
    }
}

impl Callback<Probe> for Watch {
    fn on_train_batch_end(&mut self, t: &mut TrainerView<'_, Probe>, _batch_idx: usize) -> fulmen::Result<()> {
        self.push("step", t.module);
        Ok(())
    }
    fn on_validation_epoch_start(&mut self, t: &mut TrainerView<'_, Probe>) -> fulmen::Result<()> {
        self.push("validation", t.module);
        Ok(())
    }
    fn on_train_epoch_end(&mut self, t: &mut TrainerView<'_, Probe>) -> fulmen::Result<()> {
        self.push("epoch_end", t.module);
        Ok(())
    }
}

fn close(a: &[f32], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-6)
}

fn trainer(root: &std::path::Path, epochs: u64, decay: f64, seen: &Seen) -> TrainerBuilder<Probe> {
    Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(epochs)
        .num_sanity_val_steps(0)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .default_root_dir(root)
        .callback(EmaWeightAveraging::new(decay).unwrap())
        .callback(Watch(seen.clone()))
}

#[test]
fn the_average_is_the_exponential_average_of_the_weights_after_each_step() {
    let seen = Seen::default();
    let mut t = trainer(&temp_dir("ema"), 3, 0.8, &seen).build().unwrap();
    let probe = Probe::new(t.device(), vec![1.0]);
    let fitted = t.fit(probe, &mut PointsData { train: 16, val: 4, batch: 4 }).unwrap();
    let seen = seen.lock().unwrap().clone();

    let mut average: Option<Vec<f64>> = None;
    let mut steps = 0;
    for (what, values) in &seen {
        match what.as_str() {
            "step" => {
                steps += 1;
                average = Some(match average {
                    None => values.iter().map(|v| *v as f64).collect(),
                    Some(avg) => avg.iter().zip(values).map(|(a, v)| 0.8 * a + 0.2 * *v as f64).collect(),
                });
            }
            "validation" => assert!(close(values, average.as_ref().unwrap()), "validation runs on the average"),
            _ => {
                let last_step = seen.iter().filter(|(w, _)| w == "step").take(steps).last().unwrap();
                assert_eq!(values, &last_step.1, "after validation, training continues from its own weights");
            }
        }
    }
    assert_eq!(steps, 12);
    let average = average.unwrap();
    assert!(close(&fitted.values(), &average), "fit returns the average: {:?} vs {average:?}", fitted.values());
    let last = &seen.iter().rev().find(|(w, _)| w == "step").unwrap().1;
    assert!(!close(last, &average), "the average differs from the last weights (else the test shows nothing)");
}

#[test]
fn the_average_survives_a_resume() {
    let (full_root, split_root) = (temp_dir("ema-full"), temp_dir("ema-split"));
    let seen = Seen::default();
    let data = || PointsData { train: 16, val: 4, batch: 4 };
    let mut full = trainer(&full_root, 4, 0.5, &seen).build().unwrap();
    let probe = Probe::new(full.device(), vec![1.0]);
    let full_fit = full.fit(probe.clone(), &mut data()).unwrap();

    let checkpoint = || ModelCheckpoint::default().dirpath(split_root.join("ckpts")).save_last(true);
    let mut first = trainer(&split_root, 2, 0.5, &seen).callback(checkpoint()).build().unwrap();
    first.fit(probe.clone(), &mut data()).unwrap();
    let mut second = trainer(&split_root, 4, 0.5, &seen).callback(checkpoint()).build().unwrap();
    let resumed = second.fit_from(Probe::new(second.device(), vec![1.0]), &mut data(), "last").unwrap();
    assert_eq!(resumed.values(), full_fit.values(), "the resumed run's average is the uninterrupted run's");

    assert!(EmaWeightAveraging::<Probe>::new(1.0).unwrap_err().to_string().contains("decay must be in [0, 1)"));
}
