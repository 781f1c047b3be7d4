//! Languages of the shopper pages: negotiation from Treefort's `locale` (`de-DE` → `de` → `en`),
//! the page texts (Fluent files in `locales/`, plurals by CLDR rules) and money and dates
//! formatted from CLDR data (ICU4X). Adding a language is adding its `.ftl` file and a variant.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use super::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
    It,
    Nl,
    PtBr,
    Pl,
    Sv,
    Ja,
}

/// Every language, in the order of `FTL`.
pub const ALL: [Lang; 10] = [
    Lang::En,
    Lang::De,
    Lang::Fr,
    Lang::Es,
    Lang::It,
    Lang::Nl,
    Lang::PtBr,
    Lang::Pl,
    Lang::Sv,
    Lang::Ja,
];

/// The translation files, compiled in (a missing or malformed one fails the unit tests).
const FTL: [&str; 10] = [
    include_str!("../../locales/en/pages.ftl"),
    include_str!("../../locales/de/pages.ftl"),
    include_str!("../../locales/fr/pages.ftl"),
    include_str!("../../locales/es/pages.ftl"),
    include_str!("../../locales/it/pages.ftl"),
    include_str!("../../locales/nl/pages.ftl"),
    include_str!("../../locales/pt-BR/pages.ftl"),
    include_str!("../../locales/pl/pages.ftl"),
    include_str!("../../locales/sv/pages.ftl"),
    include_str!("../../locales/ja/pages.ftl"),
];

/// The shoppers' emails' texts, in the order of `FTL`.
const EMAIL_FTL: [&str; 10] = [
    include_str!("../../locales/en/emails.ftl"),
    include_str!("../../locales/de/emails.ftl"),
    include_str!("../../locales/fr/emails.ftl"),
    include_str!("../../locales/es/emails.ftl"),
    include_str!("../../locales/it/emails.ftl"),
    include_str!("../../locales/nl/emails.ftl"),
    include_str!("../../locales/pt-BR/emails.ftl"),
    include_str!("../../locales/pl/emails.ftl"),
    include_str!("../../locales/sv/emails.ftl"),
    include_str!("../../locales/ja/emails.ftl"),
];

type Bundle = FluentBundle<FluentResource>;

static BUNDLES: LazyLock<Vec<Bundle>> = LazyLock::new(|| {
    ALL.iter()
        .zip(FTL.iter().zip(EMAIL_FTL))
        .map(|(lang, (pages, emails))| {
            let id: unic_langid::LanguageIdentifier = lang.code().parse().unwrap_or_default();
            let mut bundle = Bundle::new_concurrent(vec![id]);
            // Texts go into HTML, where the isolation marks would only show as noise.
            bundle.set_use_isolating(false);
            // Syntax errors drop the broken entry only; the unit tests refuse any.
            for source in [*pages, emails] {
                let resource =
                    FluentResource::try_new(source.to_string()).unwrap_or_else(|(r, _)| r);
                let _ = bundle.add_resource(resource);
            }
            bundle
        })
        .collect()
});

/// A BCP 47 language tag as Treefort sends it (`fr`, `de-DE`, `pt_BR`, `zh-Hant-TW`): a 2–3 letter
/// language, then subtags of 1–8 letters or digits, joined by `-` (or `_`), at most 35 in all.
static LOCALE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$").expect("valid pattern")
});

pub fn is_valid_locale(locale: &str) -> bool {
    locale.len() <= 35 && LOCALE.is_match(locale)
}

/// A value for a text's placeholder: a string, or a number (which also picks the plural form).
pub enum Arg<'a> {
    Str(&'a str),
    Num(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Str(s)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Str(s)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Num(n)
    }
}

impl From<i32> for Arg<'_> {
    fn from(n: i32) -> Self {
        Arg::Num(n.into())
    }
}

