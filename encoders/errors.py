"""The one error type for bad input files and arrays."""

from __future__ import annotations

import os

ARRAY_NAME = "<array>"  # how an in-memory input is named in error messages


class InputFileError(ValueError):
    """An input (file or array) that cannot be read as the expected modality.

    The message always names the input: the file path, or ``"<array>"`` for in-memory data, e.g.
    ``cannot read audio file 'x.wav': <reason>``.
    """

    def __init__(self, kind: str, source: str | os.PathLike | None, reason: str):
        self.kind = kind  # "audio" or "image"
        self.path = ARRAY_NAME if source is None else os.fspath(source)
        self.reason = reason
        what = f"{kind} array" if source is None else f"{kind} file"
        super().__init__(f"cannot read {what} {self.path!r}: {reason}")

    def __reduce__(self):  # keep the exception picklable (DataLoader workers send errors across processes)
        source = None if self.path == ARRAY_NAME else self.path
        return (type(self), (self.kind, source, self.reason))


def check_readable_file(kind: str, path: str) -> None:
    """Raise InputFileError naming `path` if it is missing, a directory, or empty."""
    if not os.path.exists(path):
        raise InputFileError(kind, path, "no such file")
    if os.path.isdir(path):
        raise InputFileError(kind, path, "is a directory")
    if os.path.getsize(path) == 0:
        raise InputFileError(kind, path, "the file is empty (0 bytes)")
