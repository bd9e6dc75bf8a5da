"""Calibrate the training tests: ``python grading_tests/segmentation/calibrate.py [--gpu-profile] [--submission FILE] 0 1 2 ...``.

Trains the reference solution (or ``--submission``'s .py or .ipynb, e.g. one of
examples/segmentation/correct/: a trusted file, run in this process) with each grading seed exactly as test_training_reaches_miou does
(one torch thread, like the worker; the grader seeds random, numpy and torch before the test) and
prints the mean IoU per class on that seed's secret held-out scenes (what the test measures), and
on load_split()'s public held-out scenes for comparison. ``--gpu-profile`` runs the CUDA test's larger setting
instead (on the GPU when there is one). Instructor-only (lives with the hidden tests).
"""

import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "solutions" / "segmentation")]

import unet as reference  # noqa: E402
from test_hidden import CPU_PROFILE, GPU_PROFILE, held_out_scenes  # noqa: E402

from assignments.segmentation.data import NUM_CLASSES, load_split  # noqa: E402
from autograder.submission import load_trusted_solution  # noqa: E402
from autograder.worker import seed_everything  # noqa: E402

torch.set_num_threads(1)
args = sys.argv[1:]
solution = reference
if "--submission" in args:
    at = args.index("--submission")
    solution = load_trusted_solution(Path(args[at + 1]))
    del args[at:at + 2]
    print(f"submission {solution.__file__}", flush=True)
gpu = "--gpu-profile" in args
profile = GPU_PROFILE if gpu else CPU_PROFILE
device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
(x_train, y_train, _), (x_public, y_public, _) = load_split()
for seed in (int(a) for a in args if a != "--gpu-profile"):
    seed_everything(seed)
    model = solution.UNet(1, NUM_CLASSES, **profile["model"])
    start = time.perf_counter()
    solution.train_unet(model, x_train, y_train, loss="ce", device=device, **profile["training"])
    seconds = time.perf_counter() - start
    x_test, y_test, _ = held_out_scenes(seed)
    with torch.no_grad():
        model.eval()  # as the test evaluates it
        pred = model(x_test.to(device)).argmax(dim=1).cpu()
        public = reference.iou_per_class(model(x_public.to(device)).argmax(dim=1).cpu(), y_public, NUM_CLASSES)
    ious = reference.iou_per_class(pred, y_test, NUM_CLASSES)
    print(f"seed {seed}: held-out mIoU {ious.mean().item():.4f} (per class {[round(v, 3) for v in ious.tolist()]}), "
          f"load_split's held-out {public.mean().item():.4f}, {seconds:.1f} s on {device}", flush=True)
