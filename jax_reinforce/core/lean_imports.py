"""Importing one module of a package without running the package's heavy ``__init__``.

Some packages import everything in their ``__init__``: ``import gymnax``
imports every environment (and seaborn, scipy.stats, pandas, matplotlib's
pyplot), and ``import flax`` imports ``flax.linen`` and more. The trainer
needs only gymnax's CartPole module and ``flax.struct`` (which the CartPole
module imports). The import times with and without are measured in
``docs/performance.md``.

:func:`import_skipping_inits` imports such a module while its parent packages
are stood in for by empty packages with the real search paths, then removes
the stand-ins from ``sys.modules``. A later ``import gymnax`` or ``import
flax`` anywhere in the process then runs the real package, which reuses the
modules already loaded (the classes stay identical); a finder on
``sys.meta_path`` then binds those modules as attributes of the real package
(``flax.struct``, ``gymnax.environments.classic_control.cartpole``), which
Python's import system does not do for a submodule that is already in
``sys.modules``. The finder answers only for the packages stood in for and
leaves ``sys.meta_path`` once each of them has been imported for real.

Other threads: the stand-ins are in ``sys.modules`` while the module loads,
so a thread importing ``flax`` then gets one. A stand-in therefore forwards
every attribute it lacks to the real package: such an access from another
thread waits until the module has loaded, then imports the real package
(as a plain ``import`` would have) and reads the attribute there. Two calls
of :func:`import_skipping_inits` never overlap (a lock).
``tests/core/test_lean_imports.py`` checks all of this.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
import types

__all__ = ["import_skipping_inits"]

# Held while stand-ins are in sys.modules; _window_owner is the thread holding it then.
_LOCK = threading.RLock()
_window_owner: int | None = None


class _StandIn(types.ModuleType):
    """An empty package with the real one's search path: its submodules load, its ``__init__`` does not run.

    An attribute it lacks is read from the real package, except in the
    thread that is importing through it (there it is missing, so that the
    import system loads submodules, as from an empty package).
    """

    def __getattr__(self, attr):
        if _window_owner == threading.get_ident():
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r} (yet)")
        with _LOCK:  # another thread: wait until the stand-ins have left sys.modules
            pass
        real = importlib.import_module(self.__name__)
        if real is self:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        return getattr(real, attr)


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
        prefix = module.__name__ + "."
        for name, submodule in list(sys.modules.items()):
            child = name[len(prefix):] if name.startswith(prefix) else ""
            if child and "." not in child and submodule is not None and not hasattr(module, child):
                setattr(module, child, submodule)
        _BINDER.done(module.__name__)


class _SubmoduleBinder(importlib.abc.MetaPathFinder):
    """Finds the real packages that were stood in for, and has them bind their loaded submodules.

    On ``sys.meta_path`` only while some package stood in for has not been
    imported for real.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.packages: set[str] = set()

    def add(self, packages) -> None:
        with self._lock:
            self.packages.update(packages)
            if self.packages and self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def done(self, package: str) -> None:
        with self._lock:
            self.packages.discard(package)
            if not self.packages and self in sys.meta_path:
                # A new list: another thread may be iterating over the old one in an import.
                sys.meta_path = [finder for finder in sys.meta_path if finder is not self]

    def find_spec(self, name, path=None, target=None):
        with self._lock:
            if name not in self.packages:
                return None
        for finder in list(sys.meta_path):
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
    global _window_owner
    if name in sys.modules:
        return sys.modules[name]
    with _LOCK:
        if name in sys.modules:  # imported by another thread meanwhile
            return sys.modules[name]
        stand_ins = {}
        _window_owner = threading.get_ident()
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
                module = _StandIn(package)
                module.__path__ = locations
                stand_ins[package] = module
                sys.modules[package] = module
            return importlib.import_module(name)
        finally:
            ours = [package for package, module in stand_ins.items() if sys.modules.get(package) is module]
            # The binder first: a thread importing a package right after its stand-in leaves gets it whole.
            _BINDER.add(ours)
            for package in ours:
                del sys.modules[package]
            _window_owner = None
