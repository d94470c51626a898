"""The tables contact-svc owns. The platform tables (outbox, processed_events) come with the
metadata.
"""

from collect_common.db import new_metadata
from collect_common.security.webhooks import webhook_deliveries_table

metadata = new_metadata()
webhook_deliveries_table(metadata)  # replay refusal of signed dialer webhooks
