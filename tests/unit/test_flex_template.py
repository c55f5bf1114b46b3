"""`meshkit infra <product>`: the Flex Template (spec, metadata, Dockerfile, Cloud Build config) and the
Terraform that launches it — a streaming job, or Cloud Scheduler launching a bounded run on the
schedule's cron. Golden files: tests/fixtures/terraform/golden (MESHKIT_UPDATE_GOLDEN=1, see
test_infra_stack.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import date
from importlib.metadata import version
from pathlib import Path

import hcl2
import pytest
import yaml
from conftest import require_emulator  # tests/conftest.py

from governance.iam import product_access
from governance.infra.folder import load_folder
from governance.infra.stack import product_stack
from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.products.discovery import find_product

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests/fixtures/terraform/golden"
TODAY = date(2026, 11, 26)
WRITERS = {
    "customers/users": "customers-users-pipeline@fintech-lake-prod.iam.gserviceaccount.com",
    "payments/transactions": "payments-tx-pipeline@fintech-lake-prod.iam.gserviceaccount.com",
    "risk/customer-exposure": "risk-exposure-pipeline@fintech-lake-prod.iam.gserviceaccount.com",
}


@pytest.fixture
def generated(tmp_path):
    """A copy of the project's domains with `meshkit infra` run for every example product."""
    shutil.copytree(ROOT / "domains", tmp_path / "domains")
    for ref in WRITERS:
        assert main(["--root", str(tmp_path), "infra", ref, "--today", TODAY.isoformat()]) == 0
    return tmp_path


def _resources(folder: Path, rtype: str) -> list[dict]:
    return [b.body for b in load_folder(folder).of("resource", rtype)]


def test_flex_template_spec_shape(generated):
    folder = generated / "build/payments/transactions/dataflow"
    spec = json.loads((folder / "flex-template.json").read_text())
    assert set(spec) == {"image", "sdkInfo", "metadata"}
    assert spec["sdkInfo"] == {"language": "PYTHON"}
    assert spec["image"] == "southamerica-east1-docker.pkg.dev/fintech-lake-prod/meshkit/pipeline:0.1.0"
    metadata = spec["metadata"]
    assert metadata["name"] == "meshkit-payments-transactions" and "streaming" in metadata["description"]
    params = {p["name"]: p for p in metadata["parameters"]}
    assert list(params) == ["product", "mode", "environment", "max_num_workers"]
    assert not params["product"].get("isOptional") and all(params[n]["isOptional"] for n in list(params)[1:])
    for param in params.values():
        assert param["label"] and param["helpText"]
    assert re.match(params["product"]["regexes"][0], "payments/transactions")
    assert re.match(params["mode"]["regexes"][0], "bounded") and not re.match(params["mode"]["regexes"][0], "batch")
    assert not re.match(params["max_num_workers"]["regexes"][0], "0")
    assert json.loads((folder / "metadata.json").read_text()) == metadata


def test_the_image_setting_goes_into_the_spec_and_the_build(generated, monkeypatch, capsys):
    image = "europe-west1-docker.pkg.dev/other/meshkit/pipeline:1.2.3"
    monkeypatch.setenv("MESHKIT_DATAFLOW_IMAGE", image)
    assert main(["--root", str(generated), "infra", "customers/users", "--today", TODAY.isoformat()]) == 0
    folder = generated / "build/customers/users/dataflow"
    assert str(folder / "flex-template.json") in capsys.readouterr().out.splitlines()
    assert json.loads((folder / "flex-template.json").read_text())["image"] == image
    build = yaml.safe_load((folder / "cloudbuild.yaml").read_text())
    assert build["substitutions"]["_IMAGE"] == image and build["images"] == ["${_IMAGE}"]
    args = build["steps"][0]["args"]
    assert args[:3] == ["build", "-f", "build/customers/users/dataflow/Dockerfile"]
    assert "IMAGE=${_IMAGE}" in args


def test_dockerfile_runs_the_launcher_on_the_beam_sdk_image(generated):
    text = (generated / "build/customers/users/dataflow/Dockerfile").read_text()
    assert "FROM gcr.io/dataflow-templates-base/python311-template-launcher-base AS template_launcher" in text
    assert f"FROM apache/beam_python3.11_sdk:{version('apache-beam')}" in text
    launcher = re.search(r'FLEX_TEMPLATE_PYTHON_PY_FILE="/template/([^"]+)"', text)
    assert launcher and (ROOT / launcher.group(1)).is_file()
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text
    assert 'MESHKIT_DATAFLOW_IMAGE="${IMAGE}"' in text  # workers run the same image
    for package in ("meshkit", "pipelines", "governance", "monitoring", "domains"):
        assert f"COPY {package} ./{package}" in text
    assert "MASKING_KEY" not in text and "secret:" not in text.lower()


