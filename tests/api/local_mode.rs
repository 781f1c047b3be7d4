//! Local mode: no Treefort settings, no provider keys, the sandbox gateway. The built-in Treefort
//! simulator at `/simulator` plays Treefort's part over HTTP, and its time travel moves the
//! service's (here manual) clock. Over plain HTTP first, then clicked through in Chromium.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Months, TimeDelta, Utc};
use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use reqwest::header::{CONTENT_TYPE, LOCATION, ORIGIN};
use serde_json::json;
use treefort_webpay::clock::{rfc3339, Clock};
use treefort_webpay::config::Settings;
use treefort_webpay::domain::locale::Lang;
use treefort_webpay::simulator::Simulator;
use treefort_webpay::startup::Application;
use treefort_webpay::state::AppState;

use crate::browser::Browser;
use crate::helpers::{at, spawn_app, TestDatabase, API_KEY};

pub struct LocalApp {
    pub address: String,
    pub state: web::Data<AppState>,
    pub simulator: web::Data<Simulator>,
    pub client: reqwest::Client,
    _db: TestDatabase,
}

/// The service as `serve` runs it with nothing configured but its database, on a manual clock
/// that only the simulator's time travel (or the test) moves.
pub async fn spawn_local(clock_start: DateTime<Utc>) -> LocalApp {
    let db = TestDatabase::create();
    let (address, state, simulator) = start_local(&db.url, Clock::manual(clock_start)).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    LocalApp {
        address,
        state,
        simulator,
        client,
        _db: db,
    }
}

/// Starts `serve` in local mode on the database at `url`.
async fn start_local(
    url: &str,
    clock: Clock,
) -> (String, web::Data<AppState>, web::Data<Simulator>) {
    let vars = HashMap::from([
        ("DATABASE_URL", url.to_string()),
        ("LISTEN_ADDR", "127.0.0.1:0".to_string()),
    ]);
    let mut settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("local settings");
    if url.starts_with("postgres") {
        // Local mode starts by itself on SQLite only; on PostgreSQL it is asked for.
        assert!(!settings.local_mode, "PostgreSQL: not local mode by itself");
        settings.local_mode = true;
    }
    assert!(
        settings.local_mode,
        "no Treefort settings, no keys, sandbox: local mode"
    );
    let app = Application::build_with_clock(settings, clock)
        .await
        .expect("the app starts in local mode");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    assert_eq!(state.settings.public_base_url, address);
    let simulator = app.simulator().expect("local mode runs the simulator");
    tokio::spawn(app.run_until_stopped());
    (address, state, simulator)
}

