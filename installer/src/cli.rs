//! Command-line front end: argument parsing and dispatch. Each subcommand is a few lines that
//! call into the library and choose an exit code.
//!
//! Exit codes: 0 success, 1 the input is wrong (invalid site, site does not fit the machine)
//! or the install failed, 2 usage error or an environment failure (unreadable file, no such
//! profile, `install` without `--yes` and without a terminal).

use crate::exec::RealHost;
use crate::install::{self, InstallContext, Machine};
use crate::inventory::Inventory;
use crate::plan::{self, Hints, Plan};
use crate::progress::{Fanout, JsonLines, MonotonicClock, PlainLines, TtyLine};
use crate::{frontdoor, probe, profile};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// TAPPaaS installer: probe the hardware, check a site file, show the install plan.
///
/// Without a subcommand, on a terminal, the guided installer starts (docs/tui.md).
#[derive(Debug, Parser)]
#[command(name = "tappaas-installer", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (none: the guided installer).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The guided installer's options.
    #[command(flatten)]
    pub tui: TuiArgs,
}

/// The guided installer (no subcommand).
#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Run the guided installer on this hardware profile's fixture with the dry-run host:
    /// every screen works, nothing on this machine is touched.
    #[arg(long, value_name = "PROFILE")]
    pub simulate: Option<String>,
    /// With --simulate only: probe this root directory (a capture or a fixture) instead of the
    /// profile's fixture; its NICs' carrier files are watched for cables plugged in. (A real
    /// install always probes the live system.)
    #[arg(long, value_name = "DIR", requires = "simulate")]
    pub root: Option<PathBuf>,
    /// Draw with ASCII only (automatic with TERM=linux, vt100-like and dumb terminals).
    #[arg(long)]
    pub ascii: bool,
    /// The payload directory of a real install, holding manifest.toml [default: payload]
    #[arg(long, value_name = "DIR", conflicts_with = "simulate")]
    pub payload: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show this machine's hardware: disks, NICs, CPU, memory, firmware.
    Probe(ProbeArgs),
    /// Check a site file and report every error at once.
    Validate(ValidateArgs),
    /// Show exactly what an install of one node would do. Writes nothing.
    Plan(PlanArgs),
    /// Install this machine's node from the site file: erases the planned disks.
    Install(InstallArgs),
    /// List the known hardware profiles.
    Profiles,
    /// Print a [cluster] table with a fresh join secret and the primary's certificate and key.
    ///
    /// With it a multi-node site file is complete: no node needs a manual step, and the
    /// primary's fingerprint is known before it is installed (docs/first-boot.md). The
    /// certificate is ECDSA P-256, self-signed, valid for 10 years.
    ///
    /// The output holds secrets: redirect it into the site file (or a file only you can read)
    /// and keep that file like a key until the site is up. Nothing secret goes to stderr.
    JoinKeys(JoinKeysArgs),
    /// Print generated reference documentation.
    Docs {
        /// Which document: `site-file` or `cli`.
        #[arg(value_parser = ["site-file", "cli"])]
        which: String,
    },
}

/// `probe`
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Read the machine from this root directory instead of `/` (a capture or a fixture).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Read the fixture of this hardware profile (see `profiles`).
    #[arg(long, value_name = "NAME", conflicts_with = "root")]
    pub profile: Option<String>,
    /// Print the inventory as JSON (schema: docs/probe-json.md).
    #[arg(long)]
    pub json: bool,
    /// Copy the files probe reads into DIR, for a bug report; replay with `--root DIR`.
    #[arg(long, value_name = "DIR", conflicts_with = "profile")]
    pub capture: Option<PathBuf>,
}

/// `validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The site file.
    #[arg(value_name = "SITE.toml")]
    pub site: PathBuf,
    /// Print the diagnostics as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `join-keys`
#[derive(Debug, Args)]
pub struct JoinKeysArgs {
    /// Also set the cluster's name (at most 15 letters, digits and `-`) [default: the site's
    /// default, TAPPaaS]
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// The primary's management address, written into its certificate.
    #[arg(long, value_name = "IP", default_value = "10.0.0.10")]
    pub primary_address: std::net::Ipv4Addr,
    /// The primary's host name, written into its certificate.
    #[arg(long, value_name = "NAME", default_value = "tappaas1")]
    pub primary_name: String,
}

