//! What the Trainer does between backward and step: gradient accumulation and clipping; and
//! Ctrl-C, which stops a fit gracefully.

use fulmen::prelude::*;

use crate::probe::{PointsData, Probe, temp_dir};

fn trainer(configure: impl FnOnce(fulmen::TrainerBuilder<Probe>) -> fulmen::TrainerBuilder<Probe>) -> Trainer<Probe> {
    let builder = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(1)
        .num_sanity_val_steps(0)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false);
    configure(builder).build().unwrap()
}

fn outputs(model: &Probe) -> Vec<f32> {
    let x = Tensor::<2>::from_floats([[0.5, -0.5], [0.25, -0.25], [1.0, -1.0]], &Device::flex());
    model.forward(x).into_data().try_to_vec().unwrap()
}

#[test]
fn accumulating_two_batches_of_4_steps_like_one_batch_of_8() {
    let start = Probe::new(&Device::flex(), vec![1.0]);
    let mut accumulating = trainer(|b| b.accumulate_grad_batches(2));
    let a = accumulating.fit(start.clone(), &mut PointsData { train: 32, val: 0, batch: 4 }).unwrap();
    let mut plain = trainer(|b| b);
    let b = plain.fit(start.clone(), &mut PointsData { train: 32, val: 0, batch: 8 }).unwrap();
    assert_eq!((accumulating.state().global_step, plain.state().global_step), (4, 4));
    for (x, y) in outputs(&a).iter().zip(outputs(&b)) {
        assert!((x - y).abs() < 1e-5, "{:?} vs {:?}", outputs(&a), outputs(&b));
    }
    assert_ne!(outputs(&a), outputs(&start), "it trained");
    // A last, incomplete accumulation still steps: 5 batches with accumulate 2 → 3 steps.
    let mut odd = trainer(|b| b.accumulate_grad_batches(2));
    odd.fit(start, &mut PointsData { train: 20, val: 0, batch: 4 }).unwrap();
    assert_eq!(odd.state().global_step, 3);
}

#[test]
fn clipping_bounds_the_update() {
    let start = Probe::new(&Device::flex(), vec![1.0]);
    let moved = |clip: Option<GradientClip>| {
        let mut t = trainer(|b| match clip {
            Some(c) => b.gradient_clip(c).max_steps(1),
            None => b.max_steps(1),
        });
        let trained = t.fit(start.clone(), &mut PointsData { train: 8, val: 0, batch: 8 }).unwrap();
        outputs(&trained).iter().zip(outputs(&start)).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max)
    };
    let free = moved(None);
    let by_norm = moved(Some(GradientClip::Norm(1e-4)));
    let by_value = moved(Some(GradientClip::Value(1e-5)));
    // SGD lr 0.1: a gradient of norm ≤ 1e-4 moves an output by at most 0.1·1e-4·(|x| + 1).
    assert!(free > 1e-3, "{free}");
    assert!(by_norm < 2.1e-5 && by_norm > 0.0, "{by_norm}");
    assert!(by_value < 1e-5 && by_value > 0.0, "{by_value}");
    let err = Trainer::<Probe>::builder().gradient_clip(GradientClip::Norm(-1.0)).build().err().expect("an error").to_string();
    assert!(err.contains("positive"), "{err}");
    let err = Trainer::<Probe>::builder().accumulate_grad_batches(0).build().err().expect("an error").to_string();
    assert!(err.contains("accumulate_grad_batches"), "{err}");
}

/// Set in the child process of the Ctrl-C test: the folder it trains in.
const SIGINT_CHILD_ROOT: &str = "FULMEN_TEST_SIGINT_CHILD_ROOT";

/// Set in the child process: interrupt from inside epoch 1's validation instead of waiting
/// for a signal.
const INTERRUPT_IN_VALIDATION: &str = "FULMEN_TEST_INTERRUPT_IN_VALIDATION";

/// Writes `started` after a few steps and `exception` from on_exception.
struct Marker(std::path::PathBuf);

impl Callback<Probe> for Marker {
    fn on_validation_batch_start(&mut self, t: &mut TrainerView<'_, Probe>, _batch_idx: usize) -> fulmen::Result<()> {
        // Asked during the first of epoch 1's two validation batches; seen before the second.
        if std::env::var(INTERRUPT_IN_VALIDATION).is_ok() && t.state().epoch == 1 && !t.state().sanity_checking {
            fulmen::interrupt::request();
        }
        Ok(())
    }
    fn on_train_batch_end(&mut self, t: &mut TrainerView<'_, Probe>, _batch_idx: usize) -> fulmen::Result<()> {
        if t.state().global_step == 5 && !self.0.join("started").exists() {
            std::fs::write(self.0.join("started"), b"").map_err(fulmen::Error::user)?;
        }
        // Slow the loop down so the signal lands mid-training.
        std::thread::sleep(std::time::Duration::from_millis(2));
        Ok(())
    }
    fn on_exception(&mut self, _t: &mut TrainerView<'_, Probe>, error: &fulmen::Error) -> fulmen::Result<()> {
        std::fs::write(self.0.join("exception"), error.to_string()).map_err(fulmen::Error::user)
    }
}

