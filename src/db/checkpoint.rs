//! SQLite's WAL checkpoints on a thread of their own. By default the commit that takes the WAL
//! past 1 000 pages copies them into the database file and waits for the disk, right after its
//! commit, in its writer's turn (`SQLITE_WRITER`): every writer queued behind it waits too (p99
//! of the checkout-session endpoint 19 ms with it, 10 ms without). The service's connections
//! leave that to this thread, which checkpoints every `INTERVAL` without holding up writers
//! (`PASSIVE`).
//!
//! A commit starts the WAL over only when nothing in it is left to copy, which a checkpoint
//! beside the writers seldom sees while writes go on (one commit during it is enough). So once
//! the WAL holds more than `START_OVER_FRAMES`, a last passive checkpoint, in the writers' turn
//! (`single_write`), copies what is left and the next commit starts the WAL over. Writers wait
//! for that one only, and it is kept short (`catch_up`). A checkpoint syncs the database file
//! only when it reaches the end of the WAL, which the passes beside the writers never do
//! (something new is always behind them), so the pages they copied pile up unsynced in the
//! kernel, and the pass in the turn waited 25 to 40 ms for them. They are synced first, outside
//! the turn, and passes back to back leave the last one little to copy: about 9 ms in the turn,
//! every few seconds at the most the writers can do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl};

use super::{AnyConnection, DbPool};

/// Set on each of the service's SQLite connections: no checkpoint at commit. (No
/// `journal_size_limit`: cutting a 256 MB WAL back as it starts over stalled writers for 75 ms;
/// the file is emptied once writes pause instead.)
pub(super) const CONNECTION_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0;";

const INTERVAL: Duration = Duration::from_millis(200);

/// 262 144 pages of 4 KiB: 1 GB of WAL. The checkpoint in the writers' turn waits for the disk
/// while writers wait (about 9 ms after `catch_up` on this machine, 25 to 110 ms without it,
/// longer as the database grows: the pages of the token index are written all over the file), so
/// it must be rare: at the most these writers can do (33 000 checkout sessions a second, 2 pages
/// each) it comes every 4 s; at 1 000 a second, every 2 minutes, if the passive checkpoints never
/// let a commit start the WAL over.
const START_OVER_FRAMES: i32 = 262_144;

/// A WAL that held more than 16 384 pages (64 MB) since it was last emptied is emptied
/// (`TRUNCATE`, in the writers' turn: nothing is left to copy, so it is quick) once a pass finds
/// nothing written since the one before.
const SHRINK_FRAMES: i32 = 16_384;

/// How long the database file's sync may take before it is given up: the checkpoints go on
/// without it (the pass in the writers' turn then syncs, as SQLite does), so a stuck disk never
/// stops them while the WAL grows.
const SYNC_LIMIT: Duration = Duration::from_secs(2);

/// Checkpoints as long as it is kept (the thread ends within `INTERVAL` of its drop).
pub struct Checkpointer {
    _running: mpsc::Sender<()>,
    syncs_given_up: Arc<AtomicU64>,
}

impl Checkpointer {
    pub fn start(pool: DbPool) -> Result<Self, String> {
        let (running, stopped) = mpsc::channel();
        let syncs_given_up = Arc::new(AtomicU64::new(0));
        let mut sync = Sync {
            given_up: syncs_given_up.clone(),
            running: None,
        };
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&pool, &stopped, &mut sync))
            .map_err(|e| format!("cannot start the SQLite checkpoint thread: {e}"))?;
        Ok(Self {
            _running: running,
            syncs_given_up,
        })
    }

    /// Syncs of the database file given up after `SYNC_LIMIT` (or skipped while one given up
    /// still runs): a disk this slow needs looking at.
    pub fn syncs_given_up(&self) -> u64 {
        self.syncs_given_up.load(Ordering::Relaxed)
    }
}

/// The `sync` of the database file: at most one runs, and it is waited for `SYNC_LIMIT` at most.
struct Sync {
    given_up: Arc<AtomicU64>,
    /// One given up and still running (a process stuck on the disk cannot even be killed).
    running: Option<std::process::Child>,
}

impl Sync {
    /// Runs `command` (a sync of the database file) and waits for it up to `limit`.
    fn bounded(
        &mut self,
        mut command: std::process::Command,
        limit: Duration,
    ) -> Result<(), String> {
        if let Some(child) = &mut self.running {
            if matches!(child.try_wait(), Ok(None)) {
                self.given_up.fetch_add(1, Ordering::Relaxed);
                return Err("the last sync of the database file is still running".into());
            }
            self.running = None;
        }
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sync: {e}"))?;
        let deadline = std::time::Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("sync: {status}")),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => break,
                Err(e) => return Err(format!("sync: {e}")),
            }
        }
        let _ = child.kill();
        self.running = Some(child);
        self.given_up.fetch_add(1, Ordering::Relaxed);
        Err(format!(
            "sync of the database file took over {limit:?}; given up"
        ))
    }
}

