"""A small in-memory ORM that behaves, over RPC, like Odoo's.

What matters is what a remote client can observe: method names and signatures (so wrong keyword arguments
fail as they do in Odoo), return shapes of ``read``/``search_read``/``read_group``/``formatted_read_group``,
domain semantics (prefix notation, NULL handling of ``!=``/``not in``/``not ilike``, many2one by id or name,
dotted paths), ``order`` strings, x2many commands, and the exceptions with Odoo's messages.

Sources read: odoo/models.py (read_group, _read_group_format_result, check_method_name), odoo/api.py call_kw
(17/18), odoo/service/model.py (execute_cr, get_public_method), odoo/osv/expression.py (normalize_domain, AND),
addons/web/models/models.py (formatted_read_group, _web_read_group_format, _web_read_group_groupby_formatter).
"""
from __future__ import annotations

import calendar
import copy
import inspect
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable

from .errors import AccessError, MissingError, ValidationError

TRUE_LEAF = (1, "=", 1)
FALSE_LEAF = (0, "=", 1)
OPERATORS = ("=", "!=", "<>", "<=", "<", ">", ">=", "=?", "=like", "=ilike", "like", "not like", "ilike",
             "not ilike", "in", "not in", "child_of", "parent_of", "any", "not any")
NEGATIVE = ("!=", "<>", "not like", "not ilike", "not in", "not any")
AGGREGATORS = ("sum", "avg", "min", "max", "count", "count_distinct", "array_agg", "bool_and", "bool_or")
GRANULARITIES = ("day", "week", "month", "quarter", "year")
MONTHS = [calendar.month_name[i] for i in range(13)]
MONTH_ABBR = [calendar.month_abbr[i] for i in range(13)]


def float_round(value: float, digits: int = 2) -> float:
    """Odoo rounds half-up on the decimal representation (tools.float_utils.float_round)."""
    return float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def dsum(values) -> float:
    """Sum as PostgreSQL ``numeric`` does: exact decimals, then a float."""
    return float(sum((Decimal(repr(float(v))) for v in values), Decimal(0)))


# --- fields --------------------------------------------------------------------------------------------------


class Field:
    def __init__(self, type_: str, string: str, *, comodel: str | None = None, inverse: str | None = None,
                 selection: Any = None, required: bool = False, readonly: bool = False, store: bool = True,
                 default: Any = None, compute: str | None = None, aggregator: str | None = None,
                 filter_domain: Callable[[dict], bool] | None = None, ondelete: str = "set null",
                 since: int = 0, until: int = 99) -> None:
        self.type, self.string, self.comodel, self.inverse = type_, string, comodel, inverse
        self.selection, self.required, self.readonly, self.store = selection, required, readonly, store
        self.default, self.compute, self.filter_domain, self.ondelete = default, compute, filter_domain, ondelete
        self.since, self.until = since, until
        if aggregator is None and type_ in ("integer", "float", "monetary"):
            aggregator = "sum"
        self.aggregator = None if aggregator == "none" else aggregator
        self.name = ""

    @property
    def relational(self) -> bool:
        return self.type in ("many2one", "one2many", "many2many")

    def selection_for(self, major: int) -> list[tuple[str, str]]:
        if isinstance(self.selection, dict):
            return next(sel for ver, sel in sorted(self.selection.items(), reverse=True) if major >= ver)
        return list(self.selection or [])


def fields(**kw: Field) -> dict[str, Field]:
    for name, f in kw.items():
        f.name = name
    return kw


def api_model(fn):
    fn._api = "model"
    return fn


def api_create(fn):
    fn._api = "model_create"
    return fn


def rpc(since: int = 0, until: int = 99):
    """Mark a method as callable over RPC (within a version range); anything else 'does not exist'.

    A variant of a method for a later version is written ``<name>__<major>`` and named ``<name>`` here, so
    Python's own TypeError messages for bad arguments name the method as Odoo's would.
    """
    def deco(fn):
        fn._rpc, fn._since, fn._until = True, since, until
        base = fn.__name__.split("__")[0]
        fn.__name__, fn.__qualname__ = base, fn.__qualname__.rsplit(".", 1)[0] + "." + base
        return fn
    return deco


# --- storage -------------------------------------------------------------------------------------------------


class Store:
    def __init__(self) -> None:
        self.tables: dict[str, dict[int, dict[str, Any]]] = {}
        self.next_id: dict[str, int] = {}
        self.version = 0
        self.cache: dict[tuple, Any] = {}
        self.cache_version = -1

    def snapshot(self) -> tuple:
        return copy.deepcopy(self.tables), dict(self.next_id)

    def restore(self, snap: tuple) -> None:
        self.tables, self.next_id = copy.deepcopy(snap[0]), dict(snap[1])
        self.touch()

    def touch(self) -> None:
        self.version += 1

    def memo(self, key: tuple, fn: Callable[[], Any]) -> Any:
        if self.cache_version != self.version:
            self.cache, self.cache_version = {}, self.version
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]


class Env:
    """What a request runs with: the fake's state, the user and the context."""

    def __init__(self, server: Any, uid: int, context: Mapping | None = None) -> None:
        self.server, self.store, self.uid = server, server.store, uid
        self.context = dict(context or {})
        self.major = server.version

    def __getitem__(self, model: str) -> "BaseModel":
        cls = REGISTRY.get(model)
        if cls is None:
            raise KeyError(model)
        return cls(self, ())

    def get(self, model: str) -> "BaseModel | None":
        return self[model] if model in REGISTRY else None

    def __call__(self, context: Mapping | None = None) -> "Env":
        return Env(self.server, self.uid, self.context if context is None else context)

    @property
    def user(self) -> Any:
        return self.server.users_by_uid[self.uid]

    @property
    def today(self) -> str:
        return self.server.today.isoformat()


REGISTRY: dict[str, type["BaseModel"]] = {}


# --- domains -------------------------------------------------------------------------------------------------


def normalize_domain(domain: Any) -> list:
    """odoo/osv/expression.py normalize_domain: make the implicit '&' explicit."""
    if not domain:
        return [TRUE_LEAF]
    if not isinstance(domain, (list, tuple)):
        raise ValueError(f"Invalid domain: {domain!r}")
    result: list = []
    expected = 1
    arity = {"!": 1, "&": 2, "|": 2}
    for token in domain:
        if expected == 0:
            result[0:0] = ["&"]
            expected = 1
        if isinstance(token, (list, tuple)):
            expected -= 1
        elif isinstance(token, str) and token in arity:
            expected += arity[token] - 1
        else:
            raise ValueError(f"Invalid domain term {token!r}")
        result.append(token)
    if expected != 0:
        raise ValueError(f"Domain {list(domain)!r} is syntactically not correct.")
    return result


def AND(domains: list) -> list:
    """expression.AND: combine normalized domains with '&', [] meaning 'everything'."""
    result: list = []
    count = 0
    for dom in domains:
        if list(dom) == [TRUE_LEAF] or not dom:
            continue
        if list(dom) == [FALSE_LEAF]:
            return [FALSE_LEAF]
        result += normalize_domain(dom)
        count += 1
    return ["&"] * (count - 1) + result or [TRUE_LEAF]


def _like_regex(pattern: str, ci: bool) -> re.Pattern:
    """A (=)like pattern as a regular expression: ``%`` any run, ``_`` one character, ``\\`` escapes."""
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ci else 0))


def _like(value: str, pattern: str, ci: bool) -> bool:
    return _like_regex(pattern, ci).fullmatch(value) is not None


def _is_null(field: Field, value: Any) -> bool:
    if value is None or value is False:
        return True
    return field.type in ("char", "text", "html", "selection") and value == ""


def _null_test(field: Field) -> Callable[[Any], bool]:
    """``_is_null(field, value)`` as a function of the value alone."""
    if field.type in ("char", "text", "html", "selection"):
        return lambda v: v is None or v is False or v == ""
    return lambda v: v is None or v is False


ROW_TESTED = ("char", "text", "html", "selection", "date", "datetime", "boolean", "many2one")  # see _row_test


def _conjuncts(node: Any) -> list:
    """A parsed domain as the terms of its top-level '&'s, in the order _eval tests them."""
    return _conjuncts(node[1]) + _conjuncts(node[2]) if node[0] == "&" else [node]


