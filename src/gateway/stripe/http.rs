//! Stripe's HTTP calls: every one paced under the configured rate, with a timeout, retried under
//! the same `Idempotency-Key` when Stripe answered 429, 409 or 5xx or the answer was lost, and
//! its outcome counted and timed.

use super::*;

impl StripeGateway {
    pub(super) async fn get(&self, path: &str) -> Result<Value, GatewayError> {
        let request = self.http.get(format!("{}{path}", self.settings.api_url));
        self.send(request).await.map_err(GatewayError::from)
    }

    pub(super) async fn post(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        idempotency_key: &str,
    ) -> Result<Value, GatewayError> {
        self.post_raw(path, params, idempotency_key)
            .await
            .map_err(GatewayError::from)
    }

    pub(super) async fn post_raw(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        idempotency_key: &str,
    ) -> Result<Value, Failure> {
        let request = self
            .http
            .post(format!("{}{path}", self.settings.api_url))
            .header(
                "Idempotency-Key",
                format!("tfw-{}-{idempotency_key}", self.install_id),
            )
            .form(&params);
        self.send(request).await
    }

    /// Sends a call at this instance's pace, and tries it again under the same idempotency key as
    /// Stripe's own libraries do: after a 429, a 409 (`lock_timeout`, or the same key still in
    /// progress), a 5xx, or an answer lost on the way (a timeout, a reset, a body that cannot be
    /// read), with exponential backoff and jitter, `Retry-After` honoured, and never when Stripe
    /// says `Stripe-Should-Retry: false`.
    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let request = request
            .bearer_auth(self.settings.secret_key.expose())
            .header("Stripe-Version", STRIPE_VERSION);
        let mut tries = 0;
        loop {
            let Some(this_try) = request.try_clone() else {
                return Err(Failure::Other("a Stripe call could not be repeated".into()));
            };
            let queued = Instant::now();
            self.pace.until_ready().await;
            self.metrics.observe_stripe_wait(queued.elapsed());
            let started = Instant::now();
            let answer = try_once(this_try).await;
            self.metrics
                .observe_stripe_call(answer.outcome, started.elapsed());
            match answer.retry {
                Some(hint) if tries < self.settings.max_network_retries => {
                    tries += 1;
                    self.metrics.counters.stripe_retries.inc([answer.outcome]);
                    let wait = backoff::jittered(backoff::exponential(
                        Duration::from_millis(500),
                        tries,
                        STRIPE_MAX_BACKOFF,
                    ))
                    .max(hint.unwrap_or_default().min(STRIPE_MAX_BACKOFF));
                    tracing::warn!(
                        outcome = answer.outcome,
                        tries,
                        wait_ms = wait.as_millis() as u64,
                        "a Stripe call failed; trying again under the same idempotency key"
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => return answer.result,
            }
        }
    }
}

/// One try of a Stripe call: what it answered, its outcome's name in metrics, and whether (and
/// after how long, by Stripe's advice) it may be tried again.
pub(super) struct Try {
    result: Result<Value, Failure>,
    outcome: &'static str,
    retry: Option<Option<Duration>>,
}

pub(super) async fn try_once(request: reqwest::RequestBuilder) -> Try {
    let lost = |outcome, failure| Try {
        result: Err(failure),
        outcome,
        retry: Some(None),
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return lost("timeout", Failure::Timeout),
        // Without the URL: it is ours, but keep logs about the failure itself.
        Err(e) => {
            let failure = Failure::Other(format!("Stripe unreachable: {}", e.without_url()));
            return lost("network", failure);
        }
    };
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let should_retry = header("Stripe-Should-Retry");
    let retry_after = header("Retry-After")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.json::<Value>().await;
    if status.is_success() {
        // Stripe did what was asked, but what it says is lost (a timeout or a reset after the
        // headers): the outcome is unknown, never a decline; the same key repeats the answer.
        return match body {
            Ok(value) => Try {
                result: Ok(value),
                outcome: "ok",
                retry: None,
            },
            Err(e) if e.is_timeout() => lost("timeout", Failure::Timeout),
            Err(e) => lost(
                "unreadable",
                Failure::Other(format!(
                    "Stripe's answer {} could not be read: {}",
                    status.as_u16(),
                    e.without_url()
                )),
            ),
        };
    }
    let (failure, outcome) = failure_of(status, &body.unwrap_or(Value::Null));
    let retry = match should_retry.as_deref() {
        Some("false") => false,
        Some("true") => true,
        _ => matches!(outcome, "rate_limited" | "conflict" | "server_error"),
    };
    Try {
        result: Err(failure),
        outcome,
        retry: retry.then_some(retry_after),
    }
}

/// What a refusal of Stripe's means, and its outcome's name in metrics.
pub(super) fn failure_of(status: reqwest::StatusCode, body: &Value) -> (Failure, &'static str) {
    let error = &body["error"];
    let code = error["code"].as_str().unwrap_or_default().to_string();
    if status.as_u16() == 402 || error["type"].as_str() == Some("card_error") {
        let failure = Failure::Card {
            code: if code.is_empty() {
                "card_declined".into()
            } else {
                code
            },
            decline_code: error["decline_code"].as_str().map(str::to_string),
            payment_intent: error
                .get("payment_intent")
                .filter(|v| v.is_object())
                .cloned(),
        };
        return (failure, "card_error");
    }
    // Stripe's own message is not logged: for a wrong key it quotes part of the key.
    let kind = error["type"].as_str().unwrap_or("unknown");
    if matches!(status.as_u16(), 400 | 404)
        && kind == "invalid_request_error"
        && code != "idempotency_error"
    {
        let code = if code.is_empty() {
            "invalid_request".into()
        } else {
            code
        };
        return (Failure::Invalid { code }, "invalid");
    }
    let outcome = match status.as_u16() {
        429 => "rate_limited",
        409 => "conflict",
        500..=599 => "server_error",
        _ => "invalid",
    };
    let failure = Failure::Other(format!(
        "Stripe answered {}: {kind} {code}",
        status.as_u16()
    ));
    (failure, outcome)
}
