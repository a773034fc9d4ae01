"""Reads that the hot answers make on every request, compiled by the ORM once and executed
with new values after that.

Django compiles every queryset anew: building the WHERE tree, quoting each column, choosing
the converters. For the one-row read of `GET /reservations/{id}/` that was ~0.8 ms of CPU
against ~0.13 ms to execute the same SQL (bench/profile_api.py, issue "performance"). A
`CompiledQuery` keeps what the ORM compiled, per thread and per connection, and each call
only binds its values (prepared by the same model fields the ORM uses) and converts the rows
with the ORM's own converters. The SQL, the rows and the model instances are the ORM's; only
the repeated compilation is gone. No library does this (django-cachalot and the like cache
*results*, which a payments read must never serve stale).

How the values are bound: the query is built once with a distinctive marker for each
parameter, compiled, and the markers are found among the compiled parameters. A declared
parameter that the compiled query does not carry (a marker the ORM folded or dropped) is an
error when the query is first compiled, never a silently unbound filter.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.models import Count, F, Field, Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, post_save, pre_init, pre_save
from django.db.models.sql import InsertQuery, UpdateQuery

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Many:
    """A parameter that is a list of values of `field` (an `__in` lookup). The query is
    compiled once per length of the list."""

    field: Field


def _marker(field: Field, taken: set[str]) -> Any:
    """A value of `field`'s type that no real query carries, and no other parameter of the same
    compile (`taken`): two equal markers would bind one parameter's value into the other's slot."""
    while True:
        value = _new_marker(field)
        if repr(value) not in taken:
            taken.add(repr(value))
            return value


def _new_marker(field: Field) -> Any:
    target = getattr(field, "target_field", field)
    kind = target.get_internal_type()
    if kind == "UUIDField":
        return uuid.uuid4()
    # Within the column's range: the ORM turns an out-of-range value into an empty result.
    if kind in ("BigAutoField", "BigIntegerField", "PositiveBigIntegerField"):
        return 2**40 + secrets.randbelow(2**40)
    if kind in ("AutoField", "IntegerField", "PositiveIntegerField"):
        return 2**30 + secrets.randbelow(2**30)
    if kind in ("SmallAutoField", "SmallIntegerField", "PositiveSmallIntegerField"):
        return 2**13 + secrets.randbelow(2**13)
    if kind in ("CharField", "TextField", "SlugField"):
        return "marker-" + secrets.token_hex(8)
    if kind == "JSONField":
        return {"marker": secrets.token_hex(8)}
    if kind == "DateTimeField":
        return dt.datetime(2999, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=secrets.randbelow(2**40))
    raise _NoMarker(f"CompiledQuery: no marker for a {kind} parameter")


class _NoMarker(ImproperlyConfigured):
    """A field type whose values cannot be told apart from the query's constants (a boolean)."""


def _positions(params: list, prepared: Any) -> tuple[int, ...]:
    """Where a marker's prepared value stands among the compiled parameters."""
    return tuple(i for i, p in enumerate(params) if type(p) is type(prepared) and p == prepared)


def _disjoint(positions: list[int]) -> None:
    """Each compiled parameter fills one slot: a marker found in another's place (equal to a
    constant of the query, say) would have its value bound there."""
    if len(positions) != len(set(positions)):
        raise ImproperlyConfigured("CompiledQuery: two parameters found at one position; compile again")


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    # name -> for its value (or each of its values), the positions in params it fills
    slots: dict[str, tuple[tuple[int, ...], ...]]
    compiler: Any
    converters: dict
    model: type[Model] | None  # None: the rows are values_list tuples
    init_list: list[str]
    model_slice: slice
    related_populators: list  # select_related: Django's own RelatedPopulators
    plain: bool  # rows of `model` may be built without Model.__init__ (_builds_plainly)
    # No window may be appended: the SQL ends in FOR UPDATE, or has its own (constant) slice.
    closed: bool
    for_update: bool


