"""Grading on a Dask cluster: each submission is one task.

``scheduler`` is a scheduler address (``tcp://host:8786``), ``"local"`` (a LocalCluster on this
machine, on loopback) or ``"slurm"`` (a dask-jobqueue SLURMCluster configured by the usual
``~/.config/dask/jobqueue.yaml``). Workers need this package and the assignment installed and
must see the submissions' paths (a shared file system, as on a cluster). Results come back to
the client by value (the results.json content, the log, the images) and the client commits them,
so resuming works exactly as for local grading.

GPU work is routed with Dask worker resources: with ``device="cuda"`` every task asks for
``GPU=1``, so it only runs on workers started with ``--resources GPU=1`` (or GPU=2 to let two
submissions share a GPU).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

from autograder.config import AssignmentConfig, load_config
from autograder.inputs import SubmissionInput
from autograder.results import SubmissionResult


def grade_task(assignment: str, name: str, source: str, device: str, seed: int | None,
               tests_dir: str | None) -> dict:
    """What runs on a Dask worker: grade into a private folder, return everything by value."""
    from autograder.grading import grade_submission

    config = load_config(assignment)
    with tempfile.TemporaryDirectory(prefix="dask-grade-") as out:
        result = grade_submission(config, Path(source), Path(out), device=device, seed=seed,
                                  tests_dir=Path(tests_dir) if tests_dir else None, name=name)
        folder = Path(out) / name
        log = (folder / "grader.log").read_text(encoding="utf-8") if (folder / "grader.log").is_file() else ""
        images = {p.name: p.read_bytes() for p in sorted((folder / "images").glob("*.png"))}
    return {"results": result.to_gradescope(), "log": log, "images": images, "host": os.uname().nodename}


def _client(scheduler: str):
    from distributed import Client, LocalCluster

    if scheduler == "local":
        cluster = LocalCluster(n_workers=max(1, (os.cpu_count() or 1)), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        return Client(cluster), cluster
    if scheduler == "slurm":
        from dask_jobqueue import SLURMCluster  # optional: pip install dask-jobqueue

        cluster = SLURMCluster()
        cluster.adapt(maximum_jobs=int(os.environ.get("AUTOGRADER_SLURM_JOBS", "10")))
        return Client(cluster), cluster
    return Client(scheduler), None


def grade_on_dask(config: AssignmentConfig, todo: list[SubmissionInput], out_dir: Path, scheduler: str, *,
                  device: str = "auto", seed: int | None = None, tests_dir: Path | None = None, salt: str = "",
                  ) -> Iterator[tuple[SubmissionInput, SubmissionResult]]:
    from distributed import as_completed

    from autograder.grading import _internal_error, record_result
    from autograder.results import write_atomic

    client, cluster = _client(scheduler)
    try:
        resources = {"GPU": 1} if device == "cuda" else None
        futures = {}
        for sub in todo:
            future = client.submit(grade_task, config.name, sub.name, str(Path(sub.source).resolve()), device, seed,
                                   str(tests_dir) if tests_dir else None, key=f"grade-{config.name}-{sub.name}",
                                   resources=resources, retries=0, pure=False)
            futures[future] = sub
        for future in as_completed(futures):
            sub = futures[future]
            try:
                payload = future.result()
                result = SubmissionResult.from_gradescope(payload["results"])
                folder = Path(out_dir) / sub.name
                write_atomic(folder / "grader.log", payload["log"])
                for image, data in payload["images"].items():
                    (folder / "images").mkdir(parents=True, exist_ok=True)
                    (folder / "images" / image).write_bytes(data)
            except Exception as exc:  # noqa: BLE001 - a lost worker costs one submission, not the batch
                result = _internal_error(config, sub, exc)
            record_result(result, sub, out_dir, salt)
            yield sub, result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
