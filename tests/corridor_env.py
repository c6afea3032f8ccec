"""A small environment of the user's own, in gymnax 1.0's API: a 1-D corridor (the tests' and docs' example).

The agent starts at cell 0 of ``length`` cells and moves left (action 0) or right (action 1); reaching the last
cell ends the episode with reward 1, and every step costs ``step_cost``. The best return is
``1 - (length - 1) * step_cost``.
"""

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class EnvState(environment.EnvState):
    position: jax.Array
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    length: int = 5
    step_cost: float = 0.01
    max_steps_in_episode: int = 20


class Corridor(environment.Environment):
    """Walk right to the end of the corridor."""

    solve_threshold = 0.9

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(self, key, state, action, params):
        position = jnp.clip(state.position + 2 * action - 1, 0, params.length - 1)
        done = position == params.length - 1
        reward = jnp.where(done, 1.0, 0.0) - params.step_cost
        state = EnvState(position=position, time=state.time + 1)
        return self.get_obs(state, params), state, reward, done, {}

    def reset_env(self, key, params):
        state = EnvState(position=jnp.int32(0), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.position / (params.length - 1), 1.0], jnp.float32)

    def is_terminal(self, state, params):
        return (state.position == params.length - 1) | (state.time >= params.max_steps_in_episode)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)
