//! Settings from the environment, validated once at start-up: a missing or wrong value stops the
//! process with one clear line. Secrets are wrapped so that no `{:?}` can print them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::db::DatabaseUrl;

/// A secret value: printable only through `expose()`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://treefort-webpay.db";
pub const MAX_SESSION_TTL_SECS: i64 = 86_400;

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    pub listen_addr: SocketAddr,
    /// Origin of session URLs, without a trailing slash.
    pub public_base_url: String,
    /// Empty: the Treefort-facing routes answer 503 `not_configured`.
    pub provider_api_keys: Vec<Secret>,
    /// `None`: Treefort is not configured; checkout and cancel answer 503 `not_configured`.
    pub treefort: Option<TreefortSettings>,
    pub checkout_session_ttl_secs: i64,
    pub portal_session_ttl_secs: i64,
    pub gateway: GatewayKind,
    pub log_format: Option<LogFormat>,
    /// Requests a minute per provider key on `/treefort/*` (each instance counts its own).
    pub rate_limit_treefort_per_minute: std::num::NonZeroU32,
    /// Failed authentications a client address may make per minute on `/treefort` and `/v1`.
    pub rate_limit_failed_auth_per_minute: std::num::NonZeroU32,
    /// Requests a minute per client address on the shopper pages (each instance counts its own).
    pub rate_limit_pages_per_minute: std::num::NonZeroU32,
    /// Failed payment attempts a checkout link allows before it is spent.
    pub checkout_max_failed_attempts: i32,
    /// Take the client address from `X-Forwarded-For`/`Forwarded` (behind a trusted proxy only).
    pub trust_proxy_headers: bool,
    /// If set, `/metrics` answers only requests with `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// How long a client may take to send a request's body before it gets 408.
    pub body_read_timeout: Duration,
    /// The key webhook endpoints' signing secrets are derived from (`WEBHOOK_SIGNING_KEY`, the
    /// same on every instance). `None`: endpoints cannot be added and nothing is delivered.
    pub webhook_signing_key: Option<Secret>,
    /// Per-attempt timeout of an outbound webhook delivery.
    pub webhook_timeout: Duration,
    /// Whether webhook URLs may name private, loopback or link-local addresses. `None`: only with
    /// a test-mode gateway.
    pub webhooks_allow_private: Option<bool>,
    /// How often the in-memory catalog's version is compared with the database's.
    pub catalog_check_interval: Duration,
    /// How many charges (and Treefort updates) the worker has in flight at once
    /// (`WORKER_CONCURRENCY`): the gateway's rate limit bounds it.
    pub worker_concurrency: usize,
    /// How many subscriptions (and Treefort updates) the worker claims with one statement and
    /// records with one transaction (`WORKER_BATCH`): the database's commit rate bounds it. The
    /// leases of a wave last as long as its turns can take at `worker_concurrency` at a time.
    pub worker_batch: usize,
    /// Local mode (`serve` with no Treefort settings, no provider keys and a test-mode gateway):
    /// a built-in Treefort simulator at `/simulator`, a generated provider key, demo plans and
    /// time travel. `LOCAL_MODE=0` turns it off.
    pub local_mode: bool,
}

/// Every setting of the Treefort side: any one of them set means a real Treefort is meant.
pub const TREEFORT_KEYS: [&str; 9] = [
    "TREEFORT_API_URL",
    "TREEFORT_TOKEN_URL",
    "TREEFORT_CLIENT_ID",
    "TREEFORT_CLIENT_SECRET",
    "TREEFORT_API_VERSION",
    "TREEFORT_SCOPE",
    "TREEFORT_TENANT",
    "TREEFORT_TIMEOUT_MS",
    "PROVIDER_API_KEYS",
];

impl Settings {
    /// How many turns of a worker wave run one after another: a wave of `worker_batch` at
    /// `worker_concurrency` at a time.
    pub fn worker_slots(&self) -> u32 {
        self.worker_batch.div_ceil(self.worker_concurrency.max(1)) as u32
    }

    /// The longest one gateway call may take (its timeout, or the sandbox's delay).
    pub fn gateway_call_bound(&self) -> Duration {
        match &self.gateway {
            GatewayKind::Sandbox { charge_delay } => *charge_delay,
            GatewayKind::Stripe(stripe) => stripe.call_bound(),
        }
    }