impl LocalApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.state.clock.now()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// POSTs a form as a browser on one of the service's pages does (its own Origin).
    pub async fn post_form(&self, target: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            self.url(target)
        };
        let request = self.client.post(url).header(ORIGIN, self.address.as_str());
        request.form(form).send().await.unwrap()
    }

    /// The simulator's page of `user` once `ready` holds (the background worker may have claimed
    /// the due work the time travel ran, and still be sending its PATCH).
    pub async fn user_page_when(&self, user: &str, ready: impl Fn(&str) -> bool) -> String {
        let mut html = String::new();
        for _ in 0..50 {
            let page = self.get(&format!("/simulator/users/{user}")).await;
            assert_eq!(page.status(), 200);
            html = page.text().await.unwrap();
            if ready(&html) {
                return html;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page of {user} never got there:\n{html}");
    }
}

/// The Location of a 303 (panics with the body on anything else).
async fn see_other(response: reqwest::Response) -> String {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok());
    let location = location.unwrap_or_default().to_string();
    if status != 303 {
        panic!(
            "expected 303, got {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    location
}

/// A cell of Treefort's record on the user page: `<td data-field="name">value</td>`.
fn field(html: &str, name: &str) -> String {
    let open = format!("data-field=\"{name}\">");
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no {name} on:\n{html}"))
        + open.len();
    let len = html[start..].find("</td>").unwrap();
    html[start..start + len].trim().to_string()
}

fn parse(value: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value)
        .unwrap_or_else(|e| panic!("{value:?} is not an RFC 3339 date: {e}"))
        .to_utc()
}

/// How many POSTs or PATCHes of the subscription API the user page lists.
fn received(html: &str, method: &str) -> usize {
    html.matches(&format!("<strong>{method} /simulator/api/v1/subscriptions"))
        .count()
}

#[tokio::test]
async fn local_mode_plays_treefort_over_http_from_checkout_to_deactivation() {
    let start = at("2027-01-01T00:00:00Z");
    let app = spawn_local(start).await;
    assert_eq!(see_other(app.get("/").await).await, "/simulator");
    let index = app.get("/simulator").await;
    assert_eq!(index.status(), 200);
    let html = index.text().await.unwrap();
    assert!(html.contains("Plan 1") && html.contains("Plan 2"), "{html}");

    let subscribe = [
        ("user_id", "alice"),
        ("email", ""),
        ("plan_id", "1"),
        ("promo_code", "WELCOME20"),
        ("locale", "en-US"),
    ];
    let checkout = see_other(app.post_form("/simulator/subscribe", &subscribe).await).await;
    assert!(checkout.starts_with(&app.url("/checkout/")), "{checkout}");
    let card = [
        ("card_number", "4242 4242 4242 4242"),
        ("card_expiry", "12/30"),
        ("card_cvc", "123"),
    ];
    let back = see_other(app.post_form(&checkout, &card).await).await;
    assert_eq!(back, app.url("/simulator/users/alice?checkout=success"));
    let page = app
        .user_page_when("alice", |h| received(h, "POST") == 1)
        .await;
    let trial_end = start + TimeDelta::days(7);
    assert_eq!(
        parse(&field(&page, "currentPeriodEndsAt")),
        trial_end,
        "a 7-day trial"
    );
    assert_eq!(parse(&field(&page, "trialEndsAt")), trial_end);
    assert_eq!(received(&page, "PATCH"), 0);

    // The simulated Treefort API takes no call without its token (and keeps nothing of one);
    // local mode does not open the provider's routes either: they want the generated key.
    let api = app.url("/simulator/api/v1/subscriptions");
    let record = json!({
        "provider": "webPayment", "userId": "mallory", "subscriptionPlanId": 1,
        "currentPeriodEndsAt": "2027-02-01T00:00:00.000Z",
        "canceledAt": "2027-01-01T00:00:00.000Z"
    });
    let plan = json!({"subscriptionPlanId": 1});
    let provider = app.url("/treefort/subscription-plan");
    let calls = [
        app.client.patch(format!("{api}/tf_sub_1")).json(&record),
        app.client.post(api.as_str()).json(&record),
        app.client.post(provider.as_str()).json(&plan),
        app.client
            .post(provider.as_str())
            .bearer_auth(API_KEY)
            .json(&plan),
    ];
    for call in calls {
        let answer = call
            .header("X-Treefort-Version", "2024-10-01")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{}", answer.url());
    }
    let page = app.user_page_when("alice", |_| true).await;
    assert_eq!(field(&page, "currentPeriodEndsAt"), rfc3339(trial_end));
    assert_eq!(field(&page, "canceledAt"), "null");
    let sim = &app.simulator;
    assert!(sim.store().current("mallory").is_none());

    // To the trial's end: the first charge, and Treefort's PATCH.
    let travel = [("step", "next"), ("back", "/simulator/users/alice")];
    let back = see_other(app.post_form("/simulator/clock", &travel).await).await;
    assert_eq!(back, "/simulator/users/alice");
    assert_eq!(app.now(), trial_end);
    let page = app
        .user_page_when("alice", |h| received(h, "PATCH") == 1)
        .await;
    assert!(page.contains("<strong>PATCH /simulator/api/v1/subscriptions/tf_sub_1</strong>"));
    assert_eq!(field(&page, "trialEndsAt"), "null");
    let period_end = trial_end.checked_add_months(Months::new(1)).unwrap();
    assert_eq!(parse(&field(&page, "currentPeriodEndsAt")), period_end);

    let canceled = app.post_form("/simulator/users/alice/cancel", &[]).await;
    assert_eq!(canceled.status(), 200);
    let html = canceled.text().await.unwrap();
    assert!(html.contains("Canceled as Treefort"), "{html}");
    let canceled_at = parse(&field(&html, "canceledAt"));
    assert!(canceled_at <= app.now(), "{canceled_at}");
    assert_eq!(field(&html, "deactivatedAt"), "null");

    // Another site's form moves no clock.
    let before = app.now();
    let evil = app
        .client
        .post(app.url("/simulator/clock"))
        .header(ORIGIN, "http://evil.example");
    let evil = evil
        .form(&[("step", "month"), ("back", "/simulator")])
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert_eq!(app.now(), before);

    // To the period's end: the subscription ends there.
    see_other(app.post_form("/simulator/clock", &travel).await).await;
    assert_eq!(app.now(), period_end);
    let page = app
        .user_page_when("alice", |h| field(h, "deactivatedAt") != "null")
        .await;
    assert_eq!(parse(&field(&page, "deactivatedAt")), period_end);
    assert_eq!(received(&page, "PATCH"), 3, "renewal, cancel, end");
    assert!(page.contains("deactivated: no access"), "{page}");
}

fn settings_of(vars: &[(&str, &str)]) -> Result<Settings, String> {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    Settings::from_lookup(|k| map.get(k).map(|v| v.to_string()))
}

fn local_mode_of(vars: &[(&str, &str)]) -> Result<bool, String> {
    settings_of(vars).map(|s| s.local_mode)
}

#[tokio::test]
async fn local_mode_is_off_whenever_treefort_is_configured_and_refused_with_live_money() {
    assert_eq!(local_mode_of(&[]), Ok(true));
    assert_eq!(local_mode_of(&[("PROVIDER_API_KEYS", "x")]), Ok(false));
    assert_eq!(local_mode_of(&[("TREEFORT_TENANT", "t")]), Ok(false));
    assert_eq!(local_mode_of(&[("LOCAL_MODE", "0")]), Ok(false));
    // A deployment that forgot its settings is not a developer's machine: reachable from
    // elsewhere, or on PostgreSQL, it starts as without local mode (unless asked for it).
    assert_eq!(local_mode_of(&[("LISTEN_ADDR", "0.0.0.0:8080")]), Ok(false));
    let public = [("PUBLIC_BASE_URL", "https://pay.example.com")];
    assert_eq!(local_mode_of(&public), Ok(false));
    let pg = [("DATABASE_URL", "postgres://u@db.internal/pay")];
    assert_eq!(local_mode_of(&pg), Ok(false));
    let asked = [
        ("DATABASE_URL", "postgres://u@db.internal/pay"),
        ("LOCAL_MODE", "1"),
    ];
    assert_eq!(local_mode_of(&asked), Ok(true));
    assert_eq!(
        local_mode_of(&[("PUBLIC_BASE_URL", "http://localhost:8080")]),
        Ok(true)
    );
    let live = [
        ("PAYMENT_GATEWAY", "stripe"),
        ("STRIPE_SECRET_KEY", "sk_live_abc123"),
        ("STRIPE_PUBLISHABLE_KEY", "pk_live_abc123"),
        ("STRIPE_WEBHOOK_SECRETS", "whsec_abc123"),
    ];
    assert_eq!(local_mode_of(&live), Ok(false), "live keys: no simulator");
    let mut forced = live.to_vec();
    forced.push(("LOCAL_MODE", "1"));
    let err = settings_of(&forced).unwrap_err();
    assert!(
        err.contains("live") && !err.contains("sk_live_abc123"),
        "{err}"
    );
    let err = settings_of(&[("LOCAL_MODE", "1"), ("PROVIDER_API_KEYS", "x")]).unwrap_err();
    assert!(err.contains("PROVIDER_API_KEYS"), "{err}");

    let app = spawn_app().await;
    assert!(!app.state.settings.local_mode);
    let page = app.get(&format!("{}/simulator", app.address)).await;
    assert_eq!(page.status(), 404);
    let form = app.client.post(format!("{}/simulator/clock", app.address));
    let form = form.form(&[("step", "month")]).send().await.unwrap();
    assert_eq!(form.status(), 404);
    let home = app.get(&format!("{}/", app.address)).await;
    assert_eq!(home.status(), 200);
    let html_type = home.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(html_type.starts_with("text/html"), "{html_type}");
    assert!(home.text().await.unwrap().contains("treefort-webpay"));
}

/// chromedriver's `POST /session/{id}/se/log` `{"type": "browser"}`: the console and network
/// messages since the last call. SEVERE ones (console.error, uncaught exceptions, CSP
/// violations, failed loads) are kept without asking for `goog:loggingPrefs`.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// Fails on any error in the browser's console since the last look. Chrome reports a page
/// answered with 4xx as a failed load of that page: `own_page` allows it (the test checks what
/// that page says). The favicon is not the service's.
async fn assert_no_console_errors(c: &Client, own_page: Option<&str>) {
    let log = c
        .issue_cmd(BrowserLog)
        .await
        .expect("chromedriver's browser log");
    let own = own_page.map(|p| format!("{p} - Failed to load resource"));
    let errors: Vec<&str> = log
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["level"] == "SEVERE")
        .filter_map(|e| e["message"].as_str())
        .filter(|m| !m.contains("/favicon.ico"))
        .filter(|m| !own.as_deref().is_some_and(|own| m.starts_with(own)))
        .collect();
    assert!(
        errors.is_empty(),
        "errors in the browser console: {errors:#?}"
    );
}

