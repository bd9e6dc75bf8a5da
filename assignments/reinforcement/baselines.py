"""Baselines of the exact rules of the mouse game, and of CartPole-v1's random policy.

    python -m assignments.reinforcement.baselines [--episodes 2000]

Plays the random mouse (uniform actions), the one-step greedy mouse (an adjacent cheese if there
is one, else an adjacent empty cell, never poison or the wall unless nothing else is left, ties
broken at random) and a uniformly random CartPole policy, each on ``--episodes`` episodes with
environment seeds 0, 1, ..., and prints the mean return and its spread. The numbers are written
in evaluation.py (RANDOM_MOUSE_SCORE, GREEDY_MOUSE_SCORE, RANDOM_CARTPOLE_SCORE) and in the
handout; tests/test_reinforcement_course.py recomputes them on fewer episodes.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from assignments.reinforcement.evaluation import greedy_policy_returns, random_policy_returns, rollout_returns


def random_cartpole_returns(seeds: list[int], rng: np.random.Generator) -> list[float]:
    return rollout_returns(lambda obs: torch.zeros(len(obs), 2), "CartPole-v1", seeds, epsilon=1.0, rng=rng)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=2000)
    args = parser.parse_args(argv)
    seeds = list(range(args.episodes))
    for name, play in (("random mouse", random_policy_returns), ("one-step greedy mouse", greedy_policy_returns),
                       ("random CartPole-v1", random_cartpole_returns)):
        returns = play(seeds, np.random.default_rng(0))
        print(f"{name}: mean return {statistics.mean(returns):.2f} (sd {statistics.stdev(returns):.2f} per episode, "
              f"standard error {statistics.stdev(returns) / len(returns) ** 0.5:.2f}) over {len(returns)} episodes")


if __name__ == "__main__":
    main()