class CompiledQuery(Generic[M]):
    """`build(**markers)` returns the queryset (model instances or `values_list`), with each
    keyword of `params` (a model field, or `Many(field)`) used as a filter value."""

    def __init__(self, build: Callable[..., QuerySet], **params: Field | Many) -> None:
        self._build = build
        self._params = params
        self._local = threading.local()

    def model(self) -> type[M]:
        """The model the query reads (built once, without compiling or querying)."""
        model = getattr(self, "_model", None)
        if model is None:
            shape = [0 if isinstance(param, Many) else 1 for param in self._params.values()]
            model = self._model = self._build(**self._markers(shape)).model
        return model

    def _markers(self, shape) -> dict[str, Any]:
        markers: dict[str, Any] = {}
        taken: set[str] = set()
        for (name, param), length in zip(self._params.items(), shape, strict=True):
            if isinstance(param, Many):
                markers[name] = [_marker(param.field, taken) for _ in range(length)]
            else:
                markers[name] = _marker(param, taken)
        return markers

    def _compile(self, connection, shape: tuple) -> _Compiled:
        markers = self._markers(shape)
        queryset = self._build(**markers)
        if (queryset._iterable_class not in (ModelIterable, ValuesListIterable) or queryset._prefetch_related_lookups
                or queryset._known_related_objects):
            raise ImproperlyConfigured("CompiledQuery: model instances or values_list, without prefetch_related, "
                                       "not from a related manager")
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        slots: dict[str, tuple[tuple[int, ...], ...]] = {}
        for name, param in self._params.items():
            field = param.field if isinstance(param, Many) else param
            positions = []
            for value in markers[name] if isinstance(param, Many) else [markers[name]]:
                found = _positions(params, field.get_db_prep_value(value, connection, prepared=False))
                if not found:
                    raise ImproperlyConfigured(f"CompiledQuery: the parameter {name!r} is not in the compiled query")
                positions.append(found)
            slots[name] = tuple(positions)
        _disjoint([position for positions in slots.values() for found in positions for position in found])
        columns = [expression for expression, _, _ in compiler.select]
        # What ModelIterable works out for each query, worked out once.
        if queryset._iterable_class is ModelIterable:
            klass_info = compiler.klass_info
            if compiler.annotation_col_map:
                raise ImproperlyConfigured("CompiledQuery: no annotations on model rows")
            fields = klass_info["select_fields"]
            model_slice = slice(fields[0], fields[-1] + 1)
            init_list = [expression.target.attname for expression in columns[model_slice]]
            model = klass_info["model"]
            related_populators = get_related_populators(klass_info, compiler.select, connection.alias)
        else:
            model, init_list, model_slice, related_populators = None, [], slice(0, 0), []
        return _Compiled(sql=sql, params=tuple(params), slots=slots, compiler=compiler,
                         converters=compiler.get_converters(columns), model=model, init_list=init_list,
                         model_slice=model_slice, related_populators=related_populators,
                         plain=model is not None and _builds_plainly(model, init_list),
                         closed=bool(queryset.query.select_for_update or queryset.query.is_sliced),
                         for_update=bool(queryset.query.select_for_update
                                         and connection.features.has_select_for_update))

    def _compiled(self, connection, shape: tuple) -> _Compiled:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        key = (connection.alias, shape)
        compiled = cache.get(key)
        if compiled is None:
            # Per thread, as Django's connections are: the compiler kept (its converters) is
            # bound to the compiling thread's connection.
            compiled = cache[key] = self._compile(connection, shape)
        return compiled

    def execute(self, *, using: str = "default", window: slice | None = None, **values: Any) -> list:
        """The rows for `values`: model instances, or tuples for a `values_list` query.
        `window`: the rows [start:stop] of the ordered result (LIMIT/OFFSET)."""
        connection = connections[using]
        shape = tuple(len(values[name]) if isinstance(param, Many) else 1 for name, param in self._params.items())
        if 0 in shape:
            return []  # an empty `__in`: the ORM would not query either (EmptyResultSet)
        compiled = self._compiled(connection, shape)
        if compiled.for_update and connection.get_autocommit():
            # What the ORM checks on every compile: a lock outside a transaction ends at once.
            raise transaction.TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(compiled.params)
        for name, param in self._params.items():
            field = param.field if isinstance(param, Many) else param
            given: Sequence = values[name] if isinstance(param, Many) else [values[name]]
            for value, positions in zip(given, compiled.slots[name], strict=True):
                if value is None:  # the ORM would write IS NULL; `= NULL` matches nothing
                    raise ValueError(f"CompiledQuery: None for the parameter {name!r}")
                prepared = field.get_db_prep_value(value, connection, prepared=False)
                for position in positions:
                    params[position] = prepared
        sql = compiled.sql
        if window is not None:
            if compiled.closed:
                raise ImproperlyConfigured("CompiledQuery: a window of a SELECT ... FOR UPDATE or of a sliced query")
            sql += " " + connection.ops.limit_offset_sql(window.start, window.stop)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        if compiled.model is None:
            return [tuple(row) for row in rows]
        model, model_slice, populators = compiled.model, compiled.model_slice, compiled.related_populators
        plain = compiled.plain and not (pre_init.has_listeners(model) or post_init.has_listeners(model))
        build = functools.partial(_plain_instance, model) if plain else model.from_db
        objects = []
        for row in rows:
            obj = build(using, compiled.init_list, row[model_slice])
            for populator in populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects


