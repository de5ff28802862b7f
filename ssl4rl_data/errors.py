"""The two kinds of failure the toolkit distinguishes. Plain exceptions: the command lines (ssl4rl-data,
train/evaluate.py) turn a UserError into one line and a non-zero exit; a library caller catches it."""


class UserError(Exception):
    """A mistake in what the user asked for (an option's value, a recipe's, a path): its message is one line."""


class SkipImage(Exception):
    """An image inside a source cannot be used; the build counts it under `reason` and goes on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
