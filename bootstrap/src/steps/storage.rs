//! Storage steps: the node's data pools as zfspool storage of the cluster (this node added to
//! each pool's node list), and the replication jobs a replaced node had.

use crate::pve::{PveApi, PveError, ReplicationJob, StorageCreate};
use crate::state::Memory;
use anyhow::{bail, Context as _};

use super::{Env, Poll};

/// Makes `pool` a zfspool storage `id` that lists `node`; returns whether it changed anything.
pub(crate) fn ensure_pool_storage(
    api: &dyn PveApi,
    id: &str,
    pool: &str,
    node: &str,
) -> anyhow::Result<bool> {
    // Two nodes may widen the same list at once; read back and try again if ours got lost.
    for _ in 0..5 {
        let list = api
            .storage_list()
            .context("listing the cluster's storage")?;
        match list.iter().find(|s| s.storage == id) {
            None => {
                match api.storage_create(&StorageCreate::zfspool(id, pool, &[node.to_string()])) {
                    Ok(()) => {}
                    // Another node created it since we looked: widen its list instead.
                    Err(PveError::Api { message, .. }) if message.contains("already defined") => {
                        continue
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("adding zfspool storage {id}"))
                    }
                }
            }
            Some(s) if s.kind != "zfspool" => bail!(
                "storage {id} exists but is a {} storage, not zfspool: rename it or the pool",
                s.kind
            ),
            Some(s) if s.pool.as_deref().is_some_and(|p| p != pool) => bail!(
                "storage {id} uses pool {:?}, this node's pool is {pool}",
                s.pool
            ),
            Some(s) => match s.node_list() {
                None => return Ok(false),
                Some(nodes) if nodes.iter().any(|n| n == node) => return Ok(false),
                Some(mut nodes) => {
                    nodes.push(node.to_string());
                    nodes.sort();
                    nodes.dedup();
                    api.storage_set_nodes(id, &nodes)
                        .with_context(|| format!("adding {node} to storage {id}"))?;
                }
            },
        }
        let list = api.storage_list()?;
        if list
            .iter()
            .any(|s| s.storage == id && s.node_list().is_none_or(|n| n.iter().any(|x| x == node)))
        {
            return Ok(true);
        }
    }
    bail!("storage {id} keeps losing node {node}: another writer changes it at the same time")
}

pub(super) fn register_pools(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    for (_, pool) in env.config.data_pools() {
        // Without quorum /etc/pve is read-only: wait for it rather than fail on the write.
        // The installer registered each pool under its own name (storage.cfg seed).
        super::cluster::with_quorum(env, || {
            let api = env.connector.local()?;
            ensure_pool_storage(api.as_ref(), &pool, &pool, env.config.name())
        })?;
    }
    Ok(())
}

pub(super) fn remember_replication(env: &Env<'_>, memory: &mut Memory) -> anyhow::Result<()> {
    if memory.replication_jobs.is_some() {
        return Ok(());
    }
    let me = env.config.name();
    let peer = super::cluster::Peer::for_node(env.config)?;
    let jobs = peer
        .connect(env)?
        .replication_list()
        .context("reading the cluster's replication jobs")?;
    memory.replication_jobs = Some(
        jobs.into_iter()
            .filter(|j| j.target == me || j.source.as_deref() == Some(me))
            // A job marked for removal (while this node was dead, Proxmox could not finish
            // it) is remembered as the job it was.
            .map(|j| ReplicationJob {
                remove_job: None,
                ..j
            })
            .collect(),
    );
    Ok(())
}

