"""PyTorch Lightning on the same job as `cifar --synthetic --max-epochs 1`: the tutorial CNN, 9,000
training and 1,000 validation images of 3x32x32 in batches of 32, Adam(2e-4), one epoch with its
validation, timed the same way (the whole `fit`). Prints one line: `img/s <value>`.
Usage: lightning_synthetic.py PRECISION [ACCELERATOR]   (32-true, bf16-mixed, ...; gpu or cpu)"""

import sys
import time

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.conv2 = nn.Conv2d(32, 32, 3)
        self.conv3 = nn.Conv2d(32, 64, 3)
        self.conv4 = nn.Conv2d(64, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 512)
        self.fc2 = nn.Linear(512, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        x = F.max_pool2d(F.relu(self.conv4(x)), 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return F.log_softmax(self.fc3(x), dim=1)

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
