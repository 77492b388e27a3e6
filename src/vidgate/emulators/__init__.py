"""Local emulators of the vendors vidgate talks to, so development needs no internet."""
