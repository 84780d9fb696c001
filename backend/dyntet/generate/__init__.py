"""Driving a trained avatar and writing sequence folders."""
