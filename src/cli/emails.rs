//! `treefort-webpay emails …`: what was sent to shoppers (support's view): list, show one
//! (headers and text part; the shopper's personal link is never shown), and send one again.

use clap::Subcommand;

use crate::config::Settings;
use crate::db::AnyConnection;
use crate::models::emails::{self, Email};
use crate::services::emails::send::{message_id, rendered};

#[derive(Debug, Subcommand)]
pub enum EmailsCommand {
    /// The latest emails, newest first.
    List {
        #[arg(long)]
        user: Option<String>,
        /// pending, sent, dead or not_sent.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One email: its headers, state and text part (with the link left out).
    Show { id: i64 },
    /// Send an email again now (with a fresh link), whatever its state.
    Resend { id: i64 },
}

pub fn run(
    conn: &mut AnyConnection,
    settings: &Settings,
    command: EmailsCommand,
) -> Result<String, String> {
    let db = |e: diesel::result::Error| format!("database error: {e}");
    match command {
        EmailsCommand::List {
            user,
            status,
            limit,
            json,
        } => {
            if let Some(s) = status.as_deref().filter(|s| !emails::STATUSES.contains(s)) {
                return Err(format!(
                    "--status must be one of {} (got {s:?})",
                    emails::STATUSES.join(", ")
                ));
            }
            let found = emails::list(
                conn,
                user.as_deref(),
                status.as_deref(),
                limit.clamp(1, 1000),
            )
            .map_err(db)?;
            Ok(if json {
                serde_json::to_string_pretty(&found.iter().map(as_json).collect::<Vec<_>>())
                    .unwrap_or_default()
            } else if found.is_empty() {
                "no email".into()
            } else {
                found.iter().map(line).collect::<Vec<_>>().join("\n")
            })
        }
        EmailsCommand::Show { id } => {
            let email = emails::find(conn, id)
                .map_err(db)?
                .ok_or(format!("no email #{id}"))?;
            let r = rendered(&email, &settings.email.merchant_name, None);
            Ok(format!(
                "Message-ID: <{}>\nFrom: {}\nTo: {}\nSubject: {}\nKind: {}  Locale: {}  Status: {}  Attempts: {}{}\n\n{}",
                message_id(&email, settings.email.from.email.domain()),
                settings.email.from,
                email.to_address,
                r.subject,
                email.kind,
                email.locale,
                email.status,
                email.attempts,
                email.last_error.as_deref().map(|e| format!("\nLast error: {e}")).unwrap_or_default(),
                r.text
            ))
        }
        EmailsCommand::Resend { id } => {
            let now = crate::clock::Clock::System.now().naive_utc();
            if emails::requeue(conn, id, now).map_err(db)? {
                Ok(format!(
                    "email #{id} will be sent again within seconds (by a running worker)"
                ))
            } else {
                Err(format!("no email #{id}"))
            }
        }
    }
}

fn line(e: &Email) -> String {
    format!(
        "#{:<6} {}  {:<15} {:<9} {:<24} {}{}",
        e.id,
        crate::views::time(e.created_at),
        e.kind,
        e.status,
        e.user_id,
        e.to_address,
        e.last_error
            .as_deref()
            .map(|x| format!("  ({x})"))
            .unwrap_or_default()
    )
}

fn as_json(e: &Email) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "kind": e.kind,
        "userId": e.user_id,
        "subscriptionId": e.subscription_id,
        "paymentId": e.payment_id,
        "to": e.to_address,
        "locale": e.locale,
        "status": e.status,
        "attempts": e.attempts,
        "lastError": e.last_error,
        "sentAt": e.sent_at.map(crate::views::time),
        "createdAt": crate::views::time(e.created_at),
    })
}
