"""Sidebar panels."""
