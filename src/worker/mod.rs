//! The background worker: wakes every second, renews, retries or ends the subscriptions that are
//! due, and delivers the Treefort updates that are due. A round that found more work than it may
//! take is followed by the next one at once, so a backlog drains at full speed. Webhooks to the app owner's endpoints go
//! from a loop of their own, so a slow endpoint never delays Treefort's updates. Work
//! is claimed with a lease in the database, so any number of instances may run it. Stopping waits
//! for the round in progress, so nothing claimed is dropped half-way.

use std::time::Duration;

use actix_web::web;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::services::{cancel, checkout, emails, gateway_events, outbox, renewal, webhooks};
use crate::state::AppState;

const INTERVAL: Duration = Duration::from_secs(1);
const WEBHOOK_INTERVAL: Duration = Duration::from_millis(500);
const BATCH: i64 = 100;
/// The most subscriptions one round renews, and Treefort updates it delivers (in waves).
const ROUND_LIMIT: i64 = 1_000;

pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    state: web::Data<AppState>,
}

impl WorkerHandle {
    /// Asks the worker to stop after the wave it is in, and waits for it.
    pub async fn stop(self) {
        self.state
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub fn spawn(state: web::Data<AppState>) -> WorkerHandle {
    let (stop, mut stopped) = watch::channel(false);
    let webhooks = tokio::spawn(webhook_loop(state.clone(), stop.subscribe()));
    let emails = tokio::spawn(email_loop(state.clone(), stop.subscribe()));
    let handle_state = state.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(INTERVAL) => {
                    // A full round leaves work behind: go again (still stoppable between rounds).
                    while run_once(&state).await && !*stopped.borrow() {}
                }
            }
        }
        let _ = webhooks.await;
        let _ = emails.await;
        tracing::info!("worker stopped");
    });
    WorkerHandle {
        stop,
        task,
        state: handle_state,
    }
}

/// Starts the webhook deliveries that are due, every half second and whenever a delivery ends
/// (its slot is free), without waiting for those in flight (each endpoint's slots bound them).
/// Stopping waits for the ones in flight.
async fn webhook_loop(state: web::Data<AppState>, mut stopped: watch::Receiver<bool>) {
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            () = wait_for_webhook_turn(&state) => {
                while in_flight.try_join_next().is_some() {}
                match webhooks::delivery::dispatch(&state).await {
                    Ok(tasks) => {
                        for task in tasks {
                            in_flight.spawn(async move { let _ = task.await; });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "starting webhook deliveries failed"),
                }
            }
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Sends the shoppers' emails that are due, every second, a batch after another while a batch
/// comes back full. Apart from the rounds, so a slow or failing SMTP server never delays a renewal.
/// Stopping waits for the batch in flight.
async fn email_loop(state: web::Data<AppState>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tokio::time::sleep(INTERVAL) => {
                while !*stopped.borrow() && send_email_batch(&state).await {}
            }
        }
    }
}

/// One batch of due emails; whether it was full (more may be due).
async fn send_email_batch(state: &AppState) -> bool {
    match emails::send::send_due(state).await {
        Ok(n) => n >= emails::send::BATCH as usize,
        Err(e) => {
            tracing::warn!(error = %e, "sending emails failed");
            false
        }
    }
}

/// Sends every email that is due now (for tests and time travel, which drive rounds themselves).
pub async fn send_emails(state: &AppState) {
    while send_email_batch(state).await {}
}

/// Half a second, or less when a delivery ends first.
async fn wait_for_webhook_turn(state: &AppState) {
    tokio::select! {
        _ = tokio::time::sleep(WEBHOOK_INTERVAL) => {}
        _ = state.webhooks.freed.notified() => {}
    }
}

