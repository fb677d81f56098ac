//! `tappaas-pve-sim`: run a simulated PVE site on loopback until killed.

use std::sync::Arc;

use clap::Parser;
use tappaas_pve_sim::{admin, Latencies, NodeSpec, SimConfig, SimSite};

/// Serve simulated Proxmox VE nodes over HTTPS on 127.0.0.1 and print their endpoints and
/// certificate fingerprints as one JSON object on stdout.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of nodes (tappaas1..N, addresses 10.0.0.10.., simulated).
    #[arg(long, default_value_t = 3)]
    nodes: u8,
    /// A node as NAME=ADDRESS (repeatable); replaces --nodes.
    #[arg(long = "node", value_name = "NAME=ADDRESS")]
    node: Vec<String>,
    /// root@pam password of every node (default: a random one per node).
    #[arg(long)]
    root_password: Option<String>,
    /// Use realistic task latencies (cluster create ~3 s, join ~12 s) instead of 20 ms.
    #[arg(long)]
    realistic: bool,
    /// Multiply every latency by this factor (e.g. 0.1 with --realistic).
    #[arg(long, default_value_t = 1.0)]
    latency_scale: f64,
    /// First node's port; the others follow (0: ephemeral ports).
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// Port of the plain-HTTP control endpoint on 127.0.0.1 (0: ephemeral).
    #[arg(long, default_value_t = 0)]
    admin_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = SimConfig::with_nodes(args.nodes);
    if !args.node.is_empty() {
        config.nodes = args
            .node
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let (name, address) = spec
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--node {spec}: expected NAME=ADDRESS"))?;
                let mut n = NodeSpec::tappaas(u8::try_from(i + 1)?);
                n.name = name.to_string();
                n.address = address.to_string();
                n.aliases.clear();
                Ok(n)
            })
            .collect::<anyhow::Result<_>>()?;
    }
    for (i, n) in config.nodes.iter_mut().enumerate() {
        if let Some(pw) = &args.root_password {
            n.root_password = pw.clone();
        }
        if args.base_port != 0 {
            n.port = args.base_port + u16::try_from(i)?;
        }
    }
    if args.realistic {
        config.latencies = Latencies::realistic();
    }
    config.latencies = config.latencies.scaled(args.latency_scale);
    let site = Arc::new(SimSite::start(config).await?);
    let (admin_addr, _admin) = admin::serve(Arc::clone(&site), args.admin_port).await?;
    let out = serde_json::json!({
        "nodes": site.endpoints(),
        "admin": format!("http://{admin_addr}"),
    });
    println!("{out}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
