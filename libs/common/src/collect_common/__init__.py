"""Shared code of the collections-operations platform."""
