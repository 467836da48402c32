"""Errors raised for a client's mistake while reading a scoring request.

Framework-free: the server maps `InputError` to a 400 with a JSON body, batch
code can raise it too. Codes are short snake_case words that clients can match
on; messages name the column, row or key at fault.
"""

from __future__ import annotations


class InputError(ValueError):
    """The request's payload does not fit the model's input schema."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
