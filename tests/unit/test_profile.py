"""The document profile behind `meshkit drift`: counting fields and kinds (nested one level, string
sub-kinds, Cosmos DB system properties and deletes left out), the sampler, and the run's counters
through the real decode stage."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import orjson
import pytest
from apache_beam.metrics.metric import MetricsFilter

from meshkit.config import Settings
from pipelines.events import raw_batch
from pipelines.runners.local import local_runner
from pipelines.transforms.profile import (
    DOCUMENTS_COUNTER,
    OVERFLOW_PATH,
    DocumentProfile,
    DocumentSampler,
    count_documents,
    kind_of,
    profile_sample,
    write_profile,
)
from pipelines.transforms.stages import NAMESPACE, DecodeAndValidate, StageContext

ROOT = Path(__file__).resolve().parents[2]
TX = ROOT / "domains/payments/transactions"
UUID = "6f1c1f0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("maria@example.com", "string"),
        ("", "string"),
        ("2026-11-26", "string/date"),
        ("2026-11-26T10:00:00Z", "string/date-time"),
        ("2026-11-26T10:00:00.123456+00:00", "string/date-time"),
        ("2026-11-26 10:00", "string/date-time"),
        (UUID, "string/uuid"),
        ("5411", "string/numeric"),
        ("-12.50", "string/numeric"),
        ("2026-13", "string"),
        ("12 apples", "string"),
        (3, "integer"),
        (3.5, "number"),
        (True, "boolean"),
        (None, "null"),
        ({"a": 1}, "object"),
        ([1], "array"),
    ],
)
def test_kinds(value: object, kind: str) -> None:
    assert kind_of(value) == kind


def test_counts_fields_nested_one_level_and_leaves_out_system_properties() -> None:
    documents = [
        {"id": UUID, "amount": 1.5, "address": {"city": "Recife", "geo": {"lat": 1}}, "_rid": "x", "_ts": 1},
        {"id": UUID, "amount": 2, "address": None, "tags": ["a"], "_etag": "y", "_lsn": 2},
        {"id": "not-a-uuid", "amount": "2.00"},
    ]
    n, counts = count_documents(documents)
    profile = DocumentProfile.from_counters({**counts, DOCUMENTS_COUNTER: n})
    assert profile.documents == 3
    assert {p: f.kinds for p, f in profile.fields.items()} == {
        "id": {"string/uuid": 2, "string": 1},
        "amount": {"number": 1, "integer": 1, "string/numeric": 1},
        "address": {"object": 1, "null": 1},
        "address.city": {"string": 1},
        "address.geo": {"object": 1},  # one nested level only: `address.geo.lat` is not counted
        "tags": {"array": 1},
    }
    assert profile.fields["address"].present == 2 and profile.fields["address"].non_null == 1


def test_paths_beyond_the_limit_are_counted_together() -> None:
    n, counts = count_documents([{f"k{i:03d}": i for i in range(10)}], max_paths=4)
    profile = DocumentProfile.from_counters({**counts, DOCUMENTS_COUNTER: n})
    assert list(profile.fields) == ["*", "k000", "k001", "k002", "k003"]
    assert profile.fields[OVERFLOW_PATH].kinds == {"integer": 6}


def test_deletes_and_unusable_items_are_left_out() -> None:
    live = {"current": {"id": UUID, "status": "pending"}, "metadata": {"operationType": "create", "lsn": 1}}
    delete = {"metadata": {"operationType": "delete", "lsn": 2, "id": UUID}}
    latest = {"id": UUID, "status": "settled", "_lsn": 3}
    bodies = [orjson.dumps(x) for x in (live, delete, latest)] + [b"{oops", b"[1]"]
    n, counts = profile_sample(bodies)
    assert n == 2
    assert counts == {"profile:id:string/uuid": 2, "profile:status:string": 2}
    assert profile_sample([live, delete, None], parse=False) == (1, {"profile:id:string/uuid": 1,
                                                                     "profile:status:string": 1})  # fmt: skip


def test_the_sampler_takes_the_head_then_one_in_every_across_batches() -> None:
    sampler = DocumentSampler(head=5, every=4)
    seen: list[int] = []
    offset = 0
    for size in (3, 4, 1, 7, 2, 9):
        seen += [offset + i for i in sampler.rows(size)]
        offset += size
    assert seen == [0, 1, 2, 3, 4, 5, 9, 13, 17, 21, 25]


def test_profiles_merge_and_round_trip(tmp_path: Path) -> None:
    first = {DOCUMENTS_COUNTER: 2, "profile:a:integer": 2, "profile:b:null": 1, "events_in": 9}
    second = {DOCUMENTS_COUNTER: 1, "profile:a:number": 1, "profile:odd:name:string": 1}
    path = write_profile(tmp_path, "payments/transactions", "run-1", first)
    assert path == tmp_path / "profiles" / "payments.transactions" / "run-1.json"
    assert write_profile(tmp_path, "payments/transactions", "run-0", {"events_in": 3}) is None
    loaded = DocumentProfile.from_dict(json.loads(path.read_text()))
    merged = loaded.merge(DocumentProfile.from_counters(second, "run-2"))
    assert merged.documents == 3 and merged.runs == ("run-1", "run-2")
    assert {p: f.kinds for p, f in merged.fields.items()} == {
        "a": {"integer": 2, "number": 1},
        "b": {"null": 1},
        "odd:name": {"string": 1},  # a field name holding ":" survives the counter name
    }


def test_the_decode_stage_reports_the_profile_as_counters(settings: Settings) -> None:
    ctx = StageContext(
        settings=settings, product="payments/transactions", contract_path=str(TX / "datacontract.yaml"),
        pipeline_path=str(TX / "pipeline.py"), run_id="run-1", ingest_date="2026-11-01",
    )  # fmt: skip
    doc = {"id": UUID, "customerId": UUID, "method": "pix", "direction": "debit", "amount": "10.00",
           "currency": "BRL", "status": "pending", "occurred_at": "2026-11-01T10:00:00Z",
           "updated_at": "2026-11-01T10:00:00Z", "installments": 3, "_lsn": 1, "_ts": 1761991200}  # fmt: skip
    bodies = [orjson.dumps({**doc, "_lsn": i}) for i in range(1, 4)] + [b"oops"]
    p = beam.Pipeline(runner=local_runner())
    _ = p | beam.Create([raw_batch(bodies)]) | DecodeAndValidate(ctx)
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    }
    profile = DocumentProfile.from_counters(counters)
    assert profile.documents == 3
    assert profile.fields["installments"].kinds == {"integer": 3}
    assert profile.fields["occurred_at"].kinds == {"string/date-time": 3}
    assert "_lsn" not in profile.fields


# ---- the profile as `meshkit drift` judges it (governance/drift), without running a pipeline ----


def users_profile(settings: Settings, **kinds: dict[str, int]) -> None:
    """A run profile of 1,000 customers/users documents: every contract field well typed unless `kinds` says."""
    base = {"id": {"string/uuid": 1000}, "birth_date": {"string/date": 1000}, "credit_limit": {"number": 1000}}
    for name in ("full_name", "cpf", "email", "state", "segment", "kyc_status"):
        base[name] = {"string": 1000}
    base["phone"] = {"string": 600, "null": 300}  # optional, sent or not
    for name in ("created_at", "updated_at"):
        base[name] = {"string/date-time": 1000}
    base.update(kinds)
    counters = {f"profile:{p}:{k}": n for p, ks in base.items() for k, n in ks.items()}
    write_profile(settings.workspace_dir, "customers/users", "run-1", {**counters, DOCUMENTS_COUNTER: 1000})


def test_drift_widens_a_type_and_adds_fields_with_the_bump_governance_diff_requires(settings: Settings) -> None:
    from governance.drift import drift_report

    users_profile(
        settings,
        birth_date={"string/date": 700, "string/date-time": 300},  # date -> timestamp is a widening
        phone={},  # no longer sent
        secondaryEmail={"string": 400, "null": 100},  # new, optional, and its name says personal data
        loyaltyTier={"integer": 999, "null": 1},  # new, 99.9% with a value: required
    )
    report = drift_report(settings, "customers/users")
    found = {(f.code, f.field): f for f in report.findings if f.drift}
    assert set(found) == {
        ("type-changed", "birth_date"),
        ("field-vanished", "phone"),
        ("field-added", "secondaryEmail"),
        ("field-added", "loyaltyTier"),
    }
    assert found["type-changed", "birth_date"].proposed == "widen to timestamp (TIMESTAMP)"
    proposal = report.proposal
    assert proposal is not None
    codes = {c["code"] for c in proposal.changes}
    assert {"type-widened", "column-added", "required-column-added"} <= codes
    # a required column added is breaking: governance/diff requires a major bump
    assert (proposal.bump, proposal.old_version, proposal.new_version) == ("major", "1.3.0", "2.0.0")
    assert "+      - name: secondary_email" in proposal.diff and "+            value: hash" in proposal.diff
    assert "+        logicalType: timestamp" in proposal.diff and "+          timezone: true" in proposal.diff
    assert "meshkit drift: field 'phone' no longer appears" in proposal.diff


def test_drift_makes_a_column_optional_only_when_many_documents_lack_it(settings: Settings) -> None:
    from governance.drift import drift_report

    users_profile(settings, segment={"string": 995, "null": 5})  # 0.5%: bad values, dead-lettered
    report = drift_report(settings, "customers/users")
    assert not report.drifted and report.proposal is None
    assert [(f.code, f.field) for f in report.findings] == [("bad-values", "segment")]

    users_profile(settings, segment={"string": 700})  # 30% no longer carry it
    report = drift_report(settings, "customers/users")
    assert [(f.code, f.field) for f in report.findings if f.drift] == [("required-violated", "segment")]
    assert report.proposal is not None and report.proposal.bump == "major"
    assert "+        required: false" in report.proposal.diff
