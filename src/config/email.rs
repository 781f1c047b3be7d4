//! The settings of shoppers' emails: where they are sent through (`SMTP_URL`), who they are from,
//! and when reminders go. Without `SMTP_URL` nothing is sent (local mode shows them in the
//! simulator's Inbox instead).

use std::time::Duration;

use chrono::TimeDelta;
use lettre::message::Mailbox;

use super::vars::Vars;
use super::Secret;

#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `None`: no email is sent.
    pub smtp: Option<SmtpSettings>,
    /// Required with `SMTP_URL`; without it a placeholder (`Demo app`, for local mode's Inbox).
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// The name shoppers know the app owner by, in subjects and signatures.
    pub merchant_name: String,
    /// How long a link in an email mints billing-portal sessions.
    pub link_ttl: TimeDelta,
    pub trial_reminder: TimeDelta,
    pub renewal_reminder: TimeDelta,
}

/// An SMTP server as `SMTP_URL` names it, turned into lettre's connection URL: `smtp://` means
/// STARTTLS required, `smtps://` TLS from the first byte, `?tls=none` plain text (loopback only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// lettre's connection URL (credentials included: never logged).
    pub url: Secret,
    /// `host:port`, for logs.
    pub server: String,
    pub timeout: Duration,
}

const SMTP_SHAPE: &str =
    "SMTP_URL must be smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465";

/// Reads the email settings; a refusal is one line naming the setting, never the URL's password.
pub(super) fn email_settings(vars: &Vars) -> Result<EmailSettings, String> {
    let smtp = vars
        .smtp_url
        .as_deref()
        .map(|raw| smtp_settings(raw, vars.smtp_timeout))
        .transpose()?;
    let mailbox = |key: &str, raw: &str| {
        raw.parse::<Mailbox>().map_err(|_| {
            format!("{key} must be an email address, optionally with a name: \"Acme <billing@acme.example>\" (got {raw:?})")
        })
    };
    let from = match (&vars.email_from, &smtp) {
        (Some(raw), _) => mailbox("EMAIL_FROM", raw)?,
        (None, Some(_)) => {
            return Err(
                "EMAIL_FROM is required with SMTP_URL (the address shoppers' emails come from)"
                    .into(),
            )
        }
        // Nothing is sent without SMTP_URL: the sender of local mode's Inbox and `emails show`.
        (None, None) => mailbox("EMAIL_FROM", "Demo app <billing@localhost.test>")?,
    };
    let reply_to = vars
        .email_reply_to
        .as_deref()
        .map(|raw| mailbox("EMAIL_REPLY_TO", raw))
        .transpose()?;
    let merchant_name = vars
        .merchant_name
        .clone()
        .or_else(|| from.name.clone())
        .unwrap_or_else(|| from.email.domain().to_string());
    Ok(EmailSettings {
        smtp,
        from,
        reply_to,
        merchant_name,
        link_ttl: TimeDelta::hours(vars.email_link_ttl_hours),
        trial_reminder: TimeDelta::days(vars.trial_reminder_days),
        renewal_reminder: TimeDelta::days(vars.renewal_reminder_days),
    })
}

