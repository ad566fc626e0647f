"""Turn answer-file text into `Answers`, or one `UserError` listing every problem with its line.

Each section is validated on its own so that one broken section never hides the problems of
another; rules spanning keys of a section run once its types are right.
"""

from __future__ import annotations

import difflib
import json
import re
import stat
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from installer.answers.locate import Loc, Locator
from installer.answers.model import (
    Answers,
    RootAnswers,
    TargetAnswers,
    UserAnswers,
    check_password_hash,
    check_ssh_key,
)
from installer.errors import UserError
from storage.sizes import format_size

_BARE = re.compile(r"[A-Za-z0-9_-]+")
LineOf = Callable[[Sequence[str | int]], int]

MAX_SECRET_FILE = 256 * 1024
MAX_FILE = 1024 * 1024
"""Answer files and kickstarts are a few KiB; anything near this is not one."""
MAX_NESTING = 32
"""Deepest `[`/`{` nesting accepted: the schema needs 3, and `tomllib` recurses per level."""
BOM = "\ufeff"
PLAINTEXT = (
    "plaintext passwords are not accepted; put a crypt(3) hash in password-hash "
    "(make one with `openssl passwd -6` or `mkpasswd -m yescrypt`)"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, where it is and what to do."""

    line: int
    field: str
    message: str

    def format(self, source: str) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{source}:{self.line}: {where}{self.message}"


def field_name(loc: Iterable[str | int]) -> str:
    """`("users", 0, "name")` -> `users[0].name`; odd keys quoted as TOML would."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE.fullmatch(part) else json.dumps(part)
        out += f".{key}" if out else key
    return out


def shown(text: str) -> str:
    """Input echoed in a message, escaped when it holds characters that would break the line."""
    return text if text.isprintable() else json.dumps(text)


def problems_error(source: str, problems: Sequence[Problem]) -> UserError:
    """The single error the CLI prints: a summary line, then one line per problem."""
    ordered = sorted(set(problems), key=lambda p: (p.line, p.field, p.message))
    n = len(ordered)
    head = f"{source}: {n} problem{'s' if n != 1 else ''}"
    return UserError("\n".join([head, *(p.format(source) for p in ordered)]))


# --- the schema's shape, for did-you-mean ----------------------------------------------------


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The section models inside an annotation such as `list[UserAnswers]` or `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


def _known_keys(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], list[str]]:
    keys: dict[tuple[str, ...], list[str]] = {}
    names = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        names.append(alias)
        for sub in _models_in(info.annotation):
            keys.update(_known_keys(sub, (*prefix, alias)))
    keys[prefix] = names
    return keys


KNOWN_KEYS = _known_keys(Answers)


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    if key == "password":
        return PLAINTEXT
    parent = tuple(p for p in loc[:-1] if isinstance(p, str))
    close = difflib.get_close_matches(key, KNOWN_KEYS.get(parent, []), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint}"


# --- pydantic errors to sentences ------------------------------------------------------------

_TYPES = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "list_type": "must be a list [...]",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
}
_SIZES = {
    "size_type": 'must be a size (e.g. "2GiB")',
    "swap_type": 'must be a size (e.g. "2GiB") or "off"',
}


def _describe(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _message(error: Mapping[str, Any], loc: Loc) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return "missing (required)"
    if kind == "list_type" and tuple(loc) == ("users",) and isinstance(value, dict):
        return "must be an array of tables: write [[users]] (one per user), not [users]"
    if kind in _TYPES:
        return f"{_TYPES[kind]} (got {_describe(value)})"
    if kind in _SIZES:
        return f"{_SIZES[kind]}, not {_describe(value)}"
    if kind in ("greater_than_equal", "less_than_equal"):
        ctx = error.get("ctx", {})
        word, bound = ("least", ctx.get("ge")) if "ge" in ctx else ("most", ctx.get("le"))
        return f"must be at {word} {bound} (got {value!r})"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected} (got {value!r})"
    return str(error["msg"]).removeprefix("Value error, ")


def _validate(
    validator: Callable[[Any], Any], raw: Any, prefix: Loc, add: Callable[[Loc, str], None]
) -> Any:
    try:
        return validator(raw)
    except ValidationError as exc:
        for error in exc.errors():
            loc = (*prefix, *error["loc"])
            add(loc, _message(error, loc))
        return None


# --- rules spanning keys --------------------------------------------------------------------


def _check_target(t: TargetAnswers) -> Iterator[tuple[Loc, str]]:
    given = [k for k in ("disk", "match", "file") if getattr(t, k) is not None]
    if not given:
        yield (
            ("target",),
            ('give one of disk = "/dev/disk/by-id/...", match = { ... } or file = "..." with size'),
        )
    for extra in given[1:]:
        yield ("target", extra), f"give only one of disk, match and file (found {', '.join(given)})"
    if t.file is not None and t.size is None:
        yield ("target", "file"), 'a file target needs size = "..." (e.g. size = "8GiB")'
    if t.size is not None and t.file is None:
        yield ("target", "size"), 'size is only for file targets (file = "...")'
    m = t.match
    if m is not None:
        if m.largest and m.smallest:
            yield ("target", "match", "smallest"), "choose largest or smallest, not both"
        if m.size_min is not None and m.size_max is not None and m.size_min > m.size_max:
            yield (
                ("target", "match", "size-max"),
                (f"smaller than size-min ({format_size(m.size_max)} < {format_size(m.size_min)})"),
            )


class _Secrets:
    """Reads `*-file` secrets relative to the answer file and checks their content."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def read(self, name: str) -> tuple[str | None, str | None]:
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = self.base / path
        try:
            # Never open a device or FIFO (/dev/stdin would wait forever): regular files only.
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                return None, f"cannot read {shown(name)}: not a regular file"
            if st.st_size > MAX_SECRET_FILE:
                return None, f"cannot read {shown(name)}: larger than {MAX_SECRET_FILE // 1024} KiB"
            return path.read_text(encoding="utf-8"), None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            # Named as written: relative to the answer file, which the message already names.
            return None, f"cannot read {shown(name)}: {reason}"

    def password(self, name: str) -> tuple[str | None, str | None]:
        text, err = self.read(name)
        if text is None:
            return None, err
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) != 1:
            return None, f"{shown(name)} must hold exactly one line: the password hash"
        try:
            return check_password_hash(lines[0]), None
        except ValueError as exc:
            return None, f"{shown(name)}: {exc}"

    def ssh_keys(self, name: str) -> tuple[list[str], list[str]]:
        text, err = self.read(name)
        if text is None:
            return [], [err or name]
        keys, errors = [], []
        for n, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                keys.append(check_ssh_key(line))
            except ValueError as exc:
                errors.append(f"{shown(name)}:{n}: {exc}")
        return keys, errors


def _account(
    acct: RootAnswers | UserAnswers, prefix: Loc, secrets: _Secrets
) -> Iterator[tuple[Loc, str]]:
    """Check one account's keys together and fill its hash and keys from their files."""
    if acct.password_hash is not None and acct.password_hash_file is not None:
        yield (*prefix, "password-hash-file"), "give password-hash or password-hash-file, not both"
    elif acct.password_hash_file is not None:
        value, err = secrets.password(acct.password_hash_file)
        if err:
            yield (*prefix, "password-hash-file"), err
        acct.password_hash = value
    if acct.ssh_keys_file is not None:
        keys, errors = secrets.ssh_keys(acct.ssh_keys_file)
        for err in errors:
            yield (*prefix, "ssh-keys-file"), err
        acct.ssh_keys = [*acct.ssh_keys, *keys]


# --- entry points ----------------------------------------------------------------------------


def validate_data(
    data: Mapping[str, Any],
    *,
    source: str,
    base_dir: Path,
    line_of: LineOf,
    field_of: Callable[[Sequence[str | int]], str] = field_name,
    extra: Sequence[Problem] = (),
    optional: Collection[str] = (),
) -> Answers:
    """Validate a parsed document; `line_of` places a key path in the source text.

    `field_of` names a key path for messages (kickstart names its options instead), and `extra`
    problems found by the caller are reported together with these; `optional` sections are not
    reported missing (the caller already reported why they are).
    """
    problems: list[Problem] = list(extra)

    def add(loc: Loc, message: str) -> None:
        problems.append(Problem(line_of(loc), field_of(loc), message))

    if "version" not in data:
        add((), "version: missing; put `version = 1` at the top of the file")
    elif type(data["version"]) is not int or data["version"] != 1:
        add(("version",), f"unsupported version {data['version']!r} (this obelisk reads version 1)")

    sections = {name: info for name, info in Answers.model_fields.items() if name != "version"}
    by_alias = {(info.alias or name): name for name, info in sections.items()}
    for key in data:
        if key != "version" and key not in by_alias:
            add((key,), _unknown_key((key,)))

    parsed: dict[str, Any] = {}
    for alias, name in by_alias.items():
        info = sections[name]
        if alias not in data:
            if info.is_required() and alias not in optional:
                add((alias,), f"missing; add a [{alias}] section")
            continue
        adapter: TypeAdapter[Any] = TypeAdapter(info.annotation or Any)
        parsed[name] = _validate(adapter.validate_python, data[alias], (alias,), add)

    secrets = _Secrets(base_dir)
    creds: str | None = None
    target = parsed.get("target")
    if isinstance(target, TargetAnswers):
        for loc, msg in _check_target(target):
            add(loc, msg)
        top = parsed.get("wipe")
        if top is not None and "wipe" in data.get("target", {}) and top != target.wipe:
            add(("wipe",), "contradicts target.wipe; keep one of them")
    root = parsed.get("root")
    if isinstance(root, RootAnswers):
        for loc, msg in _account(root, ("root",), secrets):
            add(loc, msg)
    users = parsed.get("users")
    if isinstance(users, list):
        seen: set[str] = set()
        for i, user in enumerate(users):
            if user.name == "root":
                add(("users", i, "name"), "configure root in the [root] section")
            elif user.name in seen:
                add(("users", i, "name"), f"user {user.name!r} is defined twice")
            seen.add(user.name)
            for loc, msg in _account(user, ("users", i), secrets):
                add(loc, msg)
    image = parsed.get("image")
    if image is not None and image.creds_file is not None:
        text, err = secrets.read(image.creds_file)
        if text is not None:
            creds = text.strip()
            if "\n" in creds or ":" not in creds:
                err, creds = f"{shown(image.creds_file)} must hold USER:PASSWORD on one line", None
        if err:
            add(("image", "creds-file"), err)

    if problems:
        raise problems_error(source, problems)
    answers = Answers.model_construct(version=1, **{k: v for k, v in parsed.items()})
    if answers.wipe is not None:
        answers.target.wipe = answers.wipe or answers.target.wipe
    return answers.bind(
        source=source,
        base_dir=base_dir,
        creds=creds,
        line_of=line_of,
        field_of=None if field_of is field_name else field_of,
    )


_DEEP = f"obelisk reads at most {MAX_NESTING} levels of [ ] and {{ }} (an answer file needs 3)"
_AT = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def _too_large(source: str) -> UserError:
    return UserError(
        f"{source}: larger than {format_size(MAX_FILE)}; an answer file or kickstart is a few KiB"
    )


def read_text(path: str | Path, what: str) -> str:
    """A bounded read of an answer file or kickstart as UTF-8, without the BOM Notepad writes."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE:
        raise _too_large(str(path))
    try:
        return raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise problems_error(str(path), [Problem(line, "", "not UTF-8 text")]) from None


def parse_answers(text: str, *, source: str, base_dir: Path) -> Answers:
    """Validate answer-file text; `source` names it in messages."""
    text = text.removeprefix(BOM)
    if len(text) > MAX_FILE:
        raise _too_large(source)
    locator = Locator(text)
    depth, at = locator.deepest
    if depth > MAX_NESTING:
        raise problems_error(
            source, [Problem(at, "", f"values nested {depth} levels deep; {_DEEP}")]
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _AT.match(str(exc))
        line, msg = (int(m["line"]), f"{m['msg']} (column {m['col']})") if m else (1, str(exc))
        raise problems_error(source, [Problem(line, "", f"TOML syntax error: {msg}")]) from None
    except RecursionError:
        # The scan above bounds nesting; this is the net should it ever undercount.
        raise problems_error(
            source, [Problem(at, "", f"values nested too deeply; {_DEEP}")]
        ) from None
    return validate_data(data, source=source, base_dir=base_dir, line_of=locator.line)


def load_answers(path: str | Path) -> Answers:
    """Read and validate an answer file; pure apart from reading it and its `*-file` secrets."""
    text = read_text(path, "answer file")
    return parse_answers(text, source=str(path), base_dir=Path(path).resolve().parent)
