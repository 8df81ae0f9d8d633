"""Where the token is kept: one JSON file in the user's configuration folder, readable only by the user.

The file is created with mode 0600 inside a 0700 folder (never written first and narrowed afterwards), and
rewritten atomically, so a token is never readable by others even for a moment."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs


@dataclass
class Login:
    server: str
    token: str
    username: str = ""
    language: str = ""


def config_dir() -> Path:
    return Path(os.environ.get("DD2601_CONFIG_DIR") or platformdirs.user_config_dir("dd2601"))


def config_file() -> Path:
    return config_dir() / "login.json"


def load() -> Login | None:
    """The stored login, with DD2601_SERVER / DD2601_TOKEN taking precedence (scripts, CI)."""
    stored: dict = {}
    if config_file().exists():
        stored = json.loads(config_file().read_text())
    server = os.environ.get("DD2601_SERVER") or stored.get("server")
    token = os.environ.get("DD2601_TOKEN") or stored.get("token")
    if not (server and token):
        return None
    return Login(server=server, token=token, username=stored.get("username", ""), language=stored.get("language", ""))


def save(login: Login) -> Path:
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".login-", suffix=".json")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(login), out)
        os.replace(temporary, config_file())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return config_file()


def forget() -> bool:
    if config_file().exists():
        config_file().unlink()
        return True
    return False
