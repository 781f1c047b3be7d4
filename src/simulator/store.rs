//! What the simulated Treefort keeps: the subscription records (as Treefort would hold them) and
//! every POST/PATCH it received, per user. In memory, bounded, and saved as JSON in the service's
//! database (`service_settings`) after each change, so a restart of local mode finds Treefort's
//! side as it left it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most requests kept (oldest dropped first).
const MAX_RECEIVED: usize = 2_000;

/// One call the simulated Treefort received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Received {
    /// On the service's clock (simulated time).
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub body: Value,
    /// What the simulator answered.
    pub status: u16,
    pub user_id: Option<String>,
}

/// A subscription as Treefort holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub user_id: String,
    /// The fields as last set: `subscriptionPlanId`, `currentPeriodEndsAt`, `trialEndsAt`,
    /// `canceledAt`, `deactivatedAt`, `provider`.
    pub fields: Map<String, Value>,
    pub created_at: DateTime<Utc>,
}

impl Record {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    pub fn plan_id(&self) -> Option<i64> {
        self.fields
            .get("subscriptionPlanId")
            .and_then(Value::as_i64)
    }
}

#[derive(Default, Serialize, Deserialize)]
pub struct Store {
    records: BTreeMap<String, Record>,
    /// The user's current subscription (their latest).
    by_user: HashMap<String, String>,
    /// Idempotency-Key of a POST → the id it created.
    created_by_key: HashMap<String, String>,
    received: VecDeque<Received>,
    next_id: u64,
}

/// The simulated Treefort's answer to a POST or PATCH.
pub enum Answer {
    Created(String),
    /// A POST repeated with the same Idempotency-Key: the id it created the first time.
    Replayed(String),
    Updated,
    NotFound,
}

impl Store {
    /// `POST /subscriptions`: a new record for the user (who then has it as current).
    pub fn create(
        &mut self,
        now: DateTime<Utc>,
        idempotency_key: Option<&str>,
        user_id: &str,
        fields: Map<String, Value>,
    ) -> Answer {
        if let Some(id) = idempotency_key.and_then(|k| self.created_by_key.get(k)) {
            return Answer::Replayed(id.clone());
        }
        self.next_id += 1;
        let id = format!("tf_sub_{}", self.next_id);
        self.records.insert(
            id.clone(),
            Record {
                id: id.clone(),
                user_id: user_id.to_string(),
                fields,
                created_at: now,
            },
        );
        self.by_user.insert(user_id.to_string(), id.clone());
        if let Some(key) = idempotency_key {
            self.created_by_key.insert(key.to_string(), id.clone());
        }
        Answer::Created(id)
    }

    /// `PATCH /subscriptions/{id}`: the fields sent replace those held (`null` clears one).
    pub fn update(&mut self, id: &str, fields: Map<String, Value>) -> (Answer, Option<String>) {
        match self.records.get_mut(id) {
            None => (Answer::NotFound, None),
            Some(record) => {
                record.fields.extend(fields);
                (Answer::Updated, Some(record.user_id.clone()))
            }
        }
    }

    pub fn log(&mut self, received: Received) {
        if self.received.len() == MAX_RECEIVED {
            self.received.pop_front();
        }
        self.received.push_back(received);
    }

    pub fn current(&self, user_id: &str) -> Option<&Record> {
        self.by_user
            .get(user_id)
            .and_then(|id| self.records.get(id))
    }

    /// What the user's subscriptions received, newest first.
    pub fn received_for(&self, user_id: &str) -> Vec<Received> {
        self.received
            .iter()
            .rev()
            .filter(|r| r.user_id.as_deref() == Some(user_id))
            .cloned()
            .collect()
    }

    /// Calls that could not be tied to a user (refused ones), newest first.
    pub fn refused(&self) -> Vec<Received> {
        self.received
            .iter()
            .rev()
            .filter(|r| r.status >= 400)
            .take(20)
            .cloned()
            .collect()
    }

    /// Users Treefort knows a subscription of, with their current record.
    pub fn users(&self) -> Vec<Record> {
        let mut users: Vec<Record> = self
            .by_user
            .values()
            .filter_map(|id| self.records.get(id))
            .cloned()
            .collect();
        users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_repeated_post_gets_the_first_id_and_a_patch_replaces_fields() {
        let mut store = Store::default();
        let now = Utc::now();
        let body = fields(json!({"userId": "u1", "canceledAt": null}));
        let Answer::Created(id) = store.create(now, Some("k1"), "u1", body.clone()) else {
            panic!("created")
        };
        assert!(
            matches!(store.create(now, Some("k1"), "u1", body), Answer::Replayed(ref again) if *again == id)
        );
        let (answer, user) = store.update(
            &id,
            fields(json!({"canceledAt": "2027-01-01T00:00:00.000Z"})),
        );
        assert!(matches!(answer, Answer::Updated));
        assert_eq!(user.as_deref(), Some("u1"));
        assert_eq!(
            store.current("u1").unwrap().field("canceledAt"),
            Some("2027-01-01T00:00:00.000Z")
        );
        assert!(matches!(
            store.update("tf_sub_999", Map::new()).0,
            Answer::NotFound
        ));
    }
}