/// `plan`
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The site file.
    #[arg(long, value_name = "SITE.toml")]
    pub site: PathBuf,
    /// The node to plan (default: the node that identifies this machine).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Read the machine from this root directory (a capture or a fixture).
    #[arg(long, value_name = "DIR", conflicts_with = "profile")]
    pub root: Option<PathBuf>,
    /// Plan against this hardware profile's fixture.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `install`
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The site file.
    #[arg(long, value_name = "SITE.toml")]
    pub site: PathBuf,
    /// The node to install (default: the node that identifies this machine).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The payload directory, holding manifest.toml [default: payload/ beside the site file]
    #[arg(long, value_name = "DIR")]
    pub payload: Option<PathBuf>,
    /// Install without showing the plan and asking for the host name first.
    #[arg(long)]
    pub yes: bool,
    /// Also write progress as JSON lines (docs/progress-json.md) to this open descriptor.
    #[arg(long, value_name = "N")]
    pub progress_fd: Option<u32>,
    /// Print every command and file write the install would make, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After a failure, leave the pools imported and the target mounted for debugging.
    #[arg(long)]
    pub keep_on_error: bool,
    /// With --dry-run only: probe the machine from this root directory (a capture or a
    /// fixture) instead of `/`. A real install always probes the live system, so consent and
    /// the mounted and boot-medium checks see the disks it writes.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "profile",
        requires = "dry_run"
    )]
    pub root: Option<PathBuf>,
    /// Where the new root is assembled (the pools' altroot).
    #[arg(long, value_name = "DIR", default_value = install::DEFAULT_TARGET)]
    pub target: PathBuf,
    /// With --dry-run only: plan against this hardware profile's fixture.
    #[arg(long, value_name = "NAME", requires = "dry_run")]
    pub profile: Option<String>,
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let Some(command) = cli.command else {
        return cmd_tui(cli.tui);
    };
    match command {
        Command::Probe(a) => cmd_probe(a),
        Command::Validate(a) => cmd_validate(a),
        Command::Plan(a) => cmd_plan(a),
        Command::Install(a) => cmd_install(a),
        Command::JoinKeys(a) => cmd_join_keys(a),
        Command::Profiles => {
            for p in profile::profiles() {
                println!("{:<24} {}", p.id, p.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Docs { which } => {
            match which.as_str() {
                "site-file" => print!("{}", tappaas_site::docs::reference_markdown()),
                _ => print!("{}", cli_reference()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cmd_join_keys(a: JoinKeysArgs) -> Result<ExitCode> {
    use crate::joinkeys;
    let keys = joinkeys::generate(&joinkeys::PrimaryId {
        name: a.primary_name,
        address: a.primary_address,
    })?;
    let text = joinkeys::snippet(&keys, a.cluster_name.as_deref())?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to standard output")?;
    // Only the public half goes to the terminal's other stream.
    eprintln!(
        "made a join secret and the primary's certificate (fingerprint {}); the [cluster] table \
         on standard output holds secrets: keep it like a key",
        keys.fingerprint
    );
    Ok(ExitCode::SUCCESS)
}

/// The CLI reference in Markdown, generated from the clap definitions (docs/cli.md).
pub fn cli_reference() -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = String::from(
        "# tappaas-installer command line\n\n<!-- Generated by `tappaas-installer docs cli`; do not edit. -->\n\n",
    );
    out.push_str("```text\n");
    out.push_str(&cmd.render_long_help().to_string());
    out.push_str("```\n");
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        if let Some(sub) = cmd.find_subcommand_mut(&name) {
            out.push_str(&format!("\n## {name}\n\n```text\n"));
            out.push_str(&sub.render_long_help().to_string());
            out.push_str("```\n");
        }
    }
    out
}

/// No subcommand: the guided installer, which needs a terminal on both ends.
fn cmd_tui(a: TuiArgs) -> Result<ExitCode> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        use clap::CommandFactory;
        eprint!("{}", Cli::command().render_help());
        eprintln!(
            "\nerror: the guided installer needs a terminal (standard input and output); \
             give a subcommand, e.g. `install --site SITE.toml`, to install without one"
        );
        return Ok(ExitCode::from(2));
    }
    crate::tui::run(&crate::tui::Options {
        simulate: a.simulate,
        root: a.root,
        ascii: a.ascii,
        payload: a.payload,
        run_dir: None,
    })
}

fn cmd_probe(a: ProbeArgs) -> Result<ExitCode> {
    if let Some(dest) = &a.capture {
        let root = a.root.as_deref().unwrap_or(Path::new("/"));
        let report = probe::capture(root, dest)
            .with_context(|| format!("capturing {} into {}", root.display(), dest.display()))?;
        eprintln!(
            "captured {} files, {} links, {} directories ({} bytes) into {}; replay with \
             `tappaas-installer probe --root {}`",
            report.files,
            report.links,
            report.dirs,
            report.bytes,
            dest.display(),
            dest.display()
        );
    }
    let inv = frontdoor::read_machine(a.root.as_deref(), a.profile.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&inv)?);
    } else {
        print!("{}", probe::render_human(&inv));
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_validate(a: ValidateArgs) -> Result<ExitCode> {
    let src = frontdoor::read_site(&a.site)?;
    let file = a.site.display().to_string();
    let (site, diags) = tappaas_site::parse_with_warnings(&src, &frontdoor::parse_options());
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "file": file,
                "valid": site.is_some(),
                "diagnostics": diags,
            }))?
        );
    } else {
        if !diags.is_empty() {
            eprint!("{}", tappaas_site::render_with_source(&diags, &file, &src));
        }
        if let Some(site) = &site {
            let n = site.nodes.len();
            println!("{file}: valid, {n} node{}", if n == 1 { "" } else { "s" });
        }
    }
    Ok(if site.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads and validates a site file: (source, file name, site). An invalid file prints every
/// diagnostic with its source line and `consequence`, and gives exit code 1.
fn load_site(
    path: &Path,
    consequence: &str,
) -> Result<Result<(String, String, tappaas_site::Site), ExitCode>> {
    let src = frontdoor::read_site(path)?;
    let file = path.display().to_string();
    match frontdoor::parse_site(&src) {
        Ok(site) => Ok(Ok((src, file, site))),
        Err(diags) => {
            eprint!("{}", tappaas_site::render_with_source(&diags, &file, &src));
            eprintln!("{file}: invalid site file; {consequence}");
            Ok(Err(ExitCode::from(1)))
        }
    }
}

/// [`frontdoor::resolve_node`]; when no single node fits, prints why and gives exit code 1.
fn resolve_node(
    inv: &Inventory,
    site: &tappaas_site::Site,
    node: Option<&str>,
    file: &str,
) -> Result<(plan::NodeChoice, Hints), ExitCode> {
    frontdoor::resolve_node(inv, site, node).map_err(|e| {
        eprint!("{}", e.render(file));
        ExitCode::from(1)
    })
}

fn cmd_plan(a: PlanArgs) -> Result<ExitCode> {
    let (_, file, site) = match load_site(&a.site, "nothing planned")? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    // Without --root or --profile, a node that names its profile plans against that profile's
    // fixture: the shipped examples then plan on any machine, touching nothing.
    let named_profile = match (&a.root, &a.profile, &a.node) {
        (None, None, Some(n)) => site
            .nodes
            .iter()
            .find(|x| &x.name == n)
            .and_then(|x| x.profile.clone()),
        _ => None,
    };
    let fixture_profile = a.profile.clone().or(named_profile);
    let inv = frontdoor::read_machine(a.root.as_deref(), fixture_profile.as_deref())?;
    let (choice, hints) = match resolve_node(&inv, &site, a.node.as_deref(), &file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let node = &site.nodes[choice.index];
    match plan::plan(&inv, &site, &choice, &hints) {
        Ok(p) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print!("{}", plan::render_human(&p));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            }
            eprint!("{}", e.render(&file));
            eprintln!(
                "{file}: node {} does not fit this machine ({} problem{}); nothing planned",
                node.name,
                e.problems.len(),
                if e.problems.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Opens the caller's descriptor `fd` as a file (the workspace denies `unsafe`, so no
/// `FromRawFd`): `/proc/self/fd/N`, or `/dev/fd/N` where `/proc` is not mounted.
fn open_progress_fd(fd: u32) -> Result<std::fs::File> {
    let open = |p: String| std::fs::OpenOptions::new().append(true).open(p);
    open(format!("/proc/self/fd/{fd}"))
        .or_else(|_| open(format!("/dev/fd/{fd}")))
        .with_context(|| {
            format!("opening --progress-fd {fd} (is descriptor {fd} open for writing?)")
        })
}

/// The progress renderers: a redrawn line on a terminal, plain lines otherwise, and JSON
/// lines on `--progress-fd`.
fn progress_sinks(json: Option<std::fs::File>) -> Fanout {
    let stderr = std::io::stderr();
    let mut f = if stderr.is_terminal() {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(80);
        Fanout::new().with(Box::new(TtyLine::new(stderr, width)))
    } else {
        Fanout::new().with(Box::new(PlainLines::new(stderr)))
    };
    if let Some(file) = json {
        f = f.with(Box::new(JsonLines::new(
            file,
            Box::new(MonotonicClock::start()),
        )));
    }
    f
}

/// Asks for the host name on the terminal; anything else cancels.
fn confirm(plan: &Plan) -> Result<bool> {
    let name = &plan.node.name;
    print!(
        "\nThis erases every disk listed above under \"Disks\" and installs node {name}.\n\
         Type the host name ({name}) to go ahead, anything else cancels: "
    );
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(line.trim() == name)
}

fn cmd_install(a: InstallArgs) -> Result<ExitCode> {
    if !a.yes && !a.dry_run && !std::io::stdin().is_terminal() {
        eprintln!(
            "error: install erases disks and first asks you to type the host name, but standard \
             input is not a terminal; pass --yes to install without asking (or --dry-run to see \
             what it would do); nothing was written"
        );
        return Ok(ExitCode::from(2));
    }
    let json = a.progress_fd.map(open_progress_fd).transpose()?;
    let (src, file, site) = match load_site(&a.site, "nothing was written")? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    // A real install probes the machine it runs on; --root and --profile are for dry runs.
    let inv = frontdoor::read_machine(a.root.as_deref(), a.profile.as_deref())?;
    let machine = match &a.profile {
        Some(_) => Machine::Inventory(Box::new(inv.clone())),
        None => Machine::Root(a.root.clone().unwrap_or_else(|| PathBuf::from("/"))),
    };
    let (choice, hints) = match resolve_node(&inv, &site, a.node.as_deref(), &file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let files = frontdoor::RunFiles::default();
    let node = &site.nodes[choice.index].name;
    let plan = match install_plan(&a, &files, &src, node, || {
        plan::plan(&inv, &site, &choice, &hints)
    }) {
        Ok(p) => p,
        Err(e) => {
            eprint!("{}", e.render(&file));
            eprintln!("{file}: node {node} does not fit this machine; nothing was written");
            return Ok(ExitCode::from(1));
        }
    };
    let ctx = install_context(&a, machine, &files);
    if !a.yes && !a.dry_run {
        print!("{}", plan::render_human(&plan));
        if !confirm(&plan)? {
            eprintln!("cancelled; nothing was written");
            return Ok(ExitCode::from(1));
        }
    }
    let mut sink = progress_sinks(json);
    if a.dry_run {
        return Ok(dry_run(&plan, &site, &src, &ctx, &mut sink));
    }
    let host = RealHost::new().confine_writes_to(&ctx.target);
    match install::execute(&plan, &site, &src, &ctx, &host, &mut sink) {
        Ok(r) => {
            eprintln!(
                "installed node {} in {:.0}s ({} notice(s)); remove the install medium and reboot",
                r.node,
                r.duration_ms as f64 / 1000.0,
                r.notices.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!(
                "the journal {} remembers the completed steps: rerun the same command to resume",
                files.journal.display()
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// The plan to install: a rerun in the same live session resumes the plan the user consented
/// to (a new plan would see the partial install on the disks as data); else `fresh`.
fn install_plan(
    a: &InstallArgs,
    files: &frontdoor::RunFiles,
    src: &str,
    node: &str,
    fresh: impl FnOnce() -> Result<Plan, plan::PlanError>,
) -> Result<Plan, plan::PlanError> {
    if a.dry_run {
        return fresh();
    }
    let (journal, warning) = frontdoor::resumable(&files.journal, src, node);
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let Some(j) = journal else {
        return fresh();
    };
    let done: Vec<String> = j.completed.iter().map(|c| c.id.to_string()).collect();
    eprintln!(
        "resuming the interrupted install of {} from {} (completed: {})",
        j.node,
        files.journal.display(),
        done.join(", ")
    );
    Ok(j.plan)
}

/// The install's context from the command line: the payload (default `payload/` beside the
/// site file), the target, the journal of a real install, the agent beside this program.
fn install_context(
    a: &InstallArgs,
    machine: Machine,
    files: &frontdoor::RunFiles,
) -> InstallContext {
    let site_dir = a.site.parent().unwrap_or(Path::new("."));
    let payload = a
        .payload
        .clone()
        .unwrap_or_else(|| site_dir.join("payload"));
    let mut ctx = InstallContext::new(payload, machine);
    ctx.target = a.target.clone();
    ctx.keep_on_error = a.keep_on_error;
    ctx.dry_run = a.dry_run;
    ctx.journal = (!a.dry_run).then(|| files.journal.clone());
    ctx.bootstrap_binary = frontdoor::bootstrap_binary();
    ctx
}

/// `install --dry-run`: the install against the recording host, then every effect in order.
fn dry_run(
    plan: &Plan,
    site: &tappaas_site::Site,
    src: &str,
    ctx: &InstallContext,
    sink: &mut Fanout,
) -> ExitCode {
    let host = install::dry_run_host(plan, ctx);
    let result = install::execute(plan, site, src, ctx, &host, sink);
    println!(
        "Dry run of the install of {}: {} effects, in order; nothing was changed.",
        plan.node.name,
        host.effects().len()
    );
    print!("{}", host.render());
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
