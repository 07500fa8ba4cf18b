//! `intake-server`: a thin binary over the library. `init` creates an installation
//! (data directory, key, encrypted database, first admin) and shows the admin's codes
//! on the terminal; `serve` runs the server over an existing one; `user` and `device`
//! administer the store directly, also while the server runs; `backup` and `restore`
//! copy the encrypted database out and back. With a PostgreSQL `database` (issue 14)
//! every command but `backup` and `restore` (PostgreSQL's own tools) works on it;
//! `migrate-data` moves a SQLite installation there.

use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use intake_server::storage::Role;
use intake_server::{
    Application, Settings, admin, backup, init_backend, load_key, open_backend, telemetry,
};

#[derive(Parser)]
#[command(
    name = "intake-server",
    version,
    about = "Intake's sync server: enrolment, sync, the supervisors' API."
)]
struct Cli {
    /// Data directory (store, config) [default: ./intake-data, or INTAKE_SERVER_DATA]
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Config file [default: intake-server.toml in the data directory, if present]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// A PostgreSQL database (postgres://user@host/db) instead of the SQLite store in
    /// the data directory [or INTAKE_SERVER_DATABASE, or `database` in the config].
    /// Without a password: put a URL with one in INTAKE_SERVER_DATABASE.
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new installation in the data directory: the directory (mode 0700), the
    /// database key file (mode 0600), the encrypted database and the first admin, whose
    /// one-time codes are shown on the terminal
    Init {
        /// Print the codes as JSON (for scripts: needed when stdout is not a terminal)
        #[arg(long)]
        json: bool,
    },
    /// Write an encrypted, consistent copy of the database to a new file (safe while
    /// the server runs)
    Backup {
        /// The backup file to create (never overwritten)
        #[arg(long)]
        to: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Put a backup in place of the database (the server must be stopped); the
    /// replaced database is kept beside it
    Restore {
        /// The backup file
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run the server (default 127.0.0.1:8080)
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 (or INTAKE_SERVER_LISTEN)
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage devices
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Erase a client's record for good
    #[command(subcommand)]
    Record(RecordCommand),
    /// Copy this installation's SQLite store into an empty PostgreSQL database and
    /// check the copy (every record's heads, the log); the server must be stopped.
    /// Devices keep syncing with their cursors once servers run on PostgreSQL.
    MigrateData {
        /// The PostgreSQL database (postgres://user@host/db), without a password [or
        /// INTAKE_SERVER_MIGRATE_TO, which may carry one]
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// On PostgreSQL, after pg_restore put a backup in the database and before any
    /// server serves it: give it a new store id (devices then push again what the
    /// backup lacks) and, with --replaced, do again the erasures, revocations and
    /// disabled users the replaced database decided since the backup
    AfterRestore {
        /// The database the backup replaces (postgres://user@host/db), without a
        /// password [or INTAKE_SERVER_REPLACED_DATABASE, which may carry one]
        #[arg(long)]
        replaced: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Erase records closed longer than `[retention] erase_closed_after_days`
    Retention {
        /// Only list what would be erased (id, closed since); change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum RecordCommand {
    /// Erase a record for good: its document, history, index entry and links are
    /// removed, and devices that hold it drop it (unsynced edits too) on their next
    /// sync. The audit trail keeps who, when, the id and the reason.
    Erase {
        /// The record's id
        id: String,
        /// Why (kept in the audit trail)
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation (needed when not on a terminal)
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; prints a one-time enrolment code for their first device (last line)
    Add {
        name: String,
        #[arg(long, value_parser = ["paralegal", "supervisor", "admin"])]
        role: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new enrolment code for an existing user (a new or replaced device)
    Code {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a one-time code with which a supervisor or admin sets her dashboard
    /// password (her old password and browser sessions end now)
    Password {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: all their devices are refused from the next request on
    Disable { name: String },
    /// List users
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// List devices
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device (lost phone): refused from its next request on
    Revoke {
        id: i64,
        /// Also order the device to destroy its store at its next contact (it reports
        /// back; `device list` shows wipe ordered / wipe sent / wiped)
        #[arg(long)]
        wipe: bool,
    },
}

fn main() -> std::process::ExitCode {
    // The message and its causes, not a Debug dump (with RUST_BACKTRACE set, anyhow's
    // would add a stack trace an administrator has no use for).
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake-server: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref(), cli.data.as_deref(), |k| {
        std::env::var(k).ok()
    })?;
    if let Some(url) = &cli.database {
        settings.database =
            Some(intake_server::config::DatabaseUrl::from_flag(url).map_err(anyhow::Error::msg)?);
    }
    // The key itself, when it comes from the environment rather than the key file.
    // Never a flag: any local user can read a process's arguments.
    let env_key = std::env::var("INTAKE_SERVER_KEY")
        .ok()
        .map(zeroize::Zeroizing::new);
    let env_key = env_key.as_deref().map(String::as_str);
    match cli.command {
        Command::Init { json } => init(&settings, env_key, json),
        Command::Backup { .. } | Command::Restore { .. } if settings.database.is_some() => {
            anyhow::bail!(intake_server::startup::PG_BACKUP_REFUSAL)
        }
        Command::Backup { to, json } => {
            let key = load_key(&settings, env_key)?;
            let report = backup::backup(&settings, &key, &to)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "backup written to {} ({} bytes, encrypted with the server's key: keep the key apart from it)",
                    report.file.display(),
                    report.bytes
                );
            }
            Ok(())
        }
        Command::Restore { file, json } => {
            let key = load_key(&settings, env_key)?;
            let report = backup::restore(&settings, &key, &file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "restored {} into {}",
                    file.display(),
                    settings.data_dir.display()
                );
                if let Some(aside) = &report.replaced {
                    println!("the database it replaced is kept as {}", aside.display());
                }
                match report.reapplied {
                    Some(r) => println!(
                        "done again since the backup: {} record(s) erased, {} device(s) revoked, \
                         {} user(s) disabled",
                        r.erasures, r.revocations, r.disabled_users
                    ),
                    None => println!(
                        "the database it replaced could not be read: erase, revoke and disable \
                         again what was done since the backup (intake-server record erase, \
                         device revoke, user disable)"
                    ),
                }
                println!(
                    "devices push again what the backup lacks on their next sync; devices enrolled after the backup must be enrolled again (docs/OPERATIONS.md, Restore)"
                );
            }
            Ok(())
        }
        Command::Serve { listen } => {
            if let Some(l) = listen {
                settings.listen = l.parse().context("--listen")?;
            }
            serve(settings, env_key)
        }
        Command::User(cmd) => user(&settings, env_key, cmd),
        Command::Device(cmd) => device(&settings, env_key, cmd),
        Command::Record(cmd) => record(&settings, env_key, cmd),
        Command::Retention { dry_run } => retention(&settings, env_key, dry_run),
        Command::MigrateData { to, json } => migrate_data(&settings, env_key, to, json),
        Command::AfterRestore { replaced, json } => after_restore(&settings, replaced, json),
    }
}

/// `init`: on a terminal (the codes are for the person running it, not for a service's
/// log), or with `--json` for scripts.
fn init(settings: &Settings, env_key: Option<&str>, json: bool) -> anyhow::Result<()> {
    if !json && !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "init shows one-time admin codes and runs on a terminal; its output is not one \
             (give --json to have the codes as JSON, for a script)"
        );
    }
    let (_storage, first) = init_backend(settings, env_key)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&first)?);
        return Ok(());
    }
    print_init(settings, &first);
    Ok(())
}

