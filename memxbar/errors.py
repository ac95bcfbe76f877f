"""The one exception type for bad configuration and bad input.

Every check that refuses a user's value (a study field, a device parameter, a tensor handed to a
public function, a file) raises :class:`ConfigError`, naming what is wrong, where, and what is
allowed. The command line turns exactly this type into one line and exit code 2; any other
exception is an internal error and is shown with its traceback.

This module imports nothing from memxbar, so every stage may import it.
"""


class ConfigError(ValueError):
    """A bad configuration value, file or input (a ``ValueError``, so existing handlers see it)."""
