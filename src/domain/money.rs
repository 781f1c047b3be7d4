//! Money as integer minor units with an explicit divisor, as Treefort sends it (`150` / `100` =
//! 1.50 USD). No float ever holds an amount.

/// An amount in a currency: `amount / divisor` units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
    pub divisor: i64,
}

/// A discount a promo code gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discount {
    Percent(i32),
    AmountOff(Money),
}

/// The divisors accepted: powers of ten, as currencies use (JPY 1, USD 100, BHD 1000).
pub const DIVISORS: [i64; 5] = [1, 10, 100, 1000, 10000];

/// An ISO 4217 code: three ASCII letters, returned uppercase.
pub fn parse_currency(code: &str) -> Result<String, String> {
    let code = code.trim();
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(format!(
            "currency must be a three-letter ISO 4217 code such as USD (got {code:?})"
        ))
    }
}

pub fn parse_divisor(divisor: i64) -> Result<i64, String> {
    if DIVISORS.contains(&divisor) {
        Ok(divisor)
    } else {
        Err(format!(
            "divisor must be one of 1, 10, 100, 1000, 10000 (got {divisor})"
        ))
    }
}

impl Money {
    /// The price after `discount`, and the discount taken, in this price's units. `None` when an
    /// amount-off discount is in another currency (it cannot apply).
    pub fn discounted(&self, discount: &Discount) -> Option<(Money, i64)> {
        let off = match discount {
            Discount::Percent(p) => {
                // Round the discount half up, in i128 so no amount can overflow.
                ((self.amount as i128 * *p as i128 + 50) / 100) as i64
            }
            Discount::AmountOff(m) => {
                if m.currency != self.currency {
                    return None;
                }
                // Rescale to this price's divisor, rounding down: never more off than stated.
                (m.amount as i128 * self.divisor as i128 / m.divisor as i128) as i64
            }
        };
        let off = off.clamp(0, self.amount);
        Some((
            Money {
                amount: self.amount - off,
                ..self.clone()
            },
            off,
        ))
    }
}

/// Digits after the decimal point in a currency's smallest unit, as card gateways count amounts
/// (Stripe: "zero-decimal" and "three-decimal" currencies; every other currency has two).
pub fn minor_unit_exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

impl Money {
    /// The amount in the currency's smallest unit (cents for USD, yen for JPY), as a gateway
    /// charges it. `None` when it is not a whole number of that unit (e.g. 0.5 yen).
    pub fn to_minor_units(&self) -> Option<i64> {
        let scale = 10i128.pow(minor_unit_exponent(&self.currency));
        let scaled = self.amount as i128 * scale;
        let divisor = self.divisor.max(1) as i128;
        (scaled % divisor == 0)
            .then(|| i64::try_from(scaled / divisor).ok())
            .flatten()
    }

    /// An amount a gateway reported in the currency's smallest unit.
    pub fn from_minor_units(amount: i64, currency: &str) -> Money {
        let currency = currency.to_ascii_uppercase();
        Money {
            amount,
            divisor: 10i64.pow(minor_unit_exponent(&currency)),
            currency,
        }
    }

    /// This amount with another divisor, if it can be written exactly with it.
    pub fn rescaled(&self, divisor: i64) -> Option<Money> {
        let scaled = self.amount as i128 * divisor as i128;
        let own = self.divisor.max(1) as i128;
        if scaled % own != 0 {
            return None;
        }
        Some(Money {
            amount: i64::try_from(scaled / own).ok()?,
            currency: self.currency.clone(),
            divisor,
        })
    }

    /// Whether two amounts are the same money (same currency and value, whatever the divisors).
    pub fn same_value(&self, other: &Money) -> bool {
        self.currency.eq_ignore_ascii_case(&other.currency)
            && self.amount as i128 * other.divisor as i128
                == other.amount as i128 * self.divisor as i128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount: i64) -> Money {
        Money {
            amount,
            currency: "USD".into(),
            divisor: 100,
        }
    }

    #[test]
    fn percent_discount_rounds_half_up_and_amount_off_rescales() {
        assert_eq!(
            usd(999)
                .discounted(&Discount::Percent(25))
                .unwrap()
                .0
                .amount,
            749
        );
        assert_eq!(
            usd(999)
                .discounted(&Discount::Percent(100))
                .unwrap()
                .0
                .amount,
            0
        );
        let five_dollars = Discount::AmountOff(Money {
            amount: 5,
            currency: "USD".into(),
            divisor: 1,
        });
        assert_eq!(usd(999).discounted(&five_dollars).unwrap(), (usd(499), 500));
        let too_much = Discount::AmountOff(usd(5000));
        assert_eq!(usd(999).discounted(&too_much).unwrap(), (usd(0), 999));
        let euros = Discount::AmountOff(Money {
            amount: 100,
            currency: "EUR".into(),
            divisor: 100,
        });
        assert_eq!(usd(999).discounted(&euros), None);
    }

    #[test]
    fn gateway_amounts_respect_the_currencys_minor_unit() {
        assert_eq!(usd(999).to_minor_units(), Some(999));
        let usd_mills = Money {
            amount: 9990,
            currency: "USD".into(),
            divisor: 1000,
        };
        assert_eq!(usd_mills.to_minor_units(), Some(999));
        assert_eq!(
            Money {
                amount: 9995,
                ..usd_mills.clone()
            }
            .to_minor_units(),
            None,
            "half a cent cannot be charged"
        );
        let yen = Money {
            amount: 1500,
            currency: "JPY".into(),
            divisor: 1,
        };
        assert_eq!(
            yen.to_minor_units(),
            Some(1500),
            "zero-decimal: yen, not 1/100 yen"
        );
        let yen_cents = Money {
            amount: 150000,
            currency: "JPY".into(),
            divisor: 100,
        };
        assert_eq!(yen_cents.to_minor_units(), Some(1500));
        let dinar = Money {
            amount: 5,
            currency: "KWD".into(),
            divisor: 1,
        };
        assert_eq!(dinar.to_minor_units(), Some(5000));
        let back = Money::from_minor_units(1500, "jpy");
        assert!(back.same_value(&yen_cents) && back.same_value(&yen));
        assert!(!back.same_value(&usd(1500)));
        assert_eq!(usd_mills.rescaled(100), Some(usd(999)));
        assert_eq!(usd(999).rescaled(1), None);
    }

    #[test]
    fn currencies_and_divisors_are_checked() {
        assert_eq!(parse_currency("usd").unwrap(), "USD");
        assert!(parse_currency("US").is_err());
        assert!(parse_currency("U$D").is_err());
        assert!(parse_divisor(100).is_ok());
        assert!(parse_divisor(0).is_err());
        assert!(parse_divisor(7).is_err());
    }
}
