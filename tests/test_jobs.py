"""The job app: every feature's jobs registered under their namespace, in every app built."""

from __future__ import annotations

from vidgate.jobs import build_job_app

JOBS = {
    "auth:purge_sign_in_records",
    "tasks:advance_task",
    "tasks:sweep_tasks",
    "users:anonymize_deleted_accounts",
}
PERIODIC = {"auth:purge_sign_in_records", "tasks:sweep_tasks", "users:anonymize_deleted_accounts"}


def test_each_job_app_has_every_job_under_its_own_name() -> None:
    """A process may build several apps (the API and a worker CLI, several test databases);
    building the second must neither rename the first one's jobs nor register them twice."""
    first = build_job_app("postgresql://localhost/one")
    second = build_job_app("postgresql://localhost/two")
    for app in (first, second):
        ours = {name: task for name, task in app.tasks.items() if "builtin" not in name}
        assert {name: task.name for name, task in ours.items()} == {n: n for n in JOBS}
        assert all(task.blueprint is app for task in ours.values())
        periodic = {p.task.name for p in app.periodic_registry.periodic_tasks.values()}
        assert periodic == PERIODIC
