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
        from jax_reinforce.core.envs import make_env
        spec = make_env("CartPole-v1")
        print("flax.linen" in sys.modules, "gymnax.environments.classic_control.acrobot" in sys.modules)
        print(type(spec.env).__module__)
    """).splitlines()
    assert out[0] == "False False"
    assert out[1] == "gymnax.environments.classic_control.cartpole"


def test_real_packages_imported_later_are_whole():
    out = run_python("""
        from jax_reinforce.core.envs import make_env
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
        from jax_reinforce.core.lean_imports import import_skipping_inits
        try:
            import_skipping_inits("no_such_package_xyz.mod", ("no_such_package_xyz",))
        except ImportError as error:
            print("ImportError", error)
    """)
    assert out.startswith("ImportError no_such_package_xyz is not installed")


def test_the_binding_finder_leaves_sys_meta_path_once_the_real_packages_are_imported():
    out = run_python("""
        import sys
        from jax_reinforce.core.envs import make_env
        from jax_reinforce.core.lean_imports import _BINDER
        make_env("CartPole-v1")
        print(_BINDER in sys.meta_path, sorted(_BINDER.packages))
        import flax, gymnax
        print(_BINDER in sys.meta_path, sorted(_BINDER.packages), flax.struct is sys.modules["flax.struct"])
    """).splitlines()
    assert out[0] == ("True ['flax', 'gymnax', 'gymnax.environments', 'gymnax.environments.classic_control']")
    assert out[1] == "False [] True"


def test_another_thread_importing_flax_while_cartpole_loads_gets_the_whole_package():
    """The hazard: while the CartPole module loads, ``flax`` in ``sys.modules`` is a stand-in.

    A finder pauses the load half-way (at ``gymnax.environments.spaces``, after ``flax.struct``) until another
    thread has run ``import flax``; that thread then reads attributes only the real package has.
    """
    out = run_python("""
        import importlib.abc, sys, threading

        in_window, grabbed = threading.Event(), threading.Event()

        class Pause(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "gymnax.environments.spaces" and not in_window.is_set():
                    in_window.set()
                    assert grabbed.wait(60), "the other thread never imported flax"
                return None

        sys.meta_path.insert(0, Pause())
        seen = {}

        def other():
            try:
                assert in_window.wait(60)
                import flax
                seen["during"] = "flax.linen" not in sys.modules
                grabbed.set()
                seen["version"] = isinstance(flax.__version__, str)
                seen["linen"] = flax.linen.Dense.__name__
                seen["config"] = flax.config is sys.modules["flax"].config
            except BaseException as error:
                seen["error"] = repr(error)
                grabbed.set()

        thread = threading.Thread(target=other)
        thread.start()
        from jax_reinforce.core.envs import make_env
        spec = make_env("CartPole-v1")
        thread.join(120)
        import flax
        assert flax.struct is sys.modules["flax.struct"] and flax.linen.Dense is not None
        print(sorted(seen.items()))
    """)
    assert out.strip() == "[('config', True), ('during', True), ('linen', 'Dense'), ('version', True)]"
