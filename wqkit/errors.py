"""The one exception type users see: a one-line message, never a traceback."""


class WqkitError(Exception):
    """A failure the user can act on; the CLI prints it on one line and exits non-zero."""


class LabError(WqkitError):
    """The lab VM failed: it did not boot, crashed, or stopped answering."""


class LabCrash(LabError):
    """The guest kernel panicked or oopsed; the message carries the last console lines."""


class CommandTimeout(WqkitError):
    """A command on the target ran past its timeout and was killed."""


class LabTimeout(LabError, CommandTimeout):
    """A guest command (or the boot) ran past its timeout and was killed."""
