"""A real student's notebook plots, shows progress bars and tables: graded like one that does not,
and its plots are shown on its feedback page.

The notebook stack (autograder/stack.py) is a dependency of the package, pinned in the Gradescope
image and listed in the student bundle; the worker draws figures with the Agg backend, so
``plt.show()`` never needs a display.
"""

import tomllib
from pathlib import Path

import nbformat
import pytest

from autograder.config import load_config
from autograder.grading import grade_submission
from autograder.stack import NOTEBOOK_PACKAGES

ROOT = Path(__file__).resolve().parents[1]

GRADING_TESTS = '''
import pytest
import torch

@pytest.mark.points(1)
@pytest.mark.public
def test_double(sub):
    assert torch.equal(sub.double(torch.arange(3.0)), torch.tensor([0.0, 2.0, 4.0]))
'''

CELLS = [
    ("markdown", "# Practical\nA student's notebook, as handed in."),
    ("code", "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport numpy as np\nimport pandas as pd\n"
             "import seaborn as sns\nimport torch\nfrom IPython.display import display, Markdown\n"
             "from tqdm.auto import tqdm\nfrom tqdm.notebook import tqdm as tqdm_nb"),
    ("code", "def double(x):\n    return 2 * x"),
    ("code", "losses = []\nfor step in tqdm(range(20)):\n    losses.append(1 / (step + 1))\n"
             "for _ in tqdm_nb(range(3)):\n    pass\n"
             "plt.figure(figsize=(4, 3))\nplt.plot(losses)\nplt.title('loss')\nplt.show()"),
    ("code", "frame = pd.DataFrame({'step': range(5), 'loss': losses[:5]})\ndisplay(frame)\n"
             "display(Markdown('**done**'))\nsns.lineplot(data=frame, x='step', y='loss')\nplt.show()\nframe.head()"),
]


def test_the_notebook_stack_is_a_dependency_everywhere_submissions_run():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip() for d in dependencies}
    assert set(NOTEBOOK_PACKAGES) <= names
    from autograder.lock import read_lock
    for lock in ("runtime.txt", "runtime-cpu.txt"):  # the student bundle's, and Gradescope's
        assert set(NOTEBOOK_PACKAGES) <= {pin.name for pin in read_lock(ROOT / "requirements" / lock)}


@pytest.mark.slow
def test_a_notebook_that_plots_and_displays_gets_full_marks(tmp_path):
    tests_dir = tmp_path / "grading_tests"
    tests_dir.mkdir()
    (tests_dir / "test_grading.py").write_text(GRADING_TESTS)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
                      for kind, text in CELLS]
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook, path)
    result = grade_submission(load_config("autoencoder"), path, tmp_path / "out", device="cpu", tests_dir=tests_dir)
    assert result.error is None, result.error
    assert result.score == result.max_score == 1, result.tests[0].output
    figures = sorted(p.name for p in (tmp_path / "out" / "student" / "images").glob("your-notebook--figure-*.png"))
    assert figures == ["your-notebook--figure-1.png", "your-notebook--figure-2.png"]  # its plots, on its feedback page


def test_every_handout_says_what_is_installed():
    from autograder.config import available_assignments

    for name in available_assignments():
        handout = (ROOT / "assignments" / name / "README.md").read_text(encoding="utf-8")
        section = handout[handout.index("What is installed where your code is graded"):]
        missing = [package for package in NOTEBOOK_PACKAGES if package.lower() not in section.lower()]
        assert not missing, f"{name}: the handout does not say that {missing} are installed"
