"""Video tasks: creation and billing, the worker lifecycle, status, history, cancel and retry."""
