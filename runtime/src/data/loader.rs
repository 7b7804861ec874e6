//! `OrderedLoader`: a data loader whose batch order depends only on the seed and the epoch.
//!
//! Burn's multi-threaded loader gives each worker a partition of the data and hands out batches
//! as they finish, so the order changes from run to run. Here worker `w` builds batches
//! `w, w + W, w + 2W, ...` into its own bounded channel and the iterator reads them round-robin:
//! batches arrive in order, prefetched in parallel. The shuffle of epoch `e` is a pure function
//! of `(seed, e)`, and `e` counts the loader's `iter()` calls, so a resumed run replays the
//! order by calling `iter()` once per finished epoch (O(1) each: the order is drawn and the
//! workers start on the first batch).
//!
//! In a data-parallel run each rank serves its shard of the epoch's order
//! ([`crate::strategy::Shard`], set by the Trainer for the loop it runs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::Device;

use super::transforms::item_rng;
use crate::rng::SplitMix64;
use crate::strategy::{Shard, shard};

/// A per-item transform, with the generator of that item's (seed, epoch, index).
type ItemTransform<I> = Arc<dyn Fn(I, &mut SplitMix64) -> I + Send + Sync>;

/// Batches prefetched per worker.
const PREFETCH: usize = 2;

/// A deterministic, optionally shuffled, optionally multi-threaded data loader.
pub struct OrderedLoader<I, O> {
    dataset: Arc<dyn Dataset<I>>,
    batcher: Arc<dyn Batcher<I, O>>,
    batch_size: usize,
    shuffle: Option<u64>,
    transform: Option<(u64, ItemTransform<I>)>,
    num_workers: usize,
    drop_last: bool,
    device: Device,
    range: (usize, usize),
    epoch: AtomicU64,
}

impl<I: Send + Sync + 'static, O: Send + 'static> OrderedLoader<I, O> {
    /// A loader over `dataset` in order, on the CPU (the Trainer moves it to its device), loading on the calling thread.
    pub fn new(dataset: impl Dataset<I> + 'static, batcher: impl Batcher<I, O> + 'static, batch_size: usize) -> Self {
        let len = dataset.len();
        OrderedLoader {
            dataset: Arc::new(dataset),
            batcher: Arc::new(batcher),
            batch_size: batch_size.max(1),
            shuffle: None,
            transform: None,
            num_workers: 0,
            drop_last: false,
            device: Device::flex(),
            range: (0, len),
            epoch: AtomicU64::new(0),
        }
    }

    /// Shuffles every epoch, with an order that depends only on `seed` and the epoch.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// Passes every item through `transform` before batching (on the workers), with a generator
    /// drawn from (`seed`, epoch, item index): a resumed run transforms each item as the full
    /// run did, whatever the batch size or the number of workers.
    pub fn transform(mut self, seed: u64, transform: impl Fn(I, &mut SplitMix64) -> I + Send + Sync + 'static) -> Self {
        self.transform = Some((seed, Arc::new(transform)));
        self
    }

    /// Builds batches on `n` worker threads (0: on the calling thread).
    pub fn num_workers(mut self, n: usize) -> Self {
        self.num_workers = n;
        self
    }

    /// Drops the last batch of an epoch when it is smaller than the batch size (PyTorch's
    /// `drop_last`); in a data-parallel run the ranks' shards are then cut to equal length
    /// instead of padded.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// As an `Arc<dyn DataLoader>`, the type data modules return.
    pub fn into_loader(self) -> super::Loader<O> {
        Arc::new(self)
    }

    fn copy(&self, device: Device, range: (usize, usize)) -> Self {
        OrderedLoader {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            transform: self.transform.clone(),
            num_workers: self.num_workers,
            drop_last: self.drop_last,
            device,
            range,
            epoch: AtomicU64::new(0),
        }
    }
}

/// The item indices of `epoch` over `range`, in the order they are served.
fn epoch_order(range: (usize, usize), shuffle: Option<u64>, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (range.0..range.1).collect();
    if let Some(seed) = shuffle {
        SplitMix64::new(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)).shuffle(&mut order);
    }
    order
}

