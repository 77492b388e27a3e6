"""Routing tasks through their model's vendor channels: choice, concurrency slots, breakers."""
