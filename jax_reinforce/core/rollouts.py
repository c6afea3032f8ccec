"""Rollouts: one complete episode in each of many environments, in one jit.

Every environment starts from its own reset and runs one episode under the
current policy. There is no auto-reset: REINFORCE learns from complete
episodes, so the loop (a ``jax.lax.while_loop``, vmapped over environments by
construction) stops as soon as every episode has ended, or when the window of
``num_steps`` steps is full. The window defaults to the environment's own
episode limit, so no episode is ever cut; with a shorter window, an episode
still running at the end is marked incomplete (``finished = False``) and the
trainer gives its steps no weight.

Steps after an environment's episode ended are not stepped into the buffers:
their rows stay zero and :attr:`Trajectory.alive` is False there, so they are
never learned from and never counted as environment steps.

The actions' random numbers are drawn in blocks of :data:`UNIFORM_BLOCK`
steps (one uniform per step and environment, or one standard normal per
action dimension), each block from its own key, an inner loop running the
block's steps: a fresh agent's short episodes do not pay for the whole
window's draws, and a long episode does not pay for a draw per step
(docs/performance.md). Every key of a rollout (each environment's reset, the
steps', each block's) comes from ONE split of its key: every ``jax.random``
call is a Threefry computation that XLA compiles on its own, so fewer calls
compile faster.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax_reinforce.core.batching import batch_any
from jax_reinforce.core.envs import encode_obs, store_obs
from jax_reinforce.core.network import check_obs, check_params, is_int
from jax_reinforce.core.policies import policy_apply
from jax_reinforce.core.policy import actions_from_uniform

__all__ = ["Trajectory", "rollout", "GreedyEpisodes", "greedy_episodes"]

# Steps whose action uniforms are drawn at once.
UNIFORM_BLOCK = 32
# The step counter and episode lengths are int32.
INT32_MAX = 2**31 - 1


class Trajectory(NamedTuple):
    """A batch of single-episode trajectories, time-major.

    Attributes:
      obs: ``(T, N, obs_dim)`` observation before each step (0 after the end),
        as :func:`jax_reinforce.core.envs.store_obs` stores it: the policy's float
        dtype, ``uint8`` for 0/1 observations, or ``(T, N)`` int32 indices
        for a one-hot environment; :func:`jax_reinforce.core.envs.encode_obs`
        makes it the network's input.
      actions: ``(T, N)`` int32 actions, or ``(T, N, A)`` unclipped Gaussian
        actions for Box action spaces (0 after the end).
      rewards: ``(T, N)`` rewards (0 after the end).
      length: ``(N,)`` int32 number of real steps of each episode.
      finished: ``(N,)`` bool, the episode ended (terminated or reached the
        environment's time limit) within the window.
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    length: jax.Array
    finished: jax.Array

    @property
    def alive(self):
        """``(T, N)`` bool: step ``t`` is a real step of the episode."""
        steps = jnp.arange(self.rewards.shape[0])[:, None]
        return steps < self.length[None, :]

    @property
    def episode_end(self):
        """``(T, N)`` bool: step ``t`` ended its episode (never a window cut)."""
        steps = jnp.arange(self.rewards.shape[0])[:, None]
        return (steps == self.length[None, :] - 1) & self.finished[None, :]


# Axes up to this size are summed by unrolled adds when acting (see _acting_logits).
UNROLL_MAX = 32


def _unrolled(reduce, x):
    """``reduce`` (``jnp.add`` or ``jnp.maximum``) over the last axis, as a chain of elementwise ops.

    XLA's CPU backend hands reductions and dot products to its YNNPACK
    library unless told not to (:func:`jax_reinforce.harness.compilation.cpu_compiler_options`);
    for axes of a few elements inside the rollout's step, that made a step
    twice as slow. Elementwise ops fuse with the environment step instead,
    under any compiler options. Longer axes use the reduction itself.
    """
    size = x.shape[-1]
    if size > UNROLL_MAX:
        return (jnp.sum if reduce is jnp.add else jnp.max)(x, axis=-1)
    out = x[..., 0]
    for i in range(1, size):
        out = reduce(out, x[..., i])
    return out


def _acting_logits(params, obs):
    """:func:`jax_reinforce.policy_logits` for acting, in elementwise ops.

    The same function as ``policy_logits`` up to float rounding (sums in
    another order): each layer's product is a sum over its fan-in of
    ``h_i * w_i``, unrolled (:func:`_unrolled`). For these skinny layers
    ((N, 4) x (4, 8)) XLA's CPU dot costs more than the elementwise form,
    which fuses with the environment step. The learning pass recomputes the
    logits with ``policy_logits``, so rounding here can only change which
    action a uniform maps to when it falls within rounding of a boundary.
    """
    check_obs(params, obs)
    h = jnp.asarray(obs, dtype=params[0]["w"].dtype)
    for i, layer in enumerate(params):
        w = layer["w"]
        if w.shape[0] > UNROLL_MAX:
            h = h @ w + layer["b"]
        else:  # sum_k h_k w_k, one (..., fan_out) term per input unit
            out = h[..., 0, None] * w[0]
            for k in range(1, w.shape[0]):
                out = out + h[..., k, None] * w[k]
            h = out + layer["b"]
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return h


def _acting_actions(logits, uniform):
    """:func:`jax_reinforce.actions_from_uniform` in elementwise ops (for a few actions).

    The same inverse-CDF rule, ``a = #{k < A-1 : F(k) <= u}`` with ``F`` the
    running sum of ``softmax(logits)``; the softmax's max and sum and the CDF
    are chains of elementwise ops (:func:`_unrolled`).
    """
    num_actions = logits.shape[-1]
    if num_actions > UNROLL_MAX:
        return actions_from_uniform(logits, uniform)
    e = jnp.exp(logits - _unrolled(jnp.maximum, logits)[..., None])
    total = _unrolled(jnp.add, e)
    cdf = e[..., 0] / total
    below = (cdf <= uniform).astype(jnp.int32)
    for k in range(1, num_actions - 1):
        cdf = cdf + e[..., k] / total
        below = below + (cdf <= uniform).astype(jnp.int32)
    return below


def _scalar_bool(flag) -> bool:
    """A Python or NumPy bool, or a 0-d bool array (traced or not)."""
    if isinstance(flag, (bool, np.bool_)):
        return True
    return hasattr(flag, "dtype") and hasattr(flag, "shape") and flag.shape == () and flag.dtype == np.bool_


def _check_rollout_args(params, env_spec, num_envs, num_steps, active, greedy, policy=None) -> None:
    """Raises ``ValueError`` for arguments :func:`rollout` cannot run as asked (see its Raises)."""
    name = getattr(env_spec, "name", "the environment")
    if policy is None:  # the MLP's layer list; another network's params are its own business
        check_params(params, env_spec.obs_dim, env_spec.n_actions, name)
    if not (is_int(num_envs) and 1 <= num_envs <= INT32_MAX):
        raise ValueError(f"num_envs must be an integer in [1, {INT32_MAX}]; got {num_envs!r}")
    if num_steps is not None and not (is_int(num_steps) and 1 <= num_steps <= INT32_MAX):
        raise ValueError(
            f"num_steps must be None (the episode limit, {env_spec.max_steps} steps of {name}) "
            f"or an integer in [1, {INT32_MAX}]; got {num_steps!r}"
        )
    for arg, flag in (("active", active), ("greedy", greedy)):
        if not _scalar_bool(flag):
            got = f"shape {np.shape(flag)} dtype {flag.dtype}" if hasattr(flag, "dtype") else repr(flag)
            raise ValueError(f"{arg} must be a scalar bool (a Python bool or a traced bool); got {got}")
    if policy is not None:
        log_std = params.get("log_std") if env_spec.continuous and isinstance(params, dict) else None
    else:
        log_std = params[-1].get("log_std") if hasattr(params[-1], "get") else None
    log_std_shape = None if log_std is None else tuple(jnp.shape(log_std))
    if env_spec.continuous and not _always(greedy) and log_std_shape != (env_spec.n_actions,):
        raise ValueError(
            f"{name} has continuous actions: the policy's last layer must hold 'log_std' of shape "
            f"({env_spec.n_actions},) (jax_reinforce.init_gaussian_policy's); got {log_std_shape}")


def _always(flag) -> bool:
    """``flag`` is a static (not traced) True."""
    return isinstance(flag, (bool, np.bool_)) and bool(flag)


def _acting_argmax(logits):
    """``jnp.argmax(logits, axis=-1)`` (the first of equal maxima) in elementwise ops, for a few actions."""
    if logits.shape[-1] > UNROLL_MAX:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    best, index = logits[..., 0], jnp.zeros(logits.shape[:-1], jnp.int32)
    for k in range(1, logits.shape[-1]):
        higher = logits[..., k] > best
        best, index = jnp.where(higher, logits[..., k], best), jnp.where(higher, k, index)
    return index


class _Episodes(NamedTuple):
    """What :func:`rollout` and :func:`greedy_episodes` share: the environments reset, and how to step them."""

    obs: jax.Array
    state: object
    horizon: int
    num_envs: int  # this shard's
    block_keys: jax.Array
    keep_going: object  # carry -> bool: a step is left in the window and some episode is running
    act: object  # (obs, noise) -> (stored obs, action)
    transition: object  # (t, state, action) -> (next obs, next state, reward, ended)
    draw: object  # block key -> the block's (UNIFORM_BLOCK, N, ...) random numbers


def _episodes(params, key, env_spec, num_envs, num_steps, axis_name, env_axis_name, greedy, policy=None) -> _Episodes:
    """The environments reset from ``key``'s split and the step functions of :func:`rollout` (same arguments)."""
    env, env_params = env_spec.env, env_spec.params
    horizon = int(num_steps or env_spec.max_steps)
    total_envs, first = num_envs, 0
    # Every key of the rollout from one split: the environments' resets, the steps', each block's.
    num_blocks = -(-horizon // UNIFORM_BLOCK)
    keys = jax.random.split(key, total_envs + 1 + num_blocks)
    reset_keys, step_key, block_keys = keys[:total_envs], keys[total_envs], keys[total_envs + 1:]
    if env_axis_name is not None:
        shards = jax.lax.axis_size(env_axis_name)
        if num_envs % shards:
            raise ValueError(f"num_envs {num_envs} must be divisible by the {shards} shards of axis {env_axis_name!r}")
        num_envs = num_envs // shards
        first = jax.lax.axis_index(env_axis_name) * num_envs

    def local(x, axis=0):
        return x if env_axis_name is None else jax.lax.dynamic_slice_in_dim(x, first, num_envs, axis)

    obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(
        local(reset_keys), env_params
    )
    step_env = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    is_truncated = jax.vmap(env.is_truncated, in_axes=(0, None))
    float_dtype = jax.tree.leaves(params)[0].dtype
    continuous = env_spec.continuous
    if continuous:
        low = jnp.asarray(env_spec.action_low, jnp.float32)
        high = jnp.asarray(env_spec.action_high, jnp.float32)
        if _always(greedy):  # the mean is the action: no log_std needed
            std = None
        else:
            std = jnp.exp(params[-1]["log_std"] if policy is None else params["log_std"])
    else:
        low = high = std = None

    def keep_going(carry):
        t, alive = carry[0], carry[3]
        any_alive = jnp.any(alive)
        axes = tuple(a for a in (axis_name, env_axis_name) if a is not None)
        if axes:
            any_alive = jax.lax.pmax(any_alive.astype(jnp.int32), axes) > 0
        return (t < horizon) & batch_any(any_alive)

    def act(obs, noise):
        stored = store_obs(env_spec, obs, float_dtype)
        encoded = encode_obs(env_spec, stored, float_dtype)
        out = _acting_logits(params, encoded) if policy is None else policy_apply(policy, params, encoded, env_spec)
        best = out if continuous else _acting_argmax(out)  # the most likely action, or a Gaussian's mean
        if _always(greedy):
            return stored, best
        # a = mu + sigma eps (learned from unclipped), or the uniform's action
        sampled = out + std * noise if continuous else _acting_actions(out, noise)
        static_false = isinstance(greedy, (bool, np.bool_))
        return stored, (sampled if static_false else jnp.where(greedy, best, sampled))

    def transition(t, state, action):
        # Environments that draw randomness in step_env get a key per step;
        # CartPole ignores it and XLA removes the unused computation.
        keys = local(jax.random.split(jax.random.fold_in(step_key, t), total_envs))
        sent = jnp.clip(action.astype(jnp.float32), low, high) if continuous else action
        next_obs, next_state, reward, terminated, _ = step_env(keys, state, sent, env_params)
        return next_obs, next_state, reward, terminated | is_truncated(next_state, env_params)

    def draw(block_key):
        """One block's random numbers: a uniform per step and environment, or a standard normal per action."""
        if continuous:
            noise = jax.random.normal(block_key, (UNIFORM_BLOCK, total_envs, env_spec.n_actions), float_dtype)
        else:
            noise = jax.random.uniform(block_key, (UNIFORM_BLOCK, total_envs), dtype=jnp.float32)
        return local(noise, axis=1)

    return _Episodes(obs, state, horizon, num_envs, block_keys, keep_going, act, transition, draw)


def rollout(
    params,
    key,
    env_spec,
    num_envs: int,
    num_steps: int | None = None,
    active=True,
    axis_name: str | None = None,
    greedy: bool = False,
    env_axis_name: str | None = None,
    policy=None,
) -> Trajectory:
    """Runs one episode in each of ``num_envs`` environments.

    Args:
      params: policy parameters.
      key: a ``jax.random`` key.
      env_spec: an :class:`jax_reinforce.core.envs.EnvSpec`.
      num_envs: ``N``, the number of environments (static).
      num_steps: ``T``, the window; ``None`` for the episode limit (static).
      active: a bool (may be traced); ``False`` runs no step at all (every
        episode has length 0), for an agent that has stopped training.
      axis_name: when this function is vmapped over agents with
        ``jax.vmap(..., axis_name=axis_name)``, name that axis here: the loop
        then stops when every agent's episodes have ended, decided once for
        the whole batch (``lax.pmax``). Without it, vmap must carry a
        per-agent stop flag and select between old and new buffers at every
        step, which costs a copy of every buffer per step.
      greedy: a bool (may be traced): play the most likely action (a
        Gaussian's mean) instead of sampling. Traced, one program plays
        both kinds of episode (the trainer's greedy confirmation); its
        random numbers are drawn either way, so a sampled episode is the
        same whatever the flag's other value.
      policy: a :class:`jax_reinforce.Policy` whose ``params`` these are; ``None`` for the MLP's layer list.

    Returns:
      A :class:`Trajectory` with buffers of ``T`` rows.

    Raises:
      ValueError: (when traced, from static shapes: nothing is checked at run
        time) ``params`` whose first layer does not take the environment's
        observation size or whose last layer does not give its action count;
        ``num_envs`` not an integer in ``[1, 2**31 - 1]``; ``num_steps``
        neither ``None`` nor such an integer (``0`` is refused, not read as
        the episode limit); ``active`` or ``greedy`` not a scalar bool.
    """
    _check_rollout_args(params, env_spec, num_envs, num_steps, active, greedy, policy)
    run = _episodes(params, key, env_spec, num_envs, num_steps, axis_name, env_axis_name, greedy, policy)
    horizon, num_envs = run.horizon, run.num_envs
    float_dtype = jax.tree.leaves(params)[0].dtype
    stored = store_obs(env_spec, run.obs, float_dtype)
    action_shape = (env_spec.n_actions,) if env_spec.continuous else ()

    buffers = (
        jnp.zeros((horizon, *stored.shape), stored.dtype),
        jnp.zeros((horizon, num_envs, *action_shape), float_dtype if env_spec.continuous else jnp.int32),
        jnp.zeros((horizon, num_envs), jnp.float32),
    )
    alive = jnp.full((num_envs,), active, bool)
    length = jnp.zeros((num_envs,), jnp.int32)
    finished = jnp.zeros((num_envs,), bool)

    def rows(mask, x):
        """``mask`` ``(N,)`` broadcast against ``x`` ``(N, ...)``."""
        return mask.reshape(mask.shape + (1,) * (x.ndim - 1))

    def step(carry, noise, block_start):
        t, obs, state, alive, length, finished, (obs_buf, act_buf, rew_buf) = carry
        stored, action = run.act(obs, None if noise is None else noise[t - block_start])
        next_obs, next_state, reward, ended = run.transition(t, state, action)
        live = alive.astype(jnp.float32)
        obs_buf = obs_buf.at[t].set(jnp.where(rows(alive, stored), stored, 0))
        act_buf = act_buf.at[t].set(jnp.where(rows(alive, action), action, 0))
        rew_buf = rew_buf.at[t].set(reward.astype(jnp.float32) * live)
        length = length + alive.astype(jnp.int32)
        finished = finished | (alive & ended)
        alive = alive & ~ended
        return t + 1, next_obs, next_state, alive, length, finished, (obs_buf, act_buf, rew_buf)

    def run_block(carry):
        """Up to UNIFORM_BLOCK steps, with that many rows of random numbers drawn at once.

        One uniform per step and environment for discrete actions, one
        standard normal per action dimension for Box actions.
        """
        block_start = carry[0]
        noise = None if _always(greedy) else run.draw(run.block_keys[block_start // UNIFORM_BLOCK])
        in_block = lambda c: run.keep_going(c) & (c[0] < block_start + UNIFORM_BLOCK)  # noqa: E731
        return jax.lax.while_loop(in_block, lambda c: step(c, noise, block_start), carry)

    carry = (jnp.int32(0), run.obs, run.state, alive, length, finished, buffers)
    _, _, _, _, length, finished, (obs_buf, act_buf, rew_buf) = jax.lax.while_loop(run.keep_going, run_block, carry)
    return Trajectory(obs_buf, act_buf, rew_buf, length, finished)


class GreedyEpisodes(NamedTuple):
    """The greedy policy's episodes, one per environment (:func:`greedy_episodes`).

    Attributes:
      returns: ``(N,)`` float32, each episode's sum of rewards.
      length: ``(N,)`` int32, its number of steps.
      finished: ``(N,)`` bool, it ended (terminated or reached the time limit).
    """

    returns: jax.Array
    length: jax.Array
    finished: jax.Array


def greedy_episodes(params, key, env_spec, num_envs: int, active=True, axis_name: str | None = None,
                    env_axis_name: str | None = None, policy=None) -> GreedyEpisodes:
    """The greedy policy's episodes as ``rollout(..., greedy=True)`` plays them, without their observations.

    The same keys, actions and rewards as :func:`rollout` with
    ``greedy=True`` and the episode limit as window, and ``returns`` equal
    to ``rollout(...).rewards.sum(axis=0)`` bit for bit (the rewards are
    kept, ``(T, N)`` float32, and summed the same way), but no observation
    or action is stored and the loop is one ``while_loop`` without random
    blocks: memory does not grow with the observation size, and the
    program is smaller (the gymnax evaluation uses it; training confirms
    a solve with its own rollout, the flag traced). Arguments as for :func:`rollout`.
    """
    _check_rollout_args(params, env_spec, num_envs, None, active, True, policy)
    run = _episodes(params, key, env_spec, num_envs, None, axis_name, env_axis_name, True, policy)
    alive = jnp.full((run.num_envs,), active, bool)

    def step(carry):
        t, obs, state, alive, length, finished, rewards = carry
        _, action = run.act(obs, None)
        next_obs, next_state, reward, ended = run.transition(t, state, action)
        rewards = rewards.at[t].set(reward.astype(jnp.float32) * alive.astype(jnp.float32))
        length = length + alive.astype(jnp.int32)
        finished = finished | (alive & ended)
        return t + 1, next_obs, next_state, alive & ~ended, length, finished, rewards

    carry = (jnp.int32(0), run.obs, run.state, alive, jnp.zeros((run.num_envs,), jnp.int32),
             jnp.zeros((run.num_envs,), bool), jnp.zeros((run.horizon, run.num_envs), jnp.float32))
    _, _, _, _, length, finished, rewards = jax.lax.while_loop(run.keep_going, step, carry)
    return GreedyEpisodes(rewards.sum(axis=0), length, finished)
