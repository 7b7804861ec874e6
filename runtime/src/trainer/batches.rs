//! What every loop does before each batch, written once: number the batches, bound them by the
//! stage's limit (known once the first batch tells the batch size), start the progress bar,
//! turn a loader error (or an empty batch) into one naming the batch, and stop when Ctrl-C was
//! pressed.

use burn::data::dataloader::DataLoaderIterator;

use super::config::Limit;
use crate::data::Loader;
use crate::error::{Error, Result};
use crate::module::Batch;
use crate::progress::{Bar, ProgressBars};

/// One stage's batches, in order.
pub(super) struct Batches<'a, B> {
    iter: Box<dyn DataLoaderIterator<B> + 'a>,
    loader: &'a Loader<B>,
    limit: Limit,
    cap: Option<usize>,
    bound: Option<usize>,
    next: usize,
    loader_name: &'static str,
    bar: Bar,
    title: String,
}

impl<'a, B: Batch> Batches<'a, B> {
    /// The batches of `loader`, at most `limit` of them (and at most `cap`), shown on `bar`
    /// as `title`; errors name the loader as `the <loader_name> loader`.
    pub fn new(loader: &'a Loader<B>, limit: Limit, cap: Option<usize>, loader_name: &'static str, bar: Bar, title: String) -> Self {
        Batches { iter: loader.iter(), loader, limit, cap, bound: None, next: 0, loader_name, bar, title }
    }

    /// The next batch and its index, or `None` when the loader or the limit is exhausted.
    /// `stop`: Ctrl-C (or SIGTERM) asked the loop to stop; `position` (epoch, global step) goes
    /// into its error.
    pub fn next(&mut self, bars: &mut ProgressBars, position: (u64, u64), stop: bool) -> Result<Option<(usize, B)>> {
        if self.at_bound() {
            return Ok(None);
        }
        let Some(batch) = self.iter.next() else { return Ok(None) };
        let index = self.next;
        let batch = batch.map_err(|e| Error::Data(format!("the {} loader failed at batch {index}: {e}", self.loader_name)))?;
        if batch.batch_size() == 0 {
            return Err(Error::Data(format!(
                "the {} loader gave an empty batch (batch {index}); every batch needs at least one sample: drop empty batches in the data module",
                self.loader_name
            )));
        }
        if self.bound.is_none() {
            let total = estimate_batches(self.loader, batch.batch_size());
            let bound = self.limit.batches(Some(total)).unwrap_or(total);
            let bound = self.cap.map_or(bound, |cap| cap.min(bound));
            self.bound = Some(bound);
            bars.start(self.bar, std::mem::take(&mut self.title), Some(bound as u64));
            if bound == 0 {
                return Ok(None);
            }
        }
        if stop {
            let (epoch, step) = position;
            return Err(Error::Interrupted { epoch, step });
        }
        self.next += 1;
        Ok(Some((index, batch)))
    }

    /// Whether the limit is reached (the next call returns `None`).
    pub fn at_bound(&self) -> bool {
        self.bound.is_some_and(|bound| self.next >= bound)
    }

    /// How many batches this stage runs (known after the first).
    pub fn bound(&self) -> Option<usize> {
        self.bound
    }
}

/// Batches in a loader, from its item count and the size of its first batch.
fn estimate_batches<B>(loader: &Loader<B>, first_batch: usize) -> usize {
    loader.num_items().div_ceil(first_batch.max(1))
}