fn print_init(settings: &Settings, first: &intake_server::startup::FirstAdmin) {
    let dir = settings.data_dir.display();
    // Never the database URL: it may carry a password.
    let postgres = settings.database.is_some();
    if postgres {
        println!(
            "Created a new Intake store in the PostgreSQL database with the admin account \"admin\"."
        );
    } else {
        println!("Created a new Intake store in {dir} with the admin account \"admin\".");
    }
    match &first.key_file {
        None if postgres => println!(
            "PostgreSQL does not encrypt it at rest: protect the disk, the backups and the \
             database's access (docs/SECURITY.md)."
        ),
        Some(path) => {
            println!("The database key is in {} (mode 0600).", path.display());
            println!(
                "Keep a copy of it somewhere safe and apart from the backups: without it the \
                 database and every backup are unreadable."
            );
        }
        None => println!("The database is encrypted with the key you supplied."),
    }
    let url = format!("http://{}", settings.listen);
    println!();
    if postgres {
        println!("Start the server: intake-server serve (with the same database setting)");
    } else {
        println!("Start the server: intake-server --data {dir} serve");
    }
    println!(
        "Then, within {} minutes, set the admin's dashboard password at {url}/set-password",
        settings.enrolment_code_minutes
    );
    println!("with the one-time code {}", first.sign_in.code);
    println!(
        "or enrol the admin's device: intake enroll --server {url} --code {}",
        first.enrolment.enrolment_code
    );
    println!("(new codes: intake-server user password admin / intake-server user code admin)");
}

