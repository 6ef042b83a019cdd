"""Exceptions with messages meant for a radiologist or a data manager."""

from __future__ import annotations


class AISError(Exception):
    """Base class: a specific, user-facing problem (names the file and the cause)."""


class ImageReadError(AISError):
    """A file could not be read as an image."""


class InputError(AISError):
    """Input that is readable but wrong (inconsistent, ambiguous or unphysical)."""


class UnitError(InputError):
    """ADC values fit no known unit."""
