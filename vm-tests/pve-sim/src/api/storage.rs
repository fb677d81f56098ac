//! `/storage` and the cluster-wide jobs (`/cluster/backup`, `/cluster/replication`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{fail, Handled, Params, Shared};
use crate::returns::coerce;

/// Properties each storage type accepts besides the common ones (SectionConfig options).
pub(super) fn type_options(
    kind: &str,
) -> Option<(&'static [&'static str], &'static [&'static str])> {
    // (required, optional)
    match kind {
        "zfspool" => Some((&["pool"], &["blocksize", "sparse", "mountpoint"])),
        "pbs" => Some((
            &["server", "datastore"],
            &[
                "username",
                "password",
                "fingerprint",
                "port",
                "encryption-key",
                "master-pubkey",
                "namespace",
                "prune-backups",
                "max-protected-backups",
                "fs-name",
            ],
        )),
        "dir" => Some((
            &["path"],
            &[
                "prune-backups",
                "max-protected-backups",
                "shared",
                "mkdir",
                "create-base-path",
                "create-subdirs",
                "is_mountpoint",
                "preallocation",
                "content-dirs",
            ],
        )),
        _ => None,
    }
}

pub(super) const COMMON: &[&str] = &[
    "storage", "type", "content", "nodes", "disable", "bwlimit", "digest", "delete",
];

pub(super) fn check_type_options(
    kind: &str,
    p: &Params,
    creating: bool,
) -> Result<(), (u16, String)> {
    let Some((required, optional)) = type_options(kind) else {
        return Ok(());
    };
    let mut errors = BTreeMap::new();
    for k in p.0.keys() {
        if !COMMON.contains(&k.as_str())
            && !required.contains(&k.as_str())
            && !optional.contains(&k.as_str())
        {
            errors.insert(
                k.clone(),
                format!("property is not allowed for storage type '{kind}'"),
            );
        }
    }
    if creating {
        for r in required {
            if !p.0.contains_key(*r) {
                errors.insert(
                    (*r).to_string(),
                    "property is missing and it is not optional".into(),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err((400, serde_json::to_string(&errors).unwrap_or_default()))
    }
}

fn storage_props(shared: &Shared) -> &Value {
    &shared.schema.parameters("POST", "/storage")["properties"]
}

pub(super) fn storage_json(
    props: &Value,
    id: &str,
    cfg: &BTreeMap<String, String>,
    digest: &str,
) -> Value {
    let mut v = json!({"storage": id, "digest": digest});
    for (k, val) in cfg {
        v[k] = json!(val);
    }
    // storage.cfg is text; PVE's parser gives integers and booleans their JSON types.
    coerce(props, &mut v);
    v
}

pub(super) fn list_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let cfs = st.cfs_of(node).ok_or((500, "no such node".to_string()))?;
    Ok(Value::Array(
        cfs.storage
            .iter()
            .filter(|(_, c)| {
                p.get("type")
                    .is_none_or(|t| c.get("type").map(String::as_str) == Some(t))
            })
            .map(|(id, c)| storage_json(storage_props(shared), id, c, &cfs.storage_digest()))
            .collect(),
    ))
}

pub(super) fn get_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let cfs = st.cfs_of(node).ok_or((500, "no such node".to_string()))?;
    let id = p.str("storage");
    let cfg = cfs
        .storage
        .get(id)
        .ok_or((500, format!("storage '{id}' does not exist")))?;
    Ok(storage_json(
        storage_props(shared),
        id,
        cfg,
        &cfs.storage_digest(),
    ))
}

pub(super) const SECRET_KEYS: &[&str] = &["password", "encryption-key"];

pub(super) fn create_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let kind = p.str("type").to_string();
    check_type_options(&kind, p, true)?;
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let id = p.str("storage").to_string();
    if cfs.storage.contains_key(&id) {
        return fail(format!(
            "create storage failed: storage ID '{id}' already defined"
        ));
    }
    let mut cfg = BTreeMap::new();
    for (k, v) in &p.0 {
        if k == "storage" {
            continue;
        }
        if SECRET_KEYS.contains(&k.as_str()) {
            cfs.storage_secrets.insert(format!("{id}/{k}"), v.clone());
        } else {
            cfg.insert(k.clone(), v.clone());
        }
    }
    cfs.storage.insert(id.clone(), cfg);
    Ok(json!({"storage": id, "type": kind}))
}

pub(super) fn update_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let id = p.str("storage").to_string();
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if let Some(digest) = p.get("digest") {
        if digest != cfs.storage_digest() {
            return fail(
                "detected modified configuration - file changed by other user? Try again.",
            );
        }
    }
    let Some(kind) = cfs.storage.get(&id).and_then(|c| c.get("type").cloned()) else {
        return fail(format!(
            "update storage failed: storage '{id}' does not exist"
        ));
    };
    check_type_options(&kind, p, false)?;
    let mut secrets = Vec::new();
    let Some(cfg) = cfs.storage.get_mut(&id) else {
        return fail(format!(
            "update storage failed: storage '{id}' does not exist"
        ));
    };
    if let Some(del) = p.get("delete") {
        for k in del.split([',', ';', ' ']).filter(|k| !k.is_empty()) {
            cfg.remove(k);
        }
    }
    for (k, v) in &p.0 {
        if matches!(k.as_str(), "storage" | "delete" | "digest") {
            continue;
        }
        if SECRET_KEYS.contains(&k.as_str()) {
            secrets.push((format!("{id}/{k}"), v.clone()));
        } else {
            cfg.insert(k.clone(), v.clone());
        }
    }
    cfs.storage_secrets.extend(secrets);
    Ok(json!({"storage": id, "type": kind}))
}

