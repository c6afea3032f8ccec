"""Loops that stop together under ``jax.vmap``: one stop test for the whole batch.

A ``jax.lax.while_loop`` whose stop test differs between the members of a
vmapped batch cannot stop early for some of them: JAX runs it while any
member goes on and, at every step, selects between each member's new carry
and its old one (``where(go_on, body(carry), carry)``). For a rollout whose
carry holds ``(T, N, obs_dim)`` trajectory buffers, that select copies every
buffer at every step, so a step costs ``O(T N)`` instead of ``O(N)``
(``docs/performance.md`` measures it).

The loops of this package are written so that running more steps than a
member needs changes nothing for it (its environments have ended, its
agent has stopped: the extra steps write zeros and keep its state), so they
may as well stop when the *last* member is done. :func:`batch_any` and
:func:`batch_max` say that: outside ``vmap`` they return their argument;
under ``vmap`` (nested or not, named or not) they reduce it over every
vmapped axis and return one unbatched value, so the loop's stop test is the
same for the whole batch and ``vmap`` runs its body with no select. They are
``jax.custom_batching.custom_vmap`` functions: the batching rule reduces the
vmapped axis and calls the function again, so the next enclosing ``vmap``
reduces its axis too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["batch_any", "batch_max"]


@jax.custom_batching.custom_vmap
def batch_max(x):
    """``x`` itself; under ``vmap``, its maximum over every vmapped axis (unbatched).

    Args:
      x: an array (typically a scalar count or flag of one batch member).

    Returns:
      An array of the shape of one member's ``x``.
    """
    return x


@batch_max.def_vmap
def _batch_max_rule(axis_size, in_batched, x):
    del axis_size
    (batched,) = in_batched
    if batched:
        x = jnp.max(x, axis=0)
    # Called again: an enclosing vmap (if any) reduces its own axis the same way.
    return batch_max(x), False


def batch_any(flag):
    """``flag`` (bool) itself; under ``vmap``, whether it holds for any member of the batch (unbatched)."""
    return batch_max(jnp.asarray(flag).astype(jnp.int32)) > 0
