"""The package's lazy re-exports stay in step with its modules."""

import importlib
import subprocess
import sys

import jax_reinforce


def test_every_reexported_name_is_public_in_its_module():
    for module_name, names in jax_reinforce._EXPORTS.items():
        module = importlib.import_module(f"jax_reinforce.{module_name}")
        missing = [n for n in names if n not in getattr(module, "__all__", ())]
        assert not missing, f"jax_reinforce.{module_name}.__all__ lacks {missing}"
        for name in names:
            assert getattr(jax_reinforce, name) is getattr(module, name)


def test_importing_the_package_imports_no_jax():
    code = "import sys, jax_reinforce; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
