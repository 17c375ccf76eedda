"""What `cosim run virt-linux` loads: only what a boot on the software CPU uses (numpy, the KVM UAPI's cffi
definitions, the sweep engines and pyelftools load on first use), and every public name still resolves."""

import subprocess
import sys

import pytest


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    result = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_a_unicorn_platform_loads_no_kvm_numpy_sweep_or_elftools():
    loaded = loaded_after("import cosim.cli, cosim.platforms, cosim.images.fetch\n"
                          "from cosim.platforms.virt import VirtLinux")
    assert "cosim" in loaded and "cosim.platforms.virt" in loaded
    heavy = {"numpy", "cffi", "cosim.kvm._uapi", "cosim.kvm._system", "cosim.kvm._budget", "cosim.kvm._arm64",
             "cosim.cpu.arm64.kvm_timer", "cosim.sweep._campaign", "cosim.sweep._engines", "elftools"}
    assert not heavy & loaded


@pytest.mark.parametrize("package", ["cosim", "cosim.kvm", "cosim.sweep"])
def test_every_public_name_resolves(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)


def test_lazy_names_are_the_submodules_own():
    import cosim.kvm
    from cosim.kvm import _budget, _system, _uapi
    from cosim.sweep import Row, load_spec, sweep
    from cosim.sweep import _run, _spec

    assert cosim.kvm.Kvm is _system.Kvm and cosim.kvm.Cap is _uapi.Cap
    assert cosim.kvm.SOURCE_NAMES is _budget.SOURCE_NAMES
    assert Row is _run.Row and load_spec is _spec.load_spec
    import cosim

    assert cosim.sweep is sweep


@pytest.mark.parametrize("package", ["cosim.kvm", "cosim.sweep"])
def test_an_unknown_name_is_an_attribute_error(package):
    import importlib

    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        getattr(module, "nonesuch")


def test_memory_array_is_a_view_of_guest_memory():
    from cosim import Memory

    ram = Memory("ram", 0x1000)
    ram.write(0x10, 4, 0xDEADBEEF)
    assert ram.array[0x10:0x14].tolist() == [0xEF, 0xBE, 0xAD, 0xDE]
    ram.array[0x20] = 7
    assert ram.read(0x20, 1) == 7
