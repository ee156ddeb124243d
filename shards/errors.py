"""The one exception for a user's mistake: bad flags, bad files, a run dir that does not fit.

Every command's ``__main__`` catches it and prints its message as one line (exit 2); the message names
the file or flag and the fix. Program bugs raise anything else and keep their tracebacks.
"""


class UsageError(Exception):
    """A user's mistake; the message names the file or flag and says how to fix it."""
