"""sha256_of: a digest remembered within one process is never that of an older version of the file."""

import hashlib

from cosim.images import cache
from cosim.images.cache import sha256_of


def test_a_file_rewritten_at_once_with_the_same_size_is_hashed_again(tmp_path):
    path = tmp_path / "image"
    path.write_bytes(b"A" * 4096)
    assert sha256_of(path) == hashlib.sha256(b"A" * 4096).hexdigest()
    path.write_bytes(b"B" * 4096)       # within the same timestamp tick on a coarse file system
    assert sha256_of(path) == hashlib.sha256(b"B" * 4096).hexdigest()


def test_only_files_settled_before_the_hash_are_remembered(tmp_path, monkeypatch):
    path = tmp_path / "image"
    path.write_bytes(b"kernel")
    monkeypatch.setattr(cache, "_digests", {})
    sha256_of(path)
    assert cache._digests == {}                  # just written: its times may not move on the next write
    monkeypatch.setattr(cache, "_SETTLED_NS", -10**12)   # as if written long before
    digest = sha256_of(path)
    assert list(cache._digests.values()) == [digest]
    path.write_bytes(b"patched")                 # a new version (new times): read again, not looked up
    assert sha256_of(path) == hashlib.sha256(b"patched").hexdigest()