impl<I: Send + Sync + 'static, O: Send + 'static> DataLoader<O> for OrderedLoader<I, O> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            range: self.range,
            shuffle: self.shuffle,
            transform: self.transform.clone(),
            epoch,
            order: Arc::new(OnceLock::new()),
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            shard: shard::current(),
            device: self.device.clone(),
        };
        Box::new(OrderedIter { job, next: 0, workers: self.num_workers, receivers: Vec::new() })
    }

    fn num_items(&self) -> usize {
        let n = self.range.1 - self.range.0;
        shard::current().map_or(n, |shard| shard.len(n, self.drop_last))
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<O>> {
        Arc::new(self.copy(device.clone(), self.range))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<O>> {
        let len = self.range.1 - self.range.0;
        let (start, end) = (start.min(len), end.min(len));
        Arc::new(self.copy(self.device.clone(), (self.range.0 + start, self.range.0 + end.max(start))))
    }
}

/// What it takes to build any batch of one epoch.
struct Job<I, O> {
    dataset: Arc<dyn Dataset<I>>,
    batcher: Arc<dyn Batcher<I, O>>,
    range: (usize, usize),
    shuffle: Option<u64>,
    transform: Option<(u64, ItemTransform<I>)>,
    epoch: u64,
    /// Drawn on first use, shared with the workers.
    order: Arc<OnceLock<Vec<usize>>>,
    batch_size: usize,
    drop_last: bool,
    /// This rank's share, in a data-parallel run.
    shard: Option<Shard>,
    device: Device,
}

impl<I, O> Clone for Job<I, O> {
    fn clone(&self) -> Self {
        Job {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            range: self.range,
            shuffle: self.shuffle,
            transform: self.transform.clone(),
            epoch: self.epoch,
            order: self.order.clone(),
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            shard: self.shard,
            device: self.device.clone(),
        }
    }
}

impl<I, O> Job<I, O> {
    /// The items this epoch serves (this rank's share in a data-parallel run).
    fn len(&self) -> usize {
        let n = self.range.1 - self.range.0;
        self.shard.map_or(n, |shard| shard.len(n, self.drop_last))
    }

    fn batches(&self) -> usize {
        if self.drop_last { self.len() / self.batch_size } else { self.len().div_ceil(self.batch_size) }
    }

    fn order(&self) -> &[usize] {
        self.order.get_or_init(|| {
            let order = epoch_order(self.range, self.shuffle, self.epoch);
            match self.shard {
                Some(shard) => shard.select(&order, self.drop_last),
                None => order,
            }
        })
    }

    fn build(&self, batch: usize) -> Result<O, DatasetError> {
        let start = batch * self.batch_size;
        let end = (start + self.batch_size).min(self.len());
        let get = |i: usize| match &self.transform {
            None => self.dataset.get(i),
            Some((seed, transform)) => self.dataset.get(i).map(|item| transform(item, &mut item_rng(*seed, self.epoch, i))),
        };
        let items = self.order()[start..end].iter().map(|&i| get(i)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.batcher.batch(items, &self.device))
    }
}

struct OrderedIter<I, O> {
    job: Job<I, O>,
    next: usize,
    workers: usize,
    receivers: Vec<Receiver<Result<O, DatasetError>>>,
}

impl<I: Send + Sync + 'static, O: Send + 'static> OrderedIter<I, O> {
    /// Starts the workers (on the first batch, so an unused iterator costs nothing).
    fn start(&mut self) {
        let workers = self.workers.min(self.job.batches()).max(1);
        for w in 0..workers {
            let (tx, rx): (SyncSender<_>, _) = sync_channel(PREFETCH);
            let job = self.job.clone();
            std::thread::spawn(move || {
                for batch in (w..job.batches()).step_by(workers) {
                    // The iterator was dropped: stop quietly.
                    if tx.send(job.build(batch)).is_err() {
                        return;
                    }
                }
            });
            self.receivers.push(rx);
        }
    }
}

impl<I: Send + Sync + 'static, O: Send + 'static> Iterator for OrderedIter<I, O> {
    type Item = Result<O, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.job.batches() {
            return None;
        }
        let batch = self.next;
        self.next += 1;
        if self.workers == 0 {
            return Some(crate::kernels::timing::measure(crate::kernels::timing::Op::DataWait, || self.job.build(batch)));
        }
        if self.receivers.is_empty() {
            self.start();
        }
        let rx = &self.receivers[batch % self.receivers.len()];
        let received = crate::kernels::timing::measure(crate::kernels::timing::Op::DataWait, || rx.recv());
        Some(received.unwrap_or_else(|_| Err(DatasetError::new(crate::Error::Data(format!("the loader worker for batch {batch} stopped (it panicked)"))))))
    }
}