# The descriptors a model's columns have unless a field brings its own: reading from and
# writing to the instance's __dict__, with nothing to clear on a new instance.
_PLAIN_DESCRIPTORS = (DeferredAttribute, ForeignKeyDeferredAttribute)


def _builds_plainly(model: type[Model], init_list: list[str]) -> bool:
    """Whether `model.from_db(db, init_list, values)` only sets each column's value and the
    state (Model.__init__ with every concrete field, in order): Django's own from_db, every
    column read, each behind a plain descriptor. Signals are checked on each call."""
    if model.from_db.__func__ is not Model.from_db.__func__:
        return False
    if init_list != [field.attname for field in model._meta.concrete_fields]:
        return False
    for attname in init_list:
        descriptor = next((klass.__dict__[attname] for klass in model.__mro__ if attname in klass.__dict__), None)
        if type(descriptor) not in _PLAIN_DESCRIPTORS:
            return False
    return True


def _plain_instance(model: type[Model], using: str, attnames: list[str], values: Sequence) -> Model:
    """What Model.from_db builds for a plain model (_builds_plainly): the same __dict__ and state,
    without __init__'s per-field work (a fifth of a 20-row list's Python time)."""
    obj = model.__new__(model)
    state = ModelState()
    state.adding = False
    state.db = using
    attributes = obj.__dict__
    attributes["_state"] = state
    attributes.update(zip(attnames, values, strict=True))
    return obj


class CompiledCount:
    """`build(**values).count()`, compiled once. QuerySet.count() runs its query at once, so it is
    compiled as `COUNT(*)` grouped by `group_by`, a column the query filters to one value: one
    row, or none when nothing matches."""

    def __init__(self, build: Callable[..., QuerySet], *, group_by: str, **params: Field | Many) -> None:
        self._query = CompiledQuery(
            lambda **values: build(**values).order_by().values(group_by).annotate(n=Count("*")).values_list("n"),
            **params)

    def execute(self, **values: Any) -> int:
        rows = self._query.execute(**values)
        return rows[0][0] if rows else 0


@dataclass(frozen=True)
class _CompiledUpdate:
    sql: str
    params: tuple
    slots: dict[str, tuple[int, ...]]  # column -> the positions of its value in params
    fields: dict[str, Field]


_NOT_COMPILABLE = object()
_updates = threading.local()


