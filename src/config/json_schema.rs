//! The JSON Schema of `gateway.toml` (`nyro-gw schema`, committed as
//! `gateway.schema.json` for Taplo / Even Better TOML), derived from the
//! one key table [`KEYS`] so it cannot drift from what the loader accepts.
//!
//! Each key's `ty` (a [`Ty`]) becomes a JSON type; `default`
//! and `example` become `default` and `examples` when they parse as TOML
//! values; a `default` of "required" makes the key required in its table.
//! Tables reject unknown keys, as the loader does. Strings may hold
//! `${VAR}` / `${VAR:-default}` (README "Configuration"): a string with a
//! format (a duration, a size, an enumerated value) also accepts any string
//! containing `${`; integers and booleans are never expanded, so they take
//! no strings.

use serde_json::{Map, Value, json};

use super::schema::{KEYS, Key, Ty};

/// Where the committed copy lives, relative to the repository root, and
/// the `$id` it states.
pub(crate) const FILE: &str = "gateway.schema.json";

/// A string that `${…}` expansion will replace (config/env.rs).
const ENV_PATTERN: &str = r"\$\{";

/// The schema, as JSON Schema draft-07 (what Taplo reads).
pub(crate) fn schema() -> Value {
    let mut root = table(
        "",
        "nyro-gw gateway.toml: the route table of the nyro-gw API gateway",
    );
    root.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    root.insert("$id".into(), json!(format!("https://nyro.invalid/{FILE}")));
    root.insert("title".into(), json!("gateway.toml"));
    // Stable key order: `$schema`, `$id`, title first, then the rest.
    let mut ordered = Map::new();
    for k in ["$schema", "$id", "title"] {
        if let Some(v) = root.remove(k) {
            ordered.insert(k.into(), v);
        }
    }
    ordered.extend(root);
    Value::Object(ordered)
}

/// The schema as committed: pretty JSON with a trailing newline.
pub(crate) fn render() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// Keys directly below `parent` ("" for the top level), in table order.
fn children(parent: &str) -> impl Iterator<Item = &'static Key> + '_ {
    KEYS.iter().filter(move |k| match k.path.rsplit_once('.') {
        Some((p, _)) => p == parent,
        None => parent.is_empty(),
    })
}

/// An object schema for the table at `path`: its children as properties,
/// unknown keys refused, "required" defaults required.
fn table(path: &str, doc: &str) -> Map<String, Value> {
    let mut props = Map::new();
    let mut required = Vec::new();
    for k in children(path) {
        let name = k.path.rsplit('.').next().unwrap_or(k.path);
        if name == "*" {
            continue;
        }
        props.insert(name.into(), key_schema(k));
        if k.default == "required" {
            required.push(json!(name));
        }
    }
    let mut m = Map::new();
    m.insert("type".into(), json!("object"));
    if !doc.is_empty() {
        m.insert("description".into(), json!(doc));
    }
    m.insert("properties".into(), Value::Object(props));
    if !required.is_empty() {
        m.insert("required".into(), Value::Array(required));
    }
    // Keys named `*` (an injected header's name): any name, each value
    // either a string or a table of the `*.x` keys.
    let star = format!(
        "{}*",
        if path.is_empty() {
            String::new()
        } else {
            format!("{path}.")
        }
    );
    if children(&star).next().is_some() {
        let entry = table(&star, "");
        m.insert(
            "additionalProperties".into(),
            json!({ "anyOf": [ { "type": "string" }, entry ] }),
        );
    } else {
        m.insert("additionalProperties".into(), json!(false));
    }
    m
}

/// One key's schema: its type, description, default and example.
fn key_schema(k: &Key) -> Value {
    let mut m = match k.ty {
        Ty::Table | Ty::InjectTable => table(k.path, ""),
        Ty::ArrayOfTables => {
            let mut m = Map::new();
            m.insert("type".into(), json!("array"));
            m.insert("items".into(), Value::Object(table(k.path, "")));
            m
        }
        ty => match type_schema(ty) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };
    m.insert("description".into(), json!(description(k)));
    if let Some(d) = toml_value(k.default) {
        m.insert("default".into(), d);
    }
    if let Some(e) = toml_value(k.example) {
        m.insert("examples".into(), json!([e]));
    }
    Value::Object(m)
}

