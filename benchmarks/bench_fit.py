"""Benchmark: the overhead of vizlib.train.fit against a bare training loop.

Run by hand (not a test):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fit.py              # CPU (and CUDA if present)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fit.py --no-write --repeats 3

The same model, data, optimiser and number of steps go through

* ``bare``: the textbook loop (zero_grad, forward, loss, backward, step), nothing else;
* ``fit``: ``fit(..., progress="off")``: the schedule, loss bookkeeping, history;
* ``fit+text``: with the per-epoch text lines (what the published book shows);
* ``fit+clip``: with ``clip_grad_norm=1.0`` (one more pass over the gradients);
* ``fit+ckpt``: with an atomic, fsynced checkpoint after every epoch;
* ``fit+live``: with the live bar and the loss curve redrawn every 2 s (as in JupyterLab;
  the display calls go to a stub, the matplotlib rendering is real).

for two models: a small CNN on 48x48 images, the size of a chapter's model on a CPU, and
a tiny MLP whose steps take microseconds, which shows the fixed per-step cost at its
worst. Each configuration runs ``--repeats`` times, interleaved, after one warm-up round;
each runs for two lengths (1 and 8 epochs), so that the report can split the time into
a cost per step and a fixed cost per run (setup, the final figure): per step, the median
CPU seconds of this process (robust to other programs on the machine) and the wall
clock, and the overhead of each against ``bare``.
Writes benchmarks/results/fit.md unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizlib.train import fit  # noqa: E402
from vizlib.train import progress as progress_module  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "fit.md"


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 6),
    )


def tiny_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 6))


PROBLEMS = {
    # name: (model factory, input shape, samples, batch size)
    "cnn 48x48": (small_cnn, (3, 48, 48), 256, 32),
    "tiny mlp": (tiny_mlp, (16,), 8192, 64),
}
SHORT, LONG = 1, 8  # epochs of the two run lengths: their difference gives the per-step cost


def make_data(shape, n, batch_size, device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, 6, (n,), generator=g)
    if device.type == "cuda":
        x, y = x.to(device), y.to(device)  # on the GPU already: time the loop, not the copies
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


def bare(model, loader, opt, epochs, device):
    model.to(device).train()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Handle:
    def update(self, *args, **kwargs):
        pass


def _stub_display(*args, **kwargs):
    return _Handle()


def run_fit(extra):
    def go(model, loader, opt, epochs, device):
        settings = dict(epochs=epochs, loss_fn=F.cross_entropy, device=device, progress="off")
        settings.update(extra)
        if "checkpoint_dir" in settings:
            with tempfile.TemporaryDirectory() as d:
                settings["checkpoint_dir"] = d
                fit(model, loader, opt, **settings)
        else:
            fit(model, loader, opt, **settings)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return go


def run_live(model, loader, opt, epochs, device):
    import IPython.display as ipd

    import vizlib.train.loop as fit_module

    real_display, real_make = ipd.display, fit_module.make_progress
    ipd.display = _stub_display  # no front end here: the drawing is real, the display a stub
    fit_module.make_progress = lambda mode: progress_module.LiveProgress()
    try:
        run_fit({})(model, loader, opt, epochs, device)
    finally:
        ipd.display, fit_module.make_progress = real_display, real_make


CONFIGS = {
    "bare": bare,
    "fit": run_fit({}),
    "fit+text": run_fit({"progress": "text"}),
    "fit+clip": run_fit({"clip_grad_norm": 1.0}),
    "fit+ckpt": run_fit({"checkpoint_dir": True}),
    "fit+live": run_live,
}


def measure(problem, device, repeats):
    """Median CPU and wall seconds of a SHORT and a LONG run of every configuration."""
    factory, shape, n, batch_size = PROBLEMS[problem]
    loader = make_data(shape, n, batch_size, device)
    times = {(k, e, clock): [] for k in CONFIGS for e in (SHORT, LONG) for clock in ("cpu", "wall")}
    for rep in range(repeats + 1):  # the first round warms up (allocator, lazy imports)
        for epochs in (SHORT, LONG):
            for name, run in CONFIGS.items():
                torch.manual_seed(0)
                model = factory().to(device)
                opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
                c0, w0 = time.process_time(), time.perf_counter()
                run(model, loader, opt, epochs, device)
                c1, w1 = time.process_time(), time.perf_counter()
                if rep:
                    times[name, epochs, "cpu"].append(c1 - c0)
                    times[name, epochs, "wall"].append(w1 - w0)
    med = {key: statistics.median(v) for key, v in times.items()}
    steps = (len(loader) * SHORT, len(loader) * LONG)
    out = {}
    for name in CONFIGS:
        row = {}
        for clock in ("cpu", "wall"):
            short, long = med[name, SHORT, clock], med[name, LONG, clock]
            per_step = (long - short) / (steps[1] - steps[0])
            row[clock] = (per_step, short - per_step * steps[0])  # (s per step, fixed s per run)
        out[name] = row
    return steps, out


def main() -> int:
    import io
    from contextlib import redirect_stdout

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    lines = []
    for device in devices:
        name = (
            torch.cuda.get_device_name()
            if device.type == "cuda"
            else f"CPU ({platform.machine()}, 1 thread)"
        )
        for problem in PROBLEMS:
            with redirect_stdout(io.StringIO()):  # fit+text prints its epoch lines
                steps, t = measure(problem, device, args.repeats)
            base = t["bare"]
            lines.append(
                f"\n### {problem} on {name}: runs of {steps[0]} and {steps[1]} steps, "
                f"median of {args.repeats}\n"
            )
            lines.append(
                "| loop | CPU ms/step | per-step overhead (CPU) | wall ms/step "
                "| per-step overhead (wall) | fixed cost per run (CPU ms) |"
            )
            lines.append("|---|---:|---:|---:|---:|---:|")
            for k in CONFIGS:
                (c_step, c_fixed), (w_step, _) = t[k]["cpu"], t[k]["wall"]
                lines.append(
                    f"| {k} | {c_step * 1e3:.3f} | {100 * (c_step / base['cpu'][0] - 1):+.1f}% "
                    f"| {w_step * 1e3:.3f} | {100 * (w_step / base['wall'][0] - 1):+.1f}% "
                    f"| {(c_fixed - base['cpu'][1]) * 1e3:+.0f} |"
                )
            print("\n".join(lines[-(len(CONFIGS) + 3) :]), flush=True)
    header = [
        "# vizlib.train.fit against a bare training loop",
        "",
        f"Measured {datetime.date.today().isoformat()} with `benchmarks/bench_fit.py` "
        f"(torch {torch.__version__}, Python {platform.python_version()}).",
        "Each loop runs for two lengths; the difference gives the cost of one step, the rest "
        "is a fixed cost per run (setup, the final figure, ...), shown against `bare`'s. "
        "CPU ms is this process's CPU time (robust to other programs sharing the machine); "
        "wall ms is the clock. Overheads are against `bare`: the same model, data, optimiser "
        "and steps in a loop with nothing else.",
    ]
    report = "\n".join(header + lines) + "\n"
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report, encoding="utf-8")
        print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
