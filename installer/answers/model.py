"""The answer file's schema (version 1): pydantic models, one per TOML section.

Each model checks what it can see alone (types, formats, sizes); rules that span keys of one
section live in `installer.answers.validate` so their errors can name the exact key and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from installer.errors import UserError
from installer.image.ref import normalize_ref
from installer.system.checks import hostname_problem
from storage.layout import MIN_ESP_SIZE, MIN_ROOT_SIZE, too_small
from storage.sizes import SizeError, format_size, parse_size

ZONEINFO = Path("/usr/share/zoneinfo")


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class Section(BaseModel):
    """Strict, kebab-case keys, unknown keys refused: a typo must never be silently ignored."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=_kebab,
        validate_default=False,
    )


# --- value types -------------------------------------------------------------------------------


def _size(value: Any, kind: str = "size_type") -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int):
        # Not "must be an integer": a size is usually written as a string. validate words it.
        raise PydanticCustomError(kind, "must be a size")
    try:
        return parse_size(value)
    except SizeError as exc:
        raise ValueError(str(exc)) from None


Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[A-Za-z]*\s*$"},
                {"type": "integer", "minimum": 0},
            ],
            "description": "bytes, or a size such as 512MiB, 8GiB, 20G (binary units)",
        }
    ),
]


def _fits_a_layout(value: int) -> int:
    """A disk-image file no layout fits is refused here, by `storage.layout`'s own minimum."""
    if problem := too_small(value):
        raise ValueError(problem)
    return value


def _at_least(minimum: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if value < minimum:
            raise ValueError(f"must be at least {format_size(minimum)} (got {format_size(value)})")
        return value

    return check


def _swap(value: Any) -> Any:
    if value == "off":
        return 0
    return _size(value, "swap_type")


SwapSize = Annotated[
    int,
    BeforeValidator(_swap),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "off"},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[A-Za-z]*\s*$"},
                {"type": "integer", "minimum": 0},
            ],
            "description": 'swap partition size, or "off"',
        }
    ),
]


def check_hostname(value: str) -> str:
    """RFC 1123 labels, and at most the kernel's 64 characters (`installer.system.checks`)."""
    if problem := hostname_problem(value):
        raise ValueError(f"{value!r} is not a valid hostname: {problem}")
    return value


def check_timezone(value: str) -> str:
    """An IANA zone name; checked against the tz database when this machine has one."""
    if value in ("UTC", "Etc/UTC"):
        return value
    if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", value):
        raise ValueError(f"{value!r} is not a time zone name (e.g. Europe/Berlin, UTC)")
    if ZONEINFO.is_dir() and not (ZONEINFO / value).is_file():
        raise ValueError(
            f"unknown time zone {value!r} (see /usr/share/zoneinfo, e.g. Europe/Berlin)"
        )
    return value


_LOCALE = re.compile(r"^(C|POSIX|[a-z]{2,3}(_[A-Z]{2})?)(\.[A-Za-z0-9-]+)?(@[A-Za-z0-9]+)?$")


def check_locale(value: str) -> str:
    if not _LOCALE.match(value):
        raise ValueError(f"{value!r} is not a locale name (e.g. en_US.UTF-8, C.UTF-8)")
    return value


