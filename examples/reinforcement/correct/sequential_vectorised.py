"""Practical 4: deep Q-learning for the mouse game (and CartPole), as a script.

    python dqn.py --env CartPole-v1 --network mlp --steps 10000
"""

import argparse
import copy
import logging
from collections import deque

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import assignments.reinforcement.mouse_game  # noqa: F401  (registers "MouseGame-v0" with gymnasium)

logger = logging.getLogger("dqn")


class MLPQNetwork(nn.Sequential):
    """Flatten -> Linear(obs_dim, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, n_actions)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__(
            nn.Flatten(start_dim=1),
            nn.Linear(obs_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, n_actions),
        )


class ConvQNetwork(nn.Sequential):
    """The slides' network for (B, 2, 5, 5) views: 1,180 parameters."""

    def __init__(self, n_actions: int = 4):
        super().__init__(
            nn.Conv2d(2, 8, kernel_size=2), nn.ReLU(),
            nn.Conv2d(8, 16, kernel_size=2), nn.ReLU(),
            nn.Flatten(start_dim=1),
            nn.Linear(16 * 3 * 3, n_actions),
        )


def epsilon_schedule(step: int, start: float = 1.0, end: float = 0.05, decay_steps: int = 1000) -> float:
    """start + (end - start) * min(step / decay_steps, 1)."""
    progress = 1.0 if decay_steps <= 0 else min(step / decay_steps, 1.0)
    return start + (end - start) * progress


def select_action(q_values: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Row-wise epsilon-greedy: a uniform action among all n with probability epsilon, else the argmax."""
    actions = q_values.argmax(dim=-1).to(torch.int64)
    explore = torch.rand(actions.shape, device=q_values.device) < epsilon
    n_explore = int(explore.sum())
    if n_explore:
        actions[explore] = torch.randint(0, q_values.shape[-1], (n_explore,), device=q_values.device)
    return actions


class ReplayBuffer:
    """The last ``capacity`` transitions, in a deque: appending to a full deque drops the oldest."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...]):
        self.capacity = capacity
        self.obs_shape = tuple(obs_shape)
        self.memory: deque = deque(maxlen=capacity)

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        self.memory.append((
            torch.as_tensor(obs, dtype=torch.float32).clone().reshape(self.obs_shape),
            int(action),
            float(reward),
            torch.as_tensor(next_obs, dtype=torch.float32).clone().reshape(self.obs_shape),
            1.0 if terminated else 0.0,
        ))

    def __len__(self) -> int:
        return len(self.memory)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        if len(self.memory) == 0:
            raise ValueError("the replay buffer is empty")
        rows = [self.memory[i] for i in torch.randint(len(self.memory), (batch_size,)).tolist()]
        obs, actions, rewards, next_obs, dones = zip(*rows)
        return (torch.stack(obs),
                torch.tensor(actions, dtype=torch.int64),
                torch.tensor(rewards, dtype=torch.float32),
                torch.stack(next_obs),
                torch.tensor(dones, dtype=torch.float32))


@torch.no_grad()
def td_target(target_net: nn.Module, rewards: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """r + gamma * (1 - done) * max_a' target_net(s')[a'], computed without gradient."""
    best_next, _ = target_net(next_obs).max(dim=1)
    return rewards + gamma * (1 - dones) * best_next


def dqn_loss(q_net: nn.Module, target_net: nn.Module, batch: tuple[torch.Tensor, ...], gamma: float) -> torch.Tensor:
    """MSE between Q(s, a) of the actions taken and the TD targets (a 0-d tensor)."""
    obs, actions, rewards, next_obs, dones = batch
    q_sa = q_net(obs)[torch.arange(len(actions)), actions.long()]
    y = td_target(target_net, rewards, next_obs, dones, gamma)
    return F.mse_loss(q_sa, y)


def train_dqn(env_id: str, q_net: nn.Module, *, steps: int, seed: int = 0, gamma: float = 0.99, lr: float = 1e-3,
              batch_size: int = 64, buffer_capacity: int = 10_000, learning_starts: int = 500, train_every: int = 1,
              target_update: int = 250, epsilon_start: float = 1.0, epsilon_end: float = 0.05,
              epsilon_decay_steps: int | None = None) -> list[float]:
    """Trains ``q_net`` in place with DQN for ``steps`` environment steps; returns the finished
    training episodes' returns."""
    decay = steps // 2 if epsilon_decay_steps is None else epsilon_decay_steps
    env = gymnasium.make(env_id)
    torch.manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    target_net = copy.deepcopy(q_net).requires_grad_(False).eval()
    optimizer = torch.optim.Adam(q_net.parameters(), lr=lr)
    memory = ReplayBuffer(buffer_capacity, env.observation_space.shape)
    q_net.train()

    returns, current = [], 0.0
    losses: deque = deque(maxlen=100)
    for step in range(steps):
        eps = epsilon_schedule(step, epsilon_start, epsilon_end, decay)
        with torch.no_grad():
            q = q_net(torch.from_numpy(np.asarray(obs, dtype=np.float32))[None])
        action = select_action(q, eps).item()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        memory.push(obs, action, reward, next_obs, terminated)  # truncation is not a terminal state
        current += reward
        if terminated or truncated:
            returns.append(float(current))
            current = 0.0
            obs, _ = env.reset()
            if len(returns) % 10 == 0:
                logger.info("step %6d | episodes %4d | mean return (last 10) %8.2f | epsilon %.3f | loss %.4f",
                            step + 1, len(returns), np.mean(returns[-10:]), eps,
                            float(np.mean(losses)) if losses else float("nan"))
        else:
            obs = next_obs

        if len(memory) >= learning_starts and (step + 1) % train_every == 0:
            loss = dqn_loss(q_net, target_net, memory.sample(batch_size), gamma)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

        if step > 0 and step % target_update == 0:
            target_net.load_state_dict(q_net.state_dict())

    env.close()
    q_net.eval()
    return returns


@torch.no_grad()
def evaluate(env_id: str, q_net: nn.Module, episodes: int = 10, seed: int = 0, epsilon: float = 0.0) -> list[float]:
    """Returns of ``episodes`` episodes; episode i starts from ``env.reset(seed=seed + i)``."""
    env = gymnasium.make(env_id)
    scores = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        score, finished = 0.0, False
        while not finished:
            q = q_net(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))
            obs, reward, terminated, truncated, _ = env.step(select_action(q, epsilon).item())
            score += reward
            finished = terminated or truncated
        scores.append(float(score))
    env.close()
    logger.info("evaluate %s: %d episodes, mean return %.2f", env_id, episodes, float(np.mean(scores)) if scores else 0.0)
    return scores


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="MouseGame-v0")
    parser.add_argument("--network", choices=("cnn", "mlp"), default="cnn")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    parser.add_argument("--log-file", dest="log_file", default="experiment.log")
    return parser.parse_args(argv)


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


if __name__ == "__main__":
    main()
