"""How `authsvc --help` and each command's --help explain themselves (issue 16): a sentence
per command, defaults after each option, and the environment variables each command reads."""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = """\
authsvc: a JSON REST account service on Amazon Cognito user pools.

Production: authsvc migrate, then authsvc check-config, then authsvc serve; the first
administrator comes from authsvc create-admin. Development: authsvc dev (no AWS account).
Every setting is an environment variable named AUTHSVC_<SETTING>."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each option's help; descriptions and epilogs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # "(default: None)" or "(default: False)" says nothing: the help says what happens.
        if action.default is None or action.default is False or action.required:
            return action.help
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)
        self.settings_of: str | None = None  # the command whose settings --help lists

    def format_help(self) -> str:
        # Built when help is shown, not on every run: `authsvc serve` never shows it
        # (issue 12: start-up).
        if self.epilog is None and self.settings_of is not None:
            self.epilog = settings_epilog(self.settings_of)
        return super().format_help()


# Settings fields a command reads (None: all of them, which is what every command that
# builds the app from the environment does). Others read more than Settings: listed too.
COMMAND_SETTINGS: dict[str, tuple[str, ...] | None] = {
    "migrate": (),
    "openapi": (),
    "create-admin": (
        "cognito_region",
        "cognito_user_pool_id",
        "cognito_endpoint_url",
        "cognito_connect_timeout",
        "cognito_read_timeout",
        "cognito_max_attempts",
        "admin_group",
    ),
}
_COMMAND_EXTRA_ENV: dict[str, tuple[str, ...]] = {
    "dev": (
        "AUTHSVC_DEV_ADMIN_EMAIL (default: admin@example.com)",
        "AUTHSVC_DEV_ADMIN_PASSWORD (default: generated, printed in the banner)",
    ),
    "migrate": (
        "AUTHSVC_DATABASE_URL (required unless --database-url is given)",
        "AUTHSVC_MIGRATIONS_DIR (default: the package's migrations folder)",
    ),
    "create-admin": ("AWS credentials: the usual AWS_* variables, profile or role",),
    "serve": (
        "PROMETHEUS_MULTIPROC_DIR (default: with --workers > 1, a private temporary directory)",
        "OTEL_EXPORTER_OTLP_ENDPOINT (default: unset, no tracing; see the README's Tracing)",
    ),
}


def _shown_default(field: str) -> str:
    from authsvc.config import Settings

    info = Settings.model_fields[field]
    value = info.get_default(call_default_factory=True)
    if value is None or value == [] or value == {} or value == "":
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def settings_epilog(command: str) -> str:
    """The environment variables ``command`` reads, each with its default (generated from
    Settings, so a new setting is listed without touching this file)."""
    from authsvc.config import Settings

    fields = COMMAND_SETTINGS.get(command)
    names = list(Settings.model_fields) if fields is None else list(fields)
    names = [name for name in names if name != "dev_mode"]  # never read from the environment
    lines = [f"  {f'AUTHSVC_{name.upper()}':<46} {_shown_default(name)}" for name in names]
    lines += [f"  {extra}" for extra in _COMMAND_EXTRA_ENV.get(command, ())]
    if not lines:
        return "environment: none read"
    return "environment variables (default):\n" + "\n".join(lines)


def describe_commands(sub: Any) -> None:
    """Each command's --help: its one-line summary as description, its settings as epilog."""
    # argparse keeps each command's `help=` only on these pseudo-actions.
    summaries = {action.dest: action.help for action in sub._choices_actions}
    for name, command in sub.choices.items():
        if command.description is None and summaries.get(name):
            summary = str(summaries[name])
            command.description = summary[:1].upper() + summary[1:] + "."
        if command.epilog is None:
            command.settings_of = name
