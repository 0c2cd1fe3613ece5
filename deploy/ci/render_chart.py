#!/usr/bin/env python3
"""Lints and renders the Helm chart for CI, and checks what the schemas cannot.

Usage: render_chart.py CHART_DIR OUT_DIR

Uses Helm's own Go SDK (v4) through the PyPI package helm-python-sdk, so no helm binary is
needed. For each scenario in CHART_DIR/ci (base, base+full, base+mesh) it writes
OUT_DIR/<scenario>.yaml (built-in Kubernetes kinds, for kubernetes-validate) and
OUT_DIR/<scenario>-monitoring.yaml (prometheus-operator kinds, for check-jsonschema). It also
checks that:
  * the chart lints cleanly (strict: warnings fail);
  * renders with a required value missing fail, naming the value;
  * the broker configuration in the ConfigMap is TOML with only the keys the broker accepts
    (it refuses unknown keys), and every file it names is mounted in the broker container;
  * the security settings the chart promises are on every container.
"""

import copy
import pathlib
import sys
import tomllib

import helm_python as helm
import yaml

# The keys of crates/server/src/config.rs (serde deny_unknown_fields).
TOP_KEYS = {
    "listen", "data_dir", "insecure_http", "tls", "cookie_secure", "store", "kek_file",
    "token_key_file", "sealing_key_file", "coco_signing_key_file", "token_ttl_secs",
    "request_timeout_secs", "binding_hash", "max_connections", "max_connections_per_address",
    "idle_timeout_secs", "purge_interval_secs", "metrics_listen", "connection_threads",
    "admin", "verifier", "collateral",
}
TABLE_KEYS = {
    "tls": {"cert", "key", "reload_secs"},
    "admin": {"tokens", "jwt_keys", "jwt_audience", "jwt_issuer", "jwt_max_lifetime_secs"},
    "verifier": {"dangerous_test_roots", "endorsements"},
    "collateral": {"dir", "fetch", "kds_url", "pcs_url", "pcs_api_key_file", "update",
                   "timeout_secs", "retry_after_failure_secs", "refresh_interval_secs",
                   "recheck_secs"},
}
TOKEN_KEYS = {"name", "file", "repos"}
MONITORING_GROUP = "monitoring.coreos.com/"

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}")


def merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def render(chart_dir, values):
    with helm.Chart.load(str(chart_dir)) as chart:
        files = chart.render(values, name="tessera", namespace="tessera", is_install=True)
    docs = []
    for path in sorted(files):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(files[path]):
            if doc:
                docs.append(doc)
    return docs


def mounted(container, path):
    return any(
        path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
        for m in container.get("volumeMounts", [])
    )


