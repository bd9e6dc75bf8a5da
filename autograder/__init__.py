"""A pytest-driven autograder for PyTorch assignments.

Layout of the engine:
- ``protocol``: the pickle-free wire format (values by value, objects by handle);
- ``worker`` / ``sandbox``: the untrusted worker process and how it is started and limited;
- ``remote``: the grader's session and the proxies tests use (``sub.Autoencoder(...)``);
- ``submission``: turning a .py / .ipynb / folder / zip into a clean working directory;
- ``plugin``: the pytest plugin (markers, fixtures, seeding, budgets, result collection);
- ``results``: result objects, Gradescope ``results.json`` and ``gradebook.csv``;
- ``grading``: grading one submission or a batch; ``cli``: the ``autograder`` command;
- ``templates``: generating student templates from solutions; ``checks``: assertion helpers.
"""

__version__ = "0.1.0"
