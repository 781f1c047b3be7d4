//! An email as the shopper reads it: the subject, a text part and an HTML part (askama templates
//! in `templates/email/`, no remote images), in the shopper's language (Fluent texts in
//! `locales/*/emails.ftl`, money and dates by CLDR like the pages).

use askama::Template;

use super::{Facts, Kind};
use crate::domain::locale::{Arg, Lang};

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What both parts show.
struct Parts {
    lang: &'static str,
    merchant: String,
    subject: String,
    greeting: String,
    paragraphs: Vec<String>,
    details: Vec<(String, String)>,
    button: Option<(String, String)>,
    signoff: String,
    footer: String,
}

/// The HTML part of `p`.
#[derive(Template)]
#[template(path = "email/email.html")]
struct Html<'a> {
    p: &'a Parts,
}

/// The text part of `p`.
#[derive(Template)]
#[template(path = "email/email.txt")]
struct Text<'a> {
    p: &'a Parts,
}

/// Renders an email of `kind` saying `facts` in `locale`; `link` is the address of its button
/// (`None`: the button is left out, as in `emails show`, which never shows a shopper's link).
pub fn render(
    kind: Kind,
    facts: &Facts,
    locale: &str,
    merchant: &str,
    link: Option<&str>,
) -> Rendered {
    let parts = parts(kind, facts, Lang::negotiate(locale), merchant, link);
    let html = Html { p: &parts }.render().unwrap_or_default();
    let text = Text { p: &parts }.render().unwrap_or_default();
    Rendered {
        subject: parts.subject,
        text,
        html,
    }
}

