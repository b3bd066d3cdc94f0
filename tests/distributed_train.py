"""A training script for the tests of ``fit`` under ``torchrun`` (tests/test_distributed.py).

Run by ``torchrun --nproc_per_node=2 tests/distributed_train.py OUT [options]``, or by the
test itself in one process (``reference()``), so that both sides build the same model and
data from the same code. Rank 0 writes ``OUT/final.pt``: the model's final weights and
the history's per-step losses.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # vizlib from this checkout

from vizlib.train import fit  # noqa: E402

N_SAMPLES, STEPS = 64, 24


def tiny_data(n: int = N_SAMPLES) -> torch.utils.data.TensorDataset:
    """``n`` images [1, 8, 8] and a class each (0-2): enough for a few real steps."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.TensorDataset(x, y)


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 3),
    )


def train(batch_size: int, checkpoint_dir=None, on_step=None, steps: int = STEPS):
    """The run every test compares: plain SGD with momentum, no shuffling (the processes'
    shares then add up to the one process's batches exactly), seed 0."""
    model = tiny_model()
    loader = torch.utils.data.DataLoader(tiny_data(), batch_size=batch_size, shuffle=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(
        model,
        loader,
        optimizer,
        steps=steps,
        loss_fn=torch.nn.functional.cross_entropy,
        device="cpu",
        seed=0,
        progress="text",
        log_every=5,
        checkpoint_dir=checkpoint_dir,
        on_step=on_step,
    )
    return model, history


def reference(batch_size: int):
    """One process, no torchrun: (weights, per-step losses)."""
    model, history = train(batch_size)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, history.steps


class _EmptyScenes(torch.utils.data.Dataset):
    """Detection scenes whose odd indices hold no object: with two processes and no
    shuffling, rank 1 reads only empty images (no positive anchor, no positive RoI)."""

    def __init__(self, n: int = 8):
        from vizlib.data import DetectionScenes

        self.scenes = DetectionScenes(n, seed=3)

    def __len__(self):
        return len(self.scenes)

    def __getitem__(self, i):
        image, target = self.scenes[i]
        if i % 2:
            target = {
                "boxes": torch.zeros(0, 4),
                "labels": torch.zeros(0, dtype=torch.int64),
            }
        else:
            target = {
                "boxes": target["boxes"].as_subclass(torch.Tensor),
                "labels": target["labels"],
            }
        return image, target


def train_detector(out: Path) -> None:
    from vizlib.data import collate_detection
    from vizlib.nn.faster_rcnn import FasterRCNN

    torch.manual_seed(0)
    model = FasterRCNN(5, 64)
    loader = torch.utils.data.DataLoader(
        _EmptyScenes(), batch_size=2, shuffle=False, collate_fn=collate_detection
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    history = fit(model, loader, optimizer, steps=3, device="cpu", seed=0, progress="text")
    if int(os.environ.get("RANK", 0)) == 0:
        torch.save({"steps": history.steps}, out / "detector.pt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--checkpoints", default=None)
    parser.add_argument("--kill-rank-at-step", type=int, default=None)
    parser.add_argument(
        "--detector", action="store_true", help="then train a Faster R-CNN (rank 1: no objects)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a hung rank is
    rank = int(os.environ.get("RANK", 0))

    def on_step(step, epoch, losses):
        # the first attempt only (torchrun counts its restarts): rank 1 dies at once,
        # as a machine does, mid-epoch, with nothing flushed
        first_try = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if first_try and rank == 1 and step == args.kill_rank_at_step:
            os.kill(os.getpid(), signal.SIGKILL)

    model, history = train(
        args.batch_size,
        checkpoint_dir=args.checkpoints,
        on_step=on_step if args.kill_rank_at_step else None,
    )
    if rank == 0:
        torch.save({"model": model.state_dict(), "steps": history.steps}, args.out / "final.pt")
    if args.detector:  # in the same processes: a launch costs ~15 s on 2 cores
        train_detector(args.out)


if __name__ == "__main__":
    main()
