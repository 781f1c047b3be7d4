//! Settings from the environment, validated once at start-up: a missing or wrong value stops the
//! process with one clear line. Secrets are wrapped so that no `{:?}` can print them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::db::DatabaseUrl;

mod email;
mod vars;

pub use email::{EmailSettings, SmtpSettings};

use vars::Vars;

/// A secret value (`secrecy`): printable only through `expose()`, and wiped from memory when
/// dropped.
#[derive(Clone)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(secrecy::SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A provider API key, its SHA-256 computed once (a request's key is compared with the digests
/// in constant time: `api::auth`) and the name the rate limit counts it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    secret: Secret,
    digest: [u8; 32],
    name: String,
}

impl ProviderKey {
    /// The key at `index` of `PROVIDER_API_KEYS`.
    pub fn new(secret: Secret, index: usize) -> Self {
        use sha2::Digest;
        Self {
            digest: sha2::Sha256::digest(secret.expose().as_bytes()).into(),
            secret,
            name: format!("provider-key-{index}"),
        }
    }

    pub fn expose(&self) -> &str {
        self.secret.expose()
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// How logs and limits name it: never the secret.
    pub fn name(&self) -> &str {
        &self.name
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
    pub provider_api_keys: Vec<ProviderKey>,
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
    /// When set, launch tokens are signed HS256 with it instead of EdDSA.
    pub launch_token_secret: Option<Secret>,
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
    /// Shoppers' emails: the SMTP server (none: nothing is sent), sender and reminders.
    pub email: EmailSettings,
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

    /// Reads settings through `lookup` (the environment in production, a map in tests): each
    /// variable as `Vars` declares it, then what they mean together.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let vars = Vars::read(&lookup)?;
        let database_url = DatabaseUrl::parse(&vars.database_url)?;
        let gateway = match vars.payment_gateway.as_str() {
            "stripe" => GatewayKind::Stripe(stripe_settings(&vars)?),
            _ => GatewayKind::Sandbox {
                charge_delay: vars.sandbox_charge_delay,
            },
        };
        let local_mode = local_mode(&vars, &lookup, &gateway, &database_url)?;
        let email = email::email_settings(&vars)?;
        Ok(Self {
            email,
            public_base_url: vars
                .public_base_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", vars.listen_addr)),
            provider_api_keys: vars
                .provider_api_keys
                .as_deref()
                .map(|keys| {
                    list(keys)
                        .enumerate()
                        .map(|(i, key)| ProviderKey::new(Secret::new(key), i))
                        .collect()
                })
                .unwrap_or_default(),
            treefort: treefort_settings(&vars)?,
            database_url,
            gateway,
            local_mode,
            listen_addr: vars.listen_addr,
            checkout_session_ttl_secs: vars.checkout_session_ttl_secs,
            portal_session_ttl_secs: vars.portal_session_ttl_secs,
            log_format: vars.log_format,
            rate_limit_treefort_per_minute: vars.rate_limit_treefort_per_minute,
            rate_limit_failed_auth_per_minute: vars.rate_limit_failed_auth_per_minute,
            rate_limit_pages_per_minute: vars.rate_limit_pages_per_minute,
            checkout_max_failed_attempts: vars.checkout_max_failed_attempts,
            trust_proxy_headers: vars.trust_proxy_headers.unwrap_or(false),
            metrics_token: vars.metrics_token.map(Secret::new),
            webhook_signing_key: vars.webhook_signing_key.map(Secret::new),
            launch_token_secret: vars.launch_token_secret.map(Secret::new),
            webhook_timeout: vars.webhook_timeout,
            catalog_check_interval: vars.catalog_check_interval,
            worker_concurrency: vars.worker_concurrency,
            worker_batch: vars.worker_batch,
            webhooks_allow_private: vars.webhooks_allow_private,
            body_read_timeout: vars.body_read_timeout,
        })
    }
}

/// The items of a comma-separated list, trimmed, empty ones left out.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|k| !k.is_empty())
}

/// Local mode on its own only where it can be nothing but a developer's machine: nothing of
/// Treefort configured, no real money, served on loopback only, SQLite. A deployment that forgot
/// its settings (a public address, PostgreSQL) starts as today instead.
fn local_mode(
    vars: &Vars,
    lookup: &impl Fn(&str) -> Option<String>,
    gateway: &GatewayKind,
    database_url: &DatabaseUrl,
) -> Result<bool, String> {
    let test_mode_gateway = match gateway {
        GatewayKind::Sandbox { .. } => true,
        GatewayKind::Stripe(stripe) => stripe.is_test_mode(),
    };
    let set = |key: &str| lookup(key).is_some_and(|v| !v.trim().is_empty());
    let on_loopback = vars.listen_addr.ip().is_loopback()
        && vars.public_base_url.as_deref().is_none_or(|url| {
            reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
        });
    match vars.local_mode {
        Some(false) => Ok(false),
        None => Ok(!TREEFORT_KEYS.iter().any(|k| set(k))
            && test_mode_gateway
            && on_loopback
            && database_url.sqlite_path().is_some()),
        Some(true) => {
            if let Some(key) = TREEFORT_KEYS.iter().find(|k| set(k)) {
                return Err(format!(
                    "LOCAL_MODE=1 runs a built-in Treefort simulator, so {key} must not be set"
                ));
            }
            if !test_mode_gateway {
                return Err(
                    "LOCAL_MODE=1 is refused with a live payment gateway (real money)".into(),
                );
            }
            Ok(true)
        }
    }
}

