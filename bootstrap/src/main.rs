//! `tappaas-bootstrap`: the first-boot agent's command line. See docs/first-boot.md.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tappaas_bootstrap::config::{local_fingerprint, NodeConfig, Paths};
use tappaas_bootstrap::connect::NodeConnector;
use tappaas_bootstrap::pve::ClientOptions;
use tappaas_bootstrap::runner::SystemRunner;
use tappaas_bootstrap::state::StateStore;
use tappaas_bootstrap::steps::{self, Env, Timing};
use tappaas_bootstrap::systemd::{DbusSystemd, SdNotify};
use tappaas_bootstrap::{status, steps::reconcile};
use tappaas_site::manifest::NodeManifest;

#[derive(Parser)]
#[command(
    name = "tappaas-bootstrap",
    version,
    about = "TAPPaaS first-boot agent: cluster, storage, backup node"
)]
struct Cli {
    /// Root of the node's filesystem (for tests and inspection of a mounted root).
    #[arg(long, default_value = "/", global = true, hide = true)]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the remaining first-boot steps (what the systemd unit does).
    Run,
    /// Show each step, its state, timings and last error.
    Status {
        /// As JSON (schema in docs/first-boot.md).
        #[arg(long)]
        json: bool,
    },
    /// List the steps this node will run, without running them.
    Plan,
    /// Print this node's API certificate fingerprint (for the site's primary-fingerprint, or
    /// a node's api-fingerprint).
    Fingerprint,
    /// Open or close the join window by hand on a cluster node, for a replacement: on the
    /// primary, or on a survivor when the primary is replaced (`open` prints the node's
    /// `api-fingerprint` line for the site file).
    JoinWindow {
        #[command(subcommand)]
        action: WindowAction,
    },
}

#[derive(Subcommand)]
enum WindowAction {
    /// Make the `join-secret` of SITE (the site file the replacement is installed from)
    /// root's password until `close`, and print this node's `api-fingerprint = "..."` line.
    Open {
        /// The site file with the new one-time `[cluster] join-secret`.
        #[arg(long)]
        site: PathBuf,
    },
    /// Make root's password the site's `root-password-hash` again.
    Close,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tappaas-bootstrap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let paths = Paths::new(&cli.root);
    match cli.cmd {
        Command::Fingerprint => {
            println!("{}", local_fingerprint(&paths)?);
            Ok(())
        }
        Command::JoinWindow { action } => {
            let runner = SystemRunner;
            match action {
                WindowAction::Open { site } => {
                    let text = std::fs::read_to_string(&site)
                        .with_context(|| format!("reading {}", site.display()))?;
                    let parsed = tappaas_site::parse(&text, &Default::default()).map_err(|d| {
                        anyhow::anyhow!(
                            "{}",
                            tappaas_site::render_all(&d, &site.display().to_string())
                        )
                    })?;
                    let secret = parsed.cluster.join_secret.clone().with_context(|| {
                        format!("{} has no [cluster] join-secret", site.display())
                    })?;
                    // Read before anything changes: a node whose certificate cannot be read
                    // keeps its password.
                    let served = local_fingerprint(&paths)?;
                    let me = std::fs::read_to_string(paths.manifest())
                        .ok()
                        .and_then(|t| NodeManifest::parse(&t).ok())
                        .map(|m| m.node.name);
                    let advice = steps::window_advice(
                        served,
                        me.as_deref(),
                        &parsed,
                        &site.display().to_string(),
                    );
                    steps::set_root_password(
                        &runner,
                        &tappaas_bootstrap::pve::Secret::new(secret),
                    )?;
                    println!("{}", advice.line);
                    eprintln!("{}", advice.note);
                    eprintln!("join window open: close it with `tappaas-bootstrap join-window close` once the node has joined");
                }
                WindowAction::Close => {
                    let config = NodeConfig::load(&paths)?;
                    steps::restore_root_password(
                        &runner,
                        &config.site.credentials.root_password_hash,
                    )?;
                }
            }
            Ok(())
        }
        Command::Plan => {
            let config = NodeConfig::load(&paths)?;
            println!("first boot of {} ({}):", config.name(), config.role());
            for (i, s) in steps::plan(&config).iter().enumerate() {
                println!("{:>3}. {:<20} {}", i + 1, s.name, s.description);
            }
            Ok(())
        }
        Command::Status { json } => {
            let store = StateStore::new(paths.state());
            let state = match store.load()? {
                Some(s) => s,
                None => {
                    let config = NodeConfig::load(&paths)?;
                    reconcile(&config, &steps::plan(&config), None)
                }
            };
            let done = paths.done_marker().exists();
            if json {
                println!("{}", status::render_json(&state, done)?);
            } else {
                print!("{}", status::render_text(&state, done));
            }
            Ok(())
        }
        Command::Run => {
            let config = NodeConfig::load(&paths)?;
            let runner = SystemRunner;
            let systemd = DbusSystemd::connect()?;
            let notify = SdNotify::from_env();
            let connector = NodeConnector::new(paths.clone(), &runner, ClientOptions::default())
                .with_password(config.join_secret().ok());
            let env = Env {
                paths: &paths,
                config: &config,
                connector: &connector,
                systemd: &systemd,
                notify: &notify,
                runner: &runner,
                timing: Timing::for_site(&config),
            };
            steps::run(&env, &StateStore::new(paths.state())).context(
                "first boot did not finish; `tappaas-bootstrap status` shows where it stopped",
            )?;
            Ok(())
        }
    }
}
