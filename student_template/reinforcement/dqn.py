# %% [markdown]
# # Practical 4: Deep Q-learning, from notebook to script
#
# A mouse on a 10 x 10 board eats cheese (+0.5) and avoids poison (-1), seeing only the 25
# cells around it. You will teach it with **deep Q-learning**: a network Q(s, a; theta)
# estimates the return of each action, and training minimises the squared TD error
#
#     L(theta) = E || r + gamma * max_a' Q(s', a'; theta^-) - Q(s, a; theta) ||^2
#
# on mini-batches replayed from the mouse's past experience, while the mouse explores with an
# epsilon-greedy policy whose epsilon decreases. theta^- is a *target network*: a copy of the
# Q-network refreshed every few hundred steps, which keeps the target still while Q chases it.
# The same agent then balances a pole (gymnasium's CartPole-v1).
#
# The handout (README.md) gives the rules of the game and lists every name the grader calls.
# Keep experiments in cells tagged `skip`, or under `if __name__ == "__main__":` in the script:
# the grader imports this file. The last section turns the notebook into a script with
# arguments and logging (the practical's theme).

# %%
import argparse
import copy
import logging

import gymnasium
import numpy as np
import torch
from torch import nn

import assignments.reinforcement.mouse_game  # noqa: F401  (registers "MouseGame-v0" with gymnasium)

logger = logging.getLogger("dqn")

# %% [markdown]
# ## 1. Two Q-networks
#
# A Q-network maps a batch of observations to one Q-value per action: (B, *obs_shape) ->
# (B, n_actions). Q-values can be negative (poison costs -1), so the last layer has **no
# activation**.
#
# * `MLPQNetwork(obs_dim, n_actions, hidden=64)`: flatten the observation, then
#   Linear(obs_dim, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, n_actions).
#   For the mouse obs_dim = 2 * 5 * 5 = 50; for CartPole obs_dim = 4.
# * `ConvQNetwork(n_actions=4)`, the slides' network for the (2, 5, 5) mouse view:
#   Conv2d(2, 8, kernel 2) -> ReLU -> Conv2d(8, 16, kernel 2) -> ReLU -> Flatten (16 * 3 * 3 = 144)
#   -> Linear(144, n_actions). No padding: 5 -> 4 -> 3. It has 1,180 parameters.


# %%
class MLPQNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, *obs_shape) with obs_dim values per observation -> (B, n_actions) Q-values."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


class ConvQNetwork(nn.Module):
    def __init__(self, n_actions: int = 4):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 2, 5, 5) mouse views -> (B, n_actions) Q-values."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 2. Epsilon-greedy exploration
#
# With probability epsilon the agent plays a uniformly random action (any of the n actions,
# the greedy one included), otherwise the action of highest Q-value. Each row of a batch
# decides on its own. Epsilon decreases linearly from `start` to `end` over `decay_steps`
# steps, then stays at `end`:
#
#     epsilon(step) = start + (end - start) * min(step / decay_steps, 1)
#
# Use torch's random functions (`torch.rand`, `torch.randint`) so that `torch.manual_seed`
# makes your agent reproducible.


# %%
def epsilon_schedule(step: int, start: float = 1.0, end: float = 0.05, decay_steps: int = 1000) -> float:
    """Linear decay from ``start`` (step 0) to ``end`` (step ``decay_steps`` and later)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def select_action(q_values: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Epsilon-greedy actions for a batch of Q-values (B, n_actions): an int64 tensor (B,)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 3. Experience replay
#
# The slides' step 3 stores (s_t, a_t, s_{t+1}); the loss also needs the reward r_t, and
# whether s_{t+1} ended the game (`terminated`), so a transition is (s, a, r, s', done).
#
# `ReplayBuffer(capacity, obs_shape)` keeps the last `capacity` transitions: once full, each new
# transition overwrites the **oldest** one (a ring buffer). `sample(batch_size)` draws
# `batch_size` stored transitions uniformly **with replacement** (so it works even when the
# buffer holds fewer transitions than the batch) and returns five tensors:
# observations (B, *obs_shape) float32, actions (B,) int64, rewards (B,) float32,
# next observations (B, *obs_shape) float32 and dones (B,) float32 (1.0 where terminated).
# Sampling from an empty buffer raises `ValueError`.


# %%
class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...]):
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        """Store one transition, overwriting the oldest one when the buffer is full."""
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def __len__(self) -> int:
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """``batch_size`` transitions drawn uniformly with replacement:
        (obs, actions, rewards, next_obs, dones)."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 4. The TD target and the loss
#
# The target of a transition is y = r + gamma * max_a' Q_target(s', a') and just y = r when s'
# is terminal (there is no future after the end): multiply the bootstrap term by (1 - done).
# The target is a *constant* for the loss: compute it under `torch.no_grad()` so no gradient
# flows through it (otherwise the network also moves its own target).
#
# The loss is the mean over the batch of (Q(s, a) - y)^2, where Q(s, a) is the Q-value of the
# action actually taken (`gather` it from the (B, n_actions) output).