async fn element(c: &Client, css: &str) -> Element {
    let wait = c.wait().at_most(Duration::from_secs(10));
    let found = wait.for_element(Locator::Css(css)).await;
    found.unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

async fn click(c: &Client, css: &str) {
    let clicked = element(c, css).await.click().await;
    clicked.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// The URL once the browser is on a page whose path starts with `prefix`.
async fn wait_for_path(c: &Client, prefix: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let url = c.current_url().await.unwrap();
        if url.path().starts_with(prefix) {
            return url.to_string();
        }
        last = url.to_string();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser is on {last}, not {prefix}…");
}

/// The text of `css` once `ok` holds (the click's navigation may still be under way). `reload`:
/// reload the page now and then (after time travel, the background worker may be the one
/// finishing the PATCH the page should show).
async fn wait_for_text(c: &Client, css: &str, reload: bool, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for i in 1..=100 {
        if let Ok(found) = c.find(Locator::Css(css)).await {
            if let Ok(text) = found.text().await {
                if ok(&text) {
                    return text;
                }
                last = text;
            }
        }
        if reload && i % 10 == 0 {
            let _ = c.refresh().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} reads {last:?}");
}

/// Screenshots at a phone's and a laptop's width (the window ends 1280 wide).
async fn screenshots(browser: &Browser, name: &str) {
    for (width, height) in [(360, 800), (1280, 900)] {
        browser.client.set_window_size(width, height).await.unwrap();
        browser.screenshot(&format!("{name}-{width}")).await;
    }
}

async fn type_card(browser: &Browser, number: &str) {
    browser.type_into("#card_number", number).await;
    browser.type_into("#card_expiry", "12/30").await;
    browser.type_into("#card_cvc", "123").await;
}

#[tokio::test]
async fn a_person_clicks_through_the_whole_journey_in_the_simulator() {
    let start = at("2027-01-01T00:00:00Z");
    let app = spawn_local(start).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    let user_page = app.url("/simulator/users/alice");

    // 1. Subscribe alice to plan 1 with the demo code.
    c.goto(&app.url("/simulator")).await.unwrap();
    let user = element(c, "#user_id").await;
    user.clear().await.unwrap();
    user.send_keys("alice").await.unwrap();
    let plans = element(c, "#plan_id").await;
    plans.select_by_value("1").await.unwrap();
    browser.type_into("#promo_code", "WELCOME20").await;
    assert_no_console_errors(c, None).await;
    click(c, "form[action='/simulator/subscribe'] button[type=submit]").await;

    // 2. Pay on the checkout page.
    wait_for_path(c, "/checkout/").await;
    wait_for_text(c, "main", false, |t| t.contains("WELCOME20")).await;
    assert_no_console_errors(c, None).await;
    screenshots(&browser, "local-checkout").await;
    type_card(&browser, "4242 4242 4242 4242").await;
    click(c, "form.card button[type=submit]").await;

    // 3. Back on the user page: Treefort has the trial.
    let landed = wait_for_path(c, "/simulator/users/alice").await;
    assert_eq!(landed, format!("{user_page}?checkout=success"));
    let trial_end = start + TimeDelta::days(7);
    let end = wait_for_text(c, "td[data-field=currentPeriodEndsAt]", false, |t| {
        t != "null"
    });
    assert_eq!(parse(&end.await), trial_end);
    let log = wait_for_text(c, "ol[data-received]", false, |t| t.contains("POST ")).await;
    assert!(!log.contains("PATCH "), "{log}");

    // 4. A month on: past the trial's end, the first charge and its PATCH.
    click(c, "button[name=step][value=month]").await;
    let patched = |t: &str| t.contains("PATCH /simulator/api/v1/subscriptions/");
    let log = wait_for_text(c, "ol[data-received]", true, patched).await;
    assert_eq!(log.matches("PATCH ").count(), 1, "{log}");
    let period_end = trial_end.checked_add_months(Months::new(1)).unwrap();
    let moved = rfc3339(period_end);
    wait_for_text(c, "td[data-field=currentPeriodEndsAt]", false, |t| {
        t == moved
    })
    .await;
    wait_for_text(c, "td[data-field=trialEndsAt]", false, |t| t == "null").await;

    // 5. Cancel in the billing portal, then back to the app.
    click(c, "form[action$='/portal'] button[type=submit]").await;
    wait_for_path(c, "/billing/").await;
    assert_no_console_errors(c, None).await;
    screenshots(&browser, "local-portal").await;
    let cancel = element(c, "form[action$='/cancel'] button[type=submit]").await;
    assert_eq!(
        cancel.text().await.unwrap(),
        Lang::En.t("cancel-subscription")
    );
    cancel.click().await.unwrap();
    let canceled_ok = Lang::En.t("canceled-ok");
    wait_for_text(c, "main", false, |t| t.contains(&canceled_ok)).await;
    assert_no_console_errors(c, None).await;
    let link = element(c, &format!("a[href='{user_page}']")).await;
    assert_eq!(link.text().await.unwrap(), Lang::En.t("continue"));
    link.click().await.unwrap();
    wait_for_path(c, "/simulator/users/alice").await;
    let canceled = wait_for_text(c, "td[data-field=canceledAt]", false, |t| t != "null").await;
    assert!(parse(&canceled) > trial_end);

    // 6. To the period's end: Treefort is told it is over.
    click(c, "button[name=step][value=next]").await;
    let ended = wait_for_text(c, "td[data-field=deactivatedAt]", true, |t| t != "null").await;
    assert_eq!(parse(&ended), period_end);
    wait_for_text(c, "strong[data-state]", false, |t| {
        t.contains("deactivated")
    })
    .await;
    assert_no_console_errors(c, None).await;
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn in_the_simulator_a_declined_card_and_an_expired_link_show_their_pages() {
    let app = spawn_local(at("2027-01-01T00:00:00Z")).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&app.url("/simulator")).await.unwrap();
    let user = element(c, "#user_id").await;
    user.clear().await.unwrap();
    user.send_keys("bob").await.unwrap();
    click(c, "form[action='/simulator/subscribe'] button[type=submit]").await;
    let checkout = wait_for_path(c, "/checkout/").await;

    type_card(&browser, "4000 0000 0000 0002").await;
    click(c, "form.card button[type=submit]").await;
    let declined = Lang::En.t("declined");
    wait_for_text(c, "main", false, |t| t.contains(&declined)).await;
    browser.screenshot("local-checkout-declined-1280").await;
    assert_no_console_errors(c, Some(&checkout)).await;

    // The link outlives its lifetime while the page is open; paying then shows the expired page.
    let ttl = app.state.settings.checkout_session_ttl_secs;
    app.state.clock.advance(TimeDelta::seconds(ttl + 1));
    type_card(&browser, "4242 4242 4242 4242").await;
    click(c, "form.card button[type=submit]").await;
    let expired = Lang::En.t("expired-title");
    let page = wait_for_text(c, "main", false, |t| t.contains(&expired)).await;
    assert!(!page.contains("bob@example.com"), "{page}");
    assert_no_console_errors(c, Some(&checkout)).await;
    let sim = &app.simulator;
    assert!(
        sim.store().current("bob").is_none(),
        "Treefort was told nothing"
    );
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_restart_keeps_what_treefort_was_told_and_never_turns_time_back() {
    let app = spawn_local(Utc::now()).await;
    let checkout = see_other(
        app.post_form(
            "/simulator/subscribe",
            &[("user_id", "carol"), ("plan_id", "2")],
        )
        .await,
    )
    .await;
    let paid = app
        .post_form(
            &checkout,
            &[
                ("card_number", "4242 4242 4242 4242"),
                ("card_expiry", "12/30"),
                ("card_cvc", "123"),
            ],
        )
        .await;
    assert_eq!(paid.status(), 303);
    let travel = [("step", "month"), ("back", "/simulator")];
    see_other(app.post_form("/simulator/clock", &travel).await).await;
    let moved_to = app.now();
    assert!(moved_to > Utc::now() + TimeDelta::days(27));

    // The same database, a new process (on the real time: the saved offset moves it on).
    let (address, again, _) = start_local(&app._db.url, Clock::manual(Utc::now())).await;
    assert!(again.clock.now() >= moved_to, "time went back on restart");
    let page = app
        .client
        .get(format!("{address}/simulator/users/carol"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<strong>POST /simulator/api/v1/subscriptions</strong>"),
        "{page}"
    );
    assert_eq!(field(&page, "subscriptionPlanId"), "2");
}

#[tokio::test]
async fn time_travel_goes_back_only_to_simulator_pages() {
    let app = spawn_local(at("2027-01-01T00:00:00Z")).await;
    for back in ["https://evil.example/", "//evil.example/", "/checkout/x"] {
        let travel = [("step", "day"), ("back", back)];
        let location = see_other(app.post_form("/simulator/clock", &travel).await).await;
        assert_eq!(location, "/simulator", "{back}");
    }
    assert_eq!(app.now(), at("2027-01-04T00:00:00Z"));
}

#[tokio::test]
async fn in_local_mode_the_trial_reminder_lands_in_the_inbox_and_its_link_opens_the_portal() {
    let start = at("2027-01-01T00:00:00Z");
    let app = spawn_local(start).await;
    {
        // A plan with a trial longer than the reminder's 7 days.
        let mut conn = app.state.pool.get().unwrap();
        let now = start.naive_utc();
        let values = treefort_webpay::models::plans::PlanValues {
            name: "Fortnight trial".into(),
            billing_interval: "month".into(),
            interval_count: 1,
            trial_days: 14,
            grace_days: 3,
            currency: "EUR".into(),
            amount: 1_200,
            divisor: 100,
            updated_at: now,
            features: "{}".into(),
        };
        treefort_webpay::models::plans::upsert(&mut conn, 3, &values, now).unwrap();
    }
    let browser = Browser::start().await;
    let c = &browser.client;
    // 1. Subscribe bob, in French, to the 14-day trial.
    c.goto(&app.url("/simulator")).await.unwrap();
    let user = element(c, "#user_id").await;
    user.clear().await.unwrap();
    user.send_keys("bob").await.unwrap();
    element(c, "#plan_id")
        .await
        .select_by_value("3")
        .await
        .unwrap();
    element(c, "#locale")
        .await
        .select_by_value("fr-FR")
        .await
        .unwrap();
    click(c, "form[action='/simulator/subscribe'] button[type=submit]").await;
    wait_for_path(c, "/checkout/").await;
    type_card(&browser, "4242 4242 4242 4242").await;
    click(c, "form.card button[type=submit]").await;
    wait_for_path(c, "/simulator/users/bob").await;

    // 2. Seven days on, one click at a time: the reminder's moment (the charge is on Jan 15).
    for day in 2..=8 {
        click(c, "button[name=step][value=day]").await;
        let today = format!("2027-01-{day:02}");
        wait_for_text(c, "strong[data-now]", false, |t| t.starts_with(&today)).await;
    }

    // 3. The Inbox has it, in French.
    c.goto(&app.url("/simulator/inbox")).await.unwrap();
    let subject = wait_for_text(c, "a[data-email-kind=trial_ending]", true, |t| {
        !t.is_empty()
    })
    .await;
    assert_eq!(subject, "Votre essai Demo app se termine le 15 janv. 2027");
    assert_no_console_errors(c, None).await;
    screenshots(&browser, "local-inbox").await;
    click(c, "a[data-email-kind=trial_ending]").await;
    wait_for_path(c, "/simulator/inbox/").await;
    let body = wait_for_text(c, "body", false, |t| t.contains("12,00")).await;
    assert!(body.contains("Bonjour"), "{body}");
    screenshots(&browser, "email-trial-ending").await;

    // 4. Its button opens bob's billing portal.
    click(c, "a[href*='/email-links/']").await;
    wait_for_path(c, "/billing/").await;
    wait_for_text(c, "main", false, |t| t.contains("Fortnight trial")).await;
    assert_no_console_errors(c, None).await;
    browser.client.clone().close().await.unwrap();
}
