"""qa-svc: Quality assurance: live compliance rules, verifiable weekly sampling, scorecards,
sanctions (QA-*).
"""