impl Lang {
    /// The best language for `locale`: the full tag's language if we have it, else English
    /// (`de-DE` → `de`; `pt-BR` and any other `pt` → Brazilian Portuguese, our only one).
    pub fn negotiate(locale: &str) -> Lang {
        let primary = locale
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "de" => Lang::De,
            "fr" => Lang::Fr,
            "es" => Lang::Es,
            "it" => Lang::It,
            "nl" => Lang::Nl,
            "pt" => Lang::PtBr,
            "pl" => Lang::Pl,
            "sv" => Lang::Sv,
            "ja" => Lang::Ja,
            _ => Lang::En,
        }
    }

    /// The value of the page's `lang` attribute (BCP 47).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
            Lang::It => "it",
            Lang::Nl => "nl",
            Lang::PtBr => "pt-BR",
            Lang::Pl => "pl",
            Lang::Sv => "sv",
            Lang::Ja => "ja",
        }
    }

    fn bundle(self) -> &'static Bundle {
        let i = ALL.iter().position(|l| *l == self).unwrap_or(0);
        &BUNDLES[i]
    }

    /// The text `id` in this language (English if this language lacks it, the id if both do).
    pub fn t(self, id: &str) -> String {
        self.t_with(id, &[])
    }

    /// The text `id` with its placeholders filled.
    pub fn t_with(self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Str(s) => fluent_args.set(*name, FluentValue::from(*s)),
                Arg::Num(n) => fluent_args.set(*name, FluentValue::from(*n)),
            }
        }
        for bundle in [self.bundle(), Lang::En.bundle()] {
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let text = bundle
                    .format_pattern(pattern, Some(&fluent_args), &mut errors)
                    .into_owned();
                // A placeholder without a value (a caller's mistake): shown as `{$name}`.
                debug_assert!(errors.is_empty(), "{id}: {errors:?}");
                return text;
            }
        }
        id.to_string()
    }

    /// "every month", "every 3 months", "every year"...
    pub fn interval(self, unit: &str, count: i32) -> String {
        let id = if unit == "year" {
            "every-year"
        } else {
            "every-month"
        };
        self.t_with(id, &[("n", count.into())])
    }

    /// An amount as people of this language write it (CLDR): `€9.99` (en), `9,99 €` (de),
    /// `￥1,200` (ja), in the currency's own digits (none for JPY, three for KWD). An amount
    /// with more digits than its currency has (7.992 USD: a price in tenths of a cent) is never
    /// rounded: it is written as a number and the currency's code.
    pub fn money(self, money: &Money) -> String {
        let decimals = money.divisor.max(1).ilog10();
        let own = super::money::minor_unit_exponent(&money.currency);
        let mut value = fixed_decimal::Decimal::from(money.amount);
        value.multiply_pow10(-(decimals as i16));
        let exact = decimals <= own || money.amount % 10i64.pow(decimals - own) == 0;
        let symbol = if exact {
            formatters::currency(self, &money.currency, &value)
        } else {
            None
        };
        symbol.unwrap_or_else(|| {
            format!(
                "{}\u{a0}{}",
                formatters::number(self, &value).unwrap_or_else(|| value.to_string()),
                money.currency
            )
        })
    }

    /// A calendar date, medium length (CLDR): `Jan 9, 2027` (en), `09.01.2027` (de),
    /// `2027/01/09` (ja).
    pub fn date(self, at: chrono::NaiveDateTime) -> String {
        formatters::date(self, at.date()).unwrap_or_else(|| at.format("%Y-%m-%d").to_string())
    }
}

/// ICU4X formatters, built once per thread and language (and currency): building one reads its
/// CLDR data, which costs more than formatting.
mod formatters {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use chrono::Datelike;
    use fixed_decimal::Decimal;
    use icu_calendar::Gregorian;
    use icu_datetime::{fieldsets::YMD, input::Date, FixedCalendarDateTimeFormatter};
    use icu_decimal::DecimalFormatter;
    use icu_experimental::dimension::currency::{formatter::CurrencyFormatter, CurrencyType};

    use super::Lang;

    /// Currencies cached per thread at most (they come from plans and promo codes).
    const MAX_CURRENCIES: usize = 64;

    type Currencies = HashMap<(Lang, String), Option<CurrencyFormatter<DecimalFormatter>>>;

    thread_local! {
        static CURRENCY: RefCell<Currencies> = RefCell::new(HashMap::new());
        static NUMBER: RefCell<HashMap<Lang, Option<DecimalFormatter>>> = RefCell::new(HashMap::new());
        static DATE: RefCell<HashMap<Lang, Option<FixedCalendarDateTimeFormatter<Gregorian, YMD>>>> =
            RefCell::new(HashMap::new());
    }

    fn locale(lang: Lang) -> icu_locale_core::Locale {
        lang.code()
            .parse()
            .unwrap_or(icu_locale_core::Locale::UNKNOWN)
    }

