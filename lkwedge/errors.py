"""Errors a user can cause: the CLI turns each into one line on stderr and exit code 2."""


class InputError(Exception):
    """A path, option or pattern file the user gave us cannot be used."""
