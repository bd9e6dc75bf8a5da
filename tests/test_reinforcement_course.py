"""The course side of the deep Q-learning practical: the mouse game follows the handout's rules
and gymnasium's API, the baselines are what the handout says, and the grader's rollout plays the
episodes it is given."""

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from assignments.reinforcement import mouse_game
from assignments.reinforcement.evaluation import (CARTPOLE_CHECK, GREEDY_MOUSE_SCORE, MOUSE_CHECK, RANDOM_MOUSE_SCORE,
                                                  OneStepGreedyQ, PolicyError, greedy_policy_returns,
                                                  random_policy_returns, rollout_returns)
from assignments.reinforcement.mouse_game import CHEESE, ENV_ID, POISON, MouseGameEnv


def test_registered_and_passes_gymnasium_env_checker():
    assert ENV_ID in gymnasium.registry
    env = gymnasium.make(ENV_ID)
    assert env.observation_space == gymnasium.spaces.Box(-1.0, 1.0, (2, 5, 5), np.float32)
    assert env.action_space == gymnasium.spaces.Discrete(4)
    check_env(env.unwrapped, skip_render_check=False)
    check_env(gymnasium.make(ENV_ID, render_mode="rgb_array").unwrapped, skip_render_check=False)
    mouse_game.register()  # a second import or call registers nothing twice
    assert ENV_ID in gymnasium.registry


def test_seeded_reset_is_deterministic_and_seeds_differ():
    env = MouseGameEnv()
    first, info = env.reset(seed=5)
    again, info_again = env.reset(seed=5)
    assert np.array_equal(first, again) and info == info_again
    actions = np.random.default_rng(0).integers(4, size=100)
    trajectories = []
    for _ in range(2):
        env.reset(seed=5)
        trajectories.append([env.step(int(a))[:2] for a in actions])
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(*trajectories))
    boards = {env.reset(seed=s)[0].tobytes() for s in range(20)}
    assert len(boards) > 15


def test_board_statistics_follow_the_placement_probabilities():
    env = MouseGameEnv()
    cheese = poison = cells = 0
    for seed in range(400):
        env.reset(seed=seed)
        board = env._items[2:12, 2:12]
        cheese += int((board == CHEESE).sum())
        poison += int((board == POISON).sum())
        cells += board.size - 1  # the start cell is emptied
    # 39,600 cells: the standard error of each frequency is below 0.0025.
    assert abs(cheese / cells - 0.3) < 0.01 and abs(poison / cells - 0.2) < 0.01


def test_moves_walls_eating_and_episode_length():
    env = MouseGameEnv(size=4, max_steps=6)
    env.reset(seed=0)
    env._items[2:6, 2:6] = 0.0
    env._row, env._col = 2, 2  # top-left corner of the board
    env._items[3, 2] = CHEESE  # below the mouse
    env._items[3, 3] = POISON  # below-right
    obs, reward, terminated, truncated, info = env.step(0)  # up: the wall
    assert reward == 0.0 and info["position"] == (0, 0) and not terminated and not truncated
    assert np.array_equal(obs[1, :2, :], -np.ones((2, 5))) and np.array_equal(obs[1, :, :2], -np.ones((5, 2)))
    assert obs[1, 2, 2] == 1.0 and obs[0, 3, 2] == CHEESE and obs[0, 3, 3] == POISON
    obs, reward, *_ , info = env.step(1)  # down: cheese
    assert reward == 0.5 and info["position"] == (1, 0) and obs[0, 2, 2] == 0.0
    _, reward, *_ = env.step(0)  # up, and back down: the cheese was eaten
    _, reward, *_ = env.step(1)
    assert reward == 0.0
    _, reward, *_ = env.step(3)  # right: poison
    assert reward == -1.0
    _, reward, terminated, truncated, _ = env.step(2)
    assert not terminated and truncated  # 6 moves: truncated, never terminated
    with pytest.raises(ValueError):
        env.step(4)


