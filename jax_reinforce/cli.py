"""Command-line plumbing shared by the scripts: one-line errors, exit code 2.

Bad input must end in a single line naming the flag, the value and what is
allowed, with exit code 2 and no traceback. argparse prints a usage block and
says some things twice; :class:`OneLineParser` turns every argparse error
into a :class:`UsageError` with a single clean sentence instead.
"""

from __future__ import annotations

import argparse
import difflib
import re

__all__ = ["EXIT_BAD_INPUT", "UsageError", "OneLineParser", "clean_argparse_message"]

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
