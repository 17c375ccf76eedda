import shutil
import subprocess
from pathlib import Path

import pytest

from cosim.kvm import kvm_unavailable


@pytest.fixture(scope="session")
def kvm_device():
    """/dev/kvm, or a skip saying why it cannot be used on this host."""
    reason = kvm_unavailable()
    if reason:
        pytest.skip(f"needs KVM: {reason}")
    return "/dev/kvm"


@pytest.fixture(scope="session")
def c_values(tmp_path_factory):
    """`c_values(headers, {name: C expression})` -> {name: value}, from a C program built with gcc.

    Skips (saying what to install) where gcc or the headers are missing.
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: install gcc to check the cffi layouts against the kernel headers")
    work = tmp_path_factory.mktemp("cprobe")

    def run(headers, expressions):
        for header in headers:
            if not Path("/usr/include", header).exists():
                pytest.skip(f"/usr/include/{header} missing: install linux-libc-dev (scripts/bootstrap.sh does)")
        lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <string.h>"]
        lines += [f"#include <{h}>" for h in headers] + ["int main(void) {"]
        for name, expr in expressions.items():
            lines.append(f'  printf("%s=%llu\\n", "{name}", (unsigned long long)({expr}));')
        lines.append("  return 0;\n}")
        source = work / f"probe{len(list(work.iterdir()))}.c"
        source.write_text("\n".join(lines))
        binary = source.with_suffix("")
        build = subprocess.run([gcc, "-o", str(binary), str(source)], capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
        return {k: int(v) for k, v in (line.split("=", 1) for line in out.splitlines())}

    return run
