"""The network the live system uses (interfaces, addresses, route, DNS, proxy), and whether an
image's registry answers from here.

obelisk does not configure the network: it uses what the live system brought up (DHCP by
systemd-networkd or ifupdown) and the proxy in its environment, as skopeo does. This module
says what that is, so a person can see it before an install fetches anything.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from installer.errors import UserError
from installer.image.ref import ImageRef, Transport, parse_ref
from storage import runner
from storage.errors import StorageError

PROXY_VARS = ("https_proxy", "http_proxy", "no_proxy", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")
RESOLV_CONF = Path("/etc/resolv.conf")
TIMEOUT = 8.0
DOCKER_HUB = "registry-1.docker.io"
"""Where `docker.io` references are served from."""


def _redact_url(value: str) -> str:
    """A proxy URL without its password (`http://user:pw@host` -> `http://user:***@host`)."""
    parts = urllib.parse.urlsplit(value)
    if parts.password is None:
        return value
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def proxy_lines(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    env = os.environ if env is None else env
    found = [f"{name}={_redact_url(env[name])}" for name in PROXY_VARS if env.get(name)]
    return tuple(found) or ("no proxy (no http_proxy/https_proxy in the environment)",)


def _addresses() -> tuple[str, ...]:
    try:
        raw = runner.output(["ip", "-json", "address", "show"])
        links = json.loads(raw or "[]")
    except (StorageError, ValueError):
        return ()
    lines = []
    for link in links if isinstance(links, list) else ():
        name = str(link.get("ifname", "?"))
        if name == "lo":
            continue
        state = str(link.get("operstate", "")).lower()
        addrs = [
            f"{a.get('local')}/{a.get('prefixlen')}"
            for a in link.get("addr_info") or []
            if a.get("local") and a.get("scope") == "global"
        ]
        lines.append(f"{name} ({state}): {', '.join(addrs) or 'no address'}")
    return tuple(lines)


def _route() -> str:
    try:
        routes = json.loads(runner.output(["ip", "-json", "route", "show", "default"]) or "[]")
    except (StorageError, ValueError):
        return ""
    for route in routes if isinstance(routes, list) else ():
        if route.get("gateway"):
            return f"default route via {route['gateway']} ({route.get('dev', '?')})"
    return "no default route"


def _dns() -> str:
    try:
        lines = RESOLV_CONF.read_text().splitlines()
    except OSError:
        return ""
    servers = [
        line.split()[1] for line in lines if line.startswith("nameserver ") and line.split()[1:]
    ]
    return f"DNS {', '.join(servers)}" if servers else "no DNS server in /etc/resolv.conf"


def describe() -> tuple[str, ...]:
    """What the live system's network is, one line per interface, then route, DNS and proxy."""
    lines = list(_addresses()) or ["no network interface besides lo"]
    lines += [x for x in (_route(), _dns()) if x]
    lines += proxy_lines()
    return tuple(lines)


def _registry_url(ref: ImageRef, tls_verify: bool) -> str:
    host = ref.registry or "docker.io"
    if host == "docker.io":
        host = DOCKER_HUB
    # skopeo with TLS verification off may use plain HTTP; the test registries do.
    scheme = "https" if tls_verify else "http"
    return f"{scheme}://{host}/v2/"


def check_reachable(ref_text: str, *, tls_verify: bool = True) -> str:
    """One sentence on whether the image's source is reachable from here.

    A registry answers `/v2/` with 200 or 401 (login needed) when it is one; anything else
    raises `UserError` with the reason. Local transports need no network.
    """
    ref = parse_ref(ref_text)
    if ref.transport is not Transport.DOCKER:
        return f"No network needed: {ref.transport} images are read from this machine."
    url = _registry_url(ref, tls_verify)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach {url}: {reason}") from None
    if status in (200, 401):
        login = " (it asks for a login)" if status == 401 else ""
        return f"Reached the registry at {url}{login}."
    raise UserError(f"{url} answered HTTP {status}: not a container registry")


__all__ = ["check_reachable", "describe", "proxy_lines"]
