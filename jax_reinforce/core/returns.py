"""Discounted reward-to-go over time-major trajectories, respecting episode ends.

Arrays are time-major, ``(T, ...)``: ``rewards[t]`` is the reward of the step
taken at time ``t`` and ``episode_end[t]`` is 1 when that step ended its
episode (terminated, or truncated by the environment's own time limit). A
step of an episode still running when the rollout window closes has no known
return: :func:`complete_episode_mask` marks it 0 so it is never learned from,
and it is never treated as a terminal step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_reinforce.core.config import BASELINES

__all__ = ["reward_to_go", "reward_to_go_rows", "complete_episode_mask", "apply_baseline", "BASELINES"]


def reward_to_go(rewards, episode_end, gamma):
    """``G_t = r_t + gamma * G_{t+1} * (1 - episode_end_t)``, computed backwards.

    Within one episode this is ``G_t = sum_{k >= t} gamma^(k-t) r_k``; the
    ``(1 - episode_end_t)`` factor stops the sum at the episode's last step,
    so the next episode's rewards never leak into this one's return. At the
    end of the window the sum simply stops (``G_{T} = 0``): use
    :func:`complete_episode_mask` to drop the steps whose episode was cut.

    Args:
      rewards: ``(T, ...)`` floats.
      episode_end: ``(T, ...)`` bools or 0/1.
      gamma: discount in ``[0, 1]`` (a scalar, may be traced).

    Returns:
      ``(T, ...)`` discounted reward-to-go, the dtype of ``rewards``.
    """
    rewards = jnp.asarray(rewards)
    continues = 1.0 - jnp.asarray(episode_end, rewards.dtype)
    gamma = jnp.asarray(gamma, rewards.dtype)

    def backward(g_next, step):
        r, c = step
        g = r + gamma * c * g_next
        return g, g

    _, g = jax.lax.scan(backward, jnp.zeros_like(rewards[0]), (rewards, continues), reverse=True)
    return g


def reward_to_go_rows(rewards, episode_end, gamma, rows):
    """:func:`reward_to_go` computed over the first ``rows`` rows only; the rest are 0.

    The same recursion, ``G_t = r_t + gamma (1 - episode_end_t) G_{t+1}``,
    run backwards from row ``rows - 1`` with ``G_rows = 0``: when every
    reward at ``t >= rows`` is 0 (the rows a rollout did not use), the result
    equals :func:`reward_to_go` bit for bit, and costs ``rows`` steps instead
    of ``T``. For fresh agents a 500-step window holds episodes of about 20
    steps.

    Args:
      rewards, episode_end, gamma: as :func:`reward_to_go`.
      rows: how many leading rows to compute (an int, may be traced; under
        ``vmap`` it should be the same for the whole batch, e.g. ``lax.pmax``
        over the batch axis, or the loop selects between carries every step).

    Returns:
      ``(T, ...)`` discounted reward-to-go, the dtype of ``rewards``.
    """
    rewards = jnp.asarray(rewards)
    continues = 1.0 - jnp.asarray(episode_end, rewards.dtype)
    gamma = jnp.asarray(gamma, rewards.dtype)

    def backward(i, carry):
        g_next, out = carry
        t = rows - 1 - i
        r = jax.lax.dynamic_index_in_dim(rewards, t, keepdims=False)
        c = jax.lax.dynamic_index_in_dim(continues, t, keepdims=False)
        g = r + gamma * c * g_next
        return g, jax.lax.dynamic_update_index_in_dim(out, g, t, 0)

    _, out = jax.lax.fori_loop(0, rows, backward, (jnp.zeros_like(rewards[0]), jnp.zeros_like(rewards)))
    return out


def complete_episode_mask(episode_end):
    """1 where the step's episode ends within the window, else 0: ``(T, ...)``.

    ``complete_t = episode_end_t or complete_{t+1}``, with ``complete_T = 0``:
    a step belongs to a complete episode exactly when some episode end lies at
    or after it. Multiply this into the step mask so that steps of an episode
    cut by the rollout window carry no weight (their return is unknown; using
    the truncated sum as if the episode had terminated would bias the
    gradient).
    """
    ends = jnp.asarray(episode_end, bool)
    return jnp.flip(jnp.cumsum(jnp.flip(ends, 0), axis=0) > 0, 0)


def apply_baseline(returns, mask, baseline: str, axis_name: str | None = None, values=None,
                   normalize_advantages: bool = True):
    """Per-step weights for the policy gradient from the returns.

    - ``"none"``: ``w = G`` (plain REINFORCE).
    - ``"mean"``: ``w = G - mean(G)``, the batch mean over masked steps.
    - ``"normalize"``: ``w = (G - mean(G)) / (std(G) + 1e-8)`` (return
      normalisation; a per-batch scale of the step size as well as a baseline);
      ``w = 0`` when the returns do not differ beyond float rounding.
    - ``"value"``: ``w = G - V(s)``, the advantage over a learned state value
      (``values``); with ``normalize_advantages`` centred and scaled as
      ``"normalize"`` does the returns.

    Args:
      returns: ``(...)`` reward-to-go.
      mask: ``(...)`` 1 for steps that count.
      baseline: one of :data:`BASELINES`.
      axis_name: a mapped axis over which the batch is split (environments
        sharded over devices); the mean and standard deviation are then
        those of the whole batch (``lax.psum`` of the sums and counts).
      values: ``(...)`` ``V(s)`` of each step, for ``"value"``.
      normalize_advantages: see ``"value"``.

    Returns:
      ``(...)`` weights; 0 where ``mask`` is 0.
    """
    mask = jnp.asarray(mask, returns.dtype)
    if baseline == "none":
        return returns * mask
    if baseline == "value":
        if values is None:
            raise ValueError('baseline "value" needs the values V(s) of the steps')
        advantages = returns - jnp.asarray(values, returns.dtype)
        if not normalize_advantages:
            return advantages * mask
        return _normalized(advantages, mask, axis_name)
    if baseline == "mean":
        return _centred(returns, mask, axis_name)[0]
    if baseline == "normalize":
        return _normalized(returns, mask, axis_name)
    raise ValueError(f"baseline must be one of {BASELINES}; got {baseline!r}")


def _centred(x, mask, axis_name):
    """``((x - mean) * mask, mean, count)`` over the masked entries of the (maybe split) batch."""
    total = (lambda v: v) if axis_name is None else (lambda v: jax.lax.psum(v, axis_name))
    count = jnp.maximum(total(jnp.sum(mask)), 1.0)
    mean = total(jnp.sum(x * mask)) / count
    return (x - mean) * mask, mean, count


def _normalized(x, mask, axis_name):
    """``(x - mean) / (std + 1e-8)`` over the masked entries, 0 where they do not differ beyond rounding."""
    centred, mean, count = _centred(x, mask, axis_name)
    total = (lambda v: v) if axis_name is None else (lambda v: jax.lax.psum(v, axis_name))
    std = jnp.sqrt(total(jnp.sum(centred**2)) / count)
    # Values that are all equal leave only rounding noise in ``centred``
    # (about 1e-7 of the mean in float32); dividing noise by noise would
    # give weights of order 1, so a spread below that level counts as none.
    spread = std > 1e-6 * jnp.abs(mean)
    return jnp.where(spread, centred / (std + 1e-8), 0.0)
