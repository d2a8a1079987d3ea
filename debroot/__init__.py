"""Debian root filesystems built with debootstrap, without pulling any image.

Shared by the Docker plugin's packaging script (driver/build_plugin.py) and the end-to-end test
harness (tests/e2e). The mirror is always taken from this machine's apt sources at run time.
"""