/// The description an editor shows on hover: what the key is for, its
/// type and its default.
pub(crate) fn description(k: &Key) -> String {
    let default = match k.default {
        "" => String::new(),
        d => format!(" Default: {d}."),
    };
    format!("{} ({}).{default}", k.doc, k.ty)
}

/// `text` as a TOML value, when it is one (`"10s"`, `10000`, `[]`; not
/// `none` or prose).
fn toml_value(text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    let doc: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
    serde_json::to_value(doc.get("v")?).ok()
}

/// The JSON schema for a value of type `ty`; a table's is its keys',
/// built by [`table`] (here only `{"type": "object"}`).
pub(crate) fn type_schema(ty: Ty) -> Value {
    let strings = || json!({ "type": "array", "items": { "type": "string" } });
    match ty {
        Ty::Table | Ty::InjectTable => json!({ "type": "object" }),
        Ty::ArrayOfTables => json!({ "type": "array", "items": { "type": "object" } }),
        Ty::String | Ty::Address | Ty::Url | Ty::Path | Ty::ClaimPath => {
            json!({ "type": "string" })
        }
        Ty::Word(words) => with_env(json!({ "type": "string", "enum": words })),
        Ty::Duration => with_env(json!({
            "type": "string",
            "pattern": r"^\s*([0-9]+(ms|s|m|h|d))+\s*$",
        })),
        Ty::Size => with_env(json!({
            "type": "string",
            "pattern": r"^\s*[0-9]+\s*([bB]|[kKmMgG][iI]?[bB])\s*$",
        })),
        Ty::Integer => json!({ "type": "integer", "minimum": 0 }),
        Ty::PositiveInteger => json!({ "type": "integer", "minimum": 1 }),
        Ty::RedisUrl => with_env(json!({ "type": "string", "pattern": r"^(rediss?://.*)?$" })),
        Ty::LimitKey => json!({ "type": "string", "pattern": r"^(ip|route|claim:.+)$" }),
        Ty::Rate => {
            with_env(json!({ "type": "string", "pattern": r"^\s*[0-9]+\s*/\s*(s|m|h)\s*$" }))
        }
        Ty::Number => json!({ "type": "number" }),
        Ty::Boolean => json!({ "type": "boolean" }),
        Ty::StringOrStrings => json!({ "anyOf": [{ "type": "string" }, strings()] }),
        Ty::Strings | Ty::Cidrs | Ty::Origins | Ty::HeaderNames | Ty::Methods => strings(),
    }
}

/// `schema`, or any string that `${…}` expansion will replace.
fn with_env(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "string", "pattern": ENV_PATTERN }] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_has_a_json_type() {
        for k in KEYS {
            assert!(
                type_schema(k.ty) != json!({}),
                "key {}: type {} has no JSON Schema mapping",
                k.path,
                k.ty
            );
        }
    }

    #[test]
    fn every_key_is_in_the_schema() {
        let s = schema();
        for k in KEYS {
            let mut at = &s;
            for part in k.path.split('.') {
                at = match at.get("type").and_then(Value::as_str) {
                    Some("array") => &at["items"],
                    _ => at,
                };
                at = if part == "*" {
                    &at["additionalProperties"]["anyOf"][1]
                } else {
                    &at["properties"][part]
                };
            }
            assert!(at.is_object(), "{} is missing from the schema", k.path);
        }
    }

    #[test]
    fn defaults_and_examples_parse_as_toml_or_are_left_out() {
        assert_eq!(toml_value("\"10s\""), Some(json!("10s")));
        assert_eq!(toml_value("10000"), Some(json!(10000)));
        assert_eq!(toml_value("none"), None);
        assert_eq!(toml_value("[] (websocket only)"), None);
    }
}
