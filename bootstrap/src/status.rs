//! `tappaas-bootstrap status [--json]`: each step, its state, timings and last error.

use crate::state::{State, StepState};
use std::fmt::Write as _;

/// The human-readable status.
pub fn render_text(state: &State, done_marker: bool) -> String {
    let mut out = String::new();
    let done = state
        .steps
        .iter()
        .filter(|s| s.state == StepState::Done)
        .count();
    let _ = writeln!(
        out,
        "first boot of {} ({}): {done} of {} steps done{}",
        state.node,
        state.role,
        state.steps.len(),
        if done_marker { ", finished" } else { "" }
    );
    let width = state.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &state.steps {
        let mut line = format!(
            "  {:<7}  {:<width$}  {}",
            s.state.as_str(),
            s.name,
            s.description
        );
        if let Some(t) = &s.started_at {
            let _ = write!(line, "\n           started {t}");
            if let Some(ms) = s.duration_ms {
                let _ = write!(line, ", took {:.1}s", ms as f64 / 1000.0);
            }
            let _ = write!(line, ", attempt {}", s.attempts);
        }
        if let Some(e) = &s.last_error {
            let _ = write!(line, "\n           last error: {e}");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The JSON status (docs/first-boot.md): the state file plus `finished`.
pub fn render_json(state: &State, done_marker: bool) -> serde_json::Result<String> {
    let mut v = serde_json::to_value(state)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("finished".into(), serde_json::Value::Bool(done_marker));
        // Internal memory (replication jobs of a replaced node) is not part of the status.
        o.remove("memory");
    }
    serde_json::to_string_pretty(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Memory, StepRecord, STATE_FORMAT};

    #[test]
    fn shows_states_timings_and_errors() {
        let state = State {
            format: STATE_FORMAT,
            node: "tappaas2".into(),
            role: "member".into(),
            steps: vec![
                StepRecord {
                    name: "check-network".into(),
                    description: "bridge lan up".into(),
                    state: StepState::Done,
                    started_at: Some("2026-11-24T15:00:00Z".into()),
                    finished_at: Some("2026-11-24T15:00:01Z".into()),
                    duration_ms: Some(1200),
                    attempts: 1,
                    last_error: None,
                },
                StepRecord {
                    name: "join-cluster".into(),
                    description: "join".into(),
                    state: StepState::Failed,
                    attempts: 2,
                    started_at: Some("2026-11-24T15:01:00Z".into()),
                    last_error: Some("cannot reach https://10.0.0.10:8006".into()),
                    ..Default::default()
                },
            ],
            memory: Memory::default(),
        };
        let text = render_text(&state, false);
        assert!(
            text.starts_with("first boot of tappaas2 (member): 1 of 2 steps done\n"),
            "{text}"
        );
        assert!(text.contains("  done     check-network  bridge lan up\n           started 2026-11-24T15:00:00Z, took 1.2s, attempt 1\n"), "{text}");
        assert!(text.contains("last error: cannot reach"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&state, false).unwrap()).unwrap();
        assert_eq!(json["steps"][1]["state"], "failed");
        assert_eq!(json["steps"][1]["attempts"], 2);
        assert_eq!(json["finished"], false);
        assert!(json.get("memory").is_none());
    }
}