fn parts(kind: Kind, facts: &Facts, lang: Lang, merchant: &str, link: Option<&str>) -> Parts {
    let name = kind.name();
    let amount = facts
        .amount
        .as_ref()
        .map(|a| lang.money(&a.money()))
        .unwrap_or_default();
    let plan = facts.plan.clone().unwrap_or_default();
    let date = match kind {
        Kind::PaymentFailed => facts.grace_end,
        _ => facts.period_end,
    }
    .map(|d| lang.date(d))
    .unwrap_or_default();
    let receipt = facts.receipt_number.clone().unwrap_or_default();
    let args: [(&str, Arg<'_>); 5] = [
        ("merchant", merchant.into()),
        ("amount", (&amount).into()),
        ("plan", (&plan).into()),
        ("date", (&date).into()),
        ("receipt", (&receipt).into()),
    ];
    let t = |id: &str| lang.t_with(id, &args);
    let mut paragraphs = vec![t(&format!("email-{name}-intro"))];
    match kind {
        Kind::Receipt => paragraphs.push(t("email-receipt-cancel")),
        Kind::TrialEnding | Kind::RenewalComing => {
            paragraphs.push(t(&format!("email-{name}-cancel")))
        }
        Kind::PaymentFailed => {
            if facts.authenticate {
                paragraphs.push(t("email-payment_failed-authenticate"));
            }
            paragraphs.push(t("email-payment_failed-grace"));
        }
        Kind::Canceled | Kind::Ended | Kind::Refund => {}
    }
    let button_label = match kind {
        Kind::PaymentFailed if facts.authenticate => t("email-payment_failed-button-authenticate"),
        Kind::PaymentFailed => t("email-payment_failed-button"),
        Kind::Canceled => t("email-canceled-button"),
        _ => t("email-manage"),
    };
    Parts {
        lang: lang.code(),
        merchant: merchant.to_string(),
        subject: t(&format!("email-{name}-subject")),
        greeting: match &facts.name {
            Some(n) if !n.trim().is_empty() => {
                lang.t_with("email-greeting-named", &[("name", n.into())])
            }
            _ => t("email-greeting"),
        },
        paragraphs,
        details: details(kind, facts, lang, &amount, &plan),
        button: link
            .filter(|_| kind.has_link())
            .map(|url| (button_label, url.to_string())),
        signoff: t("email-signoff"),
        footer: t("email-footer"),
    }
}

/// The table under the text: what a receipt proves, what a reminder will charge.
fn details(
    kind: Kind,
    facts: &Facts,
    lang: Lang,
    amount: &str,
    plan: &str,
) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut row = |id: &str, value: String| {
        if !value.is_empty() {
            rows.push((lang.t(id), value));
        }
    };
    match kind {
        Kind::Receipt | Kind::Refund => {
            row(
                "email-detail-receipt",
                facts.receipt_number.clone().unwrap_or_default(),
            );
            row("email-detail-plan", plan.to_string());
            row("email-detail-amount", amount.to_string());
            if kind == Kind::Receipt {
                if let (Some(start), Some(end)) = (facts.period_start, facts.period_end) {
                    row(
                        "email-detail-period",
                        format!("{} – {}", lang.date(start), lang.date(end)),
                    );
                }
                row("email-detail-card", facts.card.clone().unwrap_or_default());
            }
        }
        Kind::TrialEnding | Kind::RenewalComing | Kind::PaymentFailed => {
            row("email-detail-plan", plan.to_string());
            row("email-detail-amount", amount.to_string());
            if kind != Kind::PaymentFailed {
                row(
                    "email-detail-date",
                    facts.period_end.map(|d| lang.date(d)).unwrap_or_default(),
                );
            }
            row("email-detail-card", facts.card.clone().unwrap_or_default());
        }
        Kind::Canceled | Kind::Ended => {}
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::emails::Amount;
    use chrono::NaiveDate;

    fn facts() -> Facts {
        let at = |d| {
            NaiveDate::from_ymd_opt(2027, 1, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        };
        Facts {
            name: Some("Ada <Lovelace>".into()),
            plan: Some("Pro".into()),
            amount: Some(Amount {
                amount: 999,
                currency: "EUR".into(),
                divisor: 100,
            }),
            period_start: Some(at(1)),
            period_end: Some(at(31)),
            grace_end: Some(at(3)),
            card: Some("Visa •••• 4242".into()),
            receipt_number: Some("R-00000007".into()),
            authenticate: false,
        }
    }

    #[test]
    fn a_receipt_says_amount_period_card_number_and_how_to_cancel_in_both_parts() {
        let r = render(
            Kind::Receipt,
            &facts(),
            "en-US",
            "Acme",
            Some("https://pay.example/e/tok"),
        );
        assert_eq!(r.subject, "Your Acme receipt");
        for part in [&r.text, &r.html] {
            for needle in [
                "€9.99",
                "Jan 1, 2027",
                "Jan 31, 2027",
                "Visa •••• 4242",
                "R-00000007",
                "https://pay.example/e/tok",
            ] {
                assert!(part.contains(needle), "{needle} missing from {part}");
            }
        }
        assert!(
            r.text.contains("Hello Ada <Lovelace>,"),
            "the text part is not escaped: {}",
            r.text
        );
        assert!(
            r.html.contains("Ada &#60;Lovelace&#62;") || r.html.contains("Ada &lt;Lovelace&gt;"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<img"), "no images");
    }

    #[test]
    fn emails_speak_the_shoppers_language_with_cldr_money_and_dates() {
        let de = render(
            Kind::PaymentFailed,
            &facts(),
            "de-DE",
            "Acme",
            Some("https://x/e/t"),
        );
        assert_eq!(de.subject, "Ihre Zahlung an Acme ist fehlgeschlagen");
        assert!(de.text.contains("9,99\u{a0}€"), "{}", de.text);
        assert!(de.text.contains("03.01.2027"), "the grace end: {}", de.text);
        assert!(
            de.text.contains("Karte aktualisieren: https://x/e/t"),
            "{}",
            de.text
        );
        let ja = render(Kind::TrialEnding, &facts(), "ja", "Acme", None);
        assert!(ja.subject.contains("2027/01/31"), "{}", ja.subject);
        assert!(
            !ja.text.contains("https://"),
            "no link without one: {}",
            ja.text
        );
        let auth = Facts {
            authenticate: true,
            ..facts()
        };
        let en = render(
            Kind::PaymentFailed,
            &auth,
            "en",
            "Acme",
            Some("https://x/e/t"),
        );
        assert!(
            en.text.contains("Confirm your payment: https://x/e/t"),
            "{}",
            en.text
        );
    }
}
