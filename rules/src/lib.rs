//! The rules `#[derive(LightningModule)]` and `#[hyperparameters]` check at compile time when
//! the values are literals, and fulmen's runtime checks in `new()` and `validate()` when they
//! are known only then: one implementation, so the two cannot disagree. No dependencies, so the
//! proc-macro crate and the runtime can both use it.

pub mod names;
pub mod range;
pub mod shape;
