//! A fault-injecting proxy between the service and localstripe: it plays Stripe's part where
//! localstripe falls short, and breaks calls on request, the way networks and Stripe do.
//!
//! Where it plays Stripe:
//! - **Idempotency.** Stripe keeps the first answer to an `Idempotency-Key` (24 hours) and replays
//!   it to every retry; localstripe ignores the header, so a retry would become a second charge
//!   that Stripe would never make. The proxy keeps the first answer per key and replays it. As at
//!   Stripe, a request that never ran (dropped, or refused with 429, 409 or 5xx before it ran)
//!   keeps nothing, and a request whose answer was lost on the way back keeps its answer. A
//!   request whose key is still being run for an earlier one (a retry after a timeout, while
//!   Stripe still works on the first try) is answered 409 `idempotency_key_in_use`, as Stripe
//!   does, and runs nothing.
//!
//! Faults (`fail_next`), each for the next request that matches a method and a path prefix:
//! the connection dropped before the request reaches Stripe; the request processed but its answer
//! lost or cut off after the headers; the answer delayed; an answer of the proxy's own instead of
//! Stripe's (500, 503, 429, 409 `lock_timeout`); Stripe's answer with fields rewritten (a state
//! localstripe never reaches, such as `processing`).
//!
//! Chaos (`chaos`), for the fault campaign: every request draws from a seeded generator, and a
//! set share of them meets one of the faults above, picked at random (a rewrite excepted).
//!
//! It speaks just enough HTTP/1.1 for reqwest: one request per connection, answered with
//! `Connection: close`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub enum Fault {
    /// The connection is closed before the request reaches Stripe.
    DropRequest,
    /// Stripe processes the request; the connection closes before any answer.
    LoseAnswer,
    /// Stripe processes the request; the answer's status and headers arrive, its body is cut off.
    CutAnswer,
    /// Stripe processes the request; its answer comes this much later.
    DelayAnswer(Duration),
    /// This answer instead of Stripe's; the request never reaches Stripe.
    Answer {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: Value,
    },
    /// Stripe's answer with these top-level fields replaced (and kept so for its key).
    Rewrite(Value),
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::DropRequest => "drop_request",
            Fault::LoseAnswer => "lose_answer",
            Fault::CutAnswer => "cut_answer",
            Fault::DelayAnswer(_) => "delay_answer",
            Fault::Answer { status: 429, .. } => "answer_429",
            Fault::Answer { status: 409, .. } => "answer_409",
            Fault::Answer { .. } => "answer_5xx",
            Fault::Rewrite(_) => "rewrite",
        }
    }

    /// Stripe's rate limit, with `Stripe-Should-Retry` as given (or without it).
    pub fn rate_limited(should_retry: Option<bool>) -> Fault {
        let mut headers = vec![("Retry-After", "1")];
        match should_retry {
            Some(true) => headers.push(("Stripe-Should-Retry", "true")),
            Some(false) => headers.push(("Stripe-Should-Retry", "false")),
            None => {}
        }
        Fault::Answer {
            status: 429,
            headers,
            body: serde_json::json!({"error": {"type": "invalid_request_error", "code": "rate_limit",
                "message": "Too many requests hit the API too quickly."}}),
        }
    }

    /// Stripe's answer when another request holds the object: 409 `lock_timeout`.
    pub fn lock_timeout() -> Fault {
        Fault::Answer {
            status: 409,
            headers: vec![],
            body: serde_json::json!({"error": {"type": "invalid_request_error", "code": "lock_timeout",
                "message": "This object cannot be accessed right now because another API request or Stripe process is currently accessing it."}}),
        }
    }

    pub fn server_error(status: u16) -> Fault {
        Fault::Answer {
            status,
            headers: vec![],
            body: serde_json::json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The fault played on it, if any.
    pub fault: Option<&'static str>,
    /// Answered from the idempotency store, not by Stripe.
    pub replayed: bool,
    /// Refused with 409 `idempotency_key_in_use`: its key was still running.
    pub key_in_use: bool,
    pub at: std::time::Instant,
}

#[derive(Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// splitmix64: small, and good enough to spread faults; the same seed, the same draws.
#[derive(Clone)]
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Random faults on a share of all requests, from a seed (the same seed, the same draws).
struct Chaos {
    rng: Rng,
    percent: u64,
    /// How late a delayed answer comes (past the client's timeout).
    delay: Duration,
}

impl Chaos {
    fn draw(&mut self) -> Option<Fault> {
        if !self.rng.chance(self.percent) {
            return None;
        }
        Some(match self.rng.below(9) {
            0 => Fault::DropRequest,
            1 => Fault::LoseAnswer,
            2 => Fault::CutAnswer,
            3 => Fault::DelayAnswer(self.delay),
            4 => Fault::server_error(500),
            5 => Fault::server_error(503),
            6 => Fault::rate_limited(None),
            7 => Fault::rate_limited(Some(true)),
            _ => Fault::lock_timeout(),
        })
    }
}

#[derive(Default)]
struct Shared {
    chaos: Option<Chaos>,
    faults: Vec<(String, String, Fault)>,
    answers: HashMap<String, Answer>,
    /// Keys whose first request is at Stripe now.
    running: std::collections::HashSet<String>,
    seen: Vec<Seen>,
}

pub struct StripeProxy {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl StripeProxy {
    /// A proxy on a free port in front of the Stripe API at `upstream`.
    pub async fn start(upstream: &str) -> StripeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (state, upstream) = (shared.clone(), upstream.to_string());
        let http = reqwest::Client::new();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (state, upstream, http) = (state.clone(), upstream.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, &state, &upstream, &http).await;
                });
            }
        });
        StripeProxy { url, shared, task }
    }

    /// Plays `fault` on the next request whose method is `method` and whose path starts with
    /// `path_prefix`.
    pub fn fail_next(&self, method: &str, path_prefix: &str, fault: Fault) {
        self.lock()
            .faults
            .push((method.to_string(), path_prefix.to_string(), fault));
    }

    /// From now on, `percent` % of requests meet a random fault drawn from `seed`; a delayed
    /// answer comes `delay` late. `percent` 0 stops it.
    pub fn chaos(&self, seed: u64, percent: u64, delay: Duration) {
        self.lock().chaos = (percent > 0).then_some(Chaos {
            rng: Rng(seed),
            percent,
            delay,
        });
    }

    /// Faults queued and not played yet.
    pub fn faults_left(&self) -> usize {
        self.lock().faults.len()
    }

    /// Every request seen, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for StripeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

