"""A live `authsvc dev` for the front-end developer's path (issue 13): the README walk-through
and the generated clients run against it over HTTP, as a person would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_dev_cli import DevServer, _kill, _start_dev


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = _start_dev(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        _kill(server.process)
