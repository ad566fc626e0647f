"""Disks for obelisk: discovery, partitioning, filesystems, loop devices and mounts.

Never imports Textual and never prints; every failure is a `StorageError`.
"""

from storage.errors import StorageError

__all__ = ["StorageError"]
