"""The `gpaco` console script and `python -m gpaco`."""


def entry() -> None:
    """Sample the machine's load, then import and run the command (gpaco.cli.command).

    The sample comes first so that the ~3 s of imports (torch, torchvision) fill the quarter
    second that `auto` threads measures (gpaco.train.machine_load), instead of a wait."""
    from gpaco.train.machine_load import start_sample

    start_sample()
    from gpaco.cli import command

    command()


if __name__ == "__main__":
    entry()
