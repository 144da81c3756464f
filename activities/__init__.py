"""Thin adapters the workflow calls: database writes and the one send gate."""
