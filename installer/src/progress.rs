//! One stream of progress events, rendered three ways: a redrawn status line on a terminal,
//! plain lines for a serial console or the journal, and JSON lines on `--progress-fd` for
//! programs (the TUI, the qemu lab). The format of the JSON lines is documented in
//! `docs/progress-json.md` and versioned by [`PROGRESS_SCHEMA`].

use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// Version of the JSON-lines format.
pub const PROGRESS_SCHEMA: u32 = 1;

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The step did its work.
    Done,
    /// Nothing to do (already done by an earlier run, or not applicable), with the reason.
    Skipped {
        /// Why.
        reason: String,
    },
    /// The step failed; the install stops.
    Failed {
        /// The error with its context chain, outermost first.
        error: String,
    },
}

/// The unit of a progress count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Bytes.
    Bytes,
    /// Files.
    Files,
    /// Anything counted (disks, pools).
    Items,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Informational.
    Info,
    /// Something the user should notice (e.g. a step skipped because the root image lacks a
    /// Proxmox tool).
    Notice,
    /// A problem that did not stop the install.
    Warning,
}

/// One thing that happened during an install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The install begins: which node, and every step in order.
    Started {
        /// Node name.
        node: String,
        /// Step ids in order.
        steps: Vec<String>,
    },
    /// A step begins.
    StepStarted {
        /// Step id (as in the plan).
        step: String,
        /// 1-based position.
        index: usize,
        /// Number of steps.
        total: usize,
        /// What it does.
        description: String,
    },
    /// Progress inside a long step.
    StepProgress {
        /// Step id.
        step: String,
        /// Done so far.
        done: u64,
        /// Total, when known.
        total: Option<u64>,
        /// What is counted.
        unit: Unit,
    },
    /// A line for the log pane.
    Log {
        /// Step id, if the line belongs to a step.
        step: Option<String>,
        /// Severity.
        level: Level,
        /// The message (never a secret).
        message: String,
    },
    /// A step ended.
    StepFinished {
        /// Step id.
        step: String,
        /// How it ended.
        #[serde(flatten)]
        outcome: Outcome,
        /// Wall time in milliseconds.
        duration_ms: u64,
    },
    /// The install ended.
    Finished {
        /// How it ended.
        #[serde(flatten)]
        outcome: Outcome,
        /// Wall time in milliseconds.
        duration_ms: u64,
    },
}

/// Something that consumes events.
pub trait Sink {
    /// Handles one event. Rendering errors (a closed pipe) must not stop the install, so
    /// sinks swallow them.
    fn event(&mut self, e: &Event);
}

/// Sends every event to several sinks.
#[derive(Default)]
pub struct Fanout {
    sinks: Vec<Box<dyn Sink + Send>>,
}

impl Fanout {
    /// An empty fan-out.
    pub fn new() -> Fanout {
        Fanout::default()
    }
    /// Adds a sink.
    pub fn with(mut self, s: Box<dyn Sink + Send>) -> Fanout {
        self.sinks.push(s);
        self
    }
}

impl Sink for Fanout {
    fn event(&mut self, e: &Event) {
        for s in &mut self.sinks {
            s.event(e);
        }
    }
}

/// A clock for timestamps, replaceable in tests.
pub trait Clock: Send {
    /// Milliseconds since the stream started.
    fn elapsed_ms(&self) -> u64;
}

/// The real clock.
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    /// Starts now.
    pub fn start() -> MonotonicClock {
        MonotonicClock(Instant::now())
    }
}

