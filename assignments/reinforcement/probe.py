"""A probe environment and a constant Q-network for testing ``train_dqn``'s bookkeeping.

``ProbeCorridor-v0`` is a trivial environment whose episodes last exactly ``EPISODE_LENGTH`` steps
with reward 1 per step, and which records every action it is given (``action_log``). With
``ConstantQ`` (a network whose greedy action is always 0) the recorded actions show the
exploration rate a training loop used at each step, and the returns it reports can be checked
against the known episode return.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import torch
from torch import nn

ENV_ID = "ProbeCorridor-v0"
EPISODE_LENGTH = 5
N_ACTIONS = 4
_ACTIONS: list[int] = []


class ProbeCorridorEnv(gymnasium.Env):
    """Observation (2,) zeros; every episode is truncated after EPISODE_LENGTH steps."""

    def __init__(self):
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(N_ACTIONS)
        self._steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._steps = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        _ACTIONS.append(int(action))
        self._steps += 1
        return np.zeros(2, np.float32), 1.0, False, self._steps >= EPISODE_LENGTH, {}


def action_log(clear: bool = False) -> list[int]:
    """The actions given to every ProbeCorridor environment of this process so far."""
    actions = list(_ACTIONS)
    if clear:
        _ACTIONS.clear()
    return actions


class ConstantQ(nn.Module):
    """Q-values that ignore the observation: a learnable bias, initially preferring action 0."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([1.0] + [0.0] * (N_ACTIONS - 1)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(obs.shape[0], N_ACTIONS) + 0.0 * obs.sum(dim=1, keepdim=True)


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point=f"{__name__}:ProbeCorridorEnv")
