"""SQLAlchemy tables and repositories, outbound clients."""

# The scoring tables join the service's metadata whenever the adapters are imported.
from qa_svc.adapters import scoring_tables as scoring_tables
