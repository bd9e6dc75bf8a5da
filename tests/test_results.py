"""Results: Gradescope format, gradebook, and recovery when the grader's test process dies."""

import csv
import io
import json

from autograder.config import load_config
from autograder.grading import _collect
from autograder.results import SubmissionResult, TestResult, gradebook_csv, read_results_json, write_results_json


def test_results_json_roundtrip_and_gradescope_fields(tmp_path):
    result = SubmissionResult(
        submission="alice", assignment="autoencoder", seed=3, device="cpu", versions={"torch": "x"},
        tests=[TestResult(name="t1", nodeid="f.py::t1", number="1.1", max_score=2, score=2, status="passed"),
               TestResult(name="t2", nodeid="f.py::t2", number="1.2", max_score=3, visibility="after_published",
                          output="**Checks:** x\n\nFailed: y")],
    )
    path = tmp_path / "alice" / "results.json"
    write_results_json(result, path)
    data = json.loads(path.read_text())
    assert data["score"] == 2 and data["output_format"] == "md"
    assert [t["status"] for t in data["tests"]] == ["passed", "failed"]
    assert data["tests"][1]["visibility"] == "after_published" and data["tests"][1]["max_score"] == 3
    assert data["extra_data"]["seed"] == 3 and data["extra_data"]["versions"] == {"torch": "x"}
    again = read_results_json(path)
    assert again.score == 2 and again.max_score == 5 and again.tests[1].output == result.tests[1].output
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left nothing behind


def test_gradebook_has_a_column_per_test():
    a = SubmissionResult("a", "x", tests=[TestResult("t1", "t1", "1", 1, 1, "passed"), TestResult("t2", "t2", "2", 1)])
    b = SubmissionResult("b", "x", error="could not be imported\nTraceback...")
    rows = list(csv.reader(io.StringIO(gradebook_csv([b, a]))))
    assert rows[0] == ["submission", "score", "max_score", "tests_passed", "tests_total", "t1", "t2", "problem"]
    assert rows[1][:5] == ["a", "1", "2", "1", "2"] and rows[2][0] == "b" and rows[2][-1] == "could not be imported"


def test_results_are_recovered_from_the_journal_when_the_test_process_dies(tmp_path):
    config = load_config("autoencoder")
    raw = tmp_path / "raw-results.json"  # never written: the process died
    done = TestResult("t1", "f.py::t1", "1.1", 2, 2, "passed").__dict__
    journal = [json.dumps({"collected": ["f.py::t1", "f.py::t2"]}), json.dumps({"result": done}), '{"result": {"na']
    raw.with_suffix(".partial.jsonl").write_text("\n".join(journal))
    result = _collect(raw, "alice", config, ["graded the script"], "the grader's test process ended with code -9")
    assert [t.nodeid for t in result.tests] == ["f.py::t1", "f.py::t2"]
    assert result.tests[0].score == 2 and result.tests[1].status == "failed"
    assert "did not run" in result.tests[1].output and "code -9" in result.error


def test_a_test_process_that_dies_after_writing_partial_results_loses_no_test(tmp_path):
    """The results file lists only what ran before a crash (or it is cut short): every collected
    test is still in the result, the unrun ones failed at their full points, so the total can
    never be lower than the assignment's."""
    config = load_config("autoencoder")
    raw = tmp_path / "raw-results.json"
    ran = TestResult("t1", "f.py::t1", "1.1", 2, 2, "passed").__dict__
    journal = [json.dumps({"collected": ["f.py::t1", "f.py::t2", "f.py::t3"],
                           "points": {"f.py::t1": 2.0, "f.py::t2": 3.0, "f.py::t3": 1.0}}), json.dumps({"result": ran})]
    raw.with_suffix(".partial.jsonl").write_text("\n".join(journal))
    raw.write_text(json.dumps({"tests": [ran], "seed": 1, "device": "cpu", "versions": {}}))
    result = _collect(raw, "bob", config, [], "the grader's test process ended with code 3")
    assert [t.nodeid for t in result.tests] == ["f.py::t1", "f.py::t2", "f.py::t3"]
    assert result.score == 2 and result.max_score == 6
    assert [t.status for t in result.tests] == ["passed", "failed", "failed"]
    raw.write_text('{"tests": [')  # cut short
    broken = _collect(raw, "bob", config, [], None)
    assert broken.max_score == 6 and broken.score == 2 and "could not be read" in broken.error