def check_keymap(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(f"{value!r} is not a keymap name (e.g. us, de-latin1)")
    return value


_B64 = r"[./0-9A-Za-z]"
_HASHES = (
    re.compile(rf"^\$6\$(rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{86}}$"),
    re.compile(rf"^\$5\$(rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{43}}$"),
    re.compile(rf"^\$(y|gy)\${_B64}+\${_B64}{{1,86}}\${_B64}{{43}}$"),
    re.compile(rf"^\$2[abxy]\$\d\d\${_B64}{{53}}$"),
    re.compile(rf"^\$7\${_B64}{{11,97}}\${_B64}{{43}}$"),
)


def check_password_hash(value: str) -> str:
    """A crypt(3) hash obelisk can hand to the image's /etc/shadow: SHA-512, SHA-256, yescrypt,
    bcrypt or scrypt. Anything else is most likely a plaintext password typed in the wrong key."""
    if not any(h.match(value) for h in _HASHES):
        raise ValueError(
            "not a crypt(3) password hash ($6$, $y$, $2b$, ...); make one with "
            "`openssl passwd -6` or `mkpasswd -m yescrypt`"
        )
    return value


_SSH_KEY = re.compile(
    r"(^|\s)(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com)\s+[A-Za-z0-9+/]+={0,3}(\s|$)"
)


def check_ssh_key(value: str) -> str:
    if "\n" in value or not _SSH_KEY.search(value):
        raise ValueError(
            "not an SSH public key line (e.g. `ssh-ed25519 AAAA... user@host`, one per entry)"
        )
    return value


_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def check_user_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid user name (lower-case letters, digits, _ and -, "
            "starting with a letter or _, at most 32 characters)"
        )
    return value


def check_group_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid group name")
    return value


def check_image_ref(value: str) -> str:
    """A skopeo reference as `installer.image.ref` reads it; a bare `registry/name:tag` means
    `docker://` and is stored with it, so the plan always names its transport."""
    try:
        return normalize_ref(value)
    except UserError as exc:
        raise ValueError(str(exc)) from None


def check_karg(value: str) -> str:
    if not value or any(c in value for c in "\n\r\t "):
        raise ValueError(f"{value!r} is not one kernel argument (one argument per list entry)")
    key = value.split("=", 1)[0]
    if key in ("root", "composefs", "rw", "ro"):
        raise ValueError(f"{key} is set by obelisk; remove it from kargs")
    return value


def _abs_dev_path(value: str) -> str:
    _printable(value)
    if not value.startswith("/dev/"):
        raise ValueError(
            f"{value!r} is not a device path; use /dev/disk/by-id/... (see `obelisk disks`), "
            "or `file = ...` for a disk-image file"
        )
    return value


def _gecos(value: str) -> str:
    if any(c in value for c in ":\n\r"):
        raise ValueError("must not contain ':' or line breaks (it becomes a field of /etc/passwd)")
    return value


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _printable(value: str) -> str:
    # A NUL would reach os.stat() as a ValueError; a line break is never meant.
    if any(not c.isprintable() for c in value):
        raise ValueError("must be one path, without line breaks or control characters")
    return value


def _one_path(value: str) -> str:
    """What a path's text alone can rule out; whether it exists is for `resolve` (this machine)."""
    return _printable(_nonempty(value))


def _file_path(value: str) -> str:
    _one_path(value)
    if os.path.basename(value) in ("", ".", ".."):
        raise ValueError(f"{value!r} names a directory; give the path of a file")
    return value


Hostname = Annotated[str, AfterValidator(check_hostname)]
Timezone = Annotated[str, AfterValidator(check_timezone)]
Locale = Annotated[str, AfterValidator(check_locale)]
Keymap = Annotated[str, AfterValidator(check_keymap)]
PasswordHash = Annotated[str, AfterValidator(check_password_hash)]
SshKey = Annotated[str, AfterValidator(check_ssh_key)]
UserName = Annotated[str, AfterValidator(check_user_name)]
GroupName = Annotated[str, AfterValidator(check_group_name)]
ImageRef = Annotated[str, AfterValidator(check_image_ref)]
Karg = Annotated[str, AfterValidator(check_karg)]
DevicePath = Annotated[str, AfterValidator(_abs_dev_path)]
NonEmpty = Annotated[str, AfterValidator(_nonempty)]
FilePath = Annotated[str, AfterValidator(_file_path)]
DirPath = Annotated[str, AfterValidator(_one_path)]


# --- sections ----------------------------------------------------------------------------------


class ImageAnswers(Section):
    """`[image]`: where the OS image comes from."""

    ref: ImageRef = Field(description="skopeo reference, e.g. docker://quay.io/org/os:42")
    track: ImageRef | None = Field(
        default=None,
        description="reference later updates follow (default: ref); set it for offline installs",
    )
    tls_verify: bool = True
    authfile: FilePath | None = Field(default=None, description="containers-auth.json(5) file")
    cert_dir: DirPath | None = None
    creds_file: FilePath | None = Field(
        default=None, description="file holding USER:PASSWORD, relative to the answer file"
    )


class MatchAnswers(Section):
    """`target.match`: rules that must select exactly one candidate disk."""

    by_id: NonEmpty | None = Field(default=None, description="glob on the /dev/disk/by-id name")
    serial: NonEmpty | None = None
    model: NonEmpty | None = Field(default=None, description="glob on the disk model")
    size_min: Size | None = None
    size_max: Size | None = None
    transport: Literal["nvme", "sata", "scsi", "usb", "virtio", "mmc", "loop"] | None = None
    largest: bool = False
    smallest: bool = False


class TargetAnswers(Section):
    """`[target]`: exactly one of `disk`, `match` or `file` (+ `size`)."""

    disk: DevicePath | None = Field(default=None, description="/dev/disk/by-id/... path")
    match: MatchAnswers | None = None
    file: FilePath | None = Field(
        default=None, description="disk-image file to create, relative to the answer file"
    )
    size: Annotated[Size, AfterValidator(_fits_a_layout)] | None = Field(
        default=None, description="size of the disk-image file"
    )
    wipe: bool = Field(default=False, description="erase a disk (or file) that already holds data")


class StorageAnswers(Section):
    """`[storage]`: the partition layout of DESIGN.md 3.1."""

    filesystem: Literal["ext4", "xfs", "btrfs"] = "ext4"
    esp_size: Annotated[Size, AfterValidator(_at_least(MIN_ESP_SIZE))] | None = Field(
        default=None, description="default 1GiB"
    )
    swap: SwapSize = 0
    root_size: Annotated[Size, AfterValidator(_at_least(MIN_ROOT_SIZE))] | None = Field(
        default=None, description="default: the rest of the disk"
    )


class BootloaderAnswers(Section):
    """`[bootloader]`: systemd-boot menu timeout and extra kernel arguments."""

    timeout: int = Field(default=3, ge=0, le=600)
    kargs: list[Karg] = []


class SystemAnswers(Section):
    """`[system]`: settings written into the installed /etc (empty: keep the image's)."""

    hostname: Hostname | None = None
    timezone: Timezone | None = None
    locale: Locale | None = None
    keymap: Keymap | None = None


class RootAnswers(Section):
    """`[root]`: the root account. Only hashes, never plaintext passwords."""

    password_hash: PasswordHash | None = None
    password_hash_file: FilePath | None = None
    locked: bool = False
    ssh_keys: list[SshKey] = []
    ssh_keys_file: FilePath | None = None


class UserAnswers(Section):
    """`[[users]]`: one account to create."""

    name: UserName
    gecos: Annotated[str, AfterValidator(_gecos)] = Field(default="", description="full name")
    groups: list[GroupName] = []
    admin: bool = Field(default=False, description="member of the image's sudo/wheel group")
    password_hash: PasswordHash | None = None
    password_hash_file: FilePath | None = None
    ssh_keys: list[SshKey] = []
    ssh_keys_file: FilePath | None = None


class PostAnswers(Section):
    """`[post]`: shell snippets run inside the installed system, in order."""

    commands: list[NonEmpty] = []


class FinishAnswers(Section):
    """`[finish]`: what to do when the install succeeded."""

    action: Literal["reboot", "poweroff", "none"] = "none"


class Answers(Section):
    """An obelisk answer file, version 1."""

    model_config = ConfigDict(title="obelisk answer file")

    version: Literal[1]
    image: ImageAnswers
    target: TargetAnswers
    wipe: bool | None = Field(default=None, description="same as target.wipe")
    storage: StorageAnswers = StorageAnswers()
    bootloader: BootloaderAnswers = BootloaderAnswers()
    system: SystemAnswers = SystemAnswers()
    root: RootAnswers = RootAnswers()
    users: list[UserAnswers] = []
    post: PostAnswers = PostAnswers()
    finish: FinishAnswers = FinishAnswers()

    _source: str = PrivateAttr(default="")
    _base_dir: str = PrivateAttr(default=".")
    _creds: str | None = PrivateAttr(default=None)
    _line_of: Callable[[Sequence[str | int]], int] | None = PrivateAttr(default=None)
    _field_of: Callable[[Sequence[str | int]], str] | None = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        """The file these answers were read from (empty when built in memory)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the answers are taken from."""
        return Path(self._base_dir)

    @property
    def creds(self) -> str | None:
        """Registry `USER:PASSWORD` read from `image.creds-file`."""
        return self._creds

    def line_of(self, loc: Sequence[str | int]) -> int:
        """The source line of a key path, for messages found after validation (resolve)."""
        return self._line_of(loc) if self._line_of else 1

    def field_of(self, loc: Sequence[str | int]) -> str | None:
        """How the source names a key path (a kickstart names options), if it has its own way."""
        return self._field_of(loc) if self._field_of else None

    def bind(
        self,
        *,
        source: str,
        base_dir: Path,
        creds: str | None = None,
        line_of: Callable[[Sequence[str | int]], int] | None = None,
        field_of: Callable[[Sequence[str | int]], str] | None = None,
    ) -> Answers:
        """Record where the answers came from (pydantic private attributes are not fields)."""
        self._source = source
        self._base_dir = str(base_dir)
        self._creds = creds
        self._line_of = line_of
        self._field_of = field_of
        return self


def _without_null(node: Any) -> Any:
    """TOML has no null: an optional key is simply left out, so drop pydantic's `null` branches."""
    if isinstance(node, list):
        return [_without_null(n) for n in node]
    if not isinstance(node, dict):
        return node
    # Section defaults (whole tables) say nothing a reader needs; null defaults are not TOML.
    out = {
        k: _without_null(v)
        for k, v in node.items()
        if not (k == "default" and (v is None or isinstance(v, dict)))
    }
    branches = [b for b in out.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" in out and len(branches) == 1:
        del out["anyOf"]
        out.update(branches[0])
    elif "anyOf" in out:
        out["anyOf"] = branches
    return out


def json_schema() -> dict[str, Any]:
    """The published JSON Schema (installer/data/answers/schema.json) of an answer file."""
    schema: dict[str, Any] = _without_null(Answers.model_json_schema(by_alias=True))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://obelisk.invalid/answers.schema.json"
    return schema
