//! Walks the spanned TOML tree against the schema: unknown keys (with did-you-mean), wrong
//! types, bad values, missing required keys and literal defaults, all reported at once.
//! The result is a typed tree ([`Tbl`]) that the builder turns into the model.

use crate::check::{self, Check};
use crate::diag::{Diags, LineIndex, Severity};
use crate::disknames::looks_like_kernel_disk;
use crate::model::{Ipv4If, Ipv4Net, Mac, Pos};
use crate::net;
use crate::schema::{self, Dflt, Field, Table, Ty, KERNEL_NAME_HINT, KERNEL_NAME_WHY};
use crate::values::{self, did_you_mean};
use crate::ParseOptions;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A checked value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    Ip(Ipv4Addr),
    Net(Ipv4Net),
    If(Ipv4If),
    Size(u64),
    Mac(Mac),
    List(Vec<Item>),
    Table(Tbl),
}

/// One checked field or array element.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// `None` when the value was refused (the error is already reported).
    pub(crate) val: Option<Val>,
    /// Where the value is (for a default: where its table is).
    pub(crate) pos: Pos,
    /// Whether the file gave it (false for defaults).
    pub(crate) given: bool,
}

/// A checked table: its present (or defaulted) fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tbl {
    pub(crate) pos: Pos,
    pub(crate) path: String,
    pub(crate) given: bool,
    pub(crate) items: Vec<(&'static str, Item)>,
}

impl Tbl {
    pub(crate) fn item(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    fn val(&self, key: &str) -> Option<&Val> {
        self.item(key)?.val.as_ref()
    }
    /// Whether the file wrote this key (whatever its value).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.item(key).is_some_and(|i| i.given)
    }
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.val(key)? {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match self.val(key)? {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.val(key)? {
            Val::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub(crate) fn ip(&self, key: &str) -> Option<Ipv4Addr> {
        match self.val(key)? {
            Val::Ip(i) => Some(*i),
            _ => None,
        }
    }
    pub(crate) fn size(&self, key: &str) -> Option<u64> {
        match self.val(key)? {
            Val::Size(i) => Some(*i),
            _ => None,
        }
    }
    pub(crate) fn mac(&self, key: &str) -> Option<Mac> {
        match self.val(key)? {
            Val::Mac(m) => Some(*m),
            _ => None,
        }
    }
    pub(crate) fn list(&self, key: &str) -> Option<&[Item]> {
        match self.val(key)? {
            Val::List(l) => Some(l),
            _ => None,
        }
    }
    pub(crate) fn table(&self, key: &str) -> Option<&Tbl> {
        match self.val(key)? {
            Val::Table(t) => Some(t),
            _ => None,
        }
    }
    /// Where `key` is, or where this table is when the key is absent.
    pub(crate) fn pos_of(&self, key: &str) -> Pos {
        self.item(key).map_or(self.pos, |i| i.pos)
    }
    /// The path of `key` in this table.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// Positions of everything in the file and which paths hold refused values, so later checks
/// can point at the right line and skip values already reported.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pos: HashMap<String, Pos>,
    bad: BTreeSet<String>,
}

impl Meta {
    pub(crate) fn set_pos(&mut self, path: &str, pos: Pos) {
        self.pos.insert(path.to_string(), pos);
    }
    /// The position of `path`, or of its closest ancestor that has one.
    pub(crate) fn pos(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.pos.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, col: 1 },
            }
        }
    }
    /// Whether the file wrote `path` (or a literal default filled it in).
    pub(crate) fn has(&self, path: &str) -> bool {
        self.pos.contains_key(path)
    }
    pub(crate) fn poison(&mut self, path: &str) {
        self.bad.insert(path.to_string());
    }
    /// Whether `path`, anything below it, or an ancestor of it was refused or could not be
    /// computed: checks that read such a value would only repeat the error.
    pub(crate) fn bad(&self, path: &str) -> bool {
        // Ancestors (and the path itself): every prefix ending before a `.` or `[`.
        let ancestor = path
            .match_indices(['.', '['])
            .map(|(i, _)| &path[..i])
            .chain([path])
            .any(|p| self.bad.contains(p));
        // Descendants sort right after the path itself.
        ancestor
            || self
                .bad
                .range::<str, _>((std::ops::Bound::Excluded(path), std::ops::Bound::Unbounded))
                .take_while(|b| b.starts_with(path))
                .any(|b| under(b, path))
    }
}

