"""The network statement and the registry reachability test, against real registries."""

from __future__ import annotations

import pytest

from installer import net
from installer.errors import UserError
from tests.registry import Registry, free_port


def test_a_registry_is_reached_and_one_asking_for_a_login_too(
    registry: Registry, auth_registry: Registry
) -> None:
    text = net.check_reachable(registry.url("any:1"), tls_verify=False)
    assert text == f"Reached the registry at http://{registry.host}/v2/."
    text = net.check_reachable(f"{auth_registry.host}/any:1", tls_verify=False)
    assert text.endswith("(it asks for a login).")


def test_a_closed_port_is_a_clear_error() -> None:
    with pytest.raises(UserError, match=r"^cannot reach http://127\.0\.0\.1:\d+/v2/: "):
        net.check_reachable(f"docker://127.0.0.1:{free_port()}/os:1", tls_verify=False)


def test_local_sources_need_no_network() -> None:
    assert net.check_reachable("oci:/srv/images/os:1").startswith("No network needed: oci")


def test_the_statement_names_interfaces_and_the_proxy_without_its_password() -> None:
    lines = net.describe()
    assert lines and lines[-1]
    proxy = net.proxy_lines({"https_proxy": "http://bob:hunter2@proxy.example:3128"})
    assert proxy == ("https_proxy=http://bob:***@proxy.example:3128",)
    assert net.proxy_lines({})[0].startswith("no proxy")
