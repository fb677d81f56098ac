//! The vendored PVE API schema subset, and request validation against it.
//!
//! `schema/pve-api-subset.json` is produced by `schema/extract.py` from the PVE apidoc tree.
//! Validation follows PVE::JSONSchema: path templates are matched segment by segment, the
//! path's `{vars}` join the query/body parameters, and every parameter is checked for being
//! defined, its type (integers, numbers and booleans as PVE parses them from strings), enum,
//! pattern (anchored to the whole value, as PVE's `^(?:...)$`), length, range and format.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::formats;

/// The vendored subset, embedded so the crate needs nothing outside itself.
pub const VENDORED: &str = include_str!("../schema/pve-api-subset.json");

/// A problem in the schema file itself, found when loading it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not JSON of the expected shape.
    #[error("schema: {0}")]
    Shape(String),
    /// A parameter uses a `format` the simulator cannot check.
    #[error("schema: {path} {method} parameter '{param}' uses format '{format}', which the simulator does not implement")]
    UnknownFormat {
        /// API path template.
        path: String,
        /// HTTP method.
        method: String,
        /// Parameter name.
        param: String,
        /// The format name.
        format: String,
    },
    /// A `pattern` that the regex crate cannot compile.
    #[error("schema: {path} {method} parameter '{param}': pattern {pattern:?}: {error}")]
    BadPattern {
        /// API path template.
        path: String,
        /// HTTP method.
        method: String,
        /// Parameter name.
        param: String,
        /// The pattern as written in the schema.
        pattern: String,
        /// Why it did not compile.
        error: String,
    },
}

/// Why a request was refused by the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No such path, or the path has no such method (PVE answers 501).
    NotImplemented(String),
    /// Parameter verification failed (PVE answers 400 with one message per parameter).
    Params(BTreeMap<String, String>),
}

/// A request that passed validation.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The matched path template, e.g. `/nodes/{node}/status`.
    pub template: String,
    /// Path variables and query/body parameters together, as strings.
    pub params: BTreeMap<String, String>,
    /// Whether the method may be called with an API token (`allowtoken`).
    pub allow_token: bool,
    /// The method has no `permissions`: PVE then allows root@pam only (not even its tokens).
    pub root_only: bool,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Var(String),
}

