"""What containers-policy.json(5) requires of an image, for sources read without `skopeo copy`.

skopeo 1.9's image proxy (protocol 0.2.3) opens images without consulting the policy, and
reading a local layout in place does not either. So `fetch` asks here first: an image the
policy accepts as it is (`insecureAcceptAnything`) is streamed; one it rejects is refused; one
that needs a signature check (`signedBy`, `sigstoreSigned`, anything else) goes through
`skopeo copy`, which verifies it exactly as before.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

from installer.errors import UserError
from installer.image.ref import ImageRef, Transport

SYSTEM_POLICY = Path("/etc/containers/policy.json")


class Requirement(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    VERIFY = "verify"
    """Anything but plain accept/reject: only `skopeo copy` can check it."""


def policy_file() -> Path:
    """`$HOME/.config/containers/policy.json` where it exists, else the system one (as skopeo)."""
    home = os.environ.get("HOME")
    if home:
        user = Path(home) / ".config" / "containers" / "policy.json"
        if user.is_file():
            return user
    return SYSTEM_POLICY


def requirement(ref: ImageRef, path: Path | None = None) -> Requirement:
    """The policy's verdict for `ref`; a missing policy file means VERIFY (skopeo then fails
    with its own message, as it always did)."""
    where = path or policy_file()
    try:
        policy = json.loads(where.read_text())
    except FileNotFoundError:
        return Requirement.VERIFY
    except (OSError, ValueError) as exc:
        raise UserError(f"{where}: not a readable containers policy ({exc})") from exc
    if not isinstance(policy, dict):
        raise UserError(f"{where}: not a containers policy (expected a JSON object)")
    scopes = (policy.get("transports") or {}).get(str(ref.transport)) or {}
    entries = None
    if isinstance(scopes, dict):
        for scope in _scopes(ref):
            if scope in scopes:
                entries = scopes[scope]
                break
        else:
            entries = scopes.get("")
    if entries is None:
        entries = policy.get("default")
    if not isinstance(entries, list) or not entries:
        return Requirement.VERIFY
    kinds = {e.get("type") if isinstance(e, dict) else None for e in entries}
    if "reject" in kinds:
        return Requirement.REJECT
    if kinds == {"insecureAcceptAnything"}:
        return Requirement.ACCEPT
    return Requirement.VERIFY


def _scopes(ref: ImageRef) -> list[str]:
    """The scopes that may name `ref`, most specific first (containers-policy.json(5))."""
    if ref.transport is Transport.DOCKER:
        reference = ref.reference
        if ref.registry == "docker.io" and not reference.startswith("docker.io/"):
            name = reference if "/" in reference.split(":")[0] else f"library/{reference}"
            reference = f"docker.io/{name}"
        repo = reference.split("@", 1)[0]
        head, _, tail = repo.rpartition(":")
        if head and "/" not in tail:
            repo = head
        found = [reference] if reference != repo else []
        parts = repo.split("/")
        found += ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
        host = parts[0].split(":")[0]
        labels = host.split(".")
        found += ["*." + ".".join(labels[n:]) for n in range(1, len(labels))]
        return found
    if ref.path is None:
        return []
    absolute = Path(os.path.abspath(ref.path))
    found = []
    if ref.transport is Transport.OCI and ":" in ref.reference:
        found.append(f"{absolute}:{ref.reference.split(':', 1)[1]}")
    found += [str(absolute), *(str(p) for p in absolute.parents)]
    return found