def _both(first: Callable[[int], bool], then: Callable[[int], bool]) -> Callable[[int], bool]:
    return lambda rid: first(rid) and then(rid)


def _names(right: Any) -> bool:
    """Whether a many2one is compared with names (_compare then searches the comodel)."""
    return isinstance(right, str) or (isinstance(right, (list, tuple)) and any(isinstance(r, str) for r in right))


def _can_be_null(items: Any) -> bool:
    """Whether a value that _is_null (None, False, '') could equal one of these hashable items."""
    return None in items or "" in items or 0 in items  # 0 stands for False, 0.0 and 0 alike


def _strictly_apart(a: list, b: list) -> bool:
    """Whether two groups' sort keys (term by term, None first or last) tell the groups apart, so that their
    relative order cannot depend on the order they were found in."""
    for x, y in zip(a, b):
        if x is None or y is None:
            if (x is None) != (y is None):
                return True
            continue
        if x == y:
            continue
        return bool(x < y or y < x)  # False for values that do not compare (NaN): a tie
    return False


# --- the base model ------------------------------------------------------------------------------------------


class BaseModel:
    _name = "base"
    _description = "Base"
    _order = "id"
    _rec_name = "name"
    _transient = False
    _sql_constraints: list[tuple[str, Callable[[dict], bool], str]] = []
    _fields: dict[str, Field] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        own = dict(cls.__dict__.get("_fields", {}))
        base = fields(
            id=Field("integer", "ID", readonly=True, aggregator="none"),
            display_name=Field("char", "Display Name", store=False, compute="_compute_display_name"),
            create_date=Field("datetime", "Created on", readonly=True),
            write_date=Field("datetime", "Last Updated on", readonly=True),
            create_uid=Field("many2one", "Created by", comodel="res.users", readonly=True),
            write_uid=Field("many2one", "Last Updated by", comodel="res.users", readonly=True),
        )
        cls._fields = {**base, **own}
        if cls._name != "base":
            REGISTRY[cls._name] = cls

    def __init__(self, env: Env, ids: Any = ()) -> None:
        self.env = env
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = (ids,)
        self._ids = tuple(ids or ())

    # -- recordset basics
    @property
    def ids(self) -> list[int]:
        return list(self._ids)

    @property
    def id(self) -> int | bool:
        return self._ids[0] if len(self._ids) == 1 else False

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self):
        return (type(self)(self.env, (i,)) for i in self._ids)

    def __repr__(self) -> str:
        return f"{self._name}{self._ids!r}"

    def browse(self, ids: Any = ()) -> "BaseModel":
        if isinstance(ids, (list, tuple)):
            ids = [i[0] if isinstance(i, (list, tuple)) else i for i in ids]
        return type(self)(self.env, ids)

    def with_context(self, ctx: Mapping | None = None, **kw: Any) -> "BaseModel":
        return type(self)(self.env({**(self.env.context if ctx is None else ctx), **kw}), self._ids)

    @property
    def _table(self) -> dict[int, dict[str, Any]]:
        return self.env.store.tables.setdefault(self._name, {})

    @property
    def _major(self) -> int:
        return self.env.major

    def _visible_fields(self) -> dict[str, Field]:
        m = self._major
        return {n: f for n, f in self._fields.items() if f.since <= m <= f.until}

    def _field(self, name: str) -> Field:
        f = self._visible_fields().get(name)
        if f is None:
            raise ValueError(f"Invalid field {name!r} on model {self._name!r}")
        return f

    def _row(self, rid: int) -> dict[str, Any]:
        row = self._table.get(rid)
        if row is None:
            raise MissingError(f"Record does not exist or has been deleted.\n(Record: {self._name}({rid},), "
                               f"User: {self.env.uid})")
        return row

    def _existing(self) -> list[int]:
        return [i for i in self._ids if i in self._table]

    # -- values in cache format: many2one -> id|False, x2many -> [ids], date -> 'YYYY-MM-DD'|False
    def _get(self, rid: int, fname: str) -> Any:
        f = self._fields[fname]
        if fname == "id":
            return rid
        if f.compute:
            return self.env.store.memo((self._name, fname, rid), lambda: getattr(self, f.compute)(rid))
        if f.type == "one2many":
            co = self.env[f.comodel]
            ids = [i for i, r in co._table.items() if r.get(f.inverse) == rid and (not f.filter_domain
                                                                                  or f.filter_domain(r))]
            return co._sorted(ids)
        row = self._row(rid)
        value = row.get(fname)
        if value is None:
            return [] if f.type == "many2many" else 0 if f.type == "integer" else 0.0 \
                if f.type in ("float", "monetary") else False
        return value

    def _own_get(self) -> bool:
        """Whether _get is base _get for the fields _value_getter reads itself (see there)."""
        return type(self)._get is BaseModel._get or type(self)._value_getter is not BaseModel._value_getter

    def _plain(self, fname: str) -> bool:
        """Whether ``_get(rid, fname)`` is the row's own value (None read as the type's empty value)."""
        f = self._fields[fname]
        return fname != "id" and not f.compute and f.type not in ("one2many", "many2many") and self._own_get()

    def _value_getter(self, fname: str) -> Callable[[int], Any]:
        """``lambda rid: self._get(rid, fname)`` for a whole search: a plain stored field is read straight from
        its row. A model that overrides _get gets the shortcut only if it overrides this too (and so vouches)."""
        f = self._fields[fname]
        if fname == "id":
            return lambda rid: rid
        if not self._own_get() or f.type in ("one2many", "many2many"):
            return lambda rid: self._get(rid, fname)
        if f.compute:
            store, compute, name = self.env.store, getattr(self, f.compute), self._name
            return lambda rid: store.memo((name, fname, rid), lambda: compute(rid))
        table = self._table
        default = 0 if f.type == "integer" else 0.0 if f.type in ("float", "monetary") else False

        def get(rid: int) -> Any:
            row = table.get(rid)
            value = (self._row(rid) if row is None else row).get(fname)  # _row: the MissingError
            return default if value is None else value
        return get

    def _display(self, rid: int) -> str:
        return self._get(rid, "display_name")

    def _compute_display_name(self, rid: int) -> str:
        value = self._row(rid).get(self._rec_name)
        return value if value else f"{self._name},{rid}"

    def _to_read(self, rid: int, fname: str, load: str | None) -> Any:
        f = self._fields[fname]
        value = self._get(rid, fname)
        if f.type == "many2one":
            if not value:
                return False
            if load != "_classic_read":
                return value
            co = self.env[f.comodel]
            return [value, co._display(value)] if value in co._table else [value, ""]
        if f.type in ("one2many", "many2many"):
            return list(value)
        if f.type == "integer":
            return int(value or 0)
        if f.type in ("float", "monetary"):
            return float(value or 0.0)
        if f.type == "boolean":
            return bool(value)
        if value is None or (value == "" and f.type in ("date", "datetime", "selection")):
            return False
        return value

    # -- conversion of values received from a client
    def _convert(self, f: Field, value: Any) -> Any:
        t = f.type
        if t in ("char", "text", "html"):
            return False if value is None or value is False else str(value)
        if t == "integer":
            return int(value or 0)
        if t in ("float", "monetary"):
            return float(value or 0.0)
        if t == "boolean":
            return bool(value)
        if t == "date":
            if not value:
                return False
            if isinstance(value, datetime):
                return value.date().isoformat()
            if isinstance(value, date):
                return value.isoformat()
            return datetime.strptime(str(value)[:10], "%Y-%m-%d").date().isoformat()
        if t == "datetime":
            if not value:
                return False
            if isinstance(value, datetime):
                return value.strftime("%Y-%m-%d %H:%M:%S")
            text = str(value)
            return datetime.strptime(text if len(text) > 10 else text + " 00:00:00",
                                     "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%d %H:%M:%S")
        if t == "selection":
            if value is False or value is None:
                return False
            if value not in dict(f.selection_for(self._major)):
                raise ValueError(f"Wrong value for {self._name}.{f.name}: {value!r}")
            return value
        if t == "many2one":
            if isinstance(value, (list, tuple)):
                value = value[0] if value else False
            if not value:
                return False
            value = int(value)
            if value not in self.env[f.comodel]._table:
                # PostgreSQL's foreign key refuses it; service/model.py turns that into this ValidationError
                raise ValidationError(
                    "The operation cannot be completed: another model requires the record being deleted. "
                    "If possible, archive it instead.\n\n"
                    f"Model: {self._description} ({self._name})\n"
                    f"Constraint: {self._name.replace('.', '_')}_{f.name}_fkey\n")
            return value
        return value

    # -- access rights (a read-only user stands for a user without the accounting groups)
    def _check_access(self, operation: str) -> None:
        if operation == "read" or not self.env.user.read_only or self._name == "res.users":
            return
        verb = {"write": "modify", "create": "create", "unlink": "delete"}[operation]
        raise AccessError(
            f"You are not allowed to {verb} '{self._description}' ({self._name}) records.\n\n"
            "This operation is allowed for the following groups:\n\t- Accounting/Billing\n\n"
            "Contact your administrator to request access if necessary.")

    # -- searching
    def _active_domain(self, domain: list) -> list:
        if "active" not in self._visible_fields() or not self.env.context.get("active_test", True):
            return domain
        for leaf in domain:
            if isinstance(leaf, (list, tuple)) and str(leaf[0]).split(".")[0] == "active":
                return domain
        return AND([domain, [("active", "=", True)]])

    def _search(self, domain: Any, offset: int = 0, limit: int | None = None, order: str | None = None,
                ids: list[int] | None = None, *, sort: bool = True) -> list[int]:
        """The matching ids in ``order``; ``sort=False`` (counting, grouping: callers the order cannot show in)
        leaves them in table order."""
        domain = self._active_domain(list(domain or []))
        tree = self._parse(normalize_domain(domain))
        candidates = list(self._table) if ids is None else [i for i in ids if i in self._table]
        found = self._filter(tree, candidates)
        if sort:
            found = self._sorted(found, order)
        offset = int(offset or 0)
        return found[offset:offset + int(limit)] if limit else found[offset:]

    def _parse(self, tokens: list) -> Any:
        it = iter(tokens)

        def node():
            t = next(it)
            if isinstance(t, str) and t == "!":
                return ("!", node())
            if isinstance(t, str) and t in ("&", "|"):
                return (t, node(), node())
            return ("leaf", self._check_leaf(t))
        return node()

    def _check_leaf(self, leaf: Any) -> tuple:
        leaf = tuple(leaf)
        if leaf in (TRUE_LEAF, FALSE_LEAF):
            return leaf
        if len(leaf) != 3 or not isinstance(leaf[0], str) or not isinstance(leaf[1], str) \
                or leaf[1].lower() not in OPERATORS:
            raise ValueError(f"Invalid leaf {leaf!r}")
        leaf = (leaf[0], leaf[1].lower(), leaf[2])
        head = leaf[0].split(".")[0]
        if head not in self._visible_fields():
            where = "condition" if self._major >= 19 else "leaf"
            raise ValueError(f"Invalid field {self._name}.{head} in {where} {leaf!r}")
        f = self._fields[head]
        if not f.store and f.type != "one2many" and head != "display_name":
            raise ValueError(f"Non-stored field {self._name}.{head} cannot be searched.")
        return leaf

    def _eval(self, rid: int, node: Any) -> bool:
        kind = node[0]
        if kind == "!":
            return not self._eval(rid, node[1])
        if kind == "&":
            return self._eval(rid, node[1]) and self._eval(rid, node[2])
        if kind == "|":
            return self._eval(rid, node[1]) or self._eval(rid, node[2])
        return self._eval_leaf(rid, node[1])

    def _match(self, rid: int, domain: Any) -> bool:
        return self._eval(rid, self._parse(normalize_domain(list(domain or []))))

    def _filter(self, tree: Any, ids: list[int]) -> list[int]:
        """The ``ids`` (all in the table) that ``tree`` matches, in their order. Leading conjuncts that _row_test
        vouches for are applied first, to the whole list in turn: being first, they were the first test of every
        record, and as they neither raise nor change anything, the answer and any error are the same."""
        rows = self._table
        conjuncts = _conjuncts(tree)
        while conjuncts:
            hoisted = self._row_test(conjuncts[0])
            if hoisted is None:
                break
            fname, test = hoisted
            ids = [rid for rid in ids if test(rows[rid].get(fname))]
            conjuncts = conjuncts[1:]
        if not conjuncts:
            return ids
        match = self._compile(conjuncts[0])
        for node in conjuncts[1:]:
            match = _both(match, self._compile(node))
        return [rid for rid in ids if match(rid)]

    def _row_test(self, node: Any) -> tuple[str, Callable[[Any], bool]] | None:
        """(field, test of the row's raw value) for a leaf whose test is _eval_leaf's answer and can neither raise
        nor change anything: a plain stored field of a type whose tests take None as False (not numbers), no
        dotted path, no name search, no float conversion, nothing left to _compare."""
        if node[0] != "leaf" or node[1] == TRUE_LEAF or node[1] == FALSE_LEAF:
            return None
        path, op, right = node[1]
        if "." in path or op in ("any", "not any", "child_of", "parent_of") or not self._plain(path):
            return None
        f = self._fields[path]
        if f.type not in ROW_TESTED or (f.type == "many2one" and (op in ("<", "<=", ">", ">=") or _names(right))):
            return None
        test = self._compile_compare(f, op, right, reference=False)
        return None if test is None else (path, test)

    # -- compiled domains: _eval's answers, with what depends only on the domain worked out once per search.
    # Anything unusual is handed to _eval_leaf/_compare themselves, which stay the reference. Records are still
    # tested one by one, leaves left to right with the same short-circuits, so that even errors come out alike.
    def _compile(self, node: Any) -> Callable[[int], bool]:
        kind = node[0]
        if kind == "!":
            inner = self._compile(node[1])
            return lambda rid: not inner(rid)
        if kind in ("&", "|"):
            left, right = self._compile(node[1]), self._compile(node[2])
            if kind == "&":
                return _both(left, right)
            return lambda rid: left(rid) or right(rid)
        return self._compile_leaf(node[1])

    def _compile_leaf(self, leaf: tuple) -> Callable[[int], bool]:
        if leaf == TRUE_LEAF:
            return lambda rid: True
        if leaf == FALSE_LEAF:
            return lambda rid: False
        path, op, right = leaf
        head, _, rest = path.partition(".")
        f = self._fields[head]
        if rest or op in ("any", "not any"):
            return self._compile_related(f, rest, op, right)
        if op in ("child_of", "parent_of"):
            return lambda rid: self._eval_hierarchy(rid, f, op, right)
        get, test = self._value_getter(head), self._compile_compare(f, op, right)
        return lambda rid: test(get(rid))

    def _compile_related(self, f: Field, rest: str, op: str, right: Any) -> Callable[[int], bool]:
        """A dotted path or (not) any: the comodel's test, built on first use as _eval_leaf builds it per record,
        and its answer remembered per related record (nothing changes the store during a search)."""
        get = self._value_getter(f.name)
        state: dict[str, Any] = {}
        answers: dict[int, bool] = {}

        def related_test(r: int) -> bool:
            if r not in answers:
                if "test" not in state:
                    co = state["co"]
                    state["test"] = co._compile(co._parse(normalize_domain(list(right or [])))) \
                        if op in ("any", "not any") else co._compile_leaf(co._check_leaf((rest, op, right)))
                answers[r] = bool(state["test"](r))
            return answers[r]

        def test(rid: int) -> bool:
            if "co" not in state:
                state["co"] = self.env[f.comodel]
            value = get(rid)
            related = ([value] if value else []) if f.type == "many2one" else list(value)
            hit = any(related_test(r) for r in related)
            return (not hit) if op == "not any" else hit
        return test

    def _compile_compare(self, f: Field, op: str, right: Any, *,
                         reference: bool = True) -> Callable[[Any], bool] | None:
        """``_compare(f, value, op, right)`` as a function of the value; its branches, in its order. Cases left
        to _compare itself give None when not ``reference``."""
        def reference_test(value: Any) -> bool:
            return self._compare(f, value, op, right)
        slow = reference_test if reference else None
        operator = op
        if operator == "=?":
            if right is None or right is False:
                return lambda value: True
            operator = "="
        if operator == "<>":
            operator = "!="
        if operator in ("=", "!=") and isinstance(right, (list, tuple)):
            operator = "in" if operator == "=" else "not in"
        if f.type == "many2one" and _names(right):
            return self._compile_m2o_names(f, operator, right)
        if f.type in ("one2many", "many2many"):
            return slow
        if f.type == "boolean":  # _compare: never null, compared as a bool
            test = self._compile_scalar(f, operator, right, lambda v: False)
            return slow if test is None else (lambda value: test(bool(value)))  # type: ignore[misc]
        test = self._compile_scalar(f, operator, right, _null_test(f))
        return slow if test is None else test

    def _compile_m2o_names(self, f: Field, op: str, right: Any) -> Callable[[Any], bool]:
        """A many2one compared with names: the ids of those names, searched on first use (as _compare does)."""
        positive = op.replace("not ", "").replace("!=", "=")
        positive = "=" if positive == "in" else positive
        names = right if isinstance(right, (list, tuple)) else [right]
        negative = op in NEGATIVE
        found: list[set[int]] = []

        def test(value: Any) -> bool:
            if not found:
                co = self.env[f.comodel]
                found.append({i for n in names for i in co._search([(co._rec_name, positive, n)], sort=False)})
            hit = bool(value) and value in found[0]
            return (not hit) if negative else hit
        return test

    def _compile_scalar(self, f: Field, op: str, right: Any,
                        null: Callable[[Any], bool]) -> Callable[[Any], bool] | None:
        """_compare's scalar branches; None where only _compare itself will do."""
        boolean = f.type == "boolean"
        if op in ("=", "!="):
            if right is False or right is None:
                if op == "=":
                    return (lambda v: v is False) if boolean else null
                return (lambda v: v is True) if boolean else (lambda v: not null(v))
            eq = self._compile_eq(f, right)
            if eq is None:
                return None
            if op == "=":
                if not boolean and f.type not in ("float", "monetary", "integer") and isinstance(right, str) \
                        and right != "":
                    return lambda v: v == right  # a null value never equals a non-empty string
                return lambda v: not null(v) and eq(v)
            return lambda v: null(v) or not eq(v)
        if op in ("in", "not in"):
            return self._compile_in(f, op, right, null)
        if op in ("<", "<=", ">", ">="):
            return self._compile_order(f, op, right, null)
        if right is False or right is None or right == "":
            if op in ("like", "ilike"):
                return lambda v: True
            if op in ("not like", "not ilike"):
                return lambda v: False
        rx = _like_regex(str(right) if op in ("=like", "=ilike") else f"%{right}%", "ilike" in op)
        negative = op.startswith("not")
        if_null = op in ("not like", "not ilike")
        return lambda v: if_null if null(v) else (rx.fullmatch(str(v)) is None) == negative

    @staticmethod
    def _compile_eq(f: Field, right: Any) -> Callable[[Any], bool] | None:
        """``_eq(f, value, right)`` as a function of the value; None when ``right`` is not a plain number."""
        if f.type in ("float", "monetary", "integer"):
            try:
                number = float(right)
            except Exception:  # noqa: BLE001  (_eq's own handling, value first, is left to it)
                return None

            def eq(value: Any) -> bool:
                try:
                    return float(value) == number
                except (TypeError, ValueError):
                    return False
            return eq
        if f.type in ("date", "datetime") and isinstance(right, (date, datetime)):
            right = right.isoformat()
        return lambda value: value == right

    def _compile_in(self, f: Field, op: str, right: Any, null: Callable[[Any], bool]) -> Callable[[Any], bool] | None:
        items = list(right) if isinstance(right, (list, tuple, set)) else [right]
        has_false = any(v is False or v is None for v in items)
        compiled = self._compile_member(f, [v for v in items if v is not False and v is not None])
        if compiled is None:
            return None
        member, nullable = compiled
        if not has_false and not nullable:  # no null value passes member: the null tests add nothing
            return member if op == "in" else (lambda v: not member(v))

        def hit(v: Any) -> bool:
            return (null(v) and has_false) or (not null(v) and member(v))
        return hit if op == "in" else (lambda v: not hit(v))

    @staticmethod
    def _compile_member(f: Field, items: list) -> tuple[Callable[[Any], bool], bool] | None:
        """``any(_eq(f, value, v) for v in items)`` as a set lookup, and whether a null value could pass it;
        None for items a set cannot stand for."""
        if not items:
            return (lambda value: False), False
        if f.type in ("float", "monetary", "integer"):
            numbers = set()
            for item in items:
                try:
                    number = float(item)
                except (TypeError, ValueError):
                    continue  # _eq answers False for that item
                except Exception:  # noqa: BLE001
                    return None
                if number == number:  # NaN equals nothing
                    numbers.add(number)

            def member(value: Any) -> bool:
                try:
                    return float(value) in numbers
                except (TypeError, ValueError):
                    return False
            return member, 0.0 in numbers  # float(False) is 0.0
        dated = f.type in ("date", "datetime")
        values = [v.isoformat() if dated and isinstance(v, (date, datetime)) else v for v in items]
        if any(isinstance(v, float) and v != v for v in values):
            return None  # a set finds NaN by identity, == never does
        try:
            known = set(values)
        except TypeError:
            return None

        def member(value: Any) -> bool:  # noqa: F811
            try:
                return value in known
            except TypeError:  # an unhashable value: compared one by one, as _eq does
                return any(value == v for v in values)
        return member, _can_be_null(known)

    @staticmethod
    def _compile_order(f: Field, op: str, right: Any, null: Callable[[Any], bool]) -> Callable[[Any], bool] | None:
        """The <, <=, >, >= branch with _cmp_pair's conversions."""
        if right is False or right is None:
            return lambda v: False
        compare = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
                   ">=": lambda a, b: a >= b}[op]
        if f.type in ("float", "monetary", "integer", "many2one"):
            try:
                bound = float(right)
            except Exception:  # noqa: BLE001  (raised per record by _cmp_pair, after float(value))
                return None
            return lambda v: not null(v) and compare(float(v), bound)
        if f.type == "date":
            day = str(right)[:10]
            return lambda v: not null(v) and compare(str(v)[:10], day)
        text = str(right)
        return lambda v: not null(v) and compare(str(v), text)

    def _eval_leaf(self, rid: int, leaf: tuple) -> bool:
        if leaf == TRUE_LEAF:
            return True
        if leaf == FALSE_LEAF:
            return False
        path, op, right = leaf
        head, _, rest = path.partition(".")
        f = self._fields[head]
        if rest or op in ("any", "not any"):
            co = self.env[f.comodel]
            value = self._get(rid, head)
            related = ([value] if value else []) if f.type == "many2one" else list(value)
            if op in ("any", "not any"):
                hit = any(co._match(r, right) for r in related)
                return hit if op == "any" else not hit
            return any(co._eval_leaf(r, co._check_leaf((rest, op, right))) for r in related)
        if op in ("child_of", "parent_of"):
            return self._eval_hierarchy(rid, f, op, right)
        return self._compare(f, self._get(rid, head), op, right)

    def _eval_hierarchy(self, rid: int, f: Field, op: str, right: Any) -> bool:
        targets = set(right if isinstance(right, (list, tuple)) else [right])
        model = self if f.name == "id" else self.env[f.comodel]
        start = [rid] if f.name == "id" else ([self._get(rid, f.name)] if f.type == "many2one"
                                              else list(self._get(rid, f.name)))
        for node in start:
            seen = set()
            while node and node not in seen:
                if node in targets:
                    return True
                seen.add(node)
                node = model._table.get(node, {}).get("parent_id") if op == "child_of" else None
        return False

    def _compare(self, f: Field, value: Any, op: str, right: Any) -> bool:
        if op == "=?":
            if right is None or right is False:
                return True
            op = "="
        if op == "<>":
            op = "!="
        if op in ("=", "!=") and isinstance(right, (list, tuple)):
            op = "in" if op == "=" else "not in"
        if f.type == "many2one" and _names(right):
            positive = op.replace("not ", "").replace("!=", "=")
            names = right if isinstance(right, (list, tuple)) else [right]
            co = self.env[f.comodel]
            if positive == "in":
                positive = "="
            ids = {i for n in names for i in co._search([(co._rec_name, positive, n)], sort=False)}
            hit = bool(value) and value in ids
            return (not hit) if op in NEGATIVE else hit
        if f.type in ("one2many", "many2many"):
            ids = set(value)
            if right is False or right is None or right == []:
                return (not ids) if op in ("=", "in") else bool(ids)
            if isinstance(right, str):
                co = self.env[f.comodel]
                hit = any(co._compare(co._fields[co._rec_name], co._get(i, co._rec_name), op.replace("not ", ""),
                                      right) for i in ids)
                return (not hit) if op in NEGATIVE else hit
            targets = set(right if isinstance(right, (list, tuple)) else [right])
            hit = bool(ids & targets)
            return (not hit) if op in ("!=", "not in") else hit
        null = _is_null(f, value) if f.type != "boolean" else False
        if f.type == "boolean":
            value = bool(value)
        if op == "=":
            if right is False or right is None:
                return (value is False) if f.type == "boolean" else null
            return not null and self._eq(f, value, right)
        if op == "!=":
            if right is False or right is None:
                return (value is True) if f.type == "boolean" else not null
            return null or not self._eq(f, value, right)
        if op in ("in", "not in"):
            items = list(right) if isinstance(right, (list, tuple, set)) else [right]
            has_false = any(v is False or v is None for v in items)
            hit = (null and has_false) or (not null and any(self._eq(f, value, v) for v in items
                                                            if v is not False and v is not None))
            return hit if op == "in" else not hit
        if op in ("<", "<=", ">", ">="):
            if null or right is False or right is None:
                return False
            a, b = self._cmp_pair(f, value, right)
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        # like family
        if right is False or right is None or right == "":
            if op in ("like", "ilike"):
                return True
            if op in ("not like", "not ilike"):
                return False
        if null:
            return op in ("not like", "not ilike")
        pattern = str(right) if op in ("=like", "=ilike") else f"%{right}%"
        hit = _like(str(value), pattern, "ilike" in op)
        return (not hit) if op.startswith("not") else hit

    @staticmethod
    def _eq(f: Field, value: Any, right: Any) -> bool:
        if f.type in ("float", "monetary", "integer"):
            try:
                return float(value) == float(right)
            except (TypeError, ValueError):
                return False
        if f.type in ("date", "datetime") and isinstance(right, (date, datetime)):
            right = right.isoformat()
        return value == right

    @staticmethod
    def _cmp_pair(f: Field, value: Any, right: Any) -> tuple:
        if f.type in ("float", "monetary", "integer", "many2one"):
            return float(value), float(right)
        if f.type == "date":
            return str(value)[:10], str(right)[:10]
        return str(value), str(right)

    # -- ordering
    def _parse_order(self, order: str) -> list[tuple[str, bool, str | None]]:
        terms = []
        for part in str(order).split(","):
            part = part.strip()
            if not part:
                continue
            m = re.fullmatch(r'"?([\w.]+)"?(?:\s+(asc|desc))?(?:\s+nulls\s+(first|last))?', part, re.IGNORECASE)
            if not m or m.group(1).split(".")[0] not in self._visible_fields():
                raise ValueError(f'Invalid "order" specified ({order}). A valid "order" specification is a '
                                 'comma-separated list of valid field names (optionally followed by asc/desc for '
                                 'the direction)')
            terms.append((m.group(1), (m.group(2) or "asc").lower() == "desc",
                          m.group(3).lower() if m.group(3) else None))
        return terms

    def _rank(self) -> dict[int, int]:
        """Position of every record in this model's default order (how a many2one sorts)."""
        return self.env.store.memo((self._name, "__rank__"),
                                   lambda: {rid: i for i, rid in enumerate(self._sorted(list(self._table)))})

    def _sort_value(self, rid: int, fname: str) -> Any:
        f = self._fields[fname]
        value = self._get(rid, fname)
        if f.type == "many2one":
            return self.env[f.comodel]._rank().get(value) if value else None
        if _is_null(f, value) and f.type not in ("boolean", "integer", "float", "monetary"):
            return None
        if isinstance(value, str):
            return (value.casefold(), value)
        if isinstance(value, list):
            return tuple(value)
        return value

    def _sort_key(self, fname: str) -> Callable[[int], Any]:
        """``lambda rid: self._sort_value(rid, fname)`` with the field looked up once."""
        f = self._fields[fname]
        get = self._value_getter(fname)
        blank = f.type not in ("boolean", "integer", "float", "monetary")

        def key(rid: int) -> Any:
            value = get(rid)
            if f.type == "many2one":
                return self.env[f.comodel]._rank().get(value) if value else None
            if blank and _is_null(f, value):
                return None
            if isinstance(value, str):
                return (value.casefold(), value)
            if isinstance(value, list):
                return tuple(value)
            return value
        return key

    def _sorted(self, ids: list[int], order: str | None = None) -> list[int]:
        ids = sorted(ids)
        for fname, desc, nulls in reversed(self._parse_order(order or self._order)):
            fname = fname.split(".")[0]
            nulls_first = desc if nulls is None else nulls == "first"
            key = self._sort_key(fname)
            values = {i: key(i) for i in ids}  # once per record and term (the same value every time it is asked)
            present = [i for i in ids if values[i] is not None]
            missing = [i for i in ids if values[i] is None]
            present.sort(key=values.__getitem__, reverse=desc)
            ids = missing + present if nulls_first else present + missing
        return ids

    # -- writing
    def _apply_commands(self, rid: int, f: Field, commands: Any) -> None:
        co = self.env[f.comodel]
        if commands is False or commands is None:
            commands = [(5, 0, 0)]
        if commands and all(isinstance(c, int) and not isinstance(c, bool) for c in commands):
            commands = [(6, 0, list(commands))]
        current = list(self._get(rid, f.name))
        for cmd in commands:
            if not isinstance(cmd, (list, tuple)) or not cmd:
                raise ValueError(f"Invalid command {cmd!r} for field {self._name}.{f.name}")
            code = cmd[0]
            if code == 0:
                vals = dict(cmd[2] or {})
                if f.type == "one2many":
                    vals[f.inverse] = rid
                    co._create_one(vals, parent=(self, rid))
                else:
                    current.append(co._create_one(vals))
            elif code == 1:
                co.browse(cmd[1])._write(dict(cmd[2] or {}))
            elif code == 2:
                co.browse(cmd[1])._unlink()
                current = [i for i in current if i != cmd[1]]
            elif code == 3:
                if f.type == "one2many":
                    co.browse(cmd[1])._unlink()
                current = [i for i in current if i != cmd[1]]
            elif code == 4:
                if f.type == "one2many":
                    co.browse(cmd[1])._write({f.inverse: rid})
                elif cmd[1] not in current:
                    current.append(cmd[1])
            elif code == 5:
                if f.type == "one2many":
                    co.browse(current)._unlink()
                current = []
            elif code == 6:
                wanted = list(cmd[2] or [])
                if f.type == "one2many":
                    co.browse([i for i in current if i not in wanted])._unlink()
                    co.browse(wanted)._write({f.inverse: rid})
                current = wanted
            else:
                raise ValueError(f"Invalid command {cmd!r} for field {self._name}.{f.name}")
        if f.type == "many2many":
            self._table[rid][f.name] = [i for i in dict.fromkeys(current) if i in co._table]

    def _default_values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, f in self._visible_fields().items():
            key = f"default_{name}"
            if key in self.env.context:
                out[name] = self.env.context[key]
            elif f.default is not None:
                out[name] = f.default(self) if callable(f.default) else f.default
        return out

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        """Business defaults, computed before the row is stored (overridden by models)."""
        return vals

    def _create_one(self, vals: Mapping[str, Any], parent: tuple | None = None) -> int:
        if not isinstance(vals, Mapping):
            raise TypeError(f"create() expects a dict or a list of dicts, got {vals!r}")
        for key in vals:
            self._field(key)
        vals = self._prepare_create({**self._default_values(), **dict(vals)})
        store = self.env.store
        rid = store.next_id.get(self._name, 1)
        store.next_id[self._name] = rid + 1
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        row: dict[str, Any] = {"id": rid, "create_date": now, "write_date": now, "create_uid": self.env.uid,
                               "write_uid": self.env.uid}
        self._table[rid] = row
        store.touch()
        later = {}
        for key, value in vals.items():
            f = self._fields[key]
            if key == "id" or f.compute and not f.store:
                continue
            if f.type in ("one2many", "many2many"):
                later[key] = value
            else:
                row[key] = self._convert(f, value)
        for key, value in later.items():
            self._apply_commands(rid, self._fields[key], value)
        self._check_row(rid)
        store.touch()
        self._after_create(rid)
        return rid

    def _check_row(self, rid: int) -> None:
        row = self._row(rid)
        for name, f in self._visible_fields().items():
            if f.required and f.store and not f.compute and f.type not in ("one2many", "many2many", "boolean") \
                    and row.get(name) in (None, False, ""):
                raise ValidationError(
                    "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                    "- Delete: another model requires the record being deleted. If possible, archive it instead."
                    f"\n\nModel: {self._description} ({self._name})\nField: {f.string} ({name})\n")
        for _name, check, message in self._sql_constraints:
            if not check(row):
                raise ValidationError(f"The operation cannot be completed: {message}")

    def _after_create(self, rid: int) -> None:
        pass

    def _write(self, vals: Mapping[str, Any]) -> None:
        for key in vals:
            self._field(key)
        for rid in self._ids:
            if rid not in self._table:
                raise MissingError(
                    "One of the documents you are trying to access has been deleted, please try again after "
                    f"refreshing.\n\n(Document type: {self._name}, Operation: write, Records: {list(self._ids)[:6]},"
                    f" User: {self.env.uid})")
        for rid in self._ids:
            row = self._table[rid]
            later = {}
            for key, value in vals.items():
                f = self._fields[key]
                if key == "id" or (f.compute and not f.store):
                    continue
                if f.type in ("one2many", "many2many"):
                    later[key] = value
                else:
                    row[key] = self._convert(f, value)
            for key, value in later.items():
                self._apply_commands(rid, self._fields[key], value)
            row["write_date"] = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
            row["write_uid"] = self.env.uid
            self.env.store.touch()
            self._check_row(rid)

    def _unlink(self) -> None:
        ids = self._existing()
        if not ids:
            return
        for name, cls in REGISTRY.items():
            co = self.env[name]
            for f in co._fields.values():
                if f.type == "many2one" and f.comodel == self._name and not f.compute:
                    refs = [r for r, row in co._table.items() if row.get(f.name) in ids and r not in
                            (ids if name == self._name else ())]
                    if not refs:
                        continue
                    if f.ondelete == "cascade":
                        co.browse(refs)._unlink()
                    elif f.ondelete == "restrict":
                        raise ValidationError(
                            "The operation cannot be completed: another model requires the record being deleted."
                            " If possible, archive it instead.\n\n"
                            f"Model: {co._description} ({co._name})\n"
                            f"Constraint: {co._name.replace('.', '_')}_{f.name}_fkey\n")
                    else:
                        for r in refs:
                            co._table[r][f.name] = False
                if f.type == "many2many" and f.comodel == self._name:
                    for row in co._table.values():
                        if row.get(f.name):
                            row[f.name] = [i for i in row[f.name] if i not in ids]
        for rid in ids:
            self._table.pop(rid, None)
        self.env.store.touch()

    # ==== the public ORM API ====================================================================================

    @rpc()
    @api_model
    def search(self, domain, offset=0, limit=None, order=None):
        return self.browse(self._search(domain, offset, limit, order))

    @rpc()
    @api_model
    def search_count(self, domain, limit=None):
        found = self._search(domain, sort=False)
        return min(len(found), int(limit)) if limit else len(found)

    @rpc()
    @api_model
    def search_read(self, domain=None, fields=None, offset=0, limit=None, order=None, **read_kwargs):
        return self.browse(self._search(domain or [], offset, limit, order)).read(fields, **read_kwargs)

    @rpc()
    def read(self, fields=None, load="_classic_read"):
        if fields:
            names = [n for n in fields if n != "id"]
            for n in names:
                self._field(n)
        else:
            names = [n for n in self._visible_fields() if n != "id"]
        out = []
        for rid in self._ids:
            if rid not in self._table:
                continue  # read() silently skips records deleted in the meantime
            rec = {"id": rid}
            for n in names:
                rec[n] = self._to_read(rid, n, load)
            out.append(rec)
        return out

    @rpc()
    @api_create
    def create(self, vals_list):
        self._check_access("create")
        if isinstance(vals_list, Mapping):
            vals_list = [vals_list]
        return self.browse([self._create_one(vals) for vals in vals_list])

    @rpc()
    def write(self, vals):
        self._check_access("write")
        self._write(vals)
        return True

    @rpc()
    def unlink(self):
        self._check_access("unlink")
        self._unlink()
        return True

    @rpc()
    def exists(self):
        return self.browse(self._existing())

    @rpc()
    @api_model
    def fields_get(self, allfields=None, attributes=None):
        out = {}
        for name, f in self._visible_fields().items():
            if allfields and name not in allfields:
                continue
            desc: dict[str, Any] = {
                "type": f.type, "string": f.string, "required": f.required,
                "readonly": f.readonly or bool(f.compute and not f.store), "store": f.store,
                "sortable": f.store, "searchable": f.store or f.type == "one2many", "groupable": f.store,
                "manual": False, "company_dependent": False, "depends": [], "help": "",
            }
            if f.relational:
                desc["relation"] = f.comodel
            if f.type == "one2many":
                desc["relation_field"] = f.inverse
            if f.type == "selection":
                desc["selection"] = [list(s) for s in f.selection_for(self._major)]
            if f.type == "monetary":
                desc["currency_field"] = "currency_id"
            if f.aggregator:
                desc["aggregator" if self._major >= 18 else "group_operator"] = f.aggregator
            out[name] = {k: v for k, v in desc.items() if not attributes or k in attributes}
        return out

    @rpc()
    @api_model
    def default_get(self, fields_list):
        defaults = self._default_values()
        return {k: v for k, v in defaults.items() if k in fields_list}

    def _name_search(self, name, domain, operator, limit):
        domain = list(domain or [])
        if name:
            domain = AND([domain, [(self._rec_name, operator, name)]])
        return [[rid, self._display(rid)] for rid in self._search(domain, limit=limit)]

    @rpc(until=17)
    @api_model
    def name_search(self, name="", args=None, operator="ilike", limit=100):
        return self._name_search(name, args, operator, limit)

    @rpc(since=18)
    @api_model
    def name_search__18(self, name="", domain=None, operator="ilike", limit=100):
        return self._name_search(name, domain, operator, limit)

    # -- grouping
    def _group_spec(self, spec: str, *, default_gran: str | None) -> tuple[str, str | None]:
        m = re.fullmatch(r"(\w+)(?:\.(\w+))?(?::(\w+))?", spec)
        if not m:
            raise ValueError(f"Invalid aggregate/groupby specification {spec!r}.")
        fname, gran = m.group(1), m.group(3)
        if fname not in self._visible_fields():
            raise ValueError(f"Invalid field {fname!r} on model {self._name!r}")
        f = self._fields[fname]
        if not f.store:
            raise ValueError(f"Field {self._name}.{fname} is not a stored field, only stored fields (regular or "
                             "many2many) are valid for the 'groupby' parameter")
        if f.type in ("date", "datetime"):
            gran = gran or default_gran
            if gran is None:
                raise ValueError(f"Granularity not set on a date(time) field: {spec!r}")
            if gran not in GRANULARITIES:
                raise ValueError(f"Granularity {gran!r} is not supported for {spec!r}")
        elif gran:
            raise ValueError(f"Granularity set on a no-datetime field or property: {spec!r}")
        return fname, gran

    def _group_keyer(self, fname: str, gran: str | None) -> Callable[[int], Any]:
        """A record's group key for ``fname`` (a date field's period start), the field looked up once."""
        f = self._fields[fname]
        get = self._value_getter(fname)
        if f.type in ("date", "datetime"):
            starts: dict[str, date] = {}  # per distinct day: many records share one

            def period(rid: int) -> Any:
                value = get(rid)
                if not value:
                    return False
                day = str(value)[:10]
                if day not in starts:
                    starts[day] = _period_start(date.fromisoformat(day), gran)
                return starts[day]
            return period
        if f.type == "many2many":
            return lambda rid: tuple(get(rid))
        if f.type == "boolean":
            return get
        null = _null_test(f)

        def key(rid: int) -> Any:
            value = get(rid)
            return False if null(value) else value
        return key

    def _group_ids(self, ids: list[int], specs: list[tuple[str, str | None]]) -> list[tuple[tuple, list[int]]]:
        """Groups in the order their first record comes in ``ids``, each with its records in that order."""
        keyers = [self._group_keyer(fname, gran) for fname, gran in specs]
        groups: dict[tuple, list[int]] = {}
        for rid in ids:
            groups.setdefault(tuple(key(rid) for key in keyers), []).append(rid)
        return list(groups.items())

    def _ordered_groups(self, ids: list[int], specs: list[tuple[str, str | None]], groups: list,
                        terms: list[tuple[Callable, bool]], funcs: Any) -> list:
        """``groups`` (built from ``ids`` in table order) in ``terms`` order, exactly as if built from the matches in
        the model's order. That order only shows in array_agg, min/max (0.0 and -0.0 tie) and between groups the
        terms do not tell apart: only then are the matches sorted first."""
        if not {"array_agg", "min", "max"} & set(funcs):
            try:
                ordered = self._order_groups(groups, terms)
                keys = [[keyfn(g) for keyfn, _desc in terms] for g in ordered]
                if all(_strictly_apart(a, b) for a, b in zip(keys, keys[1:])):
                    return ordered
            except Exception:  # noqa: BLE001  (the sorted path below raises it, or not, in the model's order)
                pass
        return self._order_groups(self._group_ids(self._sorted(ids), specs), terms)

    def _aggregate(self, ids: list[int], fname: str, func: str) -> Any:
        if fname == "__count" or func == "__count":
            return len(ids)
        f = self._fields[fname]
        get = self._value_getter(fname)
        values = [get(i) for i in ids]
        present = [v for v in values if not (v is None or (v is False and f.type != "boolean"))]
        if func == "sum":
            return dsum(present) if f.type in ("float", "monetary") else sum(present)
        if func == "avg":
            return dsum(present) / len(present) if present else None
        if func == "min":
            return min(present) if present else False
        if func == "max":
            return max(present) if present else False
        if func == "count":
            return len(present)
        if func == "count_distinct":
            return len(set(present))
        if func == "array_agg":
            return values
        if func == "bool_and":
            return all(values)
        if func == "bool_or":
            return any(values)
        raise ValueError(f"Invalid aggregation function {func!r}.")

    def _group_sort_value(self, fname: str, key: Any) -> Any:
        f = self._fields[fname]
        if key is False or key is None:
            return None
        if f.type == "many2one":
            return self.env[f.comodel]._rank().get(key, 0)
        if isinstance(key, str):
            return (key.casefold(), key)
        return key

    def _order_groups(self, groups: list, terms: list[tuple[Callable, bool]]) -> list:
        for keyfn, desc in reversed(terms):
            present = [g for g in groups if keyfn(g) is not None]
            missing = [g for g in groups if keyfn(g) is None]
            present.sort(key=keyfn, reverse=desc)
            groups = missing + present if desc else present + missing
        return groups

    def _group_domain(self, fname: str, gran: str | None, key: Any) -> list:
        f = self._fields[fname]
        if f.type in ("date", "datetime") and key:
            start, end = _period(key, gran)
            fmt = (lambda d: d.isoformat()) if f.type == "date" else (lambda d: f"{d.isoformat()} 00:00:00")
            return ["&", (fname, ">=", fmt(start)), (fname, "<", fmt(end))]
        if f.type == "many2many" and not key:
            return [(fname, "not any", [])]
        return [(fname, "=", key if not isinstance(key, tuple) else list(key))]

    def _group_value(self, fname: str, key: Any) -> Any:
        f = self._fields[fname]
        if f.type == "many2one":
            return [key, self.env[f.comodel]._display(key)] if key else False
        return key

    @rpc()
    @api_model
    def read_group(self, domain, fields, groupby, offset=0, limit=None, orderby=False, lazy=True):
        groupby = [groupby] if isinstance(groupby, str) else list(groupby or [])
        lazy_groupby = groupby[:1] if lazy else groupby
        annotated = {spec: self._group_spec(spec, default_gran="month") for spec in lazy_groupby}
        count_key = f"{lazy_groupby[0].split(':')[0]}_count" if lazy and len(lazy_groupby) == 1 else "__count"
        aggregates: dict[str, tuple[str, str]] = {count_key: ("__count", "__count")}
        for spec in fields or []:
            if spec == "__count":
                continue
            m = re.fullmatch(r"(\w+)(?::(\w+)(?:\((\w+)\))?)?", spec)
            if not m:
                raise ValueError(f"Invalid field specification {spec!r}.")
            name, func, fname = m.groups()
            if fname or func:
                target = fname or name
                self._field(target)
                if func not in AGGREGATORS:
                    raise ValueError(f"Invalid aggregation function {func!r}.")
                aggregates[name] = (target, func)
                continue
            f = self._field(name)
            if f.store and f.aggregator and spec not in annotated:
                aggregates[name] = (name, f.aggregator)
        specs = list(annotated.values())
        ids = self._search(domain, sort=False)
        groups = self._group_ids(ids, specs)
        if orderby:
            terms = []
            for term in str(orderby).split(","):
                parts = term.split()
                if not parts:
                    continue
                key, desc = parts[0], len(parts) > 1 and parts[1].lower() == "desc"
                names = [s.split(":")[0] for s in annotated]
                if key in names:
                    i = names.index(key)
                    fname = specs[i][0]
                    terms.append((lambda g, i=i, fname=fname: self._group_sort_value(fname, g[0][i]), desc))
                elif key in aggregates or key == "__count":
                    fname, func = aggregates.get(key, ("__count", "__count"))
                    terms.append((lambda g, fname=fname, func=func: self._aggregate(g[1], fname, func), desc))
                else:
                    raise ValueError(f"Order a field that is not in groupby: {key!r}")
        else:
            terms = [(lambda g, i=i, fname=spec[0]: self._group_sort_value(fname, g[0][i]), False)
                     for i, spec in enumerate(specs)]
        groups = self._ordered_groups(ids, specs, groups, terms, [func for _f, func in aggregates.values()])
        offset = int(offset or 0)
        groups = groups[offset:offset + int(limit)] if limit else groups[offset:]
        base_domain = list(domain or [])
        rows = []
        for key, ids in groups:
            row: dict[str, Any] = {}
            extra: list = []
            ranges: dict[str, Any] = {}
            for (spec, (fname, gran)), k in zip(annotated.items(), key):
                f = self._fields[fname]
                if f.type in ("date", "datetime"):
                    if k:
                        start, end = _period(k, gran)
                        fmt = (lambda d: d.isoformat()) if f.type == "date" else \
                            (lambda d: f"{d.isoformat()} 00:00:00")
                        row[spec] = _label(k, gran)
                        ranges[spec] = {"from": fmt(start), "to": fmt(end)}
                    else:
                        row[spec] = False
                        ranges[spec] = False
                else:
                    row[spec] = self._group_value(fname, k)
                extra.append(self._group_domain(fname, gran, k))
            for name, (fname, func) in aggregates.items():
                row[name] = self._aggregate(ids, fname, func)
            row["__domain"] = AND([base_domain, *extra]) if extra else (base_domain or [])
            if len(lazy_groupby) < len(groupby):
                row["__context"] = {"group_by": groupby[len(lazy_groupby):]}
            if ranges:
                row["__range"] = ranges
            rows.append(row)
        if not groupby and not rows:
            rows = [{count_key: 0, **{n: False for n in aggregates if n != count_key}, "__domain": base_domain}]
        return rows

    @rpc(since=19)
    @api_model
    def formatted_read_group(self, domain, groupby=(), aggregates=(), having=(), offset=0, limit=None,
                             order=None):
        groupby = tuple(groupby)
        specs = [self._group_spec(spec, default_gran=None) for spec in groupby]
        aggs: dict[str, tuple[str, str]] = {}
        for spec in aggregates:
            if spec == "__count":
                aggs[spec] = ("__count", "__count")
                continue
            m = re.fullmatch(r"(\w+)(?::(\w+))?", spec)
            if not m:
                raise ValueError(f"Invalid aggregate/groupby specification {spec!r}.")
            fname, func = m.groups()
            self._field(fname)
            if not func:
                raise ValueError(f"Aggregate method is mandatory for {fname!r}")
            if func not in AGGREGATORS and func != "recordset":
                raise ValueError(f"Invalid aggregate method {func!r} for {spec!r}.")
            aggs[spec] = (fname, "array_agg" if func == "recordset" else func)
        ids = self._search(domain, sort=bool(having))  # a having may test an array_agg: grouped as before
        groups = self._group_ids(ids, specs)
        if having:
            tree = _having_tree(normalize_domain(list(having)))
            groups = [g for g in groups if _eval_having(tree, lambda s: self._aggregate(
                g[1], *(aggs.get(s) or _agg_of(self, s))))]
        terms, funcs = [], [func for _f, func in aggs.values()]
        for term in str(order or ", ".join(groupby)).split(","):
            parts = term.split()
            if not parts:
                continue
            key, desc = parts[0], len(parts) > 1 and parts[1].lower() == "desc"
            if key in groupby:
                i = groupby.index(key)
                terms.append((lambda g, i=i, fname=specs[i][0]: self._group_sort_value(fname, g[0][i]), desc))
            elif key in aggs or key == "__count" or ":" in key:
                fname, func = aggs.get(key) or _agg_of(self, key)
                funcs.append(func)
                terms.append((lambda g, fname=fname, func=func: self._aggregate(g[1], fname, func), desc))
            else:
                names = [s.split(":")[0] for s in groupby]
                if key not in names:
                    raise ValueError(f"Invalid order {order!r} for formatted_read_group")
                i = names.index(key)
                terms.append((lambda g, i=i, fname=specs[i][0]: self._group_sort_value(fname, g[0][i]), desc))
        if having:
            groups = self._order_groups(groups, terms)
        else:
            groups = self._ordered_groups(ids, specs, groups, terms, funcs)
        offset = int(offset or 0)
        groups = groups[offset:offset + int(limit)] if limit else groups[offset:]
        rows = []
        for key, ids in groups:
            row: dict[str, Any] = {}
            extra = []
            for spec, (fname, gran), k in zip(groupby, specs, key):
                f = self._fields[fname]
                if f.type in ("date", "datetime"):
                    if k:
                        start, _end = _period(k, gran)
                        value = start.isoformat() if f.type == "date" else f"{start.isoformat()} 00:00:00"
                        row[spec] = [value, _label(k, gran)]
                    else:
                        row[spec] = False
                else:
                    row[spec] = self._group_value(fname, k)
                extra.append(self._group_domain(fname, gran, k))
            row["__extra_domain"] = AND(extra)
            for spec, (fname, func) in aggs.items():
                row[spec] = self._aggregate(ids, fname, func)
            rows.append(row)
        return rows


