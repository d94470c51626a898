"""complaint-svc: Complaints on every channel, durable SLA timers, joint investigation, escalation,
statistics (COMP-*).
"""
