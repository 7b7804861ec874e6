//! Data already in memory, as PyTorch's `TensorDataset` and `random_split`: inputs of any shape
//! with class labels, split with a seed, served as `ClassificationBatch<D>` by `OrderedLoader`.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Float, TensorData};

use super::batch::{ClassificationBatch, InputKind};
use super::{DataModule, Loader, OrderedLoader};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// One item of a [`TensorDataset`]: its input values (row-major) and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorItem {
    /// The input, flattened row-major.
    pub input: Vec<f32>,
    /// Class index.
    pub label: usize,
}

/// Inputs `[N, ...]` and their `N` class labels, held once and shared by every split.
#[derive(Debug, Clone)]
pub struct TensorDataset {
    inputs: Arc<Vec<f32>>,
    item_shape: Vec<usize>,
    labels: Arc<Vec<usize>>,
    indices: Arc<Vec<usize>>,
}

impl TensorDataset {
    /// `inputs` of shape `[N, ...]` (any float dtype, read as f32) and one label per row.
    pub fn new(inputs: TensorData, labels: Vec<usize>) -> Result<Self> {
        let shape: Vec<usize> = inputs.shape().to_vec();
        let Some((&n, item_shape)) = shape.split_first() else {
            return Err(Error::Data("TensorDataset inputs are a scalar; give them a first (item) dimension".into()));
        };
        if n != labels.len() {
            return Err(Error::Data(format!("TensorDataset has {n} inputs but {} labels; give one label per input row", labels.len())));
        }
        let values = inputs.convert::<f32>().try_into_vec::<f32>().map_err(|e| Error::Data(format!("TensorDataset inputs cannot be read as f32: {e:?}")))?;
        Ok(TensorDataset { inputs: Arc::new(values), item_shape: item_shape.to_vec(), labels: Arc::new(labels), indices: Arc::new((0..n).collect()) })
    }

    /// Rows of equal length (feature vectors) and one label per row.
    pub fn from_rows(rows: Vec<Vec<f32>>, labels: Vec<usize>) -> Result<Self> {
        let width = rows.first().map_or(0, Vec::len);
        if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
            return Err(Error::Data(format!("TensorDataset row {i} has {} values, row 0 has {width}; every row needs the same length", row.len())));
        }
        let n = rows.len();
        TensorDataset::new(TensorData::new(rows.concat(), [n, width]), labels)
    }

    /// The shape of one input (without the item dimension).
    pub fn item_shape(&self) -> &[usize] {
        &self.item_shape
    }

    /// The largest label plus one (0 when empty).
    pub fn num_classes(&self) -> usize {
        self.indices.iter().map(|&i| self.labels[i] + 1).max().unwrap_or(0)
    }

    /// Splits into sets of `lengths` items (which must add up to `len()`) after a shuffle drawn
    /// from `seed`, as PyTorch's `random_split`.
    pub fn random_split<const N: usize>(&self, lengths: [usize; N], seed: u64) -> Result<[TensorDataset; N]> {
        let total: usize = lengths.iter().sum();
        if total != self.len() {
            return Err(Error::Data(format!("random_split lengths {lengths:?} add up to {total}, but the dataset has {} items", self.len())));
        }
        let mut order: Vec<usize> = self.indices.to_vec();
        SplitMix64::new(seed).shuffle(&mut order);
        let mut start = 0;
        Ok(std::array::from_fn(|k| {
            let indices = order[start..start + lengths[k]].to_vec();
            start += lengths[k];
            TensorDataset { indices: Arc::new(indices), ..self.clone() }
        }))
    }

    fn item_len(&self) -> usize {
        self.item_shape.iter().product()
    }
}

