"""The pytest plugin: a parametrised test matrix whose runs are farmed out to the engine in one campaign."""

import subprocess
import sys
import textwrap

import pytest

from cosim.sweep.testing import points

MATRIX = {"counting": ["block", "instruction"], "quantum": ["100us", "1ms"]}
campaigns = []


@pytest.mark.parametrize("point", points(MATRIX))
def test_each_point_of_the_matrix_gets_its_row(cosim_sweep, guests, point):
    rows = cosim_sweep({"platform": "virt", "until": "1s", "properties": {"firmware": str(guests["hello"])},
                        "matrix": MATRIX})
    campaigns.append(id(rows))
    row = rows.row(point)
    assert row.ok and row.point == point and row.console_bytes == len(b"hello\n")
    assert len(set(campaigns)) == 1                     # one campaign ran all four points


def test_points_have_readable_ids():
    assert [p.id for p in points({"a": [1, 2], "b": ["x"]})] == ["a=1-b=x", "a=2-b=x"]
    assert points({"a": [1]})[0].values == ({"a": "1"},)


def test_the_engine_option_farms_the_matrix_out_to_dask(guests, tmp_path):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    test_file = tmp_path / "test_matrix.py"
    test_file.write_text(textwrap.dedent(f"""
        import os
        import pytest
        from cosim.sweep.testing import points

        MATRIX = {{"counting": ["block", "instruction"]}}

        @pytest.mark.parametrize("point", points(MATRIX))
        def test_point(cosim_sweep, point):
            spec = {{"platform": "virt", "until": "1s", "properties": {{"firmware": {str(guests["hello"])!r}}},
                    "matrix": MATRIX}}
            row = cosim_sweep(spec).row(point)
            assert row.ok and not row.worker.endswith(f":{{os.getpid()}}")     # ran in a Dask worker
    """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file),
                           "--cosim-engine", "dask", "--cosim-workers", "1"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr
