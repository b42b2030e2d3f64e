"""The one exception type for mistakes a user can fix (bad paths, keys, labels...)."""

_WORKER_PREFIX = "Caught UserError in DataLoader worker"
_ORIGINAL = "UserError: "


class UserError(Exception):
    """Raised for bad user input; the CLI prints its message on one line, without a traceback.

    A UserError raised in a DataLoader worker process reaches the main process rebuilt by
    torch from the worker's whole traceback text; the original one-line message is kept."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str) and args[0].startswith(_WORKER_PREFIX):
            text = args[0].rstrip()
            start = text.rfind(_ORIGINAL)
            line = text[start + len(_ORIGINAL):] if start >= 0 else text.splitlines()[-1]
            args = (line.strip(), *args[1:])
        super().__init__(*args)
