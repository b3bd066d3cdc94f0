"""Benchmark: RoIAlign forward and backward, torchvision's kernel against the matrix form.

Run by hand (not a test):

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_roi_align.py

The shapes are those of one Mask R-CNN training step of ``lessons/mask_rcnn`` on its
trained model (batch 16, 64 x 64 scenes, the stride-4 level of 64 channels): the box head's
1,024 regions at 7 x 7, and about 230 positive regions at 14 x 14 for each of the mask and
keypoint heads. Each line times the forward alone and forward + backward (the median of
``--repeats``), for ``torchvision.ops.roi_align`` and ``vizlib.roi.roi_align_matrices``,
and checks that both give the same output and gradient. Writes
``benchmarks/results/roi_align.md`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torchvision.ops import roi_align  # noqa: E402

from vizlib.roi import roi_align_matrices  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [  # (what, regions, output side)
    ("box head, 7 x 7", 1024, 7),
    ("mask head, 14 x 14", 232, 14),
    ("keypoint head, 14 x 14", 232, 14),
]


def regions(k: int, images: int, size: int, generator) -> torch.Tensor:
    """``k`` boxes of 4-40 pixels inside ``size x size`` images, sorted by image as a
    detector's are: ``Tensor[k, 5]``."""
    wh = torch.rand(k, 2, generator=generator) * 36 + 4
    xy = torch.rand(k, 2, generator=generator) * (size - wh)
    image = torch.randint(0, images, (k, 1), generator=generator).sort(dim=0).values
    return torch.cat([image.float(), xy, xy + wh], dim=1)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    features = torch.randn(16, 64, 16, 16, generator=g, requires_grad=True)  # stride 4 of 64 px
    rows = []
    for what, k, side in CASES:
        rois = regions(k, 16, 64, g)
        grad = torch.randn(k, 64, side, side, generator=g)
        row = {"case": what, "regions": k}
        outputs = {}
        for name, op in (("torchvision", roi_align), ("matrices", roi_align_matrices)):

            def forward(op=op, rois=rois, side=side):
                with torch.no_grad():
                    op(features, rois, side, 0.25, 2, False)

            def both(op=op, rois=rois, side=side, grad=grad):
                features.grad = None
                op(features, rois, side, 0.25, 2, False).backward(grad)

            row[f"{name} forward ms"] = round(timed(forward, args.repeats), 2)
            row[f"{name} forward + backward ms"] = round(timed(both, args.repeats), 2)
            out = op(features, rois, side, 0.25, 2, False)
            outputs[name] = (out.detach(), torch.autograd.grad(out, features, grad)[0])
        torch.testing.assert_close(outputs["matrices"][0], outputs["torchvision"][0])
        # the gradient sums hundreds of float32 terms per cell, in another order
        torch.testing.assert_close(
            outputs["matrices"][1], outputs["torchvision"][1], rtol=1e-4, atol=1e-4
        )
        row["speed-up (forward + backward)"] = round(
            row["torchvision forward + backward ms"] / row["matrices forward + backward ms"], 1
        )
        rows.append(row)
        print(row, flush=True)
    if not args.no_write:
        keys = list(rows[0])
        lines = [
            "# RoIAlign: torchvision's CPU kernel against the matrix form",
            "",
            f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, "
            f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"load {os.getloadavg()[0]:.1f}, by `benchmarks/bench_roi_align.py` (median of "
            f"{args.repeats}). Features `[16, 64, 16, 16]` (stride 4 of a batch of 16 scenes of "
            "64 x 64), sampling ratio 2, `aligned=False`, as in `lessons/mask_rcnn`. Outputs and "
            "gradients are checked equal (`torch.testing.assert_close`).",
            "",
            "| " + " | ".join(keys) + " |",
            "|---|" + "---:|" * (len(keys) - 1),
        ]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "roi_align.md").write_text("\n".join(lines) + "\n")
        print(f"wrote {RESULTS / 'roi_align.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
