"""PyTorch Lightning's side of benches/vs_lightning/run.sh: the tutorial's fit on generated images
(the tutorial CNN, Adam 2e-4, EarlyStopping + ModelCheckpoint on val_loss, CSVLogger; 9,000 training,
1,000 validation images of 3x32x32), timed around `trainer.fit`. The images are random tensors held in
memory, as PyTorch users write such a benchmark.
Usage: lightning_fit.py BATCH EPOCHS WORKERS DIR
Prints one line: `fit_s <s> img_s <img/s> cpu_pct <% of one core during fit> rss_mb <peak RSS of the main process>`."""

import os
import resource
import sys
import time

import lightning as L
import psutil
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pytorch_step import Net  # noqa: E402  (the tutorial CNN)


class LitModel(L.LightningModule):
    def __init__(self, learning_rate=2e-4):
        super().__init__()
        self.save_hyperparameters()
        self.net = Net()

    def forward(self, x):
        return self.net(x)

    def _step(self, batch, stage, **flags):
        x, y = batch
        logits = self(x)
        loss = F.nll_loss(logits, y)
        self.log(f"{stage}_loss", loss, prog_bar=True, **flags)
        self.log(f"{stage}_acc", (logits.argmax(1) == y).float().mean(), **flags)
        return loss

    def training_step(self, batch, _):
        return self._step(batch, "train", on_step=True, on_epoch=True)

    def validation_step(self, batch, _):
        self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)


def loader(n, seed, batch, workers, shuffle):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    y = torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=shuffle, num_workers=workers, persistent_workers=workers > 0)


def tree_cpu_seconds(process):
    total = 0.0
    for p in [process] + process.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def main():
    batch, epochs, workers, root = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    L.seed_everything(42, verbose=False)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=CSVLogger(root),
                        callbacks=[EarlyStopping(monitor="val_loss"), ModelCheckpoint(monitor="val_loss", save_last=True)],
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root)
    train, val = loader(9000, 1, batch, workers, True), loader(1000, 2, batch, workers, False)
    me = psutil.Process()
    cpu, start = tree_cpu_seconds(me), time.perf_counter()
    trainer.fit(LitModel(), train, val)
    fit_s = time.perf_counter() - start
    cpu = tree_cpu_seconds(me) - cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fit_s {fit_s:.2f} img_s {trainer.global_step * batch / fit_s:.1f} cpu_pct {100 * cpu / fit_s:.0f} rss_mb {rss_mb:.0f}")


if __name__ == "__main__":
    main()
