"""Anaconda kickstart import: the subset that means the same as an obelisk answer file.

pykickstart parses (latest handler, so `bootc` exists); every supported command becomes a key of
the same document an answer file produces, so validation and its messages are shared. Anything
obelisk cannot honour is refused by line, all at once, instead of being silently skipped.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pykickstart.constants import (
    CLEARPART_TYPE_ALL,
    KS_REBOOT,
    KS_SCRIPT_POST,
    KS_SHUTDOWN,
    KS_WAIT,
)
from pykickstart.errors import KickstartError
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion

from installer.answers.locate import Loc
from installer.answers.model import Answers
from installer.answers.validate import (
    BOM,
    Problem,
    field_name,
    problems_error,
    read_text,
    shown,
    validate_data,
)

SUPPORTED = frozenset(
    {
        "bootc",
        "ostreecontainer",
        "zerombr",
        "clearpart",
        "ignoredisk",
        "autopart",
        "reqpart",
        "bootloader",
        "rootpw",
        "user",
        "sshkey",
        "network",
        "timezone",
        "lang",
        "keyboard",
        "reboot",
        "poweroff",
        "shutdown",
        "halt",
        # Interface modes: obelisk is always text and unattended here, so they change nothing.
        "text",
        "cmdline",
        "skipx",
    }
)
SHELLS = frozenset({"/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"})
PLAINTEXT = (
    "plaintext passwords are not accepted; use --iscrypted with a hash from "
    "`openssl passwd -6` or `mkpasswd -m yescrypt`"
)

# How the answer-file keys read in a kickstart, for messages.
LABELS: dict[tuple[str, ...], str] = {
    ("image",): "bootc",
    ("image", "ref"): "bootc --source-imgref",
    ("image", "track"): "bootc --target-imgref",
    ("target",): "clearpart/ignoredisk",
    ("target", "disk"): "ignoredisk --only-use",
    ("target", "match"): "ignoredisk --only-use",
    ("storage",): "autopart",
    ("storage", "filesystem"): "autopart --fstype",
    ("bootloader",): "bootloader",
    ("bootloader", "timeout"): "bootloader --timeout",
    ("bootloader", "kargs"): "bootloader --append",
    ("system", "hostname"): "network --hostname",
    ("system", "timezone"): "timezone",
    ("system", "locale"): "lang",
    ("system", "keymap"): "keyboard",
    ("root",): "rootpw",
    ("root", "password-hash"): "rootpw --iscrypted",
    ("root", "ssh-keys"): "sshkey --username=root",
    ("users",): "user",
    ("users", "name"): "user --name",
    ("users", "groups"): "user --groups",
    ("users", "gecos"): "user --gecos",
    ("users", "password-hash"): "user --password",
    ("users", "ssh-keys"): "sshkey",
    ("post",): "%post",
    ("post", "commands"): "%post",
    ("finish",): "reboot",
}


def _label(loc: Sequence[str | int]) -> str:
    key = tuple(p for p in loc if isinstance(p, str))
    while key:
        if key in LABELS:
            return LABELS[key]
        key = key[:-1]
    return field_name(loc)


class _Parser(KickstartParser):  # type: ignore[misc]
    """Collects errors with their lines instead of printing them, and never dispatches a command
    obelisk does not support (so pykickstart's deprecation and removal errors cannot mask ours)."""

    def __init__(self) -> None:
        super().__init__(
            makeVersion(), errorsAreFatal=False, followIncludes=False, unknownSectionIsFatal=False
        )
        self.problems: list[Problem] = []
        self.lines: dict[str, int] = {}
        self.failed: set[str] = set()
        """Commands pykickstart rejected: their options are unknown, so they build nothing."""

    def handleCommand(self, lineno: int, args: list[str]) -> Any:
        name = args[0]
        if name not in SUPPORTED:
            self.problems.append(Problem(lineno, "", f"not supported: {shown(name)}"))
            return None
        self.lines[name] = lineno
        try:
            return super().handleCommand(lineno, args)
        except KickstartError:
            self.failed.add(name)
            raise

    def _tryFunc(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except KickstartError as exc:
            self.problems.append(Problem(exc.lineno or 1, "", _one_line(exc.message)))


class _Builder:
    """Turns the parsed handler into an answer-file document plus where each key came from."""

    def __init__(self, parser: _Parser) -> None:
        self.p = parser
        self.h = parser.handler
        self.data: dict[str, Any] = {"version": 1}
        self.where: dict[Loc, int] = {}
        self.labels: dict[tuple[str, ...], str] = {}
        """How this file names a key, where that differs from `LABELS` (which command said it)."""
        self.problems: list[Problem] = []

    def unsupported(self, line: int, what: str) -> None:
        self.problems.append(Problem(line, "", f"not supported: {what}"))

    def refuse(self, line: int, field: str, message: str) -> None:
        self.problems.append(Problem(line, field, message))

    def put(self, loc: Loc, value: Any, line: int) -> None:
        node = self.data
        for key in loc[:-1]:
            node = node.setdefault(str(key), {})
        node[str(loc[-1])] = value
        for i in range(1, len(loc) + 1):
            self.where.setdefault(loc[:i], line)

    def label(self, loc: Sequence[str | int]) -> str:
        key = tuple(p for p in loc if isinstance(p, str))
        return self.labels.get(key) or _label(loc)

    def line_of(self, loc: Sequence[str | int]) -> int:
        loc = tuple(loc)
        while loc:
            if loc in self.where:
                return self.where[loc]
            loc = loc[:-1]
        return 1

    def seen(self, name: str) -> int | None:
        return None if name in self.p.failed else self.p.lines.get(name)

    # -- sections of the answer file --------------------------------------------------------

    def image(self) -> None:
        bootc, ostree = self.h.bootc, self.h.ostreecontainer
        line_b, line_o = self.seen("bootc"), self.seen("ostreecontainer")
        if line_b and line_o:
            self.refuse(line_o, "ostreecontainer", "give bootc or ostreecontainer, not both")
        if line_b:
            if bootc.stateroot not in (None, "", "default"):
                self.unsupported(line_b, "bootc --stateroot (obelisk has one stateroot, default)")
            if bootc.bootloader and bootc.bootloader != "systemd":
                self.unsupported(line_b, f"bootc --bootloader={bootc.bootloader}")
            self.put(("image", "ref"), bootc.sourceImgRef or "", line_b)
            if bootc.targetImgRef and bootc.targetImgRef != bootc.sourceImgRef:
                self.put(("image", "track"), bootc.targetImgRef, line_b)
        elif line_o:
            if ostree.stateroot not in (None, "", "default"):
                self.unsupported(line_o, "ostreecontainer --stateroot (obelisk has one, default)")
            if ostree.remote:
                self.unsupported(line_o, "ostreecontainer --remote")
            url = ostree.url or ""
            transport = ostree.transport or "registry"
            ref = url if transport == "registry" else f"{transport}:{url}"
            self.put(("image", "ref"), ref, line_o)
        elif not self.p.failed & {"bootc", "ostreecontainer"}:
            self.data["image"] = {}  # reported as `bootc --source-imgref: missing`

    def target(self) -> None:
        drives: list[tuple[str, int, str]] = []
        line = self.seen("clearpart")
        wipe = False
        if line:
            cp = self.h.clearpart
            if cp.type == CLEARPART_TYPE_ALL:
                wipe = True
            else:
                self.unsupported(line, "clearpart without --all (obelisk erases the whole disk)")
            drives += [(d, line, "clearpart --drives") for d in cp.drives]
            if cp.disklabel and cp.disklabel != "gpt":
                self.unsupported(line, f"clearpart --disklabel={cp.disklabel} (obelisk writes GPT)")
        line_i = self.seen("ignoredisk")
        if line_i:
            ig = self.h.ignoredisk
            if ig.ignoredisk:
                self.unsupported(line_i, "ignoredisk --drives (name the one disk with --only-use)")
            if ig.interactive:
                self.unsupported(line_i, "ignoredisk --interactive")
            drives += [(d, line_i, "ignoredisk --only-use") for d in ig.onlyuse]
        names = sorted({_device(d) for d, _, _ in drives})
        at = drives[0][1] if drives else (line or line_i or 1)
        if len(names) > 1:
            self.refuse(
                at,
                "target",
                f"obelisk installs to one disk; these name several: {', '.join(names)}",
            )
        if names:
            self.put(("target", "disk"), names[0], at)
            self.labels["target", "disk"] = drives[0][2]
        else:
            # No drive named: accept only a machine with exactly one eligible disk.
            self.put(("target", "match"), {}, at)
            if line or line_i:
                self.labels["target", "match"] = "clearpart" if line else "ignoredisk"
        self.put(("target", "wipe"), wipe, at)

    def storage(self) -> None:
        line = self.seen("autopart")
        if not line:
            return
        ap = self.h.autopart
        if ap.encrypted:
            self.unsupported(line, "autopart --encrypted")
        kinds = {0: "plain", 1: "btrfs", 2: "lvm", 3: "thinp", 4: "stratis"}
        kind = kinds.get(ap.type, "plain") if ap.type is not None else "plain"
        if kind in ("lvm", "thinp", "stratis"):
            self.unsupported(line, f"autopart --type={kind} (obelisk makes plain partitions)")
        fs = ap.fstype or ("btrfs" if kind == "btrfs" else "")
        if fs:
            self.put(("storage", "filesystem"), fs, line)
        if ap.hibernation:
            self.unsupported(line, "autopart --hibernation")

    def bootloader(self) -> None:
        line = self.seen("bootloader")
        if not line:
            return
        bl = self.h.bootloader
        for attr, opt in (
            ("password", "--password"),
            ("driveorder", "--driveorder"),
            ("bootDrive", "--boot-drive"),
            ("default", "--default"),
            ("extlinux", "--extlinux"),
            ("disabled", "--disabled"),
            ("leavebootorder", "--leavebootorder"),
        ):
            if getattr(bl, attr):
                self.unsupported(line, f"bootloader {opt}")
        if bl.location not in ("none", "mbr", None, ""):
            self.unsupported(line, f"bootloader --location={bl.location}")
        if bl.timeout is not None:
            self.put(("bootloader", "timeout"), bl.timeout, line)
        if bl.appendLine:
            try:
                kargs = shlex.split(bl.appendLine)
            except ValueError as exc:
                self.refuse(line, "bootloader --append", str(exc))
            else:
                self.put(("bootloader", "kargs"), kargs, line)

    def system(self) -> None:
        line = self.seen("network")
        if line:
            for nd in self.h.network.network:
                if nd.hostname:
                    self.put(("system", "hostname"), nd.hostname, nd.lineno or line)
                if (
                    (nd.bootProto not in ("dhcp", ""))
                    or nd.ip
                    or nd.nameserver
                    or nd.vlanid
                    or nd.bondslaves
                ):
                    self.unsupported(
                        nd.lineno or line,
                        "network configuration other than --hostname (the image brings up DHCP)",
                    )
        line = self.seen("timezone")
        if line:
            tz = self.h.timezone
            if tz.ntpservers or tz.nontp:
                self.unsupported(line, "timezone --ntpservers/--nontp")
            if tz.timezone:
                self.put(("system", "timezone"), tz.timezone, line)
        line = self.seen("lang")
        if line:
            if self.h.lang.addsupport:
                self.unsupported(line, "lang --addsupport")
            self.put(("system", "locale"), self.h.lang.lang, line)
        line = self.seen("keyboard")
        if line:
            kb = self.h.keyboard
            keymap = (
                kb.vc_keymap
                or getattr(kb, "_keyboard", "")
                or (kb.x_layouts[0] if kb.x_layouts else "")
            )
            if keymap:
                self.put(("system", "keymap"), keymap, line)

    def accounts(self) -> None:
        line = self.seen("rootpw")
        if line:
            rp = self.h.rootpw
            if rp.allow_ssh:
                self.unsupported(line, "rootpw --allow-ssh")
            if rp.password and not rp.isCrypted:
                self.refuse(line, "rootpw", PLAINTEXT)
            elif rp.password:
                self.put(("root", "password-hash"), rp.password, line)
            if rp.lock:
                self.put(("root", "locked"), True, line)
            self.where.setdefault(("root",), line)
        users: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        for ud in self.h.user.userList:
            at = ud.lineno or 1
            for attr, opt in (
                ("uid", "--uid"),
                ("gid", "--gid"),
                ("homedir", "--homedir"),
                ("shell", "--shell"),
                ("lock", "--lock"),
            ):
                if getattr(ud, attr):
                    self.unsupported(at, f"user {opt}")
            i = len(users)
            entry: dict[str, Any] = {"name": ud.name}
            self.where[("users", i)] = at
            if ud.groups:
                entry["groups"] = list(ud.groups)
                # Anaconda's way to make an administrator; obelisk says it explicitly.
                entry["admin"] = "wheel" in ud.groups
            if ud.gecos:
                entry["gecos"] = ud.gecos
            if ud.password and not ud.isCrypted:
                self.refuse(at, "user --password", PLAINTEXT)
            elif ud.password:
                entry["password-hash"] = ud.password
            users.append(entry)
            index.setdefault(ud.name, i)
        for sk in self.h.sshkey.sshUserList:
            at = sk.lineno or 1
            if sk.username == "root":
                keys = self.data.setdefault("root", {}).setdefault("ssh-keys", [])
                self.where[("root", "ssh-keys", len(keys))] = at
                self.where.setdefault(("root",), at)
                keys.append(sk.key)
            elif sk.username in index:
                i = index[sk.username]
                keys = users[i].setdefault("ssh-keys", [])
                self.where[("users", i, "ssh-keys", len(keys))] = at
                keys.append(sk.key)
            else:
                self.refuse(
                    at, "sshkey", f"no user {sk.username!r}: add `user --name={sk.username}` first"
                )
        if users:
            self.data["users"] = users

    def post(self) -> None:
        commands: list[str] = []
        for script in self.h.scripts:
            at = script.lineno or 1
            if script.type != KS_SCRIPT_POST:
                continue  # reported from the text scan, which sees every section header
            if not script.inChroot:
                self.unsupported(at, "%post --nochroot")
                continue
            if script.interp and script.interp not in SHELLS:
                self.unsupported(at, f"%post --interpreter={script.interp}")
                continue
            if script.logfile:
                self.unsupported(at, "%post --log")
            self.where[("post", "commands", len(commands))] = at
            commands.append(script.script)
        if commands:
            self.data["post"] = {"commands": commands}

    def finish(self) -> None:
        lines = [self.seen(n) for n in ("reboot", "poweroff", "shutdown", "halt")]
        given = [n for n in lines if n]
        if not given:
            return
        rb = self.h.reboot
        at = max(given)
        if rb.eject or rb.kexec:
            self.unsupported(at, "reboot --eject/--kexec")
        action = {KS_REBOOT: "reboot", KS_SHUTDOWN: "poweroff", KS_WAIT: "none"}.get(
            rb.action, "none"
        )
        self.put(("finish", "action"), action, at)


def _one_line(message: object) -> str:
    """pykickstart's messages may span lines; ours are one line per problem."""
    return shown(" ".join(str(message).split()))


def _device(name: str) -> str:
    """`sda`, `disk/by-id/x` and `/dev/...` all as device paths."""
    return name if name.startswith("/dev/") else f"/dev/{name}"


def _unsplittable(text: str) -> int:
    """The first line shlex cannot split (an unclosed quote), as pykickstart met it."""
    inside = False
    for n, line in enumerate(text.split("\n"), start=1):
        word = line.split()[0] if line.split() else ""
        if word.startswith("%"):
            inside = word != "%end"
        if inside and not word.startswith("%"):
            continue  # section bodies are not split
        try:
            shlex.split(line, comments=True)
        except ValueError:
            return n
    return 1


def _scan_sections(text: str) -> list[Problem]:
    """Section headers and directives pykickstart would act on without asking us."""
    problems = []
    inside = False
    for n, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words or not words[0].startswith("%"):
            continue
        word = words[0]
        if word == "%end":
            inside = False
        elif word in ("%include", "%ksappend"):
            problems.append(Problem(n, "", f"not supported: {shown(word)}"))
        elif not inside:
            inside = True
            if word != "%post":
                problems.append(Problem(n, "", f"not supported: {shown(word)}"))
    return problems


def parse_kickstart(text: str, *, source: str, base_dir: Path) -> Answers:
    """Kickstart text -> `Answers`, or one `UserError` with every problem by line."""
    text = text.removeprefix(BOM)
    parser = _Parser()
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            parser.readKickstartFromString(text)
        except KickstartError as exc:
            parser.problems.append(Problem(exc.lineno or 1, "", _one_line(exc.message)))
        except ValueError as exc:
            # pykickstart splits each line with shlex outside its own error handling, and
            # stops there: report the line and nothing after it.
            problem = Problem(_unsplittable(text), "", f"cannot split the line: {exc}")
            raise problems_error(source, [*parser.problems, problem]) from None
    builder = _Builder(parser)
    for step in (
        builder.image,
        builder.target,
        builder.storage,
        builder.bootloader,
        builder.system,
        builder.accounts,
        builder.post,
        builder.finish,
    ):
        step()
    problems = [*parser.problems, *_scan_sections(text), *builder.problems]
    return validate_data(
        builder.data,
        source=source,
        base_dir=base_dir,
        line_of=builder.line_of,
        field_of=builder.label,
        extra=problems,
        optional={"image"} if parser.failed & {"bootc", "ostreecontainer"} else (),
    )


def load_kickstart(path: str | Path) -> Answers:
    """Read a kickstart file as obelisk answers."""
    text = read_text(path, "kickstart file")
    return parse_kickstart(text, source=str(path), base_dir=Path(path).resolve().parent)
