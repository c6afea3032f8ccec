"""The suite's shared helpers (``_fast_jit``, ``test_docs``) live in ``tests/``: make them importable from every layer's folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
