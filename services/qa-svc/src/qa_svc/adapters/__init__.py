"""SQLAlchemy tables and repositories, outbound clients."""

# The scoring and agent tables join the service's metadata whenever the adapters are imported.
from qa_svc.adapters import agent_tables as agent_tables
from qa_svc.adapters import scoring_tables as scoring_tables