impl Clock for MonotonicClock {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// JSON lines: one object per event, `{"v":1,"t_ms":...,"event":"...",...}`, flushed per line
/// so a reader sees each event as it happens.
pub struct JsonLines<W: Write> {
    out: W,
    clock: Box<dyn Clock>,
}

impl<W: Write> JsonLines<W> {
    /// Writes to `out`, stamping with `clock`.
    pub fn new(out: W, clock: Box<dyn Clock>) -> JsonLines<W> {
        JsonLines { out, clock }
    }
    /// The writer back (tests).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[derive(Serialize)]
struct Stamped<'a> {
    v: u32,
    t_ms: u64,
    #[serde(flatten)]
    e: &'a Event,
}

impl<W: Write + Send> Sink for JsonLines<W> {
    fn event(&mut self, e: &Event) {
        let line = Stamped {
            v: PROGRESS_SCHEMA,
            t_ms: self.clock.elapsed_ms(),
            e,
        };
        if let Ok(mut s) = serde_json::to_string(&line) {
            s.push('\n');
            let _ = self.out.write_all(s.as_bytes());
            let _ = self.out.flush();
        }
    }
}

fn percent(done: u64, total: Option<u64>) -> Option<u64> {
    let t = total?;
    (t > 0).then(|| (done.min(t) * 100) / t)
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Done => "done".into(),
        Outcome::Skipped { reason } => format!("skipped ({reason})"),
        Outcome::Failed { error } => format!("FAILED: {error}"),
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}

/// Plain lines, one per event that matters, for a serial console or a log file. Progress is
/// printed only at each further 10%, so a slow console is not flooded.
pub struct PlainLines<W: Write> {
    out: W,
    last_decile: Option<(String, u64)>,
}

impl<W: Write> PlainLines<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> PlainLines<W> {
        PlainLines {
            out,
            last_decile: None,
        }
    }
    /// The writer back (tests).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The plain-text line for an event, if it gets one (shared by the line renderers).
fn plain(e: &Event) -> Option<String> {
    Some(match e {
        Event::Started { node, steps } => {
            format!("installing node {node}: {} steps", steps.len())
        }
        Event::StepStarted {
            index,
            total,
            description,
            ..
        } => format!("[{index}/{total}] {description}"),
        Event::StepProgress { .. } => return None,
        Event::Log { level, message, .. } => match level {
            Level::Info => format!("  {message}"),
            Level::Notice => format!("  notice: {message}"),
            Level::Warning => format!("  warning: {message}"),
        },
        Event::StepFinished {
            step,
            outcome,
            duration_ms,
        } => format!(
            "  {step}: {} in {}",
            outcome_text(outcome),
            seconds(*duration_ms)
        ),
        Event::Finished {
            outcome,
            duration_ms,
        } => format!(
            "install {} after {}",
            outcome_text(outcome),
            seconds(*duration_ms)
        ),
    })
}

impl<W: Write + Send> Sink for PlainLines<W> {
    fn event(&mut self, e: &Event) {
        if let Event::StepProgress {
            step,
            done,
            total,
            unit,
        } = e
        {
            let Some(p) = percent(*done, *total) else {
                return;
            };
            let decile = p / 10;
            let seen = matches!(&self.last_decile, Some((s, d)) if s == step && *d >= decile);
            if !seen && decile > 0 {
                self.last_decile = Some((step.clone(), decile));
                let _ = writeln!(
                    self.out,
                    "  {step}: {}% ({done} of {} {})",
                    decile * 10,
                    total.unwrap_or(0),
                    unit_name(*unit)
                );
            }
            return;
        }
        if let Some(line) = plain(e) {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }
}

fn unit_name(u: Unit) -> &'static str {
    match u {
        Unit::Bytes => "bytes",
        Unit::Files => "files",
        Unit::Items => "items",
    }
}

/// On a terminal: the same lines as [`PlainLines`], but progress inside a step redraws one
/// status line (`\r` + clear to end of line) with a text bar, so the screen does not scroll.
pub struct TtyLine<W: Write> {
    out: W,
    status_shown: bool,
    width: usize,
}

impl<W: Write> TtyLine<W> {
    /// Writes to `out`, bar lines at most `width` columns.
    pub fn new(out: W, width: usize) -> TtyLine<W> {
        TtyLine {
            out,
            status_shown: false,
            width: width.max(40),
        }
    }
    /// The writer back (tests).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `step [#####.....]  50%`: the bar uses ASCII so it works on every console font.
fn bar_line(step: &str, done: u64, total: Option<u64>, width: usize) -> String {
    match percent(done, total) {
        Some(p) => {
            let cells = width.saturating_sub(step.len() + 10).clamp(10, 50);
            let filled = (cells as u64 * p / 100) as usize;
            format!(
                "  {step} [{}{}] {p:>3}%",
                "#".repeat(filled),
                ".".repeat(cells - filled)
            )
        }
        None => format!("  {step}: {done}"),
    }
}

impl<W: Write + Send> Sink for TtyLine<W> {
    fn event(&mut self, e: &Event) {
        if let Event::StepProgress {
            step, done, total, ..
        } = e
        {
            let _ = write!(
                self.out,
                "\r\x1b[K{}",
                bar_line(step, *done, *total, self.width)
            );
            let _ = self.out.flush();
            self.status_shown = true;
            return;
        }
        if let Some(line) = plain(e) {
            if self.status_shown {
                let _ = write!(self.out, "\r\x1b[K");
                self.status_shown = false;
            }
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u64);
    impl Clock for Fixed {
        fn elapsed_ms(&self) -> u64 {
            self.0
        }
    }

    fn script() -> Vec<Event> {
        vec![
            Event::Started {
                node: "tappaas1".into(),
                steps: vec!["preflight".into(), "root".into()],
            },
            Event::StepStarted {
                step: "root".into(),
                index: 2,
                total: 2,
                description: "extract the root".into(),
            },
            Event::StepProgress {
                step: "root".into(),
                done: 5,
                total: Some(100),
                unit: Unit::Files,
            },
            Event::StepProgress {
                step: "root".into(),
                done: 55,
                total: Some(100),
                unit: Unit::Files,
            },
            Event::StepProgress {
                step: "root".into(),
                done: 57,
                total: Some(100),
                unit: Unit::Files,
            },
            Event::Log {
                step: Some("root".into()),
                level: Level::Notice,
                message: "no proxmox-boot-tool in the image".into(),
            },
            Event::StepFinished {
                step: "root".into(),
                outcome: Outcome::Done,
                duration_ms: 1500,
            },
            Event::Finished {
                outcome: Outcome::Failed {
                    error: "writing GPT: no space".into(),
                },
                duration_ms: 2000,
            },
        ]
    }

    #[test]
    fn json_lines_are_versioned_and_flat() {
        let mut s = JsonLines::new(Vec::new(), Box::new(Fixed(42)));
        for e in script() {
            s.event(&e);
        }
        let text = String::from_utf8(s.into_inner()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[0]["v"], 1);
        assert_eq!(lines[0]["t_ms"], 42);
        assert_eq!(lines[0]["event"], "started");
        assert_eq!(lines[2]["event"], "step-progress");
        assert_eq!(lines[2]["unit"], "files");
        assert_eq!(lines[6]["event"], "step-finished");
        assert_eq!(lines[6]["outcome"], "done");
        assert_eq!(lines[7]["outcome"], "failed");
        assert_eq!(lines[7]["error"], "writing GPT: no space");
    }

    #[test]
    fn plain_lines_print_progress_per_decile_only() {
        let mut s = PlainLines::new(Vec::new());
        for e in script() {
            s.event(&e);
        }
        let text = String::from_utf8(s.into_inner()).unwrap();
        assert_eq!(
            text,
            "installing node tappaas1: 2 steps\n\
             [2/2] extract the root\n  \
             root: 50% (55 of 100 files)\n  \
             notice: no proxmox-boot-tool in the image\n  \
             root: done in 1.5s\n\
             install FAILED: writing GPT: no space after 2.0s\n"
        );
    }

    #[test]
    fn tty_redraws_one_status_line_and_clears_it_before_text() {
        let mut s = TtyLine::new(Vec::new(), 40);
        for e in script() {
            s.event(&e);
        }
        let text = String::from_utf8(s.into_inner()).unwrap();
        // 40 columns leave 26 cells for the bar: 55% fills 14 of them.
        assert!(text.contains("\r\x1b[K  root [##############............]  55%"));
        assert!(text.contains("\r\x1b[K  root [#.........................]   5%"));
        // The notice comes after the status line has been cleared.
        assert!(text.contains("\r\x1b[K  notice: no proxmox-boot-tool in the image\n"));
    }

    #[test]
    fn fanout_reaches_every_sink() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Count(Arc<Mutex<usize>>);
        impl Sink for Count {
            fn event(&mut self, _: &Event) {
                *self.0.lock().unwrap() += 1;
            }
        }
        let a = Count::default();
        let b = Count::default();
        let mut f = Fanout::new()
            .with(Box::new(a.clone()))
            .with(Box::new(b.clone()));
        for e in script() {
            f.event(&e);
        }
        assert_eq!(*a.0.lock().unwrap(), 8);
        assert_eq!(*b.0.lock().unwrap(), 8);
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// Every event name and field the JSON lines can carry is in docs/progress-json.md.
    #[test]
    fn progress_json_doc_names_every_field() {
        let doc = include_str!("../../docs/progress-json.md");
        let events = [
            Event::Started {
                node: "n".into(),
                steps: vec![],
            },
            Event::StepStarted {
                step: "s".into(),
                index: 1,
                total: 1,
                description: "d".into(),
            },
            Event::StepProgress {
                step: "s".into(),
                done: 1,
                total: Some(2),
                unit: Unit::Bytes,
            },
            Event::Log {
                step: None,
                level: Level::Info,
                message: "m".into(),
            },
            Event::StepFinished {
                step: "s".into(),
                outcome: Outcome::Skipped { reason: "r".into() },
                duration_ms: 1,
            },
            Event::Finished {
                outcome: Outcome::Failed { error: "e".into() },
                duration_ms: 1,
            },
        ];
        let mut s = JsonLines::new(Vec::new(), Box::new(MonotonicClock::start()));
        for e in &events {
            s.event(e);
        }
        let text = String::from_utf8(s.into_inner()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            for (k, val) in v.as_object().unwrap() {
                assert!(doc.contains(&format!("`{k}`")), "field {k} undocumented");
                if k == "event" || k == "outcome" || k == "unit" || k == "level" {
                    let name = val.as_str().unwrap();
                    assert!(
                        doc.contains(&format!("`{name}`")),
                        "value {name} undocumented"
                    );
                }
            }
        }
    }
}
