# %% [markdown]
# # Practical 4: Deep Q-learning, from notebook to script
#
# A mouse on a 10 x 10 board eats cheese (+0.5) and avoids poison (-1), seeing the 5 x 5 cells
# around it. We train it with deep Q-learning (replay buffer, target network, epsilon-greedy
# exploration), then balance a pole with the same code, and run the whole thing as a script.

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


# %%
class MLPQNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(obs_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_actions)
        self.relu = nn.ReLU()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, *obs_shape) with obs_dim values per observation -> (B, n_actions) Q-values."""
        h = self.flatten(obs)
        h = self.relu(self.fc1(h))
        h = self.relu(self.fc2(h))
        return self.out(h)  # no activation: Q-values can be negative


class ConvQNetwork(nn.Module):
    def __init__(self, n_actions: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 8, kernel_size=2)   # 5x5 -> 4x4
        self.conv2 = nn.Conv2d(8, 16, kernel_size=2)  # 4x4 -> 3x3
        self.flatten = nn.Flatten()                   # 16 * 3 * 3 = 144
        self.head = nn.Linear(144, n_actions)
        self.relu = nn.ReLU()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 2, 5, 5) mouse views -> (B, n_actions) Q-values."""
        h = self.relu(self.conv1(obs))
        h = self.relu(self.conv2(h))
        return self.head(self.flatten(h))


# %% [markdown]
# ## 2. Epsilon-greedy exploration


# %%
def epsilon_schedule(step: int, start: float = 1.0, end: float = 0.05, decay_steps: int = 1000) -> float:
    """Linear decay from ``start`` (step 0) to ``end`` (step ``decay_steps`` and later)."""
    if decay_steps <= 0:
        return float(end)
    fraction = min(step / decay_steps, 1.0)
    return float(start + (end - start) * fraction)


