"""Sweep specs: the matrix they expand to, and one clear FILE:LINE error for each mistake."""

import pytest

from cosim import MS, SEC
from cosim.sweep import SpecError, load_spec

GOOD = """\
platform = "virt"
until = "1s"
[properties]
console = "buffer"
[matrix]
quantum = ["100us", "1ms"]
counting = ["block", "instruction"]
ram_size = ["64M", "128M", "256M"]
[[script]]
expect = "=> "
send = "version\\n"
[[script]]
expect = "=> "
timeout = "5 s"
"""


def test_the_matrix_is_the_cross_product_in_declared_order(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(GOOD)
    spec = load_spec(path)
    assert spec.platform == "virt" and len(spec.runs) == 12
    assert [run.index for run in spec.runs] == list(range(12))
    assert spec.runs[0].point == {"quantum": "100us", "counting": "block", "ram_size": "64M"}
    assert spec.runs[1].point == {"quantum": "100us", "counting": "block", "ram_size": "128M"}
    assert spec.runs[11].point == {"quantum": "1ms", "counting": "instruction", "ram_size": "256M"}
    assert spec.runs[5].properties == {"console": "buffer", "quantum": "100us", "counting": "instruction",
                                       "ram_size": "256M"}
    assert all(run.until == SEC for run in spec.runs)
    first, second = spec.runs[0].script
    assert (first.expect, first.send, first.timeout) == ("=> ", "version\n", None)
    assert (second.expect, second.send, second.timeout) == ("=> ", "", 5 * SEC)


def test_a_dict_spec_and_no_matrix_give_one_run():
    spec = load_spec({"platform": "demo", "until": "30 ms", "properties": {"ticks": 2}})
    assert len(spec.runs) == 1 and spec.runs[0].properties == {"ticks": "2"} and spec.runs[0].until == 30 * MS
    assert spec.source == "<spec>"


def test_a_guest_beside_the_spec_is_found_from_any_directory(tmp_path, monkeypatch):
    (tmp_path / "guest.bin").write_bytes(b"\0" * 4)
    (tmp_path / "spec.toml").write_text('platform = "virt"\n[matrix]\nfirmware = ["guest.bin", "none"]\n')
    monkeypatch.chdir("/")
    runs = load_spec(tmp_path / "spec.toml").runs
    assert runs[0].point == {"firmware": "guest.bin"}                        # shown as written
    assert runs[0].properties["firmware"] == str(tmp_path / "guest.bin")     # run where workers find it
    assert runs[1].properties["firmware"] == "none"


@pytest.mark.parametrize("text, message", [
    ('platform = "virt"\nuntil = 1\n', "spec.toml:2: 'until' must be a time with its unit"),
    ('platform = "virt"\nuntil = "3 parsecs"\n', "spec.toml:2: until = '3 parsecs': unknown time unit 'parsecs'"),
    ('platform = "nope"\n', "spec.toml:1: unknown platform 'nope'; known: "),
    ('until = "1s"\n', "spec.toml: 'platform' must name a platform"),
    ('platform = "virt"\nplatfrom = "pc"\n', "spec.toml:2: unknown key 'platfrom'; known: platform, until"),
    ('platform = "virt"\n[matrix]\nquantom = ["1ms"]\n', "spec.toml:3: platform 'virt' has no property 'quantom'"),
    ('platform = "virt"\n[matrix]\nquantum = "1ms"\n', "spec.toml:3: matrix 'quantum' must be a non-empty list"),
    ('platform = "virt"\n[matrix]\nquantum = []\n', "spec.toml:3: matrix 'quantum' must be a non-empty list"),
    ('platform = "virt"\n[matrix]\nquantum = ["1ms", "1ms"]\n', "spec.toml:3: matrix 'quantum' lists a value twice"),
    ('platform = "virt"\n[matrix]\nquantum = ["1 ms", "2 furlongs"]\n',
     "spec.toml:3: property quantum='2 furlongs': unknown time unit 'furlongs'"),
    ('platform = "virt"\n[properties]\nram_size = "lots"\n', "spec.toml:3: property ram_size='lots': cannot read"),
    ('platform = "virt"\n[properties]\nram_size = 1.5\n', "spec.toml:3: property 'ram_size': expected a string"),
    ('platform = "virt"\n[properties]\nquantum = "1ms"\n[matrix]\nquantum = ["2ms"]\n',
     "spec.toml:5: property 'quantum' is both fixed in [properties] and swept in [matrix]"),
    ('platform = "virt"\n[properties]\nconsole = "stdio"\n', "spec.toml:3: a sweep captures each run's console"),
    ('platform = "virt"\n[matrix]\nconsole = ["none", "buffer"]\n', "spec.toml:3: a sweep captures each run's console"),
    ('platform = "virt"\nwall_limit = 0\n', "spec.toml:2: 'wall_limit' must be a positive number of seconds"),
    ('platform = "virt"\n[[script]]\nexpct = "=> "\n', "spec.toml:3: script step 1: unknown key 'expct'"),
    ('platform = "virt"\n[[script]]\ntimeout = "1s"\n', "spec.toml:2: script step 1: give 'expect'"),
    ('platform = "virt"\n[[script]]\nexpect = "=> "\ntimeout = "soon"\n', "spec.toml:4: timeout = 'soon'"),
    ('platform = "demo"\n[[script]]\nexpect = "x"\n', "spec.toml:2: a console script needs a console; platform "
                                                     "'demo' has none"),
    ('platform = "virt"\n[properties]\nconsole = "none"\n[[script]]\nsend = "x"\n',
     "spec.toml:4: a console script needs a console; platform 'virt' has console = 'none'"),
    ('platform = "virt"\n[matrix\n', "spec.toml:2: not valid TOML: "),
    ('platform = "virt"\nuntil = "1s"\nuntil = "2s"\n', "spec.toml:3: not valid TOML: Cannot overwrite a value"),
])
def test_spec_errors_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(error.value).startswith(str(tmp_path / message.split(":", 1)[0]) + ":")
    assert message.split(":", 1)[1] in str(error.value) and "\n" not in str(error.value)


def test_a_missing_spec_file_is_one_line(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.toml: cannot read the sweep spec: No such file"):
        load_spec(tmp_path / "nope.toml")


def test_the_specs_in_the_guide_are_valid(tmp_path):
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "sweeps.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", guide, re.S)
    assert len(blocks) == 2
    for number, text in enumerate(blocks):
        path = tmp_path / f"guide{number}.toml"
        path.write_text(text)
        assert load_spec(path).runs
