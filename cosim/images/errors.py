"""The one error the image subsystem raises."""

from cosim._errors import CosimError

__all__ = ["ImageError"]


class ImageError(CosimError):
    """A guest image could not be fetched or failed its check; the message says what to do."""
