"""Values that pass between fetching an image and deploying it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerBlob:
    """One layer of a fetched image, as the deploy step needs it.

    Its bytes come from `opener` (a blob read in place, e.g. inside an oci-archive), else from
    `path`. A layer `from_record` has neither: it was applied before and is rebuilt from its
    layer record (`installer.composefs.records`), so it was not fetched at all.
    """

    digest: str
    """`sha256:<hex>` of the blob."""
    diff_id: str
    """`sha256:<hex>` of the uncompressed tar, from the config's `rootfs.diff_ids`."""
    media_type: str
    """OCI or Docker layer media type; tells gzip, zstd or plain tar."""
    size: int
    """Size of the blob in bytes."""
    path: Path | None = None
    """The blob file: in the scratch layout, or in the source OCI layout itself."""
    opener: Callable[[], BinaryIO] | None = field(default=None, compare=False, repr=False)
    from_record: bool = False

    def open(self) -> BinaryIO:
        """A fresh reader of the blob from its first byte (each pass over a layer opens one)."""
        if self.opener is not None:
            return self.opener()
        if self.path is not None:
            return self.path.open("rb")
        raise FileNotFoundError(f"layer {self.digest} was not fetched (it has a layer record)")

    @property
    def where(self) -> str:
        """Where the bytes come from, for messages."""
        return str(self.path) if self.path is not None else f"blob {self.digest}"
