"""The HTTP API (DESIGN §7): FastAPI app factory in `api.main`, one router per resource."""