pub(super) fn restore_replication(env: &Env<'_>, memory: &mut Memory) -> anyhow::Result<()> {
    let Some(jobs) = memory.replication_jobs.clone() else {
        return Ok(());
    };
    // A remembered job still listed but marked for removal goes away as soon as Proxmox's
    // replication runner reaches this node again: taking it for present would lose it. Wait
    // for the runner to finish (it runs every minute), then re-create it.
    env.wait_for(
        "Proxmox to finish removing this node's replication jobs marked for removal",
        env.timing.task.timeout,
        || {
            let existing = match env.connector.local()?.replication_list() {
                Ok(e) => e,
                Err(e) if e.is_transient() => return Ok(Poll::Pending(e.to_string())),
                Err(e) => return Err(e.into()),
            };
            let marked: Vec<&str> = existing
                .iter()
                .filter(|e| e.remove_job.is_some() && jobs.iter().any(|j| j.id == e.id))
                .map(|e| e.id.as_str())
                .collect();
            Ok(if marked.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} marked for removal", marked.join(", ")))
            })
        },
    )?;
    super::cluster::with_quorum(env, || {
        let api = env.connector.local()?;
        let existing = api.replication_list()?;
        for job in &jobs {
            if existing.iter().any(|e| e.id == job.id) {
                continue;
            }
            api.replication_create(job).with_context(|| {
                format!("re-creating replication job {} to {}", job.id, job.target)
            })?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pve::{MockPveApi, StorageEntry};
    use std::sync::{Arc, Mutex};

    fn entry(nodes: Option<&str>) -> StorageEntry {
        StorageEntry {
            storage: "tank1".into(),
            kind: "zfspool".into(),
            pool: Some("tank1".into()),
            nodes: nodes.map(String::from),
            content: Some("images,rootdir".into()),
        }
    }

    #[test]
    fn creates_widens_or_leaves_alone() {
        // Missing: created with this node only.
        let stored = Arc::new(Mutex::new(Vec::<StorageEntry>::new()));
        let mut api = MockPveApi::new();
        let s = stored.clone();
        api.expect_storage_list()
            .returning(move || Ok(s.lock().unwrap().clone()));
        let s = stored.clone();
        api.expect_storage_create().times(1).returning(move |req| {
            let get = |k: &str| {
                req.params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(get("type").as_deref(), Some("zfspool"));
            assert_eq!(get("content").as_deref(), Some("images,rootdir"));
            s.lock().unwrap().push(StorageEntry {
                storage: get("storage").unwrap(),
                kind: "zfspool".into(),
                pool: get("pool"),
                nodes: get("nodes"),
                content: get("content"),
            });
            Ok(())
        });
        assert!(ensure_pool_storage(&api, "tank1", "tank1", "tappaas2").unwrap());

        // Present for another node: widened, sorted.
        let stored = Arc::new(Mutex::new(vec![entry(Some("tappaas2"))]));
        let mut api = MockPveApi::new();
        let s = stored.clone();
        api.expect_storage_list()
            .returning(move || Ok(s.lock().unwrap().clone()));
        let s = stored.clone();
        api.expect_storage_set_nodes()
            .times(1)
            .returning(move |id, nodes| {
                assert_eq!(id, "tank1");
                assert_eq!(nodes, ["tappaas1".to_string(), "tappaas2".to_string()]);
                s.lock().unwrap()[0].nodes = Some(nodes.join(","));
                Ok(())
            });
        assert!(ensure_pool_storage(&api, "tank1", "tank1", "tappaas1").unwrap());

        // Already listed, or for all nodes: nothing is written.
        for nodes in [Some("tappaas1,tappaas2"), None] {
            let mut api = MockPveApi::new();
            api.expect_storage_list()
                .returning(move || Ok(vec![entry(nodes)]));
            assert!(!ensure_pool_storage(&api, "tank1", "tank1", "tappaas1").unwrap());
        }
    }

    #[test]
    fn a_storage_another_node_created_meanwhile_is_widened() {
        let stored = Arc::new(Mutex::new(Vec::<StorageEntry>::new()));
        let mut api = MockPveApi::new();
        let s = stored.clone();
        api.expect_storage_list()
            .returning(move || Ok(s.lock().unwrap().clone()));
        let s = stored.clone();
        api.expect_storage_create().times(1).returning(move |_| {
            // The other node won the race.
            s.lock().unwrap().push(entry(Some("tappaas1")));
            Err(PveError::Api {
                method: "POST".into(),
                path: "/storage".into(),
                status: 500,
                message: "create storage failed: storage ID 'tank1' already defined".into(),
                errors: Default::default(),
            })
        });
        let s = stored.clone();
        api.expect_storage_set_nodes()
            .times(1)
            .returning(move |_, nodes| {
                s.lock().unwrap()[0].nodes = Some(nodes.join(","));
                Ok(())
            });
        assert!(ensure_pool_storage(&api, "tank1", "tank1", "tappaas2").unwrap());
        assert_eq!(
            stored.lock().unwrap()[0].nodes.as_deref(),
            Some("tappaas1,tappaas2")
        );
    }

    #[test]
    fn refuses_a_storage_of_another_kind() {
        let mut api = MockPveApi::new();
        api.expect_storage_list().returning(|| {
            Ok(vec![StorageEntry {
                kind: "dir".into(),
                ..entry(None)
            }])
        });
        let err = ensure_pool_storage(&api, "tank1", "tank1", "tappaas1").unwrap_err();
        assert!(err.to_string().contains("is a dir storage"), "{err}");
    }
}
