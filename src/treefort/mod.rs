//! The Treefort API client: the only place that knows Treefort's paths, headers, token flow and body
//! shapes. It gets an OAuth 2.0 access token with the client-credentials grant, caches it until
//! shortly before it expires, fetches a new one once on a 401, and sends `X-Treefort-Version` (and
//! `X-Treefort-Tenant` when configured) on every call. Every call is bounded by
//! `TREEFORT_TIMEOUT_MS`. Tokens and secrets are never logged.

pub mod provider;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::clock::{rfc3339, Clock};
use crate::config::TreefortSettings;
use crate::domain::url::path_segment;
use crate::error::ApiError;

/// Why a Treefort call failed. Timeouts are kept apart: they map to 504, the rest to 502.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TreefortError {
    #[error("Treefort did not answer within the timeout")]
    Timeout,
    #[error("Treefort answered {status}")]
    Status { status: u16, body: String },
    #[error("Treefort could not be reached: {0}")]
    Transport(String),
    #[error("Treefort token request failed: {0}")]
    Token(String),
    #[error("Treefort is not configured")]
    NotConfigured,
}

impl TreefortError {
    /// A rejection that sending the same request again cannot fix (4xx other than 408/409/429).
    pub fn is_permanent(&self) -> bool {
        matches!(self, TreefortError::Status { status, .. }
            if (400..500).contains(status) && !matches!(status, 408 | 409 | 429))
    }
}

impl From<TreefortError> for ApiError {
    fn from(e: TreefortError) -> Self {
        match e {
            TreefortError::Timeout => ApiError::gateway_timeout(
                "treefort_timeout",
                "Treefort did not answer in time; nothing was changed",
            ),
            TreefortError::NotConfigured => ApiError::not_configured(
                "the Treefort API is not configured (TREEFORT_API_URL and friends)",
            ),
            other => {
                ApiError::bad_gateway("treefort_error", format!("{other}; nothing was changed"))
            }
        }
    }
}

const PROVIDER: &str = "webPayment";

/// Body of `POST /subscriptions`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubscription {
    pub provider: &'static str,
    pub user_id: String,
    pub subscription_plan_id: i64,
    pub current_period_ends_at: String,
    pub trial_ends_at: Option<String>,
}

impl CreateSubscription {
    pub fn new(
        user_id: &str,
        plan_id: i64,
        current_period_ends_at: DateTime<Utc>,
        trial_ends_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            provider: PROVIDER,
            user_id: user_id.to_string(),
            subscription_plan_id: plan_id,
            current_period_ends_at: rfc3339(current_period_ends_at),
            trial_ends_at: trial_ends_at.map(rfc3339),
        }
    }
}

/// Body of `PATCH /subscriptions/{id}`: only the fields set are sent; `Some(None)` sends `null`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSubscription {
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_plan_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_ends_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_ends_at: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<Option<String>>,
}

impl UpdateSubscription {
    pub fn cancel(at: DateTime<Utc>) -> Self {
        Self {
            provider: PROVIDER,
            canceled_at: Some(Some(rfc3339(at))),
            ..Self::default()
        }
    }

    /// `canceledAt: null`: the user takes the cancellation back before the period ends.
    pub fn resume() -> Self {
        Self {
            provider: PROVIDER,
            canceled_at: Some(None),
            ..Self::default()
        }
    }

    /// A paid renewal: the new period end, `trialEndsAt: null` after a trial, the new plan after
    /// a switch.
    pub fn renewed(
        period_ends_at: DateTime<Utc>,
        after_trial: bool,
        new_plan_id: Option<i64>,
    ) -> Self {
        Self {
            provider: PROVIDER,
            current_period_ends_at: Some(rfc3339(period_ends_at)),
            trial_ends_at: after_trial.then_some(None),
            subscription_plan_id: new_plan_id,
            ..Self::default()
        }
    }

    pub fn deactivate(at: DateTime<Utc>) -> Self {
        Self {
            provider: PROVIDER,
            deactivated_at: Some(Some(rfc3339(at))),
            ..Self::default()
        }
    }
}