fn run(pool: &DbPool, stopped: &mpsc::Receiver<()>, sync: &mut Sync) {
    let mut failing = false;
    let mut previous_log = 0;
    // The second checkpoint is not taken again until the WAL has grown by as much once more: when
    // a reader or another process kept the WAL from starting over, every pass would stall writers.
    let mut second_at = START_OVER_FRAMES;
    // The WAL file keeps the size it grew to when it starts over; it is emptied once writes pause.
    let mut grown = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        let outcome = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
            let copied = checkpoint(&mut conn, "PASSIVE")?;
            grown |= copied.log > SHRINK_FRAMES;
            let quiet =
                copied.log > 0 && copied.log == previous_log && copied.checkpointed == copied.log;
            if quiet && grown {
                // Readers still in the WAL are waited for briefly, not for the busy timeout
                // while every writer waits: if they stay, the next quiet pass tries again.
                let emptied = super::single_write(&mut conn, |c| {
                    set_busy_timeout(c, 100)?;
                    let emptied = checkpoint(c, "TRUNCATE");
                    set_busy_timeout(c, super::BUSY_TIMEOUT_MS)?;
                    emptied
                })?;
                grown = emptied.log > 0;
            } else if copied.log > second_at {
                // What was committed meanwhile, in the writers' turn: then nothing is left to
                // copy, and the next commit starts the WAL over.
                catch_up(&mut conn, copied.log, sync)?;
                let started = std::time::Instant::now();
                let last = super::single_write(&mut conn, |c| checkpoint(c, "PASSIVE"))?;
                tracing::debug!(
                    frames = last.log,
                    copied = last.checkpointed,
                    writers_waited_ms = started.elapsed().as_millis() as u64,
                    "SQLite WAL checkpointed in the writers' turn (all copied: it starts over)"
                );
                second_at = copied.log + START_OVER_FRAMES;
            } else if copied.log < START_OVER_FRAMES {
                second_at = START_OVER_FRAMES;
            }
            previous_log = copied.log;
            Ok(())
        });
        match outcome {
            Ok(()) => failing = false,
            // Once per failure, not every 200 ms; the next commit's WAL is checkpointed later.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed; trying again");
            }
            Err(_) => {}
        }
    }
}

/// Passes beside the writers before the one in their turn: back to back, each copies what was
/// committed during the one before, fewer frames each time, until one finds fewer than
/// `CATCH_UP_FRAMES` new (or `CATCH_UP_PASSES` went by). Then the database file's pages they
/// copied are synced (`sync_database_file`), and one more pass copies what came in meanwhile.
const CATCH_UP_PASSES: usize = 8;
const CATCH_UP_FRAMES: i32 = 256;

fn catch_up(conn: &mut AnyConnection, mut frames: i32, sync: &mut Sync) -> Result<(), String> {
    for _ in 0..CATCH_UP_PASSES {
        let pass = checkpoint(conn, "PASSIVE")?;
        let new = pass.log - frames;
        frames = pass.log;
        if new < CATCH_UP_FRAMES {
            break;
        }
    }
    if let Err(e) = sync_database_file(conn, sync) {
        static TOLD: std::sync::Once = std::sync::Once::new();
        TOLD.call_once(|| {
            tracing::warn!(error = %e, "cannot sync the SQLite database file ahead of the writers' turn; the checkpoint in it will take longer");
        });
    }
    checkpoint(conn, "PASSIVE").map(|_| ())
}

/// Waits for the disk to take the database file's pages, from another process (`sync -d`,
/// coreutils 8.24 or later, or BusyBox). Not from this one: that takes a descriptor of the file, and closing one,
/// any one, drops the locks all of this process's SQLite connections hold on it (POSIX locks).
/// Another process (the CLI) then believes it is alone, and when its last connection closes it
/// checkpoints and deletes the WAL under this one's feet ("database disk image is malformed",
/// seen here when this synced the file itself). Without `sync` the pass in the turn does it.
fn sync_database_file(conn: &mut AnyConnection, sync: &mut Sync) -> Result<(), String> {
    let file = database_file(conn)?;
    // An in-memory database has no file.
    if file.is_empty() {
        return Ok(());
    }
    let mut command = std::process::Command::new("sync");
    command.args(["-d", "--", &file]);
    sync.bounded(command, SYNC_LIMIT)
}

#[derive(QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// The main database's file.
fn database_file(conn: &mut AnyConnection) -> Result<String, String> {
    diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<DatabaseFile>(conn)
        .map(|d| d.file)
        .map_err(|e| e.to_string())
}

#[derive(QueryableByName)]
struct Frames {
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Frames copied into the database file.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

fn set_busy_timeout(conn: &mut AnyConnection, ms: u32) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {ms}"))
        .map_err(|e| e.to_string())
}

fn checkpoint(conn: &mut AnyConnection, mode: &str) -> Result<Frames, String> {
    let AnyConnection::Sqlite(conn) = conn else {
        return Ok(Frames {
            log: 0,
            checkpointed: 0,
        });
    };
    diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})"))
        .get_result(conn)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync() -> Sync {
        Sync {
            given_up: Arc::new(AtomicU64::new(0)),
            running: None,
        }
    }

    fn sleeping(seconds: &str) -> std::process::Command {
        let mut command = std::process::Command::new("sleep");
        command.arg(seconds);
        command
    }

    #[test]
    fn a_sync_stuck_on_the_disk_is_given_up_and_counted() {
        let mut sync = sync();
        let limit = Duration::from_millis(100);
        assert!(sync.bounded(sleeping("30"), limit).is_err());
        assert_eq!(sync.given_up.load(Ordering::Relaxed), 1);
        // While one given up still runs, no second one piles up behind it.
        assert!(sync.bounded(sleeping("0"), limit).is_err() || sync.running.is_none());
    }

    #[test]
    fn a_sync_that_ends_in_time_counts_nothing() {
        let mut sync = sync();
        assert_eq!(sync.bounded(sleeping("0"), Duration::from_secs(10)), Ok(()));
        assert_eq!(sync.given_up.load(Ordering::Relaxed), 0);
    }
}
