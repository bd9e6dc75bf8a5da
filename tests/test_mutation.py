"""Mutation testing (autograder/mutation.py): only solution regions are mutated, listed equivalents
are not run, and a mutant the tests miss is reported as a survivor, end to end with Cosmic Ray."""

import sys
import textwrap

import pytest

from autograder import mutation

SOLUTION = '''
SCALE = 3


def scale(x):
    # BEGIN SOLUTION
    return x * SCALE
    # END SOLUTION


def clip(x):
    # BEGIN SOLUTION
    if x > 10:
        return 10
    return x
    # END SOLUTION
'''

# Checks scale() fully, clip() only below the bound: mutants of `x > 10` that keep small
# numbers unchanged survive.
TESTS = '''
import importlib.util, sys

spec = importlib.util.spec_from_file_location("toy", "toy.py")
toy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(toy)

def test_scale():
    assert toy.scale(2) == 6 and toy.scale(-1) == -3

def test_clip_small():
    assert toy.clip(1) == 1
'''


def test_solution_lines_are_the_lines_between_the_markers():
    lines = mutation.solution_lines(SOLUTION)
    source = SOLUTION.splitlines()
    assert {source[n - 1].strip() for n in lines} == {"return x * SCALE", "if x > 10:", "return 10", "return x"}


def test_changed_lines_give_line_numbers_and_text():
    touched, old, new = mutation.changed_lines("a\nb = 1\nc\n", "a\nb = 2\nc\n")
    assert (touched, old, new) == ([2], "b = 1", "b = 2")


def _items(tmp_path):
    (tmp_path / "toy.py").write_text(SOLUTION)
    db, items = mutation._enumerate(tmp_path, "toy.py")
    db.close()
    return items


def test_only_solution_regions_are_mutated_and_equivalents_are_not_run(tmp_path):
    items = _items(tmp_path)
    equivalents = [{"old": "if x > 10:", "new": "if x >= 10:", "why": "10 is returned either way"}]
    mutants, skipped = mutation.classify(SOLUTION, items, equivalents)
    lines = {m.old for m in mutants}
    assert lines <= {"return x * SCALE", "if x > 10:", "return 10", "return x"}
    assert "SCALE = 3" not in lines and any(r == "outside the solution regions" for r in skipped.values())
    equivalent = [m for m in mutants if m.outcome == "equivalent"]
    assert [(m.old, m.new, m.why) for m in equivalent] == [("if x > 10:", "if x >= 10:", "10 is returned either way")]
    assert skipped[equivalent[0].job_id] == "equivalent"
    assert not any(m.operator.endswith("_BitOr") for m in mutants)  # left out: TypeError on floats


def test_an_equivalent_may_list_several_edits_of_one_line():
    entry = {"old": "if x > 10:", "new": ["if x >= 10:", "if x > 11:"], "why": "10 and 11 are returned either way"}
    assert mutation._equivalent(entry, "if x > 10:", "if x >= 10:")
    assert mutation._equivalent(entry, "if x > 10:", "if x > 11:")
    assert not mutation._equivalent(entry, "if x > 10:", "if x < 10:")  # an edit not listed is still run


def test_an_equivalent_without_a_reason_is_refused(tmp_path):
    path = tmp_path / "equivalent_mutants.toml"
    path.write_text('[[equivalent]]\nold = "a"\nnew = "b"\nwhy = ""\n')
    with pytest.raises(ValueError, match="why"):
        mutation.load_equivalents(path)


