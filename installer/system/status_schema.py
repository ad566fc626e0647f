"""The published shape of `obelisk status --json` (installer/data/status.schema.json).

A pydantic model, so the schema file is generated from it and a test validates real output.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BootCount(_Strict):
    state: Literal["good", "trying", "failed", "none"] = Field(
        description="good: no counter (blessed or known good); trying: tries left; "
        "failed: none left, systemd-boot skips it; none: no boot entry"
    )
    tries_left: int | None = Field(description="systemd-boot tries left, null without a counter")


class DeploymentJson(_Strict):
    id: str = Field(pattern="^[0-9a-f]{64}$", description="the composefs image id")
    image: str | None = Field(description="the reference it was deployed from")
    track: str | None = Field(description="the reference `upgrade` follows")
    manifest_digest: str | None
    version: str | None = Field(description="os-release VERSION_ID, or the image's version label")
    title: str | None = Field(description="os-release PRETTY_NAME")
    deployed_at: str | None = Field(description="ISO 8601, UTC")
    pinned: bool
    boot: BootCount
    entry: str | None = Field(description="its boot entry file on the ESP")
    roles: list[Literal["booted", "next-boot", "rollback"]]


class StatusJson(_Strict):
    version: Literal[1]
    booted: str | None = Field(description="the running deployment; null when offline (--disk)")
    next_boot: str | None
    rollback: str | None = Field(description="what boots if the next boot fails its tries")
    track: str | None = Field(description="the image reference `upgrade` follows")
    keep: int = Field(ge=1, description="keep the newest N deployments plus the pinned ones")
    deployments: list[DeploymentJson] = Field(description="newest first")


def json_schema() -> dict[str, Any]:
    schema: dict[str, Any] = StatusJson.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://obelisk.invalid/status.schema.json"
    return schema
