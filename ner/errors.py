"""The package's own error types.

Every problem with user input (a data file, a config key, an encoder handle) is raised as a subclass of
`NerError` whose message names the file, line or key and says what was expected, so the command-line
entry points can print one clear line instead of a traceback.
"""


class NerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(NerError):
    """A configuration file or override is missing, malformed, or has an unknown or invalid key."""


class DataError(NerError):
    """A data file is missing, empty, malformed, or holds values outside the expected set."""


class EncoderError(NerError):
    """An encoder handle cannot be loaded or does not have the TF-Hub BERT encoder interface."""
