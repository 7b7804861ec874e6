//! A user's own DataModule written with nothing but the prelude: a `Dataset` of its own, a
//! `Batcher`, `OrderedLoader`, `TensorData`, `seed_everything`, and `?` on an I/O error and on
//! a number parse inside fulmen's `Result`.
#![deny(warnings)]

use fulmen::prelude::*;

/// Points `(i, -i)` labelled by parity, read from a text file of their count.
struct Counted(usize);

impl Dataset<(f32, usize)> for Counted {
    fn get(&self, index: usize) -> std::result::Result<(f32, usize), DatasetError> {
        Ok((index as f32, index % 2))
    }
    fn len(&self) -> usize {
        self.0
    }
}

#[derive(Clone)]
struct Points;

impl Batcher<(f32, usize), ClassificationBatch<2>> for Points {
    fn batch(&self, items: Vec<(f32, usize)>, device: &Device) -> ClassificationBatch<2> {
        let n = items.len();
        let xs: Vec<f32> = items.iter().flat_map(|(x, _)| [*x, -*x]).collect();
        let ys: Vec<i64> = items.iter().map(|(_, y)| *y as i64).collect();
        ClassificationBatch { inputs: Tensor::from_data(TensorData::new(xs, [n, 2]), device), targets: Tensor::from_data(TensorData::new(ys, [n]), device) }
    }
}

struct FromFile(std::path::PathBuf);

impl DataModule for FromFile {
    type Batch = ClassificationBatch<2>;
    fn train_dataloader(&self) -> Result<Loader<Self::Batch>> {
        let count: usize = std::fs::read_to_string(&self.0)?.trim().parse()?;
        Ok(OrderedLoader::new(Counted(count), Points, 4).shuffle(1).into_loader())
    }
}

fn main() {
    seed_everything(1, &Device::flex());
    let path = std::env::temp_dir().join(format!("fulmen-ui-count-{}", std::process::id()));
    std::fs::write(&path, "10\n").expect("a temp file");
    let batches = FromFile(path.clone()).train_dataloader().expect("a loader").iter().count();
    assert_eq!(batches, 3);
    std::fs::write(&path, "ten").expect("a temp file");
    let err = FromFile(path.clone()).train_dataloader().err().expect("a parse error");
    assert!(std::error::Error::source(&err).is_some(), "the parse error is kept as the source: {err}");
    std::fs::remove_file(&path).expect("remove the temp file");
    let err = FromFile(path).train_dataloader().err().expect("an I/O error");
    assert!(err.to_string().contains("No such file"), "{err}");
}
