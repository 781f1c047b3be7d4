//! Every environment variable the service reads, declared once with `clap` (`#[arg(env = …)]`):
//! its name, its default and the values it accepts. A value is trimmed, and an empty one counts as
//! unset. A refused value stops the start with the variable's own one-line message (what it must
//! be, and what it got), never a secret's value.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::{LogFormat, MAX_SESSION_TTL_SECS};

/// The settings as the environment gives them, each parsed on its own. What one setting means for
/// another (Treefort all or nothing, the Stripe keys, local mode) is `Settings::from_lookup`'s.
#[derive(Debug, Parser)]
#[command(
    name = "treefort-webpay",
    no_binary_name = true,
    disable_help_flag = true
)]
pub(super) struct Vars {
    #[arg(long, env = "DATABASE_URL", default_value = super::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080", value_parser = listen_addr)]
    pub listen_addr: SocketAddr,
    #[arg(long, env = "PUBLIC_BASE_URL", value_parser = base_url("PUBLIC_BASE_URL"))]
    pub public_base_url: Option<String>,
    #[arg(long, env = "PROVIDER_API_KEYS")]
    pub provider_api_keys: Option<String>,
    #[arg(long, env = "CHECKOUT_SESSION_TTL_SECS", default_value = "3600", value_parser = ttl("CHECKOUT_SESSION_TTL_SECS"))]
    pub checkout_session_ttl_secs: i64,
    #[arg(long, env = "PORTAL_SESSION_TTL_SECS", default_value = "900", value_parser = ttl("PORTAL_SESSION_TTL_SECS"))]
    pub portal_session_ttl_secs: i64,
    #[arg(long, env = "PAYMENT_GATEWAY", default_value = "sandbox", value_parser = one_of("PAYMENT_GATEWAY", "sandbox or stripe", &["sandbox", "stripe"]))]
    pub payment_gateway: String,
    #[arg(long, env = "SANDBOX_CHARGE_DELAY_MS", default_value = "0", value_parser = millis("SANDBOX_CHARGE_DELAY_MS", 0..=60_000))]
    pub sandbox_charge_delay: Duration,
    #[arg(long, env = "LOG_FORMAT", value_parser = log_format)]
    pub log_format: Option<LogFormat>,
    /// Per proven key: far above any real app's traffic (Treefort is never throttled by default);
    /// the strict limits are on failed authentication and the pages.
    #[arg(long, env = "RATE_LIMIT_TREEFORT_PER_MINUTE", default_value = "1000000", value_parser = per_minute("RATE_LIMIT_TREEFORT_PER_MINUTE"))]
    pub rate_limit_treefort_per_minute: NonZeroU32,
    #[arg(long, env = "RATE_LIMIT_FAILED_AUTH_PER_MINUTE", default_value = "30", value_parser = per_minute("RATE_LIMIT_FAILED_AUTH_PER_MINUTE"))]
    pub rate_limit_failed_auth_per_minute: NonZeroU32,
    #[arg(long, env = "RATE_LIMIT_PAGES_PER_MINUTE", default_value = "120", value_parser = per_minute("RATE_LIMIT_PAGES_PER_MINUTE"))]
    pub rate_limit_pages_per_minute: NonZeroU32,
    #[arg(long, env = "CHECKOUT_MAX_FAILED_ATTEMPTS", default_value = "5", value_parser = number("CHECKOUT_MAX_FAILED_ATTEMPTS", "a number", 1..=100))]
    pub checkout_max_failed_attempts: i32,
    #[arg(long, env = "LOCAL_MODE", value_parser = switch("LOCAL_MODE"))]
    pub local_mode: Option<bool>,
    #[arg(long, env = "TRUST_PROXY_HEADERS", value_parser = switch("TRUST_PROXY_HEADERS"))]
    pub trust_proxy_headers: Option<bool>,
    #[arg(long, env = "METRICS_TOKEN")]
    pub metrics_token: Option<String>,
    #[arg(long, env = "WEBHOOK_SIGNING_KEY", value_parser = signing_key)]
    pub webhook_signing_key: Option<String>,
    #[arg(long, env = "LAUNCH_TOKEN_SECRET", value_parser = launch_token_secret)]
    pub launch_token_secret: Option<String>,
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", default_value = "10000", value_parser = millis("WEBHOOK_TIMEOUT_MS", 100..=60_000))]
    pub webhook_timeout: Duration,
    #[arg(long, env = "CATALOG_CHECK_MS", default_value = "250", value_parser = millis("CATALOG_CHECK_MS", 50..=60_000))]
    pub catalog_check_interval: Duration,
    #[arg(long, env = "WORKER_CONCURRENCY", default_value = "32", value_parser = number("WORKER_CONCURRENCY", "a number", 1usize..=256))]
    pub worker_concurrency: usize,
    /// 500 rows of 49 parameters stay under SQLite's 32 766 per statement.
    #[arg(long, env = "WORKER_BATCH", default_value = "256", value_parser = number("WORKER_BATCH", "a number", 1usize..=500))]
    pub worker_batch: usize,
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE", value_parser = switch("WEBHOOKS_ALLOW_PRIVATE"))]
    pub webhooks_allow_private: Option<bool>,
    #[arg(long, env = "BODY_READ_TIMEOUT_MS", default_value = "10000", value_parser = millis("BODY_READ_TIMEOUT_MS", 1..=120_000))]
    pub body_read_timeout: Duration,

