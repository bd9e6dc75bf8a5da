"""Benchmark of the reference precision/recall: 10k real x 10k generated samples of 64-d features.

    python -m assignments.gan.benchmark_metric [--n 10000] [--dim 64] [--repeat 3]

Times ``assignments.gan.metric.precision_recall`` on the CPU (float32) and, where CUDA is
available, on the GPU (after a warm-up, synchronised), and ``prdc.compute_prdc`` (k=3) on the
same CPU in the same run, so the ratio compares like with like. The features are Gaussian blobs
(continuous), on which both give the same precision and recall; the table says whether they do.
``prdc`` is a test dependency: without it that row is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import torch

from assignments.gan.metric import K, precision_recall


def _features(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dim, generator=g)
    fake = 1.1 * torch.randn(n, dim, generator=g) + 0.1
    return real, fake


def _best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    real, fake = _features(args.n, args.dim, args.seed)
    rows = []  # (implementation, device, seconds, precision, recall)

    seconds, (p, r) = _best_of(args.repeat, lambda: precision_recall(real, fake, K))
    rows.append(("reference (torch)", f"cpu, {torch.get_num_threads()} threads", seconds, p, r))
    reference_cpu = seconds

    if torch.cuda.is_available():
        real_gpu, fake_gpu = real.cuda(), fake.cuda()
        precision_recall(real_gpu, fake_gpu, K)  # warm-up: CUDA context, kernels, allocator

        def on_gpu():
            out = precision_recall(real_gpu, fake_gpu, K)  # .item() inside synchronises
            torch.cuda.synchronize()
            return out

        seconds, (p, r) = _best_of(args.repeat, on_gpu)
        rows.append(("reference (torch)", torch.cuda.get_device_name(), seconds, p, r))

    prdc_seconds = None
    try:
        from prdc import compute_prdc
    except ImportError:
        compute_prdc = None
    if compute_prdc is not None:
        real_np, fake_np = real.numpy(), fake.numpy()

        def run_prdc():
            with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
                out = compute_prdc(real_np, fake_np, K)
            return float(out["precision"]), float(out["recall"])

        prdc_seconds, (p, r) = _best_of(args.repeat, run_prdc)
        rows.append(("prdc 0.2 (numpy, sklearn)", "cpu", prdc_seconds, p, r))

    print(f"precision/recall, k={K}, {args.n} real x {args.n} generated samples, {args.dim}-d features, "
          f"best of {args.repeat}")
    print("| implementation | device | seconds | precision | recall |")
    print("|---|---|---|---|---|")
    for name, device, seconds, p, r in rows:
        print(f"| {name} | {device} | {seconds:.3f} | {p:.4f} | {r:.4f} |")
    if prdc_seconds is not None:
        print(f"reference on CPU is {prdc_seconds / reference_cpu:.1f}x faster than prdc; "
              f"same precision and recall: {rows[0][3:] == rows[-1][3:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
