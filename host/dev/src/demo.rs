//! `passerelle demo`: the main job on an embedded default, end to end.
//!
//! SQLite in a data directory, the platform simulator in-process, the bundled connectors,
//! a few practices with their accounts. The first demo runs a full sync of every account,
//! lets the simulated practices live one step (new bookings, reschedulings,
//! cancellations, deletions) and runs an incremental sync that finds exactly those
//! changes. A later demo on the same data directory rebuilds the same simulator, moves it
//! one more step and syncs incrementally again. The practices are published (made-up
//! places, some without an address or a booking URL, as real ones are) and each demo
//! ends by writing the open-data export into `<data dir>/open-data`.
//!
//! [`provision`] and [`simulator_policy`] are also how the end-to-end tests wire a host
//! to a simulator.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use passerelle_sim::{SimConfig, Simulator, World};
use serde::{Deserialize, Serialize};

use passerelle_model::run::{Mode, Run, Status, Trigger};
use passerelle_runtime::capabilities::http::{HttpPolicy, RateLimitOverride};
use passerelle_service::app::Passerelle;
use passerelle_service::config::Config;
use passerelle_service::sync::SyncOptions;

/// HTTP policy pointing the origins the simulator stands in for
/// ([`passerelle_sim::ORIGINS`]) at a simulator at `base_url`, with the platforms' rate
/// limits lifted (the simulator is not the real platform).
pub fn simulator_policy(base_url: &str) -> HttpPolicy {
    let mut policy = HttpPolicy::default();
    for (connector, origin) in passerelle_sim::ORIGINS {
        policy
            .overrides
            .insert((*origin).to_string(), base_url.to_string());
        policy.rate_limits.insert(
            (*connector).to_string(),
            RateLimitOverride {
                requests_per_second: 10_000,
                burst: 10_000,
            },
        );
    }
    policy
}

/// Creates (or completes) the simulator's practices and accounts in the store, with
/// their settings and API tokens. Idempotent.
pub async fn provision(app: &Passerelle, world: &World) -> Result<usize> {
    let mut accounts = 0;
    for practice in &world.practices {
        if app.store.practice(&practice.id).await?.is_none() {
            app.store
                .add_practice(&practice.id, &practice.name, "Europe/Paris")
                .await?;
        }
        for account in &practice.accounts {
            let (settings, secrets) = passerelle_sim::settings(account);
            let settings: BTreeMap<String, String> = settings
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if app.store.account(&account.id).await?.is_none() {
                app.store
                    .add_account(
                        &account.id,
                        &practice.id,
                        account.platform.as_str(),
                        Some(&account.label),
                        &settings,
                    )
                    .await?;
            }
            for (name, value) in secrets {
                app.store.set_secret(&account.id, name, &value).await?;
            }
            accounts += 1;
        }
    }
    Ok(accounts)
}

/// Public metadata for the simulator's practices, set once: the town in the practice's
/// name (its postcode and department, its rough coordinates) and a made-up street;
/// every fifth practice, from the fourth, lacks its address (the export leaves it out,
/// saying so), and every fifth, from the fifth, has no booking URL of its own but its
/// first account has a listing.
pub async fn publish(app: &Passerelle, world: &World) -> Result<()> {
    use passerelle_model::public::{ListingPatch, PublicPatch};
    use passerelle_service::accounts::AccountUpdate;
    use passerelle_service::practices::PracticeUpdate;
    /// Town halls, roughly.
    const COORDINATES: &[(&str, f64, f64)] = &[
        ("Lyon", 45.7676, 4.8359),
        ("Villeurbanne", 45.7665, 4.8795),
        ("Nantes", 47.2184, -1.5536),
        ("Rennes", 48.1113, -1.6800),
        ("Lille", 50.6372, 3.0633),
        ("Montreuil", 48.8611, 2.4437),
        ("Bordeaux", 44.8378, -0.5792),
        ("Toulouse", 43.6045, 1.4440),
        ("Grenoble", 45.1885, 5.7245),
        ("Strasbourg", 48.5734, 7.7521),
        ("Dijon", 47.3220, 5.0415),
        ("Angers", 47.4784, -0.5632),
    ];
    for (i, practice) in world.practices.iter().enumerate() {
        let stored = app.store.practice(&practice.id).await?;
        if stored.is_none_or(|p| p.public.is_some()) {
            continue;
        }
        // Longest first: "Villeurbanne" is not "Lyon".
        let Some((town, postcode)) = passerelle_sim::names::TOWNS
            .iter()
            .filter(|(town, _)| practice.name.contains(town))
            .max_by_key(|(town, _)| town.len())
        else {
            continue;
        };
        let coordinates = COORDINATES.iter().find(|(t, _, _)| t == town);
        let patch = PublicPatch {
            department: Some(postcode[..2].to_string()),
            address: Some((i % 5 != 3).then(|| format!("{} rue de l'Exemple", i + 1))),
            city: Some(Some(town.to_string())),
            postcode: Some(Some(postcode.to_string())),
            latitude: Some(coordinates.map(|c| c.1)),
            longitude: Some(coordinates.map(|c| c.2)),
            booking_url: Some(
                (i % 5 != 4).then(|| format!("https://booking.example/{}", practice.id)),
            ),
            kind: Some(Some("general-practitioner".into())),
        };
        let update = PracticeUpdate {
            public: Some(Some(patch)),
            ..PracticeUpdate::default()
        };
        app.update_practice(&practice.id, update, chrono::Utc::now())
            .await?;
        if let (4, Some(first)) = (i % 5, practice.accounts.first()) {
            let listing = AccountUpdate {
                listing: Some(Some(ListingPatch {
                    booking_url: Some(Some(format!("https://booking.example/{}", first.id))),
                    kind: Some(Some("vaccination-center".into())),
                })),
                ..AccountUpdate::default()
            };
            app.update_account(&first.id, listing).await?;
        }
    }
    Ok(())
}

