"""Handlers: one verb-named async function per command or event."""
