"""Deterministic code only: the journey workflow, its track definitions and policies."""
