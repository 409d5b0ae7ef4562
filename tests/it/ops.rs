//! Operations artefacts: the Kubernetes manifests validate against the
//! 1.30 schemas, kustomization.yaml lists exactly them, the ConfigMap
//! carries the shipped gateway.toml, and every shipped config validates
//! against the committed JSON Schema (with independent validators from
//! PyPI: `kubernetes-validate`, `check-jsonschema`; .ci/run installs them).
//! A missing validator skips the test with a reason, except under CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{cli, config_dir, stderr};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn k8s_dir() -> PathBuf {
    root().join("examples/kubernetes")
}

/// `name` on PATH or in .ci/run's tool venv; None (test skipped) when
/// absent outside CI, a failure under CI=true.
fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/tmp/nyro-ci-tools/bin"));
    if let Some(found) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{name} is needed under CI=true (pip install {name}; .ci/run does)");
    }
    eprintln!("skipped: {name} is not installed (pip install it, or run .ci/run)");
    None
}

/// The manifests in examples/kubernetes, kustomization.yaml aside.
fn manifests() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(k8s_dir())
        .expect("examples/kubernetes")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    v.sort();
    v
}

/// The `gateway.toml: |` block of configmap.yaml, unindented.
fn configmap_gateway_toml() -> String {
    let text = std::fs::read_to_string(k8s_dir().join("configmap.yaml")).unwrap();
    let mut lines = text.lines().skip_while(|l| l.trim() != "gateway.toml: |");
    assert!(
        lines.next().is_some(),
        "configmap.yaml has no gateway.toml: | block"
    );
    let mut out = String::new();
    for l in lines {
        if l.is_empty() {
            out.push('\n');
        } else if let Some(rest) = l.strip_prefix("    ") {
            out.push_str(rest);
            out.push('\n');
        } else {
            break;
        }
    }
    out
}

#[test]
fn kustomization_lists_exactly_the_manifests_in_the_folder() {
    let text = std::fs::read_to_string(k8s_dir().join("kustomization.yaml")).unwrap();
    let mut listed: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("resources:"))
        .skip(1)
        .take_while(|l| l.starts_with("  - ") || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("  - ").map(|s| s.trim().to_owned()))
        .collect();
    listed.sort();
    assert_eq!(listed, manifests());
    assert!(manifests().len() >= 7, "{:?}", manifests());
}

#[test]
fn kubernetes_manifests_validate_strictly_against_the_1_30_schemas() {
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    let out = Command::new(validate)
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .args(manifests())
        .current_dir(k8s_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator does refuse: the preStop `sleep` action is 1.30+.
    let old = Command::new(tool("kubernetes-validate").unwrap())
        .args([
            "--strict",
            "--kubernetes-version",
            "1.28.0",
            "deployment.yaml",
        ])
        .current_dir(k8s_dir())
        .output()
        .unwrap();
    assert!(
        !old.status.success(),
        "1.28 has no preStop sleep; the validator must say so"
    );
}

#[test]
fn the_configmap_carries_the_shipped_gateway_toml_and_it_passes_check_config() {
    let shipped = std::fs::read_to_string(root().join("gateway.toml")).unwrap();
    let copy = configmap_gateway_toml();
    assert_eq!(
        copy, shipped,
        "examples/kubernetes/configmap.yaml must carry gateway.toml verbatim (indented 4 spaces)"
    );
    let dir = config_dir(&copy);
    let out = cli(
        dir.path(),
        &["check-config", "--config", "gateway.toml"],
        &[
            (
                "GATEWAY_JWT_SECRET",
                "a-placeholder-secret-of-32-bytes-or-more",
            ),
            ("GATEWAY_ADMIN_LISTEN", "0.0.0.0:9901"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `toml_text` as a JSON file in `dir` (values as written: `${VAR}` stays a
/// string), for a JSON Schema validator.
fn as_json(dir: &Path, name: &str, toml_text: &str) -> PathBuf {
    let value: toml::Value = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    path
}

#[test]
fn shipped_configs_validate_against_the_schema_and_a_broken_one_is_rejected() {
    let Some(check) = tool("check-jsonschema") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        as_json(
            dir.path(),
            "gateway.toml",
            &std::fs::read_to_string(root().join("gateway.toml")).unwrap(),
        ),
        as_json(
            dir.path(),
            "configmap-gateway.toml",
            &configmap_gateway_toml(),
        ),
    ];
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            files.push(as_json(
                dir.path(),
                &name,
                &std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    assert!(files.len() >= 3);
    let schema = root().join("gateway.schema.json");
    let run = |files: &[PathBuf]| {
        Command::new(&check)
            .arg("--schemafile")
            .arg(&schema)
            .args(files)
            .output()
            .unwrap()
    };
    let out = run(&files);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Each of these is an error the loader reports too.
    for (what, broken) in [
        (
            "an unknown key",
            "[server]\nlisten = \"0.0.0.0:8080\"\nlisten_port = 1\n",
        ),
        (
            "a duration without a unit",
            "[server]\nconnect_timeout = \"10\"\n",
        ),
        (
            "a number where a duration goes",
            "[server]\nrequest_timeout = 30\n",
        ),
        (
            "a string where a list goes",
            "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://x\"\nmethods = \"GET\"\n",
        ),
        (
            "an auth mode that does not exist",
            "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://x\"\nauth = \"maybe\"\n",
        ),
        (
            "a route without its upstream",
            "[[routes]]\nname = \"a\"\nprefix = \"/a\"\n",
        ),
    ] {
        let f = as_json(dir.path(), "broken", broken);
        let out = run(&[f]);
        assert!(
            !out.status.success(),
            "the schema accepted {what}:\n{broken}"
        );
    }
    // `${VAR}` stands in for a duration or an auth mode.
    let f = as_json(
        dir.path(),
        "env",
        "[server]\nrequest_timeout = \"${T:-30s}\"\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"${U}\"\nauth = \"${MODE:-none}\"\n",
    );
    let out = run(&[f]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn shipped_configs_point_editors_at_the_schema() {
    assert!(
        std::fs::read_to_string(root().join("gateway.toml"))
            .unwrap()
            .starts_with("#:schema ./gateway.schema.json\n")
    );
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            assert!(
                std::fs::read_to_string(&p)
                    .unwrap()
                    .starts_with("#:schema ../gateway.schema.json\n"),
                "{}",
                p.display()
            );
        }
    }
}
