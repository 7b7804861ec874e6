"""The tutorial CNN's training step in PyTorch, for benches/conv_kernels.rs: prints img/s.
Usage: pytorch_step.py BATCH STEPS THREADS"""

import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
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


def main():
    batch, steps, threads = (int(a) for a in sys.argv[1:4])
    torch.set_num_threads(threads)
    torch.manual_seed(5)
    model = Net()
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.sin(torch.arange(batch * 3 * 32 * 32, dtype=torch.float32) * 0.37).reshape(batch, 3, 32, 32)
    y = torch.arange(batch) % 10

    def step():
        optim.zero_grad()
        F.nll_loss(model(x), y).backward()
        optim.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(batch * steps / (time.perf_counter() - start))


if __name__ == "__main__":
    main()
