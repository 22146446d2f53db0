"""Exceptions that carry a one-line, user-facing message."""

from __future__ import annotations

from pathlib import Path


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
