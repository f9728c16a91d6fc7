//! The command line's arguments (clap): global options, commands and their flags, as
//! typed values. Nothing here acts; [`super::run`] turns them into one request.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use passerelle_model::run::{Status, Trigger};

/// passerelle: sync medical practices' appointments from booking platforms, through
/// sandboxed WebAssembly connectors.
#[derive(Parser, Debug)]
#[command(name = "passerelle", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Data directory: database, installed connectors, compile cache.
    /// Default: $XDG_DATA_HOME/passerelle.
    #[arg(long, global = true, env = "PASSERELLE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (sqlite://PATH or postgres://USER@HOST/DB).
    /// Default: SQLite in the data directory.
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, global = true, env = "PASSERELLE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Send traces of runs (a trace per run: claim, instantiate, each HTTP request,
    /// guest time, checkpoints, finish) over OTLP/HTTP to this collector (e.g.
    /// http://127.0.0.1:4318; `/v1/traces` is added).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Send the command to a running daemon's admin API (e.g. http://127.0.0.1:8787)
    /// instead of opening the database.
    #[arg(long, global = true, env = "PASSERELLE_SERVER")]
    pub server: Option<String>,
    /// The daemon's admin token with --server. Default: the admin-token file in the
    /// data directory.
    #[arg(long, global = true, env = "PASSERELLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print results as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More logs (default: warnings for one-shot commands, info for `serve` and `sim`;
    /// -v: info, -vv: debug, -vvv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Medical practices (every sync is scoped to one).
    #[command(subcommand)]
    Practices(PracticesCmd),
    /// A practice's accounts on booking platforms.
    #[command(subcommand)]
    Accounts(AccountsCmd),
    /// Installed connectors (wasm components).
    #[command(subcommand)]
    Plugins(PluginsCmd),
    /// For connector authors: test a connector on recorded HTTP exchanges.
    #[command(subcommand)]
    Connector(ConnectorCmd),
    /// Sync a practice now (all its accounts, or one) and print one line per run.
    Sync {
        /// Practice id.
        practice: String,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// Re-read the whole window and tombstone what the platform no longer returns.
        #[arg(long)]
        full: bool,
        /// Record the run's HTTP exchanges as a cassette in this (new or empty) folder,
        /// for `passerelle connector test`: secret values and the patient values the
        /// run stored are not written (same-shaped stand-ins replace them). Needs
        /// --account; runs here, not through --server.
        #[arg(long, requires = "account")]
        record: Option<PathBuf>,
    },
    /// A practice's (or one account's) stored appointments. Patients are shown as
    /// initials unless --show-patients is given.
    Appointments {
        #[arg(long, required_unless_present = "account")]
        practice: Option<String>,
        #[arg(long)]
        account: Option<String>,
        /// Include deleted and tombstoned appointments.
        #[arg(long)]
        all: bool,
        /// Print patients' names, birth dates, phones and e-mails (recorded in the audit
        /// trail; through --server, the token needs the patients:read scope).
        #[arg(long)]
        show_patients: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Continue after the page that ended with this cursor.
        #[arg(long)]
        after: Option<String>,
    },
    /// An account's stored public availability (bookable slots).
    Slots {
        #[arg(long)]
        account: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Continue after the page that ended with this cursor.
        #[arg(long)]
        after: Option<String>,
    },
    #[cfg(feature = "dev")]
    /// Run the demo: the simulator in-process, the bundled connectors, a few practices;
    /// a full sync, simulated changes, an incremental sync, and a summary. Run it again
    /// for the next changes. Default data directory: $XDG_DATA_HOME/passerelle-demo.
    Demo {
        /// Where the built connectors are (doctolib.wasm…).
        #[arg(long, env = "PASSERELLE_PLUGINS_DIR", default_value = "target/plugins")]
        plugins_dir: PathBuf,
        /// Practices to simulate (every other one also has a dentist profile).
        #[arg(long, default_value_t = 3)]
        practices: usize,
        /// Seed of the simulated data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// On a later demo, sync fully (tombstoning deleted appointments).
        #[arg(long)]
        full: bool,
        /// Forget earlier demos: delete the demo's data directory first.
        #[arg(long)]
        reset: bool,
    },
    /// Print the shell completion script: `passerelle completions bash >
    /// /etc/bash_completion.d/passerelle` (zsh: into a directory of `$fpath` as
    /// `_passerelle`; fish: `~/.config/fish/completions/passerelle.fish`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (roff): `passerelle.1` and one per command
    /// (`passerelle-practices-add.1`…) into --out, or the main page to standard output.
    Man {
        /// The directory to write into (e.g. /usr/local/share/man/man1).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    #[cfg(feature = "dev")]
    /// Serve the platform simulator standalone and print how to point passerelle at it.
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8900")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 3)]
        practices: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Appointments generated per account.
        #[arg(long, default_value_t = 120)]
        appointments: usize,
        /// Move the simulated world one step on every N seconds (0: only on
        /// `POST /_sim/advance`).
        #[arg(long, default_value_t = 0)]
        advance_every: u64,
        /// Every N-th practice also has a dentist profile on Doctolib (1: every one, 0:
        /// none).
        #[arg(long, default_value_t = 2)]
        dentist_every: usize,
        /// The platforms practices have accounts on (comma-separated; every practice is
        /// on Doctolib).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "doctolib,keldoc,maiia,ordoclic,mapharma"
        )]
        platforms: Vec<String>,
        /// Days of availability published.
        #[arg(long, default_value_t = 21)]
        availability_days: u32,
    },
    /// Run the daemon: syncs every practice on its schedule, runs manual syncs, answers
    /// the admin API (default http://127.0.0.1:8787, bearer token in
    /// <data dir>/admin-token). Stops gracefully on SIGTERM or SIGINT.
    Serve {
        /// Validate the configuration (file and PASSERELLE_* environment), print the
        /// effective settings, and exit.
        #[arg(long)]
        check_config: bool,
    },
    /// The daemons running on this database (several can share a PostgreSQL), with the
    /// runs each holds now.
    Daemons,
    /// The audit trail: every admin action and every read of patient data, with who
    /// (`token:<name>` through the API, `local:<user>` here), what and when, hash-chained.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Named admin-API tokens with scopes: `admin` (everything), `read` (practices,
    /// accounts, runs, slots, connectors), `patients:read` (patient fields; implies read).
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Account secrets at rest (sealed with a key kept apart from the database).
    #[command(subcommand)]
    Secrets(SecretsCmd),
    /// The change feed: every appointment and slot change after a sequence number, in
    /// commit order (a consumer keeps the last number it handled and asks from there).
    Changes {
        /// The last sequence number already handled (0: from the start of the feed).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long)]
        practice: Option<String>,
        /// appointment or slot.
        #[arg(long)]
        kind: Option<passerelle_model::feed::ChangeKind>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print patients' names, birth dates, phones and e-mails (recorded in the audit
        /// trail; through --server, the token needs the patients:read scope).
        #[arg(long)]
        show_patients: bool,
    },
    /// Write a consistent copy of the embedded database to FILE while daemons run
    /// (installed components included; never the secrets key: keep the data
    /// directory's secrets.key apart, it is needed to restore). PostgreSQL: pg_dump.
    Backup {
        /// The backup file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a new data directory (--data-dir) from a backup: put the source's secrets
    /// key there first (secrets.key, mode 0600, or PASSERELLE_SECRETS_KEY). The copy is
    /// checked, migrated if older, its audit trail verified and every secret opened.
    /// PostgreSQL: pg_restore, then `restore --check` with the restored database's URL.
    Restore {
        /// The backup file (an embedded database written by `passerelle backup`).
        #[arg(required_unless_present = "check")]
        file: Option<PathBuf>,
        /// Restore nothing: check the database the configuration names (one pg_restore
        /// made) as a restore does — migrated if older, the audit trail verified under
        /// this data directory's key, every secret opened.
        #[arg(long, conflicts_with = "file")]
        check: bool,
    },
    /// Open data: write ViteMaDose's files (info_centres.json, one {department}.json per
    /// department, stats.json) for the practices with public metadata, atomically.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Webhook subscriptions: the change feed POSTed to a URL, in order, at least once,
    /// signed with the Standard Webhooks scheme (a daemon delivers).
    #[command(subcommand)]
    Subscriptions(SubscriptionsCmd),
    /// The sync log, newest first; `runs cassette RUN --out DIR` writes what the flight
    /// recorder kept of a run that drifted or failed.
    #[command(args_conflicts_with_subcommands = true)]
    Runs {
        #[command(subcommand)]
        cmd: Option<RunsCmd>,
        #[arg(long)]
        practice: Option<String>,
        #[arg(long)]
        account: Option<String>,
        /// succeeded, failed, drift, skipped, cancelled or running.
        #[arg(long)]
        status: Option<Status>,
        /// Only this connector's runs.
        #[arg(long)]
        connector: Option<String>,
        /// schedule, manual, catch-up or redrive.
        #[arg(long)]
        trigger: Option<Trigger>,
        /// Runs older than this run id (the next page).
        #[arg(long)]
        before: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// Write the flight recorder's cassette of a run (one that drifted, failed in a way
    /// its connector may be at fault for, or quarantined items) into a new folder, in
    /// the format `passerelle connector test COMPONENT --cassette DIR` replays: its
    /// exchanges redacted, with the run's clock, window and settings. The read is
    /// audited; it needs the `patients:read` scope.
    Cassette {
        /// The run's id (`passerelle runs` lists them).
        run: i64,
        /// The folder to write (must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum PracticesCmd {
    /// Add a practice.
    Add {
        /// Stable id (a-z A-Z 0-9 - _ .), used in every other command.
        id: String,
        #[arg(long)]
        name: String,
        /// IANA time zone of the practice.
        #[arg(long, default_value = "Europe/Paris")]
        timezone: String,
        /// Its own sync schedule: a five-field cron expression in its time zone
        /// (default: daily at 03:00, spread over an hour by practice).
        #[arg(long)]
        schedule: Option<String>,
    },
    /// List practices, with their schedules and next scheduled sync.
    List,
    /// Set a practice's sync schedule (cron in its time zone), or reset it to the default.
    SetSchedule {
        id: String,
        /// Five fields: minute hour day-of-month month day-of-week, e.g. "30 2 * * 1-5".
        #[arg(required_unless_present = "default")]
        cron: Option<String>,
        /// Back to the default schedule.
        #[arg(long, conflicts_with = "cron")]
        default: bool,
    },
    /// Show a practice: its schedule, next sync, accounts and what the open-data export
    /// publishes about it.
    Show { id: String },
    /// Set what the open-data export publishes about a practice (`passerelle export
    /// vitemadose`): the fields given replace theirs, the others are kept; --unset
    /// removes one; --clear stops publishing the practice. The first time, --department
    /// is needed.
    SetPublic {
        id: String,
        /// French department code: 75, 2A, 971…
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        address: Option<String>,
        #[arg(long)]
        city: Option<String>,
        #[arg(long)]
        postcode: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        latitude: Option<f64>,
        #[arg(long, allow_hyphen_values = true)]
        longitude: Option<f64>,
        /// Where the public books, for the practice's accounts without their own
        /// (`accounts set-public`).
        #[arg(long)]
        booking_url: Option<String>,
        /// vaccination-center, drugstore or general-practitioner, for the practice's
        /// accounts without their own.
        #[arg(long = "type")]
        kind: Option<String>,
        /// Remove a field (repeatable).
        #[arg(long, value_enum)]
        unset: Vec<PublicField>,
        /// Stop publishing this practice.
        #[arg(long, conflicts_with_all = ["department", "address", "city", "postcode", "latitude", "longitude", "booking_url", "kind", "unset"])]
        clear: bool,
    },
}

/// A field of a practice's public record that `--unset` removes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicField {
    Address,
    City,
    Postcode,
    /// Latitude and longitude.
    Coordinates,
    BookingUrl,
    Type,
}

/// A field of an account's listing that `--unset` removes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListingField {
    BookingUrl,
    Type,
}

