"""gymnax's CartPole is imported without gymnax's and flax's heavy ``__init__``, and nothing breaks later."""

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_cartpole_alone_skips_package_inits():
    out = run_python("""
        import sys
        from jax_reinforce.envs import make_env
        spec = make_env("CartPole-v1")
        print("flax.linen" in sys.modules, "gymnax.environments.classic_control.acrobot" in sys.modules)
        print(type(spec.env).__module__)
    """).splitlines()
    assert out[0] == "False False"
    assert out[1] == "gymnax.environments.classic_control.cartpole"


def test_real_packages_imported_later_are_whole():
    out = run_python("""
        from jax_reinforce.envs import make_env
        spec = make_env("CartPole-v1")
        import flax, gymnax
        import flax.linen
        # Submodules loaded under the stand-ins are attributes of the real packages.
        assert flax.struct.dataclass is not None
        cartpole = gymnax.environments.classic_control.cartpole
        assert type(spec.env) is cartpole.CartPole
        env, params = gymnax.make("CartPole-v1")
        assert type(env) is type(spec.env)
        assert gymnax.environments.classic_control.Acrobot is not None
        # A second call reuses the loaded module.
        assert type(make_env("CartPole-v0").env) is type(spec.env)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_import_skipping_inits_unknown_package():
    out = run_python("""
        from jax_reinforce.lean_imports import import_skipping_inits
        try:
            import_skipping_inits("no_such_package_xyz.mod", ("no_such_package_xyz",))
        except ImportError as error:
            print("ImportError", error)
    """)
    assert out.startswith("ImportError no_such_package_xyz is not installed")