def _agg_of(model: BaseModel, spec: str) -> tuple[str, str]:
    if spec == "__count":
        return "__count", "__count"
    fname, _, func = spec.partition(":")
    model._field(fname)
    return fname, func


def _having_tree(tokens: list) -> Any:
    it = iter(tokens)

    def node():
        t = next(it)
        if t == "!":
            return ("!", node())
        if t in ("&", "|"):
            return (t, node(), node())
        return ("leaf", tuple(t))
    return node()


def _eval_having(node: Any, value_of: Callable[[str], Any]) -> bool:
    if node[0] == "!":
        return not _eval_having(node[1], value_of)
    if node[0] in ("&", "|"):
        a, b = _eval_having(node[1], value_of), _eval_having(node[2], value_of)
        return (a and b) if node[0] == "&" else (a or b)
    spec, op, right = node[1]
    value = value_of(spec)
    return {"=": value == right, "!=": value != right, "<": value < right, "<=": value <= right,
            ">": value > right, ">=": value >= right}[op]


def _period_start(d: date, gran: str | None) -> date:
    if gran == "day":
        return d
    if gran == "week":
        return d - timedelta(days=d.weekday())
    if gran == "month":
        return d.replace(day=1)
    if gran == "quarter":
        return d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    return d.replace(month=1, day=1)


