//! A plan's features: what a subscription to it unlocks in the app owner's products
//! (`advancedReporting: true`, `maxEmployees: 50`, `tier: "pro"`). A JSON object of at most 64
//! keys (`^[a-z][a-zA-Z0-9_]{0,63}$`) whose values are booleans, integers, or strings of at most
//! 200 characters. Stored as its JSON text (keys sorted), read back once into an `Arc` so the
//! entitlement check and every view share one copy.

use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

pub const MAX_KEYS: usize = 64;
pub const MAX_STRING_CHARS: usize = 200;

static KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-zA-Z0-9_]{0,63}$").expect("valid pattern"));

/// A valid set of features (possibly empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features(Arc<Map<String, Value>>);

impl Features {
    /// Checks `value` (what `/v1` was sent): an object whose keys and values follow the rules.
    /// The message names the key at fault.
    pub fn from_json(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("features must be a JSON object".into());
        };
        let mut features = Map::new();
        for (key, value) in map {
            let value = checked(&key, value)?;
            features.insert(key, value);
        }
        if features.len() > MAX_KEYS {
            return Err(format!("features may have at most {MAX_KEYS} keys"));
        }
        Ok(Self(Arc::new(features)))
    }

    /// `key=value` as the command line gives it (`--feature maxEmployees=50`): the value is read as
    /// a boolean, then an integer, then a string.
    pub fn parse_assignment(assignment: &str) -> Result<(String, Value), String> {
        let Some((key, raw)) = assignment.split_once('=') else {
            return Err(format!(
                "--feature takes key=value (e.g. advancedReporting=true), got {assignment:?}"
            ));
        };
        let value = match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => match raw.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(raw.to_string()),
            },
        };
        let value = checked(key, value)?;
        Ok((key.to_string(), value))
    }

    /// These features with `changes` set (a key given again takes its last value).
    pub fn with(&self, changes: impl IntoIterator<Item = (String, Value)>) -> Result<Self, String> {
        let mut map = (*self.0).clone();
        map.extend(changes);
        Self::from_json(Value::Object(map))
    }

    /// Reads the stored text back. Only this module writes it, so it is valid; a row edited by hand
    /// into something else reads as no features rather than failing every read of the plan.
    pub fn from_stored(text: &str) -> Self {
        serde_json::from_str(text)
            .ok()
            .and_then(|v| Self::from_json(v).ok())
            .unwrap_or_default()
    }

    /// The stored form: compact JSON, keys sorted.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&*self.0).unwrap_or_else(|_| "{}".into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn to_value(&self) -> Value {
        Value::Object((*self.0).clone())
    }
}

/// Diesel reads the stored text into `Features` (`#[diesel(deserialize_as = String)]`).
impl From<String> for Features {
    fn from(text: String) -> Self {
        Self::from_stored(&text)
    }
}

impl Serialize for Features {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

fn checked(key: &str, value: Value) -> Result<Value, String> {
    if !KEY.is_match(key) {
        return Err(format!(
            "feature key {key:?} must start with a lowercase letter, then letters, digits or _ (at most 64 characters)"
        ));
    }
    match &value {
        Value::Bool(_) => Ok(value),
        Value::Number(n) if n.is_i64() || n.is_u64() => match n.as_i64() {
            Some(_) => Ok(value),
            None => Err(format!(
                "feature {key:?}: an integer must fit in 64 bits (at most {})",
                i64::MAX
            )),
        },
        Value::String(s) if s.chars().count() > MAX_STRING_CHARS => Err(format!(
            "feature {key:?}: a string may have at most {MAX_STRING_CHARS} characters"
        )),
        Value::String(s) if super::text::has_control(s) => Err(format!(
            "feature {key:?}: a string must not contain control characters"
        )),
        Value::String(_) => Ok(value),
        _ => Err(format!(
            "feature {key:?} must be true, false, an integer or a string (got {value})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn booleans_integers_and_short_strings_are_features() {
        let f = Features::from_json(
            json!({"advancedReporting": true, "maxEmployees": 50, "tier": "pro", "x_1": -3}),
        )
        .unwrap();
        assert_eq!(f.get("maxEmployees"), Some(&json!(50)));
        assert_eq!(
            f.to_stored(),
            r#"{"advancedReporting":true,"maxEmployees":50,"tier":"pro","x_1":-3}"#
        );
        assert_eq!(Features::from_stored(&f.to_stored()), f);
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        for (bad, names) in [
            (json!({"Advanced": true}), "\"Advanced\""),
            (json!({"1st": true}), "\"1st\""),
            (json!({"has-dash": true}), "\"has-dash\""),
            (json!({"": true}), "\"\""),
            (json!({"a".repeat(65): true}), "at most 64"),
            (json!({"ratio": 1.5}), "\"ratio\""),
            (json!({"big": u64::MAX}), "64 bits"),
            (json!({"none": null}), "\"none\""),
            (json!({"list": [1]}), "\"list\""),
            (json!({"nested": {"a": 1}}), "\"nested\""),
            (json!({"long": "x".repeat(201)}), "200 characters"),
            (json!({"nl": "a\nb"}), "control"),
            (json!([1, 2]), "JSON object"),
        ] {
            let err = Features::from_json(bad.clone()).unwrap_err();
            assert!(err.contains(names), "{bad}: {err}");
        }
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!(true))).collect();
        assert!(Features::from_json(Value::Object(many))
            .unwrap_err()
            .contains("at most 64 keys"));
        assert!(Features::from_json(json!({"long": "é".repeat(200)})).is_ok());
    }

    #[test]
    fn command_line_values_are_a_boolean_then_an_integer_then_a_string() {
        let parse = |a| Features::parse_assignment(a).unwrap();
        assert_eq!(
            parse("advancedReporting=true"),
            ("advancedReporting".into(), json!(true))
        );
        assert_eq!(parse("beta=false"), ("beta".into(), json!(false)));
        assert_eq!(parse("maxEmployees=50"), ("maxEmployees".into(), json!(50)));
        assert_eq!(parse("tier=pro plus"), ("tier".into(), json!("pro plus")));
        assert_eq!(parse("label=a=b"), ("label".into(), json!("a=b")));
        assert_eq!(parse("empty="), ("empty".into(), json!("")));
        assert!(Features::parse_assignment("noequals").is_err());
        assert!(Features::parse_assignment("Bad=1").is_err());
    }

    #[test]
    fn with_sets_keys_over_the_current_ones() {
        let f = Features::from_json(json!({"a": 1, "b": true})).unwrap();
        let g = f
            .with([
                ("b".to_string(), json!(false)),
                ("c".to_string(), json!("x")),
            ])
            .unwrap();
        assert_eq!(g.to_value(), json!({"a": 1, "b": false, "c": "x"}));
        assert_eq!(Features::from_stored("not json"), Features::default());
    }
}