/// What the demo remembers between runs, in `<data dir>/demo.json`.
#[derive(Debug, Serialize, Deserialize)]
struct DemoState {
    sim: SimConfig,
    /// Steps the simulated world has lived so far.
    steps: u32,
}

/// The demo's options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// Where the built connectors (`doctolib.wasm`…) are.
    pub plugins_dir: PathBuf,
    pub practices: usize,
    pub seed: u64,
    /// Re-sync fully (and tombstone) instead of incrementally on a later demo.
    pub full: bool,
    /// Forget earlier demos: delete the data directory first.
    pub reset: bool,
}

/// What a demo did, for the command line to render: each phase's runs, then the closing
/// words (what the simulator changed, where the data is, what to try).
#[derive(Debug)]
pub struct DemoReport {
    pub phases: Vec<(String, Vec<Run>)>,
    pub closing: String,
    /// Runs that did not succeed.
    pub failed: usize,
}

/// Runs the demo, printing its progress as it goes; the report is the caller's to
/// render.
pub async fn run(options: DemoOptions) -> Result<DemoReport> {
    if options.reset && options.data_dir.exists() {
        std::fs::remove_dir_all(&options.data_dir)
            .with_context(|| format!("removing {}", options.data_dir.display()))?;
    }
    passerelle_service::app::create_private_dir(&options.data_dir)?;
    let state_path = options.data_dir.join("demo.json");
    let mut state = match std::fs::read(&state_path) {
        Ok(bytes) => serde_json::from_slice::<DemoState>(&bytes).with_context(|| {
            format!(
                "{} is unreadable; start over with `passerelle demo --reset`",
                state_path.display()
            )
        })?,
        Err(_) => DemoState {
            sim: SimConfig {
                seed: options.seed,
                practices: options.practices,
                epoch: Some(passerelle_sim::world::current_hour()),
                ..SimConfig::default()
            },
            steps: 0,
        },
    };
    if state.sim.seed != options.seed || state.sim.practices != options.practices {
        println!(
            "note: this data directory's demo uses seed {} and {} practices; \
             `--reset` to start over with others",
            state.sim.seed, state.sim.practices
        );
    }
    let first = state.steps == 0;
    let mut world = World::generate(state.sim.clone());
    for _ in 0..state.steps {
        world.advance();
    }
    let sim = Simulator::from_world(world);
    let running = sim.serve(([127, 0, 0, 1], 0).into()).await?;
    println!(
        "passerelle demo: simulator ({}) at {}, seed {}, step {}",
        passerelle_sim::PLATFORMS.join(", "),
        running.base_url,
        state.sim.seed,
        state.steps
    );

    let config = Config {
        database_url: options.database_url.clone(),
        http: simulator_policy(&running.base_url),
        ..Config::default()
    };
    let app = Passerelle::open(&options.data_dir, config).await?;
    let result = demo_with(&app, &sim, &mut state, &state_path, &options, first).await;
    app.store.close().await;
    result
}

