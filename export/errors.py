"""Errors a user of glasses-export can hit; the CLI prints them as one line and exits non-zero."""


class ExportError(Exception):
    """Bad input to an export step: the message names the problem and the fix."""


class BackendUnavailable(ExportError):
    """A backend's toolchain is not installed here; the message says what to install."""


class VerificationFailed(ExportError):
    """An exported model disagrees with eager PyTorch beyond the threshold."""
