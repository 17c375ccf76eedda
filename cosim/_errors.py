"""Errors a user of cosim can meet, each saying what went wrong and where."""

from __future__ import annotations

__all__ = ["CosimError", "PlatformError", "ModelError", "SimulationError"]


class CosimError(Exception):
    """Base of every error cosim reports as one clear line (the CLI prints `str(error)`)."""


class PlatformError(CosimError):
    """The platform description is wrong: overlap, unknown property, wiring mistake..."""


class ModelError(CosimError):
    """A device model raised while serving an access; names the model, register and time."""

    def __init__(self, model: str, where: str, time: int | None, cause: BaseException) -> None:
        from ._time import format_time

        at = f" at {format_time(time)}" if time is not None else ""
        super().__init__(f"model {model!r} failed in {where}{at}: {type(cause).__name__}: {cause}")
        self.model = model
        self.where = where
        self.time = time
        self.__cause__ = cause


class SimulationError(CosimError):
    """The simulation cannot go on (a guest crashed, a backend failed)."""
