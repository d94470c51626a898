"""SQLAlchemy tables and repositories, outbound clients."""

# The statistics and portal-limit tables live in their own module; importing it with the
# package puts them on ``tables.metadata`` wherever the service's tables are loaded (the
# app, Alembic's env.py, the schema check).
from complaint_svc.adapters import stats_tables  # noqa: F401
