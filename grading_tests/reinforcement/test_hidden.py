"""Hidden tests of the deep Q-learning practical. Students see their feedback, never this code.

The agent-quality tests follow the protocol of assignments/reinforcement/evaluation.py
(MOUSE_CHECK, CARTPOLE_CHECK), which the handout states: the student's train_dqn trains the
student's network with the grader's seed, then the grader plays its own evaluation episodes,
asking the network (in the student's process) only for the Q-values of the observations it
sends, and taking the argmax itself. Nothing the student's code reports is trusted.
Calibration over 10 grading seeds (python -m assignments.reinforcement.calibrate): the numbers
are next to the thresholds in evaluation.py and in the handout (the reference's mean is 6.8 sd above the
mouse threshold, 3.5 sd above CartPole's; 10 of 10 grading seeds pass both).
"""

import pytest
import torch
from scipy.stats import chi2

from assignments.reinforcement.evaluation import (CARTPOLE_CHECK, GREEDY_MOUSE_SCORE, MOUSE_CHECK, RANDOM_CARTPOLE_SCORE,
                                                  RANDOM_MOUSE_SCORE, OneStepGreedyQ, PolicyError, QualityCheck,
                                                  linear_q_network, rollout_returns)
from autograder.checks import expect_close, expect_raises, expect_scalar, expect_tensor, format_pair

ALPHA = 1e-6  # significance level of each chi-square test: a correct submission fails it with probability 1e-6


def chi_square_p_value(counts: torch.Tensor, probabilities: torch.Tensor) -> float:
    expected = probabilities * counts.sum()
    statistic = float(((counts - expected) ** 2 / expected).sum())
    return float(chi2.sf(statistic, len(counts) - 1))


@pytest.mark.points(2)
@pytest.mark.hidden
def test_select_action_frequencies(sub):
    """With epsilon = 0.1 and 0.5, select_action picks the greedy action with probability
    1 - epsilon + epsilon / 4 and each other action with probability epsilon / 4, every row on its
    own (chi-square tests over 20,000 rows, each failing a correct submission with probability 1e-6)."""
    rows = 20000
    best = torch.arange(rows) % 4  # the greedy action changes from row to row
    q_values = torch.randn(rows, 4)
    q_values[torch.arange(rows), best] = q_values.max(dim=1).values + 0.1 + torch.rand(rows)
    for epsilon in (0.1, 0.5):
        actions = expect_tensor(sub.select_action(q_values, epsilon), f"select_action(q_values, {epsilon})",
                                shape=(rows,), dtype=torch.int64)
        offset = (actions - best) % 4  # 0: the greedy action, 1-3: the others
        counts = torch.bincount(offset, minlength=4).double()[:4]
        expected = torch.tensor([1 - epsilon + epsilon / 4] + [epsilon / 4] * 3, dtype=torch.float64)
        p = chi_square_p_value(counts, expected)
        assert p > ALPHA, (
            f"with epsilon = {epsilon}, over {rows} rows the greedy action was chosen {int(counts[0])} times and the "
            f"others {counts[1:].long().tolist()}; expected about {[round(rows * e) for e in expected.tolist()]} "
            f"(chi-square p-value {p:.2g}). A random action is any of the 4 actions (the greedy one included), "
            "and each row draws its own coin.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_replay_buffer_ring_and_sampling(sub):
    """A full ReplayBuffer overwrites its oldest transitions first; sample draws uniformly with
    replacement (a batch larger than the buffer works); sampling an empty buffer raises ValueError."""
    empty = sub.ReplayBuffer(4, (3,))
    expect_raises("ValueError", lambda: empty.sample(2), "sampling an empty buffer (ReplayBuffer(4, (3,)).sample(2))")

    buffer = sub.ReplayBuffer(5, (3,))
    for i in range(8):
        buffer.push(torch.full((3,), float(i)), 0, float(i), torch.full((3,), float(i)), False)
    assert len(buffer) == 5, f"a buffer of capacity 5 should hold 5 transitions after 8 pushes, not {len(buffer)}."
    rewards = expect_tensor(buffer.sample(500)[2], "sample(500): rewards", shape=(500,))
    kept = sorted(set(rewards.long().tolist()))
    # P(one of 5 stored transitions never drawn in 500 draws) < 5 * 0.8^500: never.
    assert kept == [3, 4, 5, 6, 7], (
        f"after pushing transitions 0..7 into a buffer of capacity 5 it should hold 3..7 (the oldest are "
        f"overwritten first); 500 samples drew transitions {kept}.")

    small = sub.ReplayBuffer(100, (3,))
    for i in range(3):
        small.push(torch.full((3,), float(i)), 0, float(i), torch.full((3,), float(i)), False)
    rewards = expect_tensor(small.sample(64)[2], "sample(64) from a buffer holding 3 transitions: rewards",
                            shape=(64,))
    drawn = sorted(set(rewards.long().tolist()))
    # P(one of 3 never drawn in 64 draws) < 3 * (2/3)^64 < 1e-10.
    assert drawn == [0, 1, 2], (f"sample(64) from a buffer of 3 transitions should draw each of them (with "
                                f"replacement); it drew {drawn}.")

    uniform = sub.ReplayBuffer(10, (3,))
    for i in range(10):
        uniform.push(torch.zeros(3), 0, float(i), torch.zeros(3), False)
    counts = torch.bincount(uniform.sample(20000)[2].long(), minlength=10).double()[:10]
    p = chi_square_p_value(counts, torch.full((10,), 0.1, dtype=torch.float64))
    assert p > ALPHA, (f"sample should draw the stored transitions uniformly; 20,000 draws from 10 transitions "
                       f"gave the counts {counts.long().tolist()} (chi-square p-value {p:.2g}).")


def _batch(obs_dim: int = 3, n: int = 6) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(11)
    obs = torch.randn(n, obs_dim, generator=generator)
    actions = torch.tensor([0, 1, 2, 1, 0, 2])[:n]
    rewards = torch.tensor([0.5, -1.0, 0.0, 0.5, 1.0, -0.5])[:n]
    next_obs = torch.randn(n, obs_dim, generator=generator)
    dones = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 0.0])[:n]
    return obs, actions, rewards, next_obs, dones