fn serve(settings: Settings, env_key: Option<&str>) -> anyhow::Result<()> {
    telemetry::init("info", false);
    let storage = open_backend(&settings, env_key)?;
    // Held while the server runs: `restore` refuses to swap the database under it.
    // Not on PostgreSQL: several servers share the database, and `restore` is
    // PostgreSQL's own tool there.
    let _lock = match settings.database {
        None => Some(intake_server::startup::ServeLock::acquire(
            &settings.data_dir,
        )?),
        Some(_) => None,
    };
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if settings.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{addr}");
    let data = match settings.database {
        None => format!("data in {}", settings.data_dir.display()),
        // Never the URL: it may carry a password.
        Some(_) => "data in PostgreSQL".to_string(),
    };
    let retention = settings.retention.clone();
    // Built before anything is said: a refused transport (plain HTTP on a public
    // address) must not be announced as listening first.
    let app = Application::build(settings, storage.clone(), listener)?;
    println!("Intake server listening on {url} ({data})");
    println!("  dashboard: {url}/    health: {url}/health    API: {url}/openapi.json");
    // Retention runs once a day in the background when it is set.
    intake_server::retention::spawn_daily(storage, retention);
    actix_web::rt::System::new().block_on(app.run())?;
    Ok(())
}

fn store(
    settings: &Settings,
    env_key: Option<&str>,
) -> anyhow::Result<std::sync::Arc<dyn intake_server::storage::Storage>> {
    open_backend(settings, env_key)
}

fn print_enrolment(e: &admin::Enrolment, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(e)?);
    } else {
        println!(
            "{} ({}{}): enrol their device before {} with:",
            e.user.name,
            e.user.role.as_str(),
            e.user
                .team
                .as_deref()
                .map(|t| format!(", team {t}"))
                .unwrap_or_default(),
            e.expires_at.format("%Y-%m-%d %H:%M UTC")
        );
        println!("  intake enroll --server URL --code CODE");
        println!("{}", e.enrolment_code);
    }
    Ok(())
}

fn print_sign_in(c: &admin::SignInCode, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(c)?);
    } else {
        println!(
            "{}: set the dashboard password at SERVER/set-password before {} with the one-time code {}",
            c.user,
            c.expires_at.format("%Y-%m-%d %H:%M UTC"),
            c.code
        );
    }
    Ok(())
}