impl<I: Send + Sync + 'static, O: Send + 'static> DataLoaderIterator<O> for OrderedIter<I, O> {
    fn progress(&self) -> Progress {
        let done = (self.next * self.job.batch_size).min(self.job.len());
        Progress::new(done, self.job.len(), Some("items".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataset::InMemDataset;

    use super::*;

    #[derive(Clone)]
    struct Collect;

    impl Batcher<usize, Vec<usize>> for Collect {
        fn batch(&self, items: Vec<usize>, _device: &Device) -> Vec<usize> {
            items
        }
    }

    fn epochs(loader: &OrderedLoader<usize, Vec<usize>>, n: usize) -> Vec<Vec<Vec<usize>>> {
        (0..n).map(|_| loader.iter().map(|b| b.expect("batch")).collect()).collect()
    }

    fn loader(workers: usize, seed: Option<u64>) -> OrderedLoader<usize, Vec<usize>> {
        let l = OrderedLoader::new(InMemDataset::new((0..23).collect()), Collect, 4).num_workers(workers);
        match seed {
            Some(s) => l.shuffle(s),
            None => l,
        }
    }

    #[test]
    fn workers_do_not_change_the_order() {
        let sequential = epochs(&loader(0, Some(7)), 3);
        assert_eq!(epochs(&loader(3, Some(7)), 3), sequential);
        assert_eq!(epochs(&loader(8, Some(7)), 3), sequential);
        assert_eq!(sequential[0].iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4, 4, 4, 3]);
        let mut all: Vec<usize> = sequential[1].concat();
        all.sort();
        assert_eq!(all, (0..23).collect::<Vec<_>>(), "every item once per epoch");
        assert_ne!(sequential[0], sequential[1], "a new order each epoch");
        assert_eq!(epochs(&loader(2, None), 1)[0].concat(), (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn skipping_epochs_replays_the_order() {
        let full = epochs(&loader(2, Some(3)), 4);
        let resumed = loader(2, Some(3));
        for _ in 0..2 {
            drop(resumed.iter());
        }
        assert_eq!(epochs(&resumed, 2), full[2..]);
    }

    /// What a mid-epoch resume with another batch size relies on: the samples come in the same
    /// order whatever the batch size.
    #[test]
    fn the_batch_size_does_not_change_the_sample_order() {
        let by = |batch: usize| {
            let l = OrderedLoader::new(InMemDataset::new((0..23).collect()), Collect, batch).num_workers(2).shuffle(5);
            epochs(&l, 2).into_iter().map(|e| e.concat()).collect::<Vec<_>>()
        };
        assert_eq!(by(3), by(4));
        assert_eq!(by(8), by(4));
    }

    /// Two ranks' batches of 2 interleave into one rank's batches of 4 (the first
    /// `DistributedSampler` positions of each), padded from the start on the last one; the
    /// evaluation shard is exact; `drop_last` cuts shards and batches.
    #[test]
    fn shards_deal_the_epochs_order_round_robin() {
        use crate::strategy::{Shard, shard};
        let full = epochs(&loader(2, Some(9)), 2);
        let shards = |world_size: usize, equal: bool, drop_last: bool, batch: usize| {
            (0..world_size)
                .map(|rank| {
                    let _guard = shard::enter(Some(Shard { rank, world_size, equal }));
                    let l = OrderedLoader::new(InMemDataset::new((0..23).collect()), Collect, batch).num_workers(1).shuffle(9).drop_last(drop_last);
                    let n = l.num_items();
                    (n, epochs(&l, 2))
                })
                .collect::<Vec<_>>()
        };
        let two = shards(2, true, false, 2);
        assert_eq!((two[0].0, two[1].0), (12, 12), "23 items padded to 24");
        for (epoch, batches) in full.iter().enumerate() {
            let order = batches.concat();
            let (a, b) = (two[0].1[epoch].concat(), two[1].1[epoch].concat());
            assert_eq!(a, order.iter().step_by(2).copied().collect::<Vec<_>>(), "epoch {epoch}");
            assert_eq!(b[..11], order.iter().skip(1).step_by(2).copied().collect::<Vec<_>>()[..], "epoch {epoch}");
            assert_eq!(b[11], order[0], "the last rank's padding repeats the order's first item");
            // Batch k of 2 on each rank holds batch k of 4 on one rank.
            let mut joined: Vec<usize> = two[0].1[epoch][0].iter().chain(&two[1].1[epoch][0]).copied().collect();
            joined.sort();
            let mut first = batches[0].clone();
            first.sort();
            assert_eq!(joined, first, "epoch {epoch}");
        }
        let eval = shards(3, false, false, 4);
        let mut all: Vec<usize> = eval.iter().flat_map(|(_, e)| e[0].concat()).collect();
        all.sort();
        assert_eq!(all, (0..23).collect::<Vec<_>>(), "evaluation shards cover every item once");
        let cut = shards(2, true, true, 5);
        assert_eq!((cut[0].0, cut[0].1[0].len(), cut[0].1[0][1].len()), (11, 2, 5), "11 items each, in 2 full batches of 5");
    }

    #[test]
    fn slices_and_copies_start_fresh() {
        let l = loader(0, None);
        let s = l.slice(5, 9);
        assert_eq!(s.num_items(), 4);
        assert_eq!(s.iter().map(|b| b.expect("batch")).collect::<Vec<_>>(), [vec![5, 6, 7, 8]]);
        let _ = l.iter();
        let copy = l.to_device(&Device::flex());
        assert_eq!(copy.iter().next().expect("a batch").expect("ok"), [0, 1, 2, 3]);
    }
}
