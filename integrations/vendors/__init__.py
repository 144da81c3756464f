"""One module per vendor: payload parsing (webhooks) and API calls (look-ups, polling)."""