    pub fn currency(lang: Lang, code: &str, value: &Decimal) -> Option<String> {
        CURRENCY.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() >= MAX_CURRENCIES {
                cache.clear();
            }
            let formatter = cache.entry((lang, code.to_string())).or_insert_with(|| {
                let currency = CurrencyType::try_from_str(&code.to_ascii_lowercase()).ok()?;
                CurrencyFormatter::try_new_symbol(
                    (&locale(lang)).into(),
                    currency,
                    Default::default(),
                )
                .ok()
            });
            formatter
                .as_ref()
                .map(|f| f.format_fixed_decimal(value).to_string())
        })
    }

    pub fn number(lang: Lang, value: &Decimal) -> Option<String> {
        NUMBER.with(|cache| {
            let mut cache = cache.borrow_mut();
            let formatter = cache.entry(lang).or_insert_with(|| {
                DecimalFormatter::try_new((&locale(lang)).into(), Default::default()).ok()
            });
            formatter.as_ref().map(|f| f.format(value).to_string())
        })
    }

    pub fn date(lang: Lang, date: chrono::NaiveDate) -> Option<String> {
        let day =
            Date::try_new_gregorian(date.year(), date.month() as u8, date.day() as u8).ok()?;
        DATE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let formatter = cache.entry(lang).or_insert_with(|| {
                FixedCalendarDateTimeFormatter::try_new((&locale(lang)).into(), YMD::medium()).ok()
            });
            formatter.as_ref().map(|f| f.format(&day).to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use fluent_bundle::FluentResource;

    fn ids(source: &str) -> Vec<String> {
        let resource = FluentResource::try_new(source.to_string())
            .unwrap_or_else(|(_, errors)| panic!("syntax errors: {errors:?}"));
        let mut ids: Vec<String> = resource
            .entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn every_language_has_every_text_and_no_syntax_error() {
        let english = ids(FTL[0]);
        assert!(english.len() > 70, "{}", english.len());
        for (lang, source) in ALL.iter().zip(FTL) {
            assert_eq!(ids(source), english, "{lang:?}");
        }
        let emails = ids(EMAIL_FTL[0]);
        assert!(emails.len() > 30, "{}", emails.len());
        for (lang, source) in ALL.iter().zip(EMAIL_FTL) {
            assert_eq!(ids(source), emails, "{lang:?} emails");
        }
    }

    #[test]
    fn negotiation_falls_back_from_region_to_language_to_english() {
        assert_eq!(Lang::negotiate("de-DE"), Lang::De);
        assert_eq!(Lang::negotiate("de_AT"), Lang::De);
        assert_eq!(Lang::negotiate("FR"), Lang::Fr);
        assert_eq!(Lang::negotiate("pt-BR"), Lang::PtBr);
        assert_eq!(Lang::negotiate("ja-JP"), Lang::Ja);
        assert_eq!(Lang::negotiate("zh-Hant-TW"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }

    #[test]
    fn intervals_pick_the_plural_form_of_the_language() {
        assert_eq!(Lang::En.interval("month", 1), "every month");
        assert_eq!(Lang::En.interval("month", 3), "every 3 months");
        assert_eq!(Lang::De.interval("year", 2), "alle 2 Jahre");
        assert_eq!(Lang::Pl.interval("month", 2), "co 2 miesiące");
        assert_eq!(Lang::Pl.interval("month", 5), "co 5 miesięcy");
        assert_eq!(Lang::Ja.interval("month", 1), "毎月");
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ids_fall_back() {
        assert_eq!(
            Lang::Fr.t_with("checkout-title", &[("plan", "Pro".into())]),
            "S'abonner à Pro"
        );
        assert!(Lang::De
            .t_with("checkout-title", &[("plan", "Pro".into())])
            .contains("Pro"));
        assert_eq!(Lang::Sv.t("no-such-text"), "no-such-text");
    }

    fn usd_cents(amount: i64) -> Money {
        Money {
            amount,
            currency: "USD".into(),
            divisor: 100,
        }
    }

    #[test]
    fn money_by_language() {
        assert_eq!(Lang::En.money(&usd_cents(123450)), "$1,234.50");
        assert_eq!(Lang::De.money(&usd_cents(999)), "9,99\u{a0}$");
        let eur = Money {
            amount: 123450,
            currency: "EUR".into(),
            divisor: 100,
        };
        assert_eq!(Lang::De.money(&eur), "1.234,50\u{a0}€");
        assert_eq!(Lang::En.money(&eur), "€1,234.50");
        let jpy = Money {
            amount: 1500,
            currency: "JPY".into(),
            divisor: 1,
        };
        assert_eq!(Lang::En.money(&jpy), "¥1,500");
        let chf = Money {
            amount: 1000,
            currency: "CHF".into(),
            divisor: 100,
        };
        assert_eq!(Lang::En.money(&chf), "CHF\u{a0}10.00");
    }

    #[test]
    fn money_and_dates_follow_cldr() {
        let eur = Money {
            amount: 123_450,
            currency: "EUR".into(),
            divisor: 100,
        };
        assert_eq!(Lang::En.money(&eur), "€1,234.50");
        assert_eq!(Lang::De.money(&eur), "1.234,50\u{a0}€");
        assert_eq!(Lang::Nl.money(&eur), "€\u{a0}1.234,50");
        let yen = Money {
            amount: 1200,
            currency: "JPY".into(),
            divisor: 1,
        };
        assert_eq!(Lang::Ja.money(&yen), "￥1,200");
        // More digits than the currency has: written exactly, never rounded.
        let tenths_of_cents = Money {
            amount: 7992,
            currency: "USD".into(),
            divisor: 1000,
        };
        assert_eq!(Lang::En.money(&tenths_of_cents), "7.992\u{a0}USD");
        let whole_cents = Money {
            amount: 7990,
            currency: "USD".into(),
            divisor: 1000,
        };
        assert_eq!(Lang::En.money(&whole_cents), "$7.99");
        let half_yen = Money {
            amount: 150_050,
            currency: "JPY".into(),
            divisor: 100,
        };
        assert_eq!(Lang::De.money(&half_yen), "1.500,50\u{a0}JPY");
        let day = NaiveDate::from_ymd_opt(2027, 1, 9)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(Lang::En.date(day), "Jan 9, 2027");
        assert_eq!(Lang::De.date(day), "09.01.2027");
        assert_eq!(Lang::Ja.date(day), "2027/01/09");
    }

    #[test]
    fn locales_are_checked() {
        assert!(is_valid_locale("de-DE"));
        assert!(!is_valid_locale(""));
        assert!(!is_valid_locale("de DE<script>"));
    }
}