impl Dataset<TensorItem> for TensorDataset {
    fn get(&self, index: usize) -> std::result::Result<TensorItem, DatasetError> {
        let &i = self.indices.get(index).ok_or_else(|| DatasetError::new(Error::Data(format!("item {index} is out of range 0..{}", self.indices.len()))))?;
        let len = self.item_len();
        Ok(TensorItem { input: self.inputs[i * len..(i + 1) * len].to_vec(), label: self.labels[i] })
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// Stacks [`TensorItem`]s of one shape into a `ClassificationBatch<D>` (`D` = 1 + the item's rank).
#[derive(Debug, Clone)]
struct TensorBatcher {
    item_shape: Vec<usize>,
}

impl<const D: usize, K: InputKind> Batcher<TensorItem, ClassificationBatch<D, K>> for TensorBatcher {
    fn batch(&self, items: Vec<TensorItem>, device: &Device) -> ClassificationBatch<D, K> {
        let n = items.len();
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let shape: Vec<usize> = std::iter::once(n).chain(self.item_shape.iter().copied()).collect();
        let values: Vec<f32> = items.into_iter().flat_map(|item| item.input).collect();
        ClassificationBatch { inputs: K::from_values(values, shape, device), targets: burn::tensor::Tensor::from_data(TensorData::new(labels, [n]), device) }
    }
}

/// A [`DataModule`] over [`TensorDataset`]s: a training set and optional validation and test sets,
/// batches of `ClassificationBatch<D, K>` (an MLP on `[N, F]` rows takes `D = 2`, a conv net on
/// `[N, C, H, W]` images `D = 4`, a text model on `[N, L]` token ids `InMemoryDataModule<2, Int>`).
#[derive(Debug, Clone)]
pub struct InMemoryDataModule<const D: usize, K: InputKind = Float> {
    train: TensorDataset,
    val: Option<TensorDataset>,
    test: Option<TensorDataset>,
    batch_size: usize,
    num_workers: usize,
    seed: u64,
    class_names: Option<Vec<String>>,
    kind: std::marker::PhantomData<K>,
}

impl<const D: usize, K: InputKind> InMemoryDataModule<D, K> {
    /// Trains on `train` (shuffled every epoch from the seed), batch size 32, no workers.
    pub fn new(train: TensorDataset) -> Result<Self> {
        Self::check_rank(&train)?;
        Self::check_values(&train, "training")?;
        Ok(InMemoryDataModule { train, val: None, test: None, batch_size: 32, num_workers: 0, seed: 42, class_names: None, kind: std::marker::PhantomData })
    }
    /// Validates on `val`.
    pub fn val(mut self, val: TensorDataset) -> Result<Self> {
        self.check_like(&val, "validation")?;
        self.val = Some(val);
        Ok(self)
    }
    /// Tests (and predicts) on `test`.
    pub fn test(mut self, test: TensorDataset) -> Result<Self> {
        self.check_like(&test, "test")?;
        self.test = Some(test);
        Ok(self)
    }
    /// Items per batch (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Loader worker threads (default 0: on the training thread).
    pub fn num_workers(mut self, n: usize) -> Self {
        self.num_workers = n;
        self
    }
    /// The seed of the training shuffle (default 42).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Names of the classes, by label.
    pub fn class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = Some(names);
        self
    }

    fn check_rank(set: &TensorDataset) -> Result<()> {
        let rank = set.item_shape.len() + 1;
        if rank != D {
            return Err(Error::Data(format!(
                "inputs of shape [N, {}] make batches of rank {rank}; declare InMemoryDataModule<{rank}> (the model then takes ClassificationBatch<{rank}>)",
                set.item_shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    fn check_like(&self, set: &TensorDataset, what: &str) -> Result<()> {
        if set.item_shape != self.train.item_shape {
            return Err(Error::Data(format!("the {what} inputs are {:?} per item, the training inputs {:?}", set.item_shape, self.train.item_shape)));
        }
        Self::check_values(set, what)
    }

    /// Token ids must be whole numbers (checked once, here, not per batch; item by item, with
    /// no copy of the data).
    fn check_values(set: &TensorDataset, what: &str) -> Result<()> {
        let len = set.item_len();
        for (n, &i) in set.indices.iter().enumerate() {
            K::check_values(&set.inputs[i * len..(i + 1) * len]).map_err(|reason| Error::Data(format!("the {what} TensorDataset, item {n}: {reason}")))?;
        }
        Ok(())
    }

    fn loader(&self, set: &TensorDataset, shuffle: bool) -> Loader<ClassificationBatch<D, K>> {
        let batcher = TensorBatcher { item_shape: set.item_shape.clone() };
        let loader = OrderedLoader::new(set.clone(), batcher, self.batch_size).num_workers(self.num_workers);
        if shuffle { loader.shuffle(self.seed).into_loader() } else { loader.into_loader() }
    }
}

impl<const D: usize, K: InputKind> DataModule for InMemoryDataModule<D, K> {
    type Batch = ClassificationBatch<D, K>;

    fn setup(&mut self, _stage: super::SetupStage) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if self.train.is_empty() {
            return Err(Error::Data("the training TensorDataset is empty".into()));
        }
        Ok(())
    }
    fn class_names(&self) -> Option<Vec<String>> {
        self.class_names.clone()
    }
    fn train_dataloader(&self) -> Result<Loader<Self::Batch>> {
        Ok(self.loader(&self.train, true))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(n: usize) -> TensorDataset {
        TensorDataset::from_rows((0..n).map(|i| vec![i as f32, -(i as f32)]).collect(), (0..n).map(|i| i % 3).collect()).unwrap()
    }

    #[test]
    fn random_split_partitions_the_items_by_seed() {
        let set = dataset(10);
        let parts = set.random_split([6, 3, 1], 5).unwrap();
        let firsts = |p: &TensorDataset| (0..p.len()).map(|i| p.get(i).unwrap().input[0] as usize).collect::<Vec<_>>();
        let mut all: Vec<usize> = parts.iter().flat_map(firsts).collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [6, 3, 1]);
        assert_ne!(all, (0..10).collect::<Vec<_>>(), "shuffled");
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>(), "each item in exactly one part");
        assert_eq!(firsts(&set.random_split([6, 3, 1], 5).unwrap()[0]), firsts(&parts[0]), "the same seed, the same split");
        let item = parts[1].get(0).unwrap();
        assert_eq!((item.input[1], item.label), (-item.input[0], item.input[0] as usize % 3), "inputs keep their labels");
        assert!(set.random_split([6, 3], 5).unwrap_err().to_string().contains("add up to 9, but the dataset has 10"));
    }

    #[test]
    fn batches_have_the_items_shape_behind_the_batch_dimension() {
        let images = TensorDataset::new(TensorData::new((0..2 * 12).map(|v| v as f32).collect::<Vec<_>>(), [2, 1, 3, 4]), vec![0, 1]).unwrap();
        let dm = InMemoryDataModule::<4>::new(images).unwrap().batch_size(2);
        let batch = dm.train_dataloader().unwrap().iter().next().unwrap().unwrap();
        assert_eq!(batch.inputs.dims(), [2, 1, 3, 4]);
        let err = InMemoryDataModule::<2>::new({
            let [all] = dataset(4).random_split([4], 0).unwrap();
            all
        })
        .map(|_| ());
        assert!(err.is_ok());
        let err = InMemoryDataModule::<4>::new(dataset(4)).unwrap_err().to_string();
        assert!(err.contains("declare InMemoryDataModule<2>"), "{err}");
    }

    #[test]
    fn mismatched_inputs_are_errors_naming_the_fix() {
        let err = TensorDataset::from_rows(vec![vec![1.0, 2.0], vec![3.0]], vec![0, 1]).unwrap_err().to_string();
        assert!(err.contains("row 1 has 1 values, row 0 has 2"), "{err}");
        let err = TensorDataset::from_rows(vec![vec![1.0]], vec![0, 1]).unwrap_err().to_string();
        assert!(err.contains("1 inputs but 2 labels"), "{err}");
        let images = TensorDataset::new(TensorData::new(vec![0f32; 12], [1, 3, 2, 2]), vec![0]).unwrap();
        let err = InMemoryDataModule::<2>::new(dataset(3)).unwrap().val(images).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("validation inputs are [3, 2, 2] per item"), "{err}");
    }
}
