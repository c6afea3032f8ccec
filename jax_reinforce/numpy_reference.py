"""The seed program, corrected: REINFORCE on CartPole in plain NumPy.

This is the CPU baseline: a 4-8-2 ReLU/softmax policy trained by REINFORCE
with discounted reward-to-go on gymnasium's ``CartPole-v0`` (200 steps per
episode; solved when the mean return of 100 consecutive episodes is >= 195).
One environment is stepped from Python, one action at a time, as the seed
program did; the backward pass is vectorised over the whole batch of steps.
It imports NumPy and gymnasium only, never JAX.

The policy-gradient loss is the one of :func:`jax_reinforce.reinforce_loss`,

    L = -sum(m w log pi(a|s)) / D  -  c sum(m H(pi(.|s))) / D,   D = max(sum m, 1),

and :func:`reinforce_grad` is its exact gradient (checked against ``jax.grad``
and finite differences in ``tests/core/test_numpy_reference.py``). The optimiser
is a small Adam written here (:func:`adam_step`); :func:`sgd_step` is there
to compare. Adam makes the step size per parameter, so one learning rate works
for the tiny output layer and the larger hidden layer alike.

What was wrong with the seed program (derivations and demonstrations in
``docs/softmax-derivative.md``):

- ``softmax_grad`` flattened a batch of 10 two-action rows into one 20-vector,
  so ``diagflat`` built one (20, 20) Jacobian instead of ten (2, 2) ones; and
  a Jacobian is applied by a matrix-vector product (``g @ J``), not by an
  elementwise ``*``. Here the Jacobian never appears: for ``log pi(a|s)`` the
  gradient with respect to the logits is ``onehot(a) - s``.
- the batch ``softmax`` took the max and the sum over the batch axis
  (``axis=0``) and divided every column by the sum of column 0, so rows did
  not sum to 1; it also overwrote its input in place.
- ``reshape(20, 1)`` only fits an episode of exactly 10 steps.
- ``relu(l1, deriv=True)`` overwrote the activations ``l1`` with the 0/1 mask,
  so the weight update ``l1.T.dot(l2_delta)`` used the mask, not the
  activations.
- the update never used the rewards: ``y - l2`` pushes the policy towards the
  actions it happened to take (imitation of itself), not towards the ones that
  led to a long episode. REINFORCE weights each step by its reward-to-go.
- no learning rate (a step of size 1) and no biases.
- old gym API: ``env.seed``, ``env.reset()`` returning only the observation,
  ``env.step`` returning 4 values; ``env.unwrapped`` removed the 200-step time
  limit of CartPole-v0; ``y=_`` refers to an undefined name in a script.
- the "mean reward" printed was the mean over all episodes, not over the last
  100, so it could not tell when the task was solved.

Run ``python -m jax_reinforce.numpy_reference --help``. With the defaults
(Adam, learning rate 0.05, one step per 5 episodes, gamma 0.99), seeds 0-4
solved CartPole-v0 in 156 to 347 episodes (median 201), about 0.7 s of wall
time each on one CPU core.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

__all__ = [
    "softmax",
    "log_softmax",
    "init_params",
    "policy_logits",
    "policy_probs",
    "reward_to_go",
    "normalise",
    "reinforce_loss",
    "reinforce_grad",
    "sgd_step",
    "AdamState",
    "adam_init",
    "adam_step",
    "TrainResult",
    "train",
]


# --- softmax -------------------------------------------------------------------------


def _as_float(x) -> np.ndarray:
    """``x`` as an array, keeping a float dtype and promoting anything else to float64."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def softmax(logits, axis: int = -1) -> np.ndarray:
    """``s = exp(z - max z) / sum(exp(z - max z))`` along ``axis`` (each row on its own).

    Derivative: ``ds_i/dz_j = s_i (delta_ij - s_j)``; backpropagation only needs
    the vector-Jacobian product ``dL/dz = s * (dL/ds - <dL/ds, s>)``.

    Args:
      logits: ``(..., A)``; not modified.
      axis: the axis of the ``A`` categories.

    Returns:
      ``(..., A)`` probabilities, summing to 1 along ``axis``.
    """
    z = _as_float(logits)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """``log s = (z - m) - log sum exp(z - m)``, ``m = max z``: finite where ``s`` underflows.

    Derivative: ``d log s_a / dz_j = delta_aj - s_j``.

    Args:
      logits: ``(..., A)``; not modified.
      axis: the axis of the ``A`` categories.

    Returns:
      ``(..., A)`` log-probabilities.
    """
    z = _as_float(logits)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# --- the policy ----------------------------------------------------------------------


