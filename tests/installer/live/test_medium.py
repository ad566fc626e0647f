"""Answer files on the medium and at a URL, made local paths (a label is proven in the ISO boot)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.errors import UserError
from installer.image import sources
from installer.live import medium
from installer.live.cmdline import parse_answers


def test_a_medium_path_is_under_the_medium_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.toml").write_text("version = 1\n")
    monkeypatch.setenv(sources.MEDIUM_ENV, str(tmp_path))
    assert medium.locate(parse_answers("/answers/a.toml")) == tmp_path / "answers" / "a.toml"


def test_a_missing_medium_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sources.MEDIUM_ENV, str(tmp_path))
    with pytest.raises(UserError, match=r"obelisk\.answers=/no\.toml: .*/no\.toml does not exist"):
        medium.locate(parse_answers("/no.toml"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "a.toml").write_text('version = 1\n[system]\nhostname = "x"\n')

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_url_is_downloaded_private(served: str, tmp_path: Path) -> None:
    path = medium.locate(parse_answers(f"{served}/a.toml"), run_dir=tmp_path / "run")
    assert path.read_text().startswith("version = 1")
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_url_that_fails_is_one_line(served: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"obelisk\.answers=http.*/gone\.toml: cannot download it"):
        medium.locate(parse_answers(f"{served}/gone.toml"), run_dir=tmp_path / "run")


def test_no_labelled_filesystem_is_no_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(medium, "BY_LABEL", tmp_path / "by-label")
    assert medium.find_nocloud(run_dir=tmp_path / "run") is None