@pytest.mark.slow
def test_a_run_kills_what_the_tests_check_and_reports_what_they_miss(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    solution = tmp_path / "src" / "toy.py"
    solution.write_text(SOLUTION)
    (tmp_path / "test_toy.py").write_text(textwrap.dedent(TESTS))
    monkeypatch.setattr(mutation, "_solution", lambda name: solution)
    monkeypatch.setattr(mutation, "_test_command",
                        lambda name: f"{sys.executable} -m pytest {tmp_path / 'test_toy.py'} -x -q -p no:cacheprovider")
    monkeypatch.setattr(mutation, "equivalents_path", lambda name: tmp_path / "none.toml")
    out = tmp_path / "out"
    mutants = mutation.plan("toy", out, jobs=2, timeout=60)
    mutation.baseline("toy", out)
    mutation.execute(out, jobs=2)
    mutation.collect(out, mutants, jobs=2)
    by_line = {}
    for m in mutants:
        by_line.setdefault(m.old, set()).add(m.outcome)
    assert by_line["return x * SCALE"] == {"killed"}  # every edit of scale() is caught
    assert "survived" in by_line["if x > 10:"]  # `x >= 10`, `x != 10`...: the tests never reach 10
    summary = mutation.summarise("toy", mutants, 1.0)
    assert summary["pending"] == 0 and 0 < summary["score"] < 100
    report = mutation.write_report(out, summary, mutants).read_text()
    assert "if x > 10:" in report and "Survivors" in report


def _toy_assignment(tmp_path, monkeypatch, source: str) -> None:
    """Point the mutation tool at a toy solution, with no tests to run and no equivalents."""
    (tmp_path / "src").mkdir()
    solution = tmp_path / "src" / "toy.py"
    solution.write_text(source)
    monkeypatch.setattr(mutation, "_solution", lambda name: solution)
    monkeypatch.setattr(mutation, "_test_command", lambda name: "true")
    monkeypatch.setattr(mutation, "equivalents_path", lambda name: tmp_path / "none.toml")


def test_recheck_carries_over_what_the_previous_run_killed(tmp_path, monkeypatch):
    _toy_assignment(tmp_path, monkeypatch, SOLUTION)
    out = tmp_path / "out"
    first = mutation.plan("toy", out, jobs=1, timeout=60)
    killed = next(m for m in first if m.old == "return x * SCALE")
    killed.outcome = "killed"
    mutation.write_report(out, mutation.summarise("toy", first, 1.0), first)
    again = mutation.plan("toy", out, jobs=1, timeout=60, carried=mutation.previously_killed(out / "report.json"))
    carried = [m for m in again if m.outcome == "killed"]
    assert [(m.job_id, m.old, m.new) for m in carried] == [(killed.job_id, killed.old, killed.new)]
    assert all(m.outcome == "pending" for m in again if m not in carried)
    assert mutation.summarise("toy", again, 1.0)["rechecked"] == 1


def test_recheck_tells_apart_the_same_edit_on_two_identical_lines(tmp_path, monkeypatch):
    """`total = 0.0` in two training loops: killing the edit in one says nothing of the other."""
    source = "def a():\n    # BEGIN SOLUTION\n    total = 0.0\n    return total\n    # END SOLUTION\n\n\n" \
             "def b():\n    # BEGIN SOLUTION\n    total = 0.0\n    return total\n    # END SOLUTION\n"
    _toy_assignment(tmp_path, monkeypatch, source)
    out = tmp_path / "out"
    first = mutation.plan("toy", out, jobs=1, timeout=60)
    in_a = [m for m in first if m.line == 3]
    twins = [m for m in first if m.line == 10 and (m.operator, m.old, m.new) in {(k.operator, k.old, k.new) for k in in_a}]
    assert in_a and twins
    for m in in_a:
        m.outcome = "killed"
    mutation.write_report(out, mutation.summarise("toy", first, 1.0), first)
    again = mutation.plan("toy", out, jobs=1, timeout=60, carried=mutation.previously_killed(out / "report.json"))
    assert all(m.outcome == "killed" for m in again if m.line == 3)
    assert all(m.outcome == "pending" for m in again if m.line == 10)


def test_resume_goes_on_where_an_interrupted_run_stopped(tmp_path, monkeypatch):
    """--resume rebuilds the same mutants from the shards' sessions, puts back the solution a
    mutant interrupted half-way left edited, runs only what is pending, and refuses when the
    solution changed since the run started."""
    _toy_assignment(tmp_path, monkeypatch, SOLUTION)
    out = tmp_path / "out"
    planned = mutation.plan("toy", out, jobs=2, timeout=60)
    (out / "shard-1" / "toy.py").write_text(SOLUTION.replace("x * SCALE", "x / SCALE"))  # interrupted mid-mutant
    resumed, jobs = mutation.replan("toy", out)
    assert jobs == 2
    assert [(m.job_id, m.old, m.new, m.outcome) for m in resumed] == [(m.job_id, m.old, m.new, m.outcome) for m in planned]
    assert (out / "shard-1" / "toy.py").read_text() == SOLUTION
    mutation.execute(out, jobs)
    mutation.collect(out, resumed, jobs)
    assert all(m.outcome == "survived" for m in resumed)  # the toy's test command checks nothing
    (tmp_path / "src" / "toy.py").write_text(SOLUTION.replace("SCALE = 3", "SCALE = 4"))
    with pytest.raises(SystemExit, match="changed since the run"):
        mutation.replan("toy", out)
