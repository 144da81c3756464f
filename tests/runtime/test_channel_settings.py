"""Which providers the worker and the API use, from settings; and what production refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.channels import SendGridProvider, TwilioProvider, build_provider
from activities.providers import ChannelRouter, OutboxProvider
from models.enums import Channel
from runtime.codec import generate_key
from runtime.db import make_engine
from runtime.settings import Settings

TWILIO: dict[str, Any] = {
    "twilio_account_sid": "AC" + "1" * 32,
    "twilio_auth_token": "tw-secret-value",
    "twilio_messaging_service_sid": "MG" + "0" * 32,
}
SENDGRID: dict[str, Any] = {
    "sendgrid_api_key": "SG.secret-value",
    "sendgrid_from_email": "hi@example.com",
}


def test_no_credentials_is_all_outbox(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    settings = Settings(_env_file=None)
    assert isinstance(build_provider(settings, engine), OutboxProvider)
    assert settings.messaging_provider == "outbox"
    # Half a Twilio configuration is no configuration.
    partial = Settings(_env_file=None, twilio_account_sid="AC1", twilio_auth_token="t")
    assert isinstance(build_provider(partial, engine), OutboxProvider)


def test_each_channel_switches_on_its_own(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    sms_only = build_provider(Settings(_env_file=None, **TWILIO), engine)
    assert isinstance(sms_only, ChannelRouter)
    assert (sms_only.name_for(Channel.SMS), sms_only.name_for(Channel.EMAIL)) == (
        "twilio",
        "outbox",
    )
    both = build_provider(Settings(_env_file=None, **TWILIO, **SENDGRID), engine)
    assert isinstance(both, ChannelRouter)
    assert isinstance(both._for(Channel.SMS), TwilioProvider)
    assert isinstance(both._for(Channel.EMAIL), SendGridProvider)
    assert Settings(_env_file=None, **TWILIO, **SENDGRID).messaging_provider == (
        "sms: twilio, email: sendgrid"
    )


def test_secrets_never_show(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, **TWILIO, **SENDGRID)
    assert "tw-secret-value" not in repr(settings) and "SG.secret-value" not in repr(settings)


def test_production_needs_a_public_https_url_for_signed_webhooks() -> None:
    real: dict[str, Any] = {
        "environment": "production",
        "admin_api_key": "a-real-admin-key-of-32-characters",
        "database_url": "postgresql+psycopg://db/app",
        "payload_encryption_keys": f"k1:{generate_key()}",
    }
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL"):
        Settings(_env_file=None, **real, **TWILIO)
    ok = Settings(_env_file=None, **real, **TWILIO, public_base_url="https://api.example.com")
    assert ok.twilio_configured


def test_empty_variables_mean_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SENDGRID_MARKETING_GROUP_ID",
        "SENDGRID_TRANSACTIONAL_GROUP_ID",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        "META_APP_SECRET",
        "TWILIO_AUTH_TOKEN",
    ):
        monkeypatch.setenv(name, "")  # what docker-compose passes for an unset variable
    settings = Settings(_env_file=None)
    assert settings.sendgrid_marketing_group_id is None
    assert not settings.twilio_configured
    monkeypatch.setenv("SENDGRID_MARKETING_GROUP_ID", "4242")
    assert Settings(_env_file=None).sendgrid_marketing_group_id == 4242