fn smtp_settings(raw: &str, timeout: Duration) -> Result<SmtpSettings, String> {
    let mut url =
        url::Url::parse(raw).map_err(|_| format!("{SMTP_SHAPE} (it could not be read)"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{SMTP_SHAPE} (it names no host)"))?
        .to_string();
    let tls: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned())
        .collect();
    let plain = match (url.scheme(), tls.first().map(String::as_str)) {
        ("smtp", None | Some("required")) => false,
        ("smtps", None) => false,
        ("smtp", Some("none")) => true,
        (scheme @ ("smtp" | "smtps"), Some(other)) => {
            return Err(format!(
            "SMTP_URL's tls must be none (loopback only) or left out (got {other:?} with {scheme})"
        ))
        }
        (other, _) => return Err(format!("{SMTP_SHAPE} (got the scheme {other:?})")),
    };
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if plain && !loopback {
        return Err(format!(
            "SMTP_URL with tls=none sends passwords and emails in clear text: only to a loopback host (got {host:?})"
        ));
    }
    let port = url.port().unwrap_or(match (url.scheme(), plain) {
        ("smtps", _) => 465,
        (_, true) => 25,
        _ => 587,
    });
    // lettre's own reading: plain without a tls parameter, STARTTLS with `tls=required`.
    url.set_query(None);
    if !plain && url.scheme() == "smtp" {
        url.set_query(Some("tls=required"));
    }
    let _ = url.set_port(Some(port));
    Ok(SmtpSettings {
        url: Secret::new(url.to_string()),
        server: format!("{host}:{port}"),
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(raw: &str) -> Result<SmtpSettings, String> {
        smtp_settings(raw, Duration::from_secs(1))
    }

    fn settings(vars: &[(&str, &str)]) -> Result<crate::config::Settings, String> {
        let map: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
        crate::config::Settings::from_lookup(|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn bad_email_settings_refuse_to_start_with_one_line_naming_the_setting() {
        for (vars, names, says) in [
            (
                vec![("SMTP_URL", "smtp://mail.example:587")],
                "EMAIL_FROM",
                "required with SMTP_URL",
            ),
            (
                vec![("SMTP_URL", "::nonsense::"), ("EMAIL_FROM", "a@b.example")],
                "SMTP_URL",
                "could not be read",
            ),
            (
                vec![
                    ("SMTP_URL", "smtp://u:secret@mail.example?tls=none"),
                    ("EMAIL_FROM", "a@b.example"),
                ],
                "SMTP_URL",
                "loopback",
            ),
            (
                vec![
                    ("SMTP_URL", "smtp://mail.example"),
                    ("EMAIL_FROM", "not an address"),
                ],
                "EMAIL_FROM",
                "email address",
            ),
            (
                vec![("EMAIL_LINK_TTL_HOURS", "200")],
                "EMAIL_LINK_TTL_HOURS",
                "1 to 168",
            ),
        ] {
            let err = settings(&vars).unwrap_err();
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.starts_with(names) && err.contains(says), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let ok = settings(&[
            ("SMTP_URL", "smtps://u:p@mail.example"),
            ("EMAIL_FROM", "Acme <billing@acme.example>"),
        ])
        .unwrap();
        assert_eq!(ok.email.merchant_name, "Acme");
        assert_eq!(ok.email.link_ttl, TimeDelta::hours(72));
        // Without SMTP_URL: nothing to send through, and nothing required.
        assert!(settings(&[]).unwrap().email.smtp.is_none());
    }

    #[test]
    fn smtp_urls_are_starttls_tls_or_plain_on_loopback_only() {
        let starttls = smtp("smtp://u:p%40ss@mail.example:587").unwrap();
        assert_eq!(
            starttls.url.expose(),
            "smtp://u:p%40ss@mail.example:587?tls=required"
        );
        assert_eq!(starttls.server, "mail.example:587");
        let tls = smtp("smtps://u:p@mail.example").unwrap();
        assert_eq!(tls.url.expose(), "smtps://u:p@mail.example:465");
        let plain = smtp("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(plain.url.expose(), "smtp://127.0.0.1:2525");
        for (bad, says) in [
            ("smtp://mail.example?tls=none", "loopback"),
            ("http://mail.example", "smtp://"),
            ("not a url", "could not be read"),
            ("smtp://mail.example?tls=opportunistic", "tls must be"),
        ] {
            let err = smtp(bad).unwrap_err();
            assert!(
                err.starts_with("SMTP_URL") && err.contains(says),
                "{bad}: {err}"
            );
        }
        let err = smtp("smtp://user:hunter2@mail.example?tls=none").unwrap_err();
        assert!(
            !err.contains("hunter2"),
            "a password is never echoed: {err}"
        );
    }
}
