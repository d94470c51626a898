"""contact-svc: Compliant contact: the dialer's pre-dial decision and webhooks, SMS, letters,
visits (CALL-*, SMS-*, LETTER, VISIT-TEAM, CONTACT-CONDUCT).
"""
