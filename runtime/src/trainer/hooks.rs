//! Hook dispatch, in one place: the module's hook first, then each callback's in the order added.

use burn::optim::ModuleOptimizer;

use super::Trainer;
use crate::callbacks::{Callback, TrainerView};
use crate::error::Result;
use crate::module::LightningModule;

impl<M: LightningModule> Trainer<M> {
    /// Runs `module_hook` on the module, then `callback_hook` on every callback.
    pub(super) fn dispatch(
        &mut self,
        module: &mut M,
        optimizer: Option<&ModuleOptimizer>,
        module_hook: impl FnOnce(&mut M) -> Result<()>,
        callback_hook: impl FnMut(&mut dyn Callback<M>, &mut TrainerView<'_, M>) -> Result<()>,
    ) -> Result<()> {
        module_hook(module)?;
        self.dispatch_callbacks(module, optimizer, callback_hook)
    }

    /// Runs `hook` on every callback (for hooks the module does not have).
    pub(super) fn dispatch_callbacks(
        &mut self,
        module: &M,
        optimizer: Option<&ModuleOptimizer>,
        mut hook: impl FnMut(&mut dyn Callback<M>, &mut TrainerView<'_, M>) -> Result<()>,
    ) -> Result<()> {
        let Trainer { callbacks, state, loggers, .. } = self;
        for callback in callbacks.iter_mut() {
            let mut view = TrainerView { state: &mut *state, module, loggers: &mut loggers[..], optimizer };
            hook(callback.as_mut(), &mut view)?;
        }
        Ok(())
    }
}