def check_config(name, docs):
    cms = [d for d in docs if d["kind"] == "ConfigMap"]
    deps = [d for d in docs if d["kind"] == "Deployment"]
    if len(cms) != 1 or len(deps) != 1:
        fail(f"{name}: expected one ConfigMap and one Deployment")
        return
    try:
        conf = tomllib.loads(cms[0]["data"]["tessera.toml"])
    except (KeyError, tomllib.TOMLDecodeError) as e:
        fail(f"{name}: tessera.toml: {e}")
        return
    for k in set(conf) - TOP_KEYS:
        fail(f"{name}: tessera.toml: unknown key {k}")
    for table, keys in TABLE_KEYS.items():
        for k in set(conf.get(table, {})) - keys:
            fail(f"{name}: tessera.toml: unknown key {table}.{k}")
    for t in conf.get("admin", {}).get("tokens", []):
        for k in set(t) - TOKEN_KEYS:
            fail(f"{name}: tessera.toml: unknown key admin.tokens[].{k}")
    if "store" in conf:
        fail(f"{name}: the store URL belongs in the Secret-backed env, not the ConfigMap")
    if not (conf.get("admin", {}).get("tokens") or conf.get("admin", {}).get("jwt_keys")):
        fail(f"{name}: no admin credential configured")
    pod = deps[0]["spec"]["template"]["spec"]
    broker = next(c for c in pod["containers"] if c["name"] == "tessera")
    # Every key file shared by the replicas is named: a default (in the scratch data_dir) would
    # give each replica its own key.
    shared = ("kek_file", "token_key_file", "sealing_key_file", "coco_signing_key_file")
    for k in shared:
        if k not in conf:
            fail(f"{name}: tessera.toml does not name {k}: each replica would make its own")
    files = [conf["data_dir"]] + [conf[k] for k in shared if k in conf]
    files += [conf["tls"]["cert"], conf["tls"]["key"]] if "tls" in conf else []
    files += [t["file"] for t in conf["admin"].get("tokens", [])]
    files += conf["admin"].get("jwt_keys", [])
    files += conf.get("verifier", {}).get("endorsements", [])
    collateral = conf.get("collateral", {})
    files += [collateral[k] for k in ("dir", "pcs_api_key_file") if k in collateral]
    for f in files:
        if not mounted(broker, f):
            fail(f"{name}: {f} (named by tessera.toml) is not mounted in the broker container")
    if conf.get("insecure_http") != ("tls" not in conf):
        fail(f"{name}: insecure_http must be set exactly when there is no [tls]")
    if conf.get("cookie_secure") is not True:
        fail(f"{name}: cookie_secure must be true (clients use HTTPS, the broker's or a mesh's)")
    env = {e["name"]: e for e in broker.get("env", [])}
    if "secretKeyRef" not in env.get("TESSERA_DATABASE_URL", {}).get("valueFrom", {}):
        fail(f"{name}: TESSERA_DATABASE_URL must come from a Secret")
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"{name}: pod securityContext must set runAsNonRoot and seccomp RuntimeDefault")
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        if not (
            sc.get("readOnlyRootFilesystem")
            and sc.get("allowPrivilegeEscalation") is False
            and sc.get("runAsNonRoot")
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
        ):
            fail(f"{name}: container {c['name']} lacks the required securityContext")
        if not c.get("resources", {}).get("limits"):
            fail(f"{name}: container {c['name']} has no resource limits")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        if broker.get(probe, {}).get("httpGet", {}).get("path") != path:
            fail(f"{name}: {probe} must GET {path}")


def expect_refusal(chart_dir, label, values, needle):
    try:
        render(chart_dir, values)
    except helm.HelmError as e:
        if needle in str(e):
            print(f"ok: refused {label}")
        else:
            fail(f"{label}: refused, but the message does not name {needle!r}: {e}")
        return
    fail(f"{label}: rendered, but should have been refused")


