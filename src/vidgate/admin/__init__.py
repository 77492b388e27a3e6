"""The operator console: roles and the second factor that guard it, the audit log every operator
action writes, and the console's own routes (`/api/admin/...`). Each feature's console
operations live with the feature (`users/admin_endpoints.py`, ...) and use what is here."""
