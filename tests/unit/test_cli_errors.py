"""User mistakes end in one `Error:` line that says what to do, never in a traceback.

Each case runs the real command in a subprocess (`python -m meshkit`), with the workspace in a
temporary folder, and checks the exit code (1, or 2 for argparse usage errors), the first line of
stderr and that the message names what was wrong and the valid values or the next step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def meshkit(*args: str, root: Path = ROOT, workspace: Path, env: dict[str, str] | None = None) -> Outcome:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    environ |= {"MESHKIT_WORKSPACE": str(workspace), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "meshkit", "--root", str(root), *args],
        capture_output=True,
        text=True,
        cwd=workspace.parent,
        env=environ,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return Outcome(done.returncode, done.stdout, done.stderr)


def assert_error(outcome: Outcome, *mentions: str) -> str:
    """Exit 1, stderr is one `Error:` message naming every one of `mentions`; returns the message."""
    assert outcome.code == 1, outcome
    assert outcome.err.startswith("Error: "), outcome.err
    for mention in mentions:
        assert mention in outcome.err, f"{mention!r} missing from {outcome.err!r}"
    return outcome.err


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def test_unknown_product_is_named_and_known_products_listed(ws):
    err = assert_error(meshkit("run", "nosuch/product", workspace=ws), "'nosuch/product'", "meshkit new")
    for known in ("customers/users", "payments/transactions", "risk/customer-exposure"):
        assert known in err


def test_missing_replay_file(ws):
    assert_error(
        meshkit("run", "payments/transactions", "--from-file", "/nonexistent.jsonl", workspace=ws),
        "/nonexistent.jsonl",
        "not found",
        "JSON-lines",
    )


def test_product_reference_that_would_escape_the_domains_folder(ws):
    err = assert_error(meshkit("run", "../etc", workspace=ws), "invalid", "'..'")
    assert "lower-case" in err and "e.g." in err


def test_unknown_runner_lists_the_valid_ones(ws):
    assert_error(
        meshkit("run", "payments/transactions", "--runner", "spark", workspace=ws),
        "'spark'",
        "Valid values are: direct",
    )


def test_unknown_profile_lists_the_valid_ones(ws):
    assert_error(meshkit("--profile", "staging", "validate", workspace=ws), "'staging'", "profile", "local", "cloud")


def test_invalid_environment_setting_names_the_variable(ws):
    assert_error(
        meshkit("validate", workspace=ws, env={"MESHKIT_BATCH_SIZE": "abc"}),
        "'abc'",
        "batch_size",
        "environment variable MESHKIT_BATCH_SIZE",
    )


def test_new_with_an_invalid_domain_name(tmp_path, ws):
    # a throwaway root: should the name check ever regress, nothing is written into the repository
    err = assert_error(meshkit("new", "Payments/x", root=tmp_path, workspace=ws), "'Payments'", "lower-case")
    assert "e.g." in err
    assert not (tmp_path / "domains").exists()


def test_broken_yaml_is_reported_with_file_and_line(tmp_path, ws):
    # validate reports problems as checks on stdout (exit 1), not as an `Error:`: that is its output
    broken = tmp_path / "datacontract.yaml"
    broken.write_text("apiVersion: v3.1.0\nkind: DataContract\ndescription: [unclosed\nid: x\n")
    outcome = meshkit("validate", str(broken), workspace=ws)
    assert outcome.code == 1, outcome
    assert "datacontract.yaml:4: invalid YAML" in outcome.out, outcome.out  # path shown relative to cwd
    assert "hint:" in outcome.out


def test_unknown_key_in_meshkit_yaml_names_the_key_and_the_file(tmp_path, ws):
    (tmp_path / "meshkit.yaml").write_text("profile: local\nbatchsize: 100\n")
    assert_error(
        meshkit("validate", root=tmp_path, workspace=ws),
        f"{tmp_path / 'meshkit.yaml'}:2",
        "unknown setting 'batchsize'",
        "Did you mean 'batch_size'?",
        "Valid settings are:",
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("run",), "the following arguments are required"),
        (("nosuch",), "invalid choice: 'nosuch'"),
        (("validate", "--format", "xml"), "invalid choice: 'xml'"),
    ],
)
def test_usage_errors_exit_2_with_usage(ws, args, expected):
    outcome = meshkit(*args, workspace=ws)
    assert outcome.code == 2, outcome
    assert outcome.err.startswith("usage: meshkit") and expected in outcome.err


@pytest.fixture(scope="module")
def failing_mesh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """payments/transactions in a throwaway root, a small simulated feed, and a workspace whose
    warehouse path is a folder: every warehouse write in the Beam pipeline fails."""
    from meshkit.products.discovery import find_product
    from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig

    base = tmp_path_factory.mktemp("failing")
    product_dir = base / "root/domains/payments/transactions"
    shutil.copytree(ROOT / "domains/payments/transactions", product_dir, ignore=shutil.ignore_patterns("build"))
    product = find_product(base / "root/domains", "payments/transactions")
    feed = ChangeFeedSimulator(product.contract, SimulationConfig(events=40, seed=3)).generate()
    items = base / "items.jsonl"
    items.write_bytes(b"\n".join(feed.items) + b"\n")
    (base / "ws/warehouse.duckdb").mkdir(parents=True)
    return base / "root", items, base / "ws"


def _run_failing(failing_mesh: tuple[Path, Path, Path], *flags: str) -> subprocess.CompletedProcess[str]:
    root, items, workspace = failing_mesh
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    environ["MESHKIT_WORKSPACE"] = str(workspace)
    command = ["run", "payments/transactions", "--from-file", str(items)]
    return subprocess.run(
        [sys.executable, "-m", "meshkit", *flags, "--root", str(root), *command],
        capture_output=True,
        text=True,
        cwd=root,
        env=environ,
        timeout=300,
        check=False,
    )


def test_failing_beam_step_prints_one_error_and_no_traceback(failing_mesh):
    done = _run_failing(failing_mesh)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not any(line.startswith("ERROR") for line in done.stderr.splitlines()), done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "payments/transactions" in last and "--debug" in last, done.stderr


def test_failing_beam_step_with_debug_shows_the_tracebacks(failing_mesh):
    done = _run_failing(failing_mesh, "--debug")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "apache_beam.runners.common" in done.stderr  # Beam's own report of the failing DoFn


def test_relay_on_the_local_profile_says_what_to_use_instead(ws):
    assert_error(
        meshkit("relay", "customers/users", workspace=ws), "local profile", "meshkit simulate", "cosmos_endpoint"
    )


def test_relay_of_a_product_without_a_cosmos_source(ws):
    assert_error(meshkit("relay", "risk/customer-exposure", workspace=ws), "no Cosmos DB source", "sourceKind")


def test_relay_start_the_all_versions_mode_cannot_honour(ws):
    env = {"MESHKIT_PROFILE": "emulators", "MESHKIT_COSMOS_ENDPOINT": "http://127.0.0.1:9/"}
    env |= {"MESHKIT_COSMOS_KEY": "bm90LWEtcmVhbC1rZXk="}
    outcome = meshkit("relay", "customers/users", "--start", "beginning", workspace=ws, env=env)
    assert_error(outcome, "all-versions-and-deletes", "changeFeedMode", "--backfill")


def test_relay_with_a_malformed_start(ws):
    assert_error(meshkit("relay", "payments/transactions", "--start", "yesterday", workspace=ws), "'yesterday'", "now")


def test_cloud_profile_refuses_an_emulator_connection_string(ws):
    env = {"MESHKIT_PROFILE": "cloud", "MESHKIT_COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/"}
    env |= {"MESHKIT_COSMOS_KEY": "bm90LWEtcmVhbC1rZXk="}
    err = assert_error(meshkit("relay", "payments/transactions", workspace=ws, env=env), "MESHKIT_COSMOS_KEY", "cloud")
    assert "bm90LWEtcmVhbC1rZXk=" not in err


def test_relay_against_an_unreachable_account(ws):
    env = {"MESHKIT_PROFILE": "emulators", "MESHKIT_COSMOS_ENDPOINT": "http://127.0.0.1:9/"}
    env |= {"MESHKIT_COSMOS_KEY": "bm90LWEtcmVhbC1rZXk="}
    assert_error(
        meshkit("relay", "payments/transactions", workspace=ws, env=env), "http://127.0.0.1:9/", "cosmos_endpoint"
    )
