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
