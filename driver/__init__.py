"""Logsite's Docker logging plugin: a standalone program that never imports the server."""