async fn demo_with(
    app: &Passerelle,
    sim: &Simulator,
    state: &mut DemoState,
    state_path: &Path,
    options: &DemoOptions,
    first: bool,
) -> Result<DemoReport> {
    install_bundled(app, &options.plugins_dir).await?;
    let world = sim.world().clone();
    let accounts = provision(app, &world).await?;
    publish(app, &world).await?;
    let mut per_platform: BTreeMap<&str, usize> = BTreeMap::new();
    for a in world.accounts() {
        *per_platform.entry(a.platform.as_str()).or_default() += 1;
    }
    let platforms: Vec<String> = per_platform
        .iter()
        .map(|(p, n)| format!("{n} {p}"))
        .collect();
    println!(
        "{} practices, {accounts} accounts ({}), data in {}",
        world.practices.len(),
        platforms.join(", "),
        options.data_dir.display()
    );

    let mut phases: Vec<(String, Vec<Run>)> = Vec::new();
    if first {
        phases.push((
            "first sync (full)".into(),
            sync_all(app, sim, Mode::Full).await?,
        ));
    }
    let step = sim.advance();
    state.steps += 1;
    std::fs::write(state_path, serde_json::to_vec_pretty(&state)?)
        .with_context(|| format!("writing {}", state_path.display()))?;
    println!(
        "\nthe simulated practices lived one hour: {} new bookings, {} rescheduled, {} cancelled, {} deleted",
        step.added.len(),
        step.rescheduled.len(),
        step.cancelled.len(),
        step.deleted.len()
    );
    let mode = if options.full && !first {
        Mode::Full
    } else {
        Mode::Incremental
    };
    phases.push((
        format!("sync after the changes ({})", mode.as_str()),
        sync_all(app, sim, mode).await?,
    ));

    let mut closing = format!(
        "\nexpected from the simulator's changes: +{} new, ~{} changed (rescheduled or cancelled); \
         {} deleted outright (an incremental sync cannot see those: a full sync tombstones them)",
        step.added.len(),
        step.rescheduled.len() + step.cancelled.len(),
        step.deleted.len()
    );
    let failed: usize = phases
        .iter()
        .flat_map(|(_, runs)| runs)
        .filter(|r| r.status != Status::Succeeded)
        .count();
    let open_data = options.data_dir.join("open-data");
    let export = app
        .export_vitemadose(&open_data, chrono::Utc::now())
        .await?;
    closing.push_str(&format!(
        "\nopen data (ViteMaDose's format) in {}: {} centres in {} departments, {} with availability, {} left out (`passerelle export vitemadose` says why)",
        open_data.display(),
        export.centres,
        export.departments,
        export.available,
        export.left_out.len()
    ));
    let db = match &options.database_url {
        Some(url) => passerelle_store::redact_url(url),
        None => options.data_dir.join("passerelle.db").display().to_string(),
    };
    let dd = options.data_dir.display();
    // The binary that runs now, so the commands work whether or not it is on PATH.
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "passerelle".into());
    closing.push_str(&format!(
        "\nwhere the data is:\n  database     {db}\n  connectors   {}\n\nlook at it:\n  \
         {exe} --data-dir {dd} runs\n  \
         {exe} --data-dir {dd} runs --status failed\n  \
         {exe} --data-dir {dd} appointments --practice p001\n  \
         {exe} --data-dir {dd} appointments --account p001-cabinet --show-patients\n  \
         {exe} --data-dir {dd} slots --account p001-cabinet\n\n\
         run the demo again for an incremental sync that finds only the next changes \
         (`--full` to tombstone deleted appointments, `--reset` to start over)\n",
        app.plugins_dir().display()
    ));
    Ok(DemoReport {
        phases,
        closing,
        failed,
    })
}

/// Installs every component of `dir` but the sandbox-testing one.
async fn install_bundled(app: &Passerelle, dir: &Path) -> Result<()> {
    let doctolib = dir.join("doctolib.wasm");
    if !doctolib.exists() {
        bail!(
            "{} is missing: build the connectors with `cargo xtask build-plugins` \
             (or run the demo through `cargo xtask demo`), or pass --plugins-dir",
            doctolib.display()
        );
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .filter(|p| p.file_stem().is_some_and(|s| s != "testing"))
        .collect();
    entries.sort();
    for path in entries {
        let installed = app.install_plugin(&path).await?;
        println!(
            "connector {} {} (sha256:{}){}",
            installed.manifest.name,
            installed.manifest.version,
            &installed.sha256[..12],
            if installed.outcome == passerelle_model::connector::Outcome::AlreadyInstalled {
                ""
            } else {
                ", installed"
            }
        );
    }
    Ok(())
}

/// Syncs every account of every practice, one run at a time, printing progress.
async fn sync_all(app: &Passerelle, sim: &Simulator, mode: Mode) -> Result<Vec<Run>> {
    let practices: Vec<String> = sim.world().practices.iter().map(|p| p.id.clone()).collect();
    let mut accounts = Vec::new();
    for p in &practices {
        accounts.extend(app.store.list_accounts(Some(p)).await?);
    }
    println!("\n{} sync of {} accounts", mode.as_str(), accounts.len());
    let started = Instant::now();
    let mut runs = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        print!(
            "  [{}/{}] {}/{} … ",
            i + 1,
            accounts.len(),
            account.practice_id,
            account.id
        );
        let _ = std::io::stdout().flush();
        let run = app
            .sync_account(
                account,
                SyncOptions {
                    trigger: Trigger::Manual,
                    mode,
                    now: None,
                    record: None,
                },
            )
            .await?;
        println!(
            "{} in {} ms",
            run.status.as_str(),
            run.duration_ms.unwrap_or(0)
        );
        runs.push(run);
    }
    println!("  done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(runs)
}
