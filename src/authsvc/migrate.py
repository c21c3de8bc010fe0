"""Running Alembic from code: `authsvc migrate`, `authsvc dev` start-up and the tests."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

from authsvc.db import normalise_url


def migrations_dir() -> Path:
    candidates = [
        os.environ.get("AUTHSVC_MIGRATIONS_DIR"),
        str(Path(__file__).resolve().parents[2] / "migrations"),
        str(Path.cwd() / "migrations"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "env.py").is_file():
            return Path(candidate)
    raise RuntimeError("cannot find the migrations folder; set AUTHSVC_MIGRATIONS_DIR")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(slug)s",
    )
    config.attributes["database_url"] = normalise_url(database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
