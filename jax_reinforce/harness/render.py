"""Frames of the classic-control environments, drawn with Pillow from gymnasium's states.

Each drawer takes the ``state`` that gymnasium keeps (``env.unwrapped.state``)
and returns an ``(H, W, 3)`` uint8 RGB frame with the geometry and colours of
gymnasium's own pygame renderer, so a GIF needs neither pygame nor a display.
Geometry is worked out in world coordinates with ``y`` pointing up, then put
on the image with ``row = H - 1 - y`` (pygame's final vertical flip).

    draw_cartpole(state)       state = (x, x_dot, theta, theta_dot)          600 x 400
    draw_acrobot(state)        state = (theta1, theta2, dtheta1, dtheta2)    500 x 500
    draw_mountain_car(state)   state = (position, velocity)                  600 x 400
    draw_pendulum(state)       state = (theta, theta_dot)                    500 x 500

:func:`draw_frame` picks the drawer by environment name (one of
:data:`RENDERABLE_ENVS`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "draw_cartpole",
    "draw_acrobot",
    "draw_mountain_car",
    "draw_pendulum",
    "draw_frame",
    "RENDERABLE_ENVS",
]

RENDERABLE_ENVS = (
    "CartPole-v0", "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1",
)

_WHITE, _BLACK = (255, 255, 255), (0, 0, 0)


def _canvas(width: int, height: int):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), _WHITE)
    return image, ImageDraw.Draw(image)


def _placed(points, angle: float, origin):
    """``points`` rotated counter-clockwise by ``angle`` (radians) about ``(0, 0)``, then moved to ``origin``."""
    c, s = math.cos(angle), math.sin(angle)
    return [(origin[0] + u * c - v * s, origin[1] + u * s + v * c) for u, v in points]


def _on_image(points, height: int):
    """World points (``y`` up) as image points (``row = height - 1 - y``)."""
    return [(x, height - 1 - y) for x, y in points]


def _disc(draw, centre, radius: float, height: int, colour) -> None:
    (x, y), = _on_image([centre], height)
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)


def _rectangle(left: float, right: float, bottom: float, top: float):
    return [(left, bottom), (left, top), (right, top), (right, bottom)]


def draw_cartpole(state, width: int = 600, height: int = 400) -> np.ndarray:
    """A CartPole frame: the track, the cart at ``x``, the pole leaning ``theta`` clockwise.

    ``scale = width / 4.8`` pixels per unit (the track's ``[-2.4, 2.4]`` fills
    the width); the cart, 50 x 30 pixels, sits on a track 100 pixels above the
    bottom; the pole, 10 pixels wide and ``scale`` long (twice the half-length
    0.5), turns about an axle a quarter of the cart's height above its centre.

    Args:
      state: ``(x, x_dot, theta, theta_dot)``.

    Returns:
      ``(height, width, 3)`` uint8 RGB.
    """
    x, _, theta, _ = (float(v) for v in state)
    scale = width / 4.8
    pole_width, pole_length, cart_width, cart_height, track_y = 10.0, scale * 1.0, 50.0, 30.0, 100.0
    cart_x = x * scale + width / 2.0
    axle = (cart_x, track_y + cart_height / 4.0)
    image, draw = _canvas(width, height)
    draw.line(_on_image([(0, track_y), (width, track_y)], height), fill=_BLACK)
    cart = _rectangle(-cart_width / 2, cart_width / 2, -cart_height / 2, cart_height / 2)
    draw.polygon(_on_image(_placed(cart, 0.0, (cart_x, track_y)), height), fill=_BLACK)
    pole = _rectangle(-pole_width / 2, pole_width / 2, -pole_width / 2, pole_length - pole_width / 2)
    draw.polygon(_on_image(_placed(pole, -theta, axle), height), fill=(202, 152, 101))
    _disc(draw, axle, pole_width / 2, height, (129, 132, 203))
    return np.asarray(image)


def draw_acrobot(state, size: int = 500) -> np.ndarray:
    """An Acrobot frame: two links hanging from a pivot at the centre, and the goal line.

    ``scale = size / 4.4`` pixels per unit (the reach ``[-2.2, 2.2]`` fills the
    frame). With the pivot at the origin, the joint is at ``(sin t1, -cos t1)``
    and the tip at joint ``+ (sin(t1 + t2), -cos(t1 + t2))`` (each link 1 long,
    both hanging straight down at ``t1 = t2 = 0``); links are 0.2 wide, a disc
    of radius 0.1 marks the pivot and the joint, and the episode ends when the
    tip rises above the line drawn 1 above the pivot.

    Args:
      state: ``(theta1, theta2, dtheta1, dtheta2)``.

    Returns:
      ``(size, size, 3)`` uint8 RGB.
    """
    theta1, theta2 = float(state[0]), float(state[1])
    scale, centre = size / 4.4, size / 2.0
    image, draw = _canvas(size, size)
    draw.line(_on_image([(centre - 2.2 * scale, centre + scale), (centre + 2.2 * scale, centre + scale)], size),
              fill=_BLACK)
    joint = (centre + scale * math.sin(theta1), centre - scale * math.cos(theta1))
    link = _rectangle(0.0, scale, -0.1 * scale, 0.1 * scale)  # along +x from its base, turned to hang down
    for base, angle in (((centre, centre), theta1 - math.pi / 2), (joint, theta1 + theta2 - math.pi / 2)):
        draw.polygon(_on_image(_placed(link, angle, base), size), fill=(0, 204, 204))
        _disc(draw, base, 0.1 * scale, size, (204, 204, 0))
    return np.asarray(image)


def _hill_height(position):
    """The mountain's height ``0.45 sin(3 p) + 0.55`` at ``position``."""
    return np.sin(3 * np.asarray(position)) * 0.45 + 0.55


