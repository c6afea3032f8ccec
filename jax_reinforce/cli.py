"""Command-line plumbing shared by the scripts: one-line errors, exit code 2.

Bad input must end in a single line naming the flag, the value and what is
allowed, with exit code 2 and no traceback. argparse prints a usage block and
says some things twice; :class:`OneLineParser` turns every argparse error
into a :class:`UsageError` with a single clean sentence instead.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys

__all__ = ["EXIT_BAD_INPUT", "UsageError", "OneLineParser", "clean_argparse_message", "exit_now",
           "add_config_flags", "config_from_args", "typed_config_fields", "int_flag"]

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def clean_argparse_message(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's error message as one sentence: the flag said once, unknown flags with a hint."""
    named = re.match(r"^argument (\S+): (.*)$", message)
    if named and named.group(1) in named.group(2):  # "argument --x: x (--x) must ...": say it once
        message = named.group(2)
    unknown = re.match(r"^unrecognized arguments: (.*)$", message)
    if unknown:
        flags = [s for a in parser._actions for s in a.option_strings]
        first = unknown.group(1).split()[0].split("=", 1)[0]
        close = [f for f in flags if f.startswith(first)] or difflib.get_close_matches(first, flags, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}? " if close else ""
        message = f"unknown argument {unknown.group(1)!r}; {hint}see {parser.prog} --help for the flags allowed"
    return message


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a :class:`UsageError` naming the flag and what is allowed."""

    def error(self, message):
        raise UsageError(clean_argparse_message(self, message))


def exit_now(code: int):
    """Ends a script's process with ``code`` at once, skipping JAX's clean-up at exit.

    JAX's ``atexit`` handler destroys its backends and clears its caches:
    about 0.3 s on the development machine, a quarter of a warm one-seed
    training run, spent after the run's last file is written. The scripts
    close every file they write (each written whole, then renamed), so once
    the standard streams are flushed nothing is left to do. In a
    multi-process job (``jax.distributed``) the process exits normally, so
    that it leaves the job cleanly.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    jax = sys.modules.get("jax")
    if jax is not None and jax.distributed.is_initialized():
        sys.exit(code)
    os._exit(code)


def add_config_flags(parser: argparse.ArgumentParser, title: str = "config (every jax_reinforce.Config field)"):
    """One flag per :class:`jax_reinforce.Config` field, from :data:`jax_reinforce.config.FLAGS`.

    The flags keep the typed text (``None`` when not typed);
    :func:`config_from_args` turns them into a ``Config``, whose checks give
    the one error message for a bad value.
    """
    from jax_reinforce.config import FLAGS, Config

    defaults = Config()
    group = parser.add_argument_group(title)
    for flag in FLAGS:
        default = getattr(defaults, flag.field)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{flag.help} (default: {shown})"
        if flag.field == "stop_when_solved":
            group.add_argument(flag.flag, dest=flag.field, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:
            group.add_argument(flag.flag, dest=flag.field, default=None, metavar=flag.field.upper(), help=help_text)
    return group


def config_from_args(args):
    """The :class:`jax_reinforce.Config` of the typed config flags (the others at their defaults).

    Raises:
      ValueError: naming the field, its flag, the value and what is allowed.
    """
    from jax_reinforce.config import FLAGS, Config

    return Config.from_flags({f.field: getattr(args, f.field) for f in FLAGS if getattr(args, f.field, None) is not None})


def typed_config_fields(args) -> set[str]:
    """The :class:`jax_reinforce.Config` fields whose flags were typed."""
    from jax_reinforce.config import FLAGS

    return {f.field for f in FLAGS if getattr(args, f.field, None) is not None}


def int_flag(flag: str, low: int, high: int | None = None):
    """An argparse ``type``: an integer in ``[low, high]``, else one message naming ``flag``."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{flag} must be {allowed}; got {text!r}")
        return value

    return parse
