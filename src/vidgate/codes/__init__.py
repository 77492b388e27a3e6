"""Redemption codes: operators create batches of codes worth credits (`admin_endpoints.py`, or
the service from the command line), users redeem them (`POST /api/users/redeem`)."""