pub(super) fn delete_storage(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let id = p.str("storage");
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if cfs.storage.remove(id).is_none() {
        return fail(format!(
            "delete storage failed: storage '{id}' does not exist"
        ));
    }
    cfs.storage_secrets
        .retain(|k, _| !k.starts_with(&format!("{id}/")));
    Ok(Value::Null)
}

pub(super) fn list_jobs(shared: &Arc<Shared>, node: &str, backup: bool) -> Handled {
    let st = shared.lock();
    let cfs = st.cfs_of(node).ok_or((500, "no such node".to_string()))?;
    let (jobs, path) = if backup {
        (&cfs.backup_jobs, "/cluster/backup")
    } else {
        (&cfs.replication_jobs, "/cluster/replication")
    };
    let props = &shared.schema.returns("GET", path)["items"]["properties"];
    Ok(Value::Array(
        jobs.iter()
            .map(|(id, c)| {
                let mut v = json!({"id": id});
                for (k, val) in c {
                    v[k] = json!(val);
                }
                coerce(props, &mut v);
                v
            })
            .collect(),
    ))
}

pub(super) fn create_backup_job(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    if let Some(s) = p.get("storage") {
        if !st.cfs_of(node).is_some_and(|c| c.storage.contains_key(s)) {
            return fail(format!("storage '{s}' does not exist"));
        }
    }
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let id = p.get("id").map(str::to_string).unwrap_or_else(|| {
        format!(
            "backup-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..13]
        )
    });
    if cfs.backup_jobs.contains_key(&id) {
        return fail(format!("Job '{id}' already exists"));
    }
    let cfg =
        p.0.iter()
            .filter(|(k, _)| *k != "id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    cfs.backup_jobs.insert(id, cfg);
    Ok(Value::Null)
}

pub(super) fn create_replication_job(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let target = p.str("target");
    let known = st
        .cfs_of(node)
        .and_then(|c| c.cluster.as_ref())
        .is_some_and(|c| c.nodes.contains_key(target));
    if !known {
        return fail(format!("unknown node '{target}'"));
    }
    // PVE checks a job against its guest's node only when the job runs ("unable to sync to
    // local node"); replication.cfg is cluster-wide, so which member takes the request does
    // not matter. Guests are not simulated: only a job whose own source is its target is
    // refused.
    if p.get("source") == Some(target) {
        return fail(format!("source and target node '{target}' are the same"));
    }
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let id = p.str("id").to_string();
    if cfs.replication_jobs.contains_key(&id) {
        return fail(format!("replication job '{id}' already exists"));
    }
    let mut cfg: BTreeMap<String, String> =
        p.0.iter()
            .filter(|(k, _)| *k != "id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    cfg.entry("schedule".into())
        .or_insert_with(|| "*/15".into());
    if let Some((guest, jobnum)) = id.split_once('-') {
        cfg.insert("guest".into(), guest.into());
        cfg.insert("jobnum".into(), jobnum.into());
    }
    cfs.replication_jobs.insert(id, cfg);
    Ok(Value::Null)
}

/// `DELETE /cluster/replication/{id}` as PVE::API2::ReplicationConfig's `delete`: `force`
/// drops the entry at once (no clean-up; an unknown id is fine); otherwise the job is only
/// marked (`remove_job` = `full`, or `local` with `keep`) and stays listed until the
/// replication runner has removed it, which needs the target online for `full`.
pub(super) fn delete_replication_job(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    let (force, keep) = (p.bool("force"), p.bool("keep"));
    if force && keep {
        return Err((
            400,
            json!({"keep": "conflicts with parameter 'force'"}).to_string(),
        ));
    }
    st.check_quorum(node).or_else(fail)?;
    let interval = st.latencies.default_task;
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    let id = p.str("id").to_string();
    if force {
        cfs.replication_jobs.remove(&id);
        return Ok(Value::Null);
    }
    let Some(job) = cfs.replication_jobs.get_mut(&id) else {
        return fail(format!("no such job '{id}'"));
    };
    let mode = if keep { "local" } else { "full" };
    job.insert("remove_job".into(), mode.into());
    drop(st);
    spawn_replication_removal(shared, node, id, interval);
    Ok(Value::Null)
}

/// The replication runner (pvesr, every minute in PVE; here every `interval`) removes a
/// marked job once the guest's node (`source`, when the job names it) is an online member:
/// `local` then, `full` once the target is one too (its replicas are removed there).
fn spawn_replication_removal(
    shared: &Arc<Shared>,
    node: &str,
    id: String,
    interval: std::time::Duration,
) {
    let shared = Arc::clone(shared);
    let node = node.to_string();
    let interval = interval.max(std::time::Duration::from_millis(10));
    tokio::spawn(async move {
        // Ends when the job is gone or no longer marked, or nobody else holds the site.
        while Arc::strong_count(&shared) > 1 {
            tokio::time::sleep(interval).await;
            let mut st = shared.lock();
            let Some(job) = st
                .cfs_of(&node)
                .and_then(|c| c.replication_jobs.get(&id))
                .cloned()
            else {
                return;
            };
            let Some(mode) = job.get("remove_job") else {
                return;
            };
            // The runner of the guest's node (`source`) does it; for `full` it must reach the
            // target too.
            let up = |n: Option<&String>| n.is_none_or(|n| st.reachable_member(&node, n));
            let done = up(job.get("source")) && (mode == "local" || up(job.get("target")));
            if done && st.quorate(&node) {
                if let Some(c) = st.cfs_of_mut(&node) {
                    c.replication_jobs.remove(&id);
                }
                return;
            }
        }
    });
}
