"""Importing one module of a package without running the package's heavy ``__init__``.

Some packages import everything in their ``__init__``: ``import gymnax``
imports every environment (and seaborn), about 1.8 s, and ``import flax``
imports ``flax.linen`` and more, about 0.14 s on the development machine. The
trainer needs only gymnax's CartPole module and ``flax.struct`` (which the
CartPole module imports), about 0.02 s together.

:func:`import_skipping_inits` imports such a module while its parent packages
are stood in for by empty packages with the real search paths, then removes
the stand-ins from ``sys.modules``. A later ``import gymnax`` or ``import
flax`` anywhere in the process then runs the real package, which reuses the
modules already loaded (the classes stay identical); a finder on
``sys.meta_path`` then binds those modules as attributes of the real package
(``flax.struct``, ``gymnax.environments.classic_control.cartpole``), which
Python's import system does not do for a submodule that is already in
``sys.modules``. ``tests/test_lean_imports.py`` checks both.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

__all__ = ["import_skipping_inits"]


class _BindingLoader:
    """Wraps a package's loader: after the package runs, its already-loaded submodules become attributes."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # get_resource_reader, is_package, get_data, ...
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _BINDER.packages.discard(module.__name__)
        prefix = module.__name__ + "."
        for name, submodule in list(sys.modules.items()):
            child = name[len(prefix):] if name.startswith(prefix) else ""
            if child and "." not in child and submodule is not None and not hasattr(module, child):
                setattr(module, child, submodule)


class _SubmoduleBinder(importlib.abc.MetaPathFinder):
    """Finds the real packages that were stood in for, and has them bind their loaded submodules."""

    def __init__(self):
        self.packages: set[str] = set()

    def find_spec(self, name, path=None, target=None):
        if name not in self.packages:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _BindingLoader(spec.loader)
                return spec
        return None


_BINDER = _SubmoduleBinder()


def import_skipping_inits(name: str, packages: tuple[str, ...]) -> types.ModuleType:
    """Imports module ``name`` with the packages ``packages`` stood in for by empty ones.

    Args:
      name: the module to import, e.g. ``"gymnax.environments.classic_control.cartpole"``.
      packages: the packages whose ``__init__`` must not run, parents before
        children (e.g. ``("flax", "gymnax", "gymnax.environments")``). One
        already imported is used as it is.

    Returns:
      The module. If it was already imported, nothing else happens.

    Raises:
      ImportError: a package is not installed, or the module fails to import.
    """
    if name in sys.modules:
        return sys.modules[name]
    stand_ins = {}
    try:
        for package in packages:
            if package in sys.modules:
                continue
            parent, _, leaf = package.rpartition(".")
            if parent:
                locations = [f"{location}/{leaf}" for location in sys.modules[parent].__path__]
            else:
                spec = importlib.util.find_spec(package)
                if spec is None or not spec.submodule_search_locations:
                    raise ImportError(f"{package} is not installed")
                locations = list(spec.submodule_search_locations)
            module = types.ModuleType(package)
            module.__path__ = locations
            stand_ins[package] = module
            sys.modules[package] = module
        return importlib.import_module(name)
    finally:
        for package, module in stand_ins.items():
            if sys.modules.get(package) is module:
                del sys.modules[package]
                _BINDER.packages.add(package)
        if _BINDER.packages and _BINDER not in sys.meta_path:
            sys.meta_path.insert(0, _BINDER)