async fn serve(
    mut socket: TcpStream,
    shared: &Mutex<Shared>,
    upstream: &str,
    http: &reqwest::Client,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut socket).await? else {
        return Ok(());
    };
    let key = request
        .header("Idempotency-Key")
        .map(|k| format!("{} {} {k}", request.method, request.path()));
    let (fault, replay, key_in_use) = {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        let at = shared.faults.iter().position(|(m, p, _)| {
            m.eq_ignore_ascii_case(&request.method) && request.path().starts_with(p.as_str())
        });
        let fault = at
            .map(|i| shared.faults.remove(i).2)
            .or_else(|| shared.chaos.as_mut().and_then(Chaos::draw));
        let replay = key.as_ref().and_then(|k| shared.answers.get(k).cloned());
        let runs = replay.is_none()
            && !matches!(fault, Some(Fault::DropRequest) | Some(Fault::Answer { .. }));
        let key_in_use = runs
            && key
                .as_ref()
                .is_some_and(|k| !shared.running.insert(k.clone()));
        // A refused request meets no fault of its own: Stripe never ran it.
        let fault = fault.filter(|_| !key_in_use);
        shared.seen.push(Seen {
            method: request.method.clone(),
            path: request.path().to_string(),
            idempotency_key: request.header("Idempotency-Key").map(str::to_string),
            fault: fault.as_ref().map(Fault::name),
            replayed: replay.is_some(),
            key_in_use,
            at: std::time::Instant::now(),
        });
        (fault, replay, key_in_use)
    };
    if key_in_use {
        let answer = Answer {
            status: 409,
            body: br#"{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this idempotency key."}}"#.to_vec(),
        };
        return write_answer(&mut socket, &answer, &[]).await;
    }
    // The key's run is over: its answer is kept (unless Stripe never ran it) and a retry may come.
    let finish = |answer: &Answer| {
        if let Some(key) = &key {
            let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.running.remove(key);
            if answer.status < 500 && answer.status != 429 {
                shared.answers.entry(key.clone()).or_insert(answer.clone());
            }
        }
    };
    match fault {
        Some(Fault::DropRequest) => return Ok(()),
        Some(Fault::Answer {
            status,
            headers,
            body,
        }) => {
            let answer = Answer {
                status,
                body: body.to_string().into_bytes(),
            };
            return write_answer(&mut socket, &answer, &headers).await;
        }
        _ => {}
    }
    // A key seen before is answered as Stripe would: with its first answer, never run again.
    let answer = match replay {
        Some(stored) => stored,
        None => forward(&request, upstream, http).await,
    };
    let answer = match &fault {
        Some(Fault::Rewrite(fields)) => rewrite(answer, fields),
        _ => answer,
    };
    finish(&answer);
    match fault {
        Some(Fault::LoseAnswer) => Ok(()),
        Some(Fault::CutAnswer) => {
            let head = format!(
                "HTTP/1.1 {} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.status,
                answer.body.len() + 100
            );
            socket.write_all(head.as_bytes()).await?;
            let half = answer.body.len() / 2;
            socket.write_all(&answer.body[..half]).await?;
            socket.flush().await
        }
        Some(Fault::DelayAnswer(by)) => {
            tokio::time::sleep(by).await;
            write_answer(&mut socket, &answer, &[]).await
        }
        _ => write_answer(&mut socket, &answer, &[]).await,
    }
}

async fn forward(request: &Request, upstream: &str, http: &reqwest::Client) -> Answer {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut outgoing = http.request(method, format!("{upstream}{}", request.target));
    for (name, value) in &request.headers {
        let hop = ["host", "content-length", "connection", "accept-encoding"];
        if !hop.contains(&name.to_ascii_lowercase().as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.body(request.body.clone()).send().await {
        Ok(response) => Answer {
            status: response.status().as_u16(),
            body: response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default(),
        },
        Err(_) => Answer {
            status: 502,
            body: br#"{"error":{"type":"api_error","message":"localstripe unreachable"}}"#.to_vec(),
        },
    }
}

fn rewrite(answer: Answer, fields: &Value) -> Answer {
    let mut body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if let (Some(object), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        for (k, v) in fields {
            object.insert(k.clone(), v.clone());
        }
    }
    Answer {
        status: answer.status,
        body: body.to_string().into_bytes(),
    }
}

async fn write_answer(
    socket: &mut TcpStream,
    answer: &Answer,
    headers: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&answer.body).await?;
    socket.flush().await
}

/// Reads one request: its head up to the blank line, then `Content-Length` bytes of body.
pub(crate) async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        first.next().unwrap_or_default().to_string(),
        first.next().unwrap_or_default().to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}
