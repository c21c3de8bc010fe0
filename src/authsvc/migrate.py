"""Running Alembic from code: `authsvc migrate`, `authsvc dev` start-up and the tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

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


# -- Is the schema at head? (/readyz, `authsvc check-config`, serve's background workers) --


class SchemaBehindError(Exception):
    """The database's schema is older than this release's migrations."""


@dataclass(frozen=True)
class SchemaState:
    current: tuple[str, ...]
    heads: tuple[str, ...]
    known: bool  # every current revision is one of this release's scripts

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)

    @property
    def behind(self) -> bool:
        # A revision this release does not know was written by a newer release (a rolling
        # deploy migrated first): that schema is not behind, so it is not a failure here.
        return not self.at_head and self.known

    def describe(self) -> str:
        current = ", ".join(self.current) or "none"
        heads = ", ".join(self.heads)
        if self.behind:
            return f"migrations behind (current {current}, head {heads})"
        if self.at_head:
            return f"at head ({heads})"
        return f"newer than this release (current {current}, head {heads})"


@lru_cache(maxsize=1)
def _scripts() -> tuple[tuple[str, ...], frozenset[str]]:
    """This release's head revisions and every revision it knows (read once: the scripts
    do not change while the process runs)."""
    script = ScriptDirectory(str(migrations_dir()))
    known = frozenset(revision.revision for revision in script.walk_revisions())
    return tuple(script.get_heads()), known


def schema_state(connection: Connection) -> SchemaState:
    """One read of ``alembic_version`` (none on a database that was never migrated)."""
    heads, known = _scripts()
    current = tuple(MigrationContext.configure(connection).get_current_heads())
    return SchemaState(current=current, heads=heads, known=all(rev in known for rev in current))


def check_schema(connection: Connection) -> SchemaState:
    """``schema_state``, raising SchemaBehindError (its message names both revisions)."""
    state = schema_state(connection)
    if state.behind:
        raise SchemaBehindError(f"{state.describe()}: run `authsvc migrate`")
    return state
