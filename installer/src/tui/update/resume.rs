//! The resume screen: an install started in this live session was cut off (the installer
//! quit, crashed or lost its terminal; the step failed). Its journal and the site it ran from
//! are kept (`frontdoor::RunFiles`); this screen offers to go on with the plan the user
//! consented to, as `tappaas-installer install --site` does on a rerun. A fresh plan would
//! see the partial install on the disks as data.

use super::super::state::{Screen, State};
use super::answers::{fill_fields, replan};
use super::go;
use crate::frontdoor::Interrupted;

/// At start: show the resume screen for `found`.
pub fn offer(s: &mut State, found: Interrupted) {
    s.resume = Some(found);
    go(s, Screen::Resume);
}

/// Enter on the resume screen: the interrupted install's site and plan become the answers,
/// and the user confirms with the host name, as before any install.
pub(super) fn resume_next(s: &mut State) {
    let Some(r) = &s.resume else {
        go(s, Screen::Welcome);
        return;
    };
    let Some(index) = r.site.nodes.iter().position(|n| n.name == r.journal.node) else {
        // The journal's site hash matched the kept site, so its node is there; be safe.
        s.errors = vec![format!(
            "the interrupted install was of node {}, which its site does not have",
            r.journal.node
        )];
        return;
    };
    let (site, plan) = (r.site.clone(), r.journal.plan.clone());
    s.site = site;
    s.node = index;
    s.disk_roles = None;
    fill_fields(s);
    s.plan = Ok(plan);
    s.fields.confirm.text.clear();
    go(s, Screen::Confirm);
}

/// Esc on the resume screen: forget the interrupted install and start from the welcome
/// screen. The disks hold the partial install, so a new plan needs consent to erase them.
pub(super) fn start_afresh(s: &mut State) {
    s.resume = None;
    replan(s);
    go(s, Screen::Welcome);
    s.notice = Some(
        "Starting afresh. The disks hold the interrupted install: allow erasing them on the \
         disks screen (w)."
            .into(),
    );
}
