"""The inspect report on an image's toplevel links: where users' homes will be (no registry)."""

from __future__ import annotations

from pathlib import Path

from installer.boot.support import TOPLEVEL_LINKS, detect_boot_support
from installer.composefs.deploy import scan_layers
from installer.image.inspect import ImageReport, homes_text
from tests import layerbuild as lb


def _report(unlinked: tuple[str, ...]) -> ImageReport:
    return ImageReport(
        ref="oci:x:1", digest="sha256:1", index_digest="", config_digest="sha256:2", os="linux",
        architecture="amd64", name="", version="", pretty_name="", kernels=(), initramfs=True,
        composefs=True, missing=(), unlinked=unlinked, layers=(), labels={},
        boot_counting=False, tools=False,
    )  # fmt: skip


def test_missing_links_are_reported_in_text_and_json() -> None:
    bad = _report(("/home", "/root"))
    row = next(line for line in bad.text().splitlines() if line.startswith("homes"))
    assert "read-only: /home, /root not linked into /var" in row
    assert "add-boot-support" in row
    assert bad.to_json()["unlinked"] == ["/home", "/root"]
    good = _report(())
    assert "homes" in good.text() and homes_text(()).startswith("on /var")
    assert good.to_json()["unlinked"] == []


def test_detection_reads_the_layers_links(tmp_path: Path) -> None:
    """What the report says comes from the image tree, absolute and relative links alike."""
    linked = [
        lb.directory("var"),
        lb.symlink("home", "/var/home"),
        lb.symlink("root", "var/roothome"),
        lb.symlink("opt", "var/opt"),
        lb.symlink("srv", "var/srv"),
        lb.symlink("mnt", "var/mnt"),
        lb.directory("usr"),
        lb.symlink("usr/local", "../var/usrlocal"),
    ]
    tree = scan_layers([lb.write_layer(tmp_path, linked)], keep=lambda _p: False)
    assert detect_boot_support(tree).unlinked == ()
    (tmp_path / "plain").mkdir()
    plain = [lb.directory("var"), lb.directory("home"), lb.symlink("root", "var/roothome")]
    tree = scan_layers([lb.write_layer(tmp_path / "plain", plain)], keep=lambda _p: False)
    assert detect_boot_support(tree).unlinked == tuple(p for p in TOPLEVEL_LINKS if p != "/root")
