"""The installed layout: cosim, cosim.models and cosim.platforms, never a bare `models`."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    assert found == listed


def test_models_and_platforms_import_under_cosim():
    import cosim.models
    import cosim.platforms

    assert Path(cosim.models.__file__).parent == ROOT / "models"
    assert Path(cosim.platforms.__file__).parent == ROOT / "platforms"