#[derive(Debug, Clone)]
enum Format {
    Named(String),
    /// A property string (`key=value,...`) with its own sub-schema.
    Dict {
        props: BTreeMap<String, Prop>,
        default_key: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Prop {
    ty: String,
    optional: bool,
    format: Option<Format>,
    pattern: Option<Regex>,
    enumeration: Option<Vec<String>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    requires: Option<String>,
}

#[derive(Debug)]
struct Method {
    props: BTreeMap<String, Prop>,
    additional: bool,
    allow_token: bool,
    root_only: bool,
    returns: Value,
    parameters: Value,
}

#[derive(Debug)]
struct Endpoint {
    template: String,
    segments: Vec<Segment>,
    methods: BTreeMap<String, Method>,
}

/// The loaded schema: endpoints with their methods and parameter rules.
#[derive(Debug)]
pub struct Schema {
    endpoints: Vec<Endpoint>,
    provenance: Value,
}

/// Corosync allows links 0..7; the schema writes them as one `link[n]` property.
const INDEXED_MAX: u32 = 7;

impl Schema {
    /// Parse and check a schema file of the shape `extract.py` writes.
    pub fn parse(text: &str) -> Result<Self, LoadError> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| LoadError::Shape(e.to_string()))?;
        let list = root
            .get("endpoints")
            .and_then(Value::as_array)
            .ok_or_else(|| LoadError::Shape("no 'endpoints' array".into()))?;
        let mut endpoints = Vec::new();
        for e in list {
            let template = e
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| LoadError::Shape("endpoint without 'path'".into()))?
                .to_string();
            let segments = template
                .split('/')
                .filter(|s| !s.is_empty())
                .map(
                    |s| match s.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
                        Some(v) => Segment::Var(v.to_string()),
                        None => Segment::Literal(s.to_string()),
                    },
                )
                .collect();
            let mut methods = BTreeMap::new();
            let ms = e
                .get("methods")
                .and_then(Value::as_object)
                .ok_or_else(|| LoadError::Shape(format!("{template}: no 'methods'")))?;
            for (name, m) in ms {
                let params = m.get("parameters").cloned().unwrap_or(Value::Null);
                let additional = params.get("additionalProperties").is_some_and(truthy);
                let mut props = BTreeMap::new();
                if let Some(p) = params.get("properties").and_then(Value::as_object) {
                    for (pname, pv) in p {
                        let at = |e| (template.clone(), name.clone(), pname.clone(), e);
                        props.insert(pname.clone(), parse_prop(pv, &at)?);
                    }
                }
                let allow_token = m.get("allowtoken").is_some_and(truthy);
                let returns = m.get("returns").cloned().unwrap_or(Value::Null);
                let root_only = m.get("permissions").is_none();
                methods.insert(
                    name.clone(),
                    Method {
                        props,
                        additional,
                        allow_token,
                        root_only,
                        returns,
                        parameters: params.clone(),
                    },
                );
            }
            endpoints.push(Endpoint {
                template,
                segments,
                methods,
            });
        }
        Ok(Self {
            endpoints,
            provenance: root.get("provenance").cloned().unwrap_or(Value::Null),
        })
    }

    /// The vendored subset, parsed once.
    pub fn vendored() -> &'static Result<Schema, String> {
        static SCHEMA: LazyLock<Result<Schema, String>> =
            LazyLock::new(|| Schema::parse(VENDORED).map_err(|e| e.to_string()));
        &SCHEMA
    }

    /// Where the schema came from (the `provenance` object of the file).
    pub fn provenance(&self) -> &Value {
        &self.provenance
    }

    /// The `returns` schema of a method (`Value::Null` when unknown).
    pub fn returns(&self, method: &str, template: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.endpoints
            .iter()
            .find(|e| e.template == template)
            .and_then(|e| e.methods.get(method))
            .map_or(&NULL, |m| &m.returns)
    }

    /// The `parameters` schema of a method (`Value::Null` when unknown).
    pub fn parameters(&self, method: &str, template: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.endpoints
            .iter()
            .find(|e| e.template == template)
            .and_then(|e| e.methods.get(method))
            .map_or(&NULL, |m| &m.parameters)
    }

    /// Every (method, path template) pair, sorted.
    pub fn endpoints(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .endpoints
            .iter()
            .flat_map(|e| e.methods.keys().map(|m| (m.clone(), e.template.clone())))
            .collect();
        out.sort();
        out
    }

    /// Validate one request. `path` is below `/api2/json`, without the query string.
    pub fn validate(
        &self,
        method: &str,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Validated, Rejection> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let not_impl = || {
            Rejection::NotImplemented(format!(
                "Method '{method} /api2/json{path}' not implemented"
            ))
        };
        let (endpoint, vars) = self
            .endpoints
            .iter()
            .find_map(|e| match_path(e, &parts).map(|v| (e, v)))
            .ok_or_else(not_impl)?;
        let m = endpoint.methods.get(method).ok_or_else(not_impl)?;

        let mut errors = BTreeMap::new();
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in params {
            if vars.iter().any(|(pk, _)| pk == k) {
                continue; // the path's value wins, as in PVE's handler
            }
            if values.contains_key(k) {
                errors.insert(k.clone(), "duplicate parameter (not allowed)".to_string());
                continue;
            }
            values.insert(k.clone(), v.clone());
        }
        for (k, v) in vars {
            values.insert(k, v);
        }
        for (k, v) in &values {
            match lookup(&m.props, k) {
                Some(prop) => {
                    if let Err(msg) = check_value(prop, v) {
                        errors.insert(k.clone(), msg);
                    }
                }
                None if m.additional => {}
                None => {
                    errors.insert(
                        k.clone(),
                        "property is not defined in schema and the schema does not allow additional properties".into(),
                    );
                }
            }
        }
        for (k, prop) in &m.props {
            if !prop.optional && !k.ends_with("[n]") && !values.contains_key(k) {
                errors.insert(
                    k.clone(),
                    "property is missing and it is not optional".into(),
                );
            }
            if let Some(req) = &prop.requires {
                if values.contains_key(k) && !values.contains_key(req) {
                    errors.insert(
                        req.clone(),
                        format!("missing property - '{k}' requires this property"),
                    );
                }
            }
        }
        if errors.is_empty() {
            Ok(Validated {
                template: endpoint.template.clone(),
                params: values,
                allow_token: m.allow_token,
                root_only: m.root_only,
            })
        } else {
            Err(Rejection::Params(errors))
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        Value::String(s) => formats::parse_bool(s).unwrap_or(false),
        _ => false,
    }
}