def _add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    return d.replace(year=d.year + month // 12, month=month % 12 + 1, day=1)


def _period(start: date, gran: str | None) -> tuple[date, date]:
    if gran == "day":
        return start, start + timedelta(days=1)
    if gran == "week":
        return start, start + timedelta(days=7)
    if gran == "month":
        return start, _add_months(start, 1)
    if gran == "quarter":
        return start, _add_months(start, 3)
    return start, start.replace(year=start.year + 1)


def _weeknumber_en_us(d: date) -> tuple[int, int]:
    """odoo/tools/date_utils.weeknumber for en_US (weeks start on Sunday, week 1 holds January 1st)."""
    def last_sunday(x: date) -> date:
        return x - timedelta(days=(x.weekday() + 1) % 7)
    if d >= last_sunday(date(d.year + 1, 1, 1)):
        return d.year + 1, 1
    return d.year, (d - last_sunday(date(d.year, 1, 1))).days // 7 + 1


def _label(d: date, gran: str | None) -> str:
    """babel's format_date with READ_GROUP_DISPLAY_FORMAT, locale en_US."""
    if gran == "day":
        return f"{d.day:02d} {MONTH_ABBR[d.month]} {d.year}"
    if gran == "week":
        year, week = _weeknumber_en_us(d)
        return f"W{week} {year:04}"
    if gran == "month":
        return f"{MONTHS[d.month]} {d.year}"
    if gran == "quarter":
        return f"Q{(d.month - 1) // 3 + 1} {d.year}"
    return f"{d.year}"


# --- RPC dispatch ------------------------------------------------------------------------------------------


def _lookup(model: BaseModel, name: str) -> Any:
    major = model._major
    if "__" in name:
        return None
    for attr in (f"{name}__{major}", f"{name}__18" if major >= 18 else None, name):
        fn = getattr(type(model), attr, None) if attr else None
        if fn is not None and getattr(fn, "_rpc", False) and fn._since <= major <= fn._until:
            return fn
    return None


def get_public_method(model: BaseModel, name: str) -> Any:
    """odoo/service/model.py get_public_method (18+) / models.check_method_name + api.call_kw (17)."""
    if model._major < 18:
        if name.startswith("_") or name == "init":
            raise AccessError(f"Private methods (such as {name}) cannot be called remotely.")
        fn = _lookup(model, name)
        if fn is None:
            raise AttributeError(f"The method '{name}' does not exist on the model '{model._name}'")
        return fn
    fn = _lookup(model, name)
    if fn is None:
        if name.startswith("_") and getattr(type(model), name, None) is not None:
            raise AccessError(f"Private methods (such as '{model._name}.{name}') cannot be called remotely.")
        raise AttributeError(f"The method '{model._name}.{name}' does not exist")
    return fn


def downgrade(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.ids
    return result


def call_kw(model: BaseModel, name: str, args: Any, kwargs: Mapping) -> Any:
    """odoo/api.py (17) / odoo/service/model.py (18+) call_kw: ids from args[0] unless @api.model."""
    fn = get_public_method(model, name)
    api = getattr(fn, "_api", None)
    args = tuple(args)
    kwargs = dict(kwargs or {})
    context = kwargs.pop("context", None) or {}
    if api in ("model", "model_create"):
        recs = model
    else:
        ids, args = args[0], args[1:]
        recs = model.browse(ids)
    recs = recs.with_context(context)
    result = fn(recs, *args, **kwargs)
    if name == "create":
        return result.id if isinstance(args[0], Mapping) else result.ids
    return downgrade(result)


def signature_of(fn: Any) -> inspect.Signature:
    return inspect.signature(fn)
