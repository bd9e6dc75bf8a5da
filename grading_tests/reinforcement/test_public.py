"""Public tests of the deep Q-learning practical: students get this file and run it with `pytest`.

The grader runs the same tests (and hidden ones) with your code in a separate process: `sub` is
your module, and what your functions return comes back as plain values.
"""

import pytest
import torch
from scipy.stats import chi2

from assignments.reinforcement.evaluation import OneStepGreedyQ
from autograder.checks import expect_close, expect_scalar_close, expect_tensor

# Statistical tests: each chi-square test fails a correct submission with probability 1e-6 (its
# significance level), whatever the seed; a wrong distribution moves the statistic far beyond.
ALPHA = 1e-6


def chi_square_p_value(counts: torch.Tensor, probabilities: torch.Tensor) -> float:
    expected = probabilities * counts.sum()
    statistic = float(((counts - expected) ** 2 / expected).sum())
    return float(chi2.sf(statistic, len(counts) - 1))


@pytest.mark.points(2)
@pytest.mark.public
def test_q_network_shapes(sub):
    """ConvQNetwork() maps (B, 2, 5, 5) mouse views to (B, 4) Q-values; MLPQNetwork(obs_dim,
    n_actions) flattens its input: (B, 2, 5, 5) -> (B, 4) with obs_dim 50, (B, 4) -> (B, 2) for CartPole."""
    views = torch.randn(7, 2, 5, 5)
    expect_tensor(sub.ConvQNetwork()(views), "ConvQNetwork()(x) for x of shape (7, 2, 5, 5)", shape=(7, 4))
    expect_tensor(sub.MLPQNetwork(50, 4)(views), "MLPQNetwork(50, 4)(x) for x of shape (7, 2, 5, 5)", shape=(7, 4))
    expect_tensor(sub.MLPQNetwork(4, 2, 32)(torch.randn(5, 4)), "MLPQNetwork(4, 2, 32)(x) for x of shape (5, 4)",
                  shape=(5, 2))
    q = expect_tensor(sub.ConvQNetwork()(-torch.ones(64, 2, 5, 5)), "ConvQNetwork()(x)", shape=(64, 4))
    q = torch.cat([q, sub.MLPQNetwork(50, 4)(-torch.ones(64, 2, 5, 5))])
    assert (q < 0).any(), ("Q-values can be negative (poison costs -1): the last layer of a Q-network must have "
                           "no activation (no ReLU, Sigmoid or Softmax).")


@pytest.mark.points(1)
@pytest.mark.public
def test_conv_network_matches_the_slides(sub):
    """ConvQNetwork is the slides' network: Conv2d(2, 8, kernel 2), Conv2d(8, 16, kernel 2),
    Flatten to 144, Linear(144, 4): 1,180 parameters."""
    state = sub.ConvQNetwork().state_dict()
    shapes = sorted(tuple(t.shape) for t in state.values())
    count = sum(t.numel() for t in state.values())
    expected = sorted([(8, 2, 2, 2), (8,), (16, 8, 2, 2), (16,), (4, 144), (4,)])
    assert shapes == expected and count == 1180, (
        f"ConvQNetwork should have 1,180 parameters with weights and biases of shapes {expected}; it has {count} "
        f"parameters with shapes {shapes}. Two 2x2 convolutions without padding take 5x5 to 4x4 to 3x3.")


@pytest.mark.points(2)
@pytest.mark.public
def test_epsilon_schedule(sub):
    """epsilon_schedule(step, start, end, decay_steps) decreases linearly from start to end over
    decay_steps steps, then stays at end."""
    cases = [(0, 1.0), (250, 0.775), (500, 0.55), (999, 0.1009), (1000, 0.1), (5000, 0.1)]
    for step, expected in cases:
        expect_scalar_close(sub.epsilon_schedule(step, 1.0, 0.1, 1000), expected,
                            f"epsilon_schedule({step}, start=1.0, end=0.1, decay_steps=1000)", rtol=1e-6, atol=1e-9,
                            hint="epsilon(step) = start + (end - start) * min(step / decay_steps, 1).")
    expect_scalar_close(sub.epsilon_schedule(50, 0.5, 0.0, 100), 0.25, "epsilon_schedule(50, 0.5, 0.0, 100)",
                        rtol=1e-6, atol=1e-9)