# %%
def td_target(target_net: nn.Module, rewards: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """y = r + gamma * (1 - done) * max_a' target_net(s')[a'], shape (B,), without gradient."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def dqn_loss(q_net: nn.Module, target_net: nn.Module, batch: tuple[torch.Tensor, ...], gamma: float) -> torch.Tensor:
    """Mean over the batch of (Q(s, a) - y)^2, with y = td_target(...). A 0-d tensor."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 5. The training loop
#
# `train_dqn(env_id, q_net, steps=..., seed=...)` trains `q_net` in place for `steps`
# environment steps and returns the list of the returns of the training episodes it finished.
#
# 1. Make the environment (`gymnasium.make(env_id)`), seed torch (`torch.manual_seed(seed)`) and
#    the first `env.reset(seed=seed)`. Copy `q_net` into a target network (`copy.deepcopy`).
#    Create an Adam optimiser and a `ReplayBuffer(buffer_capacity, obs_shape)`.
# 2. At each step: epsilon from `epsilon_schedule(step, epsilon_start, epsilon_end,
#    epsilon_decay_steps)`; the action from `select_action` on the Q-values of the current
#    observation (under `torch.no_grad()`); `env.step`; store the transition with
#    `done = terminated` (a time limit, `truncated`, is not a terminal state); at the end of an
#    episode (terminated or truncated) reset the environment.
# 3. Once the buffer holds `learning_starts` transitions, every `train_every` steps: sample a
#    batch, compute `dqn_loss`, `zero_grad`, `backward`, `step`.
# 4. Every `target_update` steps copy the Q-network's weights into the target network
#    (`load_state_dict`).
#
# Log progress with the `logging` module (not `print`): the script section below sends it to a
# file. Leave `q_net` in eval mode at the end.


# %%
def train_dqn(env_id: str, q_net: nn.Module, *, steps: int, seed: int = 0, gamma: float = 0.99, lr: float = 1e-3,
              batch_size: int = 64, buffer_capacity: int = 10_000, learning_starts: int = 500, train_every: int = 1,
              target_update: int = 250, epsilon_start: float = 1.0, epsilon_end: float = 0.05,
              epsilon_decay_steps: int | None = None) -> list[float]:
    """Deep Q-learning on ``gymnasium.make(env_id)`` for ``steps`` steps; returns the training
    episodes' returns. ``epsilon_decay_steps`` defaults to half of ``steps``."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 6. Evaluation
#
# `evaluate(env_id, q_net, episodes, seed, epsilon)` plays `episodes` episodes and returns their
# returns (a list of floats). Episode i starts with `env.reset(seed=seed + i)`, so the same
# arguments always give the same boards. Actions come from `select_action(q_net(obs), epsilon)`
# under `torch.no_grad()`: epsilon = 0 is the greedy policy. The grader never trusts the number
# your function returns: it replays your network itself, with its own boards (see the handout).


# %%
def evaluate(env_id: str, q_net: nn.Module, episodes: int = 10, seed: int = 0, epsilon: float = 0.0) -> list[float]:
    """The returns of ``episodes`` episodes played with ``select_action(q_net(obs), epsilon)``;
    episode i starts from ``env.reset(seed=seed + i)``."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 7. From notebook to script
#
# Run as a script, this file trains an agent from the command line, e.g.
#
#     python dqn.py --env MouseGame-v0 --network cnn --steps 6000 --seed 1 --log-file experiment.log
#
# `parse_args(argv)` returns an `argparse.Namespace` with `env` (default "MouseGame-v0"),
# `network` ("cnn" or "mlp", default "cnn"), `steps` (int, default 6000), `seed` (int, default 0),
# `lr` (float, default 0.001), `gamma` (float, default 0.9), `batch_size` (int, default 64,
# given as `--batch-size`) and `log_file` (default "experiment.log", given as `--log-file`).
# `main` configures `logging.basicConfig` to write to that file, trains and logs the evaluation.


# %%
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The script's command-line arguments (see the handout for names and defaults)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(filename=args.log_file, level=logging.INFO,
                        format="%(asctime)s - %(levelname)s - %(message)s")
    env = gymnasium.make(args.env)
    obs_shape, n_actions = env.observation_space.shape, int(env.action_space.n)
    if args.network == "cnn":
        q_net = ConvQNetwork(n_actions)
    else:
        q_net = MLPQNetwork(int(np.prod(obs_shape)), n_actions)
    logger.info("training on %s with %s for %d steps (seed %d)", args.env, args.network, args.steps, args.seed)
    train_dqn(args.env, q_net, steps=args.steps, seed=args.seed, lr=args.lr, gamma=args.gamma,
              batch_size=args.batch_size)
    scores = evaluate(args.env, q_net, episodes=20, seed=10_000, epsilon=0.05)
    logger.info("evaluation over 20 episodes: mean return %.2f", float(np.mean(scores)))


# %% tags=["skip"]
if __name__ == "__main__":
    main()
