"""The value checks of the answer-file schema, on real outputs of the tools people use."""

from __future__ import annotations

import pytest

from installer.answers.model import (
    check_hostname,
    check_image_ref,
    check_karg,
    check_locale,
    check_password_hash,
    check_ssh_key,
    check_timezone,
    check_user_name,
)

# Made by `openssl passwd -6/-5`, Python's crypt (bcrypt, SHA-512 with rounds) and libxcrypt.
REAL_HASHES = [
    "$6$Xlo7YGfuLST7GYvV$1VqatUa1HzDPlQUEfPMXfrkL3kIZpUmvZf/LHdQxQQnWLRaQGILTRNPQ1/Lt0bRVOZRbM7P9lGURceIgKz1Jr0",
    "$5$Ghwbj4YTtdo5sogr$9h8K.xQ5E1lMNioF8z3PpYrRGy/6M28qt0MTZY08bX3",
    "$2b$12$Uzv2iMeU2a9xxI5gLSYhY.dtNbhP4ZD71mPoVbkf4ysJ0HhCEC5uy",
    "$6$rounds=5000$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/",
    "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U4SOHmDd8SvW5vCUKSMR6N835VPwFAtgYNhQ9mFFeL5",
]


@pytest.mark.parametrize("value", REAL_HASHES)
def test_real_hashes_are_accepted(value: str) -> None:
    assert check_password_hash(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "hunter2",
        "$1$abc$def",  # MD5-crypt: not offered
        "$6$salt$tooshort",
        REAL_HASHES[0] + "x",
        "!" + REAL_HASHES[0],
        "*",
        "",
    ],
)
def test_other_strings_are_not_hashes(value: str) -> None:
    with pytest.raises(ValueError, match="openssl passwd -6"):
        check_password_hash(value)


@pytest.mark.parametrize("value", ["a", "web-01", "web-01.example.com", "x" * 63, "A1"])
def test_hostnames(value: str) -> None:
    assert check_hostname(value) == value


@pytest.mark.parametrize("value", ["", "-a", "a-", "a_b", "a..b", "x" * 64, "a b", "é"])
def test_bad_hostnames(value: str) -> None:
    with pytest.raises(ValueError):
        check_hostname(value)


def test_timezones() -> None:
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    assert check_timezone("UTC") == "UTC"
    for bad in ("../../etc/passwd", "Europe/Nowhere", "Europe", "/UTC"):
        with pytest.raises(ValueError):
            check_timezone(bad)


def test_locales() -> None:
    for good in ("C", "C.UTF-8", "POSIX", "en_US.UTF-8", "de_DE", "sr_RS@latin", "ast_ES.UTF-8"):
        assert check_locale(good) == good
    for bad in ("english", "en-US", "en_US UTF-8", ""):
        with pytest.raises(ValueError):
            check_locale(bad)


def test_ssh_keys() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b"
    assert check_ssh_key(key) == key
    assert check_ssh_key('from="10.0.0.0/8" ' + key)  # authorized_keys options
    assert check_ssh_key("sk-ssh-ed25519@openssh.com AAAAGnNr x")
    for bad in ("AAAAC3Nza a@b", "ssh-ed25519", key + "\n" + key, "ssh-foo AAAA"):
        with pytest.raises(ValueError):
            check_ssh_key(bad)


def test_user_names() -> None:
    for good in ("alice", "_svc", "a-b_c1", "x" * 32):
        assert check_user_name(good) == good
    for bad in ("Alice", "1abc", "a b", "x" * 33, "", "a.b"):
        with pytest.raises(ValueError):
            check_user_name(bad)


def test_image_refs_always_carry_their_transport() -> None:
    assert (
        check_image_ref("quay.io/fedora/fedora-bootc:42")
        == "docker://quay.io/fedora/fedora-bootc:42"
    )
    assert check_image_ref("oci:/srv/os:1") == "oci:/srv/os:1"
    for bad in ("", "ftp://x/y", "Quay.io/X", "oci:"):
        with pytest.raises(ValueError):
            check_image_ref(bad)


def test_kargs_that_obelisk_owns_are_refused() -> None:
    assert check_karg("console=ttyS0,115200") == "console=ttyS0,115200"
    for bad in ("root=/dev/sda2", "composefs=abc", "rw", "ro", "a b", ""):
        with pytest.raises(ValueError):
            check_karg(bad)