@pytest.mark.points(2)
@pytest.mark.public
def test_select_action_greedy_and_uniform(sub):
    """select_action(q_values, epsilon): with epsilon = 0 the argmax of each row (int64, shape
    (B,)); with epsilon = 1 uniformly random actions (chi-square test over 20,000 rows)."""
    q_values = torch.randn(1000, 4)
    actions = expect_tensor(sub.select_action(q_values, 0.0), "select_action(q_values, 0.0)", shape=(1000,),
                            dtype=torch.int64)
    wrong = int((actions != q_values.argmax(dim=1)).sum())
    assert wrong == 0, (f"with epsilon = 0, select_action should always pick the action of highest Q-value; "
                        f"it did not in {wrong} of 1000 rows.")
    actions = expect_tensor(sub.select_action(torch.randn(20000, 4), 1.0), "select_action(q_values, 1.0)",
                            shape=(20000,), dtype=torch.int64)
    assert actions.min() >= 0 and actions.max() <= 3, "actions should be 0, 1, 2 or 3 for 4 Q-values."
    counts = torch.bincount(actions, minlength=4).double()
    p = chi_square_p_value(counts, torch.full((4,), 0.25, dtype=torch.float64))
    assert p > ALPHA, (f"with epsilon = 1 every action should be equally likely; over 20,000 rows the counts were "
                       f"{counts.long().tolist()} (chi-square p-value {p:.2g}).")


@pytest.mark.points(2)
@pytest.mark.public
def test_replay_buffer_basics(sub):
    """ReplayBuffer(capacity, obs_shape): len counts the stored transitions up to capacity;
    sample(B) returns (obs, actions, rewards, next_obs, dones) with shapes (B, 2, 5, 5), (B,),
    (B,), (B, 2, 5, 5), (B,) and dtypes float32, int64, float32, float32, float32, each row one
    stored transition."""
    buffer = sub.ReplayBuffer(100, (2, 5, 5))
    assert len(buffer) == 0, f"a new buffer should be empty; len(buffer) is {len(buffer)}."
    for i in range(10):
        buffer.push(torch.full((2, 5, 5), float(i)), i % 4, float(i), torch.full((2, 5, 5), i + 0.5), i % 3 == 0)
    assert len(buffer) == 10, f"after 10 pushes len(buffer) should be 10, got {len(buffer)}."
    batch = buffer.sample(32)
    assert isinstance(batch, tuple) and len(batch) == 5, "sample should return a tuple of 5 tensors."
    names = ("obs", "actions", "rewards", "next_obs", "dones")
    shapes = ((32, 2, 5, 5), (32,), (32,), (32, 2, 5, 5), (32,))
    dtypes = (torch.float32, torch.int64, torch.float32, torch.float32, torch.float32)
    obs, actions, rewards, next_obs, dones = (expect_tensor(t, f"sample(32): {name}", shape=shape, dtype=dtype)
                                              for t, name, shape, dtype in zip(batch, names, shapes, dtypes))
    index = rewards.long()
    assert ((index >= 0) & (index < 10)).all() and torch.equal(rewards, index.float()), (
        f"sampled rewards should be stored rewards (0, 1, ..., 9); got {rewards.tolist()}.")
    expect_close(obs, index.float().view(-1, 1, 1, 1).expand(32, 2, 5, 5), "sampled obs (row by row)",
                 hint="Expected row i of obs to be the observation pushed with row i's reward: the five fields of "
                      "a row come from one transition.")
    expect_close(next_obs, index.float().view(-1, 1, 1, 1).expand(32, 2, 5, 5) + 0.5, "sampled next_obs (row by row)")
    expect_close(actions, index % 4, "sampled actions (row by row)")
    expect_close(dones, (index % 3 == 0).float(), "sampled dones (row by row)", hint="1.0 where terminated.")
    for i in range(200):
        buffer.push(torch.zeros(2, 5, 5), 0, 0.0, torch.zeros(2, 5, 5), False)
    assert len(buffer) == 100, f"a buffer of capacity 100 should hold 100 transitions after 210 pushes, not {len(buffer)}."


