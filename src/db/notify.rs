//! Changes announced between instances (PostgreSQL LISTEN/NOTIFY): a catalog change is told to
//! this app at once and to every instance at commit; subscription changes are announced by the
//! change feed's triggers; one listener thread per app hears both.

use super::*;

/// The channel a catalog change is announced on (PostgreSQL `NOTIFY`, sent at commit).
pub const CATALOG_CHANNEL: &str = "treefort_webpay_catalog";

/// Tells this app's catalog at once that a change is being made (its pool's `Commits`), and announces it to every
/// instance when the transaction commits (PostgreSQL; SQLite has one writer process at a time and
/// is left to the version check).
pub fn notify_catalog_change(conn: &mut AnyConnection) -> diesel::QueryResult<()> {
    if let Some(observer) = observer(conn) {
        observer.commits.catalog_changing();
    }
    if let AnyConnection::Postgres(pg) = conn {
        pg.batch_execute(&format!("NOTIFY {CATALOG_CHANNEL}"))?;
    }
    Ok(())
}

/// The channel the change feed's triggers announce a subscription change on (see the migration
/// `subscription_changes`).
pub const SUBSCRIPTIONS_CHANNEL: &str = "treefort_webpay_subscriptions";

/// What arrived on the listening connection since the last call of `tell`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrived {
    pub catalog: bool,
    pub subscriptions: bool,
}

/// Waits for announcements of catalog and subscription changes on a connection of its own. `tell`
/// is called about every 20 ms with what arrived, and answers whether to go on listening. Blocking:
/// run it on a thread of its own. Reconnects after an error, telling both as arrived (what was
/// announced meanwhile is unknown); returns at once for SQLite.
pub fn listen_for_changes(url: &DatabaseUrl, mut tell: impl FnMut(Arrived) -> bool) {
    if url.backend != Backend::Postgres {
        return;
    }
    while tell(Arrived::default()) {
        let listening = diesel::PgConnection::establish(&url.target).and_then(|mut pg| {
            pg.batch_execute(&format!(
                "LISTEN {CATALOG_CHANNEL}; LISTEN {SUBSCRIPTIONS_CHANNEL}"
            ))
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(pg)
        });
        let mut pg = match listening {
            Ok(pg) => pg,
            Err(e) => {
                tracing::warn!(error = %e, "listening for changes failed; trying again");
                std::thread::sleep(std::time::Duration::from_secs(2));
                continue;
            }
        };
        // Announcements made while the connection was down are lost: look again.
        let mut arrived = Arrived {
            catalog: true,
            subscriptions: true,
        };
        loop {
            // Reads what arrived on the socket: no round trip to the server.
            let mut failed = false;
            for notification in pg.notifications_iter() {
                match notification {
                    Ok(n) if n.channel == SUBSCRIPTIONS_CHANNEL => arrived.subscriptions = true,
                    Ok(_) => arrived.catalog = true,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            if !tell(std::mem::take(&mut arrived)) {
                return;
            }
            if failed {
                tracing::warn!("the change listener's connection failed; listening again");
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
