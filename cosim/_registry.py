"""Discovery of the built-in models and platforms for `cosim list`."""

from __future__ import annotations

import importlib
import pkgutil

from ._device import Device
from ._errors import PlatformError

__all__ = ["registered_models"]


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def registered_models() -> dict[str, type[Device]]:
    """Every model class in cosim.models by its `model` name."""
    import cosim.models

    for info in pkgutil.iter_modules(cosim.models.__path__):
        importlib.import_module(f"cosim.models.{info.name}")
    models: dict[str, type[Device]] = {}
    for cls in _all_subclasses(Device):
        if cls.__module__.startswith("cosim.models.") and "model" in vars(cls) and cls.model:
            other = models.get(cls.model)
            if other is not None and other is not cls:
                raise PlatformError(f"two models are named {cls.model!r}: {other.__module__}.{other.__qualname__} "
                                    f"and {cls.__module__}.{cls.__qualname__}")
            models[cls.model] = cls
    return dict(sorted(models.items()))