def draw_mountain_car(state, goal_position: float = 0.5, width: int = 600, height: int = 400) -> np.ndarray:
    """A MountainCar frame: the hill, the car at ``position`` tilted with it, the flag at the goal.

    ``scale = width / 1.8`` pixels per unit (positions ``[-1.2, 0.6]`` fill
    the width); the hill is ``h(p) = 0.45 sin(3 p) + 0.55``; the car, 40 x 20
    pixels on two wheels of radius 8, rides 10 pixels above the hill and is
    turned by ``cos(3 p)`` radians (gymnasium's tilt); the flag stands 50
    pixels tall at ``goal_position`` (0.5 in MountainCar-v0, 0.45 in
    MountainCarContinuous-v0).

    Args:
      state: ``(position, velocity)``.
      goal_position: where the flag stands.

    Returns:
      ``(height, width, 3)`` uint8 RGB.
    """
    position = float(state[0])
    low = -1.2
    scale = width / (0.6 - low)
    image, draw = _canvas(width, height)
    xs = np.linspace(low, 0.6, 100)
    draw.line(_on_image(list(zip((xs - low) * scale, _hill_height(xs) * scale)), height), fill=_BLACK)
    tilt = math.cos(3 * position)
    car_at = ((position - low) * scale, 10.0 + float(_hill_height(position)) * scale)
    draw.polygon(_on_image(_placed(_rectangle(-20.0, 20.0, 0.0, 20.0), tilt, car_at), height), fill=_BLACK)
    for wheel in _placed([(10.0, 0.0), (-10.0, 0.0)], tilt, car_at):
        _disc(draw, wheel, 8.0, height, (128, 128, 128))
    flag_x, flag_bottom = (goal_position - low) * scale, float(_hill_height(goal_position)) * scale
    flag_top = flag_bottom + 50.0
    draw.line(_on_image([(flag_x, flag_bottom), (flag_x, flag_top)], height), fill=_BLACK)
    pennant = [(flag_x, flag_top), (flag_x, flag_top - 10.0), (flag_x + 25.0, flag_top - 5.0)]
    draw.polygon(_on_image(pennant, height), fill=(204, 204, 0))
    return np.asarray(image)


def draw_pendulum(state, size: int = 500) -> np.ndarray:
    """A Pendulum frame: a rod turning about the centre, upright at ``theta = 0``.

    ``scale = size / 4.4`` pixels per unit; the rod, 1 long and 0.2 wide with
    rounded ends, points from the axle to ``(-sin theta, cos theta)`` (``theta``
    counter-clockwise from upright); the axle is a black disc of radius 0.05.
    gymnasium also draws an arrow for the last torque, which the state does
    not hold; it is left out.

    Args:
      state: ``(theta, theta_dot)``.

    Returns:
      ``(size, size, 3)`` uint8 RGB.
    """
    theta = float(state[0])
    scale, centre = size / 4.4, float(size // 2)
    rod_width, colour = 0.2 * scale, (204, 77, 77)
    image, draw = _canvas(size, size)
    rod = _placed(_rectangle(0.0, scale, -rod_width / 2, rod_width / 2), theta + math.pi / 2, (centre, centre))
    draw.polygon(_on_image(rod, size), fill=colour)
    end = _placed([(scale, 0.0)], theta + math.pi / 2, (centre, centre))[0]
    for point in ((centre, centre), end):
        _disc(draw, point, rod_width / 2, size, colour)
    _disc(draw, (centre, centre), 0.05 * scale, size, _BLACK)
    return np.asarray(image)


def draw_frame(env_name: str, state) -> np.ndarray:
    """The frame of ``env_name`` (one of :data:`RENDERABLE_ENVS`) in ``state``: ``(H, W, 3)`` uint8.

    Raises:
      ValueError: ``env_name`` is not one of :data:`RENDERABLE_ENVS`.
    """
    if env_name in ("CartPole-v0", "CartPole-v1"):
        return draw_cartpole(state)
    if env_name == "Acrobot-v1":
        return draw_acrobot(state)
    if env_name == "MountainCar-v0":
        return draw_mountain_car(state, goal_position=0.5)
    if env_name == "MountainCarContinuous-v0":
        return draw_mountain_car(state, goal_position=0.45)
    if env_name == "Pendulum-v1":
        return draw_pendulum(state)
    raise ValueError(f"no drawing of {env_name!r}; drawn are {', '.join(RENDERABLE_ENVS)}")