def select_action(q_values: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Epsilon-greedy actions for a batch of Q-values (B, n_actions): an int64 tensor (B,)."""
    batch_size, n_actions = q_values.shape
    greedy = q_values.argmax(dim=1)
    random_actions = torch.randint(n_actions, (batch_size,), device=q_values.device)
    explore = torch.rand(batch_size, device=q_values.device) < epsilon
    return torch.where(explore, random_actions, greedy).long()


# %% [markdown]
# ## 3. Experience replay (a ring buffer of preallocated tensors)


# %%
class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...]):
        self.capacity = int(capacity)
        self.obs_shape = tuple(obs_shape)
        self.obs = torch.zeros((self.capacity, *self.obs_shape), dtype=torch.float32)
        self.next_obs = torch.zeros((self.capacity, *self.obs_shape), dtype=torch.float32)
        self.actions = torch.zeros(self.capacity, dtype=torch.int64)
        self.rewards = torch.zeros(self.capacity, dtype=torch.float32)
        self.dones = torch.zeros(self.capacity, dtype=torch.float32)
        self.position = 0  # where the next transition goes (the oldest one once full)
        self.size = 0

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        """Store one transition, overwriting the oldest one when the buffer is full."""
        i = self.position
        self.obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.actions[i] = int(action)
        self.rewards[i] = float(reward)
        self.dones[i] = float(bool(terminated))
        self.position = (self.position + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def __len__(self) -> int:
        return self.size

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """``batch_size`` transitions drawn uniformly with replacement:
        (obs, actions, rewards, next_obs, dones)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(self.size, (batch_size,))
        return (self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.dones[idx])


# %% [markdown]
# ## 4. The TD target and the loss


# %%
def td_target(target_net: nn.Module, rewards: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """y = r + gamma * (1 - done) * max_a' target_net(s')[a'], shape (B,), without gradient."""
    with torch.no_grad():
        next_q = target_net(next_obs).max(dim=1).values
        return rewards + gamma * (1.0 - dones) * next_q


def dqn_loss(q_net: nn.Module, target_net: nn.Module, batch: tuple[torch.Tensor, ...], gamma: float) -> torch.Tensor:
    """Mean over the batch of (Q(s, a) - y)^2, with y = td_target(...). A 0-d tensor."""
    obs, actions, rewards, next_obs, dones = batch
    q_taken = q_net(obs).gather(1, actions.long().unsqueeze(1)).squeeze(1)
    targets = td_target(target_net, rewards, next_obs, dones, gamma)
    return ((q_taken - targets) ** 2).mean()


# %% [markdown]
# ## 5. The training loop


# %%
def _as_batch(obs) -> torch.Tensor:
    return torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)


def train_dqn(env_id: str, q_net: nn.Module, *, steps: int, seed: int = 0, gamma: float = 0.99, lr: float = 1e-3,
              batch_size: int = 64, buffer_capacity: int = 10_000, learning_starts: int = 500, train_every: int = 1,
              target_update: int = 250, epsilon_start: float = 1.0, epsilon_end: float = 0.05,
              epsilon_decay_steps: int | None = None) -> list[float]:
    """Deep Q-learning on ``gymnasium.make(env_id)`` for ``steps`` steps; returns the training
    episodes' returns. ``epsilon_decay_steps`` defaults to half of ``steps``."""
    if epsilon_decay_steps is None:
        epsilon_decay_steps = steps // 2

    env = gymnasium.make(env_id)
    torch.manual_seed(seed)
    obs, _ = env.reset(seed=seed)

    target_net = copy.deepcopy(q_net)
    target_net.eval()
    optimizer = torch.optim.Adam(q_net.parameters(), lr=lr)
    buffer = ReplayBuffer(buffer_capacity, env.observation_space.shape)

    q_net.train()
    episode_returns: list[float] = []
    episode_return = 0.0
    last_loss = float("nan")
    for step in range(steps):
        epsilon = epsilon_schedule(step, epsilon_start, epsilon_end, epsilon_decay_steps)
        with torch.no_grad():
            action = int(select_action(q_net(_as_batch(obs)), epsilon)[0])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.push(obs, action, reward, next_obs, terminated)
        episode_return += float(reward)
        obs = next_obs

        if terminated or truncated:
            episode_returns.append(episode_return)
            logger.info("step %d: episode %d return %.2f (epsilon %.3f, loss %.4f)", step + 1,
                        len(episode_returns), episode_return, epsilon, last_loss)
            episode_return = 0.0
            obs, _ = env.reset()

        if len(buffer) >= learning_starts and step % train_every == 0:
            loss = dqn_loss(q_net, target_net, buffer.sample(batch_size), gamma)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            last_loss = loss.item()

        if (step + 1) % target_update == 0:
            target_net.load_state_dict(q_net.state_dict())

    env.close()
    q_net.eval()
    logger.info("training done: %d episodes finished", len(episode_returns))
    return episode_returns


# %% [markdown]
# ## 6. Evaluation


# %%
def evaluate(env_id: str, q_net: nn.Module, episodes: int = 10, seed: int = 0, epsilon: float = 0.0) -> list[float]:
    """The returns of ``episodes`` episodes played with ``select_action(q_net(obs), epsilon)``;
    episode i starts from ``env.reset(seed=seed + i)``."""
    env = gymnasium.make(env_id)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action = int(select_action(q_net(_as_batch(obs)), epsilon)[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


# %% [markdown]
# ## 7. From notebook to script


# %%
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The script's command-line arguments (see the handout for names and defaults)."""
    parser = argparse.ArgumentParser(description="Deep Q-learning on the mouse game or CartPole.")
    parser.add_argument("--env", type=str, default="MouseGame-v0", help="gymnasium environment id")
    parser.add_argument("--network", type=str, choices=["cnn", "mlp"], default="cnn", help="Q-network type")
    parser.add_argument("--steps", type=int, default=6000, help="environment steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--lr", type=float, default=0.001, help="Adam learning rate")
    parser.add_argument("--gamma", type=float, default=0.9, help="discount factor")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size")
    parser.add_argument("--log-file", type=str, default="experiment.log", help="where to write the log")
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


# %% tags=["skip"]
if __name__ == "__main__":
    main()
