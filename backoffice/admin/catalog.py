"""The catalog in the back office (A1). A supplier's API key is a secret: the form field is
write-only (never rendered back, an empty field keeps the current key) and no list or
detail shows it. Edits are conditional on the version the form was rendered with, like the
API's PATCH."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from backoffice.admin.base import ReadOnlyAdminMixin, ReadOnlyInline, money
from common.permissions import staff_actor
from outbox.policy import call_budget_error
from suppliers import services
from suppliers.clients.endpoint import base_url_problem
from suppliers.models import CatalogChange, Product, Supplier, SupplierRequest

STALE_FORM = "This {model} was changed by someone else since you opened the form (version {seen}, now {current}). " \
             "Reload the page and apply your change again."


class _VersionedModelForm(forms.ModelForm):
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        seen = cleaned.get("loaded_version")
        if self.instance.pk and seen is not None:
            current = type(self.instance).objects.filter(pk=self.instance.pk).values_list("version", flat=True).first()
            if current != seen:
                raise forms.ValidationError(STALE_FORM.format(model=self._meta.model._meta.verbose_name, seen=seen,
                                                              current=current), code="stale")
        return cleaned


class SupplierForm(_VersionedModelForm):
    base_url = forms.URLField(max_length=500, assume_scheme="https")
    api_key = forms.CharField(
        required=False, strip=True, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Supplier
        fields = ("name", "slug", "base_url", "api_key", "connect_timeout_seconds", "timeout_seconds", "active")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        url = cleaned.get("base_url")
        if url and "base_url" in self.changed_data:
            problem = base_url_problem(url)
            if problem:
                self.add_error("base_url", problem)
            elif self.instance.pk and not self.data.get(self.add_prefix("api_key")):
                # Whoever redirects a supplier's bookings must know (or replace) its secret.
                self.add_error("api_key", services.API_KEY_REQUIRED_MESSAGE)
        connect, read = cleaned.get("connect_timeout_seconds"), cleaned.get("timeout_seconds")
        if connect is not None and read is not None:
            error = call_budget_error(connect_seconds=connect, read_seconds=read)
            if error:
                self.add_error("timeout_seconds", error)
        return cleaned

    def clean_api_key(self) -> str:
        new_key = self.cleaned_data.get("api_key", "")
        if self.data.get(self.add_prefix("clear_api_key")):
            return ""
        # An empty password field means "unchanged", never "erase the secret".
        return new_key or (self.instance.api_key if self.instance.pk else "")


class ProductInline(ReadOnlyInline):
    model = Product
    fields = ("code", "name", "price", "daily_capacity", "active")
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="unit price")
    def price(self, obj: Product) -> str:
        return money(obj.unit_amount, obj.currency)


def _save_versioned(*, request: HttpRequest, obj: Supplier | Product, form: _VersionedModelForm, change: bool,
                    create: Any, update: Any) -> None:
    """Never `obj.save()`: a new row goes through the catalog's create service, an edit through
    its update service (the fields that changed, conditional on the version the form was
    rendered with, A5), exactly as the API's POST and PATCH do."""
    model_fields = form._meta.fields
    who = {"actor": staff_actor(request.user), "user": request.user}
    if not change:
        created = create(**{name: form.cleaned_data[name] for name in model_fields}, **who)
        obj.pk, obj.version = created.pk, created.version
        return
    values = form.cleaned_data
    current = type(obj).objects.get(pk=obj.pk)
    changed = {name: values[name] for name in model_fields
               if (name in form.changed_data or name == "api_key") and getattr(current, name) != values[name]}
    if "base_url" in changed:
        changed["api_key"] = values["api_key"]  # re-entered with the new URL (the service checks it)
    if changed:
        current = update(current, data=changed, expected_version=values.get("loaded_version"), **who)
    obj.version = current.version


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    form = SupplierForm
    list_display = ("name", "slug", "base_url", "active", "has_api_key", "connect_timeout_seconds",
                    "timeout_seconds")
    list_filter = ("active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ProductInline]

    def get_fields(self, request: HttpRequest, obj: Supplier | None = None) -> list[str]:
        if not self.has_change_permission(request, obj):
            # View-only: the form (with its api_key field) is not rendered; show that a key exists.
            return ["name", "slug", "base_url", "has_api_key", "connect_timeout_seconds", "timeout_seconds",
                    "active"]
        fields = ["name", "slug", "base_url", "api_key", "connect_timeout_seconds", "timeout_seconds", "active",
                  "loaded_version"]
        return [*fields[:4], "clear_api_key", *fields[4:]] if obj is not None else fields

    def get_readonly_fields(self, request: HttpRequest, obj: Supplier | None = None) -> tuple[str, ...]:
        return ("has_api_key",)

    @admin.display(boolean=True, description="API key set")
    def has_api_key(self, obj: Supplier) -> bool:
        return bool(obj.api_key)

    def save_model(self, request: HttpRequest, obj: Supplier, form: SupplierForm, change: bool) -> None:
        _save_versioned(request=request, obj=obj, form=form, change=change, create=services.supplier_create,
                        update=lambda row, **kw: services.supplier_update(supplier=row, **kw))


class ProductForm(_VersionedModelForm):
    class Meta:
        model = Product
        fields = ("supplier", "code", "name", "unit_amount", "currency", "daily_capacity", "cancellation_cutoff_hours",
                  "booking_horizon_days", "active")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = ("code", "name", "supplier", "price", "daily_capacity", "active")
    list_filter = ("active", ("supplier", admin.RelatedOnlyFieldListFilter))
    search_fields = ("code", "name")
    list_select_related = ("supplier",)
    fields = ("supplier", "code", "name", "unit_amount", "currency", "daily_capacity", "cancellation_cutoff_hours",
              "booking_horizon_days", "active", "loaded_version")

    @admin.display(description="unit price", ordering="unit_amount")
    def price(self, obj: Product) -> str:
        return money(obj.unit_amount, obj.currency)

    def get_fields(self, request: HttpRequest, obj: Product | None = None) -> tuple[str, ...]:
        if not self.has_change_permission(request, obj):
            return self.fields[:-1]
        return self.fields

    def save_model(self, request: HttpRequest, obj: Product, form: ProductForm, change: bool) -> None:
        _save_versioned(request=request, obj=obj, form=form, change=change, create=services.product_create,
                        update=lambda row, **kw: services.product_update(product=row, **kw))


@admin.register(SupplierRequest)
class SupplierRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The supplier call audit (C4), read-only; also shown inline on each reservation."""

    list_display = ("created_at", "reservation", "supplier", "operation", "attempt", "outcome", "http_status",
                    "error_code", "duration_ms")
    list_filter = ("operation", "outcome", "supplier")
    search_fields = ("reservation__code", "idempotency_key")
    list_select_related = ("reservation", "supplier")
    readonly_fields = ("reservation", "supplier", "outbox_event_id", "operation", "attempt", "idempotency_key",
                       "request_payload", "response_payload", "http_status", "outcome", "error_code", "duration_ms",
                       "created_at")
    fields = readonly_fields


@admin.register(CatalogChange)
class CatalogChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The catalog audit: who changed which supplier or product, before and after. Read-only
    for everyone, superusers included: an audit nobody can edit."""

    list_display = ("created_at", "actor", "action", "model", "object_repr", "changed_fields")
    list_filter = ("model", "action")
    search_fields = ("actor", "object_repr", "=object_id")
    readonly_fields = ("created_at", "actor", "user", "model", "object_id", "object_repr", "action", "before", "after")
    fields = readonly_fields
    date_hierarchy = "created_at"

    @admin.display(description="fields")
    def changed_fields(self, obj: CatalogChange) -> str:
        return ", ".join(sorted(obj.after))
