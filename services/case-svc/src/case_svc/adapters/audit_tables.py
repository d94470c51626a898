"""The audit trail of case-svc (SEC-EXPORT, SEC-AUDIT), in the shared ``metadata``.

The table and its hash chain are the platform's (``collect_common.audit``); migration
0009 creates it here. Exports of the bank's cases append to it.
"""

from case_svc.adapters.tables import metadata
from collect_common.audit import add_audit_table

audit_trail = add_audit_table(metadata)
