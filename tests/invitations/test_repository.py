"""InvitationRepository on real Postgres (migrated by Alembic), each test in a transaction
that is rolled back afterwards (SQLAlchemy's "join an external transaction" recipe)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authsvc.invitations.models import ACCEPTED, EXPIRED, PENDING, REVOKED, Invitation
from authsvc.invitations.repository import InvitationRepository
from authsvc.invitations.service import hash_token, new_token

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture(scope="module")
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def repo(session: Session) -> InvitationRepository:
    return InvitationRepository(session)


def make(
    repo: InvitationRepository,
    *,
    email: str | None = None,
    status: str = PENDING,
    created_at: datetime = NOW,
    expires_at: datetime | None = None,
) -> Invitation:
    invitation = Invitation(
        id=uuid.uuid4(),
        email=email or f"repo-{uuid.uuid4().hex[:10]}@example.com",
        family_name="Repo",
        attributes={},
        groups=[],
        status=status,
        token_hash=hash_token(new_token()),
        invited_by="admin-sub",
        created_at=created_at,
        updated_at=created_at,
        expires_at=expires_at or created_at + timedelta(days=7),
    )
    repo.add(invitation)
    return invitation


def fresh(session: Session, invitation: Invitation) -> Invitation:
    """The row as the database has it (the repository updates bypass the identity map)."""
    session.expire_all()
    row = session.get(Invitation, invitation.id)
    assert row is not None
    return row


class TestClaim:
    def test_only_one_of_two_claims_wins(self, session, repo):
        invitation = make(repo)
        first, second = uuid.uuid4(), uuid.uuid4()
        assert repo.claim(invitation.id, first, NOW, NOW + LEASE) is True
        assert repo.claim(invitation.id, second, NOW + timedelta(seconds=1), NOW + LEASE) is False
        row = fresh(session, invitation)
        assert row.claim_id == first
        assert row.claimed_until == NOW + LEASE

    def test_an_expired_lease_can_be_reclaimed(self, session, repo):
        invitation = make(repo)
        first, second = uuid.uuid4(), uuid.uuid4()
        assert repo.claim(invitation.id, first, NOW, NOW + LEASE)
        later = NOW + LEASE + timedelta(seconds=1)
        assert repo.claim(invitation.id, second, later, later + LEASE) is True
        assert fresh(session, invitation).claim_id == second
        # The first owner lost the row with its lease: it may no longer write to it.
        assert repo.record_user(invitation.id, first, "sub-1", later) is False

    def test_claim_with_a_token_needs_the_current_token(self, session, repo):
        invitation = make(repo)
        current = invitation.token_hash
        stale = hash_token(new_token())
        assert repo.claim(invitation.id, uuid.uuid4(), NOW, NOW + LEASE, token_hash=stale) is False
        assert fresh(session, invitation).claim_id is None
        owner = uuid.uuid4()
        assert repo.claim(invitation.id, owner, NOW, NOW + LEASE, token_hash=current) is True
        assert fresh(session, invitation).claim_id == owner

    def test_an_expired_invitation_cannot_be_claimed(self, repo):
        invitation = make(repo, expires_at=NOW - timedelta(seconds=1))
        assert repo.claim(invitation.id, uuid.uuid4(), NOW, NOW + LEASE) is False

    @pytest.mark.parametrize("status", [ACCEPTED, REVOKED, EXPIRED])
    def test_only_pending_invitations_can_be_claimed(self, repo, status):
        invitation = make(repo, status=status)
        assert repo.claim(invitation.id, uuid.uuid4(), NOW, NOW + LEASE) is False


class TestOwnerOnlyWrites:
    def test_record_user_only_for_the_claim_owner(self, session, repo):
        invitation = make(repo)
        owner = uuid.uuid4()
        assert repo.claim(invitation.id, owner, NOW, NOW + LEASE)
        assert repo.record_user(invitation.id, uuid.uuid4(), "intruder", NOW) is False
        assert fresh(session, invitation).user_sub is None
        assert repo.record_user(invitation.id, owner, "sub-1", NOW) is True
        assert fresh(session, invitation).user_sub == "sub-1"

    def test_mark_accepted_only_for_the_claim_owner(self, session, repo):
        invitation = make(repo)
        owner = uuid.uuid4()
        assert repo.claim(invitation.id, owner, NOW, NOW + LEASE)
        assert repo.mark_accepted(invitation.id, uuid.uuid4(), "intruder", NOW) is False
        assert fresh(session, invitation).status == PENDING
        assert repo.mark_accepted(invitation.id, owner, "sub-1", NOW) is True
        row = fresh(session, invitation)
        assert (row.status, row.user_sub, row.accepted_at) == (ACCEPTED, "sub-1", NOW)
        assert row.claim_id is None and row.claimed_until is None
        # Accepted is final: the former owner cannot write again.
        assert repo.release(invitation.id, owner, NOW) is False

    def test_release_only_for_the_claim_owner(self, session, repo):
        invitation = make(repo)
        owner = uuid.uuid4()
        assert repo.claim(invitation.id, owner, NOW, NOW + LEASE)
        assert repo.release(invitation.id, uuid.uuid4(), NOW) is False
        assert fresh(session, invitation).claim_id == owner
        assert repo.release(invitation.id, owner, NOW) is True
        row = fresh(session, invitation)
        assert row.claim_id is None and row.claimed_until is None
        # Released: anyone may claim it again at once.
        assert repo.claim(invitation.id, uuid.uuid4(), NOW, NOW + LEASE) is True

    def test_unclaimed_rows_take_no_owner_writes(self, repo):
        invitation = make(repo)
        assert repo.record_user(invitation.id, uuid.uuid4(), "sub", NOW) is False
        assert repo.mark_accepted(invitation.id, uuid.uuid4(), "sub", NOW) is False


class TestList:
    def walk(self, repo: InvitationRepository, limit: int, **filters) -> list[Invitation]:
        seen: list[Invitation] = []
        after = None
        for _ in range(1000):
            page = repo.list(
                now=NOW,
                status=filters.get("status"),
                email=filters.get("email"),
                after=after,
                limit=limit,
            )
            seen.extend(page)
            if len(page) < limit:
                return seen
            after = (page[-1].created_at, page[-1].id)
        raise AssertionError("pagination does not end")

    def test_keyset_pagination_walks_everything_once_newest_first(self, repo):
        mine = [make(repo, created_at=NOW - timedelta(minutes=i)) for i in range(5)]
        # Three rows with the same created_at: the id breaks the tie.
        tied = [make(repo, created_at=NOW - timedelta(minutes=10)) for _ in range(3)]
        mine += tied
        seen = self.walk(repo, limit=2)
        ids = [row.id for row in seen]
        assert len(ids) == len(set(ids)), "a row appeared on two pages"
        keys = [(row.created_at, row.id) for row in seen]
        assert keys == sorted(keys, reverse=True)
        expected = sorted(mine, key=lambda r: (r.created_at, r.id), reverse=True)
        assert [i for i in ids if i in {r.id for r in mine}] == [r.id for r in expected]

    def test_pending_excludes_rows_past_their_expiry(self, repo):
        live = make(repo)
        lapsed = make(repo, expires_at=NOW - timedelta(seconds=1))
        pending = {row.id for row in self.walk(repo, limit=50, status=PENDING)}
        assert live.id in pending
        assert lapsed.id not in pending

    def test_expired_includes_computed_and_stored_expiry(self, repo):
        live = make(repo)
        lapsed = make(repo, expires_at=NOW - timedelta(seconds=1))
        stored = make(repo, status=EXPIRED)
        expired = {row.id for row in self.walk(repo, limit=50, status=EXPIRED)}
        assert {lapsed.id, stored.id} <= expired
        assert live.id not in expired

    def test_other_status_filters_and_email(self, repo):
        email = f"filter-{uuid.uuid4().hex[:8]}@example.com"
        accepted = make(repo, email=email, status=ACCEPTED)
        revoked = make(repo, email=email, status=REVOKED)
        pending = make(repo, email=email)
        make(repo)  # someone else
        assert {r.id for r in self.walk(repo, 50, email=email)} == {
            accepted.id,
            revoked.id,
            pending.id,
        }
        assert [r.id for r in self.walk(repo, 50, email=email, status=REVOKED)] == [revoked.id]
        assert [r.id for r in self.walk(repo, 50, email=email, status=ACCEPTED)] == [accepted.id]


class TestUniquePendingPerEmail:
    def test_second_pending_for_an_email_is_refused_by_the_database(self, repo):
        email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
        make(repo, email=email)
        with pytest.raises(IntegrityError):
            make(repo, email=email)

    def test_non_pending_rows_do_not_count(self, repo):
        email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
        make(repo, email=email, status=REVOKED)
        make(repo, email=email, status=ACCEPTED)
        make(repo, email=email, status=EXPIRED)
        make(repo, email=email)
        assert repo.pending_for(email) is not None

    def test_expire_pending_frees_the_email(self, session, repo):
        email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
        old = make(repo, email=email, expires_at=NOW - timedelta(seconds=1))
        repo.expire_pending(email, NOW)
        assert fresh(session, old).status == EXPIRED
        make(repo, email=email)  # no IntegrityError now