    /// Whether webhook URLs may point at private, loopback or link-local addresses: as
    /// `WEBHOOKS_ALLOW_PRIVATE` says, else only with a test-mode gateway (no real money).
    pub fn allow_private_webhooks(&self) -> bool {
        self.webhooks_allow_private.unwrap_or(match &self.gateway {
            GatewayKind::Sandbox { .. } => true,
            GatewayKind::Stripe(stripe) => stripe.is_test_mode(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct TreefortSettings {
    pub api_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    pub api_version: String,
    pub tenant: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayKind {
    /// The built-in sandbox; `charge_delay` makes each of its charges take that long (a slow
    /// bank, for tests and demos; `SANDBOX_CHARGE_DELAY_MS`, default none).
    Sandbox {
        charge_delay: Duration,
    },
    Stripe(StripeSettings),
}

pub const STRIPE_API_URL: &str = "https://api.stripe.com";
pub const STRIPE_JS_URL: &str = "https://js.stripe.com/v3/";

/// `PAYMENT_GATEWAY=stripe`: the keys, the webhook signing secrets (two while one is rolled), and
/// where Stripe's API and Stripe.js are (overridable so tests run against localstripe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSettings {
    pub secret_key: Secret,
    /// Public by design: it is written into the checkout page.
    pub publishable_key: String,
    pub webhook_secrets: Vec<Secret>,
    pub api_url: String,
    pub js_url: String,
    pub timeout: Duration,
    /// Every Stripe call of this instance is paced under this rate (`STRIPE_MAX_REQUESTS_PER_SECOND`).
    pub max_requests_per_second: u32,
    /// Retries of a call Stripe answered 429, 409 or 5xx, or whose answer was lost, under the same
    /// idempotency key (`STRIPE_MAX_NETWORK_RETRIES`).
    pub max_network_retries: u32,
}

/// Stripe's published limits are 100 operations a second live and 25 in test mode; the pace
/// stays under them.
pub const STRIPE_DEFAULT_RATE_LIVE: u32 = 80;
pub const STRIPE_DEFAULT_RATE_TEST: u32 = 20;
/// The longest wait between two tries of one Stripe call.
pub const STRIPE_MAX_BACKOFF: Duration = Duration::from_secs(5);

impl StripeSettings {
    /// The longest one call may take, its retries and their waits included.
    pub fn call_bound(&self) -> Duration {
        self.timeout * (1 + self.max_network_retries)
            + STRIPE_MAX_BACKOFF * self.max_network_retries
    }

    /// Test keys (`sk_test_…`): no real money moves, and the pages say so.
    pub fn is_test_mode(&self) -> bool {
        let key = self.secret_key.expose();
        key.starts_with("sk_test_") || key.starts_with("rk_test_")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let database_url = DatabaseUrl::parse(
            &get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
        )?;
        let listen_raw = get("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let listen_addr: SocketAddr = listen_raw.parse().map_err(|_| {
            format!("LISTEN_ADDR must be host:port, e.g. 127.0.0.1:8080 (got {listen_raw:?})")
        })?;
        let public_base_url = match get("PUBLIC_BASE_URL") {
            Some(url) => parse_base_url("PUBLIC_BASE_URL", &url)?,
            None => format!("http://{listen_addr}"),
        };
        let provider_api_keys = get("PROVIDER_API_KEYS")
            .map(|keys| {
                keys.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default();

        let checkout_session_ttl_secs = ttl(&get, "CHECKOUT_SESSION_TTL_SECS", 3600)?;
        let portal_session_ttl_secs = ttl(&get, "PORTAL_SESSION_TTL_SECS", 900)?;

        let gateway = match get("PAYMENT_GATEWAY").as_deref().unwrap_or("sandbox") {
            "sandbox" => GatewayKind::Sandbox {
                charge_delay: match get("SANDBOX_CHARGE_DELAY_MS") {
                    None => Duration::ZERO,
                    Some(raw) => match raw.parse::<u64>() {
                        Ok(ms) if ms <= 60_000 => Duration::from_millis(ms),
                        _ => {
                            return Err(format!(
                                "SANDBOX_CHARGE_DELAY_MS must be milliseconds from 0 to 60000 (got {raw:?})"
                            ))
                        }
                    },
                },
            },
            "stripe" => GatewayKind::Stripe(stripe_settings(&get)?),
            other => {
                return Err(format!(
                    "PAYMENT_GATEWAY must be sandbox or stripe (got {other:?})"
                ));
            }
        };
        let log_format = match get("LOG_FORMAT").as_deref() {
            None => None,
            Some("pretty") => Some(LogFormat::Pretty),
            Some("json") => Some(LogFormat::Json),
            Some(other) => {
                return Err(format!("LOG_FORMAT must be pretty or json (got {other:?})"))
            }
        };

        let per_minute = |key: &str, default: u32| -> Result<std::num::NonZeroU32, String> {
            match get(key) {
                None => Ok(std::num::NonZeroU32::new(default).expect("defaults are not zero")),
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .and_then(std::num::NonZeroU32::new)
                    .ok_or_else(|| {
                        format!("{key} must be a number of requests a minute from 1 to 1000000 (got {raw:?})")
                    }),
            }
        };
        let checkout_max_failed_attempts = match get("CHECKOUT_MAX_FAILED_ATTEMPTS") {
            None => 5,
            Some(raw) => raw
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    format!(
                        "CHECKOUT_MAX_FAILED_ATTEMPTS must be a number from 1 to 100 (got {raw:?})"
                    )
                })?,
        };
        let test_mode_gateway = match &gateway {
            GatewayKind::Sandbox { .. } => true,
            GatewayKind::Stripe(stripe) => stripe.is_test_mode(),
        };
        // Local mode on its own only where it can be nothing but a developer's machine: nothing
        // of Treefort configured, no real money, served on loopback only, SQLite. A deployment
        // that forgot its settings (a public address, PostgreSQL) starts as today instead.
        let on_loopback = listen_addr.ip().is_loopback()
            && get("PUBLIC_BASE_URL").is_none_or(|url| {
                reqwest::Url::parse(&url).is_ok_and(|u| {
                    matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
                })
            });
        let local_mode = match get("LOCAL_MODE").as_deref() {
            Some("0") | Some("false") => false,
            None => {
                TREEFORT_KEYS.iter().all(|k| get(k).is_none())
                    && test_mode_gateway
                    && on_loopback
                    && database_url.sqlite_path().is_some()
            }
            Some("1") | Some("true") => {
                if let Some(set) = TREEFORT_KEYS.iter().find(|k| get(k).is_some()) {
                    return Err(format!(
                        "LOCAL_MODE=1 runs a built-in Treefort simulator, so {set} must not be set"
                    ));
                }
                if !test_mode_gateway {
                    return Err(
                        "LOCAL_MODE=1 is refused with a live payment gateway (real money)".into(),
                    );
                }
                true
            }
            Some(other) => return Err(format!("LOCAL_MODE must be 1 or 0 (got {other:?})")),
        };
        let trust_proxy_headers = match get("TRUST_PROXY_HEADERS").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "TRUST_PROXY_HEADERS must be 1 or 0 (got {other:?})"
                ))
            }
        };
        Ok(Self {
            database_url,
            listen_addr,
            public_base_url,
            provider_api_keys,
            treefort: treefort_settings(&get)?,
            checkout_session_ttl_secs,
            portal_session_ttl_secs,
            gateway,
            log_format,
            // Per proven key: far above any real app's traffic (Treefort is never throttled by
            // default); the strict limits are on failed authentication and the pages.
            rate_limit_treefort_per_minute: per_minute(
                "RATE_LIMIT_TREEFORT_PER_MINUTE",
                1_000_000,
            )?,
            rate_limit_failed_auth_per_minute: per_minute(
                "RATE_LIMIT_FAILED_AUTH_PER_MINUTE",
                30,
            )?,
            rate_limit_pages_per_minute: per_minute("RATE_LIMIT_PAGES_PER_MINUTE", 120)?,
            checkout_max_failed_attempts,
            trust_proxy_headers,
            metrics_token: get("METRICS_TOKEN").map(Secret::new),
            webhook_signing_key: match get("WEBHOOK_SIGNING_KEY") {
                Some(key) if key.len() < 32 => {
                    return Err(
                        "WEBHOOK_SIGNING_KEY must be at least 32 characters (e.g. openssl rand -hex 32)"
                            .into(),
                    )
                }
                key => key.map(Secret::new),
            },
            webhook_timeout: match get("WEBHOOK_TIMEOUT_MS") {
                None => Duration::from_secs(10),
                Some(raw) => match raw.parse::<u64>() {
                    Ok(ms) if (100..=60_000).contains(&ms) => Duration::from_millis(ms),
                    _ => {
                        return Err(format!(
                            "WEBHOOK_TIMEOUT_MS must be milliseconds from 100 to 60000 (got {raw:?})"
                        ))
                    }
                },
            },
            catalog_check_interval: match get("CATALOG_CHECK_MS") {
                None => Duration::from_millis(250),
                Some(raw) => match raw.parse::<u64>() {
                    Ok(ms) if (50..=60_000).contains(&ms) => Duration::from_millis(ms),
                    _ => {
                        return Err(format!(
                            "CATALOG_CHECK_MS must be milliseconds from 50 to 60000 (got {raw:?})"
                        ))
                    }
                },
            },
            worker_concurrency: match get("WORKER_CONCURRENCY") {
                None => 32,
                Some(raw) => match raw.parse::<usize>() {
                    Ok(n) if (1..=256).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "WORKER_CONCURRENCY must be a number from 1 to 256 (got {raw:?})"
                        ))
                    }
                },
            },
            worker_batch: match get("WORKER_BATCH") {
                None => 256,
                Some(raw) => match raw.parse::<usize>() {
                    // 500 rows of 49 parameters stay under SQLite's 32 766 per statement.
                    Ok(n) if (1..=500).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "WORKER_BATCH must be a number from 1 to 500 (got {raw:?})"
                        ))
                    }
                },
            },
            webhooks_allow_private: match get("WEBHOOKS_ALLOW_PRIVATE").as_deref() {
                None => None,
                Some("1") | Some("true") => Some(true),
                Some("0") | Some("false") => Some(false),
                Some(other) => {
                    return Err(format!(
                        "WEBHOOKS_ALLOW_PRIVATE must be 1 or 0 (got {other:?})"
                    ))
                }
            },
            body_read_timeout: match get("BODY_READ_TIMEOUT_MS") {
                None => Duration::from_secs(10),
                Some(raw) => match raw.parse::<u64>() {
                    Ok(ms) if (1..=120_000).contains(&ms) => Duration::from_millis(ms),
                    _ => {
                        return Err(format!(
                        "BODY_READ_TIMEOUT_MS must be milliseconds from 1 to 120000 (got {raw:?})"
                    ))
                    }
                },
            },
            local_mode,
        })
    }
}

