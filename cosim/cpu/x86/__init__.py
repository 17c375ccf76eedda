"""x86-64 guests on KVM: the backend, exit handling, vCPU state and host calibration."""
