"""The learner's page, ``docs/softmax-derivative.md`` and its translation, beyond running its blocks (issue 25).

- every ```python block's first line says what it needs (``# needs: numpy``, ``# needs: numpy, gymnasium`` or
  ``# needs: jax_reinforce``, the project installed), the same on both pages;
- the blocks that do not need the project run in a fresh interpreter where ``import jax`` (and the project,
  optax, gymnax, ...) raises ``ImportError``, so a NumPy-only learner can run them as they are; one that
  needs the project imports it or JAX;
- the picture ``docs/images/softmax-jacobian.png`` is what ``scripts/jacobian_picture.py`` draws, pixel for pixel.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_docs import python_blocks

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("docs/softmax-derivative.md", "docs/softmax-derivative.zh.md")
NEEDS = ("numpy", "numpy, gymnasium", "jax_reinforce")
# What a NumPy-only learner does not have: the project and the JAX stack it installs.
NOT_INSTALLED = ("jax", "jaxlib", "jax_reinforce", "optax", "gymnax", "flax", "chex")

# Runs the JSON list of blocks on stdin, each in a fresh module, with the modules named in argv[1] refused;
# prints the JSON list of failures. `import jax` must fail first, or the check would check nothing.
_HARNESS = r'''
import importlib.abc, json, sys, traceback, types
refused = set(sys.argv[1].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in refused:
            raise ImportError(f"No module named {name!r} (refused: the block must not need it)")
        return None

sys.meta_path.insert(0, Refuse())
try:
    import jax
    raise SystemExit("import jax did not fail")
except ImportError:
    pass
failures = []
for block in json.load(sys.stdin):
    module = types.ModuleType("doc_block")
    sys.modules[module.__name__] = module
    try:
        exec(compile("\n" * (block["line"] - 1) + block["code"], block["file"], "exec"), module.__dict__)
    except BaseException:
        failures.append(block["id"] + ":\n" + traceback.format_exc())
print(json.dumps(failures))
'''


def needs(code: str) -> str | None:
    """What a block says it needs, from its first line ``# needs: ...``; ``None`` without one."""
    first = code.splitlines()[0] if code.strip() else ""
    return first[len("# needs: "):].strip() if first.startswith("# needs: ") else None


def run_refusing(blocks, refused) -> list[str]:
    """Runs ``blocks`` (dicts of id, file, line, code) in one fresh interpreter that refuses ``refused``."""
    proc = subprocess.run([sys.executable, "-c", _HARNESS, ",".join(refused)], input=json.dumps(blocks),
                          capture_output=True, text=True, cwd=ROOT / "docs", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _page_blocks(name):
    return [{"id": f"{Path(name).name}-block{index}", "file": str(ROOT / name), "line": line, "code": code,
             "needs": needs(code)} for index, line, code, _ in python_blocks((ROOT / name).read_text("utf-8"))]


@pytest.mark.parametrize("name", PAGES)
def test_every_block_says_what_it_needs(name):
    blocks = _page_blocks(name)
    unlabelled = [b["id"] for b in blocks if b["needs"] not in NEEDS]
    assert not unlabelled, f"blocks whose first line is not one of {['# needs: ' + n for n in NEEDS]}: {unlabelled}"
    assert [b["needs"] for b in blocks] == [b["needs"] for b in _page_blocks(PAGES[0])]
    for block in blocks:
        imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(block["code"]))
                    for alias in getattr(node, "names", ()) if isinstance(node, ast.Import)}
        imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(block["code"]))
                     if isinstance(node, ast.ImportFrom) and node.module}
        if block["needs"] == "jax_reinforce":           # the label is not stricter than the block
            assert imported & {"jax", "jax_reinforce"}, f"{block['id']} needs neither jax nor the project"


@pytest.mark.parametrize("name", PAGES)
def test_blocks_that_do_not_need_the_project_run_without_jax(name):
    blocks = [b for b in _page_blocks(name) if b["needs"] in ("numpy", "numpy, gymnasium")]
    assert len(blocks) >= 5
    for label in ("numpy", "numpy, gymnasium"):
        refused = NOT_INSTALLED + (("gymnasium",) if label == "numpy" else ())
        group = [b for b in blocks if b["needs"] == label]
        failures = run_refusing(group, refused) if group else []
        assert not failures, "\n".join(failures)


def test_the_refusing_interpreter_refuses_jax():
    failures = run_refusing([{"id": "jax", "file": "x.py", "line": 1, "code": "import numpy\nimport jax\n"},
                             {"id": "project", "file": "x.py", "line": 1, "code": "from jax_reinforce import softmax\n"},
                             {"id": "fine", "file": "x.py", "line": 1, "code": "import numpy\n"}], NOT_INSTALLED)
    assert [f.split(":")[0] for f in failures] == ["jax", "project"]
    assert "refused" in failures[0]


def _picture_script():
    spec = importlib.util.spec_from_file_location("jacobian_picture", ROOT / "scripts" / "jacobian_picture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_jacobian_picture_is_the_scripts():
    script = _picture_script()
    committed = np.asarray(Image.open(script.OUT).convert("RGB"))
    drawn = np.asarray(script.picture())
    assert committed.shape == drawn.shape and np.array_equal(committed, drawn), (
        "docs/images/softmax-jacobian.png is not what scripts/jacobian_picture.py draws: run the script")
    for page in PAGES:
        assert "](images/softmax-jacobian.png)" in (ROOT / page).read_text("utf-8"), f"{page} does not show it"


def test_the_pictures_matrices():
    J_flat, J = _picture_script().jacobians()
    assert J_flat.shape == (20, 20) and J.shape == (10, 2, 2)
    for t in range(10):                                   # its diagonal blocks are the per-step Jacobians
        assert np.array_equal(J_flat[2 * t:2 * t + 2, 2 * t:2 * t + 2], J[t])
    assert np.allclose(J.sum(axis=2), 0)                  # each a softmax Jacobian: rows sum to 0
    assert np.abs(J_flat[:2, 2:]).min() > 0.05            # the rest of the (20, 20) is not zero
