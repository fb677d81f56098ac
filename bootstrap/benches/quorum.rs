#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]
//! How long three nodes take to reach a quorate cluster against the PVE simulator with
//! realistic task latencies (create 3 s, join 12 s, 5 ms per request), compared with the
//! critical path of those latencies: the create, then the two joins one after the other
//! (concurrent joins into a small cluster cost it its quorum, so they cannot overlap).
//!
//! Run: `cargo bench -p tappaas-bootstrap --bench quorum`. Prints one line of JSON at the end.
//! Under `cargo test --all-targets` (no `--bench` argument) it returns at once: the formation
//! it times is tested by `tests/sim_cluster.rs`, and a debug run only cost the test phase 30 s.

#[path = "../tests/common/mod.rs"]
mod common;

use common::Lab;
use std::time::{Duration, Instant};
use tappaas_pve_sim::Latencies;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("quorum: a benchmark, run by `cargo bench` only");
        return;
    }
    let latencies = Latencies::realistic();
    let create = latencies.task("clustercreate");
    let join = latencies.task("clusterjoin");
    let critical = create + join * 2;
    let mut lab = Lab::new(latencies, &[]);
    // Poll as a real node would be configured to, scaled down: every wait checks twice a second.
    lab.timing.poll = Duration::from_millis(500);
    lab.timing.task.poll = Duration::from_millis(250);
    lab.timing.join_wait = Duration::from_secs(120);
    lab.timing.turn_wait = Duration::from_secs(60);
    lab.timing.quorum_wait = Duration::from_secs(60);
    lab.timing.task.timeout = Duration::from_secs(60);

    let start = Instant::now();
    let mut quorate_at = None;
    let done = std::thread::scope(|s| {
        let agents: Vec<_> = (1..=3u8)
            .map(|n| {
                let lab = &lab;
                s.spawn(move || {
                    let (r, errors) = lab.run_until_done(n, 3);
                    r.unwrap_or_else(|e| panic!("tappaas{n}: {e:#}\nearlier: {errors:#?}"));
                    start.elapsed()
                })
            })
            .collect();
        while quorate_at.is_none() && start.elapsed() < Duration::from_secs(300) {
            let members = lab.site.cluster_members("tappaas1").len();
            let all_in = (1..=3).all(|n| lab.site.same_cluster("tappaas1", &format!("tappaas{n}")));
            if members == 3 && all_in && lab.site.quorate("tappaas1") {
                quorate_at = Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        agents
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap_or_default()
    });
    let quorate = quorate_at.expect("the cluster never became quorate");
    let overhead = quorate.as_secs_f64() - critical.as_secs_f64();
    println!(
        "three nodes quorate after {:.2}s; critical path of the task latencies {:.2}s (create {:.0}s + 2 x join {:.0}s); overhead {:.2}s ({:.1}%); all agents done after {:.2}s",
        quorate.as_secs_f64(),
        critical.as_secs_f64(),
        create.as_secs_f64(),
        join.as_secs_f64(),
        overhead,
        100.0 * overhead / critical.as_secs_f64(),
        done.as_secs_f64(),
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "three-node-quorum",
            "quorate_s": quorate.as_secs_f64(),
            "critical_path_s": critical.as_secs_f64(),
            "overhead_s": overhead,
            "agents_done_s": done.as_secs_f64(),
        })
    );
}
