#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: the Debian tools the tests and demos use,
# then a virtual environment in .venv with cosim installed in editable mode.
# Sourced by scripts/demo and scripts/test; safe to run again and again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages: binutils for both guest architectures (test guests are built
# from assembly), dpkg-deb/apt for fetching guest images; gcc and linux-libc-dev
# to check the KVM bindings against <linux/kvm.h> (tests/kvm/test_uapi.py), and
# the arm64 UAPI headers for the arm64 ones (tests/kvm/test_arm64_uapi.py); the aarch64
# cross compiler builds kvm-unit-tests (tests/platforms/test_kvm_unit_tests.py); gdb-multiarch,
# which the gdb stub's tests drive (tests/debug).
debs=(binutils binutils-aarch64-linux-gnu gcc gcc-aarch64-linux-gnu linux-libc-dev linux-libc-dev-arm64-cross
      gdb-multiarch)
# The emulated Arm64 KVM host (cosim/emuhost, tests/emuhost): QEMU to boot it, mmdebstrap and cpio for its
# root file system; for its patched L1 kernel (cosim/emuhost/kernel.py, BUILD_PACKAGES) and boot check,
# a static arm64 libc for the probe and the kernel's build tools.
debs+=(qemu-system-arm mmdebstrap cpio
       libc6-dev-arm64-cross make flex bison bc libssl-dev libelf-dev xz-utils patch)
# Guest images: Debian's archive keyring (the index is verified against it); apt-utils
# and gpg build the signed local archive of tests/images.
debs+=(debian-archive-keyring apt-utils gpg gpg-agent)
# Networking (tests/net, docs/networking.md): tcpdump reads the switch's pcap captures back; the TAP
# test pings the guest from a network namespace it makes with ip.
debs+=(tcpdump iputils-ping iproute2)
# virtio-blk's end-to-end test and benchmark make ext4 images (mke2fs -d) and read them back (debugfs).
debs+=(e2fsprogs)
# cosim's patched unicorn (cosim/patched_unicorn) is built from unicorn's source release.
debs+=(cmake ninja-build)
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "cosim: installing Debian packages: ${missing[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >&2
fi

venv="$root/.venv"
stamp="$venv/.cosim-installed"
if [ ! -x "$venv/bin/python" ]; then
    echo "cosim: creating $venv" >&2
    python3 -m venv "$venv"
fi
# Re-install only when pyproject.toml changed since the last install.
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "cosim: installing cosim and its test dependencies into $venv" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    # The sweep engines (Dask, Ray) are optional for users; the tests run sweeps on both.
    "$venv/bin/python" -m pip install -q -e "$root[test,dask,ray]" >&2
    touch "$stamp"
fi
# The patched unicorn library, built once per patch into the artifact cache (~30 s; cached after).
"$venv/bin/python" -m cosim.patched_unicorn build >/dev/null
