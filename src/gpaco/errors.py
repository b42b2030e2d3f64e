"""The one exception type for mistakes a user can fix (bad paths, keys, labels...)."""


class UserError(Exception):
    """Raised for bad user input; the CLI prints its message on one line, without a traceback."""