def test_observation_is_the_window_around_the_mouse():
    env = MouseGameEnv()
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        row, col = info["position"]
        padded = np.pad(env._items[2:12, 2:12], 2)
        assert np.array_equal(obs[0], padded[row:row + 5, col:col + 5])
        inside = np.pad(np.ones((10, 10)), 2, constant_values=0)[row:row + 5, col:col + 5]
        expected_position = np.where(inside == 1, 0.0, -1.0)
        expected_position[2, 2] = 1.0
        assert np.array_equal(obs[1], expected_position)
        assert obs.dtype == np.float32 and obs.shape == (2, 5, 5)


def test_render_draws_the_board_as_rgb():
    env = gymnasium.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=1)
    image = env.render()
    assert image.shape == (12 * 16, 12 * 16, 3) and image.dtype == np.uint8
    assert (image == np.array([220, 40, 40], dtype=np.uint8)).all(axis=2).any()  # cheese is red
    assert (image == np.array([245, 245, 245], dtype=np.uint8)).all(axis=2).sum() == 16 * 16  # one mouse
    assert MouseGameEnv().render() is None  # no render_mode: nothing drawn


def test_baselines_are_what_the_handout_says():
    """The handout's numbers come from 2000 episodes; 400 land within 3 standard errors."""
    seeds = list(range(400))
    random_mean = np.mean(random_policy_returns(seeds, np.random.default_rng(0)))
    greedy_mean = np.mean(greedy_policy_returns(seeds, np.random.default_rng(0)))
    assert abs(random_mean - RANDOM_MOUSE_SCORE) < 3 * 3.1 / 20
    assert abs(greedy_mean - GREEDY_MOUSE_SCORE) < 3 * 3.1 / 20
    assert RANDOM_MOUSE_SCORE + 5 * 3.1 / 20 ** 0.5 < MOUSE_CHECK.threshold < GREEDY_MOUSE_SCORE  # 5 sd of a 20-episode mean


def test_rollout_plays_the_seeded_episodes_and_checks_the_q_values():
    greedy = OneStepGreedyQ()
    batched = rollout_returns(greedy, ENV_ID, [3, 4, 5])
    one_by_one = [rollout_returns(greedy, ENV_ID, [s])[0] for s in (3, 4, 5)]
    assert batched == one_by_one
    env = MouseGameEnv()
    obs, _ = env.reset(seed=3)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(int(greedy(torch.as_tensor(obs)[None]).argmax()))
        total, done = total + reward, terminated or truncated
    assert batched[0] == total
    lengths = rollout_returns(lambda o: torch.zeros(len(o), 2), "CartPole-v1", [0, 1, 2, 3], epsilon=1.0)
    assert len(set(lengths)) > 1 and all(8 <= r <= 500 for r in lengths)  # episodes of different lengths
    with pytest.raises(PolicyError, match="shape"):
        rollout_returns(lambda o: torch.zeros(len(o), 3), ENV_ID, [0])
    with pytest.raises(PolicyError, match="NaN"):
        rollout_returns(lambda o: torch.full((len(o), 4), float("nan")), ENV_ID, [0])


def test_quality_checks_decide_as_soon_as_the_verdict_is_known():
    check = MOUSE_CHECK
    assert check.needed == 2 and check.runs == 3
    assert check.decided([5.0, 5.0]) and check.passed([5.0, 5.0])
    assert check.decided([0.0, 0.0]) and not check.passed([0.0, 0.0])
    assert not check.decided([5.0, 0.0]) and check.passed([5.0, 0.0, 5.0])
    assert len({tuple(check.evaluation_seeds(2025, run)) for run in range(3)}) == 3
    assert max(check.training_seed(2025, run) for run in range(3)) < min(check.evaluation_seeds(2025, 0))
    assert CARTPOLE_CHECK.eval_epsilon == 0.0 and CARTPOLE_CHECK.threshold >= 4 * 22


def test_calibration_script_loads_the_examples_and_computes_m_of_k(tmp_path):
    from assignments.reinforcement import calibrate

    assert calibrate.binomial_tail(0.1, 3, 2) == pytest.approx(0.001 + 3 * 0.9 * 0.01)
    mutant = calibrate.load_example("bad_argmin", tmp_path)
    assert mutant.select_action(torch.tensor([[0.0, 1.0, -1.0]]), 0.0).item() == 2
    with pytest.raises(SystemExit):
        calibrate.load_example("no_such_example", tmp_path)
