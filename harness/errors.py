"""Errors the CLI turns into exit codes: BadInput -> 2, anything else -> 1."""
from __future__ import annotations

import difflib
from typing import Iterable


class BadInput(Exception):
    """The user gave something the harness cannot use (a file, a name, a value).

    The message must say what is wrong and where (file, field, name)."""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> BadInput:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    msg = f"unknown {kind} '{name}'"
    if close:
        msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
    msg += f" Known {kind}s: {', '.join(known) if known else '(none)'}."
    if hint:
        msg += f" {hint}"
    return BadInput(msg)
