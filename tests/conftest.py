import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def every_results_json_is_schema_valid(tmp_path):
    """After each test, every results.json it wrote under its tmp_path must follow the schema."""
    yield
    import json

    from autograder.results import validate_results

    for path in tmp_path.rglob("results.json"):
        validate_results(json.loads(path.read_text()))


def _assignments_graded_in(items) -> list[str]:
    """The assignments whose examples this session's collected tests ask for: an assignment's name
    in a test id that uses ``graded_assignment`` (its parameter or its module's name), and the
    autoencoder for ``graded_examples``."""
    from autograder.config import available_assignments

    wanted = set()
    for item in items:
        if "graded_examples" in item.fixturenames:
            wanted.add("autoencoder")
        if "graded_assignment" in item.fixturenames:
            wanted.update(a for a in available_assignments() if a in item.nodeid)
    return sorted(wanted)


@pytest.fixture(scope="session")
def graded_assignment(request, tmp_path_factory):
    """grade(name) -> {example name: (example, result)}: an assignment's examples (reference,
    blank template, known-bad submissions from examples/<name>/mutants.toml, independent correct
    solutions), graded once per test session through the real driver (grade_batch) and shared by
    every test that asks for them.

    The first call grades the examples of every assignment the session's tests ask for, as one
    queue over the machine's slots, the assignments with the largest budgets first. Graded one
    assignment after the other, a slot idled at the end of each assignment's batch while the last
    long submission finished (colorization's take minutes each on a CPU)."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from autograder.config import load_config
    from autograder.examples import build_examples
    from autograder.grading import default_slots, grade_batch
    from autograder.inputs import SubmissionInput
    from autograder.results import validate_results

    cache = {}

    def grade_together(names: list[str]) -> None:
        configs = sorted((load_config(name) for name in names), key=lambda c: -c.submission_seconds)
        queue, results_dirs = [], {}
        for config in configs:
            folder = tmp_path_factory.mktemp(f"examples-{config.name}")
            results_dirs[config.name] = folder / "results"
            queue += [(config, example) for example in build_examples(config, folder / "submissions")]

        def grade_one(task):
            config, example = task
            return grade_batch(config, [SubmissionInput(example.name, example.path)], results_dirs[config.name],
                               device="cpu", jobs=1)[0]

        slots = min(len(default_slots(config, device="cpu")) for config in configs)
        with ThreadPoolExecutor(slots) as pool:
            graded = list(pool.map(grade_one, queue))
        for config in configs:
            pairs = [(example, result) for (c, example), result in zip(queue, graded) if c is config]
            written = sorted(results_dirs[config.name].glob("*/results.json"))
            assert len(written) == len(pairs)
            for path in written:
                validate_results(json.loads(path.read_text()))
            cache[config.name] = {example.name: (example, result) for example, result in pairs}

    def grade(name: str) -> dict:
        if name not in cache:
            wanted = [a for a in _assignments_graded_in(request.session.items) if a not in cache]
            grade_together(wanted if name in wanted else [name])
        return cache[name]

    return grade


@pytest.fixture(scope="session")
def graded_examples(graded_assignment):
    """The autoencoder's graded examples (shared by the example and the Gradescope tests)."""
    return graded_assignment("autoencoder")


@pytest.fixture
def check_reproduction():
    """check(out, pinned_sha256, printed, metric_name, pinned_value, tolerance): the weights a
    training script just wrote to ``out`` are the pinned ones. Bit for bit on machines like the
    one that pinned them (1 thread, deterministic algorithms); another CPU may round float sums
    differently, so there a retrained model must still reach the pinned figure within tolerance
    (printed by the script as ``<metric_name> <value>``) and the test warns."""
    import hashlib
    import re
    import warnings

    def check(out, pinned_sha256: str, printed: str, metric_name: str, pinned_value: float, tolerance: float):
        match = re.search(rf"{re.escape(metric_name)} ([0-9.]+)", printed)
        assert match, f"the script did not print its {metric_name}: {printed}"
        if hashlib.sha256(out.read_bytes()).hexdigest() == pinned_sha256:
            assert float(match.group(1)) == pytest.approx(pinned_value, abs=1e-4)
            return
        warnings.warn(f"{out.name} is not bit-identical to the pinned weights on this machine; "
                      f"{metric_name} {match.group(1)} (pinned {pinned_value})")
        assert abs(float(match.group(1)) - pinned_value) <= tolerance, printed

    return check


@pytest.fixture(scope="session")
def hidden_tests():
    """hidden_tests(assignment) -> grading_tests/<assignment>/test_hidden.py imported as a module of
    its own name (every assignment has a test_hidden), to call its helpers or test functions."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    modules = {}

    def load(assignment: str):
        if assignment not in modules:
            spec = importlib.util.spec_from_file_location(f"{assignment}_hidden",
                                                          root / "grading_tests" / assignment / "test_hidden.py")
            modules[assignment] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(modules[assignment])
        return modules[assignment]

    return load
