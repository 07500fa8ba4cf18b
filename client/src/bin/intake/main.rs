//! `intake`: the command-line client. A thin layer over `intake_client::store`: it
//! parses the command line, opens the encrypted store with a passphrase, runs one
//! command and maps failures to exit codes (2: the input was wrong, 1: anything else).
//!
//! Submodules: `open` (home directory, passphrase, opening the store), `input`
//! (parsing what the user typed), `source` and `editor` (values read from a file,
//! standard input or the editor, to keep case content off the command line), `error`
//! (input errors and exit codes), `commands` (the commands that change records),
//! `show` and `list` (what is printed).

mod commands;
mod editor;
mod error;
mod input;
mod list;
mod open;
mod remote;
mod show;
mod source;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use error::exit_code;

/// Offline case intake for community paralegals.
///
/// Records live in an encrypted store on this device (see --home). The passphrase is
/// read from INTAKE_PASSPHRASE, or asked for on the terminal; a new store asks for it
/// twice.
#[derive(Debug, Parser)]
#[command(
    name = "intake",
    version,
    after_help = "Environment:\n  \
        INTAKE_HOME        store directory (instead of --home)\n  \
        INTAKE_PASSPHRASE  the store's passphrase (otherwise asked on the terminal)\n  \
        INTAKE_LANG        language of labels and messages (instead of --lang)\n  \
        VISUAL, EDITOR     the editor --edit opens (default: vi)\n\n\
        Values (--set FIELD=VALUE, comment TEXT, --note, resolve VALUE):\n  \
        @PATH  the file's content (UTF-8, at most 1 MiB, a trailing newline dropped)\n  \
        @-     standard input (one value per command)\n  \
        @@...  a value that starts with @ (@@home is \"@home\")\n\
        Names and stories typed as arguments stay in the shell history and show in `ps`:\n\
        give them with @-, @PATH or --edit FIELD.\n\n\
        Exit codes: 0 done, 2 wrong input (nothing was changed), 1 any other failure."
)]
struct Cli {
    /// Store directory [default: the platform's data directory, then `intake`]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "INTAKE_HOME",
        hide_env = true
    )]
    home: Option<PathBuf>,

    /// Language of labels and messages: sq, sr-Latn, sr-Cyrl, en, tr, bs, rom
    #[arg(
        long,
        global = true,
        value_name = "CODE",
        env = "INTAKE_LANG",
        hide_env = true,
        default_value = "en"
    )]
    lang: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a new record of a form (e.g. `intake`) and print its id
    New {
        /// The form to fill in
        form: String,
        /// Answer a field, e.g. --set municipality=prizren, --set full_name=@- (repeatable)
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Write a field's answer in $VISUAL / $EDITOR (repeatable)
        #[arg(long, value_name = "FIELD")]
        edit: Vec<String>,
        /// Print {"id": ...} instead of the bare id
        #[arg(long)]
        json: bool,
    },
    /// Change answers of a record
    Edit {
        /// The record's id
        id: String,
        /// Answer a field, e.g. --set urgency=high, --set narrative=@story.txt (repeatable)
        #[arg(
            long = "set",
            value_name = "FIELD=VALUE",
            required_unless_present_any = ["clear", "edit"]
        )]
        set: Vec<String>,
        /// Change a field's answer in $VISUAL / $EDITOR, starting from the current one
        /// (repeatable)
        #[arg(long, value_name = "FIELD")]
        edit: Vec<String>,
        /// Remove a field's answer (repeatable)
        #[arg(long, value_name = "FIELD")]
        clear: Vec<String>,
    },
    /// Add a follow-up action (visit, letter, complaint filed, ...) to a record
    Followup {
        /// The record's id
        id: String,
        /// A field of the follow-up form, e.g. --set type=visit (repeatable)
        #[arg(
            long = "set",
            value_name = "FIELD=VALUE",
            required_unless_present = "edit"
        )]
        set: Vec<String>,
        /// Write a field of the follow-up form in $VISUAL / $EDITOR (repeatable)
        #[arg(long, value_name = "FIELD")]
        edit: Vec<String>,
    },
    /// Add a comment to a record
    Comment {
        /// The record's id
        id: String,
        /// The comment, or @PATH, or @- for standard input
        text: String,
    },
    /// Send a record for review; its required fields must be answered
    Submit {
        /// The record's id
        id: String,
    },
    /// Set a record's review status (supervisors)
    Status {
        /// The record's id
        id: String,
        /// draft, submitted, needs_changes, approved, rejected or closed
        status: String,
        /// What to change, e.g. --note "re-ask consent" (or @PATH, @-)
        #[arg(long)]
        note: Option<String>,
    },
    /// Show a record: its answers, conflicts, problems, comments and actions
    Show {
        /// The record's id
        id: String,
        /// Print the whole record as JSON
        #[arg(long)]
        json: bool,
    },
    /// List records, most recently changed first
    List {
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
        /// Only records in this status (draft, submitted, needs_changes, ...)
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
    },
    /// List fields, statuses, assignees and review notes that hold two values written
    /// at the same time on different devices
    Conflicts {
        /// Print the conflicts as JSON
        #[arg(long)]
        json: bool,
    },
    /// Settle a conflict by writing the value to keep
    Resolve {
        /// The record's id
        id: String,
        /// The conflicting field, or status, assigned_to or review_note
        field: String,
        /// The value to keep (any valid value, not only one of the conflicting ones),
        /// or @PATH, or @- for standard input
        value: String,
    },
    /// Enrol this device with a server, using the one-time code an admin gave you
    Enroll {
        /// The server's address, e.g. https://intake.example.org
        #[arg(long)]
        server: String,
        /// The enrolment code, e.g. 7KQ2-MX9D-4HT1
        #[arg(long)]
        code: String,
        /// A name for this device, shown to admins
        #[arg(long, default_value = "")]
        label: String,
        /// Trust only this CA certificate (PEM) instead of the system's
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Allow a plain http:// server on another machine (records and the token
        /// cross the network unencrypted: only on a network you control)
        #[arg(long)]
        insecure_http: bool,
    },
    /// Send your changes to the server and receive everyone else's
    Sync {
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// Trade this device's server token for a new one (the old one stops working once
    /// the new one is used)
    RotateToken,
    /// Assign a record to a user (supervisors)
    Assign {
        /// The record's id
        id: String,
        /// The user's name
        user: String,
    },
    /// Show or set the user name recorded as the author of your changes
    User {
        /// The name to record from now on
        name: Option<String>,
    },
    /// Open the field app in your browser (served on this device only; the passphrase
    /// is typed in the page)
    App {
        /// Print the address instead of opening a browser
        #[arg(long)]
        no_browser: bool,
        /// Lock the store after this many minutes without use
        #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1440))]
        idle_minutes: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake: error: {}", show::terminal_safe(&format!("{e:#}")));
            exit_code(&e)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let lang = input::lang(&cli.lang)?;
    let home = cli.home;
    match cli.command {
        Command::New {
            form,
            set,
            edit,
            json,
        } => commands::new(home, lang, &form, &set, &edit, json),
        Command::Edit {
            id,
            set,
            edit,
            clear,
        } => commands::edit(home, lang, &id, &set, &edit, &clear),
        Command::Followup { id, set, edit } => commands::followup(home, lang, &id, &set, &edit),
        Command::Comment { id, text } => commands::comment(home, lang, &id, &text),
        Command::Submit { id } => commands::status(home, lang, &id, "submitted", None),
        Command::Status { id, status, note } => {
            commands::status(home, lang, &id, &status, note.as_deref())
        }
        Command::Show { id, json } => show::run(home, lang, &id, json),
        Command::List { json, status } => list::list(home, lang, status.as_deref(), json),
        Command::Conflicts { json } => list::conflicts(home, lang, json),
        Command::Resolve { id, field, value } => commands::resolve(home, lang, &id, &field, &value),
        Command::User { name } => commands::user(home, name.as_deref()),
        Command::Enroll {
            server,
            code,
            label,
            ca,
            insecure_http,
        } => remote::enroll(home, &server, &code, &label, ca.as_deref(), insecure_http),
        Command::Sync { json } => remote::sync(home, json),
        Command::RotateToken => remote::rotate_token(home),
        Command::Assign { id, user } => commands::assign(home, lang, &id, &user),
        Command::App {
            no_browser,
            idle_minutes,
        } => app(home, no_browser, idle_minutes),
    }
}

/// `intake app`: serves the field app on 127.0.0.1 until the process is stopped.
fn app(home: Option<PathBuf>, no_browser: bool, idle_minutes: u64) -> anyhow::Result<()> {
    use anyhow::Context;
    let config = intake_client::app::Config {
        home: open::home(home)?,
        idle: std::time::Duration::from_secs(idle_minutes * 60),
    };
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
    let app =
        intake_client::app::RunningApp::start(config, listener).context("cannot start the app")?;
    let url = app.launch_url();
    // The link works once: whoever opens it first gets the session.
    println!("Intake is open at {url}");
    println!("(this link works once; stop the app with Ctrl-C)");
    if !no_browser {
        intake_client::app::open_browser(&url);
    }
    app.wait().context("the app stopped")
}
