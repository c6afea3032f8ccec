#!/usr/bin/env python
"""docs/images/softmax-jacobian.png: the seed's (20, 20) matrix beside the ten (2, 2) Jacobians it should have been.

    python scripts/jacobian_picture.py            # rewrites docs/images/softmax-jacobian.png

Left: ``softmax_grad(l2)`` as the seed program wrote it (``l2.reshape(-1, 1)``,
then ``diagflat(s) - s s^T``) for one episode of 10 steps and 2 actions, one
square per entry. Right: the ten per-step Jacobians ``diag(s_t) - s_t s_t^T``
on the diagonal, nothing elsewhere. Red is positive, blue negative, white
zero, on one scale for both halves; the grey outside the blocks is no entry.
The probabilities are fixed numbers (``FIRST``) and the picture is drawn with
rectangles only (no font), so it is the same on every machine:
``tests/test_softmax_page.py`` redraws it and compares it pixel for pixel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "softmax-jacobian.png"
# pi(action 1 | x_t) for the steps t = 1..10; pi(action 2 | x_t) is 1 minus it.
FIRST = (0.62, 0.45, 0.71, 0.38, 0.55, 0.66, 0.29, 0.51, 0.74, 0.42)
CELL, MARGIN, GAP = 14, 16, 48
BACKGROUND, GRID, BORDER = (236, 236, 236), (170, 170, 170), (40, 40, 40)


def jacobians(first=FIRST):
    """``(J_flat, J)``: the seed's ``(2T, 2T)`` matrix and the ``(T, 2, 2)`` per-step Jacobians."""
    s = np.stack([np.asarray(first, float), 1 - np.asarray(first, float)], axis=1)
    flat = s.reshape(-1, 1)                                   # what softmax_grad did
    J_flat = np.diagflat(flat) - flat @ flat.T
    J = s[:, :, None] * np.eye(2) - s[:, :, None] * s[:, None, :]
    return J_flat, J


def colour(value: float, scale: float):
    """Red for ``value > 0``, blue for ``value < 0``, fading to white at 0; full colour at ``|value| >= scale``."""
    t = max(-1.0, min(1.0, value / scale))
    fade = round(255 * (1 - abs(t)))
    return (255, fade, fade) if t > 0 else (fade, fade, 255)


def _panel(draw, left: int, matrix, scale: float, only_blocks: bool):
    """Draws ``matrix`` (2T, 2T) at ``(left, MARGIN)``; with ``only_blocks``, its 2 x 2 diagonal blocks only."""
    n = matrix.shape[0]
    for i, j in np.ndindex(matrix.shape):
        if only_blocks and i // 2 != j // 2:
            continue
        x, y = left + j * CELL, MARGIN + i * CELL
        draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=colour(float(matrix[i, j]), scale))
    size = n * CELL
    if not only_blocks:
        for k in range(2, n, 2):                              # the 2 x 2 blocks of the (20, 20)
            draw.line([left + k * CELL, MARGIN, left + k * CELL, MARGIN + size - 1], fill=GRID)
            draw.line([left, MARGIN + k * CELL, left + size - 1, MARGIN + k * CELL], fill=GRID)
        draw.rectangle([left, MARGIN, left + size - 1, MARGIN + size - 1], outline=BORDER)
    for k in range(0, n, 2) if only_blocks else ():
        x, y = left + k * CELL, MARGIN + k * CELL
        draw.rectangle([x, y, x + 2 * CELL - 1, y + 2 * CELL - 1], outline=BORDER)


def picture(first=FIRST) -> Image.Image:
    """The two halves side by side, an RGB image: the seed's matrix left, the per-step blocks right."""
    J_flat, J = jacobians(first)
    blocks = np.zeros_like(J_flat)
    for t, block in enumerate(J):
        blocks[2 * t:2 * t + 2, 2 * t:2 * t + 2] = block
    scale = float(np.abs(J_flat).max())
    size = J_flat.shape[0] * CELL
    image = Image.new("RGB", (2 * MARGIN + 2 * size + GAP, 2 * MARGIN + size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _panel(draw, MARGIN, J_flat, scale, only_blocks=False)
    _panel(draw, MARGIN + size + GAP, blocks, scale, only_blocks=True)
    return image


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT                      # another path: to look before replacing
    picture().save(out, format="PNG")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