def versioned_update_rows(model: type[Model], *, pk: Any, version: int, values: dict[str, Any],
                          using: str = "default") -> int:
    """`model._default_manager.filter(pk=pk, version=version).update(version=F("version") + 1,
    **values)`, compiled once per model and set of columns (a None value is part of the set:
    the SQL says `= NULL`). Returns the rows matched. An ORM update was ~0.6 ms of CPU against
    ~0.1 ms to execute its SQL, and pay, webhook and delivery make several each. A column whose
    values cannot be marked (a boolean) leaves that update to the ORM. Like QuerySet.update(),
    it sends no signal, and marks the enclosing atomic block for rollback when it fails."""
    connection = connections[using]
    compiled = _NOT_COMPILABLE
    if not any(hasattr(value, "resolve_expression") for value in values.values()):  # F(...) etc.: the ORM's
        key = (using, model, tuple(sorted((name, value is None) for name, value in values.items())))
        cache = getattr(_updates, "cache", None)
        if cache is None:
            cache = _updates.cache = {}
        compiled = cache.get(key)
        if compiled is None:
            compiled = cache[key] = _compile_update(connection, model, values)
    if compiled is _NOT_COMPILABLE:
        return model._default_manager.using(using).filter(pk=pk, version=version).update(
            version=F("version") + 1, **values)
    params = list(compiled.params)
    bound = {**values, "pk": pk, "version": version}
    for name, positions in compiled.slots.items():
        prepared = _update_value(name, compiled.fields[name], bound[name], connection)
        for position in positions:
            params[position] = prepared
    with transaction.mark_for_rollback_on_error(using=using), connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        return cursor.rowcount


def _update_value(name: str, field: Field, value: Any, connection) -> Any:
    """A value of the compiled UPDATE as the ORM prepares it: the WHERE's pk and version as
    lookups do, the SET's values as QuerySet.update() does (a related instance: its key)."""
    if name in ("pk", "version"):
        return field.get_db_prep_value(value, connection, prepared=False)
    if field.remote_field and hasattr(value, "prepare_database_save"):
        value = value.prepare_database_save(field)
    return field.get_db_prep_save(value, connection)


def _compile_update(connection, model: type[Model], values: dict[str, Any]) -> _CompiledUpdate | object:
    fields = {name: model._meta.get_field(name) for name in values}
    fields["pk"], fields["version"] = model._meta.pk, model._meta.get_field("version")
    taken: set[str] = set()
    try:  # a None value has no marker: the SQL says "= NULL"
        markers = {name: _marker(field, taken) for name, field in fields.items()
                   if name in ("pk", "version") or values[name] is not None}
    except _NoMarker:
        return _NOT_COMPILABLE
    query = model._default_manager.filter(pk=markers["pk"], version=markers["version"]).query.chain(UpdateQuery)
    query.add_update_values({"version": F("version") + 1,
                             **{name: markers.get(name) for name in values}})
    sql, params = query.get_compiler(connection=connection).as_sql()
    slots = {}
    for name, marker in markers.items():
        found = _positions(params, _update_value(name, fields[name], marker, connection))
        if not found:
            return _NOT_COMPILABLE
        slots[name] = found
    _disjoint([position for found in slots.values() for position in found])
    return _CompiledUpdate(sql=sql, params=tuple(params), slots=slots, fields=fields)


@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    fields: list[Field]
    compiler: Any  # its pre_save_val / prepare_value prepare each value as the ORM's INSERT does
    returning: list[Field]
    converters: dict
    returns_columns: bool  # the SQL says RETURNING (else: the auto key from last_insert_id)


_inserts = threading.local()


def insert_row(obj: M, *, using: str = "default") -> M:
    """`obj.save(force_insert=True, using=using)` for a new row (what `objects.create()` does),
    with the INSERT compiled once per model: the same SQL, values prepared by the same fields,
    the auto key set from the database, and the same marking of the enclosing atomic block for
    rollback when it fails (a unique violation still raises IntegrityError). An ORM create was
    ~0.25 ms of CPU against ~0.14 ms for its SQL (bench notes in README), and a webhook, a pay
    and a delivery make three to five. A model with save signals, parents or
    order_with_respect_to, a save() of its own, or a value that is an expression, is left to
    the ORM."""
    compiled = _compiled_insert_for(obj, using)
    if compiled is not None:
        # Values are prepared inside the rollback marking too, as save_base() does (a value its
        # field cannot prepare fails the enclosing atomic block, not only a statement).
        with transaction.mark_for_rollback_on_error(using=using):
            params = _insert_params(compiled, obj)
            if params is not None:
                return _inserted(obj, compiled, connections[using], params, using)
    obj.save(force_insert=True, using=using)
    return obj


