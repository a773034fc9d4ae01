"""The one shape of every back-office action (D2, D3, D4, B9): a page that shows what is acted
on, a form that carries the version the page was rendered with, a permission, one service
call, and the same answers afterwards — done, refused because the row changed since the page
was opened (nothing changed), or refused by the service with its reason (nothing changed).

A ModelAdmin lists its actions in `staff_actions`; `StaffActionsMixin` gives each one its URL,
its button on the detail page (when the user may use it on that object now) and its view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from common.exceptions import ApplicationError, VersionConflict
from common.permissions import staff_actor


class VersionedActionForm(forms.Form):
    """Carries the version the page was rendered with; the service refuses a stale one."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class ReasonForm(VersionedActionForm):
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}))


@dataclass(frozen=True)
class Done:
    """What a successful action tells staff (and writes in the admin's history)."""

    message: str
    history: str = ""
    level: int = messages.SUCCESS


@dataclass(frozen=True)
class StaffAction:
    name: str  # the URL segment: <object id>/<name>/
    label: str  # its button
    permission: str
    template: str
    title: Callable[[Any], str]
    # run(request, obj, cleaned_data, actor) -> Done. Raises ApplicationError to refuse.
    run: Callable[[HttpRequest, Any, dict[str, Any], str], Done]
    form_class: type[forms.Form] = VersionedActionForm
    available: Callable[[Any], bool] = lambda obj: True
    context: Callable[[Any], dict[str, Any]] = field(default=lambda obj: {})
    # Where staff land after it is done (default: the object's page).
    done_url: Callable[[Any], str] | None = None


class StaffActionsMixin:
    """For a ModelAdmin: the views, URLs and buttons of its `staff_actions`."""

    staff_actions: tuple[StaffAction, ...] = ()
    context_object_name = "object"
    change_form_template = "admin/backoffice/change_form_actions.html"

    # --- what the admin says about its objects (override as needed) ---------------------------

    def action_object(self, object_id: str) -> Model | None:
        """The object acted on, looked up outside this admin's queryset: one that just left a
        work queue is still shown with its current state (and the service refuses what no
        longer applies)."""
        model = self.model._meta.concrete_model
        try:
            return model._default_manager.filter(pk=object_id).first()
        except (ValueError, TypeError):
            return None

    def describe(self, obj: Model) -> str:
        return f"{self.opts.verbose_name.capitalize()} {obj}"

    def detail_url(self, obj: Model) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])

    # --- plumbing -------------------------------------------------------------------------------

    def _action_url_name(self, action: StaffAction) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{action.name.replace('-', '_')}"

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        own = [path(f"<path:object_id>/{action.name}/", wrap(self._view_for(action)),
                    name=self._action_url_name(action)) for action in self.staff_actions]
        return [*own, *super().get_urls()]

    def _view_for(self, action: StaffAction) -> Callable[..., HttpResponse]:
        def view(request: HttpRequest, object_id: str) -> HttpResponse:
            return self.staff_action_view(request, object_id, action)

        return view

    def available_staff_actions(self, request: HttpRequest, obj: Model | None) -> list[dict[str, str]]:
        if obj is None:
            return []
        return [{"label": action.label, "url": reverse(f"admin:{self._action_url_name(action)}", args=[obj.pk])}
                for action in self.staff_actions
                if request.user.has_perm(action.permission) and action.available(obj)]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {**(extra_context or {}),
                 "backoffice_actions": self.available_staff_actions(request, self.get_object(request, object_id))}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def staff_action_view(self, request: HttpRequest, object_id: str, action: StaffAction) -> HttpResponse:
        if not (request.user.has_perm(action.permission) and self.has_view_permission(request)):
            raise PermissionDenied
        obj = self.action_object(object_id)
        if obj is None:
            raise Http404(f"{self.opts.verbose_name.capitalize()} not found.")
        form = action.form_class(request.POST or None, initial={"version": getattr(obj, "version", None)})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                done = action.run(request, obj, data, staff_actor(request.user))
            except VersionConflict:
                current = type(obj)._default_manager.filter(pk=obj.pk).values_list("version", flat=True).first()
                self.message_user(request, f"{self.describe(obj)} changed since you opened the page (version "
                                           f"{data.get('version')}, now {current}). Nothing was changed: review its "
                                           "current state and try again.", messages.ERROR)
            except ApplicationError as exc:
                self.message_user(request, f"{self.describe(obj)}: {exc.detail} Nothing was changed.", messages.ERROR)
            else:
                self.log_change(request, obj, done.history or done.message)
                self.message_user(request, done.message, done.level)
                return HttpResponseRedirect(action.done_url(obj) if action.done_url else self.detail_url(obj))
            return HttpResponseRedirect(self.detail_url(obj))
        return TemplateResponse(request, action.template, {
            **self.admin_site.each_context(request), "opts": self.opts, "original": obj,
            self.context_object_name: obj, "form": form, "title": action.title(obj),
            "detail_url": self.detail_url(obj), **action.context(obj),
        })
