"""The README's "The API by example" runs as written (issue 13 item 8).

Every ```sh block of that section runs, in order, in one bash process (so the variables a
block sets are there for the next) against a live `authsvc dev`. `curl` is wrapped to record
the status of each call with the script line it came from; every status the README shows for
a command (`# 204` after it, or on the line below) must be the one the server answered.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.test_dev_cli import ADMIN_PASSWORD, DevServer

README = Path(__file__).resolve().parents[2] / "README.md"
STATUS = re.compile(r"(?:^|\s)#\s*([1-5][0-9]{2})\b")


@dataclass
class Command:
    first: int  # script lines (1-based), continuation lines included
    last: int
    text: str
    expected: int | None


def walkthrough() -> str:
    text = README.read_text()
    start = text.index("## The API by example")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def script_and_commands() -> tuple[str, list[Command]]:
    blocks = re.findall(r"^```sh\n(.*?)^```", walkthrough(), re.S | re.M)
    assert len(blocks) >= 6, "the walk-through lost its blocks"
    lines = "\n".join(blocks).split("\n")
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        first = index
        while lines[index].rstrip().endswith("\\") and index + 1 < len(lines):
            index += 1
        text = "\n".join(lines[first : index + 1])
        if "curl " in text and not text.lstrip().startswith("#"):
            shown = STATUS.search(lines[index])
            following = lines[index + 1].lstrip() if index + 1 < len(lines) else ""
            if shown is None and following.startswith("#"):
                shown = STATUS.match(" " + following)
            looped = text.lstrip().startswith(("until ", "while ", "for "))
            expected = int(shown.group(1)) if shown and not looped else None
            commands.append(Command(first + 1, index + 1, text, expected))
        index += 1
    return "\n".join(lines) + "\n", commands


def test_every_curl_in_the_walkthrough_shows_its_status() -> None:
    """The README states what each call answers (loops and captures of the outbox aside)."""
    _, commands = script_and_commands()
    silent = [
        c.text
        for c in commands
        if c.expected is None and "/dev/outbox" not in c.text and "until " not in c.text
    ]
    assert not silent, "curl calls without a status in the README:\n" + "\n".join(silent)


def test_readme_names_the_admin_password_the_walkthrough_uses() -> None:
    assert f"AUTHSVC_DEV_ADMIN_PASSWORD='{ADMIN_PASSWORD}' make run" in walkthrough()


@pytest.mark.slow
def test_walkthrough_runs_as_written(dev_server: DevServer, tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        if IN_CI:
            pytest.fail("jq is needed by the README walk-through (apt-get install jq)")
        pytest.skip("jq is not installed (apt-get install jq)")
    body, commands = script_and_commands()
    statuses = tmp_path / "statuses.txt"
    # BASH_LINENO[0]: the script line of the call (inside $(...) too).
    prelude = (
        "set -e\n"
        'curl() { command curl -w "%{stderr}${BASH_LINENO[0]} %{http_code}\\n" "$@"'
        ' 2>>"$STATUS_LOG"; }\n'
    )
    script = tmp_path / "walkthrough.sh"
    script.write_text(prelude + body)
    offset = prelude.count("\n")
    env = {**os.environ, "B": dev_server.base_url, "STATUS_LOG": str(statuses)}
    result = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=240
    )
    log = statuses.read_text() if statuses.exists() else ""
    assert result.returncode == 0, (
        f"the walk-through stopped (exit {result.returncode}):\n{result.stderr[-3000:]}\n"
        f"statuses so far:\n{log}"
    )
    answered: list[tuple[int, int]] = []
    for entry in log.split("\n"):
        if entry.strip():
            line, status = entry.split()
            answered.append((int(line) - offset, int(status)))
    checked = 0
    for command in commands:
        got = [s for line, s in answered if command.first <= line <= command.last]
        assert got, f"never ran: {command.text}"
        if command.expected is not None:
            assert got == [command.expected], f"{command.text}\nanswered {got}\n{result.stdout}"
            checked += 1
    assert checked >= 40, checked


def test_every_setting_is_documented_by_its_full_name() -> None:
    from authsvc.config import Settings

    text = README.read_text()
    # dev_mode is set by `authsvc dev` itself, never from the environment.
    missing = [
        f"AUTHSVC_{name.upper()}"
        for name in Settings.model_fields
        if name != "dev_mode" and f"`AUTHSVC_{name.upper()}`" not in text
    ]
    assert not missing, f"README's Configuration lacks {missing}"


def test_readme_cites_no_file_outside_the_repository() -> None:
    assert "../" not in README.read_text()
