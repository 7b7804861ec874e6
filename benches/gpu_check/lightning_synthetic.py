"""PyTorch Lightning on the same job as `cifar --synthetic --max-epochs 1`: the tutorial CNN, 9,000
training and 1,000 validation images of 3x32x32 in batches of 32, Adam(2e-4), one epoch with its
validation, timed the same way (the whole `fit`). Prints one line: `img/s <value>`.
Usage: lightning_synthetic.py PRECISION [ACCELERATOR]   (32-true, bf16-mixed, ...; gpu or cpu)"""

import os
import sys
import time

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pytorch_step import Net  # noqa: E402  (the tutorial CNN, shared with the CPU benchmark)


class LitModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = Net()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = F.nll_loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.nll_loss(logits, y), prog_bar=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-4)


def loader(n, seed, shuffle):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    y = torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=shuffle, num_workers=2, persistent_workers=True)


def main():
    precision = sys.argv[1]
    accelerator = sys.argv[2] if len(sys.argv) > 2 else "gpu"
    L.seed_everything(42, verbose=False)
    trainer = L.Trainer(max_epochs=1, accelerator=accelerator, devices=1, precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0)
    train, val = loader(9000, 1, True), loader(1000, 2, False)
    start = time.perf_counter()
    trainer.fit(LitModel(), train, val)
    print(f"img/s {trainer.global_step * 32 / (time.perf_counter() - start):.1f}")


if __name__ == "__main__":
    main()
