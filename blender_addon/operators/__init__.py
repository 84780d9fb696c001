"""Operators: thin wrappers that turn properties into plain options and report errors."""
