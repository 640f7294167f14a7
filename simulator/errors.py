"""Errors a simulator user can hit; each message names the fix. The CLI prints them as one stderr line."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of the simulator's user-facing errors."""


class KeySpecError(SimulatorError):
    """A ``--keys`` script cannot be parsed."""


class DisplayUnavailableError(SimulatorError):
    """A window was asked for but no X display (or no Tk) is usable."""


class RecorderError(SimulatorError):
    """The HUD video cannot be written."""


class ReportError(SimulatorError):
    """The session report cannot be written."""
