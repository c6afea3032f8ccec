"""Environments as inputs (issue 24): make_env of an id, an import path or an object, its physics, traced physics."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _fast_jit import fast_jit
from corridor_env import Corridor, EnvParams

import jax_reinforce as jr
from jax_reinforce.core.config import env_spec_of


class Unimportable(Corridor):
    """A subclass defined inside a test function's module scope but named as if in a notebook (see below)."""


Unimportable.__module__ = "__main__"  # as a class typed into a notebook or a script's __main__


def test_an_import_path_an_object_and_an_id_give_the_same_kind_of_spec():
    by_path = jr.make_env("corridor_env:Corridor")
    by_object = jr.make_env(Corridor())
    assert by_path.name == by_object.name == "corridor_env:Corridor" and by_path.importable and by_object.importable
    assert (by_path.obs_dim, by_path.n_actions, by_path.max_steps, by_path.input_shape) == (2, 2, 20, (2,))
    assert by_path.solve_threshold == 0.9  # the class's own solve_threshold
    assert jr.make_env("corridor_env:Corridor", solve_threshold=0.5).solve_threshold == 0.5
    pendulum = jr.make_env("Pendulum-v1")
    assert pendulum.name == "Pendulum-v1" and pendulum.solve_threshold is None
    assert jr.make_env("CartPole-v1").solve_threshold == 475.0


def test_the_spec_reads_sizes_bounds_and_limit_from_these_params():
    spec = jr.make_env("Pendulum-v1", {"max_torque": 0.5, "max_steps_in_episode": 50})
    assert spec.action_low == (-0.5,) and spec.action_high == (0.5,) and spec.max_steps == 50
    assert spec.env_params_changed == {"max_torque": 0.5, "max_steps_in_episode": 50}
    params = jr.make_env("Pendulum-v1").params.replace(max_torque=1.5)
    assert jr.make_env("Pendulum-v1", params).action_high == (1.5,)  # an EnvParams object
    assert jr.make_env("corridor_env:Corridor", {"length": 9}).params.length == 9
    assert jr.make_env("CartPole-v0").env_params_changed == {}  # its 200-step limit is its default


@pytest.mark.parametrize(("env", "params", "message"), [
    ("CartPole-v1", {"gravty": 1.0}, r"^env_params: gravty is not a field of CartPole-v1's parameters; allowed: "
                                     r"max_steps_in_episode, gravity, "),
    ("no_such_module:Env", None, r"^env 'no_such_module:Env' cannot be imported \(ModuleNotFoundError"),
    ("corridor_env:Nope", None, r"^env 'corridor_env:Nope' cannot be imported \(AttributeError"),
    ("corridor_env:EnvParams", None, r"lacks gymnax 1.0's environment API"),
    ("Nope-v9", None, r"^env 'Nope-v9' is not a gymnax environment \(nor an import path 'package.module:ClassName'\); allowed: "),
    ("CartPole-v1", [1, 2], r"^env_params must be None, an EnvParams object or a dict"),
])
def test_bad_environments_and_params_are_one_line(env, params, message):
    with pytest.raises(ValueError, match=message) as error:
        jr.make_env(env, params)
    assert "\n" not in str(error.value)


def test_an_object_whose_class_cannot_be_imported_is_named_and_marked():
    spec = jr.make_env(Unimportable(), {"length": 3})
    assert (spec.name, spec.importable, spec.params.length) == ("Unimportable", False, 3)
    config = jr.Config(env=spec, num_seeds=2)
    assert config.env == "Unimportable" and config.env_params == {"length": 3}
    stored = config.to_dict()
    assert stored["env_importable"] is False and stored["env_params"] == {"length": 3}
    with pytest.raises(ValueError, match=r"^the environment 'Unimportable' of this run is an object whose class "
                                         r"cannot be imported by path: pass its spec again"):
        jr.Config.from_dict(stored)
    again = jr.Config.from_dict(stored, env_spec=spec)
    assert again == config and env_spec_of(again) is spec
    assert env_spec_of(config.replace(num_seeds=3)) is spec  # replace keeps the object


def test_config_records_an_import_path_and_its_physics():
    config = jr.Config(env="corridor_env:Corridor", env_params={"length": 4}, solve_threshold=0.8)
    assert jr.Config.from_dict(config.to_dict()) == config
    spec = env_spec_of(config)
    assert spec.params.length == 4 and spec.solve_threshold == 0.8
    with pytest.raises(ValueError, match=r"^env_params \(--env-params\): lenght is not a field"):
        jr.Config(env="corridor_env:Corridor", env_params={"lenght": 4})
    with pytest.raises(ValueError, match=r"^env_params \(--env-params\) must be a dict"):
        jr.Config(env_params={"gravity": "strong"})
    with pytest.raises(ValueError, match=r"^solve_threshold \(--solve-threshold\) must be None or a finite number"):
        jr.Config(solve_threshold=float("nan"))


def test_an_own_environment_trains_to_its_goal_from_the_library():
    config = jr.Config(env="corridor_env:Corridor", num_seeds=2, num_envs=16, iterations=60)
    state, metrics = jax.jit(jax.vmap(jr.make_train(config, return_state=True)))(jr.agent_keys(0, 2))
    assert (np.asarray(state.solved_at) >= 0).all(), state.solved_at  # its greedy policy walks straight right
    assert isinstance(state, jr.TrainState) and state.confirm_attempts.shape == (2,)


def test_physics_vmapped_trains_one_agent_per_physics_in_one_program():
    config = jr.Config(env="CartPole-v1", num_seeds=1, num_envs=8, iterations=1, stop_when_solved=False)
    train = fast_jit(jax.vmap(jr.make_train(config), in_axes=(0, None, None, 0)))  # logic: compiled fast
    spec = jr.make_env("CartPole-v1")
    gravities = jnp.asarray([9.8, 9.8, 30.0])
    physics = jax.vmap(lambda g: spec.params.replace(gravity=g))(gravities)
    keys = jnp.stack([jr.agent_keys(0, 1)[0]] * 3)
    params, metrics = train(keys, None, None, physics)
    plain_params, plain = fast_jit(jax.vmap(jr.make_train(config)))(keys[:1])
    # The spec's own physics, traced: the same episodes; parameters equal to float rounding (constants fold).
    np.testing.assert_array_equal(metrics["env_steps"][0], plain["env_steps"][0])
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(plain_params)):
        np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    assert metrics["env_steps"][2, 0] != metrics["env_steps"][0, 0]  # stronger gravity: the pole falls sooner
    # A dict of fields works the same as an EnvParams.
    _, by_dict = fast_jit(jax.vmap(jr.make_train(config), in_axes=(0, None, None, None)))(keys[:1], None, None,
                                                                                          {"gravity": 30.0})
    assert by_dict["episode_return"].shape == (1, 1)


def test_physics_that_would_reshape_the_program_is_refused():
    spec = jr.make_env("CartPole-v1")
    with pytest.raises(ValueError, match=r"max_steps_in_episode shapes the program .* must be the spec's 500"):
        jr.physics(spec, {"max_steps_in_episode": 100})
    with pytest.raises(ValueError, match=r"not among CartPole-v1's fields"):
        jr.physics(spec, {"gravityy": 1.0})
    traced = jax.jit(lambda n: jr.physics(spec, {"max_steps_in_episode": n}).max_steps_in_episode)(7)
    assert int(traced) == 500  # a traced limit is ignored: the spec's stays
    assert dataclasses.replace(EnvParams(), length=3).length == 3
