//! The `treefort-webpay` command: serve (default), worker, migrate, and the plans/promo commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use treefort_webpay::cli::{
    self, ApiKeysCommand, EmailsCommand, OutboxCommand, PaymentsCommand, PlansCommand,
    PromoCommand, SigningKeysCommand, WebhooksCommand,
};
use treefort_webpay::config::Settings;
use treefort_webpay::startup::{build_state, Application};

#[derive(Debug, Parser)]
#[command(
    name = "treefort-webpay",
    version,
    about = "Payment provider for Treefort's Web Payment integration"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, then serve HTTP and run the background worker (the default).
    Serve,
    /// Run only the background worker (for split web/worker deployments).
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage subscription plans.
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Manage promo codes.
    #[command(subcommand)]
    Promo(PromoCommand),
    /// Inspect and re-drive the queue of Treefort updates.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// List payments, and refund one through the payment gateway.
    #[command(subcommand)]
    Payments(PaymentsCommand),
    /// API keys of the app owner's backend for the /v1 management API.
    #[command(subcommand)]
    Apikeys(ApiKeysCommand),
    /// The app owner's webhook endpoints: add, list, disable, enable, delete, roll a secret,
    /// see attempts, redeliver an event.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The keys that sign launch tokens: rotate, list.
    #[command(subcommand)]
    SigningKeys(SigningKeysCommand),
    /// Shoppers' emails: list, show one, send one again.
    #[command(subcommand)]
    Emails(EmailsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => with_settings(|settings| async move {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "treefort-webpay listening");
            let state = app.state();
            if let Some(sim) = app.simulator() {
                // Shown once, to the person who started it (the simulator is its only user).
                println!(
                    "Local mode: provider key {} (Treefort's part is played by the simulator)",
                    sim.provider_key().expose()
                );
                println!(
                    "Local mode: open {}/simulator",
                    state.settings.public_base_url
                );
            }
            app.run_until_stopped().await.map_err(|e| e.to_string())
        }),
        Command::Worker => with_settings(|settings| async move {
            let state = actix_web::web::Data::new(build_state(settings, Default::default()).await?);
            let worker = treefort_webpay::worker::spawn(state);
            tracing::info!("worker running; stop with SIGTERM or Ctrl-C");
            shutdown_signal().await;
            worker.stop().await;
            Ok(())
        }),
        Command::Migrate => cli::open_database().and_then(|_| print("database is up to date")),
        Command::Plans(command) => cli::open_database()
            .and_then(|mut conn| cli::plans(&mut conn, command))
            .and_then(print),
        Command::Promo(command) => cli::open_database()
            .and_then(|mut conn| cli::promo(&mut conn, command))
            .and_then(print),
        Command::Outbox(command) => cli::open_database()
            .and_then(|mut conn| cli::outbox(&mut conn, command))
            .and_then(print),
        Command::Payments(PaymentsCommand::List { user, json, limit }) => cli::open_database()
            .and_then(|mut conn| cli::payments_list(&mut conn, user.as_deref(), json, limit))
            .and_then(print),
        Command::Payments(PaymentsCommand::Refund { id, amount }) => refund(id, amount),
        Command::Apikeys(command) => cli::open_database()
            .and_then(|mut conn| cli::apikeys(&mut conn, command))
            .and_then(print),
        Command::Webhooks(command) => Settings::from_env()
            .and_then(|settings| {
                let mut conn = cli::open_database()?;
                cli::webhooks::run(&mut conn, &settings, command)
            })
            .and_then(print),
        Command::Emails(command) => Settings::from_env()
            .and_then(|settings| {
                let mut conn = cli::open_database()?;
                cli::emails::run(&mut conn, &settings, command)
            })
            .and_then(print),
        Command::SigningKeys(command) => Settings::from_env()
            .and_then(|settings| {
                let mut conn = cli::open_database()?;
                cli::signing_keys::run(&mut conn, &settings, command)
            })
            .and_then(print),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("treefort-webpay: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a command's output. A reader that stopped reading (`| head -n 1`) is no failure: the
/// command's work is done, and what is left unread was not wanted.
fn print(out: impl std::fmt::Display) -> Result<(), String> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{out}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the output: {e}"))
        }
        _ => Ok(()),
    }
}

/// `payments refund`: through the gateway the settings name (Stripe keys, or the sandbox).
fn refund(id: i64, amount: Option<i64>) -> Result<(), String> {
    let settings = Settings::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let state = build_state(settings, Default::default()).await?;
        let payment = treefort_webpay::services::payments::refund(&state, id, amount, None)
            .await
            .map_err(|e| e.message)?;
        let refunded = treefort_webpay::domain::money::Money {
            amount: payment.refunded_amount,
            ..payment.money()
        };
        print(format_args!(
            "payment #{} refunded through {}: {} of {} given back in total",
            payment.id,
            payment.gateway,
            treefort_webpay::domain::locale::Lang::En.money(&refunded),
            treefort_webpay::domain::locale::Lang::En.money(&payment.money())
        ))
    })
}

/// Reads settings, sets up logging and runs `f` on a multi-threaded runtime.
fn with_settings<F, Fut>(f: F) -> Result<(), String>
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let settings = Settings::from_env()?;
    // Kept until the end, so that the lines still queued are written before the process exits.
    let _log_writer = treefort_webpay::telemetry::init_logging(settings.log_format);
    tracing::info!(database = %settings.database_url.redacted(), "starting");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(f(settings))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
