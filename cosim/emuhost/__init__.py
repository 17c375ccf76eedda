"""The emulated Arm64 KVM host: owns the emulated Arm64 KVM host used to test the Arm64 KVM backend on
non-Arm machines: its root file system, L1 kernels and the runner."""
