"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class S30Error(Exception):
    """An error the user can act on; the CLI prints ``error: <message>`` and exits with
    :attr:`exit_code` instead of showing a traceback."""

    exit_code = 1


class UsageError(S30Error):
    """Bad command-line input: unknown paper, experiment, key, or a value of the wrong type."""

    exit_code = 2


class DataMissingError(S30Error):
    """A dataset is not in the data directory; the message names the folder and the fetch
    command."""


class DataCorruptError(S30Error):
    """A data file exists but fails its checksum or cannot be parsed."""


class DivergenceError(S30Error):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


class CheckpointError(S30Error):
    """A checkpoint cannot be read (corrupt, truncated or from another config)."""
