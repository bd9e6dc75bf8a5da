"""The mouse game of the course (slides, practical 4) as a gymnasium environment.

Importing this module registers it as ``"MouseGame-v0"``::

    import gymnasium
    import assignments.reinforcement.mouse_game  # noqa: F401  (registers MouseGame-v0)

    env = gymnasium.make("MouseGame-v0")
    obs, info = env.reset(seed=0)           # obs: float32 array of shape (2, 5, 5)
    obs, reward, terminated, truncated, info = env.step(3)

Rules (the handout, README.md, states the same):

* The board has ``size x size`` cells (10 x 10). At each reset every cell independently holds
  cheese with probability ``p_cheese`` (0.3), else poison with probability ``p_poison`` (0.2),
  else nothing: one uniform number u per cell, cheese if u < 0.3, poison if 0.3 <= u < 0.5.
* The mouse starts on a uniformly random cell, which is then emptied.
* Actions: 0 = up (row - 1), 1 = down (row + 1), 2 = left (column - 1), 3 = right (column + 1).
  A move into the wall leaves the mouse where it is (reward 0).
* Entering a cell with cheese gives +0.5, with poison -1; the item is eaten (the cell becomes
  empty). Every other move gives 0.
* An episode lasts exactly ``max_steps`` (100) moves: then ``truncated`` is True. ``terminated``
  is always False (nothing ends the game early), so a time-limit end must not be treated as a
  terminal state in the TD target.
* The mouse sees the 25 cells within range 2 (a 5 x 5 window centred on itself), as a float32
  array of shape (2, 5, 5), channels first as PyTorch's convolutions expect (the slides' 5x5x2):
  channel 0 holds the items (+0.5 cheese, -1 poison, 0 empty or outside the board), channel 1
  the position plane (-1 on cells outside the board, the wall; +1 on the mouse's own cell, the
  centre; 0 elsewhere).
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

ENV_ID = "MouseGame-v0"
CHEESE, POISON = 0.5, -1.0
VIEW = 2  # the mouse sees the cells within this range: a (2 * VIEW + 1)^2 window
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right as (d_row, d_column)
ACTION_NAMES = ("up", "down", "left", "right")

# render(): RGB colours of the slides' picture (food red, poison blue) on a dark board.
_COLOURS = {
    "wall": (90, 90, 90), "empty": (20, 20, 20), "cheese": (220, 40, 40), "poison": (40, 80, 230),
    "mouse": (245, 245, 245),
}


class MouseGameEnv(gymnasium.Env):
    """A mouse eats cheese (+0.5) and avoids poison (-1) on a ``size x size`` board for
    ``max_steps`` moves, seeing only the 5 x 5 window around itself."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, size: int = 10, max_steps: int = 100, p_cheese: float = 0.3, p_poison: float = 0.2,
                 render_mode: str | None = None, cell_pixels: int = 16):
        if size < 1 or max_steps < 1:
            raise ValueError(f"size and max_steps must be positive, got {size} and {max_steps}")
        if not (0 <= p_cheese and 0 <= p_poison and p_cheese + p_poison <= 1):
            raise ValueError(f"p_cheese and p_poison must be probabilities summing to at most 1, got {p_cheese}, {p_poison}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size, self.max_steps = size, max_steps
        self.p_cheese, self.p_poison = p_cheese, p_poison
        self.render_mode, self.cell_pixels = render_mode, cell_pixels
        self.observation_space = spaces.Box(low=-1.0, high=1.0, shape=(2, 2 * VIEW + 1, 2 * VIEW + 1), dtype=np.float32)
        self.action_space = spaces.Discrete(len(MOVES))
        # The board with a wall of width VIEW all around, so the window never leaves the array.
        self._items = np.zeros((size + 2 * VIEW, size + 2 * VIEW), dtype=np.float32)
        self._position_plane = np.full_like(self._items, -1.0)
        self._position_plane[VIEW:VIEW + size, VIEW:VIEW + size] = 0.0
        self._row = self._col = VIEW
        self._steps = 0

    # -- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        u = self.np_random.random((self.size, self.size))
        board = np.where(u < self.p_cheese, CHEESE, np.where(u < self.p_cheese + self.p_poison, POISON, 0.0))
        self._items[:] = 0.0
        self._items[VIEW:VIEW + self.size, VIEW:VIEW + self.size] = board
        self._row = VIEW + int(self.np_random.integers(self.size))
        self._col = VIEW + int(self.np_random.integers(self.size))
        self._items[self._row, self._col] = 0.0
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}: use 0 (up), 1 (down), 2 (left) or 3 (right)")
        d_row, d_col = MOVES[int(action)]
        row, col = self._row + d_row, self._col + d_col
        reward = 0.0
        if self._position_plane[row, col] == 0.0:  # inside the board: move, and eat what is there
            self._row, self._col = row, col
            reward = float(self._items[row, col])
            self._items[row, col] = 0.0
        self._steps += 1
        truncated = self._steps >= self.max_steps
        return self._observation(), reward, False, truncated, self._info()

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        inside = self._position_plane == 0.0
        image = np.empty((*self._items.shape, 3), dtype=np.uint8)
        image[~inside] = _COLOURS["wall"]
        image[inside] = _COLOURS["empty"]
        image[self._items == CHEESE] = _COLOURS["cheese"]
        image[self._items == POISON] = _COLOURS["poison"]
        image[self._row, self._col] = _COLOURS["mouse"]
        # Only one cell of the wall is drawn around the board; each cell is cell_pixels wide.
        image = image[VIEW - 1:VIEW + self.size + 1, VIEW - 1:VIEW + self.size + 1]
        return np.repeat(np.repeat(image, self.cell_pixels, axis=0), self.cell_pixels, axis=1)

    # -- helpers ------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        window = (slice(self._row - VIEW, self._row + VIEW + 1), slice(self._col - VIEW, self._col + VIEW + 1))
        position = self._position_plane[window].copy()
        position[VIEW, VIEW] = 1.0
        return np.stack([self._items[window], position]).astype(np.float32)

    def _info(self) -> dict:
        return {"position": (self._row - VIEW, self._col - VIEW), "steps": self._steps,
                "cheese_left": int((self._items == CHEESE).sum())}


def register() -> None:
    """Register ``MouseGame-v0`` with gymnasium (done once, when this module is imported)."""
    if ENV_ID not in gymnasium.registry:
        # No TimeLimit wrapper: the environment truncates its episodes itself (max_steps).
        gymnasium.register(id=ENV_ID, entry_point=f"{__name__}:MouseGameEnv")


register()
