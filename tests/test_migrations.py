"""Alembic migrations: round trip on Postgres and SQLite, no drift from the models, names."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

import authsvc.models  # noqa: F401  (registers every table on Base.metadata)
from authsvc import migrate
from authsvc.db import NAMING_CONVENTION, Base, make_engine
from tests.conftest import create_database, drop_database

FILE_NAME = re.compile(r"^(\d{4})_(\d{2})_(\d{2})_(\d{2})(\d{2})-([a-z0-9]+(?:_[a-z0-9]+)*)\.py$")
TABLES = set(Base.metadata.tables)


@pytest.fixture
def fresh_postgres(postgres_server: str) -> Iterator[str]:
    url = create_database(postgres_server, prefix="authsvc_mig")
    yield url
    drop_database(postgres_server, url)


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture(params=["postgres", "sqlite"])
def fresh_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"fresh_{request.param}"))


def _engine(url: str) -> Engine:
    return make_engine(url)


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "target_metadata": Base.metadata}
        )
        return list(compare_metadata(context, Base.metadata))


def _head() -> str:
    heads = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return heads[0]


def _current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_models_define_tables() -> None:
    # Guard against an empty metadata making every comparison below trivially pass.
    assert {"token_revocation", "token_allowance"} <= TABLES


def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    engine = _engine(fresh_url)
    try:
        migrate.upgrade(fresh_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert _current(engine) == _head()
        assert _diff(engine) == []

        migrate.downgrade(fresh_url, "base")
        engine.dispose()
        left = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert left == set(), f"downgrade to base left tables behind: {left}"
        assert _current(engine) is None

        migrate.upgrade(fresh_url)
        engine.dispose()
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert _current(engine) == _head()
        diff = _diff(engine)
        assert diff == [], f"database and models differ after migrating: {diff}"
    finally:
        engine.dispose()


def test_every_revision_steps_down_and_up(fresh_url: str) -> None:
    # Each migration's downgrade undoes exactly its upgrade, one step at a time.
    script = ScriptDirectory.from_config(migrate.alembic_config(fresh_url))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    engine = _engine(fresh_url)
    try:
        for revision in revisions:
            migrate.upgrade(fresh_url, revision)
            engine.dispose()
            tables = set(inspect(engine).get_table_names())
            migrate.downgrade(fresh_url, "-1")
            migrate.upgrade(fresh_url, revision)
            engine.dispose()
            assert set(inspect(engine).get_table_names()) == tables
            assert _current(engine) == revision
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(fresh_sqlite: str) -> None:
    migrate.upgrade(fresh_sqlite)
    migrate.upgrade(fresh_sqlite)
    engine = create_engine(fresh_sqlite)
    try:
        assert _current(engine) == _head()
    finally:
        engine.dispose()


def test_migration_file_names_follow_the_date_slug_pattern() -> None:
    versions = migrate.migrations_dir() / "versions"
    files = sorted(p.name for p in versions.glob("*.py") if p.name != "__init__.py")
    assert files, "no migrations"
    for name in files:
        match = FILE_NAME.match(name)
        assert match, f"{name} does not follow YYYY_MM_DD_HHMM-slug.py"
        year, month, day, hour, minute = (int(g) for g in match.groups()[:5])
        stamp = datetime(year, month, day, hour, minute)
        # The name is the revision's own creation time (alembic's file_template).
        text = (versions / name).read_text()
        created = re.search(r"^Create Date: (\d{4}-\d{2}-\d{2} \d{2}:\d{2})", text, re.M)
        assert created, f"{name} has no Create Date"
        assert stamp == datetime.strptime(created.group(1), "%Y-%m-%d %H:%M"), name


def test_file_template_is_the_same_for_alembic_ini_and_authsvc_migrate() -> None:
    ini = (Path(__file__).resolve().parents[1] / "alembic.ini").read_text()
    configured = re.search(r"^file_template\s*=\s*(.+)$", ini, re.M)
    assert configured
    template = migrate.alembic_config("sqlite://").get_main_option("file_template")
    assert configured.group(1).strip().replace("%%", "%") == template


def test_migration_chain_is_linear() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    revisions = list(script.walk_revisions())
    assert len(script.get_bases()) == 1
    for revision in revisions:
        assert not revision.is_merge_point
        assert not revision.branch_labels
    assert _head() == revisions[0].revision


def test_naming_convention_in_the_models() -> None:
    assert NAMING_CONVENTION["pk"] == "pk_%(table_name)s"
    for table in Base.metadata.sorted_tables:
        assert table.primary_key.name == f"pk_{table.name}", table.name
        for index in table.indexes:
            # A unique (e.g. partial) index is a uniqueness rule: uq_ then, else ix_.
            prefix = "uq" if index.unique else "ix"
            assert index.name and index.name.startswith(f"{prefix}_{table.name}_"), index.name
        for fk in table.foreign_key_constraints:
            assert fk.name and fk.name.startswith(f"fk_{table.name}_"), fk.name


def _reflected_names(engine: Engine) -> dict[str, dict[str, list[str]]]:
    inspector = inspect(engine)
    names: dict[str, dict[str, list[str]]] = {}
    for table in TABLES:
        names[table] = {
            "pk": [inspector.get_pk_constraint(table)["name"]],
            "ix": [i["name"] for i in inspector.get_indexes(table) if not i["unique"]],
            "uq_ix": [i["name"] for i in inspector.get_indexes(table) if i["unique"]],
            "uq": [u["name"] for u in inspector.get_unique_constraints(table)],
            "fk": [f["name"] for f in inspector.get_foreign_keys(table)],
            "ck": [c["name"] for c in inspector.get_check_constraints(table)],
        }
    return names


def test_naming_convention_in_the_postgres_database(fresh_postgres: str) -> None:
    migrate.upgrade(fresh_postgres)
    engine = _engine(fresh_postgres)
    try:
        for table, names in _reflected_names(engine).items():
            assert names["pk"] == [f"pk_{table}"], table
            for kind in ("ix", "uq", "fk", "ck", "uq_ix"):
                prefix = kind.split("_")[0]
                for name in names[kind]:
                    assert name and name.startswith(f"{prefix}_{table}_"), (table, kind, name)
    finally:
        engine.dispose()


def test_naming_convention_in_the_sqlite_database(fresh_sqlite: str) -> None:
    migrate.upgrade(fresh_sqlite)
    engine = _engine(fresh_sqlite)
    try:
        for table, names in _reflected_names(engine).items():
            assert names["pk"] == [f"pk_{table}"], table
            for kind in ("ix", "uq_ix"):
                prefix = kind.split("_")[0]
                for name in names[kind]:
                    assert name and name.startswith(f"{prefix}_{table}_"), (table, name)
    finally:
        engine.dispose()


def test_postgres_url_forms_migrate(postgres_server: str) -> None:
    # `postgres://` and `postgresql://` (what platforms hand out) both work, via psycopg 3.
    url = create_database(postgres_server, prefix="authsvc_mig")
    try:
        plain = url.replace("postgresql+psycopg://", "postgres://")
        assert plain.startswith("postgres://")
        migrate.upgrade(plain)
        engine = _engine(url)
        try:
            assert _current(engine) == _head()
        finally:
            engine.dispose()
    finally:
        drop_database(postgres_server, url)


# -- schema_state reads the scripts without alembic (issue 12: serve start-up) -----------


def _alembic_heads(script_location: Path) -> tuple[set[str], set[str]]:
    script = ScriptDirectory(str(script_location))
    return set(script.get_heads()), {r.revision for r in script.walk_revisions()}


def test_script_heads_agree_with_alembic_on_the_shipped_migrations() -> None:
    heads, known = migrate.script_heads(migrate.migrations_dir() / "versions")
    alembic_heads, alembic_known = _alembic_heads(migrate.migrations_dir())
    assert (set(heads), set(known)) == (alembic_heads, alembic_known)
    assert len(known) >= 6 and heads == (_head(),)


SCRIPT = '''"""{doc}"""
from alembic import op  # noqa: F401

{assignments}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


def _write(folder: Path, name: str, assignments: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(SCRIPT.format(doc=name, assignments=assignments))


def test_script_heads_agree_with_alembic_on_branches_and_merges(tmp_path: Path) -> None:
    # Every form a script may take: tuple and list parents, annotated assignments, two
    # open branches and a merge point; and files alembic does not load (a subfolder too).
    versions = tmp_path / "versions"
    _write(versions, "a_base.py", 'revision = "aaa"\ndown_revision = None')
    _write(versions, "b_left.py", 'revision: str = "bbb"\ndown_revision: str | None = "aaa"')
    _write(versions, "c_right.py", "revision = 'ccc'\ndown_revision = 'aaa'")
    _write(versions, "d_merge.py", 'revision = "ddd"\ndown_revision = ("bbb", "ccc")')
    _write(versions, "e_after.py", 'revision = "eee"\ndown_revision = ["ddd"]')
    _write(versions / "more", "g_elsewhere.py", 'revision = "ggg"\ndown_revision = "eee"')
    _write(versions, "f_branch.py", 'revision = "fff"\ndown_revision = "ccc"\nfff = "zzz"')
    (versions / "__init__.py").write_text('revision = "not-a-revision"\n')
    (versions / "notes.txt").write_text('revision = "not-python"\n')
    heads, known = migrate.script_heads(versions)
    assert heads == ("eee", "fff")
    assert (set(heads), set(known)) == _alembic_heads(tmp_path)


def test_a_script_without_a_literal_revision_is_refused(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    _write(versions, "a.py", "revision = make_id()\ndown_revision = None")
    with pytest.raises(migrate.ScriptError, match="a.py: revision is not a literal"):
        migrate.script_heads(versions)
    (versions / "a.py").write_text('down_revision = None\n"""no revision"""\n')
    with pytest.raises(migrate.ScriptError, match="no revision identifier"):
        migrate.script_heads(versions)


def test_schema_state_reads_what_alembic_reads(fresh_url: str) -> None:
    engine = _engine(fresh_url)
    heads, known = migrate.script_heads(migrate.migrations_dir() / "versions")
    first = ScriptDirectory(str(migrate.migrations_dir())).get_base()
    try:

        def both() -> tuple[tuple[str, ...], tuple[str, ...]]:
            with engine.connect() as conn:
                ours = migrate.current_revisions(conn)
                theirs = MigrationContext.configure(conn).get_current_heads()
                return ours, tuple(theirs)

        # Never migrated: no alembic_version table at all.
        assert both() == ((), ())
        with engine.connect() as conn:
            state = migrate.schema_state(conn)
        assert (state.current, state.at_head, state.behind) == ((), False, True)

        migrate.upgrade(fresh_url, first)
        engine.dispose()
        assert both() == ((first,), (first,))
        with engine.connect() as conn:
            state = migrate.schema_state(conn)
        assert state.behind and not state.at_head and state.known
        assert f"current {first}" in state.describe()

        migrate.upgrade(fresh_url)
        engine.dispose()
        assert both() == (heads, heads)
        with engine.connect() as conn:
            state = migrate.schema_state(conn)
        assert state.at_head and not state.behind and state.describe() == f"at head ({heads[0]})"

        # A revision from a newer release: not behind (a rolling deploy migrated first).
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'fromthefuture'"))
        assert both() == (("fromthefuture",), ("fromthefuture",))
        with engine.connect() as conn:
            state = migrate.schema_state(conn)
        assert not state.known and not state.behind and "newer than" in state.describe()
        assert "fromthefuture" not in known
    finally:
        engine.dispose()


def test_checking_the_schema_state_does_not_import_alembic() -> None:
    code = (
        "import sys; from sqlalchemy import create_engine; from authsvc import migrate;"
        "e = create_engine('sqlite://');"
        "c = e.connect(); s = migrate.schema_state(c);"
        "assert s.behind, s;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'alembic', 'mako'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
