//! `/access`: tickets, passwords, API tokens.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{fail, Handled, Params, Shared};
use crate::formats::parse_bool;

pub(super) fn login(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let st = shared.lock();
    let mut username = p.str("username").to_string();
    if !username.contains('@') {
        username = format!("{username}@{}", p.get("realm").unwrap_or("pam"));
    }
    let password = p.str("password");
    let n = st
        .nodes
        .get(node)
        .ok_or((500, "no such node".to_string()))?;
    let ok = if password.starts_with("PVE:") {
        st.verify_ticket(node, password).as_deref() == Some(username.as_str())
    } else {
        username == "root@pam" && password == n.root_password
    };
    if !ok {
        return Err((401, "authentication failure".into()));
    }
    let (ticket, csrf) = st
        .issue_ticket(node, &username)
        .ok_or((500, "no such node".to_string()))?;
    let mut out = json!({"username": username, "ticket": ticket, "CSRFPreventionToken": csrf});
    if let Some(c) = st.cfs_of(node).and_then(|c| c.cluster.as_ref()) {
        out["clustername"] = json!(c.name);
    }
    Ok(out)
}

pub(super) fn change_password(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    if p.str("userid") != "root@pam" {
        return fail(format!("no such user ('{}')", p.str("userid")));
    }
    let n = st
        .nodes
        .get_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if let Some(confirm) = p.get("confirmation-password") {
        if confirm != n.root_password {
            return Err((401, "authentication failure".into()));
        }
    }
    // root@pam is a PAM user: the password is /etc/shadow of the node answering.
    n.root_password = p.str("password").to_string();
    Ok(Value::Null)
}

pub(super) fn create_token(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let userid = p.str("userid");
    if userid != "root@pam" {
        return fail(format!("no such user ('{userid}')"));
    }
    let full = format!("{userid}!{}", p.str("tokenid"));
    let privsep = p.get("privsep").and_then(parse_bool).unwrap_or(true);
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if cfs.tokens.contains_key(&full) {
        return fail("Token already exists.");
    }
    let value = uuid::Uuid::new_v4().to_string();
    cfs.tokens.insert(full.clone(), (value.clone(), privsep));
    let mut info = json!({"privsep": u8::from(privsep)});
    if let Some(c) = p.get("comment") {
        info["comment"] = json!(c);
    }
    if let Some(e) = p.u32("expire") {
        info["expire"] = json!(e);
    }
    Ok(json!({"full-tokenid": full, "info": info, "value": value}))
}

pub(super) fn delete_token(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    st.check_quorum(node).or_else(fail)?;
    let full = format!("{}!{}", p.str("userid"), p.str("tokenid"));
    let cfs = st
        .cfs_of_mut(node)
        .ok_or((500, "no such node".to_string()))?;
    if cfs.tokens.remove(&full).is_none() {
        return fail(format!(
            "no such token '{}' for user '{}'",
            p.str("tokenid"),
            p.str("userid")
        ));
    }
    Ok(Value::Null)
}
