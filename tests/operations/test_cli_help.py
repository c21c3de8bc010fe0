"""Issue 16 item 6: `authsvc --help` lists every command with a sentence, and each command's
--help shows its defaults and the environment variables it reads."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from authsvc import cli
from authsvc.config import Settings
from tests.operations.support import env_for, run


def _commands() -> dict[str, str]:
    """The commands main() registers, read from the parser it builds."""
    seen: dict[str, argparse.ArgumentParser] = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                seen.update(action.choices)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[assignment,method-assign]
    try:
        with pytest.raises(SystemExit):
            cli.main([])
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return {name: parser.format_help() for name, parser in seen.items()}


def test_top_level_help_lists_every_command_with_a_sentence(tmp_path: Path) -> None:
    result = run("--help", env=env_for(), cwd=tmp_path)
    assert result.returncode == 0
    assert "`" not in result.stdout
    listed = result.stdout.split("positional arguments:")[1].split("options:")[0]
    for name in _commands():
        match = re.search(rf"^\s+{re.escape(name)}\s*\n?\s+(\w.+)$", listed, re.MULTILINE)
        assert match, f"{name} has no sentence in:\n{listed}"


@pytest.mark.parametrize("command", sorted(_commands()))
def test_each_command_help_shows_defaults_and_environment(command: str, tmp_path: Path) -> None:
    result = run(command, "--help", env=env_for(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "`" not in text
    assert "environment" in text
    if command in {"serve", "dev", "check-config", "reconcile", "deliver"}:
        for field in Settings.model_fields:
            if field != "dev_mode":
                assert f"AUTHSVC_{field.upper()}" in text, (command, field)
    if command in {"serve", "dev"}:
        assert "(default: 127.0.0.1)" in text
        assert "(default: 8000)" in text


def test_create_admin_help_names_what_it_reads(tmp_path: Path) -> None:
    text = run("create-admin", "--help", env=env_for(), cwd=tmp_path).stdout
    assert "AUTHSVC_COGNITO_USER_POOL_ID" in text
    assert "AUTHSVC_ADMIN_GROUP" in text
    assert "(default: Admin)" in text
    assert "AUTHSVC_SECRET_KEY" not in text  # not needed to create an admin