    #[arg(long, env = "TREEFORT_API_URL")]
    pub treefort_api_url: Option<String>,
    #[arg(long, env = "TREEFORT_TOKEN_URL")]
    pub treefort_token_url: Option<String>,
    #[arg(long, env = "TREEFORT_CLIENT_ID")]
    pub treefort_client_id: Option<String>,
    #[arg(long, env = "TREEFORT_CLIENT_SECRET")]
    pub treefort_client_secret: Option<String>,
    #[arg(long, env = "TREEFORT_API_VERSION")]
    pub treefort_api_version: Option<String>,
    #[arg(long, env = "TREEFORT_SCOPE")]
    pub treefort_scope: Option<String>,
    #[arg(long, env = "TREEFORT_TENANT")]
    pub treefort_tenant: Option<String>,
    #[arg(long, env = "TREEFORT_TIMEOUT_MS", value_parser = millis("TREEFORT_TIMEOUT_MS", 1..=120_000))]
    pub treefort_timeout: Option<Duration>,

    #[arg(long, env = "STRIPE_SECRET_KEY")]
    pub stripe_secret_key: Option<String>,
    #[arg(long, env = "STRIPE_PUBLISHABLE_KEY")]
    pub stripe_publishable_key: Option<String>,
    #[arg(long, env = "STRIPE_WEBHOOK_SECRETS")]
    pub stripe_webhook_secrets: Option<String>,
    #[arg(long, env = "STRIPE_API_URL", default_value = super::STRIPE_API_URL, value_parser = base_url("STRIPE_API_URL"))]
    pub stripe_api_url: String,
    /// Kept as given (a trailing slash too): it is the script's address, not a base.
    #[arg(long, env = "STRIPE_JS_URL", value_parser = script_url)]
    pub stripe_js_url: Option<String>,
    #[arg(long, env = "STRIPE_TIMEOUT_MS", default_value = "20000", value_parser = millis("STRIPE_TIMEOUT_MS", 1..=120_000))]
    pub stripe_timeout: Duration,
    /// Unset: 20 with test keys, 80 with live ones (under Stripe's 25 and 100 a second).
    #[arg(long, env = "STRIPE_MAX_REQUESTS_PER_SECOND", value_parser = number("STRIPE_MAX_REQUESTS_PER_SECOND", "requests a second", 1u32..=10_000))]
    pub stripe_max_requests_per_second: Option<u32>,
    #[arg(long, env = "STRIPE_MAX_NETWORK_RETRIES", default_value = "2", value_parser = number("STRIPE_MAX_NETWORK_RETRIES", "retries", 0u32..=10))]
    pub stripe_max_network_retries: u32,

