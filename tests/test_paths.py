"""cosim._paths: the artifact cache's place and the lock its builders share."""

import pytest

from cosim._paths import cache_dir, file_lock


def test_the_cache_is_where_the_environment_says(tmp_path, monkeypatch):
    monkeypatch.setenv("COSIM_IMAGE_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path and cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("COSIM_IMAGE_CACHE")
    assert cache_dir().parts[-3:] == (".cache", "cosim", "images")


def test_a_busy_lock_is_waited_for_then_refused_with_the_callers_error(tmp_path):
    """flock locks belong to an open file: a second opening conflicts even in one process, as
    another process's does."""
    path, said = tmp_path / "sub" / "lock", []
    with file_lock(path, 5, lambda: AssertionError("never")):
        with pytest.raises(ValueError, match="busy"):
            with file_lock(path, 0.3, lambda: ValueError("busy"), lambda: said.append("waiting")):
                pass
    assert said == ["waiting"]
    with file_lock(path, 0.3, lambda: ValueError("busy")):       # released on leaving
        pass