def test_streaming_product_gets_a_flex_template_job(generated):
    folder = generated / "build/payments/transactions/terraform"
    assert _resources(folder, "google_cloud_scheduler_job") == []
    (job,) = _resources(folder, "google_dataflow_flex_template_job")
    assert job["provider"] == "google-beta"
    assert job["service_account_email"] == WRITERS["payments/transactions"]
    assert job["enable_streaming_engine"] is True and job["on_delete"] == "drain"
    assert job["ip_configuration"] == "WORKER_IP_PRIVATE"
    assert job["container_spec_gcs_path"] == "${var.dataflow_template_gcs_path}"
    assert job["max_workers"] == "${var.dataflow_max_workers}"
    assert len(_resources(folder, "google_monitoring_alert_policy")) == 1
    text = (folder / "dataflow.tf").read_text()
    assert 'mode        = "streaming"' in text
    assert 'dataflow_job_name = "meshkit-payments-transactions-${var.environment}"' in text


@pytest.mark.parametrize(("ref", "cron"), [("customers/users", "*/5 * * * *"), ("risk/customer-exposure", "0 * * * *")])
def test_micro_batch_product_gets_a_scheduled_launch(generated, ref, cron):
    folder = generated / f"build/{ref}/terraform"
    assert _resources(folder, "google_dataflow_flex_template_job") == []
    (job,) = _resources(folder, "google_cloud_scheduler_job")
    assert job["schedule"] == cron
    (target,) = job["http_target"]
    assert target["http_method"] == "POST"
    assert target["uri"] == (
        "https://dataflow.googleapis.com/v1b3/projects/fintech-lake-prod/locations/${var.region}/flexTemplates:launch"
    )
    assert target["oauth_token"] == [
        {"service_account_email": WRITERS[ref], "scope": "https://www.googleapis.com/auth/cloud-platform"}
    ]
    body = target["body"]
    assert body.startswith("${base64encode(jsonencode({launchParameter = {")
    for field in ("jobName = local.dataflow_job_name", "containerSpecGcsPath = var.dataflow_template_gcs_path",
                  f'serviceAccountEmail = "{WRITERS[ref]}"', 'ipConfiguration = "WORKER_IP_PRIVATE"'):  # fmt: skip
        assert field in body
    assert 'mode        = "bounded"' in (folder / "dataflow.tf").read_text()
    (act_as,) = _resources(folder, "google_service_account_iam_member")
    assert act_as["member"] == f"serviceAccount:{WRITERS[ref]}" and act_as["role"] == "roles/iam.serviceAccountUser"


def test_the_product_module_no_longer_launches_a_second_job(generated):
    for ref in WRITERS:
        main_tf = hcl2.loads((generated / f"build/{ref}/terraform/main.tf").read_text())
        assert "dataflow_template_gcs_path" not in main_tf["module"][0]['"product"']


@pytest.mark.parametrize("ref", list(WRITERS))
def test_dataflow_tf_matches_golden_and_variables_are_declared(ref):
    settings = load_settings(ROOT, overrides={}, environ={})
    access = product_access(find_product(settings.domains_dir, ref), settings, today=TODAY)
    stack = product_stack(
        access, out=settings.build_dir / ref / "terraform", modules_dir=ROOT / "terraform/modules",
        today=TODAY.isoformat(), grace_days=30, modules_source="../../../../terraform/modules",
    )  # fmt: skip
    assert stack.files["dataflow.tf"] == (GOLDEN / ref / "dataflow.tf").read_text()
    declared = set(re.findall(r'^variable "([a-z_]+)"', stack.files["variables.tf"], re.MULTILINE))
    used = set(re.findall(r"var\.([a-z_]+)", stack.files["dataflow.tf"]))
    assert used <= declared, used - declared


def test_no_writer_account_means_no_job(tmp_path):
    shutil.copytree(ROOT / "domains/risk/customer-exposure", tmp_path / "domains/risk/customer-exposure")
    for ref in ("customers/users", "payments/transactions"):
        shutil.copytree(ROOT / "domains" / ref, tmp_path / "domains" / ref)
    access = tmp_path / "domains/risk/customer-exposure/access.yaml"
    text = access.read_text().split("  - role: risk_pipeline_writer")[0]
    access.write_text(text)
    assert main(["--root", str(tmp_path), "infra", "risk/customer-exposure", "--today", TODAY.isoformat()]) == 0
    folder = tmp_path / "build/risk/customer-exposure/terraform"
    dataflow_tf = (folder / "dataflow.tf").read_text()
    assert "No Dataflow job" in dataflow_tf and "resource " not in dataflow_tf
    assert 'variable "environment"' not in (folder / "variables.tf").read_text()


def test_generated_terraform_is_fmt_clean(generated):
    terraform = shutil.which("terraform")
    require_emulator("terraform", terraform is not None, "the terraform CLI is not on PATH")
    assert terraform
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    done = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(generated / "build")],
        check=False, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