def _linear(seed: int, obs_dim: int = 3, n_actions: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_actions, obs_dim, generator=generator), torch.randn(n_actions, generator=generator)


def _reference_loss(q_net, target_net, batch, gamma):
    obs, actions, rewards, next_obs, dones = batch
    q_taken = q_net(obs)[torch.arange(len(actions)), actions]
    with torch.no_grad():
        target = rewards + gamma * (1 - dones) * target_net(next_obs).max(dim=1).values
    return ((q_taken - target) ** 2).mean()


@pytest.mark.points(2)
@pytest.mark.hidden
def test_dqn_loss_value(sub, worker):
    """dqn_loss(q_net, target_net, batch, gamma) is the batch mean of (Q(s, a) - y)^2, with Q(s, a)
    from q_net at the actions taken and y the TD target from target_net (masked where done = 1),
    on hand-made batches with terminal transitions."""
    make = worker.import_course("assignments.reinforcement.evaluation", "linear_q_network")
    (wq, bq), (wt, bt) = _linear(1), _linear(2)
    q_net, target_net = make(wq, bq), make(wt, bt)
    batch = _batch()
    for gamma in (0.9, 0.0):
        expected = _reference_loss(linear_q_network(wq, bq), linear_q_network(wt, bt), batch, gamma).item()
        got = expect_scalar(sub.dqn_loss(q_net, target_net, batch, gamma), f"dqn_loss(..., gamma={gamma})")
        got_text, want_text = format_pair(got, expected)
        assert abs(got - expected) <= 1e-4 * abs(expected) + 1e-6, (
            f"dqn_loss on a hand-made batch of 6 transitions (2 terminal) with gamma = {gamma} is {got_text}, expected "
            f"{want_text}. Things to check: the Q-value of the action taken (gather), the target network for "
            "max_a' Q(s', a'), the bootstrap masked where done = 1, the squared errors averaged over the batch.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_no_gradient_through_the_target(sub, worker):
    """The TD target is a constant for the loss: td_target carries no gradient, and when the
    Q-network is its own target network the gradient of dqn_loss is the semi-gradient
    2/B sum (Q(s, a) - y) dQ(s, a)/dtheta, not the gradient through y as well."""
    make = worker.import_course("assignments.reinforcement.evaluation", "linear_q_network")
    weight, bias = _linear(3)
    net = make(weight, bias)
    obs, actions, rewards, next_obs, dones = _batch()
    batch = (obs, actions, rewards, next_obs, torch.zeros_like(dones))  # no terminal: only the gradient matters here
    _, (grad,) = worker.vjp(sub.td_target, net, rewards, next_obs, dones, 0.9, wrt=(2,))
    assert grad is None or not grad.any(), (
        "td_target carries a gradient with respect to the next observations: compute it under torch.no_grad() "
        "(or detach it), so that the loss does not move its own target.")
    grads = worker.parameter_grads(net, sub.dqn_loss, net, net, batch, 0.9)
    reference = linear_q_network(weight, bias)
    expected = torch.autograd.grad(_reference_loss(reference, reference, batch, 0.9),
                                   [reference.weight, reference.bias])
    for name, want in zip(("weight", "bias"), expected):
        got = grads.get(name)
        assert got is not None, "dqn_loss does not depend on the Q-network's parameters through autograd."
        expect_close(got, want, f"the gradient of dqn_loss(net, net, batch, 0.9) with respect to the {name}",
                     rtol=1e-4, atol=1e-5,
                     hint="Expected the semi-gradient: the TD target is a constant, only Q(s, a) is differentiated.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_train_dqn_bookkeeping(sub, worker):
    """On a probe environment (episodes of exactly 5 steps, reward 1 per step, every action
    recorded) with a Q-network whose greedy action is 0: train_dqn returns the return (5.0) of each
    finished episode; epsilon decays over steps // 2 steps by default (then only greedy actions);
    no gradient step before the buffer holds learning_starts transitions, and one as soon as it
    does; at most one with train_every larger than the run; the target network follows the
    network every target_update steps."""
    import_probe = lambda name: worker.import_course("assignments.reinforcement.probe", name)  # noqa: E731
    action_log, constant_q = import_probe("action_log"), import_probe("ConstantQ")

    q_net = constant_q()
    before = worker.module_state(q_net).parameters
    action_log(clear=True)
    returns = sub.train_dqn("ProbeCorridor-v0", q_net, steps=2000, seed=3, learning_starts=10_000,
                            epsilon_start=1.0, epsilon_end=0.0)
    assert isinstance(returns, (list, tuple)), f"train_dqn should return a list of returns, got {type(returns).__name__}."
    returns = [expect_scalar(r, f"train_dqn(...)[{i}]") for i, r in enumerate(returns)]
    assert returns == [5.0] * 400, (
        f"2000 steps of episodes of 5 steps with reward 1 give 400 finished episodes of return 5.0; train_dqn returned "
        f"{len(returns)} values {sorted(set(returns))[:5]}. Sum an episode's rewards from 0, append the sum when the "
        "episode ends (terminated or truncated), and reset it.")
    actions = action_log(clear=True)
    assert len(actions) == 2000, f"train_dqn(..., steps=2000) should take 2000 environment steps; it took {len(actions)}."
    # epsilon = 1 - t / 1000 until step 1000, then 0; a random action is non-greedy 3 times in 4.
    # Expected non-greedy actions: 75% early on; about 94 (sd ~9) in steps 500-999; none after.
    early = sum(a != 0 for a in actions[:200]) / 200
    middle = sum(a != 0 for a in actions[500:1000])
    late = sum(a != 0 for a in actions[1000:])
    assert early >= 0.5 and middle >= 50 and late == 0, (
        f"with epsilon_start=1, epsilon_end=0 and steps=2000, epsilon should decay linearly over the default "
        f"steps // 2 = 1000 steps: about 3/4 x (1 - t/1000) non-greedy actions, none from step 1000. Got "
        f"{early:.0%} non-greedy actions in steps 0-199, {middle} in steps 500-999 (about 94 expected) and {late} "
        "in steps 1000-1999.")
    after = worker.module_state(q_net).parameters
    assert all(torch.equal(before[name], after[name]) for name in before), (
        "with learning_starts=10000 and 2000 steps the buffer never holds learning_starts transitions, so no "
        "gradient step may happen; the network's weights changed.")

    q_net = constant_q()
    before = worker.module_state(q_net).parameters
    sub.train_dqn("ProbeCorridor-v0", q_net, steps=8, seed=3, learning_starts=8, batch_size=8, train_every=1)
    after = worker.module_state(q_net).parameters
    assert not all(torch.equal(before[name], after[name]) for name in before), (
        "with learning_starts=8, the buffer holds 8 transitions after the 8th step, which must then take a gradient "
        "step; the network did not change in 8 steps.")

    # train_every larger than the run: at most one gradient step (Adam moves each weight by at
    # most lr = 0.05 per step), against about 100 with train_every=1.
    q_net = constant_q()
    before = worker.module_state(q_net).parameters["bias"]
    sub.train_dqn("ProbeCorridor-v0", q_net, steps=100, seed=3, gamma=0.9, lr=0.05, learning_starts=1, batch_size=1,
                  train_every=10**6, target_update=10**6)
    moved = (worker.module_state(q_net).parameters["bias"] - before).abs().max().item()
    assert moved <= 0.11, (
        f"with train_every=10**6 and 100 steps, train_dqn may take one gradient step at most; the Q-network's "
        f"weights moved by {moved:.3f}, more than Adam's lr=0.05 per step allows. Train only every train_every steps.")

    # The probe's episodes are only ever truncated (done = terminated is always False), so with
    # gamma = 0.9 the Q-values move towards 1 + 0.9 max Q_target: towards 1 / (1 - 0.9) = 10 when
    # the target follows the network (target_update=1; reference 7.7-9.9 after 300 steps), and to
    # 1 + 0.9 x 1 = 1.9 when the target stays the initial copy (target_update larger than steps;
    # reference 1.90).
    settings = dict(steps=300, seed=0, gamma=0.9, lr=0.05, learning_starts=8, batch_size=8)
    q_net = constant_q()
    sub.train_dqn("ProbeCorridor-v0", q_net, target_update=1, **settings)
    followed = worker.module_state(q_net).parameters["bias"].max().item()
    q_net = constant_q()
    sub.train_dqn("ProbeCorridor-v0", q_net, target_update=10**6, **settings)
    fixed = worker.module_state(q_net).parameters["bias"].max().item()
    assert followed >= 5.0 and fixed <= 2.5, (
        f"on the probe (reward 1 per step, episodes only truncated, gamma=0.9) the largest Q-value reached "
        f"{followed:.2f} with target_update=1 and {fixed:.2f} with target_update=10**6; expected about 10 (the target "
        "network copied every step) and 1.9 (never copied after the start). Copy the weights every target_update "
        "steps, starting at step 0, and store done = terminated (a truncated episode is not terminal).")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_evaluate_matches_the_grader(sub, worker):
    """evaluate(env_id, q_net, episodes, seed, epsilon=0) returns the list of the episodes' returns,
    episode i starting from env.reset(seed=seed + i): the same numbers as the grader's own rollout
    of the course's one-step greedy Q-network on the mouse game."""
    greedy = worker.import_course("assignments.reinforcement.evaluation", "OneStepGreedyQ")()
    got = sub.evaluate("MouseGame-v0", greedy, episodes=6, seed=321, epsilon=0.0)
    expected = rollout_returns(OneStepGreedyQ(), "MouseGame-v0", list(range(321, 327)), epsilon=0.0)
    assert isinstance(got, (list, tuple)) and len(got) == 6, (
        f"evaluate(..., episodes=6) should return a list of 6 returns, got {type(got).__name__} "
        f"{got if not isinstance(got, (list, tuple)) else len(got)}.")
    got = [expect_scalar(value, f"evaluate(...)[{i}]") for i, value in enumerate(got)]
    assert all(abs(g - e) < 1e-4 for g, e in zip(got, expected)), (
        f"evaluate('MouseGame-v0', one_step_greedy_q, episodes=6, seed=321, epsilon=0.0) returned {got}; replaying "
        f"the same episodes gives {expected}. Start episode i with env.reset(seed=seed + i), play argmax actions "
        "until terminated or truncated, and sum the rewards.")


def _quality(sub, check: QualityCheck, grading_seed: int) -> tuple[list[float], bool]:
    try:
        scores = check.run(sub, grading_seed)
    except PolicyError as exc:
        raise AssertionError(f"the grader could not play your trained network: {exc}") from None
    return scores, check.passed(scores)


def _describe(check: QualityCheck, scores: list[float]) -> str:
    return ", ".join(f"run {i + 1}: {s:.2f}" for i, s in enumerate(scores))


@pytest.mark.points(5)
@pytest.mark.hidden
@pytest.mark.budget(180)
def test_mouse_agent(sub, grading_seed):
    """train_dqn('MouseGame-v0', ConvQNetwork(), steps=3000, ...) with the handout's settings makes
    a mouse whose mean score over the grader's 20 evaluation episodes (epsilon 0.05) is at least 2.0
    (random mouse -1.65, one-step greedy 8.50); 2 of up to 3 training runs must reach it."""
    check = MOUSE_CHECK
    scores, passed = _quality(sub, check, grading_seed)
    assert passed, (
        f"your trained mouse scored {_describe(check, scores)} (mean return over the grader's {check.eval_episodes} "
        f"evaluation episodes); {check.needed} of {check.runs} runs must reach {check.threshold}. A random mouse "
        f"scores {RANDOM_MOUSE_SCORE}, a one-step greedy one {GREEDY_MOUSE_SCORE}; the reference solution about 7.2. "
        "Check the loop against the handout: the TD target, the replay buffer, the target network updates.")


@pytest.mark.points(4)
@pytest.mark.hidden
@pytest.mark.budget(300)
def test_cartpole_agent(sub, grading_seed):
    """train_dqn('CartPole-v1', MLPQNetwork(4, 2, 64), steps=10000, ...) with the handout's settings
    balances the pole for a mean return of at least 100 over the grader's 10 greedy evaluation
    episodes (random policy about 22); 2 of up to 3 training runs must reach it."""
    check = CARTPOLE_CHECK
    scores, passed = _quality(sub, check, grading_seed)
    assert passed, (
        f"your trained CartPole agent scored {_describe(check, scores)} (mean return over the grader's "
        f"{check.eval_episodes} greedy episodes); {check.needed} of {check.runs} runs must reach {check.threshold}. "
        f"A random policy scores about {RANDOM_CARTPOLE_SCORE:.0f}; the reference solution about 230. Things to check: "
        "CartPole ends when the pole falls (terminated), and the TD target must not bootstrap from there; the replay "
        "buffer; the target network updates.")
