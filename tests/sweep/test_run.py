"""One run: `run_one` turns a Run into a Row, whatever the guest does; the cache key follows what decides it."""

import hashlib

import pytest

from cosim import MS, SEC
from cosim.sweep import load_spec, run_key, run_one


def one(**spec):
    return load_spec({"platform": "virt", **spec}).runs[0]


def test_a_guest_that_powers_off_is_ok_with_its_console_hashed(guests):
    row = run_one(one(until="1s", properties={"firmware": str(guests["hello"])}))
    assert row.outcome == "ok" and row.status == 0 and "SYSTEM_OFF" in row.stop_reason
    assert row.console_sha256 == hashlib.sha256(b"hello\n").hexdigest() and row.console_bytes == 6
    assert row.console is None and row.error == "" and row.instructions > 0 and 0 < row.sim_time < MS
    assert row.summary["cpu0 instructions"] == f"{row.instructions:,}"
    assert not any(key.endswith("MIPS") for key in row.summary)        # wall-derived: not part of a result


def test_a_guest_exit_status_is_a_failed_run_with_its_log_and_results(guests):
    row = run_one(one(until="1s", keep_console=True, properties={"firmware": str(guests["simctl"])}))
    assert row.outcome == "failed" and row.status == 3
    assert row.error == "exit status 3: guest wrote 0x3 to simctl SIMCTL_EXIT"
    assert row.log == "hello from the guest\n" and row.console == ""
    assert row.summary["simctl test results"] == "2 passed, 1 failed (#3: code 0x5)"


def test_the_run_bound_and_the_wall_limit(guests):
    bounded = run_one(one(until="3 ms", properties={"firmware": str(guests["spin"])}))
    assert bounded.outcome == "ok" and bounded.sim_time == 3 * MS and bounded.stop_reason == "until 3 ms"
    assert bounded.status is None and bounded.instructions >= 3_000_000 * 0.99
    limited = run_one(one(wall_limit=0.3, properties={"firmware": str(guests["spin"])}))
    assert limited.outcome == "timeout" and limited.stop_reason == "wall limit 0.3 s"
    assert limited.error.startswith("wall limit of 0.3 s reached at ") and 0.3 <= limited.wall_time < 5


def test_errors_building_or_running_are_outcomes_not_exceptions(tmp_path):
    missing = run_one(one(properties={"firmware": str(tmp_path / "absent.bin")}))
    assert missing.outcome == "error" and missing.error == f"firmware image {tmp_path / 'absent.bin'} does not exist"
    zeros = tmp_path / "zeros.bin"
    zeros.write_bytes(bytes(64))                # UDF at every vector: an exception loop
    stuck = run_one(one(until="1s", properties={"firmware": str(zeros)}))
    assert stuck.outcome == "error" and stuck.error.startswith("cpu0: guest stuck in an exception loop")


def test_a_script_marker_not_seen_fails_the_run_naming_the_step(guests):
    script = [{"expect": "hello"}, {"expect": "goodbye", "timeout": "5 ms"}]
    row = run_one(one(until="1s", properties={"firmware": str(guests["hello"])}, script=script))
    assert row.outcome == "failed" and row.status == 0
    assert row.error.startswith("console script step 2: 'goodbye' the guest stopped first (guest called PSCI")
    assert row.error.endswith("output ends 'hello\\\\n'")
    spin = run_one(one(until="1s", properties={"firmware": str(guests["spin"])}, script=[{"expect": "x",
                                                                                             "timeout": "2 ms"}]))
    assert spin.outcome == "failed" and spin.sim_time == 2 * MS and spin.stop_reason == "script step 1 timed out at 2 ms"
    assert spin.error.startswith("console script step 1: 'x' not seen by 2 ms")


def test_a_script_drives_uboot_to_its_prompt_and_a_command():
    from cosim.images.fetch import ImageError, uboot_image

    try:
        uboot_image()
    except ImageError as error:
        pytest.skip(f"U-Boot image not available: {error}")
    script = [{"expect": "Hit any key", "send": "\n"}, {"expect": "=> ", "send": "version\n"}, {"expect": "=> "}]
    row = run_one(one(until="5s", keep_console=True, script=script))
    assert row.outcome == "ok" and row.stop_reason == "console script done" and row.sim_time < SEC
    after = row.console.split("=> version", 1)[1]
    assert "U-Boot 2023.01" in after and after.endswith("=> ")


def test_the_cache_key_follows_image_contents_properties_and_bound(guests, tmp_path):
    image = tmp_path / "guest.bin"
    image.write_bytes(guests["hello"].read_bytes())
    base = one(until="1s", properties={"firmware": str(image)})
    copy = tmp_path / "copy.bin"
    copy.write_bytes(image.read_bytes())
    assert run_key(base) == run_key(one(until="1s", properties={"firmware": str(image)}))
    assert run_key(base) != run_key(one(until="2s", properties={"firmware": str(image)}))
    assert run_key(base) != run_key(one(until="1s", properties={"firmware": str(image), "quantum": "2ms"}))
    # An image counts by its contents, not its name: a copy elsewhere has the same key, new contents a new one.
    assert run_key(base) == run_key(one(until="1s", properties={"firmware": str(copy)}))
    key = run_key(base)
    image.write_bytes(guests["simctl"].read_bytes())
    assert run_key(base) != key


@pytest.mark.slow
def test_a_script_drives_linux_to_a_shell_command():
    from cosim.images.fetch import ImageError, busybox_initramfs_image, linux_kernel

    try:
        linux_kernel(), busybox_initramfs_image()
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")
    script = [{"expect": "/root # ", "send": "echo sum $((6 * 7))\n"}, {"expect": "sum 42", "timeout": "5 s"}]
    row = load_spec({"platform": "virt-linux", "until": "30 s", "script": script, "wall_limit": 300}).runs[0]
    done = run_one(row)
    assert done.outcome == "ok" and done.stop_reason == "console script done", done.error
    assert SEC / 4 < done.sim_time < 10 * SEC and done.instructions > 10**8
