"""Process-wide plumbing shared by the API, the worker, tests and tools: settings, clients, DB."""
