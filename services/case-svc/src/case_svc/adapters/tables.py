"""The tables case-svc owns.

The platform tables (outbox, processed_events) come with the metadata.
"""

from collect_common.db import new_metadata

metadata = new_metadata()
