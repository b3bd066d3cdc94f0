"""Benchmark: vizlib.nms.nms (a readable Python loop) against torchvision.ops.nms (C++).

Boxes are clustered like a detector's raw output: a few hundred objects, each with
many jittered candidate boxes. Run by hand:

    OMP_NUM_THREADS=1 python benchmarks/bench_nms.py [--repeats 5] [--json out.json]

It prints, per size, the median time of each implementation, the ratio, and the number
of boxes kept (identical for both, asserted).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torchvision
from torchvision import ops

from vizlib.nms import nms


def clustered_boxes(
    n: int, seed: int = 0, image: float = 1000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    clusters = max(1, n // 20)  # about 20 candidate boxes per object
    centres = torch.rand(clusters, 2, generator=g) * image
    sizes = torch.rand(clusters, 2, generator=g) * 100 + 10
    which = torch.randint(0, clusters, (n,), generator=g)
    c = centres[which] + torch.randn(n, 2, generator=g) * 0.1 * sizes[which]
    wh = sizes[which] * (1 + 0.15 * torch.randn(n, 2, generator=g)).clamp(min=0.2)
    return torch.cat([c - wh / 2, c + wh / 2], dim=1), torch.rand(n, generator=g)


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"{platform.processor() or platform.machine()}, threads={torch.get_num_threads()}, "
        f"iou_threshold={args.threshold}, median of {args.repeats}"
    )
    print(f"{'boxes':>7} {'kept':>6} {'vizlib ms':>10} {'torchvision ms':>15} {'ratio':>7}")
    rows = []
    for n in args.sizes:
        boxes, scores = clustered_boxes(n)
        ours = nms(boxes, scores, args.threshold)
        theirs = ops.nms(boxes, scores, args.threshold)
        assert torch.equal(ours, theirs), "vizlib and torchvision disagree"
        t_ours = median_seconds(lambda b=boxes, s=scores: nms(b, s, args.threshold), args.repeats)
        t_tv = median_seconds(lambda b=boxes, s=scores: ops.nms(b, s, args.threshold), args.repeats)
        row = {
            "boxes": n,
            "kept": len(ours),
            "vizlib_ms": round(t_ours * 1e3, 3),
            "torchvision_ms": round(t_tv * 1e3, 3),
            "ratio": round(t_ours / t_tv, 1),
        }
        rows.append(row)
        print(
            f"{n:>7} {row['kept']:>6} {row['vizlib_ms']:>10.2f} {row['torchvision_ms']:>15.3f} {row['ratio']:>6.1f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "torch": torch.__version__,
                    "torchvision": torchvision.__version__,
                    "results": rows,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