fn ttl(get: &impl Fn(&str) -> Option<String>, key: &str, default: i64) -> Result<i64, String> {
    let Some(raw) = get(key) else {
        return Ok(default);
    };
    match raw.parse::<i64>() {
        Ok(secs) if (1..=MAX_SESSION_TTL_SECS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "{key} must be a number of seconds from 1 to {MAX_SESSION_TTL_SECS} (links expire within 24 hours; got {raw:?})"
        )),
    }
}

/// The Treefort API settings: all or nothing, so a half-configured client never starts.
fn treefort_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TreefortSettings>, String> {
    const REQUIRED: [&str; 5] = [
        "TREEFORT_API_URL",
        "TREEFORT_TOKEN_URL",
        "TREEFORT_CLIENT_ID",
        "TREEFORT_CLIENT_SECRET",
        "TREEFORT_API_VERSION",
    ];
    let present: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|k| get(k).is_some())
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    if let Some(missing) = REQUIRED.iter().find(|k| get(k).is_none()) {
        return Err(format!(
            "{missing} is required when {} is set (the Treefort API needs all of {})",
            present[0],
            REQUIRED.join(", ")
        ));
    }
    let required = |key: &str| get(key).unwrap_or_default();
    let timeout_ms = match get("TREEFORT_TIMEOUT_MS") {
        None => 10_000,
        Some(raw) => match raw.parse::<u64>() {
            Ok(ms) if (1..=120_000).contains(&ms) => ms,
            _ => {
                return Err(format!(
                    "TREEFORT_TIMEOUT_MS must be milliseconds from 1 to 120000 (got {raw:?})"
                ))
            }
        },
    };
    Ok(Some(TreefortSettings {
        api_url: parse_base_url("TREEFORT_API_URL", &required("TREEFORT_API_URL"))?,
        token_url: parse_base_url("TREEFORT_TOKEN_URL", &required("TREEFORT_TOKEN_URL"))?,
        client_id: required("TREEFORT_CLIENT_ID"),
        client_secret: Secret::new(required("TREEFORT_CLIENT_SECRET")),
        scope: get("TREEFORT_SCOPE"),
        api_version: required("TREEFORT_API_VERSION"),
        tenant: get("TREEFORT_TENANT"),
        timeout: Duration::from_millis(timeout_ms),
    }))
}

