//! The progress bar: one bar per epoch with it/s and the `prog_bar` metrics, a transient bar for
//! validation, and download bars. Hidden when stderr is not a terminal (then one line per epoch).

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::module::Metrics;

/// A byte-progress bar for downloads (hidden when `show` is false).
pub fn download_bar(total: u64, show: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if !show {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}").expect("static template").progress_chars("=> "),
    );
    bar.set_message("downloading");
    bar
}

/// Which of the Trainer's two bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// The training epoch bar (kept on screen when the epoch ends).
    Main,
    /// The validation/test/predict bar (cleared when done).
    Eval,
}

/// The Trainer's bars: the epoch bar with the metrics, and an evaluation bar under it.
#[derive(Debug)]
pub struct ProgressBars {
    enabled: bool,
    terminal: bool,
    multi: MultiProgress,
    main: Option<ProgressBar>,
    eval: Option<ProgressBar>,
}

impl ProgressBars {
    /// Bars that draw only when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        ProgressBars { enabled, terminal: std::io::stderr().is_terminal(), multi: MultiProgress::new(), main: None, eval: None }
    }

    /// Whether bars are drawn (else an epoch line is printed instead).
    pub fn drawn(&self) -> bool {
        self.enabled && self.terminal
    }

    /// Starts `which` bar over `total` batches, titled `title` (e.g. `Epoch 3`).
    pub fn start(&mut self, which: Bar, title: String, total: Option<u64>) {
        if !self.drawn() {
            return;
        }
        let bar = self.multi.add(match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::no_length(),
        });
        let colour = if which == Bar::Main { "cyan/blue" } else { "green/white" };
        let template = format!("{{prefix}} {{bar:25.{colour}}} {{pos}}/{{len}} [{{elapsed}}<{{eta}}, {{its}}] {{msg}}");
        let style = ProgressStyle::with_template(&template)
            .expect("static template")
            .with_key("its", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.2}it/s", state.per_sec());
            })
            .progress_chars("━╸ ");
        bar.set_style(style);
        bar.set_prefix(title);
        if let Some(old) = self.slot(which).replace(bar) {
            old.finish_and_clear();
        }
    }

    /// Moves `which` bar to `position` batches (cheap: no metric is read).
    pub fn set_position(&self, which: Bar, position: u64) {
        let bar = if which == Bar::Main { &self.main } else { &self.eval };
        if let Some(bar) = bar {
            bar.set_position(position);
        }
    }

    /// Shows `metrics` next to the epoch bar.
    pub fn set_metrics(&self, metrics: &Metrics) {
        if let Some(bar) = &self.main {
            bar.set_message(format_metrics(metrics));
        }
    }

    /// Ends `which` bar: the epoch bar stays on screen, the evaluation bar is cleared.
    pub fn finish(&mut self, which: Bar) {
        if let Some(bar) = self.slot(which).take() {
            if which == Bar::Main { bar.finish() } else { bar.finish_and_clear() }
        }
    }

    /// Clears every bar (after an error).
    pub fn clear(&mut self) {
        for bar in [self.main.take(), self.eval.take()].into_iter().flatten() {
            bar.abandon();
        }
    }

    /// Prints a line above the bars; without bars, prints to stderr when enabled.
    pub fn println(&self, line: &str) {
        if self.drawn() {
            let _ = self.multi.println(line);
        } else if self.enabled {
            eprintln!("{line}");
        }
    }

    fn slot(&mut self, which: Bar) -> &mut Option<ProgressBar> {
        if which == Bar::Main { &mut self.main } else { &mut self.eval }
    }
}

/// `name=value` pairs as the bar shows them (4 significant digits).
pub fn format_metrics(metrics: &Metrics) -> String {
    metrics.iter().map(|(k, v)| format!("{k}={}", format_value(*v))).collect::<Vec<_>>().join(" ")
}

fn format_value(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) { format!("{v:.3e}") } else { format!("{v:.4}") }
}