#[derive(Subcommand, Debug)]
pub enum AccountsCmd {
    /// Add an account of a practice on a platform.
    Add {
        /// Stable account id.
        id: String,
        #[arg(long)]
        practice: String,
        /// Connector name (see `passerelle plugins list`).
        #[arg(long)]
        connector: String,
        #[arg(long)]
        label: Option<String>,
        /// A non-secret setting, KEY=VALUE (repeatable).
        #[arg(long = "setting", value_parser = parse_key_value)]
        settings: Vec<(String, String)>,
        /// A secret to store with the account (repeatable): its value is read from
        /// standard input, one line per --secret in the order given, never from the
        /// command line.
        #[arg(long = "secret", value_name = "NAME")]
        secrets: Vec<String>,
        /// Keep the account even though its check fails (the failure is printed).
        /// Without it such an account is refused and nothing is stored.
        #[arg(long)]
        force: bool,
    },
    /// Change an account's settings or label. Changed settings are checked first
    /// (settings against the manifest, then the connector's check()); a change that
    /// fails its check is refused unless --force.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
        .args(["settings", "unset", "label", "no_label"])))]
    Update {
        id: String,
        /// Set a setting, KEY=VALUE (repeatable); the others are kept.
        #[arg(long = "setting", value_parser = parse_key_value)]
        settings: Vec<(String, String)>,
        /// Remove a setting (repeatable).
        #[arg(long = "unset-setting", value_name = "KEY")]
        unset: Vec<String>,
        #[arg(long, conflicts_with = "no_label")]
        label: Option<String>,
        /// Remove the label.
        #[arg(long)]
        no_label: bool,
        /// Keep the change even though the account's check then fails.
        #[arg(long)]
        force: bool,
    },
    /// Delete an account with everything it owns: its secrets, appointments, slots and
    /// runs. Needs --with-data to say so.
    Remove {
        id: String,
        /// Yes, delete its data too.
        #[arg(long)]
        with_data: bool,
    },
    /// List accounts (secret names shown, never values).
    List {
        #[arg(long)]
        practice: Option<String>,
    },
    /// Show an account: connector, settings, secret names and its own listing in the
    /// open-data export.
    Show { id: String },
    /// Set the account's own listing in the open-data export (its page on the platform,
    /// its type), which wins over its practice's; fields not given are kept.
    SetPublic {
        id: String,
        /// Where the public books this account (its page on the platform).
        #[arg(long)]
        booking_url: Option<String>,
        /// vaccination-center, drugstore or general-practitioner.
        #[arg(long = "type")]
        kind: Option<String>,
        /// Remove a field (repeatable): the practice's then applies.
        #[arg(long, value_enum)]
        unset: Vec<ListingField>,
        /// Remove the whole listing.
        #[arg(long, conflicts_with_all = ["booking_url", "kind", "unset"])]
        clear: bool,
    },
    /// Accounts paused by schema drift, with the drift report.
    Paused {
        #[arg(long)]
        connector: Option<String>,
    },
    /// Items set aside under the `quarantine` drift policy (the items themselves, which
    /// may hold patient data, only with --show-items).
    Quarantined {
        #[arg(long)]
        connector: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        show_items: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Lift an account's drift pause and sync it from its last checkpoint (trigger
    /// `redrive`). With --server the daemon queues the run; without, it runs here.
    Resume { id: String },
    /// Check an account: its settings against its connector's manifest, then the
    /// connector's own check() (which may call the platform with the account's secrets).
    /// Exits non-zero when the account cannot work yet, saying why.
    Check { id: String },
    /// Set a secret of an account. The value is read from standard input (or from the
    /// environment variable named by --from-env), never from the command line.
    SetSecret {
        account: String,
        name: String,
        #[arg(long)]
        from_env: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// The newest entries, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Walk the whole chain; exits non-zero naming every edited, deleted or reordered
    /// entry, and prints the head (sequence and hash) to compare with one kept elsewhere.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// Create a token; its value is printed once (only its SHA-256 is kept).
    Create {
        name: String,
        /// A scope it holds (repeat for several): admin, read, patients:read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// The named tokens, revoked ones included (never their values).
    List,
    /// Revoke a token at once.
    Revoke { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// ViteMaDose's format, from the stored slots and practices' public metadata (set
    /// with `practices set-public`). A daemon rewrites it after each night when
    /// export.vitemadose_dir is set.
    Vitemadose {
        /// The directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionsCmd {
    /// Add a subscription; its signing secret (`whsec_…`) is printed once: give it to
    /// the receiver to verify `webhook-signature`.
    Add {
        url: String,
        /// Only this practice's changes (repeat for several; default: every practice).
        #[arg(long = "practice")]
        practices: Vec<String>,
        /// Only these kinds, comma-separated: appointment, slot (default: both).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<passerelle_model::feed::ChangeKind>,
        /// Deliver patients' names, birth dates, phones and e-mails (initials otherwise).
        #[arg(long)]
        patients: bool,
        /// The URL may be a private or loopback address.
        #[arg(long)]
        allow_private: bool,
        /// With --patients, the URL may be http://: patients' full records then cross
        /// the network in clear (recorded in the audit trail).
        #[arg(long)]
        allow_cleartext: bool,
        /// Deliver the changes after this sequence number too (default: only changes
        /// from now on; 0: everything the feed keeps).
        #[arg(long)]
        after: Option<i64>,
    },
    /// The subscriptions: position, attempts, last error, state (`dead` when its
    /// attempts ran out).
    List,
    /// Remove a subscription.
    Remove { id: String },
    /// Deliver again every change after a sequence number (a dead subscription comes
    /// back).
    Replay {
        id: String,
        /// The last sequence number the receiver keeps.
        #[arg(long)]
        after: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretsCmd {
    /// Seal every account secret under a new key, in one transaction. With the data
    /// directory's key (`secrets.key`): a new one is generated, the old one kept as
    /// `secrets.key.previous` (delete it once no backup needs it). With a key from
    /// PASSERELLE_SECRETS_KEY or a systemd credential: install the new key there first,
    /// the old one as PASSERELLE_SECRETS_KEY_PREVIOUS, then run this. Stop the daemons
    /// first: they hold the old key.
    RotateKey,
}

#[derive(Subcommand, Debug)]
pub enum PluginsCmd {
    /// List installed connector versions (`*` active, `?` waiting for approval) and the
    /// latest refused candidates.
    List,
    /// Install connector components (.wasm): compile, check the contract and describe(),
    /// keep a copy, and activate when newer than the active version. A version asking for
    /// more hosts or secrets than the active one waits for `plugins approve`.
    Install {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check components without installing them: the same checks as `install` (contract,
    /// world, describe(), manifest, version against what is installed here), and what
    /// installing would do.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also replay each valid component on its connector's recorded cassettes and
        /// compare it with the active version (as `plugins shadow` does for a kept one).
        #[arg(long)]
        shadow: bool,
    },
    /// Activate a version that waits for approval (it asks for more than the active one,
    /// or its shadow replay found unexpected differences).
    Approve { name: String, version: String },
    /// Replay a kept version on the flight recorder's cassettes of its connector (runs
    /// that drifted or failed, baselines) and compare it with the active version: per
    /// cassette, drift fixed / still drifting, records identical / different (added,
    /// removed, changed, first ids), or error. Fails when a difference is unexpected.
    Shadow { name: String, version: String },
    /// Activate an earlier kept version: the one named, or the one active before.
    Rollback {
        name: String,
        version: Option<String>,
    },
    /// Run a kept version for some practices only (a canary), before promoting it.
    Canary {
        name: String,
        version: String,
        /// A practice whose accounts run this version (repeatable).
        #[arg(long = "practice", required = true)]
        practices: Vec<String>,
    },
    /// Make the canary's version active for every practice.
    Promote { name: String },
    /// Stop the canary: its practices go back to the active version.
    StopCanary { name: String },
    /// Refused candidates, newest first, with the reason.
    Rejections {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

#[derive(Subcommand, Debug)]
pub enum ConnectorCmd {
    /// Write a new connector crate, NAME/, that builds outside this repository: a copy
    /// of the SDK with its WIT contract, a manifest, one stream (public availability),
    /// a unit test and a cassette. Then: `passerelle connector build NAME`.
    New {
        /// The connector's name (lower-case letters, digits, dashes): the manifest's
        /// name and the crate's.
        name: String,
        /// Where to create NAME/ (default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// rust (a crate), python (componentize-py) or js (componentize-js).
        #[arg(long, value_enum, default_value = "rust")]
        lang: passerelle_kit::languages::Lang,
    },
    /// Build a connector and print the component's path: a crate for wasm32-wasip2
    /// (rustup's target, or Debian's packaged toolchain), a Python folder (componentize-py
    /// on PATH) or a JavaScript one (componentize-js, installed by `npm install` there);
    /// says what is missing.
    Build {
        /// The crate's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a connector component in the real sandbox against a cassette (recorded HTTP
    /// exchanges, see docs/connector-guide.md) with a temporary store; print what it
    /// stored, the requests it made and the result; run the contract checks. Exit code
    /// 0 only if the run succeeded, every request was answered, the records are as
    /// expected and every check passed.
    Test {
        /// The connector component (.wasm).
        component: PathBuf,
        /// The cassette folder (with cassette.toml), or a folder of cassette folders:
        /// each is tested, and the exit code is 0 only if all pass.
        #[arg(long, required_unless_present = "record", conflicts_with = "record")]
        cassette: Option<PathBuf>,
        /// A folder outside the cassette whose files its `body` entries may name (e.g.
        /// ../shared/fixtures; repeatable, or `:`-separated in PASSERELLE_FIXTURES). No
        /// other file outside the cassette folder is read.
        #[arg(long = "fixtures", env = "PASSERELLE_FIXTURES", value_delimiter = ':')]
        fixtures: Vec<PathBuf>,
        /// Instead of a cassette: run once against the platform itself (the HTTP policy
        /// of --config applies: overrides, private addresses), record that run into
        /// this new or empty folder as a cassette (no secret, no patient value), then
        /// test on it.
        #[arg(long)]
        record: Option<PathBuf>,
        /// An account setting, KEY=VALUE (repeatable; added to the cassette's
        /// `[replay] settings`).
        #[arg(long = "setting", value_parser = parse_key_value)]
        settings: Vec<(String, String)>,
        /// An account secret (repeatable): NAME=VALUE with a made-up value for a
        /// replay (the checks look for it where it must not be), or NAME alone to read
        /// the value from the environment variable PASSERELLE_SECRET_<NAME> (upper case,
        /// `-` as `_`) — the only way with --record, whose secrets are real: a command
        /// line is visible to every user of the machine and kept in shell history.
        #[arg(long = "secret", value_parser = parse_secret)]
        secrets: Vec<(String, Option<String>)>,
        /// The run's clock, RFC 3339 (e.g. 2021-04-03T09:00:00+02:00) or a date
        /// (midnight UTC): recorded responses are replayed at the time they were
        /// recorded. Default: the cassette's `[replay] now`, else now.
        #[arg(long, value_parser = parse_now)]
        now: Option<chrono::DateTime<chrono::Utc>>,
        /// The sync window in days before and after --now, PAST:FUTURE. Default: the
        /// cassette's `[replay] window`, else 30:90 (the daemon's).
        #[arg(long, value_parser = parse_window)]
        window: Option<(u32, u32)>,
        /// A full sync (default: incremental, which on a first run has no cursor).
        #[arg(long)]
        full: bool,
        /// Compare the stored records with this JSON file. Default: the cassette's
        /// expected.json when it has one (each cassette's own, for a folder of them).
        #[arg(long)]
        expect: Option<PathBuf>,
        /// Write the stored records to the --expect file (default: the cassette's
        /// expected.json) instead of comparing.
        #[arg(long)]
        bless: bool,
        /// Counts only: requests, slots with the first one, appointments, checks and
        /// probes, without listing each (unmatched requests and failures still shown).
        #[arg(long)]
        summary: bool,
        /// The contract checks to run, comma-separated (default: all); `none` for none.
        #[arg(long, value_delimiter = ',', value_parser = parse_check)]
        checks: Option<Vec<Option<passerelle_kit::checks::Check>>>,
    },
}

/// NAME=VALUE, without echoing what was given (it may be a secret).
fn parse_secret(s: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match s.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.to_string())),
        None => (s.trim(), None),
    };
    if name.is_empty() {
        return Err(
            "expected NAME=VALUE, or NAME with its value in PASSERELLE_SECRET_<NAME>".into(),
        );
    }
    Ok((name.to_string(), value))
}

fn parse_now(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    passerelle_kit::cassette::parse_now(s)
}

fn parse_window(s: &str) -> Result<(u32, u32), String> {
    passerelle_kit::cassette::parse_window(s)
}

fn parse_check(s: &str) -> Result<Option<passerelle_kit::checks::Check>, String> {
    if s == "none" {
        return Ok(None);
    }
    <passerelle_kit::checks::Check as ValueEnum>::from_str(s, false)
        .map(Some)
        .map_err(|_| {
            let names: Vec<&str> = passerelle_kit::checks::Check::ALL
                .iter()
                .map(|c| c.name())
                .collect();
            format!("`{s}` is not a check: {} or none", names.join(", "))
        })
}
