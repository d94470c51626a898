"""case-svc: Overdue accounts from the bank: intake, buckets, strategy, assignment, promises,
plans, feedback to the bank (CASE-*).
"""
