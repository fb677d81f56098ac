//! The embedded templates (`templates/system/` in the repository) and the one engine that fills
//! them. Templates only place values: no HTML escaping (these are configuration files), an
//! unknown variable is an error, and a template's last newline is kept.

use super::RenderError;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// Every template: its name (the target path without the leading `/`) and its text.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "etc/default/grub.d/tappaas.cfg",
        include_str!("../../../templates/system/etc/default/grub.d/tappaas.cfg.j2"),
    ),
    (
        "etc/default/keyboard",
        include_str!("../../../templates/system/etc/default/keyboard.j2"),
    ),
    (
        "etc/fstab",
        include_str!("../../../templates/system/etc/fstab.j2"),
    ),
    (
        "etc/hostname",
        include_str!("../../../templates/system/etc/hostname.j2"),
    ),
    (
        "etc/hosts",
        include_str!("../../../templates/system/etc/hosts.j2"),
    ),
    (
        "etc/kernel/cmdline",
        include_str!("../../../templates/system/etc/kernel/cmdline.j2"),
    ),
    (
        "etc/machine-id",
        include_str!("../../../templates/system/etc/machine-id.j2"),
    ),
    (
        "etc/modprobe.d/zfs.conf",
        include_str!("../../../templates/system/etc/modprobe.d/zfs.conf.j2"),
    ),
    (
        "etc/network/interfaces",
        include_str!("../../../templates/system/etc/network/interfaces.j2"),
    ),
    (
        "etc/resolv.conf",
        include_str!("../../../templates/system/etc/resolv.conf.j2"),
    ),
    (
        "etc/systemd/network/tappaas-bridge.link",
        include_str!("../../../templates/system/etc/systemd/network/tappaas-bridge.link.j2"),
    ),
    (
        "etc/systemd/system/tappaas-bootstrap.service",
        include_str!("../../../templates/system/etc/systemd/system/tappaas-bootstrap.service.j2"),
    ),
    (
        "etc/tappaas/node.toml",
        include_str!("../../../templates/system/etc/tappaas/node.toml.j2"),
    ),
    (
        "etc/timezone",
        include_str!("../../../templates/system/etc/timezone.j2"),
    ),
    (
        "root/.ssh/authorized_keys",
        include_str!("../../../templates/system/root/.ssh/authorized_keys.j2"),
    ),
    (
        "var/lib/tappaas/pve-seed/datacenter.cfg",
        include_str!("../../../templates/system/var/lib/tappaas/pve-seed/datacenter.cfg.j2"),
    ),
    (
        "var/lib/tappaas/pve-seed/storage.cfg",
        include_str!("../../../templates/system/var/lib/tappaas/pve-seed/storage.cfg.j2"),
    ),
    (
        "var/lib/tappaas/pve-seed/user.cfg",
        include_str!("../../../templates/system/var/lib/tappaas/pve-seed/user.cfg.j2"),
    ),
];

/// The template engine with every template loaded.
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub(crate) fn new() -> Result<Templates, RenderError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|source| RenderError::Template {
                name: "(syntax)",
                source,
            })?;
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_filter("toml", |s: String| super::rules::toml_quote(&s));
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .map_err(|source| RenderError::Template { name, source })?;
        }
        Ok(Templates { env })
    }

    /// Renders template `name` with `ctx` (any serialisable value, usually a `json!` object).
    pub(crate) fn render(
        &self,
        name: &'static str,
        ctx: &impl Serialize,
    ) -> Result<String, RenderError> {
        let fail = |source| RenderError::Template { name, source };
        self.env
            .get_template(name)
            .map_err(fail)?
            .render(Value::from(Serde(ctx)))
            .map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        assert!(Templates::new().is_ok());
    }

    /// A template file added to `templates/system/` but not embedded would silently be unused.
    #[test]
    fn every_template_file_is_embedded() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("read templates dir") {
                let p = e.expect("dir entry").path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if let Some(rel) = p.strip_prefix(base).ok().and_then(|r| r.to_str()) {
                    out.push(rel.trim_end_matches(".j2").to_string());
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/system");
        let mut found = Vec::new();
        walk(&base, &base, &mut found);
        found.sort();
        let mut embedded: Vec<String> = TEMPLATES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(found, embedded);
    }
}