/// The Stripe keys must be present, of the right kind, and both test or both live.
fn stripe_settings(get: &impl Fn(&str) -> Option<String>) -> Result<StripeSettings, String> {
    let secret_key = get("STRIPE_SECRET_KEY")
        .ok_or("STRIPE_SECRET_KEY is required with PAYMENT_GATEWAY=stripe")?;
    let publishable_key = get("STRIPE_PUBLISHABLE_KEY")
        .ok_or("STRIPE_PUBLISHABLE_KEY is required with PAYMENT_GATEWAY=stripe")?;
    // Never echo a secret key: name its kind only.
    let secret_mode = if secret_key.starts_with("sk_test_") || secret_key.starts_with("rk_test_") {
        "test"
    } else if secret_key.starts_with("sk_live_") || secret_key.starts_with("rk_live_") {
        "live"
    } else {
        return Err(
            "STRIPE_SECRET_KEY must be a Stripe secret key (sk_test_… or sk_live_…)".into(),
        );
    };
    let publishable_mode = if publishable_key.starts_with("pk_test_") {
        "test"
    } else if publishable_key.starts_with("pk_live_") {
        "live"
    } else {
        return Err(
            "STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key (pk_test_… or pk_live_…)"
                .into(),
        );
    };
    if secret_mode != publishable_mode {
        return Err(format!(
            "STRIPE_SECRET_KEY is a {secret_mode} key but STRIPE_PUBLISHABLE_KEY is a {publishable_mode} key; use both test or both live keys"
        ));
    }
    let webhook_secrets: Vec<Secret> = get("STRIPE_WEBHOOK_SECRETS")
        .ok_or("STRIPE_WEBHOOK_SECRETS is required with PAYMENT_GATEWAY=stripe (the whsec_… signing secret of the webhook endpoint; two, comma-separated, while rolling)")?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect();
    if webhook_secrets.is_empty()
        || webhook_secrets
            .iter()
            .any(|s| !s.expose().starts_with("whsec_"))
    {
        return Err("STRIPE_WEBHOOK_SECRETS must be comma-separated whsec_… secrets".into());
    }
    let timeout_ms = match get("STRIPE_TIMEOUT_MS") {
        None => 20_000,
        Some(raw) => match raw.parse::<u64>() {
            Ok(ms) if (1..=120_000).contains(&ms) => ms,
            _ => {
                return Err(format!(
                    "STRIPE_TIMEOUT_MS must be milliseconds from 1 to 120000 (got {raw:?})"
                ))
            }
        },
    };
    let test_mode = secret_key.starts_with("sk_test_");
    let max_requests_per_second = bounded(
        get,
        "STRIPE_MAX_REQUESTS_PER_SECOND",
        1..=10_000,
        if test_mode {
            STRIPE_DEFAULT_RATE_TEST
        } else {
            STRIPE_DEFAULT_RATE_LIVE
        },
        "requests a second",
    )?;
    let max_network_retries = bounded(get, "STRIPE_MAX_NETWORK_RETRIES", 0..=10, 2, "retries")?;
    let js_url = match get("STRIPE_JS_URL") {
        None => STRIPE_JS_URL.to_string(),
        Some(url) => {
            parse_base_url("STRIPE_JS_URL", &url)?;
            url
        }
    };
    Ok(StripeSettings {
        secret_key: Secret::new(secret_key),
        publishable_key,
        webhook_secrets,
        api_url: parse_base_url(
            "STRIPE_API_URL",
            &get("STRIPE_API_URL").unwrap_or_else(|| STRIPE_API_URL.into()),
        )?,
        js_url,
        timeout: Duration::from_millis(timeout_ms),
        max_requests_per_second,
        max_network_retries,
    })
}

