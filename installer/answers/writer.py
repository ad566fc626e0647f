"""The answer file that replays a Plan (the TUI saves one with every install).

It carries the password hashes, which a replay needs (as Anaconda's anaconda-ks.cfg does), but
never registry credentials: those are left as a comment asking for `creds-file`.
"""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.items import Table

from installer.plan import Plan, RootAccount
from storage.layout import DEFAULT_ESP_SIZE
from storage.sizes import exact_size


def size_text(n: int) -> str | int:
    """An exact size for an answer file: `8GiB` when whole, else a TOML integer of bytes."""
    text = exact_size(n)
    return n if text == str(n) else text


def _str(value: str) -> Any:
    # A multi-line string drops a newline right after its opening quotes and reads CRLF as LF:
    # keep such values in one-line strings, where every character is escaped exactly.
    if "\n" in value and "\r" not in value and not value.startswith("\n"):
        return tomlkit.string(value, multiline=True)
    return value


def _account(table: Table, hash_: str | None, keys: tuple[str, ...]) -> None:
    if hash_:
        table.add("password-hash", hash_)
    if keys:
        arr = tomlkit.array()
        arr.extend(keys)
        table.add("ssh-keys", arr.multiline(True))


def answers_toml(plan: Plan) -> str:
    """An answer file that loads and resolves (on the same machine) to this plan again."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("obelisk answer file (written from a plan; replays the same install)"))
    doc.add(tomlkit.comment("Check it with `obelisk validate FILE`; see docs/answers.md."))
    doc.add("version", 1)

    img = tomlkit.table()
    img.add("ref", plan.image.ref)
    if plan.image.track:
        img.add("track", plan.image.track)
    if not plan.image.tls_verify:
        img.add("tls-verify", False)
    if plan.image.authfile:
        img.add("authfile", plan.image.authfile)
    if plan.image.cert_dir:
        img.add("cert-dir", plan.image.cert_dir)
    if plan.image.creds:
        img.add(tomlkit.comment('registry credentials are not written: add creds-file = "..."'))
    doc.add("image", img)

    tgt = tomlkit.table()
    t = plan.target
    if t.is_file:
        assert t.image_size is not None
        tgt.add("file", t.path)
        tgt.add("size", size_text(t.image_size))
    else:
        tgt.add(tomlkit.comment("THIS DISK IS ERASED"))
        tgt.add("disk", t.disk.stable_path if t.disk else t.path)
    tgt.add("wipe", t.wipe)
    doc.add("target", tgt)

    r = plan.layout_request
    st = tomlkit.table()
    st.add("filesystem", r.filesystem.value)
    if r.esp_size != DEFAULT_ESP_SIZE:
        st.add("esp-size", size_text(r.esp_size))
    st.add("swap", size_text(r.swap_size) if r.swap_size else "off")
    if r.root_size is not None:
        st.add("root-size", size_text(r.root_size))
    doc.add("storage", st)

    bl = tomlkit.table()
    bl.add("timeout", plan.boot.timeout)
    if plan.boot.kargs:
        bl.add("kargs", list(plan.boot.kargs))
    doc.add("bootloader", bl)

    sysd = {
        "hostname": plan.system.hostname,
        "timezone": plan.system.timezone,
        "locale": plan.system.locale,
        "keymap": plan.system.keymap,
    }
    if any(sysd.values()):
        sy = tomlkit.table()
        for key, value in sysd.items():
            if value:
                sy.add(key, value)
        doc.add("system", sy)

    if plan.root != RootAccount():
        rt = tomlkit.table()
        _account(rt, plan.root.password_hash, plan.root.ssh_keys)
        if plan.root.locked:
            rt.add("locked", True)
        doc.add("root", rt)

    if plan.users:
        aot = tomlkit.aot()
        for u in plan.users:
            ut = tomlkit.table()
            ut.add("name", u.name)
            if u.gecos:
                ut.add("gecos", u.gecos)
            if u.groups:
                ut.add("groups", list(u.groups))
            if u.admin:
                ut.add("admin", True)
            _account(ut, u.password_hash, u.ssh_keys)
            aot.append(ut)
        doc.add("users", aot)

    if plan.post:
        pt = tomlkit.table()
        arr = tomlkit.array()
        arr.extend(_str(c) for c in plan.post)
        pt.add("commands", arr.multiline(True))
        doc.add("post", pt)

    fin = tomlkit.table()
    fin.add("action", plan.finish.value)
    doc.add("finish", fin)
    return tomlkit.dumps(doc)