def main():
    chart_dir = pathlib.Path(sys.argv[1])
    out_dir = pathlib.Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"helm SDK {helm.helm_sdk_version()} (helm-c {helm.helm_c_version()})")

    base = yaml.safe_load((chart_dir / "ci" / "base-values.yaml").read_text())
    scenarios = {"base": base}
    for extra in ("full", "mesh"):
        over = yaml.safe_load((chart_dir / "ci" / f"{extra}-values.yaml").read_text())
        scenarios[extra] = merge(base, over)

    for name, values in scenarios.items():
        report = helm.lint(str(chart_dir), values, strict=True, namespace="tessera")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [
            {"error": e} for e in report.get("errors", [])
        ]
        for m in problems:
            fail(f"helm lint ({name}): {m.get('path', '')} {m['error']}")
        if not problems:
            print(f"ok: helm lint ({name})")

        docs = render(chart_dir, values)
        builtin = [d for d in docs if not d["apiVersion"].startswith(MONITORING_GROUP)]
        monitoring = [d for d in docs if d["apiVersion"].startswith(MONITORING_GROUP)]
        kinds = sorted(d["kind"] for d in docs)
        print(f"ok: rendered {name}: {', '.join(kinds)}")
        (out_dir / f"{name}.yaml").write_text(yaml.safe_dump_all(builtin, sort_keys=False))
        (out_dir / f"{name}-monitoring.yaml").write_text(
            yaml.safe_dump_all(monitoring, sort_keys=False)
        )
        check_config(name, docs)
        want = {"ConfigMap", "Deployment", "Service", "NetworkPolicy", "ServiceAccount"}
        if (
            values.get("podDisruptionBudget", {}).get("enabled", True)
            and values.get("replicaCount", 2) > 1
        ):
            want.add("PodDisruptionBudget")
        if values.get("metrics", {}).get("serviceMonitor", {}).get("enabled"):
            want.add("ServiceMonitor")
        if set(kinds) != want:
            fail(f"{name}: kinds {sorted(set(kinds))}, expected {sorted(want)}")

    full = yaml.safe_load((out_dir / "full-monitoring.yaml").read_text())
    if not full or full.get("kind") != "ServiceMonitor":
        fail("full: the ServiceMonitor was not rendered")

    # Each required value, when missing, stops the render and is named.
    for path, needle in (
        (("kek", "existingSecret"), "kek.existingSecret"),
        (("tokenKey", "existingSecret"), "tokenKey.existingSecret"),
        (("sealingKeys", "existingSecret"), "sealingKeys.existingSecret"),
        (("cocoSigningKey", "existingSecret"), "cocoSigningKey.existingSecret"),
        (("database", "existingSecret"), "database.existingSecret"),
        (("tls", "existingSecret"), "tls.existingSecret"),
    ):
        v = copy.deepcopy(base)
        v[path[0]][path[1]] = ""
        expect_refusal(chart_dir, f"no {needle}", v, needle)
    v = copy.deepcopy(base)
    v["admin"] = {"tokens": [], "jwtKeys": []}
    expect_refusal(chart_dir, "no admin credential", v, "admin.tokens or admin.jwtKeys")
    v = copy.deepcopy(base)
    v["admin"]["tokens"][0]["name"] = "../x"
    expect_refusal(chart_dir, "an admin token name with a slash", v, "name")
    # values.schema.json: a misspelt key and a value out of range are refused.
    v = copy.deepcopy(base)
    v["replicas"] = 3
    expect_refusal(chart_dir, "a misspelt top-level value", v, "replicas")
    # "*" in a static token's repos is refused by the broker at start: the schema refuses it.
    v = copy.deepcopy(base)
    v["admin"]["tokens"][0]["repos"] = ["team-a", " * "]
    expect_refusal(chart_dir, "a static token scoped to \"*\"", v, "repos")
    # An empty repos (a token that could manage nothing) is refused by the broker too.
    v = copy.deepcopy(base)
    v["admin"]["tokens"][0]["repos"] = []
    expect_refusal(chart_dir, "a static token scoped to no repository", v, "repos")
    v = copy.deepcopy(base)
    v["admin"]["tokens"][0]["repos"] = ["team a"]
    expect_refusal(chart_dir, "a static token scoped to no possible repository", v, "repos")
    v = copy.deepcopy(base)
    v["config"] = {"tokenTtlSecs": 5}
    expect_refusal(chart_dir, "a token lifetime below 10 s", v, "tokenTtlSecs")
    v = copy.deepcopy(base)
    v["collateral"] = {"fetch": True, "update": "late"}
    expect_refusal(chart_dir, "an unknown TCB update schedule", v, "update")
    # Plain HTTP only behind a ClusterIP Service (a mesh or proxy terminates TLS).
    for kind in ("NodePort", "LoadBalancer"):
        v = merge(scenarios["mesh"], {"service": {"type": kind}})
        expect_refusal(chart_dir, f"insecureHttp with a {kind} Service", v, "insecureHttp")
    # A grace period shorter than the broker's drain would kill requests in flight.
    v = merge(base, {"terminationGracePeriodSeconds": 30})
    expect_refusal(chart_dir, "a grace period shorter than the drain", v, "terminationGracePeriodSeconds")
    # metrics.port: /metrics on a port of its own, which only metricsFrom may reach (the
    # broker's port then from `from` alone); the ServiceMonitor scrapes it over plain HTTP.
    v = merge(scenarios["full"], {"metrics": {"port": 9090, "serviceMonitor": {"enabled": True}}})
    docs = render(chart_dir, v)
    check_config("metrics.port", docs)
    conf = tomllib.loads(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["tessera.toml"])
    broker = next(
        c for c in next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"]
        if c["name"] == "tessera"
    )
    service = next(d for d in docs if d["kind"] == "Service")
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    ingress = {
        rule["ports"][0]["port"]: rule.get("from") for rule in policy["spec"]["ingress"]
    }
    ing = v["networkPolicy"]["ingress"]
    problems = []
    if conf.get("metrics_listen") != "0.0.0.0:9090":
        problems.append(f"metrics_listen {conf.get('metrics_listen')!r}")
    if {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} not in broker["ports"]:
        problems.append("no container port named metrics")
    if not any(p.get("targetPort") == "metrics" and p["port"] == 9090 for p in service["spec"]["ports"]):
        problems.append("no service port for metrics")
    if ingress.get("metrics") != ing["metricsFrom"] or ingress.get("https") != ing["from"]:
        problems.append(f"ingress {ingress}")
    endpoint = monitor["spec"]["endpoints"][0]
    if (endpoint["port"], endpoint["scheme"]) != ("metrics", "http"):
        problems.append(f"ServiceMonitor endpoint {endpoint}")
    if problems:
        fail("metrics.port: " + "; ".join(problems))
    else:
        print("ok: metrics.port: its own port, ConfigMap, Service, NetworkPolicy and ServiceMonitor agree")
    v = copy.deepcopy(base)
    v["metrics"] = {"port": 70000}
    expect_refusal(chart_dir, "a metrics port above 65535", v, "port")
    v = copy.deepcopy(base)
    v["metrics"] = {"port": 8080}
    expect_refusal(chart_dir, "a metrics port equal to the broker's", v, "metrics.port")
    # A blank JWT audience or issuer, which the broker refuses at start, is refused here.
    for key in ("jwtAudience", "jwtIssuer"):
        expect_refusal(chart_dir, f"a blank admin.{key}", merge(base, {"admin": {key: "   "}}), key)
    # `listen` must be on containerPort and not on loopback (the Service and probes reach the
    # pod address there).
    for listen, needle in (
        ("0.0.0.0:9000", "containerPort"),
        ("127.0.0.1:8080", "loopback"),
        ("[::1]:8080", "loopback"),
    ):
        expect_refusal(chart_dir, f"listen {listen}", merge(base, {"listen": listen}), needle)
    # The metrics address takes the host of `listen` (an IPv6-only cluster listens on [::]).
    v = merge(base, {"listen": "[::]:8080", "metrics": {"port": 9090}})
    conf = tomllib.loads(
        next(d for d in render(chart_dir, v) if d["kind"] == "ConfigMap")["data"]["tessera.toml"]
    )
    if conf.get("metrics_listen") != "[::]:9090":
        fail(f"metrics.port with listen [::]:8080: metrics_listen {conf.get('metrics_listen')!r}")
    else:
        print("ok: metrics.port follows the host of listen")

    # Fetching opens egress on port 443; without it the policy allows none.
    for fetch in (False, True):
        v = copy.deepcopy(base)
        v["collateral"] = {"fetch": fetch}
        docs = render(chart_dir, v)
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
        conf = tomllib.loads(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["tessera.toml"])
        if (443 in ports) != fetch or ("collateral" in conf) != fetch:
            fail(f"collateral.fetch={fetch}: egress ports {sorted(ports)}, [collateral] "
                 f"{'present' if 'collateral' in conf else 'absent'}")
        else:
            print(f"ok: collateral.fetch={fetch} egress and [collateral] agree")

    if failures:
        print(f"{len(failures)} chart check(s) failed")
        sys.exit(1)
    print("chart checks passed")


if __name__ == "__main__":
    main()
