"""Dataflow options for a product: complete, validated offline by Beam, and printed by
`meshkit run --runner dataflow --dry-run` without loading cloud clients beyond what Beam loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.errors import ConfigError
from meshkit.products.discovery import find_product
from pipelines.runners.dataflow import (
    dataflow_options,
    dataflow_plan,
    default_job_name,
    label_value,
    validate_job_name,
)
from pipelines.runners.flex_launcher import parse_launch

ROOT = Path(__file__).resolve().parents[2]
CLOUD = {
    "gcp_project": "fintech-lake-prod",
    "gcp_location": "southamerica-east1",
    "dataflow_region": "us-central1",
    "dataflow_service_account": "customers-users-pipeline@fintech-lake-prod.iam.gserviceaccount.com",
    "dataflow_subnetwork": "regions/us-central1/subnetworks/dataflow",
    "dataflow_max_workers": 25,
    "environment": "prod",
}


def _settings(**overrides):
    return load_settings(ROOT, overrides={**CLOUD, **overrides}, environ={})


def _product(ref="customers/users"):
    return find_product(ROOT / "domains", ref)


def test_every_option_of_a_bounded_job():
    options = dataflow_options(_settings(), _product(), streaming=False)
    std, gcp = options.view_as(StandardOptions), options.view_as(GoogleCloudOptions)
    worker, setup = options.view_as(WorkerOptions), options.view_as(SetupOptions)
    assert std.runner == "DataflowRunner" and not std.streaming
    assert gcp.project == "fintech-lake-prod"
    assert gcp.region == "us-central1"  # dataflow_region wins over gcp_location
    assert gcp.job_name == "meshkit-customers-users-prod"
    assert gcp.temp_location == "gs://meshkit-lake-dataflow/temp"
    assert gcp.staging_location == "gs://meshkit-lake-dataflow/staging"
    assert gcp.service_account_email == CLOUD["dataflow_service_account"]
    assert worker.subnetwork == "regions/us-central1/subnetworks/dataflow"
    assert worker.use_public_ips is False
    assert worker.autoscaling_algorithm == "THROUGHPUT_BASED"
    assert worker.max_num_workers == 25
    assert worker.sdk_container_image is None
    assert setup.setup_file == str(ROOT / "pyproject.toml")  # one distribution: meshkit + its 4 packages
    assert setup.save_main_session is False
    assert sorted(gcp.labels) == [
        "data-owner=ana-souza-fintech-example",
        "domain=customers",
        "environment=prod",
        "managed-by=meshkit",
        "product=users",
    ]
    assert options.view_as(GoogleCloudOptions).dataflow_service_options is None
    assert "use_runner_v2" in options.get_all_options()["experiments"]


def test_streaming_job_uses_streaming_engine():
    options = dataflow_options(_settings(), _product("payments/transactions"), streaming=True)
    assert options.view_as(StandardOptions).streaming is True
    assert options.view_as(GoogleCloudOptions).enable_streaming_engine is True
    plan = dataflow_plan(_settings(), _product("payments/transactions"), streaming=True)
    assert "--streaming" in plan.flags and "--enable_streaming_engine" in plan.flags
    bounded = dataflow_plan(_settings(), _product("payments/transactions"), streaming=False)
    assert "--streaming" not in bounded.flags


def test_the_flex_template_image_replaces_the_staged_package():
    image = "us-central1-docker.pkg.dev/fintech-lake-prod/meshkit/pipeline:0.1.0"
    options = dataflow_options(_settings(dataflow_image=image), _product(), streaming=False)
    assert options.view_as(WorkerOptions).sdk_container_image == image
    assert options.view_as(SetupOptions).sdk_location == "container"
    assert options.view_as(SetupOptions).setup_file is None


def test_explicit_locations_and_defaults():
    settings = _settings(
        dataflow_region=None, dataflow_subnetwork=None, dataflow_temp_location="gs://tmp-bucket/df"
    )  # fmt: skip
    options = dataflow_options(settings, _product(), streaming=False)
    gcp = options.view_as(GoogleCloudOptions)
    assert gcp.region == "southamerica-east1"
    assert gcp.temp_location == "gs://tmp-bucket/df"
    assert options.view_as(WorkerOptions).subnetwork is None
    assert options.view_as(WorkerOptions).use_public_ips is None
    notes = dataflow_plan(settings, _product(), streaming=False).notes
    assert any("dataflow_subnetwork is not set" in n for n in notes)


def test_missing_project_names_the_setting():
    with pytest.raises(ConfigError) as err:
        dataflow_options(_settings(gcp_project=None), _product(), streaming=False)
    assert "'gcp_project'" in err.value.message and "MESHKIT_GCP_PROJECT" in err.value.message


def test_cloud_profile_requires_the_service_account():
    with pytest.raises(ConfigError) as err:
        dataflow_options(_settings(profile="cloud", dataflow_service_account=None), _product(), streaming=False)
    assert "'dataflow_service_account'" in err.value.message
    # elsewhere it is a note, not silence
    plan = dataflow_plan(_settings(dataflow_service_account=None), _product(), streaming=False)
    assert not any(f.startswith("--service_account_email") for f in plan.flags)
    assert any("Compute Engine default service account" in n for n in plan.notes)


@pytest.mark.parametrize("bad", ["Meshkit-job", "meshkit_job", "meshkit-job-", "1meshkit", "m" * 1025])
def test_job_names_follow_dataflow_rules(bad):
    with pytest.raises(ConfigError):
        validate_job_name(bad)
    with pytest.raises(ConfigError):
        dataflow_options(_settings(), _product(), streaming=False, job_name=bad)


def test_default_job_name_is_lowercased_and_checked():
    assert default_job_name(_settings(environment="Prod"), _product()) == "meshkit-customers-users-prod"
    with pytest.raises(ConfigError, match="environment"):
        default_job_name(_settings(environment="prod_eu"), _product())


def test_beam_validation_refuses_a_local_temp_location():
    with pytest.raises(ConfigError) as err:
        dataflow_options(
            _settings(dataflow_temp_location="/tmp/x", dataflow_staging_location="/tmp/y"), _product(), streaming=False
        )
    assert "Invalid GCS path" in err.value.message


def test_label_values_are_valid_gcp_labels():
    assert label_value("Ana.Souza@fintech.example") == "ana-souza-fintech-example"
    assert len(label_value("x" * 100)) == 63


def test_launcher_flags_win_and_become_settings():
    launch = parse_launch(
        [
            "--product=payments/transactions",
            "--project=other-project",
            "--region=europe-west1",
            "--job_name=meshkit-payments-transactions-launch",
            "--template_location=gs://b/t.json",
        ],
        environ={"MESHKIT_DATAFLOW_SERVICE_ACCOUNT": "sa@other-project.iam.gserviceaccount.com"},
    )
    assert launch.streaming is True  # the product's schedule
    assert launch.settings.profile == "cloud" and launch.settings.gcp_project == "other-project"
    assert launch.flags == ("--template_location=gs://b/t.json",)
    options = dataflow_options(
        launch.settings, launch.product, streaming=launch.streaming, job_name=launch.job_name, flags=launch.flags
    )
    gcp = options.view_as(GoogleCloudOptions)
    assert (gcp.project, gcp.region, gcp.template_location) == ("other-project", "europe-west1", "gs://b/t.json")
    assert gcp.job_name == "meshkit-payments-transactions-launch"
    bounded = parse_launch(["--product=payments/transactions", "--mode=bounded", "--project=p-1"], environ={})
    assert bounded.streaming is False


def _dry_run(capsys, *args):
    code = main(["--root", str(ROOT), "run", *args, "--runner", "dataflow", "--dry-run"])
    captured = capsys.readouterr()
    return code, captured


def test_dry_run_prints_the_options_as_json(capsys, monkeypatch):
    for key, value in CLOUD.items():
        monkeypatch.setenv(f"MESHKIT_{key.upper()}", str(value))
    code, out = _dry_run(capsys, "customers/users")
    assert code == 0, out.err
    shown = json.loads(out.out)
    assert shown["mode"] == "bounded" and shown["schedule"] == "every 5m"
    assert shown["job_name"] == "meshkit-customers-users-prod"
    options = shown["options"]
    assert options["runner"] == "DataflowRunner" and options["project"] == "fintech-lake-prod"
    assert options["max_num_workers"] == 25 and options["use_public_ips"] is False
    assert "streaming" not in options
    code, out = _dry_run(capsys, "payments/transactions")
    assert json.loads(out.out)["options"]["streaming"] is True  # the descriptor's schedule
    code, out = _dry_run(capsys, "payments/transactions", "--bounded")
    assert "streaming" not in json.loads(out.out)["options"]


def test_dry_run_without_project_fails_naming_the_setting(capsys, monkeypatch):
    monkeypatch.delenv("MESHKIT_GCP_PROJECT", raising=False)
    code, out = _dry_run(capsys, "customers/users")
    assert code == 1 and "gcp_project" in out.err


def test_submitting_outside_the_cloud_profile_is_refused(capsys):
    code = main(["--root", str(ROOT), "run", "customers/users", "--runner", "dataflow"])
    err = capsys.readouterr().err
    assert code == 1 and "--profile cloud" in err and "--dry-run" in err


def test_dry_run_loads_no_cloud_client_beyond_beam():
    """Modules under google.cloud / azure / googleapiclient that the dry run adds to what importing Beam
    (and its options) loads, and whether anything asked for Google credentials."""
    script = f"""