/// A whole number setting within `range`, or `default` when unset.
fn bounded(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
    unit: &str,
) -> Result<u32, String> {
    match get(key) {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(format!(
                "{key} must be {unit} from {} to {} (got {raw:?})",
                range.start(),
                range.end()
            )),
        },
    }
}

/// An absolute http(s) URL, returned without a trailing slash.
fn parse_base_url(key: &str, value: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(value)
        .map_err(|_| format!("{key} must be an absolute http(s) URL (got {value:?})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{key} must be an absolute http(s) URL (got {value:?})"
        ));
    }
    Ok(value.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_base_url, "http://127.0.0.1:8080");
        assert_eq!(s.checkout_session_ttl_secs, 3600);
        assert_eq!(s.portal_session_ttl_secs, 900);
        assert!(s.provider_api_keys.is_empty());
        assert!(s.treefort.is_none());
        // A proven key is not throttled by default (a busy app's plan lookups alone can pass
        // 6 000 a minute); failed authentication and the pages are.
        assert!(s.rate_limit_treefort_per_minute.get() >= 600_000);
        assert_eq!(s.rate_limit_failed_auth_per_minute.get(), 30);
        assert_eq!(s.rate_limit_pages_per_minute.get(), 120);
    }

    #[test]
    fn session_lifetimes_over_a_day_are_refused() {
        let err = settings(&[("CHECKOUT_SESSION_TTL_SECS", "86401")]).unwrap_err();
        assert!(err.contains("CHECKOUT_SESSION_TTL_SECS"), "{err}");
        assert!(settings(&[("PORTAL_SESSION_TTL_SECS", "0")]).is_err());
        assert!(settings(&[("PORTAL_SESSION_TTL_SECS", "86400")]).is_ok());
    }

    #[test]
    fn bad_urls_gateways_and_partial_treefort_settings_are_refused() {
        assert!(settings(&[("PUBLIC_BASE_URL", "example.com")]).is_err());
        assert!(settings(&[("DATABASE_URL", "mysql://x")]).is_err());
        assert!(settings(&[("PAYMENT_GATEWAY", "paypal")]).is_err());
        let err = settings(&[("TREEFORT_API_URL", "https://api.example.com/v1")]).unwrap_err();
        assert!(err.contains("TREEFORT_TOKEN_URL"), "{err}");
    }

    #[test]
    fn stripe_keys_must_be_present_of_their_kind_and_of_one_mode() {
        let stripe = |sk: &str, pk: &str| {
            settings(&[
                ("PAYMENT_GATEWAY", "stripe"),
                ("STRIPE_SECRET_KEY", sk),
                ("STRIPE_PUBLISHABLE_KEY", pk),
                ("STRIPE_WEBHOOK_SECRETS", "whsec_one,whsec_two"),
            ])
        };
        let ok = stripe("sk_test_abc", "pk_test_abc").unwrap();
        let GatewayKind::Stripe(s) = &ok.gateway else {
            panic!("stripe")
        };
        assert!(s.is_test_mode());
        assert_eq!(s.webhook_secrets.len(), 2);
        assert_eq!(s.api_url, STRIPE_API_URL);
        let GatewayKind::Stripe(live) = stripe("sk_live_abc", "pk_live_abc").unwrap().gateway
        else {
            panic!("stripe")
        };
        assert!(!live.is_test_mode());
        let mixed = stripe("sk_test_secret123", "pk_live_abc").unwrap_err();
        assert!(mixed.contains("test") && mixed.contains("live"), "{mixed}");
        assert!(!mixed.contains("secret123"), "never echo the key: {mixed}");
        assert!(stripe("pk_test_abc", "pk_test_abc").is_err());
        assert!(stripe("sk_test_abc", "sk_test_abc").is_err());
        let missing = settings(&[("PAYMENT_GATEWAY", "stripe")]).unwrap_err();
        assert!(missing.contains("STRIPE_SECRET_KEY"), "{missing}");
        let no_hooks = settings(&[
            ("PAYMENT_GATEWAY", "stripe"),
            ("STRIPE_SECRET_KEY", "sk_test_a"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_test_a"),
        ])
        .unwrap_err();
        assert!(no_hooks.contains("STRIPE_WEBHOOK_SECRETS"), "{no_hooks}");
        let printed = format!("{:?}", stripe("sk_test_hidden", "pk_test_abc").unwrap());
        assert!(!printed.contains("sk_test_hidden") && !printed.contains("whsec_one"));
    }

    #[test]
    fn secrets_never_print() {
        let s = settings(&[
            ("PROVIDER_API_KEYS", "key-one, key-two"),
            ("TREEFORT_API_URL", "https://api.example.com/v1/"),
            (
                "TREEFORT_TOKEN_URL",
                "https://auth.example.com/oauth2/token",
            ),
            ("TREEFORT_CLIENT_ID", "client"),
            ("TREEFORT_CLIENT_SECRET", "very-secret"),
            ("TREEFORT_API_VERSION", "2024-01-01"),
        ])
        .unwrap();
        assert_eq!(s.provider_api_keys.len(), 2);
        assert_eq!(
            s.treefort.as_ref().unwrap().api_url,
            "https://api.example.com/v1"
        );
        let printed = format!("{s:?}");
        assert!(!printed.contains("very-secret") && !printed.contains("key-one"));
    }
}
