"""Alembic environment of contact-svc."""

import os

from alembic import context

from collect_common.migrations import run_env
from contact_svc.adapters.tables import metadata
from contact_svc.settings import Settings

if not context.config.get_main_option("sqlalchemy.url"):
    url = os.environ.get("DATABASE_URL") or Settings().resolved_database_url()
    context.config.set_main_option("sqlalchemy.url", url)
run_env(metadata)
