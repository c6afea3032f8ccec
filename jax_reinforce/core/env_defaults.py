"""Per-environment defaults: the value each :class:`~jax_reinforce.Config` field takes when it is not given.

One table, used by the library and the command line alike:
``Config(env="Acrobot-v1")`` and ``train.py --env Acrobot-v1`` train with
``ENV_DEFAULTS["Acrobot-v1"]``, and any field given explicitly wins. The
config a run stores (``config.json``, the checkpoint) holds the resolved
values, so a run is reproducible whatever this table later becomes.

The values are chosen by measurement (``scripts/search_defaults.py``, the
rule in :func:`jax_reinforce.app.search.choose_setting`; the search and its results are in
``docs/environments.md``): a small grid, trained on seeds 0-15; the figures
reported for the chosen setting come from seeds 100-115, so the choice is
not graded on the seeds it was made on. An environment without an entry
takes :data:`DEFAULTS`, CartPole-v1's measured setting.
"""

from __future__ import annotations

__all__ = ["DEFAULTS", "ENV_DEFAULTS", "defaults_for"]

# Every Config field but ``env``: the setting measured on CartPole-v1 (docs/performance.md), the default
# of every environment without an entry in ENV_DEFAULTS.
DEFAULTS = {
    "hidden": (8,),
    "num_envs": 32,
    "num_seeds": 4,
    "iterations": 300,
    "learning_rate": 0.1,
    "optimizer": "adam",
    "gamma": 0.99,
    "entropy_coef": 0.0,
    "max_grad_norm": None,
    "baseline": "normalize",
    "value_hidden": (64, 64),
    "value_learning_rate": 0.01,
    "normalize_advantages": True,
    "grad": "autodiff",
    "seed": 0,
    "rollout_steps": None,
    "stop_when_solved": True,
}

# The fields an environment's measured setting changes; the rest come from DEFAULTS. Each entry is the
# setting its search chose (docs/search/<env>.json; tests/app/test_search.py checks it). Environments
# with a solve threshold keep DEFAULTS' 300 iterations (an agent stops once solved); the others train
# the search's budget of iterations.
ENV_DEFAULTS: dict[str, dict] = {
    "CartPole-v0": {},
    "CartPole-v1": {},
    "Acrobot-v1": {"learning_rate": 0.01, "baseline": "value", "hidden": (16,)},
    "Asterix-MinAtar": {"learning_rate": 0.001, "baseline": "normalize", "hidden": (64, 64), "iterations": 300},
    "Breakout-MinAtar": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 300},
    "BernoulliBandit-misc": {"learning_rate": 0.003, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "Catch-bsuite": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "DeepSea-bsuite": {"learning_rate": 0.003, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "DiscountingChain-bsuite": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "Freeway-MinAtar": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 20,
                        "num_envs": 8},
    "FourRooms-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "FrozenLake-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "GaussianBandit-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "MemoryChain-bsuite": {"learning_rate": 0.03, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "MetaMaze-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "MountainCar-v0": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64)},
    "MountainCarContinuous-v0": {"learning_rate": 0.1, "baseline": "value", "hidden": (64, 64)},
    "Pendulum-v1": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 200},
    "PointRobot-misc": {"learning_rate": 0.1, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "Pong-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 50},
    "Reacher-misc": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "Seaquest-MinAtar": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 30},
    "SimpleBandit-bsuite": {"learning_rate": 0.01, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "SpaceInvaders-MinAtar": {"learning_rate": 0.01, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
    "Swimmer-misc": {"learning_rate": 0.003, "baseline": "value", "hidden": (64, 64), "iterations": 100},
    "UmbrellaChain-bsuite": {"learning_rate": 0.003, "baseline": "normalize", "hidden": (64, 64), "iterations": 100},
}

def defaults_for(env: str) -> dict:
    """Every field's default for ``env``: :data:`DEFAULTS` updated with ``ENV_DEFAULTS.get(env, {})``."""
    return {**DEFAULTS, **ENV_DEFAULTS.get(env, {})}
