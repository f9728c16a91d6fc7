//! `passerelle sim`: the platform simulator served standalone, with how to point
//! passerelle at it and, optionally, its world moving on a timer.

use anyhow::{Context, Result};

/// Serves the simulator until interrupted.
pub async fn serve_simulator(
    config: passerelle_sim::SimConfig,
    listen: std::net::SocketAddr,
    advance_every: u64,
) -> Result<()> {
    let sim = passerelle_sim::Simulator::new(config);
    let running = sim.serve(listen).await?;
    let base = &running.base_url;
    println!(
        "simulator listening at {base}  (platforms: {})",
        passerelle_sim::PLATFORMS.join(", ")
    );
    println!("\npoint passerelle at it with this in its config file:\n");
    println!("[http.overrides]");
    for (_, origin) in passerelle_sim::ORIGINS {
        println!("\"{origin}\" = \"{base}\"");
    }
    println!("\nsimulated practices (account, connector, settings, secrets):");
    for p in &sim.world().practices {
        println!("  {}  {}", p.id, p.name);
        for a in &p.accounts {
            let (settings, secrets) = passerelle_sim::settings(a);
            let pairs: Vec<String> = settings
                .iter()
                .chain(&secrets)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!(
                "    {:<16} {:<9} {}",
                a.id,
                a.platform.as_str(),
                pairs.join(" ")
            );
        }
    }
    println!(
        "\ncontrol: GET {base}/_sim/practices, PUT {base}/_sim/faults/{{platform}}, POST {base}/_sim/advance (see docs/simulator.md)"
    );
    if advance_every > 0 {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(advance_every));
            tick.tick().await;
            loop {
                tick.tick().await;
                let c = sim.advance();
                tracing::info!(
                    step = c.step,
                    added = c.added.len(),
                    rescheduled = c.rescheduled.len(),
                    cancelled = c.cancelled.len(),
                    deleted = c.deleted.len(),
                    "simulated world advanced"
                );
            }
        });
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(running);
    Ok(())
}