fn match_path(e: &Endpoint, parts: &[&str]) -> Option<Vec<(String, String)>> {
    if e.segments.len() != parts.len() {
        return None;
    }
    let mut vars = Vec::new();
    for (seg, part) in e.segments.iter().zip(parts) {
        match seg {
            Segment::Literal(l) if l == part => {}
            Segment::Literal(_) => return None,
            Segment::Var(v) => vars.push((v.clone(), percent_decode(part))),
        }
    }
    Some(vars)
}

/// Path segments arrive percent-encoded (UPIDs contain ':', token ids '!').
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn lookup<'a>(props: &'a BTreeMap<String, Prop>, key: &str) -> Option<&'a Prop> {
    if let Some(p) = props.get(key) {
        return Some(p);
    }
    let digits = key.trim_start_matches(|c: char| !c.is_ascii_digit());
    let stem = &key[..key.len() - digits.len()];
    if stem.is_empty() || digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    if n > INDEXED_MAX || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    props.get(&format!("{stem}[n]"))
}

type At<'a> = dyn Fn(String) -> (String, String, String, String) + 'a;

fn parse_prop(v: &Value, at: &At<'_>) -> Result<Prop, LoadError> {
    let num = |k: &str| v.get(k).and_then(Value::as_f64);
    let format = match v.get("format") {
        None => None,
        Some(Value::String(f)) => {
            if !formats::KNOWN.contains(&f.as_str()) {
                let (path, method, param, format) = at(f.clone());
                return Err(LoadError::UnknownFormat {
                    path,
                    method,
                    param,
                    format,
                });
            }
            Some(Format::Named(f.clone()))
        }
        Some(Value::Object(sub)) => {
            let mut props = BTreeMap::new();
            let mut default_key = None;
            for (k, sv) in sub {
                if sv.get("default_key").is_some_and(truthy) {
                    default_key = Some(k.clone());
                }
                props.insert(k.clone(), parse_prop(sv, at)?);
            }
            Some(Format::Dict { props, default_key })
        }
        Some(other) => {
            return Err(LoadError::Shape(format!(
                "format {other} is neither a name nor an object"
            )))
        }
    };
    let pattern = match v.get("pattern").and_then(Value::as_str) {
        None => None,
        Some(p) => {
            // Perl stringifies qr// as "(?^:...)"; the regex crate spells that "(?:...)".
            let body = p
                .strip_prefix("(?^:")
                .map_or(p.to_string(), |rest| format!("(?:{rest}"));
            let anchored = format!("^(?:{body})$");
            Some(Regex::new(&anchored).map_err(|e| {
                let (path, method, param, _) = at(String::new());
                LoadError::BadPattern {
                    path,
                    method,
                    param,
                    pattern: p.to_string(),
                    error: e.to_string(),
                }
            })?)
        }
    };
    Ok(Prop {
        ty: v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string")
            .to_string(),
        optional: v.get("optional").is_some_and(truthy),
        format,
        pattern,
        enumeration: v.get("enum").and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect()
        }),
        minimum: num("minimum"),
        maximum: num("maximum"),
        min_length: num("minLength").map(|n| n as usize),
        max_length: num("maxLength").map(|n| n as usize),
        requires: v
            .get("requires")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

static INTEGER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"^[+-]?\d+$").expect("integer regex")
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$").expect("number regex")
});

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Check one value against its property; `Err` is PVE's message for that parameter.
fn check_value(prop: &Prop, value: &str) -> Result<(), String> {
    let type_err = || format!("type check ('{}') failed - got '{value}'", prop.ty);
    let numeric = match prop.ty.as_str() {
        "integer" => {
            if !INTEGER.is_match(value) {
                return Err(type_err());
            }
            value.parse::<f64>().ok()
        }
        "number" => {
            if !NUMBER.is_match(value) {
                return Err(type_err());
            }
            value.parse::<f64>().ok()
        }
        "boolean" => {
            if formats::parse_bool(value).is_none() {
                return Err(type_err());
            }
            None
        }
        _ => None,
    };
    if let Some(n) = numeric {
        if let Some(min) = prop.minimum {
            if n < min {
                return Err(format!(
                    "value must have a minimum value of {}",
                    fmt_num(min)
                ));
            }
        }
        if let Some(max) = prop.maximum {
            if n > max {
                return Err(format!(
                    "value must have a maximum value of {}",
                    fmt_num(max)
                ));
            }
        }
    }
    if let Some(max) = prop.max_length {
        if value.chars().count() > max {
            return Err(format!("value may only be {max} characters long"));
        }
    }
    if let Some(min) = prop.min_length {
        if value.chars().count() < min {
            return Err(format!("value must be at least {min} characters long"));
        }
    }
    if let Some(e) = &prop.enumeration {
        if !e.iter().any(|x| x == value) {
            return Err(format!(
                "value '{value}' does not have a value in the enumeration '{}'",
                e.join(", ")
            ));
        }
    }
    if let Some(p) = &prop.pattern {
        if !p.is_match(value) {
            return Err("value does not match the regex pattern".into());
        }
    }
    match &prop.format {
        None => Ok(()),
        Some(Format::Named(f)) => formats::check(f, value),
        Some(Format::Dict { props, default_key }) => {
            check_property_string(props, default_key.as_deref(), value)
        }
    }
}

