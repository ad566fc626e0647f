"""Demo and test tooling (demo image, local registry, QEMU): never imported by the product path.

An import-linter contract keeps it so; only the `obelisk demo` command reaches in here.
"""