fn user(settings: &Settings, env_key: Option<&str>, cmd: UserCommand) -> anyhow::Result<()> {
    let storage = store(settings, env_key)?;
    let minutes = settings.enrolment_code_minutes;
    match cmd {
        UserCommand::Add {
            name,
            role,
            team,
            json,
        } => {
            let role = Role::parse(&role).context("role")?;
            let e = admin::add_user(storage.as_ref(), &name, role, team.as_deref(), minutes)?;
            let sign_in = match role {
                Role::Paralegal => None,
                _ => Some(admin::sign_in_code(storage.as_ref(), &name, minutes)?),
            };
            if json {
                // One document: the enrolment, plus the sign-in code for the dashboard.
                let mut v = serde_json::to_value(&e)?;
                if let Some(c) = &sign_in {
                    v["sign_in_code"] = c.code.clone().into();
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            if let Some(c) = &sign_in {
                print_sign_in(c, false)?;
            }
            print_enrolment(&e, false)
        }
        UserCommand::Password { name, json } => print_sign_in(
            &admin::sign_in_code(storage.as_ref(), &name, minutes)?,
            json,
        ),
        UserCommand::Code { name, json } => {
            print_enrolment(&admin::new_code(storage.as_ref(), &name, minutes)?, json)
        }
        UserCommand::Disable { name } => {
            anyhow::ensure!(storage.set_user_disabled(&name, true)?, "no user {name}");
            println!("disabled {name}: their devices are refused from their next request");
            Ok(())
        }
        UserCommand::List { json } => {
            let users = storage.users()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for u in users {
                    let team = u.team.as_deref().unwrap_or("-");
                    let state = if u.disabled { "disabled" } else { "active" };
                    println!(
                        "{:<20} {:<11} {:<16} {state}",
                        u.name,
                        u.role.as_str(),
                        team
                    );
                }
            }
            Ok(())
        }
    }
}

fn device(settings: &Settings, env_key: Option<&str>, cmd: DeviceCommand) -> anyhow::Result<()> {
    let storage = store(settings, env_key)?;
    match cmd {
        DeviceCommand::List { json } => {
            let devices = storage.devices()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&devices)?);
            } else {
                for d in devices {
                    // Lost phones (issue 12): active / revoked / wipe ordered / wipe
                    // sent / wiped, with the time of that step.
                    let state = match d.status() {
                        "active" => "active".to_string(),
                        s => format!("{s} {}", d.status_at().format("%Y-%m-%d %H:%M UTC")),
                    };
                    println!(
                        "{:<5} {:<20} {} {:<20} {state}",
                        d.id,
                        d.user,
                        d.enrolled_at.format("%Y-%m-%d"),
                        d.label
                    );
                }
            }
            Ok(())
        }
        DeviceCommand::Revoke { id, wipe } => {
            anyhow::ensure!(
                admin::revoke_device(storage.as_ref(), id, wipe, chrono::Utc::now())?,
                "no device {id}"
            );
            if wipe {
                println!(
                    "revoked device {id} and ordered a wipe: at its next contact it destroys its \
                     store and reports back (see `device list`)"
                );
            } else {
                println!("revoked device {id}: it is refused from its next request");
            }
            Ok(())
        }
    }
}

fn record(settings: &Settings, env_key: Option<&str>, cmd: RecordCommand) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let RecordCommand::Erase { id, reason, yes } = cmd;
    let id: intake_shared::RecordId = id
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not a record id"))?;
    // Checked before asking, so a missing reason is said at once.
    let reason = intake_server::erase::check_reason(&reason)?;
    if !yes {
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "not on a terminal: pass --yes to erase without confirmation"
        );
        eprintln!("Erasing record {id} for good: it cannot be undone, and devices that");
        eprintln!("hold it drop it, with any edits they have not synced.");
        eprint!("Type the record id again to confirm: ");
        std::io::stderr().flush()?;
        let mut typed = String::new();
        std::io::stdin().lock().read_line(&mut typed)?;
        anyhow::ensure!(
            typed.trim() == id.to_string(),
            "the id typed does not match: nothing erased"
        );
    }
    let storage = store(settings, env_key)?;
    let who = intake_server::erase::Requester {
        via: "command line",
        ..Default::default()
    };
    intake_server::erase::erase(storage.as_ref(), id, &reason, &who, chrono::Utc::now())?;
    println!("erased record {id}: devices that hold it drop it on their next sync");
    Ok(())
}