import json, sys
import google.auth
def _no_credentials(*a, **k):
    raise SystemExit("credential lookup")
google.auth.default = _no_credentials
import apache_beam
import apache_beam.options.pipeline_options, apache_beam.options.pipeline_options_validator
CLOUD = ("google.cloud", "azure", "googleapiclient", "google_auth_httplib2", "apitools.clients")
before = {{m for m in sys.modules if m.startswith(CLOUD)}}
from meshkit.cli import main
code = main(["--root", {str(ROOT)!r}, "run", "payments/transactions", "--runner", "dataflow", "--dry-run"])
added = sorted(m for m in sys.modules if m.startswith(CLOUD) and m not in before)
print("RESULT" + json.dumps({{"code": code, "added": added}}))
"""
    env = {"PATH": "/usr/bin:/bin", "MESHKIT_GCP_PROJECT": "fintech-lake-prod", "HOME": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    result = json.loads(line.removeprefix("RESULT"))
    assert result == {"code": 0, "added": []}, done.stderr


class _Submitted:
    state = "PENDING"

    def job_id(self):
        return "2026-11-26_00_00_00-123"


@pytest.mark.parametrize(("ref", "streaming"), [("payments/transactions", True), ("customers/users", False)])
def test_submit_builds_the_product_graph_with_the_dataflow_options(monkeypatch, ref, streaming):
    """The graph is built as for Dataflow and handed to `Pipeline.run` (replaced here: no cloud)."""
    import apache_beam as beam

    seen = {}

    def fake_run(pipeline, test_runner_api="AUTO"):
        seen["options"] = pipeline.options
        seen["labels"] = {t.full_label for t in pipeline.transforms_stack[0].parts}
        return _Submitted()

    monkeypatch.setattr(beam.Pipeline, "run", fake_run)
    # Beam's service-runner validation asks GCS whether the temp bucket has soft delete (network, credentials)
    monkeypatch.setattr(GoogleCloudOptions, "_warn_if_soft_delete_policy_enabled", lambda self, arg: None)
    from pipelines.runners.dataflow import submit

    image = "us-central1-docker.pkg.dev/fintech-lake-prod/meshkit/pipeline:0.1.0"
    done = submit(_settings(dataflow_image=image), _product(ref), streaming=streaming)
    assert done.to_dict() == {
        "product": ref,
        "job_name": f"meshkit-{ref.replace('/', '-')}-prod",
        "job_id": "2026-11-26_00_00_00-123",
        "mode": "streaming" if streaming else "bounded",
        "state": "PENDING",
    }
    assert seen["options"].view_as(StandardOptions).streaming is streaming
    assert {"Read", "RawZone", "WriteChanges"} <= seen["labels"]
    assert any("Commit" in label for label in seen["labels"])  # offsets committed in the job, after the sinks