fn check_property_string(
    props: &BTreeMap<String, Prop>,
    default_key: Option<&str>,
    value: &str,
) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => match default_key {
                Some(d) => (d, part.trim()),
                None => {
                    return Err(format!(
                        "invalid format - value without key, but schema does not define a default key: '{part}'"
                    ))
                }
            },
        };
        let Some(prop) = props.get(k) else {
            return Err(format!("invalid format - property '{k}' not allowed"));
        };
        if seen.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!(
                "invalid format - duplicate key in comma-separated list property: {k}"
            ));
        }
        check_value(prop, v).map_err(|e| format!("invalid format - {k}: {e}"))?;
    }
    for (k, prop) in props {
        if !prop.optional && !seen.contains_key(k) {
            return Err(format!(
                "invalid format - {k}: property is missing and it is not optional"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> &'static Schema {
        Schema::vendored().as_ref().unwrap()
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn errors(r: Result<Validated, Rejection>) -> BTreeMap<String, String> {
        match r {
            Err(Rejection::Params(e)) => e,
            other => panic!("expected parameter errors, got {other:?}"),
        }
    }

    #[test]
    fn vendored_schema_loads_and_has_provenance() {
        assert!(schema().provenance()["source"]
            .as_str()
            .unwrap()
            .contains("pve-api-schema"));
        assert!(schema()
            .endpoints()
            .contains(&("POST".into(), "/cluster/config/join".into())));
    }

    #[test]
    fn unknown_format_is_refused_at_load() {
        let text = r#"{"endpoints":[{"path":"/x","methods":{"GET":{"parameters":{"properties":{"a":{"type":"string","format":"pve-bogus"}}}}}}]}"#;
        let err = Schema::parse(text).unwrap_err().to_string();
        assert!(err.contains("pve-bogus"), "{err}");
    }

    #[test]
    fn path_params_are_validated() {
        let e = errors(schema().validate("GET", "/nodes/bad_name/status", &[]));
        assert_eq!(e["node"], "value does not look like a valid node name");
        let ok = schema()
            .validate("GET", "/nodes/tappaas1/status", &[])
            .unwrap();
        assert_eq!(ok.template, "/nodes/{node}/status");
        assert_eq!(ok.params["node"], "tappaas1");
    }

    #[test]
    fn unknown_path_or_method_is_not_implemented() {
        assert!(matches!(
            schema().validate("GET", "/nope", &[]),
            Err(Rejection::NotImplemented(_))
        ));
        assert!(matches!(
            schema().validate("PATCH", "/version", &[]),
            Err(Rejection::NotImplemented(_))
        ));
    }

    #[test]
    fn join_parameters_are_checked() {
        let fp = vec!["AB"; 32].join(":");
        let good = p(&[
            ("hostname", "10.0.0.10"),
            ("fingerprint", &fp),
            ("password", "x"),
            ("link0", "10.0.0.11"),
            ("force", "yes"),
        ]);
        schema()
            .validate("POST", "/cluster/config/join", &good)
            .unwrap();
        let e = errors(schema().validate(
            "POST",
            "/cluster/config/join",
            &p(&[
                ("hostname", "h"),
                ("fingerprint", "AB:CD"),
                ("password", "x"),
                ("link8", "10.0.0.1"),
                ("force", "maybe"),
                ("nodeid", "0"),
            ]),
        ));
        assert_eq!(e["fingerprint"], "value does not match the regex pattern");
        assert_eq!(
            e["link8"],
            "property is not defined in schema and the schema does not allow additional properties"
        );
        assert_eq!(e["force"], "type check ('boolean') failed - got 'maybe'");
        assert_eq!(e["nodeid"], "value must have a minimum value of 1");
        let e = errors(schema().validate("POST", "/cluster/config/join", &p(&[("hostname", "h")])));
        assert_eq!(e["password"], "property is missing and it is not optional");
        let e = errors(schema().validate(
            "POST",
            "/cluster/config",
            &p(&[
                ("clustername", "TAPPaaS"),
                ("link0", "address=10.0.0.10,priority=300"),
            ]),
        ));
        assert!(e["link0"].contains("priority"), "{e:?}");
    }

    #[test]
    fn storage_enum_and_lengths() {
        let e = errors(schema().validate(
            "POST",
            "/storage",
            &p(&[("storage", "tank1"), ("type", "zfs-pool")]),
        ));
        assert!(
            e["type"]
                .starts_with("value 'zfs-pool' does not have a value in the enumeration 'btrfs, "),
            "{e:?}"
        );
        let e = errors(schema().validate(
            "POST",
            "/cluster/config",
            &p(&[("clustername", "a-very-long-cluster-name")]),
        ));
        assert_eq!(e["clustername"], "value may only be 15 characters long");
    }

    #[test]
    fn perl_qr_pattern_is_understood() {
        schema()
            .validate("POST", "/access/users/root@pam/token/agent", &[])
            .unwrap();
        let e = errors(schema().validate("POST", "/access/users/root@pam/token/1agent", &[]));
        assert_eq!(e["tokenid"], "value does not match the regex pattern");
    }

    #[test]
    fn odd_values_and_names_never_panic() {
        let long = "a".repeat(5000);
        let values = [
            "",
            "é",
            "%",
            "%zz",
            long.as_str(),
            "-1",
            "1e400",
            "+7",
            "0x10",
            "a=b,c",
            ",,",
            "=",
            "\0",
        ];
        let names = [
            "link",
            "link00",
            "link99999999999999999999",
            "é1",
            "1",
            "",
            "link7",
        ];
        for (method, template) in schema().endpoints() {
            let path = template
                .replace("{node}", "tappaas1")
                .replace("{upid}", "UPID%3Ax")
                .replace("{storage}", "tank1")
                .replace("{userid}", "root@pam")
                .replace("{tokenid}", "agent");
            for v in values {
                let params: Vec<(String, String)> = schema().parameters(&method, &template)
                    ["properties"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.keys())
                    .map(|k| (k.replace("[n]", "0"), v.to_string()))
                    .chain(names.iter().map(|n| (n.to_string(), v.to_string())))
                    .collect();
                let _ = schema().validate(&method, &path, &params);
            }
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("UPID%3Aa%3A"), "UPID:a:");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
