"""The package version (one place: the package, the run folder's environment and the CLI read it)."""

__version__ = "0.1.0"
