"""The matplotlib backend of the student's worker (``MPLBACKEND=module://autograder.mpl_backend``).

It draws like Agg, without a window, and makes ``plt.show()`` behave as in a notebook's inline
backend: the figures shown are rendered (kept, at most ``MAX_KEPT``, for the feedback page) and
closed, so the next plot starts a new figure. With plain Agg a notebook's second plot would land
on the first one's axes. This is matplotlib's documented way to plug in a backend (a module with
``FigureCanvas`` and ``FigureManager``); only ``show`` differs from Agg.
"""

from __future__ import annotations

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

from autograder.images import MAX_FIGURE_SIDE as MAX_SIDE  # the size the grader accepts back

MAX_KEPT = 8
SHOWN: list = []  # (H, W, 3) uint8 arrays of the figures shown so far


def render(figure):
    """An (H, W, 3) uint8 array of ``figure``, at most MAX_SIDE pixels a side."""
    import numpy as np

    width, height = figure.get_size_inches()
    figure.set_dpi(min(100.0, MAX_SIDE / max(width, height, 1e-3)))
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def keep_and_close_all() -> None:
    for manager in Gcf.get_all_fig_managers():
        if len(SHOWN) < MAX_KEPT:
            try:
                SHOWN.append(render(manager.canvas.figure))
            except Exception:  # noqa: BLE001 - a figure that cannot be drawn is simply not kept
                pass
    Gcf.destroy_all()


class FigureManager(FigureManagerBase):
    @classmethod
    def pyplot_show(cls, *, block=None):
        keep_and_close_all()


class FigureCanvas(FigureCanvasAgg):
    manager_class = FigureManager


def show(*args, **kwargs):  # older matplotlib looks the module's show up directly
    keep_and_close_all()
