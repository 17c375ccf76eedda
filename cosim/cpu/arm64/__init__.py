"""Arm64 CPU backends: unicorn (software, any host) and KVM (Arm64 hosts), with what they share."""

# How the software CPU counts instructions (UnicornArm64Cpu(counting=...), virt's `counting`).
COUNTING_MODES = ("block", "instruction")
