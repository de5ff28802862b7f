"""The two kinds of failure the toolkit distinguishes."""

import click


class UserError(click.ClickException):
    """A mistake in what the user asked for: reported as one line, non-zero exit, no traceback."""


class SkipImage(Exception):
    """An image inside a source cannot be used; the build counts it under `reason` and goes on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