/// In the child process (SIGINT_CHILD_ROOT set): trains "forever" until interrupted, checks that
/// fit ended with Error::Interrupted and writes the error to `result`. Returns whether it ran.
fn run_as_child() -> bool {
    let Ok(root) = std::env::var(SIGINT_CHILD_ROOT) else { return false };
    let root = std::path::PathBuf::from(root);
    let mut trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(100_000)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .log_every_n_steps(1)
        .default_root_dir(&root)
        .callback(Marker(root.clone()))
        .callback(ModelCheckpoint::default().dirpath(root.join("ckpts")).save_last(true))
        .build()
        .unwrap();
    let err = trainer.fit(Probe::new(trainer.device(), vec![1.0]), &mut PointsData { train: 16, val: 8, batch: 4 }).unwrap_err();
    std::fs::write(root.join("result"), err.to_string()).unwrap();
    assert!(matches!(err, fulmen::Error::Interrupted { .. }), "{err}");
    true
}

#[test]
fn ctrl_c_stops_fit_gracefully() {
    if run_as_child() {
        return;
    }
    let root = temp_dir("sigint");
    let last = interrupted_child(&root, Stop::Signal("INT"));
    assert!(last.header.global_step >= 5, "last.ckpt holds the interrupted position: {:?}", last.header.position());
}

#[test]
fn sigterm_stops_fit_gracefully() {
    if run_as_child() {
        return;
    }
    let root = temp_dir("sigterm");
    let last = interrupted_child(&root, Stop::Signal("TERM"));
    assert!(last.header.global_step >= 5, "last.ckpt holds the interrupted position: {:?}", last.header.position());
}

#[test]
fn an_interrupt_during_validation_is_redone_on_resume() {
    if run_as_child() {
        return;
    }
    let root = temp_dir("sigint-validation");
    let last = interrupted_child(&root, Stop::InValidation);
    // Epoch 1's 4 training batches were done, its validation was not.
    let header = &last.header;
    assert_eq!((header.epoch, header.global_step, header.epoch_finished, header.validation_pending), (1, 8, true, true));
    assert!(!root.join("ckpts/epoch=1-step=8.ckpt").exists(), "the interrupted validation wrote its checkpoint");

    // The resume runs epoch 1's validation (and its checkpoint) before epoch 2, training nothing twice.
    let mut trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(3)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .log_every_n_steps(1)
        .default_root_dir(&root)
        .callback(ModelCheckpoint::default().dirpath(root.join("ckpts")).save_last(true).save_top_k(-1))
        .build()
        .unwrap();
    let losses = vec![0.5, 0.25, 0.125];
    trainer.fit_from(Probe::new(trainer.device(), losses), &mut PointsData { train: 16, val: 8, batch: 4 }, "last").unwrap();
    assert_eq!(trainer.state().global_step, 12, "epoch 2's 4 steps only");
    assert!(root.join("ckpts/epoch=1-step=8.ckpt").is_file(), "epoch 1's validation checkpoint");
    assert!(root.join("ckpts/epoch=2-step=12.ckpt").is_file());
    let csv = crate::probe::read_csv(&root.join("lightning_logs/version_1/metrics.csv"));
    let val: Vec<(u64, f64)> = crate::probe::column(&csv, "val_loss");
    assert_eq!(val, vec![(7, 0.25), (11, 0.125)], "epoch 1's and epoch 2's validation, at their last steps");
}

/// How the child fit is stopped.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// `kill -<signal>` after step 5.
    Signal(&'static str),
    /// The child asks for the stop itself, inside epoch 1's validation.
    InValidation,
}

/// Runs the child fit, stops it as `stop` says, and checks the graceful stop; returns its
/// last.ckpt.
fn interrupted_child(root: &std::path::Path, stop: Stop) -> fulmen::Checkpoint {
    let name = match stop {
        Stop::InValidation => "optimization::an_interrupt_during_validation_is_redone_on_resume",
        Stop::Signal("TERM") => "optimization::sigterm_stops_fit_gracefully",
        Stop::Signal(_) => "optimization::ctrl_c_stops_fit_gracefully",
    };
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", name, "--test-threads=1"]).env(SIGINT_CHILD_ROOT, root);
    if stop == Stop::InValidation {
        command.env(INTERRUPT_IN_VALIDATION, "1");
    }
    let mut child = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    if let Stop::Signal(signal) = stop {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !root.join("started").exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }
    let exit = child.wait().unwrap();
    assert!(exit.success(), "the child's fit did not end with Error::Interrupted: {:?}", std::fs::read_to_string(root.join("result")));
    let result = std::fs::read_to_string(root.join("result")).unwrap();
    assert!(result.starts_with("interrupted at global step"), "{result}");
    assert_eq!(std::fs::read_to_string(root.join("exception")).unwrap(), result, "on_exception saw the same error");
    let last = fulmen::Checkpoint::read(&root.join("ckpts/last.ckpt")).unwrap();
    assert!(result.contains(&format!("global step {} ", last.header.global_step)), "{result} vs {:?}", last.header.position());
    assert!(root.join("lightning_logs/version_0/metrics.csv").is_file());
    last
}
