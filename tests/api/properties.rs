//! Property tests (proptest) of the parsers that take outside input: promo codes, locales,
//! redirect URLs, card fields and money. Fixed seed and case count: the run is the same every time.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use treefort_webpay::domain::locale::{is_valid_locale, Lang};
use treefort_webpay::domain::money::{Discount, Money, DIVISORS};
use treefort_webpay::domain::promo_code;
use treefort_webpay::domain::text::has_control;
use treefort_webpay::domain::url::parse_redirect_url;
use treefort_webpay::gateway::sandbox::SandboxGateway;
use treefort_webpay::gateway::{CardInput, GatewayError};

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases: 2000,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

/// Any text, weighted towards the characters the parsers care about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9 _:/?#%&=.\\-\\r\\n\\t\\x00]{0,80}",
        "(https?|ftp|javascript)://[a-zA-Z0-9.\\-]{0,20}(:[0-9]{1,6})?(/[^ ]{0,20})?",
    ]
}

#[test]
fn promo_codes_are_letters_and_digits_folded_to_lowercase() {
    runner()
        .run(&text(), |code| {
            match promo_code::normalize(&code) {
                Some(normalized) => {
                    prop_assert!(normalized
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
                    prop_assert_eq!(normalized.len(), code.len());
                    prop_assert_eq!(promo_code::normalize(&normalized), Some(normalized.clone()));
                    prop_assert_eq!(normalized, code.to_ascii_lowercase());
                }
                None => prop_assert!(
                    code.is_empty()
                        || code.len() > promo_code::MAX_LEN
                        || code.chars().any(|c| !c.is_ascii_alphanumeric())
                ),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn locales_are_language_tags_and_always_negotiate() {
    runner()
        .run(&text(), |locale| {
            let valid = is_valid_locale(&locale);
            if valid {
                prop_assert!(locale.len() <= 35);
                prop_assert!(locale
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
                prop_assert!(locale
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic()));
            }
            // Negotiation never fails, whatever it is given.
            let _ = Lang::negotiate(&locale).t("pay");
            Ok(())
        })
        .unwrap();
    runner()
        .run(&"[a-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,3}", |tag| {
            prop_assert!(tag.len() > 35 || is_valid_locale(&tag), "{}", tag);
            Ok(())
        })
        .unwrap();
}

#[test]
fn redirect_urls_are_stored_as_checked() {
    runner()
        .run(&text(), |value| {
            if let Ok(stored) = parse_redirect_url("successUrl", &value) {
                prop_assert!(!has_control(&stored), "{:?}", stored);
                prop_assert!(stored.starts_with("http://") || stored.starts_with("https://"));
                // What is stored parses to itself: the redirect is exactly what was checked.
                prop_assert_eq!(
                    parse_redirect_url("successUrl", &stored),
                    Ok(stored.clone())
                );
                prop_assert!(actix_web::http::header::HeaderValue::from_str(&stored).is_ok());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn card_fields_never_crash_and_name_the_wrong_field() {
    let gateway = SandboxGateway::new();
    runner()
        .run(&(text(), text(), text()), |(number, expiry, cvc)| {
            match gateway.save_card(&CardInput {
                number,
                expiry,
                cvc,
            }) {
                Ok(card) => {
                    prop_assert_eq!(card.last4.len(), 4);
                    prop_assert!(card.reference.starts_with("pm_sandbox_"));
                }
                Err(GatewayError::InvalidCard(field)) => {
                    prop_assert!(["card_number", "card_expiry", "card_cvc"].contains(&field))
                }
                Err(GatewayError::Declined(_)) => {}
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
            Ok(())
        })
        .unwrap();
}

fn money() -> impl Strategy<Value = Money> {
    (
        0i64..=10_000_000_000,
        prop::sample::select(vec!["USD", "EUR", "JPY", "KWD", "CHF", "XYZ"]),
        prop::sample::select(DIVISORS.to_vec()),
    )
        .prop_map(|(amount, currency, divisor)| Money {
            amount,
            currency: currency.into(),
            divisor,
        })
}

#[test]
fn money_discounts_stay_within_the_price_and_gateway_units_round_trip() {
    runner()
        .run(&(money(), 1i32..=100, money()), |(price, percent, off)| {
            for discount in [Discount::Percent(percent), Discount::AmountOff(off.clone())] {
                if let Some((after, taken)) = price.discounted(&discount) {
                    prop_assert!(after.amount >= 0 && after.amount <= price.amount);
                    prop_assert_eq!(after.amount + taken, price.amount);
                    prop_assert_eq!(&after.currency, &price.currency);
                }
            }
            if let Some(minor) = price.to_minor_units() {
                let back = Money::from_minor_units(minor, &price.currency);
                prop_assert!(
                    back.same_value(&price),
                    "{:?} -> {} -> {:?}",
                    price,
                    minor,
                    back
                );
            }
            for lang in treefort_webpay::domain::locale::ALL {
                prop_assert!(!lang.money(&price).is_empty());
            }
            Ok(())
        })
        .unwrap();
}
