"""Discovery of models and platforms: the built-in ones and those other packages declare.

A package adds its own to `cosim list`, `cosim run NAME` and `cosim.docgen` by declaring
entry points in its pyproject.toml:

    [project.entry-points."cosim.platforms"]
    my-board = "my_package.boards:MyBoard"        # a Platform subclass, or a module defining some
    [project.entry-points."cosim.models"]
    beeper = "my_package.beeper:Beeper"            # a Device subclass, or a module defining some
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from ._device import Device
from ._errors import CosimError, PlatformError

__all__ = ["registered_models", "load_plugins", "load_module"]

log = logging.getLogger("cosim")


def load_module(where: str) -> ModuleType:
    """A module by name (`my_package.boards`) or from a file (`path/to/boards.py`), for code that
    lives outside cosim; any failure is a one-line PlatformError naming it."""
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise PlatformError(f"{path} does not exist")
            spec = importlib.util.spec_from_file_location(f"cosim_user_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(where)
    except CosimError:
        raise
    except Exception as error:      # the user's code: any error there is theirs, said in one line
        raise PlatformError(f"cannot load {where}: {type(error).__name__}: {error}") from error


@functools.cache
def load_plugins(group: str) -> tuple[object, ...]:
    """Load every entry point of `group` once (importing it registers its platforms); one that
    fails to load is reported by name and skipped, so one broken package does not break the rest."""
    loaded = []
    for point in entry_points(group=group):
        try:
            loaded.append(point.load())
        except Exception as error:      # any import-time failure of third-party code
            log.warning("entry point %s = %s (group %s) failed to load: %s: %s", point.name, point.value, group,
                        type(error).__name__, error)
    return tuple(loaded)


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def registered_models() -> dict[str, type[Device]]:
    """Every model class in cosim.models, cosim.virtio and the `cosim.models` entry points, by its `model` name."""
    import cosim.models
    import cosim.virtio  # noqa: F401  (the virtio-mmio transport)

    for info in pkgutil.iter_modules(cosim.models.__path__):
        importlib.import_module(f"cosim.models.{info.name}")
    plugins = load_plugins("cosim.models")
    modules = {getattr(p, "__name__", "") for p in plugins if not isinstance(p, type)}
    classes = {p for p in plugins if isinstance(p, type)}
    models: dict[str, type[Device]] = {}
    for cls in _all_subclasses(Device):
        listed = cls.__module__.startswith(("cosim.models.", "cosim.virtio.")) or cls.__module__ in modules or cls in classes
        if listed and "model" in vars(cls) and cls.model:
            other = models.get(cls.model)
            if other is not None and other is not cls:
                raise PlatformError(f"two models are named {cls.model!r}: {other.__module__}.{other.__qualname__} "
                                    f"and {cls.__module__}.{cls.__qualname__}")
            models[cls.model] = cls
    return dict(sorted(models.items()))
