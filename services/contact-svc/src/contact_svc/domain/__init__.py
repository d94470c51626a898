"""Pure domain model: aggregates, value objects, policies and the events they record."""