@pytest.mark.points(2)
@pytest.mark.public
def test_td_target(sub, worker):
    """td_target(target_net, rewards, next_obs, dones, gamma) = r + gamma * (1 - done) *
    max_a' target_net(s')[a'], on a hand-made batch with terminal transitions (here the target
    network is the course's OneStepGreedyQ: the Q-value of a move is the item it leads to)."""
    next_obs = torch.zeros(4, 2, 5, 5)
    next_obs[0, 0, 1, 2] = 0.5   # cheese above: max Q(s') = 0.5
    next_obs[1, 0, 2, 3] = -1.0  # poison on the right, the other moves are free: max Q(s') = 0
    next_obs[2, 0, 3, 2] = 0.5   # cheese below, but the transition is terminal
    next_obs[3, 0, :, :] = -1.0  # poison everywhere around: max Q(s') = -1
    rewards = torch.tensor([0.5, -1.0, 0.5, 0.0])
    dones = torch.tensor([0.0, 0.0, 1.0, 0.0])
    target_net = worker.import_course("assignments.reinforcement.evaluation", "OneStepGreedyQ")()
    got = sub.td_target(target_net, rewards, next_obs, dones, 0.9)
    expected = torch.tensor([0.5 + 0.9 * 0.5, -1.0, 0.5, -0.9])
    assert torch.allclose(expected, rewards + 0.9 * (1 - dones) * OneStepGreedyQ()(next_obs).max(dim=1).values)
    expect_close(got, expected, "td_target(target_net, rewards, next_obs, dones, gamma=0.9)", rtol=1e-5, atol=1e-6,
                 hint="Expected y = r + gamma * max_a' Q(s', a') and, where done = 1, y = r.",
                 known_mistakes={"bootstrapping on terminal transitions too (no (1 - done) mask)":
                                 torch.tensor([0.5 + 0.9 * 0.5, -1.0, 0.5 + 0.9 * 0.5, -0.9])})


@pytest.mark.points(1)
@pytest.mark.public
def test_parse_args(sub):
    """parse_args(argv) reads --env, --network, --steps, --seed, --lr, --gamma, --batch-size and
    --log-file, with the handout's defaults."""
    args = sub.parse_args(["--env", "CartPole-v1", "--network", "mlp", "--steps", "500", "--seed", "3",
                           "--lr", "0.01", "--gamma", "0.99", "--batch-size", "32", "--log-file", "run.log"])
    got = {name: getattr(args, name) for name in ("env", "network", "steps", "seed", "lr", "gamma", "batch_size",
                                                   "log_file")}
    expected = {"env": "CartPole-v1", "network": "mlp", "steps": 500, "seed": 3, "lr": 0.01, "gamma": 0.99,
                "batch_size": 32, "log_file": "run.log"}
    assert got == expected and type(got["steps"]) is int and type(got["lr"]) is float, (
        f"parse_args([... the arguments ...]) gave {got}; expected {expected} (ints and floats, not strings).")
    defaults = sub.parse_args([])
    got = {name: getattr(defaults, name) for name in expected}
    expected = {"env": "MouseGame-v0", "network": "cnn", "steps": 6000, "seed": 0, "lr": 0.001, "gamma": 0.9,
                "batch_size": 64, "log_file": "experiment.log"}
    assert got == expected, f"parse_args([]) gave {got}; the handout's defaults are {expected}."
