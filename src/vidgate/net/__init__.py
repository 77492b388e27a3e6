"""Outbound networking: the SSRF-safe HTTP client for user-supplied URLs and webhooks."""