    // Shoppers' emails (`config::email`).
    /// Never echoed: it may carry a password.
    #[arg(long, env = "SMTP_URL")]
    pub smtp_url: Option<String>,
    #[arg(long, env = "EMAIL_FROM")]
    pub email_from: Option<String>,
    #[arg(long, env = "EMAIL_REPLY_TO")]
    pub email_reply_to: Option<String>,
    #[arg(long, env = "MERCHANT_NAME")]
    pub merchant_name: Option<String>,
    #[arg(long, env = "EMAIL_LINK_TTL_HOURS", default_value = "72", value_parser = number("EMAIL_LINK_TTL_HOURS", "hours", 1i64..=168))]
    pub email_link_ttl_hours: i64,
    #[arg(long, env = "TRIAL_REMINDER_DAYS", default_value = "7", value_parser = number("TRIAL_REMINDER_DAYS", "days", 1i64..=30))]
    pub trial_reminder_days: i64,
    #[arg(long, env = "RENEWAL_REMINDER_DAYS", default_value = "7", value_parser = number("RENEWAL_REMINDER_DAYS", "days", 1i64..=60))]
    pub renewal_reminder_days: i64,
    #[arg(long, env = "SMTP_TIMEOUT_MS", default_value = "15000", value_parser = millis("SMTP_TIMEOUT_MS", 100..=120_000))]
    pub smtp_timeout: Duration,
}

impl Vars {
    /// Reads every variable through `lookup` (the environment, or a map in tests), and only
    /// through it.
    pub fn read(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        // The values are handed to clap as `--name=value`; its own reading of the environment is
        // turned off, so a test's map is the only source.
        let command = Self::command();
        let mut given = Vec::new();
        for arg in command.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            let value = env.to_str().and_then(lookup);
            if let Some(value) = value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
            {
                given.push(format!("--{long}={value}"));
            }
        }
        let matches = command
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(given)
            .map_err(one_line)?;
        Self::from_arg_matches(&matches).map_err(one_line)
    }
}

/// The refusal of one value as the variable's own message (`… must be …, got "…"`).
fn one_line(e: clap::Error) -> String {
    use std::error::Error;
    match e.source() {
        Some(ours) => ours.to_string(),
        None => e.to_string().trim().to_string(),
    }
}

fn listen_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.parse()
        .map_err(|_| format!("LISTEN_ADDR must be host:port, e.g. 127.0.0.1:8080 (got {raw:?})"))
}

/// An absolute http(s) URL, returned without a trailing slash.
pub(super) fn base_url(
    key: &'static str,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |value: &str| {
        let refused = || format!("{key} must be an absolute http(s) URL (got {value:?})");
        let url = reqwest::Url::parse(value).map_err(|_| refused())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(refused());
        }
        Ok(value.trim_end_matches('/').to_string())
    }
}

fn script_url(value: &str) -> Result<String, String> {
    base_url("STRIPE_JS_URL")(value)?;
    Ok(value.to_string())
}

fn ttl(key: &'static str) -> impl Fn(&str) -> Result<i64, String> + Clone + Send + Sync + 'static {
    move |raw: &str| {
        match raw.parse::<i64>() {
        Ok(secs) if (1..=MAX_SESSION_TTL_SECS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "{key} must be a number of seconds from 1 to {MAX_SESSION_TTL_SECS} (links expire within 24 hours; got {raw:?})"
        )),
    }
    }
}

fn millis(
    key: &'static str,
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |raw: &str| match raw.parse::<u64>() {
        Ok(ms) if range.contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "{key} must be milliseconds from {} to {} (got {raw:?})",
            range.start(),
            range.end()
        )),
    }
}

/// A whole number within `range`; `unit` names what it counts in the message.
fn number<T>(
    key: &'static str,
    unit: &'static str,
    range: RangeInclusive<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Clone + Send + Sync + 'static,
{
    move |raw: &str| match raw.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{key} must be {unit} from {} to {} (got {raw:?})",
            range.start(),
            range.end()
        )),
    }
}

fn per_minute(
    key: &'static str,
) -> impl Fn(&str) -> Result<NonZeroU32, String> + Clone + Send + Sync + 'static {
    move |raw: &str| {
        raw.parse::<u32>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .and_then(NonZeroU32::new)
            .ok_or_else(|| {
                format!(
                    "{key} must be a number of requests a minute from 1 to 1000000 (got {raw:?})"
                )
            })
    }
}

