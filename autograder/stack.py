"""The notebook stack: the libraries a course's Jupyter has next to torch, which students' notebooks
import (plots, progress bars, ``display``, tables). They are dependencies of the package, pinned in
the Gradescope image and listed in the student bundle's requirements, so a notebook that imports
matplotlib is graded exactly like one that does not. Figures never open a window in the worker
(``MPLBACKEND=Agg``, set in ``autograder.sandbox.worker_environment``)."""

# ipywidgets: tqdm.notebook (the progress bar of many notebooks) refuses to start without it.
NOTEBOOK_PACKAGES = ["matplotlib", "tqdm", "ipython", "ipywidgets", "pandas", "seaborn"]
