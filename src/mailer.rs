//! The SMTP client of shoppers' emails (lettre, over STARTTLS or TLS with rustls): builds the
//! message (a text and an HTML part, a stable `Message-ID`) and says what the server answered: sent,
//! refused for now (a 4xx, a timeout, a lost connection: try again), or refused for good (a 5xx).
//! What is sent and when is `services::emails::send`'s business.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::EmailSettings;

/// An email ready to go.
pub struct Outgoing<'a> {
    pub to: &'a str,
    /// Without the angle brackets: `email-42@acme.example`.
    pub message_id: String,
    pub subject: &'a str,
    pub text: String,
    pub html: String,
}

/// Why an email did not go.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth another try later: a 4xx, a timeout, a connection or TLS failure.
    #[error("{0}")]
    Transient(String),
    /// Never worth another try: a 5xx, or a message that cannot be built (a bad address).
    #[error("{0}")]
    Permanent(String),
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// `host:port`, for logs.
    pub server: String,
}

impl Mailer {
    /// The mailer of `SMTP_URL`, or `None` when it is unset. No connection is made until the first
    /// email (a mail outage never stops the service from starting).
    pub fn new(settings: &EmailSettings) -> Result<Option<Self>, String> {
        let Some(smtp) = &settings.smtp else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose())
            .map_err(|_| format!("SMTP_URL cannot be used to reach {}", smtp.server))?
            .timeout(Some(smtp.timeout))
            .build();
        Ok(Some(Self {
            transport,
            from: settings.from.clone(),
            reply_to: settings.reply_to.clone(),
            server: smtp.server.clone(),
        }))
    }

    pub async fn send(&self, email: &Outgoing<'_>) -> Result<(), MailError> {
        let message = build(&self.from, self.reply_to.as_ref(), email)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(one_line(&e))),
            Err(e) => Err(MailError::Transient(one_line(&e))),
        }
    }
}

/// The message of `email`, from `from`.
pub fn build(
    from: &Mailbox,
    reply_to: Option<&Mailbox>,
    email: &Outgoing<'_>,
) -> Result<Message, MailError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|_| MailError::Permanent("the address is not a valid email address".into()))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject)
        .message_id(Some(format!("<{}>", email.message_id)));
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(email.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(email.html.clone()),
                ),
        )
        .map_err(|e| MailError::Permanent(e.to_string()))
}

/// An error and its causes on one line, without the server's credentials (lettre never puts
/// them in an error).
fn one_line(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error;
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
