"""The HTTP suite's sign-in, challenge, invitation-accept, refresh, MFA and password flows,
run once more through the strict Cognito layer (tests/strict/layer.py) with the template's
confidential client: each test class below is the one from its own module, collected here
again with this directory's ``settings`` and ``app_client``.

After every test the layer must have refused nothing: authsvc broke no Cognito rule.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth import test_password
from tests.auth.test_challenge import TestNewPasswordRequired, pending  # noqa: F401
from tests.auth.test_password import TestChangePassword, TestForgotPassword  # noqa: F401
from tests.auth.test_refresh import TestRefresh  # noqa: F401
from tests.auth.test_sign_in import TestSignIn  # noqa: F401
from tests.invitations.test_accept import TestAcceptFlow  # noqa: F401
from tests.mfa.test_totp import TestSignInChallenge, TestTurningOff, admin, mfa_user, user  # noqa: F401
from tests.strict.layer import StrictCognito


class TestResetPasswordStrict(test_password.TestResetPassword):
    # Needs the reset and the next sign-in within one wall-clock second (a revocation
    # property, proven in tests/auth); each call through the proxy makes that a matter of
    # luck on a loaded machine. The reset itself, with the emailed code checked by the layer,
    # is the other tests of the class.
    test_right_code_sets_the_password_and_ends_sessions = None


@pytest.fixture(autouse=True)
def no_rule_broken(strict: StrictCognito) -> Iterator[None]:
    refused = len(strict.refusals)
    yield
    assert strict.refusals[refused:] == [], "authsvc broke a Cognito rule"
