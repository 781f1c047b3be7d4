//! The email loop's work: claims the due emails under a lease (two instances never send one
//! email), renders each with a fresh link, and sends it through SMTP, a few at a time. A 4xx or a
//! lost connection is tried again with backoff for up to 3 days; a 5xx is dead at once. The
//! `Message-ID` comes from the email's id, so a resend after a lost answer is recognisable.
//!
//! Without `SMTP_URL` an email is marked `not_sent`; in local mode it is marked `sent`: it is in
//! the simulator's Inbox.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use futures_util::StreamExt;

use super::render::{render, Rendered};
use super::{links, Facts, Kind};
use crate::clock::naive;
use crate::db::{run_db, write_transaction};
use crate::domain::backoff;
use crate::error::ApiError;
use crate::mailer::{MailError, Outgoing};
use crate::models::emails::{self, Attempted, Email};
use crate::state::AppState;

/// Emails one claim takes.
pub const BATCH: i64 = 16;
/// Emails this instance has in flight at once.
const IN_FLIGHT: usize = 4;
/// How long a claim holds its emails: longer than a batch can take at `IN_FLIGHT` at a time.
const LEASE: TimeDelta = TimeDelta::minutes(10);
/// An email still refused for now after this long is dead.
const RETRY_FOR: TimeDelta = TimeDelta::days(3);
const FIRST_RETRY: Duration = Duration::from_secs(60);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2 * 3600);

/// Sends the due emails; returns how many were tried.
pub async fn send_due(state: &AppState) -> Result<usize, ApiError> {
    let now = naive(state.clock.now());
    let owner = state.instance_id.clone();
    let claimed = run_db(&state.pool, move |conn| {
        write_transaction(conn, |conn| -> Result<_, ApiError> {
            Ok(emails::claim_due(conn, &owner, now, now + LEASE, BATCH)?)
        })
    })
    .await?;
    let tried = claimed.len();
    // A shopper's emails go one after another, oldest first (a receipt before the cancellation
    // that follows it); different shoppers' at once.
    let mut by_user: Vec<Vec<Email>> = Vec::new();
    for email in claimed {
        match by_user
            .iter_mut()
            .find(|line| line[0].user_id == email.user_id)
        {
            Some(line) => line.push(email),
            None => by_user.push(vec![email]),
        }
    }
    futures_util::stream::iter(by_user)
        .map(|line| async move {
            for email in line {
                attempt(state, email).await;
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    Ok(tried)
}

/// The email as it goes out: its rendering with a fresh link.
pub fn rendered(email: &Email, merchant: &str, link: Option<&str>) -> Rendered {
    let facts: Facts = serde_json::from_str(&email.data).unwrap_or_default();
    let kind = Kind::parse(&email.kind).unwrap_or(Kind::Receipt);
    render(kind, &facts, &email.locale, merchant, link)
}

/// The `Message-ID` of an email: the same for every attempt and resend of it.
pub fn message_id(email: &Email, from_domain: &str) -> String {
    format!(
        "email-{}.{}@{from_domain}",
        email.id,
        email.created_at.and_utc().timestamp()
    )
}

async fn attempt(state: &AppState, email: Email) {
    let now = naive(state.clock.now());
    // No SMTP server: local mode's Inbox shows it (sent); elsewhere it is not sent.
    let unsent = state.mailer.is_none() && !state.settings.local_mode;
    let outcome = match &state.mailer {
        None if unsent => Err(MailError::Permanent(
            "no SMTP_URL: emails are not sent".into(),
        )),
        None => Ok(()),
        Some(mailer) => match link_of(state, &email, now).await {
            Ok(link) => {
                let settings = &state.settings.email;
                let r = rendered(&email, &settings.merchant_name, link.as_deref());
                mailer
                    .send(&Outgoing {
                        to: &email.to_address,
                        message_id: message_id(&email, settings.from.email.domain()),
                        subject: &r.subject,
                        text: r.text,
                        html: r.html,
                    })
                    .await
            }
            Err(e) => Err(MailError::Transient(e.to_string())),
        },
    };
    let attempted = judge(&email, outcome, unsent, now);
    let kind = email.kind.clone();
    let outcome_label = match attempted.status.as_str() {
        emails::SENT => "sent",
        emails::PENDING => "retried",
        emails::NOT_SENT => "not_sent",
        _ => "dead",
    };
    if attempted.status == emails::DEAD {
        tracing::warn!(email_id = email.id, kind = %kind, error = attempted.last_error.as_deref().unwrap_or_default(), "an email was refused for good");
    }
    let (id, owner) = (email.id, state.instance_id.clone());
    let recorded = run_db(&state.pool, move |conn| {
        Ok(emails::record_attempt(conn, id, &owner, &attempted)?)
    })
    .await;
    match recorded {
        Ok(true) => state.metrics.counters.emails.inc([&kind, outcome_label]),
        Ok(false) => tracing::warn!(
            email_id = id,
            "an email's lease ran out before its attempt was recorded"
        ),
        Err(e) => tracing::warn!(email_id = id, error = %e, "recording an email's attempt failed"),
    }
}

/// A fresh link for the email's button, if it has one (each attempt, and each view in local
/// mode's Inbox, mints its own).
pub async fn link_of(
    state: &AppState,
    email: &Email,
    now: NaiveDateTime,
) -> Result<Option<String>, ApiError> {
    if !Kind::parse(&email.kind).is_some_and(Kind::has_link) {
        return Ok(None);
    }
    let (email, base) = (email.clone(), state.settings.public_base_url.clone());
    let ttl = state.settings.email.link_ttl;
    run_db(&state.pool, move |conn| {
        Ok(Some(links::mint(conn, &base, &email, ttl, now)?))
    })
    .await
}

/// What an attempt's outcome makes of the email.
fn judge(
    email: &Email,
    outcome: Result<(), MailError>,
    unsent: bool,
    now: NaiveDateTime,
) -> Attempted {
    let attempts = email.attempts + 1;
    let mut attempted = Attempted {
        status: emails::SENT.into(),
        attempts,
        next_attempt_at: None,
        last_error: None,
        sent_at: Some(now),
        locked_by: None,
        locked_until: None,
    };
    match outcome {
        Ok(()) => {}
        Err(e) => {
            attempted.sent_at = None;
            attempted.last_error = Some(e.to_string());
            attempted.status = match e {
                _ if unsent => emails::NOT_SENT.into(),
                MailError::Transient(_) if now < email.created_at + RETRY_FOR => {
                    let wait = backoff::jittered(backoff::exponential(
                        FIRST_RETRY,
                        attempts.max(1) as u32,
                        MAX_RETRY_WAIT,
                    ));
                    attempted.next_attempt_at =
                        Some(now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1)));
                    emails::PENDING.into()
                }
                _ => emails::DEAD.into(),
            };
        }
    }
    attempted
}
