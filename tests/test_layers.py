"""The package's layers and imports, checked from the source alone (issue 23; docs: STYLE.md, "The house").

The package is layered, bottom to top: ``core`` (the algorithm), ``harness`` (the machinery), ``app`` (the entry
points); ``scripts/`` sit on top and may import anything. A reader then learns the algorithm without the machinery,
and a change to the machinery cannot break the algorithm. The rules, over every ``.py`` of ``jax_reinforce/`` and
``scripts/``, counting every import statement, those inside functions included:

1. every module lives in a layer (a package of ``LAYERS``), but ``jax_reinforce/__init__.py`` (lazy re-exports of
   every public name) and ``numpy_reference.py`` (the plain NumPy program);
2. every import of the package names a module that exists, and no layer module imports ``jax_reinforce`` itself:
   it re-exports everything, so that would be a cycle; import from the defining module;
3. a layer imports only its own layer and the layers below it; ``numpy_reference`` imports nothing of the package;
4. no import cycle between modules: the order in which modules can be read and changed is then well defined;
5. no private name (``_x``) imported from another module: a shared helper is public and documented;
6. no function over 120 lines of its own (nested functions and classes count on their own);
7. an import of the package inside a function (to keep start-up fast) says why on its line or the line above.

The checkers take the project's root, so the self-tests at the end run them on a small synthetic package.
This file imports nothing of the package: it reads the source with ``ast``.
"""
import ast
from collections import namedtuple
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = "jax_reinforce"
LAYERS = ("core", "harness", "app")  # bottom to top
OUTSIDE = (PKG, f"{PKG}.numpy_reference")  # the two modules outside the layers
MAX_LINES = 120
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)

# one imported module or name: who imports it, where ("path:line"), the module, the name (None for a whole module),
# whether the import sits inside a function, and whether a comment on its line or the line above explains it
Import = namedtuple("Import", "module where target name lazy explained")


def modules(root):
    """{dotted name: path relative to root} of every module of the package and script (``scripts.<stem>``)."""
    out = {}
    for top in (PKG, "scripts"):
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root)
            parts = rel.with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = rel
    return out


def layer(rel):
    """The layer of a package module (the folder under the package), or None for a top-level module or a script."""
    return rel.parts[1] if rel.parts[0] == PKG and len(rel.parts) > 2 else None


