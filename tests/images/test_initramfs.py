"""The newc writer, read back by an independent parser (buffer-format.rst), and the demo's recipe."""

import stat

import pytest

from cosim.images.initramfs import BANNER, Entry, busybox_initramfs, newc, recipe_digest


def parse(archive: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    entries, at = [], 0
    while True:
        assert at % 4 == 0 and archive[at:at + 6] == b"070701", f"bad header at {at}"
        fields = [int(archive[at + 6 + 8 * i:at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name = archive[at + 110:at + 110 + namesize - 1].decode()
        assert archive[at + 110 + namesize - 1] == 0
        data_at = at + 110 + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            assert data_at == len(archive)
            return entries
        entries.append((name, mode, archive[data_at:data_at + size], (rmaj, rmin)))
        at = data_at + size + (-size % 4)


def test_entries_round_trip_with_padding():
    archive = newc([Entry("d", stat.S_IFDIR | 0o755), Entry("d/f", stat.S_IFREG | 0o644, b"abcde"),
                    Entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3))])
    assert parse(archive) == [("d", stat.S_IFDIR | 0o755, b"", (0, 0)), ("d/f", stat.S_IFREG | 0o644, b"abcde", (0, 0)),
                              ("dev/null", stat.S_IFCHR | 0o666, b"", (1, 3))]


def test_absolute_paths_are_rejected():
    with pytest.raises(ValueError, match="'/init'"):
        newc([Entry("/init", stat.S_IFREG)])


def test_busybox_root_file_system(tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake busybox")
    files = {name: (mode, data, rdev) for name, mode, data, rdev in parse(busybox_initramfs(busybox))}
    assert files["bin/busybox"][1] == b"\x7fELF fake busybox" and files["bin/busybox"][0] & 0o111
    assert stat.S_ISLNK(files["init"][0]) and files["init"][1] == b"bin/busybox"
    assert stat.S_ISCHR(files["dev/console"][0]) and files["dev/console"][2] == (5, 1)
    assert b"::sysinit:/etc/init.d/rcS" in files["etc/inittab"][1]
    rcs = files["etc/init.d/rcS"][1].decode()
    assert "mount -t proc proc /proc" in rcs and "mount -t sysfs sysfs /sys" in rcs and BANNER in rcs
    assert all(stat.S_ISDIR(files[d][0]) for d in ("proc", "sys", "dev", "bin"))


def test_cached_archive_name_follows_its_inputs():
    assert recipe_digest("a" * 64) != recipe_digest("b" * 64)
    assert recipe_digest("a" * 64) == recipe_digest("a" * 64)