/// `1`/`true` or `0`/`false`.
fn switch(
    key: &'static str,
) -> impl Fn(&str) -> Result<bool, String> + Clone + Send + Sync + 'static {
    move |raw: &str| match raw {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!("{key} must be 1 or 0 (got {other:?})")),
    }
}

fn one_of(
    key: &'static str,
    said: &'static str,
    allowed: &'static [&'static str],
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |raw: &str| {
        if allowed.contains(&raw) {
            Ok(raw.to_string())
        } else {
            Err(format!("{key} must be {said} (got {raw:?})"))
        }
    }
}

fn log_format(raw: &str) -> Result<LogFormat, String> {
    match raw {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("LOG_FORMAT must be pretty or json (got {other:?})")),
    }
}

/// Never echoed: only its length is judged.
fn signing_key(raw: &str) -> Result<String, String> {
    if raw.len() < 32 {
        return Err(
            "WEBHOOK_SIGNING_KEY must be at least 32 characters (e.g. openssl rand -hex 32)".into(),
        );
    }
    Ok(raw.to_string())
}

fn launch_token_secret(raw: &str) -> Result<String, String> {
    if raw.len() < 32 {
        return Err(
            "LAUNCH_TOKEN_SECRET must be at least 32 characters (e.g. openssl rand -hex 32)".into(),
        );
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Vars, String> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Vars::read(&|k| map.get(k).map(|v| v.to_string()))
    }

    fn declared() -> BTreeSet<String> {
        Vars::command()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_refused_value_names_its_variable_what_it_must_be_and_what_it_got() {
        for (key, value, says) in [
            ("WEBHOOK_TIMEOUT_MS", "5", "milliseconds from 100 to 60000"),
            ("WORKER_BATCH", "501", "a number from 1 to 500"),
            ("LOG_FORMAT", "xml", "pretty or json"),
            ("LOCAL_MODE", "2", "1 or 0"),
            ("RATE_LIMIT_PAGES_PER_MINUTE", "0", "from 1 to 1000000"),
            ("LISTEN_ADDR", "nowhere", "host:port"),
            ("PUBLIC_BASE_URL", "example.com", "absolute http(s) URL"),
        ] {
            let err = read(&[(key, value)]).unwrap_err();
            assert_eq!(
                err.lines().count(),
                1,
                "one line, not clap's usage text: {err}"
            );
            assert!(
                err.starts_with(key) && err.contains(says) && err.contains(&format!("{value:?}")),
                "{err}"
            );
        }
        let key = read(&[("WEBHOOK_SIGNING_KEY", "short-secret")]).unwrap_err();
        assert!(
            !key.contains("short-secret"),
            "a secret is never echoed: {key}"
        );
    }

    #[test]
    fn blank_values_count_as_unset_and_values_are_trimmed() {
        let vars = read(&[
            ("PORTAL_SESSION_TTL_SECS", "  "),
            ("WORKER_CONCURRENCY", " 8 "),
        ])
        .unwrap();
        assert_eq!(vars.portal_session_ttl_secs, 900);
        assert_eq!(vars.worker_concurrency, 8);
    }

    #[test]
    fn only_the_lookup_is_read_never_the_process_environment() {
        // Set for the whole test process: a map that does not name it must not see it.
        std::env::set_var("CATALOG_CHECK_MS", "not a number");
        let vars = read(&[]);
        std::env::remove_var("CATALOG_CHECK_MS");
        assert_eq!(
            vars.unwrap().catalog_check_interval,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn every_variable_is_documented_and_every_documented_one_is_read() {
        let docs = include_str!("../../docs/configuration.md");
        let declared = declared();
        for name in &declared {
            assert!(
                docs.contains(&format!("`{name}`")),
                "{name} is not in docs/configuration.md"
            );
        }
        let names = regex::Regex::new(r"(?m)^\| `([A-Z][A-Z0-9_]+)`").unwrap();
        for documented in names.captures_iter(docs).map(|c| c[1].to_string()) {
            // RUST_LOG is the log filter's, read by `telemetry`.
            assert!(
                documented == "RUST_LOG" || declared.contains(&documented),
                "{documented} is documented but never read"
            );
        }
    }
}
