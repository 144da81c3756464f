"""EMR integrations (issue 6): vendor payloads -> one normalized event model -> journey events
through the same persist-then-signal path as POST /v1/journeys/{id}/events."""
