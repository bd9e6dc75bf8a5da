"""The batch report: ``report.html`` for the instructor and one ``feedback.html`` per student.

Built only from what is on disk (``<out>/<name>/results.json`` and ``images/``), so it can be
rebuilt at any time (``autograder report OUT``) and always matches the gradebook. Static HTML,
no JavaScript, no external resources: the pages open from a file system or a course server.
Hidden tests' messages are shown on feedback pages too; publish the pages when grades are out.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from autograder.results import SubmissionResult, read_results_json, write_atomic

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f3f3f3; text-align: left; } .passed { color: #176b2c; } .failed { color: #a11; }
.skipped { color: #777; } pre { white-space: pre-wrap; background: #f7f7f7; padding: .6em; }
figure { display: inline-block; margin: .5em; } img { image-rendering: pixelated; border: 1px solid #ccc; }
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _histogram_svg(scores: list[float], max_score: float, bins: int = 10) -> str:
    """Score distribution as an inline SVG bar chart (no plotting library needed for 10 bars)."""
    counts = [0] * bins
    for score in scores:
        index = min(bins - 1, int(bins * score / max_score)) if max_score else 0
        counts[index] += 1
    width, height, bar = 520, 180, 48
    top = max(counts) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" role="img" '
             f'aria-label="score distribution">']
    for i, count in enumerate(counts):
        h = round(height * count / top)
        x = 10 + i * (bar + 2)
        low, high = max_score * i / bins, max_score * (i + 1) / bins
        parts.append(f'<rect class="bar" x="{x}" y="{height - h}" width="{bar}" height="{h}" fill="#4a7bb7">'
                     f'<title>{low:g}-{high:g}: {count}</title></rect>')
        parts.append(f'<text x="{x + bar / 2}" y="{height + 14}" font-size="10" text-anchor="middle">{low:g}</text>')
        if count:
            parts.append(f'<text x="{x + bar / 2}" y="{height - h - 3}" font-size="11" text-anchor="middle">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("**Checks:**"):
            return line.removeprefix("Failed: ")[:160]
    return ""


def feedback_page(result: SubmissionResult, images: list[Path]) -> str:
    rows = []
    for test in result.tests:
        rows.append(f'<tr><td>{html.escape(test.name)}</td><td class="{test.status}">{test.status}</td>'
                    f"<td>{test.score:g} / {test.max_score:g}</td><td><pre>{html.escape(test.output)}</pre></td></tr>")
    body = [f"<p>Score: <b>{result.score:g} / {result.max_score:g}</b></p>"]
    if result.error:
        body.append(f'<p class="failed">Problem: {html.escape(result.error)}</p>')
    for note in result.notes:
        body.append(f"<p>Note: {html.escape(note)}</p>")
    body.append("<table><tr><th>test</th><th>result</th><th>points</th><th>message</th></tr>" + "".join(rows) + "</table>")
    if images:
        body.append("<h2>Images</h2>")
        for image in images:
            caption = image.stem.replace("--", ": ")
            body.append(f'<figure><img src="images/{html.escape(image.name)}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return _page(f"{result.assignment}: feedback for {result.submission}", "\n".join(body))


def batch_summary(results: list[SubmissionResult]) -> dict:
    """The numbers the report and the terminal summary show."""
    scores = [r.score for r in results]
    max_score = max((r.max_score for r in results), default=0.0)
    per_test: dict[str, list[bool]] = defaultdict(list)
    failures: Counter = Counter()
    for r in results:
        if r.error:
            failures[f"[submission] {_first_line(r.error)}"] += 1
        for t in r.tests:
            if t.status == "skipped":
                continue
            per_test[t.name].append(t.status == "passed")
            if t.status == "failed":
                failures[f"{t.name}: {_first_line(t.output)}"] += 1
    return {
        "count": len(results), "max_score": max_score, "scores": scores,
        "mean": statistics.fmean(scores) if scores else 0.0,
        "median": statistics.median(scores) if scores else 0.0,
        "full_marks": sum(r.score == r.max_score and r.max_score > 0 for r in results),
        "with_problem": sum(bool(r.error) for r in results),
        "pass_rates": {name: sum(v) / len(v) for name, v in per_test.items()},
        "failures": failures.most_common(),
        "slowest": sorted(results, key=lambda r: r.execution_time, reverse=True)[:10],
    }


def write_report(out_dir: Path, title: str = "") -> Path:
    """Write ``report.html`` and every ``<name>/feedback.html`` under ``out_dir``."""
    out_dir = Path(out_dir)
    folders = sorted(p.parent for p in out_dir.glob("*/results.json"))
    results = [read_results_json(folder / "results.json") for folder in folders]
    for folder, result in zip(folders, results):
        write_atomic(folder / "feedback.html", feedback_page(result, sorted((folder / "images").glob("*.png"))))
    s = batch_summary(results)
    assignment = results[0].assignment if results else ""
    body = [
        f"<p>{s['count']} submissions; mean {s['mean']:.2f}, median {s['median']:g} of {s['max_score']:g}; "
        f"{s['full_marks']} with full marks; {s['with_problem']} with a problem.</p>",
        "<h2>Score distribution</h2>", _histogram_svg(s["scores"], s["max_score"]),
        "<h2>Pass rate per test</h2><table><tr><th>test</th><th>passed</th></tr>",
        *(f"<tr><td>{html.escape(n)}</td><td>{rate:.0%}</td></tr>" for n, rate in s["pass_rates"].items()),
        "</table><h2>Failures, grouped by message</h2><table><tr><th>count</th><th>message</th></tr>",
        *(f"<tr><td>{c}</td><td>{html.escape(m)}</td></tr>" for m, c in s["failures"][:50]),
        "</table><h2>Slowest submissions</h2><table><tr><th>submission</th><th>seconds</th></tr>",
        *(f'<tr><td><a href="{html.escape(r.submission)}/feedback.html">{html.escape(r.submission)}</a></td>'
          f"<td>{r.execution_time:.1f}</td></tr>" for r in s["slowest"]),
        "</table><h2>Submissions</h2><table><tr><th>submission</th><th>score</th><th>problem</th></tr>",
        *(f'<tr><td><a href="{html.escape(f.name)}/feedback.html">{html.escape(r.submission)}</a></td>'
          f"<td>{r.score:g} / {r.max_score:g}</td><td>{html.escape(_first_line(r.error or ''))}</td></tr>"
          for f, r in zip(folders, results)),
        "</table>",
    ]
    path = out_dir / "report.html"
    write_atomic(path, _page(title or f"{assignment}: grading report", "\n".join(body)))
    return path
