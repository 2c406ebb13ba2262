"""deploy/: the Helm chart lints and renders, every manifest it or kustomize makes is a valid
Kubernetes object, the alert rules pass promtool (syntax and their unit tests), and every
metric the dashboard and the rules query is one the gateway exports.

Tools: Helm's engine from PyPI (``helm-python-sdk``: Helm v4 as a library, no ``helm``
binary), ``kubernetes-validate`` (PyPI, bundled schemas), ``kubectl kustomize`` (kubectl is
on the machine image; no kustomize binary is on PyPI) and ``promtool`` (Debian's
``prometheus`` package, unpacked into ``.tools/bin`` by scripts/test). Under ``CI=true`` a
missing tool fails its test rather than skipping it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from botocore.exceptions import ClientError

from gateway.settings import load_settings
from tests.support.clients import make_s3_client
from tests.support.metrics import parse, value
from tests.support.project import ROOT
from tests.support.servers import running_gateway

DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "pagewright-gateway"
ALL_FEATURES = DEPLOY / "helm" / "ci" / "all-features.yaml"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "pagewright-gateway.json"
KUSTOMIZE = DEPLOY / "kustomize"

#: A Kubernetes version kubernetes-validate bundles schemas for.
KUBERNETES_VERSION = "1.33.0"

#: The Prometheus Operator's kinds: kubernetes-validate has no schemas for CRDs, so the
#: fields the chart sets are checked against these.
_RULE = {
    "type": "object",
    "required": ["alert", "expr"],
    "properties": {
        "alert": {"type": "string"},
        "expr": {"type": "string"},
        "for": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["selector", "endpoints"],
        "properties": {
            "selector": {"type": "object"},
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["port", "path"],
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string"},
                        "interval": {"type": "string"},
                        "scrapeTimeout": {"type": "string"},
                        "bearerTokenSecret": {
                            "type": "object",
                            "required": ["name", "key"],
                            "properties": {"name": {"type": "string"}, "key": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["groups"],
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "properties": {
                        "name": {"type": "string"},
                        "rules": {"type": "array", "items": _RULE},
                    },
                    "additionalProperties": False,
                },
            }
        },
        "additionalProperties": False,
    },
}


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _tool(name: str) -> str:
    """The path of ``name`` (PATH, then .tools/bin); a skip locally, a failure in CI."""
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".tools" / "bin"))
    if found:
        return found
    message = f"{name} is not installed (scripts/test installs it)"
    if _ci():
        pytest.fail(message)
    pytest.skip(message)


def render(values: dict[str, Any]) -> dict[str, str]:
    """The chart's templates rendered with ``values``: template path -> text."""
    with helm.Chart.load(str(CHART)) as chart:
        rendered: dict[str, str] = chart.render(values, name="pwg", namespace="web")
    return rendered


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            found.extend(document for document in yaml.safe_load_all(text) if document)
    return found


def all_features() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(ALL_FEATURES.read_text())
    return values


def validate(document: dict[str, Any]) -> None:
    schema = CRD_SCHEMAS.get(document["kind"])
    if schema is not None:
        assert document["apiVersion"] == "monitoring.coreos.com/v1"
        jsonschema.validate(document["spec"], schema)
        return
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in documents}


