//! SECURITY.md maps each threat to the tests that cover it; this keeps the
//! map honest: every test it names exists, so a renamed or deleted test
//! cannot leave a threat silently uncovered.

use std::path::Path;

/// Every `fn name` in the Rust files below `dir`.
fn functions(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            functions(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("read"));
        }
    }
}

#[test]
fn every_test_security_md_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("SECURITY.md")).expect("SECURITY.md");
    let mut sources = String::new();
    functions(&root.join("src"), &mut sources);
    functions(&root.join("tests"), &mut sources);
    let mut named = 0;
    let mut missing = Vec::new();
    // Test references are written `module::test_name` (or a bare name
    // ending in a test file), in backticks.
    for quoted in map.split('`').skip(1).step_by(2) {
        let Some(name) = quoted.rsplit("::").next() else {
            continue;
        };
        let is_test_ref =
            quoted.contains("::") && !quoted.contains(' ') || quoted.starts_with("soak_");
        if !is_test_ref || name == "*" {
            continue;
        }
        named += 1;
        if !sources.contains(&format!("fn {name}(")) && !sources.contains(&format!("fn {name} (")) {
            missing.push(quoted.to_owned());
        }
    }
    assert!(named >= 50, "SECURITY.md names only {named} tests");
    assert!(
        missing.is_empty(),
        "SECURITY.md names tests that do not exist: {missing:?}"
    );
}
