use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::TestDatabase;

fn run(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_treefort-webpay"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn refused(output: &Output) -> String {
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one clear line: {stderr}"
    );
    stderr
}

#[test]
fn plans_are_upserted_and_listed_as_json() {
    let db = TestDatabase::create();
    let args = [
        "plans",
        "upsert",
        "--id",
        "1",
        "--name",
        "Monthly",
        "--interval",
        "month",
        "--interval-count",
        "1",
        "--trial-days",
        "7",
        "--grace-days",
        "3",
        "--currency",
        "USD",
        "--amount",
        "999",
        "--divisor",
        "100",
    ];
    assert!(stdout(&run(&db, &args)).contains("plan 1 saved"));
    let mut renamed = args;
    renamed[5] = "Monthly plus";
    stdout(&run(&db, &renamed));
    let list: Value =
        serde_json::from_str(&stdout(&run(&db, &["plans", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "Monthly plus");
    assert_eq!(list[0]["price"]["amount"], 999);
    assert!(refused(&run(
        &db,
        &[
            "plans",
            "upsert",
            "--id",
            "2",
            "--name",
            "X",
            "--interval",
            "week",
            "--currency",
            "USD",
            "--amount",
            "1"
        ]
    ))
    .contains("--interval"));
    assert!(refused(&run(
        &db,
        &[
            "plans",
            "upsert",
            "--id",
            "2",
            "--name",
            "X",
            "--interval",
            "month",
            "--currency",
            "DOLLARS",
            "--amount",
            "1"
        ]
    ))
    .contains("currency"));
}

#[test]
fn promo_codes_are_created_listed_shown_and_disabled() {
    let db = TestDatabase::create();
    let created = stdout(&run(
        &db,
        &[
            "promo",
            "create",
            "--code",
            "Spring25",
            "--percent-off",
            "25",
            "--plans",
            "1,2",
            "--first-time-only",
            "--max-redemptions",
            "100",
            "--expires-at",
            "2099-01-01T00:00:00Z",
            "--note",
            "spring campaign",
        ],
    ));
    assert!(created.contains("Spring25"));
    stdout(&run(
        &db,
        &[
            "promo",
            "create",
            "--code",
            "FIVE",
            "--amount-off",
            "500",
            "--currency",
            "usd",
        ],
    ));
    let list: Value =
        serde_json::from_str(&stdout(&run(&db, &["promo", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let shown: Value =
        serde_json::from_str(&stdout(&run(&db, &["promo", "show", "spring25"]))).unwrap();
    assert_eq!(
        shown["eligibleSubscriptionPlanIds"],
        serde_json::json!([1, 2])
    );
    assert_eq!(shown["maxRedemptions"], 100);
    assert_eq!(shown["active"], true);
    assert!(stdout(&run(&db, &["promo", "disable", "SPRING25"])).contains("disabled"));
    let shown: Value =
        serde_json::from_str(&stdout(&run(&db, &["promo", "show", "Spring25"]))).unwrap();
    assert_eq!(shown["active"], false);
    assert!(stdout(&run(&db, &["promo", "list"])).contains("DISABLED"));
}

#[test]
fn invalid_promo_codes_are_refused_with_one_clear_line() {
    let db = TestDatabase::create();
    assert!(refused(&run(
        &db,
        &[
            "promo",
            "create",
            "--code",
            "SPRING-25",
            "--percent-off",
            "25"
        ]
    ))
    .contains("letters A-Z and digits"));
    assert!(refused(&run(
        &db,
        &["promo", "create", "--code", "X", "--percent-off", "0"]
    ))
    .contains("1 to 100"));
    assert!(refused(&run(
        &db,
        &["promo", "create", "--code", "X", "--percent-off", "101"]
    ))
    .contains("1 to 100"));
    assert!(refused(&run(
        &db,
        &["promo", "create", "--code", "X", "--amount-off", "500"]
    ))
    .contains("--currency"));
    assert!(refused(&run(
        &db,
        &[
            "promo",
            "create",
            "--code",
            "X",
            "--percent-off",
            "5",
            "--expires-at",
            "tomorrow"
        ]
    ))
    .contains("RFC 3339"));
    stdout(&run(
        &db,
        &["promo", "create", "--code", "Once", "--percent-off", "5"],
    ));
    assert!(refused(&run(
        &db,
        &["promo", "create", "--code", "ONCE", "--percent-off", "5"]
    ))
    .contains("already exists"));
    assert!(refused(&run(&db, &["promo", "show", "missing"])).contains("no promo code"));
}

#[test]
fn support_staff_can_read_codes_and_redemptions_with_plain_sql() {
    use diesel::prelude::*;
    let db = TestDatabase::create();
    stdout(&run(
        &db,
        &[
            "promo",
            "create",
            "--code",
            "Spring25",
            "--percent-off",
            "25",
            "--plans",
            "2,1",
        ],
    ));
    let url = treefort_webpay::db::DatabaseUrl::parse(&db.url).unwrap();
    let pool = treefort_webpay::db::connect_pool(&url, 1).unwrap();
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        code: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        eligible_plan_ids: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        times_redeemed: i32,
    }
    let row: Row = diesel::sql_query(
        "SELECT code, eligible_plan_ids, times_redeemed FROM promo_codes_overview",
    )
    .get_result(&mut *pool.get().unwrap())
    .unwrap();
    assert_eq!(
        (
            row.code.as_str(),
            row.eligible_plan_ids.as_str(),
            row.times_redeemed
        ),
        ("Spring25", "1,2", 0)
    );
    diesel::sql_query("SELECT * FROM promo_redemptions_overview")
        .execute(&mut *pool.get().unwrap())
        .unwrap();
}

#[test]
fn invalid_configuration_stops_start_up_with_one_line() {
    let db = TestDatabase::create();
    for (key, value, expected) in [
        (
            "CHECKOUT_SESSION_TTL_SECS",
            "90000",
            "CHECKOUT_SESSION_TTL_SECS",
        ),
        ("PAYMENT_GATEWAY", "paypal", "PAYMENT_GATEWAY"),
        ("PUBLIC_BASE_URL", "not a url", "PUBLIC_BASE_URL"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_treefort-webpay"))
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env(key, value)
            .output()
            .unwrap();
        assert!(refused(&output).contains(expected), "{key}");
    }
}

#[test]
fn a_refused_postgres_url_fails_as_postgres_and_creates_no_file() {
    let output = Command::new(env!("CARGO_BIN_EXE_treefort-webpay"))
        .args(["plans", "list"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = refused(&output);
    assert!(
        stderr.contains("cannot open database postgres://"),
        "{stderr}"
    );
    assert!(!std::env::temp_dir().join("postgres:").exists());
}

#[test]
fn the_outbox_can_be_listed_and_re_driven() {
    let db = TestDatabase::create();
    assert!(stdout(&run(&db, &["outbox", "list"])).contains("nothing waiting"));
    assert!(refused(&run(&db, &["outbox", "retry"])).contains("--all"));
    assert!(refused(&run(&db, &["outbox", "retry", "42"])).contains("no pending or dead entry #42"));
    assert!(stdout(&run(&db, &["outbox", "retry", "--all"])).contains("0 update(s)"));
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let db = TestDatabase::create();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_treefort-webpay"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    // Serving (not merely bound): the signal handlers are installed once /healthz answers.
    let healthy = || -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let mut answer = String::new();
        stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.0 200")
    };
    while !healthy() {
        assert!(started.elapsed().as_secs() < 30, "the server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("TEST MODE"), "the sandbox warning is logged");
    assert!(logs.contains("worker stopped"), "{logs}");
}

/// A support person's `… | head -n 1`: the reader goes away before the command prints, and the
/// command still did its work and exits 0 (it panicked on the closed pipe before).
#[test]
fn a_command_whose_reader_stopped_reading_succeeds_and_did_its_work() {
    let db = TestDatabase::create();
    let mut child = Command::new(env!("CARGO_BIN_EXE_treefort-webpay"))
        .args(["apikeys", "create", "--name", "piped", "--scope", "read"])
        .env("DATABASE_URL", &db.url)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // The read end closes at once: the command opens its database and migrates it first.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = stdout(&run(&db, &["apikeys", "list"]));
    assert!(listed.contains("piped"), "{listed}");
}