# --- Helm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "all-features"])
def test_helm_lint_finds_no_error(name: str) -> None:
    report = helm.lint(
        str(CHART),
        {} if name == "default" else all_features(),
        strict=True,
        namespace="web",
        kube_version=KUBERNETES_VERSION,
    )
    assert report["errors"] == []
    # Severity 1 is informational (an icon is recommended); warnings and errors are 2 and up.
    assert [m for m in report["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize("name", ["default", "all-features"])
def test_every_rendered_manifest_is_a_valid_kubernetes_object(name: str) -> None:
    documents = manifests(render({} if name == "default" else all_features()))
    kinds = {document["kind"] for document in documents}
    expected = {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"}
    if name == "default":
        expected |= {"PersistentVolumeClaim"}
    else:
        expected |= {"HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"}
    assert kinds == expected
    for document in documents:
        validate(document)


def test_the_default_deployment_probes_and_confines_the_gateway() -> None:
    kinds = by_kind(manifests(render({})))
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["serve", "--config", "/etc/pagewright/gateway.toml"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/_pagewright/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/_pagewright/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert (
        volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
        == (kinds["PersistentVolumeClaim"]["metadata"]["name"])
    )
    assert kinds["Deployment"]["spec"]["replicas"] == 1
    assert kinds["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}
    environment = kinds["ConfigMap"]["data"]
    assert environment["PWG_ADDRESS"] == "0.0.0.0:9000"
    assert environment["PWG_DATA_DIR"] == "/data"
    secret_variables = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(secret_variables) == {
        "PWG_ROOT_ACCESS_KEY",
        "PWG_ROOT_SECRET_KEY",
        "PWG_MASTER_KEY",
        "PWG_METRICS_TOKEN",
    }
    assert all(ref["optional"] for ref in secret_variables.values())


def test_the_rendered_config_file_is_one_the_gateway_accepts(tmp_path: Path) -> None:
    kinds = by_kind(manifests(render(all_features())))
    data = kinds["ConfigMap"]["data"]
    config = tmp_path / "gateway.toml"
    config.write_text(data["gateway.toml"])
    environ = {k: v for k, v in data.items() if k.startswith("PWG_")}
    settings = load_settings(config_file=config, environ=environ)
    assert settings.metrics_address == "0.0.0.0:9100"
    assert settings.backend == "s3://pagewright-artifacts/gateway"
    assert settings.catalog_url == "postgresql://pagewright@postgres/pagewright"
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    secret = kinds["Secret"]["data"]
    assert set(secret) == {"root-access-key", "root-secret-key", "master-key", "metrics-token"}


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ({"replicaCount": 2}, "shared backend"),
        ({"replicaCount": 2, "config": 'backend = "s3://b"'}, "PostgreSQL catalog"),
        ({"serviceMonitor": {"enabled": True}}, "metrics token"),
        (
            {
                "autoscaling": {"enabled": True},
                "config": '[gateway]\nbackend = "s3://b"\ncatalog_url = "postgresql://h/db"',
            },
            "master key",
        ),
    ],
)
def test_the_chart_refuses_settings_that_cannot_work(values: dict[str, Any], refusal: str) -> None:
    with pytest.raises(helm.HelmError, match=refusal):
        render(values)


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ({"replicaCount": "3"}, "/replicaCount"),
        ({"secrets": {"masterKey": "not-a-fernet-key"}}, "/secrets/masterKey"),
        ({"persistance": {"enabled": False}}, "persistance"),
        ({"config": {"backend": "s3://b"}}, "/config"),
    ],
)
def test_values_schema_refuses_mistakes(values: dict[str, Any], refusal: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=refusal):
        render(values)


def test_existing_secret_replaces_the_charts_secret() -> None:
    documents = manifests(render({"existingSecret": "mine", "serviceMonitor": {"enabled": True}}))
    kinds = by_kind(documents)
    assert "Secret" not in kinds
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]} == {"mine"}
    (endpoint,) = kinds["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["bearerTokenSecret"] == {"name": "mine", "key": "metrics-token"}


def test_the_prometheus_rule_is_the_alerts_file() -> None:
    kinds = by_kind(manifests(render(all_features())))
    assert kinds["PrometheusRule"]["spec"] == yaml.safe_load(ALERTS.read_text())


# --- kustomize ----------------------------------------------------------------------------


def test_every_kustomize_base_file_is_a_valid_kubernetes_object() -> None:
    """Without kustomize: each resource file of the base, as written."""
    kustomization = yaml.safe_load((KUSTOMIZE / "base" / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((KUSTOMIZE / "base" / name).read_text()):
            validate(document)


@pytest.mark.parametrize("directory", ["base", "overlays/replicated"])
def test_kustomize_builds_valid_manifests(directory: str, tmp_path: Path) -> None:
    kubectl = _tool("kubectl")
    built = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE / directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    documents = [d for d in yaml.safe_load_all(built) if d]
    for document in documents:
        validate(document)
    kinds = by_kind(documents)
    config = tmp_path / "gateway.toml"
    config.write_text(kinds["ConfigMap"]["data"]["gateway.toml"])
    load_settings(config_file=config, environ={})
    replicas = kinds["Deployment"]["spec"]["replicas"]
    assert ("PersistentVolumeClaim" in kinds) == (replicas == 1)


# --- Prometheus ---------------------------------------------------------------------------


def test_promtool_checks_the_rules() -> None:
    promtool = _tool("promtool")
    subprocess.run([promtool, "check", "rules", str(ALERTS)], check=True, timeout=120)


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    promtool = _tool("promtool")
    subprocess.run(
        [promtool, "test", "rules", str(ALERTS.with_name("alerts.test.yaml"))],
        check=True,
        timeout=120,
    )


def test_promtool_checks_the_example_prometheus_config() -> None:
    """Syntax only: its token file exists on a Prometheus server, not here."""
    promtool = _tool("promtool")
    example = ALERTS.with_name("prometheus.example.yml")
    subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(example)], check=True, timeout=120
    )
    config = yaml.safe_load(example.read_text())
    assert config["rule_files"] == [ALERTS.name]
    (scrape,) = config["scrape_configs"]
    assert scrape["metrics_path"] == "/_pagewright/metrics"
    # No label of the gateway's clashes with a target label (job_name, not job).
    assert "honor_labels" not in scrape


def alert_names() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def test_every_alert_has_a_runbook_section() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    headings = set(re.findall(r"^## (\w+)$", runbooks, flags=re.MULTILINE))
    assert set(alert_names()) <= headings
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        assert rule["annotations"]["runbook"] == f"docs/runbooks.md#{rule['alert'].lower()}"


# --- the operators' documents -----------------------------------------------------------

OPERATOR_DOCUMENTS = ("docs/runbooks.md", "docs/troubleshooting.md", "docs/tuning.md", "README.md")


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces as -."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("document", OPERATOR_DOCUMENTS)
def test_every_relative_link_of_the_operators_documents_resolves(document: str) -> None:
    source = ROOT / document
    text = source.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (source.parent / path).resolve() if path else source
        assert linked.exists(), f"{document}: {target}"
        if anchor:
            assert anchor in _anchors(linked.read_text()), f"{document}: {target}"


# --- the metrics the dashboard and the rules use ------------------------------------------

_METRIC = re.compile(r"\bpagewright_[a-z0-9_]+")
_HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def metric_list() -> set[str]:
    lines = (DEPLOY / "metric-names.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def queried_metrics(expressions: list[str]) -> set[str]:
    names = set()
    for expression in expressions:
        for name in _METRIC.findall(expression):
            base = _HISTOGRAM_SERIES.sub("", name)
            names.add(base if base in metric_list() else name)
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if isinstance(variable.get("query"), dict):
            expressions.append(variable["query"]["query"])
    return expressions


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_the_dashboard_is_grafana_json_with_a_query_per_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "pagewright-gateway"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat", "bargauge", "state-timeline"}
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


def test_the_dashboards_panels_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_every_metric_queried_is_in_the_list() -> None:
    assert queried_metrics(dashboard_expressions()) - metric_list() == set()
    assert queried_metrics(rule_expressions()) - metric_list() == set()
    # Every metric of the list is shown somewhere on the dashboard.
    assert metric_list() - queried_metrics(dashboard_expressions()) == set()


# --- the chart's settings run a real gateway ----------------------------------------------


def exported_metric_names(exposition: str) -> set[str]:
    """The metric names of a Prometheus text exposition (its ``# TYPE`` lines)."""
    return {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}


def test_every_metric_of_the_list_is_documented() -> None:
    documented = set(
        re.findall(r"`(pagewright_[a-z0-9_]+)`", (ROOT / "docs/metrics.md").read_text())
    )
    assert metric_list() - documented == set()


@pytest.mark.server
def test_the_charts_config_and_secrets_start_a_gateway_that_passes_its_probes(
    tmp_path: Path,
) -> None:
    """The ConfigMap's TOML file and variables and the Secret's keys, as the Deployment
    hands them to the container, start a gateway whose probes pass; after a short session
    its /_pagewright/metrics exports every name the dashboard and the alerts may use."""
    values = {
        "config": "log_level = 'warning'\n\n[policy]\nretention_keep_last = 5\n"
        "quota_bytes = 1000000000\n",
        "secrets": {
            "rootAccessKey": "AKIADEPLOYTEST000001",
            "rootSecretKey": "deploy-test-secret-key-0000000000000000",
            "masterKey": "ZmFrZS1tYXN0ZXIta2V5LWZvci10ZXN0cy0xMjM0NTY=",
        },
    }
    kinds = by_kind(manifests(render(values)))
    data = kinds["ConfigMap"]["data"]
    config = tmp_path / "gateway.toml"
    config.write_text(data["gateway.toml"])
    secret = {k: base64.b64decode(v).decode() for k, v in kinds["Secret"]["data"].items()}
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {k: v for k, v in data.items() if k != "gateway.toml"}
    for variable in container["env"]:
        key = variable["valueFrom"]["secretKeyRef"]["key"]
        if key in secret:
            env[variable["name"]] = secret[key]
    # The container's mounted file, address and /data, on this machine: tmp_path and a free
    # loopback port.
    assert container["args"] == ["serve", "--config", "/etc/pagewright/gateway.toml"]
    with running_gateway(tmp_path / "data", "--config", str(config), env=env) as server:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            path = container[probe]["httpGet"]["path"]
            assert httpx.get(f"{server.endpoint}{path}", timeout=30).status_code == 200
        server.access_key, server.secret_key = secret["root-access-key"], secret["root-secret-key"]
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket="deploy-test")
        with pytest.raises(ClientError, match="InvalidArchive"):
            s3.put_object(Bucket="deploy-test", Key="builds/1.tar.gz", Body=b"not an archive")
        s3.put_object(Bucket="deploy-test", Key="index.html", Body=b"<p>hello</p>")
        s3.get_object(Bucket="deploy-test", Key="index.html")["Body"].read()
        metrics = httpx.get(f"{server.endpoint}/_pagewright/metrics", timeout=30)
    assert metrics.status_code == 200
    exported = exported_metric_names(metrics.text)
    assert metric_list() - exported == set()
    # The filesystem backend's volume is measured, and its floor is the configured one.
    families = parse(metrics.text)
    assert value(families, "pagewright_free_bytes") > 0
    floor = load_settings(config_file=config, environ=env).min_free_bytes
    assert value(families, "pagewright_min_free_bytes") == floor > 0
    # No series carries a label named job: Prometheus sets that one to the scrape target's.
    assert not re.search(r"[{,]job=", metrics.text)
    # The label values the rules match on: status_class as "5xx", job outcomes and backend
    # outcomes as "ok"/"error" among others.
    status_classes = set(re.findall(r'status_class="([^"]*)"', metrics.text))
    assert "2xx" in status_classes
    assert "4xx" in status_classes
    assert status_classes <= {"1xx", "2xx", "3xx", "4xx", "5xx"}
