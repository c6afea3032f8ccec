"""A network of the user's own for the tests: a linear policy over the flattened observation, as a ``Policy``."""

import jax
import jax.numpy as jnp
import numpy as np

import jax_reinforce as jr


def linear_init(key, input_shape, n_actions):
    size = int(np.prod(input_shape))
    return {"w": jax.random.normal(key, (size, n_actions)) * 0.01, "b": jnp.zeros(n_actions)}


def linear_apply(params, obs):
    return obs.reshape(*obs.shape[:obs.ndim - 1], -1) @ params["w"] + params["b"]


LINEAR = jr.Policy(linear_init, linear_apply, "example_policies:LINEAR")
