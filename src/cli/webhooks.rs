//! `treefort-webpay webhooks …`: the app owner's webhook endpoints, through the same code as
//! `/v1/webhook-endpoints` (`services::webhooks`). Secrets are printed once, when made.

use clap::Subcommand;

use crate::config::Settings;
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::services::webhooks::{self, EndpointInput, EndpointView};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint; its signing secret is printed once (first line).
    Add {
        #[arg(long)]
        url: String,
        /// Event types to send, comma-separated (default: every type).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List endpoints with their state (enabled, disabled and why, failing since).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop deliveries to an endpoint (queued ones wait until it is enabled).
    Disable { id: i64 },
    /// Resume deliveries to an endpoint, in order, from where they stopped.
    Enable { id: i64 },
    /// Delete an endpoint: nothing more is sent to it (its history stays in the database).
    Delete { id: i64 },
    /// Make a new signing secret (printed once); the old one keeps signing for 24 hours.
    RollSecret { id: i64 },
    /// The latest delivery attempts to an endpoint: status, duration, answer.
    Attempts {
        endpoint: i64,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send an event again now (by its evt_ id): to every endpoint that had it, or to one.
    Redeliver {
        event: String,
        #[arg(long)]
        endpoint: Option<i64>,
    },
}

fn describe(e: &EndpointView) -> String {
    let state = match (&e.disabled_reason, &e.failing_since) {
        (Some(reason), _) => format!("DISABLED ({reason})"),
        (None, Some(since)) => format!("enabled, failing since {since}"),
        (None, None) => "enabled".to_string(),
    };
    let events = e
        .events
        .as_ref()
        .map_or_else(|| "every event".to_string(), |t| t.join(","));
    format!("#{:<4} {}  [{}]  {state}", e.id, e.url, events)
}

pub fn run(
    conn: &mut AnyConnection,
    settings: &Settings,
    command: WebhooksCommand,
) -> Result<String, String> {
    let now = crate::clock::Clock::System.now().naive_utc();
    let message = |e: ApiError| e.message;
    match command {
        WebhooksCommand::Add {
            url,
            events,
            description,
        } => {
            let input = EndpointInput {
                url,
                events: (!events.is_empty()).then_some(events),
                description,
            };
            let added = webhooks::add(conn, settings, input, now).map_err(message)?;
            Ok(format!(
                "{}\nendpoint {} added; the secret above is shown only now",
                added.secret,
                describe(&added.endpoint)
            ))
        }
        WebhooksCommand::List { json } => {
            let all = webhooks::list(conn, now).map_err(message)?;
            if json {
                return Ok(pretty(&all));
            }
            if all.is_empty() {
                return Ok("no webhook endpoints".into());
            }
            Ok(all.iter().map(describe).collect::<Vec<_>>().join("\n"))
        }
        WebhooksCommand::Disable { id } => webhooks::disable(conn, id, now)
            .map(|e| describe(&e))
            .map_err(message),
        WebhooksCommand::Enable { id } => webhooks::enable(conn, id, now)
            .map(|e| describe(&e))
            .map_err(message),
        WebhooksCommand::Delete { id } => webhooks::delete(conn, id, now)
            .map(|()| format!("endpoint #{id} deleted"))
            .map_err(message),
        WebhooksCommand::RollSecret { id } => {
            let rolled = webhooks::roll_secret(conn, settings, id, now).map_err(message)?;
            Ok(format!(
                "{}\nnew secret for endpoint #{id}; the old one keeps signing until {}",
                rolled.secret,
                rolled
                    .endpoint
                    .previous_secret_expires_at
                    .unwrap_or_default()
            ))
        }
        WebhooksCommand::Attempts {
            endpoint,
            limit,
            json,
        } => {
            let attempts =
                webhooks::attempts(conn, endpoint, None, limit.clamp(1, 1000)).map_err(message)?;
            if json {
                return Ok(pretty(&attempts));
            }
            if attempts.is_empty() {
                return Ok(format!("no attempts to endpoint #{endpoint} yet"));
            }
            Ok(attempts
                .iter()
                .map(|a| {
                    format!(
                        "{}  {}  {:>4}  {:>6} ms  {}",
                        a.attempted_at,
                        a.event_id,
                        a.status_code.map_or("-".to_string(), |s| s.to_string()),
                        a.duration_ms,
                        a.error
                            .as_deref()
                            .or(a.response_excerpt.as_deref())
                            .unwrap_or("ok")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        WebhooksCommand::Redeliver { event, endpoint } => {
            let queued = webhooks::redeliver(conn, &event, endpoint, now).map_err(message)?;
            Ok(format!(
                "{event} queued for {queued} endpoint(s); a running worker sends it"
            ))
        }
    }
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