/// The Treefort API settings: all or nothing, so a half-configured client never starts.
fn treefort_settings(vars: &Vars) -> Result<Option<TreefortSettings>, String> {
    let required = [
        ("TREEFORT_API_URL", &vars.treefort_api_url),
        ("TREEFORT_TOKEN_URL", &vars.treefort_token_url),
        ("TREEFORT_CLIENT_ID", &vars.treefort_client_id),
        ("TREEFORT_CLIENT_SECRET", &vars.treefort_client_secret),
        ("TREEFORT_API_VERSION", &vars.treefort_api_version),
    ];
    let Some((first, _)) = required.iter().find(|(_, v)| v.is_some()) else {
        return Ok(None);
    };
    if let Some((missing, _)) = required.iter().find(|(_, v)| v.is_none()) {
        let names: Vec<&str> = required.iter().map(|(k, _)| *k).collect();
        return Err(format!(
            "{missing} is required when {first} is set (the Treefort API needs all of {})",
            names.join(", ")
        ));
    }
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(Some(TreefortSettings {
        api_url: vars::base_url("TREEFORT_API_URL")(&value(&vars.treefort_api_url))?,
        token_url: vars::base_url("TREEFORT_TOKEN_URL")(&value(&vars.treefort_token_url))?,
        client_id: value(&vars.treefort_client_id),
        client_secret: Secret::new(value(&vars.treefort_client_secret)),
        scope: vars.treefort_scope.clone(),
        api_version: value(&vars.treefort_api_version),
        tenant: vars.treefort_tenant.clone(),
        timeout: vars.treefort_timeout.unwrap_or(Duration::from_secs(10)),
    }))
}

/// The kind of a Stripe key by its prefix (`test` or `live`), never its value.
fn key_mode(key: &str, test: &[&str], live: &[&str]) -> Option<&'static str> {
    if test.iter().any(|p| key.starts_with(p)) {
        Some("test")
    } else if live.iter().any(|p| key.starts_with(p)) {
        Some("live")
    } else {
        None
    }
}

/// The Stripe keys must be present, of the right kind, and both test or both live.
fn stripe_settings(vars: &Vars) -> Result<StripeSettings, String> {
    let secret_key = vars
        .stripe_secret_key
        .clone()
        .ok_or("STRIPE_SECRET_KEY is required with PAYMENT_GATEWAY=stripe")?;
    let publishable_key = vars
        .stripe_publishable_key
        .clone()
        .ok_or("STRIPE_PUBLISHABLE_KEY is required with PAYMENT_GATEWAY=stripe")?;
    // Never echo a secret key: name its kind only.
    let secret_mode = key_mode(
        &secret_key,
        &["sk_test_", "rk_test_"],
        &["sk_live_", "rk_live_"],
    )
    .ok_or("STRIPE_SECRET_KEY must be a Stripe secret key (sk_test_… or sk_live_…)")?;
    let publishable_mode = key_mode(&publishable_key, &["pk_test_"], &["pk_live_"]).ok_or(
        "STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key (pk_test_… or pk_live_…)",
    )?;
    if secret_mode != publishable_mode {
        return Err(format!(
            "STRIPE_SECRET_KEY is a {secret_mode} key but STRIPE_PUBLISHABLE_KEY is a {publishable_mode} key; use both test or both live keys"
        ));
    }
    let webhook_secrets: Vec<Secret> = list(vars.stripe_webhook_secrets.as_deref().ok_or(
        "STRIPE_WEBHOOK_SECRETS is required with PAYMENT_GATEWAY=stripe (the whsec_… signing secret of the webhook endpoint; two, comma-separated, while rolling)",
    )?)
    .map(Secret::new)
    .collect();
    if webhook_secrets.is_empty()
        || webhook_secrets
            .iter()
            .any(|s| !s.expose().starts_with("whsec_"))
    {
        return Err("STRIPE_WEBHOOK_SECRETS must be comma-separated whsec_… secrets".into());
    }
    let default_rate = if secret_key.starts_with("sk_test_") {
        STRIPE_DEFAULT_RATE_TEST
    } else {
        STRIPE_DEFAULT_RATE_LIVE
    };
    Ok(StripeSettings {
        secret_key: Secret::new(secret_key),
        publishable_key,
        webhook_secrets,
        api_url: vars.stripe_api_url.clone(),
        js_url: vars
            .stripe_js_url
            .clone()
            .unwrap_or_else(|| STRIPE_JS_URL.to_string()),
        timeout: vars.stripe_timeout,
        max_requests_per_second: vars.stripe_max_requests_per_second.unwrap_or(default_rate),
        max_network_retries: vars.stripe_max_network_retries,
    })
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