def init_params(rng, obs_dim: int = 4, hidden: Sequence[int] = (8,), n_actions: int = 2,
                output_scale: float = 0.01):
    """Random float64 policy parameters, as :func:`jax_reinforce.init_policy` makes them.

    Hidden layers ``w ~ N(0, 2 / fan_in)`` (He), output layer scaled further by
    ``output_scale`` so the first policy is nearly uniform; biases 0.

    Args:
      rng: a ``np.random.Generator`` or an int seed.
      obs_dim: observation size (4 for CartPole).
      hidden: hidden layer widths; ``()`` gives a linear policy.
      n_actions: number of actions ``A``.
      output_scale: extra scale of the output layer.

    Returns:
      ``[{"w": (fan_in, fan_out), "b": (fan_out,)}, ...]`` from input to output.
    """
    rng = np.random.default_rng(rng)
    sizes = (int(obs_dim), *(int(h) for h in hidden), int(n_actions))
    if any(s < 1 for s in sizes):
        raise ValueError(f"every layer size must be >= 1; got {sizes}")
    params = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        scale = np.sqrt(2.0 / fan_in) * (output_scale if i == len(sizes) - 2 else 1.0)
        params.append({"w": rng.standard_normal((fan_in, fan_out)) * scale,
                       "b": np.zeros(fan_out)})
    return params


def _forward(params, obs):
    """Each layer's input ``h_{l-1}`` and pre-activation ``u_l``; ``u_L`` are the logits."""
    h = np.asarray(obs, dtype=params[0]["w"].dtype)
    inputs, pre_activations = [], []
    for i, layer in enumerate(params):
        inputs.append(h)
        u = h @ layer["w"] + layer["b"]
        pre_activations.append(u)
        if i < len(params) - 1:
            h = np.maximum(u, 0.0)
    return inputs, pre_activations


def policy_logits(params, obs) -> np.ndarray:
    """Logits ``z = W_L relu(... relu(obs W_1 + b_1) ...) + b_L``: ``(..., obs_dim) -> (..., A)``."""
    return _forward(params, obs)[1][-1]


def policy_probs(params, obs) -> np.ndarray:
    """``pi(. | obs) = softmax(policy_logits(params, obs))``: ``(..., obs_dim) -> (..., A)``."""
    return softmax(policy_logits(params, obs))


# --- returns -------------------------------------------------------------------------


def reward_to_go(rewards, gamma: float) -> np.ndarray:
    """Discounted reward-to-go of one episode: ``G_t = r_t + gamma G_{t+1}``, ``G_T = 0``.

    Args:
      rewards: ``(T,)`` rewards of one episode, in order.
      gamma: discount in ``[0, 1]``.

    Returns:
      ``(T,)`` float64, ``G_t = sum_{k >= t} gamma^(k-t) r_k``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    returns = np.empty_like(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def normalise(x, eps: float = 1e-8) -> np.ndarray:
    """``(x - mean x) / (std x + eps)``: a baseline and a scale for the policy gradient."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / (x.std() + eps)


# --- loss and gradient ---------------------------------------------------------------


