"""Values that pass between fetching an image and deploying it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerBlob:
    """One fetched layer, as the deploy step needs it."""

    path: Path
    """The blob file as stored (compressed or not) in the scratch OCI layout."""
    digest: str
    """`sha256:<hex>` of the blob file."""
    diff_id: str
    """`sha256:<hex>` of the uncompressed tar, from the config's `rootfs.diff_ids`."""
    media_type: str
    """OCI or Docker layer media type; tells gzip, zstd or plain tar."""
    size: int
    """Size of the blob file in bytes."""
