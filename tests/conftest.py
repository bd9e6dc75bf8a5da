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


@pytest.fixture(scope="session")
def graded_assignment(tmp_path_factory):
    """grade(name) -> {example name: (example, result)}: an assignment's examples (reference,
    blank template, known-bad submissions from examples/<name>/mutants.toml), graded once per
    test session through the real driver and shared by every test that asks for them."""
    import json

    from autograder.config import load_config
    from autograder.examples import build_examples
    from autograder.grading import grade_batch
    from autograder.results import validate_results

    cache = {}

    def grade(name: str) -> dict:
        if name not in cache:
            config = load_config(name)
            folder = tmp_path_factory.mktemp(f"examples-{name}")
            examples = build_examples(config, folder / "submissions")
            results = grade_batch(config, [e.path for e in examples], folder / "results", device="cpu")
            written = sorted((folder / "results").glob("*/results.json"))
            assert len(written) == len(examples)
            for path in written:
                validate_results(json.loads(path.read_text()))
            cache[name] = {e.name: (e, r) for e, r in zip(examples, results)}
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
