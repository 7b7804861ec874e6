//! Each replica's share of a loader's items (Lightning's `DistributedSampler`): the epoch's
//! order, the same on every rank, dealt out round-robin, so rank `r` of `w` gets positions
//! `r, r + w, r + 2w, ...`. Training shards are padded (with the order's first items) to equal
//! length, or cut to it when the loader drops its last batch, so every rank takes the same
//! number of steps; evaluation shards are not padded, so every item counts once.
//!
//! The Trainer sets the shard of the loop it runs on its thread ([`enter`]); `OrderedLoader`
//! reads it ([`current`]), and so can a data loader of your own.

use std::cell::Cell;

/// One rank's share of every loader it iterates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This replica's rank.
    pub rank: usize,
    /// The number of replicas.
    pub world_size: usize,
    /// Equal shares for every rank (training): padded, or cut when the loader drops its last
    /// batch. `false` (evaluation): shares differ by at most one item, none repeated.
    pub equal: bool,
}

impl Shard {
    /// How many of `n` items this rank serves (`drop_last`: the loader drops its incomplete
    /// last batch, so equal shares are cut rather than padded).
    pub fn len(&self, n: usize, drop_last: bool) -> usize {
        let w = self.world_size;
        match (self.equal, drop_last) {
            (true, false) => n.div_ceil(w),
            (true, true) => n / w,
            (false, _) => n / w + usize::from(self.rank < n % w),
        }
    }

    /// Whether this rank serves nothing of `n` items.
    pub fn is_empty(&self, n: usize, drop_last: bool) -> bool {
        self.len(n, drop_last) == 0
    }

    /// This rank's positions of `order` (the epoch's order of every item).
    pub fn select(&self, order: &[usize], drop_last: bool) -> Vec<usize> {
        let len = self.len(order.len(), drop_last);
        (0..len).map(|k| order[(self.rank + k * self.world_size) % order.len().max(1)]).collect()
    }
}

thread_local! {
    static CURRENT: Cell<Option<Shard>> = const { Cell::new(None) };
}

/// The shard of the loop running on this thread (`None`: one replica, every item).
pub fn current() -> Option<Shard> {
    CURRENT.with(Cell::get)
}

/// Sets this thread's shard until the guard is dropped.
pub(crate) fn enter(shard: Option<Shard>) -> ShardGuard {
    ShardGuard { previous: CURRENT.with(|c| c.replace(shard)) }
}

/// Restores the previous shard when dropped.
pub(crate) struct ShardGuard {
    previous: Option<Shard>,
}

impl Drop for ShardGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deal(n: usize, world_size: usize, equal: bool, drop_last: bool) -> Vec<Vec<usize>> {
        let order: Vec<usize> = (0..n).map(|i| 100 + i).collect();
        (0..world_size).map(|rank| Shard { rank, world_size, equal }.select(&order, drop_last)).collect()
    }

    #[test]
    fn training_shards_are_dealt_round_robin_and_padded_from_the_start() {
        assert_eq!(deal(7, 2, true, false), vec![vec![100, 102, 104, 106], vec![101, 103, 105, 100]]);
        assert_eq!(deal(7, 2, true, true), vec![vec![100, 102, 104], vec![101, 103, 105]]);
        assert_eq!(deal(6, 3, true, false), vec![vec![100, 103], vec![101, 104], vec![102, 105]]);
    }

    #[test]
    fn evaluation_shards_cover_every_item_once() {
        let shards = deal(7, 3, false, false);
        assert_eq!(shards, vec![vec![100, 103, 106], vec![101, 104], vec![102, 105]]);
        let mut all: Vec<usize> = shards.concat();
        all.sort();
        assert_eq!(all, (100..107).collect::<Vec<_>>());
        assert!(Shard { rank: 2, world_size: 3, equal: false }.is_empty(2, false));
    }

    #[test]
    fn the_guard_restores_the_previous_shard() {
        let shard = Shard { rank: 1, world_size: 2, equal: true };
        assert_eq!(current(), None);
        {
            let _guard = enter(Some(shard));
            assert_eq!(current(), Some(shard));
        }
        assert_eq!(current(), None);
    }
}