/// Whether `child` is `parent` or lies below it.
fn under(child: &str, parent: &str) -> bool {
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) struct Walker<'a> {
    pub(crate) li: &'a LineIndex<'a>,
    pub(crate) opts: &'a ParseOptions,
    pub(crate) diags: &'a mut Diags,
    pub(crate) meta: &'a mut Meta,
}

impl Walker<'_> {
    fn at(&self, span: std::ops::Range<usize>) -> Pos {
        self.li.pos(span.start)
    }

    fn refuse(&mut self, pos: Pos, path: &str, msg: String, hint: Option<String>) -> Item {
        self.diags.push(Severity::Error, pos, path, msg, hint);
        self.meta.poison(path);
        Item {
            val: None,
            pos,
            given: true,
        }
    }

    /// Checks table `t` (at `pos`, path `path`) against `schema`.
    pub(crate) fn table(
        &mut self,
        schema: &'static Table,
        t: &DeTable<'_>,
        pos: Pos,
        path: &str,
        given: bool,
    ) -> Tbl {
        self.meta.set_pos(path, pos);
        let mut by_key: HashMap<
            &str,
            (&Spanned<std::borrow::Cow<'_, str>>, &Spanned<DeValue<'_>>),
        > = HashMap::new();
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            if schema.field(key).is_some() {
                by_key.insert(key, (k, v));
            } else {
                self.unknown_key(schema, key, self.at(k.span()), &join(path, key));
            }
        }
        let mut out = Tbl {
            pos,
            path: path.to_string(),
            given,
            items: Vec::new(),
        };
        for field in schema.fields {
            let fpath = join(path, field.key);
            let item = match by_key.get(field.key) {
                Some((_, v)) => self.value(&field.ty, v, &fpath),
                None => match self.absent(field, pos, &fpath) {
                    Some(item) => item,
                    None => continue,
                },
            };
            out.items.push((field.key, item));
        }
        out
    }

    fn absent(&mut self, field: &'static Field, pos: Pos, path: &str) -> Option<Item> {
        match (field.default, field.ty) {
            (Dflt::Required, ty) => {
                let (msg, hint) = match ty {
                    Ty::Table(t) => (
                        format!("missing table {}", t.title),
                        format!("add a {} table", t.title),
                    ),
                    Ty::Tables(t) => (
                        format!("no {} entries", t.title),
                        format!("add at least one {} table", t.title),
                    ),
                    _ if field.example.is_empty() => (
                        format!("missing required key `{}`", field.key),
                        field.doc.to_string(),
                    ),
                    _ => (
                        format!("missing required key `{}`", field.key),
                        format!("add {} = {}", field.key, field.example),
                    ),
                };
                Some(self.refuse(pos, path, msg, Some(hint)))
            }
            (Dflt::Lit(text), ty) => {
                // Defaults go through the same checks as written values: docs and behaviour agree.
                let mut item = match DeValue::parse(text) {
                    Ok(v) => self.value(&ty, &v, path),
                    Err(_) => self.refuse(pos, path, format!("internal: bad default {text}"), None),
                };
                item.pos = pos;
                item.given = false;
                self.meta.set_pos(path, pos);
                Some(item)
            }
            (Dflt::Computed(_), Ty::Table(t)) => {
                let tbl = self.table(t, &DeTable::new(), pos, path, false);
                Some(Item {
                    val: Some(Val::Table(tbl)),
                    pos,
                    given: false,
                })
            }
            _ => None,
        }
    }

    fn unknown_key(&mut self, schema: &'static Table, key: &str, pos: Pos, path: &str) {
        // The table is incomplete: shape checks on it (an empty disk selector, say) would only
        // repeat this error.
        self.meta.poison(path);
        if let Some(r) = schema.refused.iter().find(|r| r.key == key) {
            self.diags.push(
                Severity::Error,
                pos,
                path,
                r.message,
                Some(r.hint.to_string()),
            );
            return;
        }
        let keys = schema.fields.iter().map(|f| f.key);
        let kebab = key.replace('_', "-").to_ascii_lowercase();
        let hint = if key != kebab && schema.field(&kebab).is_some() {
            format!("keys are kebab-case: did you mean `{kebab}`?")
        } else if let Some(best) = did_you_mean(key, keys.clone()) {
            format!("did you mean `{best}`?")
        } else if let Some(home) = schema::tables()
            .iter()
            .find(|(_, t)| t.field(key).is_some())
            .map(|(_, t)| t.title)
        {
            if home == "top level" {
                format!("`{key}` belongs at the top level, before the first [table]")
            } else {
                format!("`{key}` belongs in {home}")
            }
        } else {
            format!("known keys here: {}", keys.collect::<Vec<_>>().join(", "))
        };
        let place = if schema.title == "top level" {
            "at the top level".to_string()
        } else {
            format!("in {}", schema.title)
        };
        self.diags.push(
            Severity::Error,
            pos,
            path,
            format!("unknown key `{key}` {place}"),
            Some(hint),
        );
    }

    fn value(&mut self, ty: &Ty, v: &Spanned<DeValue<'_>>, path: &str) -> Item {
        let pos = self.at(v.span());
        self.meta.set_pos(path, pos);
        let dv = v.get_ref();
        match (ty, dv) {
            (Ty::Table(t), DeValue::Table(tbl)) => {
                let tbl = self.table(t, tbl, pos, path, true);
                Item {
                    val: Some(Val::Table(tbl)),
                    pos,
                    given: true,
                }
            }
            (Ty::Tables(t), DeValue::Array(arr)) if arr.iter().all(|e| e.get_ref().is_table()) => {
                let mut items = Vec::new();
                for (i, e) in arr.iter().enumerate() {
                    let ipath = format!("{path}[{i}]");
                    let epos = self.at(e.span());
                    if let DeValue::Table(et) = e.get_ref() {
                        let tbl = self.table(t, et, epos, &ipath, true);
                        items.push(Item {
                            val: Some(Val::Table(tbl)),
                            pos: epos,
                            given: true,
                        });
                    }
                }
                Item {
                    val: Some(Val::List(items)),
                    pos,
                    given: true,
                }
            }
            (Ty::List(inner), DeValue::Array(arr)) => {
                let items = arr
                    .iter()
                    .enumerate()
                    .map(|(i, e)| self.value(inner, e, &format!("{path}[{i}]")))
                    .collect();
                Item {
                    val: Some(Val::List(items)),
                    pos,
                    given: true,
                }
            }
            (Ty::Int { min, max }, DeValue::Integer(i)) => {
                match i64::from_str_radix(i.as_str(), i.radix()) {
                    Ok(n) if (*min..=*max).contains(&n) => Item {
                        val: Some(Val::Int(n)),
                        pos,
                        given: true,
                    },
                    Ok(n) => self.refuse(
                        pos,
                        path,
                        format!("{n} is out of range: must be {min} to {max}"),
                        None,
                    ),
                    Err(_) => self.refuse(
                        pos,
                        path,
                        format!("{i} is out of range: must be {min} to {max}"),
                        None,
                    ),
                }
            }
            (Ty::Size, DeValue::Integer(i)) => match u64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Item {
                    val: Some(Val::Size(n)),
                    pos,
                    given: true,
                },
                Err(_) => self.refuse(pos, path, format!("{i} is not a size in bytes"), None),
            },
            (Ty::Bool, DeValue::Boolean(b)) => Item {
                val: Some(Val::Bool(*b)),
                pos,
                given: true,
            },
            (_, DeValue::String(s)) if is_stringy(ty) => self.string(ty, s, pos, path),
            _ => self.wrong_type(ty, dv, pos, path),
        }
    }

    fn string(&mut self, ty: &Ty, s: &str, pos: Pos, path: &str) -> Item {
        let check: Check<Val> = match ty {
            Ty::Str(kind) => map(values::string(*kind, s, self.opts), Val::Str),
            Ty::Ipv4 => map(net::ipv4(s), Val::Ip),
            Ty::Cidr => map(net::cidr(s), Val::Net),
            Ty::IfAddr => map(net::if_addr(s), Val::If),
            Ty::Size => map(net::size(s), Val::Size),
            Ty::Mac => map(net::mac(s), Val::Mac),
            Ty::Enum(allowed) => map(values::enumerated(s, allowed), Val::Str),
            _ => check::err("internal: not a string type"),
        };
        match check {
            Check::Ok(v) => Item {
                val: Some(v),
                pos,
                given: true,
            },
            Check::Warn(v, msg, hint) => {
                self.diags.push(Severity::Warning, pos, path, msg, hint);
                Item {
                    val: Some(v),
                    pos,
                    given: true,
                }
            }
            Check::Err(msg, hint) => self.refuse(pos, path, msg, hint),
        }
    }

    fn wrong_type(&mut self, ty: &Ty, dv: &DeValue<'_>, pos: Pos, path: &str) -> Item {
        let found = match dv {
            DeValue::Array(a) if a.iter().all(|e| e.get_ref().is_table()) && !a.is_empty() => {
                "an array of tables"
            }
            DeValue::Integer(_) => "an integer",
            DeValue::Array(_) => "an array",
            DeValue::Table(_) => "a table",
            other => article(other.type_str()),
        };
        let msg = format!("expected {}, found {found}", ty.toml_name());
        let s = dv.as_str().unwrap_or("");
        let hint = match (ty, dv) {
            (Ty::Table(_), DeValue::String(_)) | (Ty::List(Ty::Table(_)), DeValue::String(_))
                if looks_like_kernel_disk(s) =>
            {
                return self.refuse(
                    pos,
                    path,
                    KERNEL_NAME_WHY.to_string(),
                    Some(KERNEL_NAME_HINT.to_string()),
                );
            }
            (Ty::Table(t), DeValue::String(_)) if t.title == "disk selector" => Some(format!(
                "write {{ by-id = \"{s}\" }} or {{ serial = \"{s}\" }}"
            )),
            (Ty::Tables(t), DeValue::Table(_)) => Some(format!(
                "write {} with double brackets, once per entry",
                t.title
            )),
            (Ty::List(_), DeValue::String(_)) => Some(format!("write [\"{s}\"]")),
            (Ty::Int { .. } | Ty::Size, DeValue::String(_)) if s.trim().parse::<i64>().is_ok() => {
                Some(format!("write {} without quotes", s.trim()))
            }
            (Ty::Bool, DeValue::String(_)) if matches!(s, "true" | "false") => {
                Some(format!("write {s} without quotes"))
            }
            (Ty::Bool, DeValue::String(_)) if matches!(s, "on" | "yes") => {
                Some("write true".into())
            }
            (Ty::Bool, DeValue::String(_)) if matches!(s, "off" | "no") => {
                Some("write false".into())
            }
            (
                Ty::Str(_) | Ty::Enum(_) | Ty::Ipv4 | Ty::Cidr | Ty::IfAddr | Ty::Mac,
                DeValue::Integer(i),
            ) => Some(format!("write \"{i}\" in quotes")),
            (Ty::Str(_) | Ty::Ipv4 | Ty::Enum(_), DeValue::Array(a)) if a.len() == 1 => {
                Some("this key takes a single value, not an array".into())
            }
            _ => None,
        };
        self.refuse(pos, path, msg, hint)
    }
}

fn article(ty: &str) -> &'static str {
    match ty {
        "string" => "a string",
        "float" => "a float",
        "boolean" => "a boolean",
        "datetime" => "a date-time",
        _ => "another type",
    }
}

fn is_stringy(ty: &Ty) -> bool {
    matches!(
        ty,
        Ty::Str(_) | Ty::Ipv4 | Ty::Cidr | Ty::IfAddr | Ty::Size | Ty::Mac | Ty::Enum(_)
    )
}

fn map<T>(c: Check<T>, f: impl Fn(T) -> Val) -> Check<Val> {
    match c {
        Check::Ok(v) => Check::Ok(f(v)),
        Check::Warn(v, m, h) => Check::Warn(f(v), m, h),
        Check::Err(m, h) => Check::Err(m, h),
    }
}
