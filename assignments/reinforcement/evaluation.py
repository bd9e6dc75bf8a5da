"""How agents are scored: the grader's own rollouts, the baselines, and the protocol of the
agent-quality tests (course code: students may import and use it to check their agent).

The grader never trusts a score computed by the student's code. It plays the episodes itself:
``rollout_returns`` sends batches of observations to the Q-network (which lives in the student's
process), takes the argmax of the Q-values it gets back, and steps its own environments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import gymnasium
import numpy as np
import torch
from torch import nn

from assignments.reinforcement import mouse_game
from assignments.reinforcement.mouse_game import ENV_ID, VIEW


class PolicyError(ValueError):
    """The Q-network gave something that is not a (B, n_actions) tensor of finite Q-values."""


def rollout_returns(q_values_fn: Callable[[torch.Tensor], torch.Tensor], env_id: str, seeds: list[int],
                    epsilon: float = 0.0, rng: np.random.Generator | None = None) -> list[float]:
    """Play one episode per seed (episode i starts from ``env.reset(seed=seeds[i])``), all in
    lockstep: at each step the observations of the running episodes go to ``q_values_fn`` as one
    float32 batch (n, *obs_shape); each takes the argmax of its Q-values or, with probability
    ``epsilon``, a uniformly random action drawn from ``rng``. Returns the episodes' returns."""
    envs = [gymnasium.make(env_id) for _ in seeds]
    n_actions = int(envs[0].action_space.n)
    rng = rng if rng is not None else np.random.default_rng(0)
    observations = [env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds)]
    returns = [0.0] * len(envs)
    running = list(range(len(envs)))
    while running:
        batch = torch.as_tensor(np.stack([observations[i] for i in running]), dtype=torch.float32)
        q_values = q_values_fn(batch)
        if not isinstance(q_values, torch.Tensor) or tuple(q_values.shape) != (len(running), n_actions):
            got = f"shape {tuple(q_values.shape)}" if isinstance(q_values, torch.Tensor) else type(q_values).__name__
            raise PolicyError(f"the Q-network should map a batch of {len(running)} observations to a tensor of shape "
                              f"({len(running)}, {n_actions}); it returned {got}.")
        q_values = q_values.detach().float().cpu()
        if not torch.isfinite(q_values).all():
            raise PolicyError("the Q-network returned NaN or infinite Q-values.")
        best_actions = q_values.argmax(dim=1).numpy()
        explore = rng.random(len(running)) < epsilon
        random_actions = rng.integers(n_actions, size=len(running))
        still = []
        for j, i in enumerate(running):
            action = int(random_actions[j] if explore[j] else best_actions[j])
            observations[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            if not (terminated or truncated):
                still.append(i)
        running = still
    for env in envs:
        env.close()
    return returns


# -- baselines on the mouse game ---------------------------------------------------------------

class OneStepGreedyQ(nn.Module):
    """A fixed "Q-network" for the mouse game: the Q-value of a move is the item in the cell it
    leads to (+0.5 cheese, -1 poison, 0 empty), minus 0.25 if that cell is the wall. Its argmax
    is a one-step greedy policy (ties go to the first action: up, down, left, right)."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        items, position = obs[:, 0], obs[:, 1]
        cells = [(VIEW + d_row, VIEW + d_col) for d_row, d_col in mouse_game.MOVES]
        q = torch.stack([items[:, r, c] for r, c in cells], dim=1)
        wall = torch.stack([position[:, r, c] < 0 for r, c in cells], dim=1)
        return q - 0.25 * wall.to(q.dtype)


def random_policy_returns(seeds: list[int], rng: np.random.Generator) -> list[float]:
    """Returns of the random mouse (uniform actions), one episode per seed."""
    return rollout_returns(lambda obs: torch.zeros(len(obs), 4), ENV_ID, seeds, epsilon=1.0, rng=rng)


def greedy_policy_returns(seeds: list[int], rng: np.random.Generator) -> list[float]:
    """Returns of the one-step greedy mouse: it moves to an adjacent cheese if there is one, else
    to an adjacent empty cell, never into poison or the wall unless nothing else is left; ties
    are broken uniformly at random (tiny random noise added to ``OneStepGreedyQ``)."""
    greedy = OneStepGreedyQ()

    def q_values(obs: torch.Tensor) -> torch.Tensor:
        return greedy(obs) + torch.as_tensor(rng.random((len(obs), 4)) * 1e-3, dtype=torch.float32)

    return rollout_returns(q_values, ENV_ID, seeds, epsilon=0.0, rng=rng)


# -- the protocol of the agent-quality tests ---------------------------------------------------

@dataclass(frozen=True)
class QualityCheck:
    """How one agent-quality test trains and scores a submission (the handout states it).

    The test makes the network ``network(*network_args)`` with the student's class and calls
    ``train_dqn(env_id, q_net, steps=steps, seed=<training seed>, **train_kwargs)``; then the
    grader plays ``eval_episodes`` episodes of its own with the trained network, epsilon-greedy
    with ``eval_epsilon`` (random actions from the grader's generator). A run passes when the
    mean return is at least ``threshold``. Up to ``runs`` runs are made, with different training
    seeds; the test passes as soon as ``needed`` runs passed, and fails as soon as that has
    become impossible."""

    env_id: str
    network: str
    network_args: tuple
    steps: int
    train_kwargs: dict = field(default_factory=dict)
    eval_episodes: int = 20
    eval_epsilon: float = 0.0
    threshold: float = 0.0
    runs: int = 3
    needed: int = 2

    def training_seed(self, grading_seed: int, run: int) -> int:
        return 1000 * run + grading_seed

    def evaluation_seeds(self, grading_seed: int, run: int) -> list[int]:
        first = 100_000 + 10_000 * run + 100 * (grading_seed % 100)
        return list(range(first, first + self.eval_episodes))

    def evaluation_rng(self, grading_seed: int, run: int) -> np.random.Generator:
        return np.random.default_rng([grading_seed, run])

    def score(self, q_values_fn: Callable[[torch.Tensor], torch.Tensor], grading_seed: int, run: int) -> float:
        """The mean return of the grader's evaluation episodes for this run."""
        returns = rollout_returns(q_values_fn, self.env_id, self.evaluation_seeds(grading_seed, run),
                                  self.eval_epsilon, self.evaluation_rng(grading_seed, run))
        return float(np.mean(returns))

    def passed(self, scores: list[float]) -> bool:
        return sum(score >= self.threshold for score in scores) >= self.needed

    def decided(self, scores: list[float]) -> bool:
        """True once more runs cannot change the verdict."""
        passes = sum(score >= self.threshold for score in scores)
        return passes >= self.needed or passes + (self.runs - len(scores)) < self.needed

    def run(self, dqn, grading_seed: int, stop_early: bool = True) -> list[float]:
        """Train and score runs of the module ``dqn`` (the student's module, or its proxy in the
        grader) until the verdict is decided (all ``runs`` runs with ``stop_early=False``).
        Returns the score of each run made."""
        scores = []
        for run in range(self.runs):
            q_net = getattr(dqn, self.network)(*self.network_args)
            dqn.train_dqn(self.env_id, q_net, steps=self.steps, seed=self.training_seed(grading_seed, run),
                          **self.train_kwargs)
            q_net.eval()
            scores.append(self.score(q_net, grading_seed, run))
            if stop_early and self.decided(scores):
                break
        return scores


# The random mouse scores -1.65 (sd 3.10 per episode), the one-step greedy mouse 8.50 (sd 3.11):
# 2000 episodes each, seeds 0-1999 (python -m assignments.reinforcement.baselines).
RANDOM_MOUSE_SCORE = -1.65
GREEDY_MOUSE_SCORE = 8.50
RANDOM_CARTPOLE_SCORE = 21.9  # a uniformly random CartPole-v1 policy (sd 11.8), same 2000 seeds

MOUSE_CHECK = QualityCheck(
    env_id=ENV_ID, network="ConvQNetwork", network_args=(), steps=3000,
    train_kwargs=dict(gamma=0.9, lr=1e-3, batch_size=64, buffer_capacity=10_000, learning_starts=300,
                      train_every=2, target_update=250, epsilon_start=1.0, epsilon_end=0.05,
                      epsilon_decay_steps=1500),
    eval_episodes=20, eval_epsilon=0.05, threshold=2.0, runs=3, needed=2,
)
CARTPOLE_CHECK = QualityCheck(
    env_id="CartPole-v1", network="MLPQNetwork", network_args=(4, 2, 64), steps=10_000,
    train_kwargs=dict(gamma=0.99, lr=1e-3, batch_size=64, buffer_capacity=10_000, learning_starts=500,
                      train_every=2, target_update=250, epsilon_start=1.0, epsilon_end=0.05,
                      epsilon_decay_steps=5000),
    eval_episodes=10, eval_epsilon=0.0, threshold=100.0, runs=3, needed=2,
)
# Calibration (python -m assignments.reinforcement.calibrate --seeds 0-9): the reference solution,
# grading seeds 0-9, all 3 runs each (30 runs per check): every run passes, 10 of 10 seeds pass.
#   mouse: 5.35-8.70 (mean 7.21, sd 0.76); threshold 2.0 is 6.8 sd below the mean, so under a normal
#     approximation P(one run fails) ~ 4e-12 and P(2 of 3 fail) ~ 5e-23. A network that is never
#     trained scores -0.93 to 0.35 (20 runs), one with a replay buffer that keeps one transition
#     (never trains either) -0.93 to 0.85 (30 runs); the random mouse -1.65 (sd 0.69 for a mean of
#     20 episodes): 2.0 is 5 such sd above it. The threshold sits low on purpose: argmin behaviour
#     (below) learns a weaker Q-function, and a threshold near 3 would pass or fail it by chance.
#   cartpole: 153.7-336.3 (mean 227.8, sd 36.8); threshold 100 is 3.5 sd below: P(one run fails)
#     ~ 2.5e-4, P(2 of 3 fail) ~ 1.9e-7. Without terminal masking 8.6-9.7 (seeds 0-9, 2 runs each:
#     all fail), never trained 8.9-51.3 (seeds 0-9: all fail).
#   Known-bad submissions that still learn a good Q-function pass both (off-policy learning):
#     epsilon never decayed (mouse 3.75-8.15, seeds 0-9), argmin behaviour (mouse 2.95-7.53, seeds 0-9;
#     P(a seed fails) ~ 3e-5); numbers in examples/reinforcement/mutants.toml.
CHECKS = {"mouse": MOUSE_CHECK, "cartpole": CARTPOLE_CHECK}


def linear_q_network(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """A fixed linear Q-network (obs_dim -> n_actions) with the given weights: the tests use it to
    check the TD target and the loss on hand-made batches, in the grader and in your process."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer
