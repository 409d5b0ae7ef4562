//! Type errors in `gateway.toml` (README "Configuration"): every one in the
//! file is reported at once, at its `line:col`, with the expected shape and
//! an example, not serde's first "invalid type".

#[test]
fn every_type_error_is_reported_with_the_expected_shape_and_an_example() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.toml"),
        r#"[server]
request_timeout = 30
[[routes]]
name = "a"
prefix = "/a"
upstream = "http://127.0.0.1:9"
auth = "none"
methods = "GET"
timeout = 30
strip_prefix = "yes"
"#,
    )
    .unwrap();
    let o = crate::support::cli(dir.path(), &["check-config", "gateway.toml"], &[]);
    let err = crate::support::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    let want = [
        "gateway.toml:2:19: error: request_timeout: expected a duration string such as request_timeout = \"60s\" (found a number)",
        "gateway.toml:8:11: error: methods: expected a list such as methods = [\"GET\", \"POST\"] (found a string)",
        "gateway.toml:9:11: error: timeout: expected a duration string such as timeout = \"120s\" (found a number)",
        "gateway.toml:10:16: error: strip_prefix: expected true or false such as strip_prefix = false (found a string)",
    ];
    assert_eq!(errors, want, "{err}");
}