def imports(root):
    """Every import of a package module or name by a module or script, relative imports resolved."""
    mods, found = modules(root), []
    for module, rel in mods.items():
        source = (root / rel).read_text()
        lines, tree = source.splitlines(), ast.parse(source)
        inside = {id(n) for f in ast.walk(tree) if isinstance(f, FUNCTIONS) for n in ast.walk(f)}
        for node in sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))),
                           key=lambda n: n.lineno):
            if isinstance(node, ast.Import):
                pairs = [(a.name, None) for a in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the importer's package, one level up per extra dot
                    package = module.split(".")[: None if rel.name == "__init__.py" else -1]
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                # `from a.b import c` imports the module a.b.c if there is one, else the name c of a.b
                pairs = [(f"{base}.{a.name}", None) if f"{base}.{a.name}" in mods else (base, a.name)
                         for a in node.names]
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            explained = above.startswith("#") or any("#" in line for line in lines[node.lineno - 1:node.end_lineno])
            for target, name in pairs:
                if target == PKG or target.startswith(PKG + "."):
                    found.append(Import(module, f"{rel}:{node.lineno}", target, name, id(node) in inside, explained))
    return mods, found


def unlayered_modules(root):
    """Rule 1: package modules outside the layers."""
    return [str(rel) for name, rel in modules(root).items()
            if rel.parts[0] == PKG and name not in OUTSIDE and layer(rel) not in LAYERS]


def missing_or_top_imports(root):
    """Rule 2: imports of modules that do not exist, and imports of the package itself by its layers."""
    mods, found = imports(root)
    return ([f"{i.where} imports {i.target}, which is no module of the package" for i in found if i.target not in mods]
            + [f"{i.where} imports {PKG} itself (import from the defining module)" for i in found
               if i.target == PKG and layer(mods[i.module])])


def upward_imports(root):
    """Rule 3: imports of a layer above (or outside the layers), and numpy_reference importing the package."""
    mods, found = imports(root)
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for i in found:
        if i.target not in mods or i.target == PKG:
            continue  # rule 2's
        if i.module == OUTSIDE[1]:
            bad.append(f"{i.where} imports {i.target} (numpy_reference imports nothing of ours)")
        here, there = layer(mods[i.module]), layer(mods[i.target])
        if here in rank and (there not in rank or rank[there] > rank[here]):
            bad.append(f"{i.where} ({here}) imports {i.target} ({there or 'outside the layers'})")
    return bad


def import_cycles(root):
    """Rule 4: each set of modules that import one another (a strongly connected component), with its imports."""
    mods, found = imports(root)
    graph = {}
    for i in found:
        if i.target in mods and i.target != i.module and mods[i.module].parts[0] == PKG:
            graph.setdefault(i.module, set()).add(i.target)

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for n in graph.get(todo.pop(), ()):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    reaches = {m: reach(m) for m in mods}
    cycles = sorted({tuple(sorted(n for n in reaches[m] if m in reaches[n])) for m in mods if m in reaches[m]})
    return [f"cycle of {len(c)} modules:" + "".join(f"\n    {m} -> {', '.join(sorted(graph[m] & set(c)))}"
                                                    for m in c) for c in cycles]


def private_imports(root):
    """Rule 5: private names imported from another module of the package."""
    _, found = imports(root)
    return [f"{i.where} imports {i.name} from {i.target}" for i in found
            if i.name and i.name.startswith("_") and not i.name.startswith("__") and i.target != i.module]


def long_functions(root):
    """Rule 6: functions over MAX_LINES lines of their own, nested functions and classes left out."""
    bad = []
    for rel in modules(root).values():
        for f in ast.walk(ast.parse((root / rel).read_text())):
            if isinstance(f, FUNCTIONS):
                own = set(range(f.lineno, f.end_lineno + 1))
                for inner in ast.walk(f):
                    if inner is not f and isinstance(inner, FUNCTIONS + (ast.ClassDef,)):
                        own -= set(range(inner.lineno, inner.end_lineno + 1))
                if len(own) > MAX_LINES:
                    bad.append(f"{rel}:{f.lineno} {f.name}: {len(own)} lines")
    return bad


def unexplained_lazy_imports(root):
    """Rule 7: imports of the package inside a package function without a comment saying why."""
    mods, found = imports(root)
    bad = {}
    for i in found:
        if i.lazy and not i.explained and mods[i.module].parts[0] == PKG:
            bad.setdefault(i.where, {})[i.target] = None  # each module once, in order
    return [f"{where} imports {', '.join(targets)}" for where, targets in bad.items()]


def assert_none(title, bad):
    __tracebackhide__ = True  # a failure shows the test and the offenders, not this helper
    assert not bad, f"{title} ({len(bad)}):\n  " + "\n  ".join(bad)


def test_every_module_lives_in_a_layer():
    assert_none(f"modules outside the layers {LAYERS} (name a new layer in LAYERS)", unlayered_modules(ROOT))


def test_imports_name_existing_modules_and_layers_never_import_the_package():
    assert_none("imports of a missing module, or of the package itself by a layer", missing_or_top_imports(ROOT))


def test_layers_import_only_themselves_and_the_layers_below():
    assert_none(f"imports against the layers' order {' < '.join(LAYERS)}", upward_imports(ROOT))


def test_no_import_cycles():
    assert_none("import cycles (imports inside functions included)", import_cycles(ROOT))


def test_no_private_names_imported_from_another_module():
    assert_none("private names imported (make them public with a docstring, or move the code)", private_imports(ROOT))


def test_no_function_over_the_line_limit():
    assert_none(f"functions over {MAX_LINES} lines of their own", long_functions(ROOT))


def test_every_import_inside_a_function_says_why():
    assert_none("imports inside functions with no reason (`# lazy: ...` on or above the line)",
                unexplained_lazy_imports(ROOT))


# The self-tests: a small package with one offence of each kind, and modules that keep every rule.
LONG = "def long():\n" + "    x = 1\n" * MAX_LINES + "\n\ndef short():\n    def inner():\n" + "        x = 1\n" * 100
FAKE = {
    "jax_reinforce/__init__.py": "import importlib\n",
    "jax_reinforce/numpy_reference.py": "import numpy\nfrom .core import a\n",
    "jax_reinforce/stray.py": "",
    "jax_reinforce/core/__init__.py": "",
    "jax_reinforce/core/a.py": "from .b import x\n",
    "jax_reinforce/core/b.py": "from jax_reinforce.core import a\nfrom jax_reinforce.harness.h import _y\nx = 1\n",
    "jax_reinforce/harness/__init__.py": "from jax_reinforce import Config\n",
    "jax_reinforce/harness/h.py": "import jax_reinforce.gone as g\n\ndef f():\n    from ..core import a\n" + LONG,
    "jax_reinforce/app/__init__.py": "",
    "jax_reinforce/app/ok.py": "def f():\n    # lazy: a reason\n    from jax_reinforce.harness import h\n"
                               "    from jax_reinforce.core import b  # lazy: another\n",
    "scripts/run.py": "import jax_reinforce\nfrom jax_reinforce.core.b import _z\n",
}
EXPECTED = {
    unlayered_modules: ["jax_reinforce/stray.py"],
    missing_or_top_imports: [
        "jax_reinforce/harness/h.py:1 imports jax_reinforce.gone, which is no module of the package",
        "jax_reinforce/harness/__init__.py:1 imports jax_reinforce itself (import from the defining module)",
    ],
    upward_imports: [
        "jax_reinforce/core/b.py:2 (core) imports jax_reinforce.harness.h (harness)",
        "jax_reinforce/numpy_reference.py:2 imports jax_reinforce.core.a (numpy_reference imports nothing of ours)",
    ],
    import_cycles: [
        (
            "cycle of 3 modules:"
            "\n    jax_reinforce.core.a -> jax_reinforce.core.b"
            "\n    jax_reinforce.core.b -> jax_reinforce.core.a, jax_reinforce.harness.h"
            "\n    jax_reinforce.harness.h -> jax_reinforce.core.a"
        )
    ],
    private_imports: [
        "jax_reinforce/core/b.py:2 imports _y from jax_reinforce.harness.h",
        "scripts/run.py:2 imports _z from jax_reinforce.core.b",
    ],
    long_functions: [f"jax_reinforce/harness/h.py:5 long: {MAX_LINES + 1} lines"],
    unexplained_lazy_imports: ["jax_reinforce/harness/h.py:4 imports jax_reinforce.core.a"],
}


@pytest.mark.parametrize("check", EXPECTED, ids=lambda check: check.__name__)
def test_the_checker_finds_each_offence_and_nothing_else(tmp_path, check):
    for rel, text in FAKE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert sorted(check(tmp_path)) == sorted(EXPECTED[check])
