"""Errors the converter raises, and the exit code each maps to on the command line."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNSUPPORTED = 3


class ConversionError(Exception):
    """The input cannot be converted (unreadable, corrupt, inconsistent). One line, names the file."""

    exit_code = EXIT_FAILURE

    def __init__(self, path, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class UnsupportedModelError(ConversionError):
    """The model uses something TF.js 4.22 cannot run, or would silently compute differently.

    `issues` lists every offending layer (`converter.support.Issue`), not just the first.
    """

    exit_code = EXIT_UNSUPPORTED

    def __init__(self, path, issues):
        self.issues = list(issues)
        layers = sorted({f"{i.layer} ({i.class_name})" for i in self.issues})
        codes = sorted({i.code for i in self.issues})
        problem = (
            f"not supported by TF.js 4.22: {len(self.issues)} issue(s) in "
            f"{', '.join(layers)} [{', '.join(codes)}]; run with --check for the table"
        )
        super().__init__(path, problem)
