"""Contract-driven fake values for the change-feed simulator.

Every value satisfies its column's constraints (enum, pattern, format, lengths, ranges, decimal
scale) and looks like a Brazilian fintech's data: valid CPFs, +55 mobile numbers, MCCs, PIX keys.
Values are Python-typed as the pipeline stores them; `to_json` turns them into document values.
"""

from __future__ import annotations

import json
import math
import random
import re
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from meshkit.contracts.model import Column
from meshkit.contracts.types import arrow_type, decimal_params
from meshkit.errors import ContractError

FIRST_NAMES = (
    "Ana", "Beatriz", "Bruno", "Camila", "Carlos", "Carolina", "Daniel", "Eduarda", "Felipe", "Fernanda",
    "Gabriel", "Giovanna", "Gustavo", "Helena", "Isabela", "João", "Júlia", "Larissa", "Leonardo", "Letícia",
    "Lucas", "Luiz", "Marcos", "Maria", "Mariana", "Matheus", "Natália", "Otávio", "Paulo", "Pedro",
    "Rafael", "Renata", "Rodrigo", "Sofia", "Tatiane", "Thiago", "Valentina", "Vinícius", "Vitória", "Yasmin",
)  # fmt: skip
SURNAMES = (
    "Almeida", "Alves", "Araújo", "Barbosa", "Cardoso", "Carvalho", "Castro", "Costa", "Dias", "Fernandes",
    "Ferreira", "Gomes", "Lima", "Lopes", "Martins", "Melo", "Mendes", "Moreira", "Nascimento", "Oliveira",
    "Pereira", "Ribeiro", "Rocha", "Rodrigues", "Santos", "Silva", "Soares", "Sousa", "Teixeira", "Vieira",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.com.br", "uol.com.br", "bol.com.br")
MERCHANTS = (
    "Padaria Pão Dourado", "Supermercado Bom Preço", "Drogaria Saúde", "Posto Ipê Combustíveis",
    "Restaurante Sabor Mineiro", "Lanchonete da Esquina", "Livraria Cultura Viva", "Pet Shop Amigo Fiel",
    "Magazine Estrela", "Academia Corpo em Forma", "Cinema Paradiso", "Farmácia Popular Centro",
    "Açougue Boi Gordo", "Hortifruti Frescor", "Loja de Roupas Moda Rio", "Eletrônicos Conecta",
)  # fmt: skip
MCCS = ("5411", "5812", "5814", "5912", "5541", "4121", "5311", "5732", "5999", "7832", "5651", "7997")
DDDS = (11, 12, 13, 15, 19, 21, 24, 27, 31, 34, 41, 43, 47, 48, 51, 54, 61, 62, 67, 71, 81, 85, 91, 92)
WORDS = ("conta", "pagamento", "cliente", "limite", "cartão", "saldo", "fatura", "agência", "crédito", "nota")
# Lifecycles of status-like enums; only targets in the column's valid values are used.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("authorized", "declined", "review", "approved", "rejected"),
    "authorized": ("settled", "declined"),
    "settled": ("refunded",),
    "review": ("approved", "rejected"),
    "approved": ("review",),
    "rejected": ("review",),
}
# Columns an update may change, by preference; without any of them, every column not listed as fixed.
MUTABLE = ("status", "segment", "kyc_status", "phone", "email", "credit_limit")
IMMUTABLE = frozenset({"created_at", "updated_at", "occurred_at", "birth_date", "cpf"})
_CLASSES = {"d": "0123456789", "w": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", "s": " "}
_QUANTIFIER = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")


class UnsupportedPatternError(ContractError):
    """The simulator cannot generate strings for this column's pattern."""


def cpf(rng: random.Random) -> str:
    """A valid CPF: nine random digits (not all equal) plus the two mod-11 check digits."""
    digits = [rng.randrange(10) for _ in range(9)]
    while len(set(digits)) == 1:
        digits = [rng.randrange(10) for _ in range(9)]
    for weight in (10, 11):
        total = sum(d * w for d, w in zip(digits, range(weight, 1, -1), strict=False))
        digits.append(total * 10 % 11 % 10)
    return "".join(map(str, digits))


def rng_uuid(rng: random.Random) -> str:
    """A version-4 UUID from the seeded generator (never `uuid4()`, which is not reproducible)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"


def email_for(rng: random.Random, name: str | None) -> str:
    parts = (name or person_name(rng)).lower().split()
    folded = (unicodedata.normalize("NFKD", p).encode("ascii", "ignore").decode() for p in (parts[0], parts[-1]))
    ascii_parts = [p or "cliente" for p in folded]
    return f"{'.'.join(ascii_parts)}{rng.randrange(10, 10000)}@{rng.choice(EMAIL_DOMAINS)}"


def mobile(rng: random.Random) -> str:
    return f"+55{rng.choice(DDDS)}9{rng.randrange(10**8):08d}"


def pix_key(rng: random.Random) -> str:
    """A PIX key of one of the four kinds: CPF, e-mail, phone or random (EVP) key."""
    kind = rng.randrange(4)
    return (cpf(rng), email_for(rng, None), mobile(rng), rng_uuid(rng))[kind]


def compile_pattern(pattern: str, column: str) -> Callable[[random.Random], str]:
    """A generator for the regex subset used in contracts: literals, escapes, classes, quantifiers."""
    body = pattern.removeprefix("^").removesuffix("$")
    atoms: list[tuple[str, int, int]] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char in "()|^$":
            raise UnsupportedPatternError(
                f"column {column!r}: pattern {pattern!r} uses {char!r}, which the simulator cannot generate",
                hint="Use literals, character classes and quantifiers, or give the column `validValues`.",
            )
        if char == "[":
            close = body.index("]", i + 1)
            chars, i = _expand_class(body[i + 1 : close], pattern, column), close + 1
        elif char == "\\":
            chars, i = _CLASSES.get(body[i + 1], body[i + 1]), i + 2
        else:
            chars, i = ("abcdefghijklmnopqrstuvwxyz0123456789" if char == "." else char), i + 1
        low, high, i = _quantifier(body, i)
        atoms.append((chars, low, high))

    def generate(rng: random.Random) -> str:
        return "".join("".join(rng.choice(c) for _ in range(rng.randint(lo, hi))) for c, lo, hi in atoms)

    return generate


def _expand_class(spec: str, pattern: str, column: str) -> str:
    if spec.startswith("^"):
        raise UnsupportedPatternError(
            f"column {column!r}: negated class in pattern {pattern!r} is not supported by the simulator",
            hint="List the allowed characters instead.",
        )
    out, i = [], 0
    while i < len(spec):
        if spec[i] == "\\":
            out.append(_CLASSES.get(spec[i + 1], spec[i + 1]))
            i += 2
        elif i + 2 < len(spec) and spec[i + 1] == "-":
            out.append("".join(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1)))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _quantifier(body: str, i: int) -> tuple[int, int, int]:
    if i < len(body) and body[i] in "?*+":
        return {"?": (0, 1), "*": (0, 4), "+": (1, 4)}[body[i]] + (i + 1,)
    match = _QUANTIFIER.match(body, i)
    if not match:
        return 1, 1, i
    low = int(match.group(1))
    high = low if not match.group(2) else int(match.group(3) or low + 4)
    return low, high, match.end()


class ValueFactory:
    """Typed values for one contract's columns, from one seeded generator."""

    def __init__(self, rng: random.Random, columns: tuple[Column, ...], start: datetime) -> None:
        self.rng, self.start, self.columns = rng, start, columns
        self._patterns = {
            c.name: compile_pattern(c.options["pattern"], c.name) for c in columns if c.options.get("pattern")
        }
        self._choices = {
            c.name: [v for v in c.valid_values if self.satisfies(c, v)] or list(c.valid_values)
            for c in columns
            if c.valid_values
        }

    def value(self, col: Column, row: dict[str, Any]) -> Any:
        """A valid value for `col`; `row` holds the columns generated so far (e.g. the name for an e-mail)."""
        kind = col.logical_type
        if col.valid_values:
            options = self._choices[col.name]
            if "pending" in options and col.name.endswith("status") and self.rng.random() < 0.7:
                return "pending"
            return self.rng.choice(options)
        if kind == "string":
            return self.string(col, row)
        if kind == "integer":
            low, high = self._bounds(col, 0, 1000)
            return self.rng.randint(math.ceil(low), math.floor(high))
        if kind == "number":
            return self.number(col)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "date":
            first, last = (1950, 2006) if "birth" in col.name else (self.start.year - 3, self.start.year)
            span = (date(last, 12, 31) - date(first, 1, 1)).days
            return date(first, 1, 1) + timedelta(days=self.rng.randrange(span + 1))
        if kind == "timestamp":
            moment = self.start - timedelta(seconds=self.rng.randrange(2 * 365 * 86400))
            return moment if timezone_aware(col) else moment.replace(tzinfo=None)
        if kind == "time":
            return time(self.rng.randrange(24), self.rng.randrange(60), self.rng.randrange(60))
        if kind == "array":
            return json.dumps([self.rng.choice(WORDS)], separators=(",", ":"))
        return json.dumps({"note": self.rng.choice(WORDS)}, sort_keys=True, separators=(",", ":"))

    def string(self, col: Column, row: dict[str, Any]) -> str:
        name = col.name.lower()
        fmt = str(col.options.get("format", "")).lower()
        candidates: list[Callable[[], str]] = []
        if fmt == "uuid":
            candidates.append(lambda: rng_uuid(self.rng))
        elif fmt == "email":
            names = [v for k, v in row.items() if k.endswith("name") and isinstance(v, str)]
            candidates.append(lambda: email_for(self.rng, names[0] if names else None))
        if "cpf" in name:
            candidates.append(lambda: cpf(self.rng))
        elif "phone" in name or "mobile" in name:
            candidates.append(lambda: mobile(self.rng))
        elif "category_code" in name or "mcc" in name:
            candidates.append(lambda: self.rng.choice(MCCS))
        elif "counterparty" in name or "pix" in col.source_field.lower():
            candidates.append(lambda: pix_key(self.rng))
        elif "merchant" in name:
            candidates.append(lambda: self.rng.choice(MERCHANTS))
        elif name.endswith("name"):
            candidates.append(lambda: person_name(self.rng))
        if col.name in self._patterns:
            candidates.append(lambda: self._patterns[col.name](self.rng))
        candidates.append(lambda: self._words(col))
        for make in candidates:
            value = make()
            if self.satisfies(col, value):
                return value
        raise ContractError(
            f"column {col.name!r}: the simulator could not generate a value meeting its constraints {col.options}",
            hint="Check that pattern and minLength/maxLength agree.",
        )

    def _words(self, col: Column) -> str:
        low = int(col.options.get("minLength", 1))
        high = int(col.options.get("maxLength", max(low, 40)))
        text = " ".join(self.rng.choice(WORDS) for _ in range(8))
        while len(text) < low:
            text += " " + self.rng.choice(WORDS)
        text = text[: self.rng.randint(low, min(high, len(text)))]
        return text[:-1] + "a" if text.endswith(" ") else text

    def number(self, col: Column) -> Decimal | float:
        params = decimal_params(col.physical_type)
        scale = params[1] if params else 4
        step = Decimal(1).scaleb(-scale)
        low, high = self._bounds(col, 0, 1_000_000, step=float(step))
        if "limit" in col.name:
            raw = self.rng.choice((500, 1000, 2500, 5000, 10000, 20000, 50000)) * 1.0
        else:
            raw = math.exp(self.rng.gauss(math.log(120), 1.4))
        floor = Decimal(repr(low)).quantize(step, "ROUND_CEILING")
        ceiling = Decimal(repr(high)).quantize(step, "ROUND_FLOOR")
        value = min(max(Decimal(repr(raw)).quantize(step), floor), ceiling)
        return value if params else float(value)

    def _bounds(self, col: Column, low: float, high: float, step: float = 1.0) -> tuple[float, float]:
        opts = col.options
        low = float(opts.get("minimum", low))
        high = float(opts.get("maximum", high))
        if "exclusiveMinimum" in opts:
            low = max(low, float(opts["exclusiveMinimum"]) + step)
        if "exclusiveMaximum" in opts:
            high = min(high, float(opts["exclusiveMaximum"]) - step)
        return low, max(low, high)

    def satisfies(self, col: Column, value: Any) -> bool:
        """The string constraints a generated value must meet (pattern, lengths)."""
        if not isinstance(value, str):
            return True
        opts = col.options
        if "pattern" in opts and not re.search(str(opts["pattern"]), value):
            return False
        return int(opts.get("minLength", 0)) <= len(value) <= int(opts.get("maxLength", 1 << 30))

    def next_state(self, col: Column, current: Any) -> Any:
        """A realistic successor of an enum value (status lifecycles), else another valid value."""
        options = [v for v in col.valid_values or () if v != current]
        if current in TRANSITIONS:
            options = [v for v in TRANSITIONS[current] if v in (col.valid_values or ())]
        return self.rng.choice(options) if options else current

    def invalid(self, col: Column, kind: str) -> Any:
        """A value that breaks one rule of `col`: its type, its enum, or its pattern."""
        if kind == "wrong_type":
            return {"number": "1.234,56", "integer": "doze", "boolean": "sim"}.get(col.logical_type, 19850312)
        if kind == "enum_violation":
            allowed = col.valid_values or ()
            return next(v for v in ("XX", "ZZZ", "unknown", "not-a-valid-value") if v not in allowed)
        valid = self.value(col, {})
        for broken in ("ABC" + str(valid)[3:], "!" + str(valid)[1:], "!!!"):
            if not self.satisfies(col, broken):
                return broken
        return "!!!"


class RowFactory:
    """Whole rows: event-time timestamps, keys drawn from pools, realistic updates and payment rules."""

    def __init__(self, values: ValueFactory, pooled: dict[str, tuple[str, ...]]) -> None:
        self.values, self.rng, self.pooled = values, values.rng, pooled
        cols = values.columns
        self.columns = {c.name: c for c in cols}
        self.mutable = [c for c in cols if c.name in MUTABLE] or [
            c for c in cols if not (c.primary_key or c.name in IMMUTABLE or c.name in pooled)
        ]

    def new_row(self, moment: datetime) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for col in self.columns.values():
            if col.name in self.pooled:
                row[col.name] = self.rng.choice(self.pooled[col.name])
            elif col.name in {"created_at", "updated_at"} and col.logical_type == "timestamp":
                row[col.name] = moment
            elif col.name == "occurred_at" and col.logical_type == "timestamp":
                row[col.name] = moment - timedelta(microseconds=self.rng.randrange(3_000_000))
            elif not col.required and self.rng.random() < 0.1:
                row[col.name] = None
            else:
                row[col.name] = self.values.value(col, row)
        self._shape_payment(row)
        return row

    def _shape_payment(self, row: dict[str, Any]) -> None:
        """PIX rows carry the counterparty's PIX key and no MCC; card rows the opposite."""
        method, cols = row.get("method"), self.columns
        if not isinstance(method, str):
            return
        pix = method == "pix"
        if "merchant_category_code" in cols:
            row["merchant_category_code"] = None if pix else self.values.value(cols["merchant_category_code"], row)
        if "counterparty_key" in cols:
            row["counterparty_key"] = pix_key(self.rng) if pix else None
        if "merchant_name" in cols:
            keep = not pix or self.rng.random() < 0.3
            row["merchant_name"] = self.values.value(cols["merchant_name"], row) if keep else None
        if "direction" in cols and not pix:
            row["direction"] = "debit"

    def updated_row(self, row: dict[str, Any], moment: datetime) -> dict[str, Any]:
        """One or two realistic field changes (status transitions, new phone...) and a new `updated_at`."""
        new = dict(row)
        for col in self.rng.sample(self.mutable, min(len(self.mutable), self.rng.choice((1, 1, 2)))):
            if col.valid_values:
                new[col.name] = self.values.next_state(col, row[col.name])
            elif row[col.name] is not None or col.required or self.rng.random() < 0.5:
                new[col.name] = self.values.value(col, new)
        if "updated_at" in new:
            new["updated_at"] = moment
        return new


def timezone_aware(col: Column) -> bool:
    """Whether the pipeline stores this timestamp column as UTC instants (the one Arrow mapping decides)."""
    return getattr(arrow_type(col.logical_type, col.physical_type, col.options), "tz", None) is not None


def to_json(col: Column, value: Any) -> Any:
    """The document (JSON) form of a typed value: ISO dates, `Z` timestamps, decimals as numbers."""
    if value is None or isinstance(value, bool | int | str):
        if col.logical_type in {"object", "array"} and isinstance(value, str):
            return json.loads(value)
        return value
    if isinstance(value, Decimal):
        return float(value)  # exact for the <= 15 significant digits the simulator generates
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def as_text(value: Any) -> str:
    """How a personal value appears in text (for the no-personal-data-outside-raw check)."""
    return value.isoformat() if isinstance(value, date | datetime | time) else str(value)
