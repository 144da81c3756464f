"""The lead-to-revenue map (issue 7): metrics, live and imported sources, enrollment."""