/// Starts every webhook delivery that is due and waits until none is in flight (for tests, which
/// drive rounds themselves).
pub async fn deliver_webhooks(state: &web::Data<AppState>) {
    loop {
        let tasks = webhooks::delivery::dispatch(state)
            .await
            .unwrap_or_default();
        let started = tasks.len();
        for task in tasks {
            let _ = task.await;
        }
        if started == 0 && state.webhooks.is_idle() {
            return;
        }
        if started == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One round of work. Errors are logged; the next round tries again. Returns whether work was
/// left behind (a batch was full).
pub async fn run_once(state: &AppState) -> bool {
    let _one_at_a_time = state.worker_round.lock().await;
    let started = std::time::Instant::now();
    let more = round(state).await;
    state.metrics.observe_round(started.elapsed(), more);
    more
}

fn log_reconciled(reconciled: Result<checkout::Reconciled, crate::error::ApiError>) {
    match reconciled {
        Ok(done) if done == Default::default() => {}
        Ok(done) => tracing::info!(
            completed = done.completed,
            released = done.released,
            waiting = done.waiting,
            "checkout attempts left unfinished were reconciled with the gateway"
        ),
        Err(e) => tracing::warn!(error = %e, "reconciling checkout attempts failed"),
    }
}

async fn round(state: &AppState) -> bool {
    // Once a minute is enough for keys kept 24 hours (a DELETE is a write lock on SQLite).
    let minute = state.clock.now().timestamp() / 60;
    let last = state
        .housekeeping_minute
        .swap(minute, std::sync::atomic::Ordering::SeqCst);
    if last != minute {
        match crate::services::idempotency::forget_expired(state).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(forgotten = n, "idempotency keys older than 24 h forgotten"),
            Err(e) => tracing::warn!(error = %e, "forgetting old idempotency keys failed"),
        }
        let forgotten = crate::db::run_db(&state.pool, |conn| {
            Ok(crate::models::subscription_changes::forget_old(conn)?)
        })
        .await;
        if let Err(e) = forgotten {
            tracing::warn!(error = %e, "forgetting old subscription changes failed");
        }
    }
    if state.treefort.is_none() {
        return false;
    }
    if last != minute {
        // Reminders are days ahead: a scan a minute (a write of its watermark) is enough.
        write_reminders(state).await;
    }
    let mut more = false;
    // Gateway events first: a webhook may complete a checkout the reconciliation would look up.
    match gateway_events::process_due(state, BATCH).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(processed = n, "gateway events processed"),
        Err(e) => tracing::warn!(error = %e, "processing gateway events failed"),
    }
    match cancel::finish_unrecorded_cancellations(state).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            finished = n,
            "cancellations whose record was lost were finished"
        ),
        Err(e) => tracing::warn!(error = %e, "finishing cancellations failed"),
    }
    // Renewals beside deliveries: while the database records a wave, Treefort answers the
    // updates queued before. A backlog goes on at once with the next round, which starts with
    // what this one queued; the round that clears it delivers that itself.
    // Checkout attempts are reconciled beside them too, so no renewal waits behind a read
    // of an abandoned 3-D Secure attempt at the gateway (issue 19, hole 4).
    let (renewed, delivered, reconciled) = tokio::join!(
        renewal::process_due(state, ROUND_LIMIT),
        outbox::deliver_due(state, ROUND_LIMIT),
        checkout::reconcile_stale_claims(state)
    );
    log_reconciled(reconciled);
    let mut queued = false;
    match renewed {
        Ok(stats) if stats == renewal::RoundStats::default() => {}
        Ok(stats) => {
            more |= stats.handled() >= ROUND_LIMIT as usize;
            // A turn that was not skipped may have queued a Treefort update.
            queued = stats.handled() > stats.skipped;
            tracing::info!(?stats, "subscriptions processed")
        }
        Err(e) => tracing::warn!(error = %e, "renewal round failed"),
    }
    more |= delivered_all(delivered);
    if queued && !more {
        more |= delivered_all(outbox::deliver_due(state, ROUND_LIMIT).await);
    }
    more
}

/// Writes the reminder emails whose moment came (see `emails::reminders`).
async fn write_reminders(state: &AppState) {
    let now = crate::clock::naive(state.clock.now());
    let (trial, renewal) = (
        state.settings.email.trial_reminder,
        state.settings.email.renewal_reminder,
    );
    let written = crate::db::run_db(&state.pool, move |conn| {
        crate::db::write_transaction(conn, |conn| -> Result<_, crate::error::ApiError> {
            Ok(emails::reminders::write_due(conn, trial, renewal, now)?)
        })
    })
    .await;
    match written {
        Ok(0) => {}
        Ok(n) => tracing::info!(written = n, "reminder emails written"),
        Err(e) => tracing::warn!(error = %e, "writing reminder emails failed"),
    }
}

/// Logs a delivery step; returns whether it left work behind (it delivered a full round).
fn delivered_all(delivered: Result<usize, crate::error::ApiError>) -> bool {
    match delivered {
        Ok(0) => false,
        Ok(delivered) => {
            tracing::info!(delivered, "Treefort updates delivered");
            delivered >= ROUND_LIMIT as usize
        }
        Err(e) => {
            tracing::warn!(error = %e, "delivering Treefort updates failed");
            false
        }
    }
}
