"""Exceptions that carry a one-line, user-facing message."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class InputError(ValueError):
    """An input that cannot be analysed, with the file and the problem in one line.

    Parameters
    ----------
    path : str or Path
        The file or folder the problem is about (never a patient identifier).
    problem : str
        What is wrong, in words a radiographer understands.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def error_line(error: BaseException | str) -> str:
    """One line saying what went wrong (an InputError already names the file and the problem).

    Only the first line of a message is kept: some libraries put whole reports, or header values,
    on the lines after it.
    """
    first_line = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, (str, InputError)):
        return first_line
    if isinstance(error, ValidationError):
        return f"{type(error).__name__}: {error.title}: {validation_problems(error)}"
    return f"{type(error).__name__}: {first_line}"


def validation_problems(error: ValidationError) -> str:
    """The fields a pydantic ``ValidationError`` names and why, in one line (never the values given)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(whole)'}: {e['msg']}" for e in error.errors())