def _flatten_batch(params, obs, actions, weights, mask):
    obs = np.asarray(obs, dtype=params[0]["w"].dtype)
    batch = obs.shape[:-1]
    actions = np.asarray(actions)
    weights = np.asarray(weights, dtype=obs.dtype)
    mask = np.ones(batch, obs.dtype) if mask is None else np.asarray(mask, dtype=obs.dtype)
    for name, x in (("actions", actions), ("weights", weights), ("mask", mask)):
        if x.shape != batch:
            raise ValueError(f"{name} must have the batch shape of obs (obs is (..., obs_dim)); "
                             f"got obs {obs.shape} and {name} {x.shape}")
    return (obs.reshape(-1, obs.shape[-1]), actions.reshape(-1).astype(np.intp),
            weights.reshape(-1), mask.reshape(-1))


def reinforce_loss(params, obs, actions, weights, mask=None, entropy_coef: float = 0.0) -> float:
    """``L = -sum(m w log pi(a|s)) / D - c sum(m H) / D``, ``D = max(sum m, 1)``.

    The NumPy twin of :func:`jax_reinforce.reinforce_loss`.

    Args:
      params: policy parameters.
      obs: ``(..., obs_dim)``.
      actions: ``(...)`` integer actions.
      weights: ``(...)`` per-step weights (reward-to-go, maybe normalised).
      mask: ``(...)`` 1 for real steps, 0 for padding; ``None`` for all ones.
      entropy_coef: ``c``.

    Returns:
      The scalar loss.
    """
    obs, actions, weights, mask = _flatten_batch(params, obs, actions, weights, mask)
    log_p = log_softmax(policy_logits(params, obs))
    denom = max(mask.sum(), 1.0)
    log_pi_a = log_p[np.arange(len(actions)), actions]
    entropy = -np.sum(np.exp(log_p) * log_p, axis=-1)
    return float(-np.sum(mask * weights * log_pi_a) / denom
                 - entropy_coef * np.sum(mask * entropy) / denom)


def reinforce_grad(params, obs, actions, weights, mask=None, entropy_coef: float = 0.0):
    """``dL/dparams`` of :func:`reinforce_loss`, by hand, vectorised over the batch.

    With ``u_l = h_{l-1} W_l + b_l``, ``h_l = relu(u_l)``, logits ``z = u_L``
    and ``s = softmax(z)``, for every sample (rows of ``N = prod(batch)``):

    - ``dL/dz = -(m w / D) (onehot(a) - s) + c (m / D) s (log s + H)``;
      ``onehot(a) - s`` is ``d log s_a / dz``, so no ``(A, A)`` Jacobian;
    - ``dL/dW_l = h_{l-1}^T dL/du_l`` (``(fan_in, N) @ (N, fan_out)`` sums
      the samples' outer products), ``dL/db_l = sum_n dL/du_l``;
    - ``dL/du_{l-1} = (dL/du_l W_l^T) * [u_{l-1} > 0]``: the ReLU mask
      multiplies the gradient; the activations are left untouched.

    Args: as :func:`reinforce_loss`.

    Returns:
      Gradients with the structure of ``params``.
    """
    obs, actions, weights, mask = _flatten_batch(params, obs, actions, weights, mask)
    inputs, pre_activations = _forward(params, obs)
    logits = pre_activations[-1]
    denom = max(mask.sum(), 1.0)

    log_s = log_softmax(logits)
    s = np.exp(log_s)
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[actions]
    grad_u = -(mask * weights / denom)[:, None] * (onehot - s)
    if entropy_coef != 0:
        entropy = -np.sum(s * log_s, axis=-1, keepdims=True)
        grad_u = grad_u + (entropy_coef * mask / denom)[:, None] * s * (log_s + entropy)

    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        grads[i] = {"w": inputs[i].T @ grad_u, "b": grad_u.sum(axis=0)}
        if i > 0:
            grad_u = (grad_u @ params[i]["w"].T) * (pre_activations[i - 1] > 0)
    return grads


# --- optimisers ----------------------------------------------------------------------


def _tree_map(fn: Callable, *trees):
    return [{k: fn(*(t[i][k] for t in trees)) for k in trees[0][i]} for i in range(len(trees[0]))]


