//! Checks the simulator's own answers against the schema's `returns`, so its data keeps the
//! shape real PVE gives (a client tested here must not depend on a shape PVE never sends).
//!
//! Lenient where PVE's own answers are: booleans may be 0/1, extra properties are allowed
//! unless `additionalProperties` is 0, and formats the simulator does not know are skipped.

use serde_json::Value;

use crate::formats;

/// Every way `data` departs from `schema`; empty when it conforms.
pub fn check(schema: &Value, data: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, data, "data", &mut out);
    out
}

/// Turn the string values of `obj` into the JSON types `properties` (a schema's
/// `properties` object) gives them, as PVE's config parsers do: integers and booleans (0/1)
/// become numbers. Values that do not parse stay strings.
pub fn coerce(properties: &Value, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    for (k, v) in map.iter_mut() {
        let (Some(s), Some(ty)) = (
            v.as_str(),
            properties
                .get(k)
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str),
        ) else {
            continue;
        };
        let typed = match ty {
            "integer" => s.parse::<i64>().ok().map(Value::from),
            "number" => s.parse::<f64>().ok().map(Value::from),
            "boolean" => formats::parse_bool(s).map(|b| Value::from(u8::from(b))),
            _ => None,
        };
        if let Some(t) = typed {
            *v = t;
        }
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        _ => false,
    }
}

fn walk(schema: &Value, data: &Value, at: &str, out: &mut Vec<String>) {
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let ok = match ty {
        "null" => data.is_null(),
        "string" => data.is_string(),
        "integer" => data.is_i64() || data.is_u64(),
        "number" => data.is_number(),
        "boolean" => data.is_boolean() || matches!(data.as_u64(), Some(0 | 1)),
        "object" => data.is_object(),
        "array" => data.is_array(),
        _ => true,
    };
    if !ok {
        out.push(format!("{at}: expected {ty}, got {data}"));
        return;
    }
    if let (Some(allowed), Some(s)) = (schema.get("enum").and_then(Value::as_array), data.as_str())
    {
        if !allowed.iter().any(|a| a.as_str() == Some(s)) {
            out.push(format!("{at}: '{s}' is not in the enum"));
        }
    }
    if let (Some(p), Some(s)) = (schema.get("pattern").and_then(Value::as_str), data.as_str()) {
        let body = p
            .strip_prefix("(?^:")
            .map_or(p.to_string(), |r| format!("(?:{r}"));
        if regex::Regex::new(&format!("^(?:{body})$")).is_ok_and(|re| !re.is_match(s)) {
            out.push(format!("{at}: '{s}' does not match {p}"));
        }
    }
    if let (Some(f), Some(s)) = (schema.get("format").and_then(Value::as_str), data.as_str()) {
        if formats::KNOWN.contains(&f) {
            if let Err(e) = formats::check(f, s) {
                out.push(format!("{at}: {e}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        data.as_object(),
    ) {
        for (k, sub) in props {
            match obj.get(k) {
                Some(v) => walk(sub, v, &format!("{at}.{k}"), out),
                None if !truthy(sub.get("optional")) => {
                    out.push(format!("{at}: property '{k}' is missing"));
                }
                None => {}
            }
        }
        if schema.get("additionalProperties").is_some()
            && !truthy(schema.get("additionalProperties"))
        {
            for k in obj.keys().filter(|k| !props.contains_key(*k)) {
                out.push(format!("{at}: property '{k}' is not in the schema"));
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), data.as_array()) {
        for (i, v) in list.iter().enumerate() {
            walk(items, v, &format!("{at}[{i}]"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_missing_wrong_and_extra() {
        let schema = json!({"type": "object", "additionalProperties": 0, "properties": {
            "a": {"type": "integer"}, "b": {"type": "boolean", "optional": 1},
            "c": {"type": "array", "items": {"type": "string", "enum": ["x"]}}}});
        assert!(check(&schema, &json!({"a": 1, "b": 0, "c": ["x"]})).is_empty());
        let errs = check(&schema, &json!({"a": "1", "c": ["y"], "d": 1}));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
