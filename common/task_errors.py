"""django-q2 task failures to Sentry (F2).

django-q2 catches a task's exception in its worker and hands the result (message and
traceback) to the cluster's monitor, which sends `post_execute`; this receiver reports every
failed task there, once, grouped by function. Outbox deliveries never fail as tasks (their
errors are recorded on the outbox row), so what arrives here is a real defect or a timeout."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from django_q.signals import post_execute
from django_q.utils import get_func_repr


def connect_task_error_reporting() -> None:
    """Called by CommonConfig.ready() when SENTRY_DSN is set."""
    post_execute.connect(report_failed_task, dispatch_uid="sentry_failed_tasks")


def report_failed_task(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    if task.get("success", True):
        return
    func = get_func_repr(task.get("func"))
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("task_func", func)
        scope.set_tag("task_group", str(task.get("group") or ""))
        scope.set_extra("task_name", task.get("name"))
        scope.set_extra("result", str(task.get("result"))[:8000])
        scope.fingerprint = ["django-q-task-failed", func]
        sentry_sdk.capture_message(f"task failed: {func}", level="error")
