"""Jobs: long operations (preprocess, train, selftest, later generate/export) run in child processes.

``kinds`` (what can run, and how its parameters are checked) · ``store`` (job records as JSON in the
workspace) · ``child`` (the entry point inside the job's process) · ``targets`` (adapters from job
parameters to the library functions) · ``selftest`` (a small built-in job) · ``manager`` (queue,
processes, state machine).
"""
