"""Guest images: the Debian packages the Arm64 guests boot (U-Boot, kernels, busybox),
resolved through the signed archive index by what they are rather than by one build,
checked against the project's known-good pins where those builds are still offered,
and kept in a cache that works offline (`fetch`: what the images are; `archive`: apt
in a private configuration; `cache`: the on-disk layout and its lock; `initramfs`:
the demo's root file system written from Python).
"""