def sgd_step(params, grads, lr: float):
    """Plain gradient descent: ``theta <- theta - lr * g``. Returns new params."""
    return _tree_map(lambda p, g: p - lr * g, params, grads)


@dataclass(frozen=True)
class AdamState:
    """Adam's step count and moment estimates (pytrees shaped like params)."""

    count: int
    mu: list
    nu: list


def adam_init(params) -> AdamState:
    """Zero moments for :func:`adam_step`."""
    return AdamState(0, _tree_map(np.zeros_like, params), _tree_map(np.zeros_like, params))


def adam_step(params, grads, state: AdamState, lr: float, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-8):
    """One Adam step (Kingma & Ba, 2015), as ``optax.adam``.

    ``mu <- b1 mu + (1 - b1) g``, ``nu <- b2 nu + (1 - b2) g^2``,
    ``theta <- theta - lr * mu_hat / (sqrt(nu_hat) + eps)`` with the bias
    corrections ``mu_hat = mu / (1 - b1^t)``, ``nu_hat = nu / (1 - b2^t)``.

    Returns:
      ``(new_params, new_state)``; the inputs are not modified.
    """
    count = state.count + 1
    mu = _tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
    nu = _tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
    c1, c2 = 1 - b1**count, 1 - b2**count
    new_params = _tree_map(lambda p, m, v: p - lr * (m / c1) / (np.sqrt(v / c2) + eps),
                           params, mu, nu)
    return new_params, AdamState(count, mu, nu)


# --- training ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      solved: whether the mean return of ``solve_window`` consecutive episodes
        reached ``solve_threshold``.
      episodes_to_solve: the number of episodes played when that first
        happened (the last episode of the window), or ``None``.
      episodes: episodes played in all.
      env_steps: environment steps taken in all.
      seconds: wall-clock seconds of training (environment creation excluded).
      returns: the return of every episode, in order.
      params: the final policy parameters.
    """

    solved: bool
    episodes_to_solve: int | None
    episodes: int
    env_steps: int
    seconds: float
    returns: list
    params: list


def _make_env(env_id: str):
    with warnings.catch_warnings():
        # CartPole-v0 is deprecated in favour of v1 (500 steps); v0 is the seed's task.
        warnings.simplefilter("ignore", DeprecationWarning)
        return gym.make(env_id)


def _sample_action(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF sampling: the first ``a`` with ``u < cumsum(probs)[a]``."""
    return min(int(np.searchsorted(np.cumsum(probs), u, side="right")), len(probs) - 1)


