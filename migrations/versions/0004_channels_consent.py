"""channels and consent

Practice channel settings (public web-chat key, SMS number, HELP text), the patient's
`sms_unusable` flag (invalid or landline number) and the consent ledger (proof of consent).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:00:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode: SQLite's batch mode recreates `practice`, which fails
    # the foreign keys pointing at it (as in 0002). Unique indexes instead of constraints,
    # because SQLite cannot add a constraint to an existing table.
    op.add_column(
        "practice",
        sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    op.add_column(
        "practice",
        sa.Column("sms_number", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    )
    op.add_column(
        "practice",
        sa.Column("help_text", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    )
    _give_existing_practices_a_public_key()
    op.create_index(op.f("ix_practice_public_key"), "practice", ["public_key"], unique=True)
    op.create_index(op.f("ix_practice_sms_number"), "practice", ["sms_number"], unique=True)
    op.add_column(
        "patient",
        sa.Column("sms_unusable", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "consent_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("wording", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("evidence", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("at", models.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["practice_id"], ["practice.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_consent_record_patient_id"), "consent_record", ["patient_id"], unique=False
    )
    op.create_index(
        op.f("ix_consent_record_practice_id"), "consent_record", ["practice_id"], unique=False
    )
    op.create_table(
        "practice_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["practice.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "account_id"),
    )
    op.create_index(
        op.f("ix_practice_account_practice_id"), "practice_account", ["practice_id"], unique=False
    )
    op.create_table(
        "patient_handle",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("handle", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["practice_id"], ["practice.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("practice_id", "channel", "handle"),
    )
    op.create_index(
        op.f("ix_patient_handle_patient_id"), "patient_handle", ["patient_id"], unique=False
    )
    op.create_index(
        op.f("ix_patient_handle_practice_id"), "patient_handle", ["practice_id"], unique=False
    )


def _give_existing_practices_a_public_key() -> None:
    """Data migration: practices created before 0004 get their web-chat key too."""
    bind = op.get_bind()
    practice = sa.table("practice", sa.column("id", sa.Uuid()), sa.column("public_key", sa.String))
    for row in bind.execute(sa.select(practice.c.id)).all():
        bind.execute(
            practice.update()
            .where(practice.c.id == row.id)
            .values(public_key="pk_" + secrets.token_urlsafe(18))
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_patient_handle_practice_id"), table_name="patient_handle")
    op.drop_index(op.f("ix_patient_handle_patient_id"), table_name="patient_handle")
    op.drop_table("patient_handle")
    op.drop_index(op.f("ix_practice_account_practice_id"), table_name="practice_account")
    op.drop_table("practice_account")
    op.drop_index(op.f("ix_consent_record_practice_id"), table_name="consent_record")
    op.drop_index(op.f("ix_consent_record_patient_id"), table_name="consent_record")
    op.drop_table("consent_record")
    op.execute("ALTER TABLE patient DROP COLUMN sms_unusable")
    op.drop_index(op.f("ix_practice_sms_number"), table_name="practice")
    op.drop_index(op.f("ix_practice_public_key"), table_name="practice")
    op.execute("ALTER TABLE practice DROP COLUMN help_text")
    op.execute("ALTER TABLE practice DROP COLUMN sms_number")
    op.execute("ALTER TABLE practice DROP COLUMN public_key")
