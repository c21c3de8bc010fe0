"""GET /dev/outbox as a page: HTML for a browser, the same JSON as before for scripts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from authsvc.dev.inbox import wants_html
from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app
from tests.helpers import PASSWORD

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


class Page(HTMLParser):
    """The parts of the page a person sees: recipients, subjects, codes, links, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []  # (tag, text)
        self.codes: list[str] = []
        self.links: list[str] = []
        self._open: list[tuple[str, dict[str, str | None]]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self._open.append((tag, dict(attrs)))
        if tag == "a":
            self.links.append(str(dict(attrs).get("href")))
        if tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if not self._open:
            return
        tag, attrs = self._open[-1]
        if tag in ("h2", "h3"):
            self.headings.append((tag, data))
        if tag == "p" and attrs.get("class") == "code":
            self.codes.append(data)


@pytest.fixture
def inbox_client(settings) -> Iterator[tuple[TestClient, DevOutbox]]:
    box = DevOutbox()
    with TestClient(create_app(settings, outbox=box), raise_server_exceptions=False) as client:
        yield client, box


def page(client: TestClient, **params: str) -> Page:
    response = client.get("/dev/outbox", params=params, headers={"Accept": BROWSER})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["vary"] == "Accept"
    parsed = Page()
    parsed.feed(response.text)
    return parsed


class TestHtml:
    def test_grouped_by_recipient_newest_first(self, inbox_client):
        client, box = inbox_client
        box.deliver(to="ann@example.com", subject="First to Ann", kind="k", body="one")
        box.deliver(to="bob@example.com", subject="Only to Bob", kind="k", body="two")
        box.deliver(to="ann@example.com", subject="Second to Ann", kind="k", body="three")
        shown = page(client).headings
        assert shown == [
            ("h2", "ann@example.com"),
            ("h3", "Second to Ann"),
            ("h3", "First to Ann"),
            ("h2", "bob@example.com"),
            ("h3", "Only to Bob"),
        ]

    def test_code_is_shown_large_and_links_are_clickable(self, inbox_client):
        client, box = inbox_client
        link = "http://127.0.0.1:8000/dev/spa/accept-invitation#token=abc-DEF_1"
        box.deliver(
            to="c@example.com",
            subject="Your code",
            kind="sign_up_code",
            body="Your code is 012345.",
            code="012345",
        )
        box.deliver(
            to="c@example.com",
            subject="You are invited",
            kind="invitation",
            body=f"Accept: {link}. See https://example.com/help, too.",
            link=link,
        )
        box.deliver(
            to="d@example.com", subject="Link only", kind="k", body="No URL here.", link=link
        )
        parsed = page(client)
        assert parsed.codes == ["012345"]
        # Each message's link once: from its body, or its own line when the body lacks it.
        assert parsed.links.count(link) == 2
        assert "https://example.com/help" in parsed.links
        assert parsed.scripts == 0

    def test_message_text_is_escaped(self, inbox_client):
        client, box = inbox_client
        box.deliver(
            to="x@example.com",
            subject="<script>alert(1)</script>",
            kind="k",
            body='<img src=x onerror="alert(2)"> javascript:alert(3)',
            link="javascript:alert(4)",
        )
        response = client.get("/dev/outbox", headers={"Accept": BROWSER})
        assert "<script>alert(1)" not in response.text
        assert "&lt;script&gt;" in response.text
        assert "<img" not in response.text
        parsed = Page()
        parsed.feed(response.text)
        assert parsed.scripts == 0
        assert not any(href.startswith("javascript:") for href in parsed.links)

    def test_filters_apply(self, inbox_client):
        client, box = inbox_client
        box.deliver(to="a@example.com", subject="A", kind="one", body="a")
        box.deliver(to="b@example.com", subject="B", kind="two", body="b")
        assert page(client, to="B@example.com").headings == [("h2", "b@example.com"), ("h3", "B")]
        assert page(client, kind="one").headings == [("h2", "a@example.com"), ("h3", "A")]

    def test_empty_outbox_says_what_to_do(self, inbox_client):
        client, _ = inbox_client
        response = client.get("/dev/outbox", headers={"Accept": BROWSER})
        assert "Nothing yet" in response.text

    def test_sign_up_code_reaches_the_page(self, inbox_client):
        client, box = inbox_client
        email = f"page-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD, "given_name": "P", "family_name": "Q"}
        assert client.post("/v1/auth/sign-up", json=body).status_code == 202
        code = box.list(to=email)[0].code
        assert code and re.fullmatch(r"\d{6}", code)
        parsed = page(client, to=email)
        assert parsed.codes == [code]


class TestJsonStays:
    @pytest.mark.parametrize(
        "accept", [None, "*/*", "application/json", "application/json, text/html;q=0.5"]
    )
    def test_scripts_get_json(self, inbox_client, accept):
        client, box = inbox_client
        box.deliver(to="j@example.com", subject="S", kind="k", body="b", code="123456")
        headers = {"Accept": accept} if accept else {}
        response = client.get("/dev/outbox", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        (message,) = response.json()
        assert {k: message[k] for k in ("to", "subject", "kind", "body", "code", "link")} == {
            "to": "j@example.com",
            "subject": "S",
            "kind": "k",
            "body": "b",
            "code": "123456",
            "link": None,
        }


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER, True),
        ("text/html", True),
        ("text/html;q=0.9, application/json", False),
        ("application/json;q=0.5, text/html;q=0.8", True),
        ("text/html;q=0", False),
        ("*/*", False),
        ("", False),
        (None, False),
    ],
)
def test_wants_html(accept, html):
    assert wants_html(accept) is html