def _compiled_insert_for(obj: Model, using: str) -> _CompiledInsert | None:
    """The compiled INSERT for `obj` (its key set first, as _save_table does), or None when the
    ORM must save it."""
    model = type(obj)
    meta = model._meta
    if (meta.parents or meta.proxy or meta.order_with_respect_to or not obj._state.adding
            or model.save is not Model.save or model.save_base is not Model.save_base
            or pre_save.has_listeners(model) or post_save.has_listeners(model)):
        return None
    obj._prepare_related_fields_for_save(operation_name="save")
    if not obj._is_pk_set(meta):
        setattr(obj, meta.pk.attname, meta.pk.get_pk_value_on_save(obj))
    pk_set = obj._is_pk_set(meta)
    cache = getattr(_inserts, "cache", None)
    if cache is None:
        cache = _inserts.cache = {}
    key = (using, model, pk_set)
    compiled = cache.get(key)
    if compiled is None:
        compiled = cache[key] = _compile_insert(connections[using], model, pk_set)
    return None if compiled is _NOT_COMPILABLE else compiled


def _insert_params(compiled: _CompiledInsert, obj: Model) -> list | None:
    """The INSERT's values for `obj`, prepared as the ORM's INSERT prepares them; None when one
    is an expression (its own SQL: the ORM's)."""
    params = []
    for field in compiled.fields:
        value = compiled.compiler.pre_save_val(field, obj)  # auto_now_add sets the instance's value, as save() does
        if hasattr(value, "resolve_expression"):
            return None
        params.append(compiled.compiler.prepare_value(field, value))
    return params


def _inserted(obj: M, compiled: _CompiledInsert, connection, params: list, using: str) -> M:
    meta = obj._meta
    compiler = compiled.compiler
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        if not compiled.returning:
            rows = []
        elif compiled.returns_columns:
            rows = [connection.ops.fetch_returned_insert_columns(cursor, compiler.returning_params)]
        else:
            rows = [(connection.ops.last_insert_id(cursor, meta.db_table, compiled.returning[0].column),)]
    if rows and compiled.converters:
        rows = list(compiler.apply_converters(rows, compiled.converters))
    for row in rows:
        for value, field in zip(row, compiled.returning, strict=True):
            setattr(obj, field.attname, value)
    obj._state.db = using
    obj._state.adding = False
    return obj


def _compile_insert(connection, model: type[Model], pk_set: bool) -> _CompiledInsert | object:
    """The single-row INSERT that Model._save_table builds for `model`; _NOT_COMPILABLE when
    some column has a placeholder of its own (its SQL would depend on the value: a db_default's
    DEFAULT, say) or the returned columns could not be read back."""
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if not f.generated and (pk_set or f is not meta.auto_field)]
    returning = list(meta.db_returning_fields)
    query = InsertQuery(model)
    query.insert_values(fields, [model()])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = returning
    [(sql, params)] = compiler.as_sql()
    if len(params) != len(fields) or "VALUES (" + ", ".join(["%s"] * len(fields)) + ")" not in sql:
        return _NOT_COMPILABLE
    returns_columns = bool(returning) and connection.features.can_return_columns_from_insert
    if returning and not returns_columns and not (len(returning) == 1 and returning[0] is meta.auto_field):
        return _NOT_COMPILABLE  # nothing would tell the row's returned columns: the ORM reads them its way
    columns = [field.get_col(meta.db_table) for field in returning]
    return _CompiledInsert(sql=sql, fields=fields, compiler=compiler, returning=returning,
                           converters=compiler.get_converters(columns), returns_columns=returns_columns)
