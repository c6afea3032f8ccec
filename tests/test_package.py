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


def test_the_ml_dtypes_cap_holds_and_admits_what_jax_requires():
    """pyproject.toml caps ml_dtypes below 0.7 (0.7.0 takes 0.55 s to import; docs/performance.md, Round 7).

    The cap is a workaround on jax's own dependency: the installed version must be inside it, and inside
    what the installed jax and jaxlib ask for, or a jax that needs a newer ml_dtypes has arrived."""
    import tomllib
    from importlib.metadata import requires, version
    from pathlib import Path

    from packaging.requirements import Requirement

    def ml_dtypes(requirements):
        found = [Requirement(r) for r in requirements if Requirement(r).name.replace("-", "_") == "ml_dtypes"]
        assert len(found) == 1, requirements
        return found[0].specifier

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    ours = ml_dtypes(pyproject["project"]["dependencies"])
    installed = version("ml_dtypes")
    assert ours.contains(installed), (str(ours), installed)
    assert not ours.contains("0.7.0")
    for dist in ("jax", "jaxlib"):
        theirs = ml_dtypes(r for r in requires(dist) if "extra ==" not in r)
        assert theirs.contains(installed), (dist, str(theirs), installed)


def test_a_built_wheel_holds_every_module_of_every_layer(tmp_path):
    """A non-editable install gets the subpackages too (``pyproject.toml`` finds ``jax_reinforce.*``).

    The wheel is built from a copy of the tracked sources with the build backend the project names, without
    network access (``--no-build-isolation`` uses this environment's setuptools), and its file list compared
    with the package's ``.py`` files."""
    import shutil
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = tmp_path / "src"
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", ".hypothesis", ".gpu-site"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("jax_reinforce-*.whl")
    packed = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    expected = {p.relative_to(root).as_posix() for p in (root / "jax_reinforce").rglob("*.py")}
    assert packed == expected, (sorted(expected - packed), sorted(packed - expected))
    assert {"jax_reinforce/core/training.py", "jax_reinforce/harness/runner.py", "jax_reinforce/app/run.py"} <= packed