struct CachedToken {
    value: String,
    refresh_at: DateTime<Utc>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

pub struct TreefortClient {
    http: reqwest::Client,
    settings: TreefortSettings,
    token: Mutex<Option<CachedToken>>,
    clock: Clock,
}

impl TreefortClient {
    pub fn new(settings: TreefortSettings, clock: Clock) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("treefort-webpay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the Treefort HTTP client: {e}"))?;
        Ok(Self {
            http,
            settings,
            token: Mutex::new(None),
            clock,
        })
    }

    /// `POST {api}/subscriptions`; returns the id Treefort gave the subscription, when its answer
    /// has one (`id`, or `data.id`, as a string or a number). `idempotency_key` is the same on
    /// every retry of one creation, so a POST re-sent after a lost answer can be recognised.
    pub async fn create_subscription(
        &self,
        body: &Value,
        idempotency_key: &str,
    ) -> Result<Option<String>, TreefortError> {
        let answer = self
            .call(Method::POST, "/subscriptions", body, Some(idempotency_key))
            .await?;
        Ok(subscription_id_in(&answer))
    }

    /// `PATCH {api}/subscriptions/{id}` with the id Treefort returned from the POST.
    pub async fn update_subscription(
        &self,
        treefort_id: &str,
        body: &Value,
    ) -> Result<(), TreefortError> {
        let path = format!("/subscriptions/{}", path_segment(treefort_id));
        self.call(Method::PATCH, &path, body, None)
            .await
            .map(|_| ())
    }

    #[tracing::instrument(name = "treefort", skip(self, body), fields(status))]
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, TreefortError> {
        let url = format!("{}{}", self.settings.api_url, path);
        let mut refreshed = false;
        loop {
            let token = self.access_token(refreshed).await?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&token)
                .header("X-Treefort-Version", &self.settings.api_version)
                .json(body);
            if let Some(tenant) = &self.settings.tenant {
                request = request.header("X-Treefort-Tenant", tenant);
            }
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            tracing::Span::current().record("status", status.as_u16());
            // A 401 means our cached token was revoked or expired early: fetch a new one, once.
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                continue;
            }
            let text = response.text().await.map_err(transport_error)?;
            if !status.is_success() {
                tracing::warn!(status = status.as_u16(), "Treefort refused the request");
                return Err(TreefortError::Status {
                    status: status.as_u16(),
                    body: text.chars().take(500).collect(),
                });
            }
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
    }

    async fn access_token(&self, force_refresh: bool) -> Result<String, TreefortError> {
        let mut cached = self.token.lock().await;
        if !force_refresh {
            if let Some(token) = cached.as_ref().filter(|t| self.clock.now() < t.refresh_at) {
                return Ok(token.value.clone());
            }
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.settings.scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(&self.settings.token_url)
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.expose()),
            )
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(TreefortError::Token(format!(
                "token endpoint answered {status}"
            )));
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|_| TreefortError::Token("token endpoint sent no access_token".into()))?;
        // Renew a minute early (or at half-life for short tokens) so no call carries a dying token.
        let lifetime = token.expires_in.unwrap_or(300).min(86_400 * 365);
        let margin = (lifetime / 2).min(60);
        let value = token.access_token;
        *cached = Some(CachedToken {
            value: value.clone(),
            refresh_at: self.clock.now() + TimeDelta::seconds((lifetime - margin) as i64),
        });
        Ok(value)
    }
}

fn transport_error(e: reqwest::Error) -> TreefortError {
    if e.is_timeout() {
        TreefortError::Timeout
    } else {
        // Without the URL: it is ours, but the error text stays short and free of query strings.
        TreefortError::Transport(e.without_url().to_string())
    }
}

fn subscription_id_in(answer: &Value) -> Option<String> {
    let id = answer
        .get("id")
        .or_else(|| answer.get("data").and_then(|d| d.get("id")))
        .or_else(|| answer.get("subscription").and_then(|d| d.get("id")))?;
    match id {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscription_ids_are_found_in_common_answer_shapes() {
        assert_eq!(
            subscription_id_in(&json!({"id": "sub_1"})).as_deref(),
            Some("sub_1")
        );
        assert_eq!(
            subscription_id_in(&json!({"id": 42})).as_deref(),
            Some("42")
        );
        assert_eq!(
            subscription_id_in(&json!({"data": {"id": "x"}})).as_deref(),
            Some("x")
        );
        assert_eq!(subscription_id_in(&json!({"ok": true})), None);
    }

    #[test]
    fn bodies_have_treeforts_field_names() {
        let at = DateTime::parse_from_rfc3339("2026-01-31T10:00:00Z")
            .unwrap()
            .to_utc();
        let create = serde_json::to_value(CreateSubscription::new("u1", 7, at, Some(at))).unwrap();
        assert_eq!(
            create,
            json!({"provider": "webPayment", "userId": "u1", "subscriptionPlanId": 7,
                   "currentPeriodEndsAt": "2026-01-31T10:00:00.000Z",
                   "trialEndsAt": "2026-01-31T10:00:00.000Z"})
        );
        let cancel = serde_json::to_value(UpdateSubscription::cancel(at)).unwrap();
        assert_eq!(
            cancel,
            json!({"provider": "webPayment", "canceledAt": "2026-01-31T10:00:00.000Z"})
        );
    }
}