fn retention(settings: &Settings, env_key: Option<&str>, dry_run: bool) -> anyhow::Result<()> {
    let r = &settings.retention;
    anyhow::ensure!(
        r.enabled(),
        "retention is off: set [retention] erase_closed_after_days in the config"
    );
    let storage = store(settings, env_key)?;
    let now = chrono::Utc::now();
    if dry_run {
        let due = intake_server::retention::due(storage.as_ref(), r, now)?;
        for (id, since) in &due {
            println!("{id}  closed since {}", since.format("%Y-%m-%d %H:%M UTC"));
        }
        println!(
            "{} record(s) closed more than {} days would be erased (dry run: nothing changed)",
            due.len(),
            r.erase_closed_after_days
        );
        return Ok(());
    }
    let n = intake_server::retention::apply(storage.as_ref(), r, now)?;
    println!(
        "erased {n} record(s) closed more than {} days",
        r.erase_closed_after_days
    );
    Ok(())
}

fn after_restore(settings: &Settings, replaced: Option<String>, json: bool) -> anyhow::Result<()> {
    let Some(url) = &settings.database else {
        anyhow::bail!(
            "after-restore is for a PostgreSQL database restored with pg_restore (set \
             INTAKE_SERVER_DATABASE or --database); `intake-server restore` does this itself \
             for the SQLite store"
        );
    };
    // Like --database: a password on the command line is readable by every local user.
    let replaced = match replaced {
        Some(url) => Some(
            intake_server::config::DatabaseUrl::from_flag(&url)
                .map_err(|e| anyhow::anyhow!("--replaced: {e}"))?,
        ),
        None => match std::env::var("INTAKE_SERVER_REPLACED_DATABASE") {
            Ok(url) => Some(
                intake_server::config::DatabaseUrl::try_from(url)
                    .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_REPLACED_DATABASE: {e}"))?,
            ),
            Err(_) => None,
        },
    };
    let report = intake_server::pg_restore::after_pg_restore(
        url.expose(),
        replaced.as_ref().map(|u| u.expose()),
        settings.database_ca.as_deref(),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "the restored database has a new store id: devices push again what the backup lacks on their next sync"
    );
    match report.reapplied {
        Some(r) => println!(
            "done again since the backup: {} record(s) erased, {} device(s) revoked, {} user(s) \
             disabled",
            r.erasures, r.revocations, r.disabled_users
        ),
        None => println!(
            "no --replaced database: erase, revoke and disable again what was done since the \
             backup (intake-server record erase, device revoke, user disable)"
        ),
    }
    println!(
        "devices enrolled after the backup must be enrolled again (docs/OPERATIONS.md, PostgreSQL)"
    );
    Ok(())
}

fn migrate_data(
    settings: &Settings,
    env_key: Option<&str>,
    to: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.database.is_none(),
        "migrate-data moves the SQLite store of the data directory: leave `database` \
         (INTAKE_SERVER_DATABASE, --database) unset and name the target with --to"
    );
    // Like --database: a password on the command line is readable by every local user.
    let url = match to {
        Some(url) => intake_server::config::DatabaseUrl::from_flag(&url)
            .map_err(|e| anyhow::anyhow!("--to: {e}"))?,
        None => match std::env::var("INTAKE_SERVER_MIGRATE_TO") {
            Ok(url) => intake_server::config::DatabaseUrl::try_from(url)
                .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_MIGRATE_TO: {e}"))?,
            Err(_) => {
                anyhow::bail!("name the PostgreSQL database with --to or INTAKE_SERVER_MIGRATE_TO")
            }
        },
    };
    let key = load_key(settings, env_key)?;
    let report = intake_server::migrate_data::migrate(settings, &key, url.expose())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for (table, rows) in &report.rows {
        println!("{table:<16} {rows} row(s)");
    }
    println!(
        "copied and checked: {} record(s) with the same heads, {} log entries in the same \
         order, log head {}",
        report.records, report.log_entries, report.log_head
    );
    println!(
        "run the servers with database set to the PostgreSQL database; keep the data \
         directory until they serve (docs/OPERATIONS.md, PostgreSQL)"
    );
    Ok(())
}
