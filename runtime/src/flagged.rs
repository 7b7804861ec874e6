//! The first of a stream of batches for which a condition held, tracked on the device: a few
//! device ops per batch and no read until the answer is asked for. The NaN watch of the loss,
//! the label check of the generated steps and the label and score checks of the metrics use it,
//! so none of them costs a host sync per step.

use burn::tensor::{Bool, Int, Tensor, Transaction};

/// "No batch flagged yet": an index no stream reaches, within 32-bit integer backends.
const NONE: i64 = i32::MAX as i64;

/// The first flagged batch of a stream and a value recorded with it (the offending label, the
/// loss), both still on the device.
#[derive(Debug, Clone, Default)]
pub struct FirstFlagged {
    first: Option<(Tensor<1, Int>, Tensor<1>)>,
}

/// What [`FirstFlagged::read`] found: the batch's index and the value recorded with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flagged {
    /// Index of the first flagged batch (as given to `record`).
    pub index: usize,
    /// The value recorded with it.
    pub value: f64,
}

impl FirstFlagged {
    /// Records batch `index`, flagged when `flag` (one element) is true, with `value` (one
    /// element) kept for the report if it is the first flagged one.
    pub fn record(&mut self, index: usize, flag: Tensor<1, Bool>, value: Tensor<1>) {
        let index = (index as i64).min(NONE - 1);
        let candidate = Tensor::<1, Int>::full([1], index, &flag.device()).mask_fill(flag.bool_not(), NONE);
        let value = value.detach().without_autodiff();
        self.first = Some(match self.first.take() {
            None => (candidate, value),
            Some((first, kept)) => {
                let earlier = candidate.clone().lower(first.clone());
                (first.mask_where(earlier.clone(), candidate), kept.mask_where(earlier, value))
            }
        });
    }

    /// The first flagged batch, if any (one read of two scalars).
    pub fn read(&self) -> Option<Flagged> {
        let (first, value) = self.first.as_ref()?;
        let data = Transaction::default().register(first.clone()).register(value.clone()).execute();
        let index = data[0].iter::<i64>().next().unwrap_or(NONE);
        let value = data[1].iter::<f64>().next().unwrap_or(f64::NAN);
        (index < NONE).then_some(Flagged { index: index as usize, value })
    }

    /// Forgets every batch.
    pub fn reset(&mut self) {
        self.first = None;
    }
}

/// Labels outside `0..classes` in `targets` `[batch]`: the flag, the clamped labels a gather can
/// take without failing, and the offending label (the smallest if one is negative, else the
/// largest) for the report.
pub fn out_of_range(targets: Tensor<1, Int>, classes: usize) -> (Tensor<1, Bool>, Tensor<1, Int>, Tensor<1>) {
    let top = classes.max(1) as i64 - 1;
    let (low, high) = (targets.clone().min(), targets.clone().max());
    let flag = low.clone().lower_elem(0).bool_or(high.clone().greater_elem(top));
    let offending = high.mask_where(low.clone().lower_elem(0), low).float();
    (flag, targets.clamp(0, top), offending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn flag(value: bool) -> Tensor<1, Bool> {
        Tensor::<1, Int>::from_ints([value as i64], &Device::flex()).equal_elem(1)
    }

    fn scalar(v: f32) -> Tensor<1> {
        Tensor::from_floats([v], &Device::flex())
    }

    #[test]
    fn the_first_flagged_batch_and_its_value_are_kept() {
        let mut watch = FirstFlagged::default();
        assert_eq!(watch.read(), None);
        for (i, (bad, v)) in [(false, 1.0), (false, 2.0), (true, 3.0), (true, 4.0), (false, 5.0)].into_iter().enumerate() {
            watch.record(i, flag(bad), scalar(v));
        }
        assert_eq!(watch.read(), Some(Flagged { index: 2, value: 3.0 }));
        watch.reset();
        watch.record(7, flag(false), scalar(1.0));
        assert_eq!(watch.read(), None);
    }

    #[test]
    fn labels_out_of_range_are_flagged_clamped_and_reported() {
        let device = Device::flex();
        let targets = Tensor::<1, Int>::from_ints([0, 4, 9, 2], &device);
        let (bad, clamped, offending) = out_of_range(targets.clone(), 5);
        assert!(bad.into_scalar::<bool>());
        assert_eq!(clamped.into_data().convert::<i64>().try_to_vec::<i64>().unwrap(), vec![0, 4, 4, 2]);
        assert_eq!(offending.into_scalar::<f32>(), 9.0);
        let (bad, _, _) = out_of_range(targets, 10);
        assert!(!bad.into_scalar::<bool>());
        let (bad, _, offending) = out_of_range(Tensor::<1, Int>::from_ints([3, -1], &device), 10);
        assert!(bad.into_scalar::<bool>());
        assert_eq!(offending.into_scalar::<f32>(), -1.0);
    }
}