def train(seed: int = 0, max_episodes: int = 2000, lr: float = 0.05, gamma: float = 0.99,
          episodes_per_update: int = 5, hidden: Sequence[int] = (8,), optimizer: str = "adam",
          solve_threshold: float = 195.0, solve_window: int = 100, print_every: int = 100,
          quiet: bool = False, env_id: str = "CartPole-v0") -> TrainResult:
    """Trains a softmax policy on CartPole by REINFORCE until solved.

    Every ``episodes_per_update`` episodes, the steps of those episodes are
    weighted by their discounted reward-to-go, normalised over the batch
    (``(G - mean G) / std G``: a baseline that lowers the variance), and the
    policy takes one optimiser step on :func:`reinforce_grad`. Training stops
    as soon as the last ``solve_window`` returns average ``>= solve_threshold``.
    An episode cut at the time limit (200 steps) is treated as ended there: the
    return is not bootstrapped, as in the seed program.

    Args:
      seed: seeds the initial parameters, the action sampling and the environment.
      max_episodes: give up after this many episodes.
      lr: learning rate.
      gamma: discount of the reward-to-go.
      episodes_per_update: episodes per gradient step.
      hidden: hidden layer widths (``(8,)``: the 4-8-2 network).
      optimizer: ``"adam"`` or ``"sgd"``.
      solve_threshold: mean return that counts as solved (195 for CartPole-v0).
      solve_window: consecutive episodes averaged (100).
      print_every: print progress every this many episodes (unless ``quiet``).
      quiet: print nothing.
      env_id: a gymnasium environment with a discrete action space.

    Returns:
      A :class:`TrainResult`.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}")
    env = _make_env(env_id)
    rng = np.random.default_rng(seed)
    params = init_params(rng, env.observation_space.shape[0], hidden, env.action_space.n)
    opt_state = adam_init(params)

    start = time.perf_counter()
    returns, env_steps, solved_at = [], 0, None
    batch_obs, batch_actions, batch_weights = [], [], []
    obs, _ = env.reset(seed=seed)
    for episode in range(1, max_episodes + 1):
        ep_obs, ep_actions, ep_rewards = [], [], []
        done = False
        while not done:
            action = _sample_action(policy_probs(params, obs), rng.random())
            next_obs, reward, terminated, truncated, _ = env.step(action)
            ep_obs.append(obs)
            ep_actions.append(action)
            ep_rewards.append(reward)
            obs = next_obs
            done = terminated or truncated
        obs, _ = env.reset()
        env_steps += len(ep_rewards)
        returns.append(float(sum(ep_rewards)))
        batch_obs += ep_obs
        batch_actions += ep_actions
        batch_weights.append(reward_to_go(ep_rewards, gamma))

        if episode % episodes_per_update == 0:
            weights = normalise(np.concatenate(batch_weights))
            grads = reinforce_grad(params, np.array(batch_obs), np.array(batch_actions), weights)
            if optimizer == "adam":
                params, opt_state = adam_step(params, grads, opt_state, lr)
            else:
                params = sgd_step(params, grads, lr)
            batch_obs, batch_actions, batch_weights = [], [], []

        recent = float(np.mean(returns[-solve_window:]))
        if not quiet and (episode % print_every == 0):
            print(f"episode {episode:5d}  return {returns[-1]:6.1f}  "
                  f"mean of last {min(episode, solve_window)} {recent:6.1f}  "
                  f"{time.perf_counter() - start:6.1f} s", flush=True)
        if len(returns) >= solve_window and recent >= solve_threshold:
            solved_at = episode
            break
    seconds = time.perf_counter() - start
    env.close()
    return TrainResult(solved=solved_at is not None, episodes_to_solve=solved_at,
                       episodes=len(returns), env_steps=env_steps, seconds=seconds,
                       returns=returns, params=params)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="REINFORCE on CartPole-v0 in plain NumPy (the seed program, corrected).")
    parser.add_argument("--seed", type=int, nargs="+", default=[0],
                        help="one or more seeds; with several, each is trained and the medians printed")
    parser.add_argument("--max-episodes", type=int, default=2000, help="give up after this many")
    parser.add_argument("--lr", type=float, default=0.05,
                        help="learning rate (0.05 suits Adam; plain SGD needs about 1)")
    parser.add_argument("--gamma", type=float, default=0.99, help="discount of the reward-to-go")
    parser.add_argument("--episodes-per-update", type=int, default=5, help="episodes per gradient step")
    parser.add_argument("--hidden", type=int, nargs="*", default=[8], help="hidden layer widths")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--print-every", type=int, default=100, help="progress every N episodes")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)

    results = []
    for seed in args.seed:
        result = train(seed, max_episodes=args.max_episodes, lr=args.lr, gamma=args.gamma,
                       episodes_per_update=args.episodes_per_update, hidden=tuple(args.hidden),
                       optimizer=args.optimizer, print_every=args.print_every, quiet=args.quiet)
        status = (f"solved in {result.episodes_to_solve} episodes" if result.solved
                  else f"not solved in {result.episodes} episodes")
        print(f"seed {seed}: {status}, {result.env_steps} steps, {result.seconds:.2f} s", flush=True)
        results.append(result)
    if len(results) > 1:
        solved = [r for r in results if r.solved]
        print(f"{len(solved)}/{len(results)} solved", end="")
        if solved:
            print(f"; median {np.median([r.episodes_to_solve for r in solved]):.0f} episodes, "
                  f"median {np.median([r.seconds for r in solved]):.2f} s", end="")
        print()
    return 0 if all(r.solved for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
