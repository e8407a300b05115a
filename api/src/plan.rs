//! Query planning: whether a list is served from a secondary index or by
//! reading every record, decided once, at the edge, for every backend.
//!
//! DynamoDB serves a list from a global secondary index with one Query: its
//! key condition names one partition key value and at most one condition on
//! the sort key; what else the list asks stays a FilterExpression. Without a
//! usable index a list is a Scan, which reads (and bills) every item it
//! passes. Memory and the embedded store follow the same plan, so the three
//! answer a list with the same records in the same order, and say the same
//! in `x-served-by`.
//!
//! The rules ([`Plan::choose`]), each so that a list served from an index
//! answers exactly the records a Scan would:
//!
//! - An index serves a list only when the filters hold an `eq` on its
//!   partition key with an operand DynamoDB could store there (a non-empty
//!   string of at most 2048 bytes, or a number, as declared), and every other
//!   filter on that attribute is the same `eq`. A filter expression may not
//!   name a key attribute of the index it queries (Query API reference,
//!   FilterExpression: "A FilterExpression does not allow key attributes"),
//!   so any other condition on it (`ne`, a second value…) leaves the Scan.
//! - On the sort key, at most one filter, and one a key condition can state:
//!   `eq lt le gt ge` with an operand of the declared type, or
//!   `begins_with` on a string sort key. Several conditions on it (a range
//!   `ge` + `le`) are served by a Scan: a key condition holds one.
//! - A record without the sort key attribute is not in the index (DynamoDB's
//!   indexes are sparse). An index with a sort key therefore serves a list
//!   only when a filter on the sort key already excludes such records, or
//!   the list asks to be ordered by it (`order=age` lists the records that
//!   have an `age`, as the README says).
//! - No filter on `id`: the table's own key is kept out of a query's filter
//!   expression too (the API reference does not say whether the restriction
//!   covers it; a Scan is right either way).
//! - `order=attr` (`-attr`: descending) needs an index that serves the list
//!   and whose sort key is `attr`; otherwise it is a 400 naming what would.
//! - Of several usable indexes, one with a condition on its sort key (it
//!   reads fewer items) before one without; then the first declared.
//!
//! A list served from an index is ordered by the sort key, then by `id`;
//! descending reverses both (DynamoDB's order of an index, where items with
//! equal index keys follow the table's key). A global secondary index is
//! eventually consistent: such a list may miss a write for a moment.

use std::fmt;

use thiserror::Error;

use crate::cursor::Cursor;
use crate::filter::{Filter, Scalar, Test};
use crate::index::{
    IndexConfig, KeyAttribute, KeyKind, MAX_PARTITION_VALUE_BYTES, MAX_SORT_VALUE_BYTES,
};
use crate::record::ID_FIELD;

/// `order=`: the attribute a list is sorted by, and the direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub attribute: String,
    pub descending: bool,
}

/// How a list is served.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Plan {
    /// Every record, in the store's own order (id order in memory and the
    /// embedded store, DynamoDB's key hash order), filtered.
    #[default]
    Scan,
    /// The records under one secondary index, in its order.
    Index(IndexPlan),
}

/// A list served from a secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexPlan {
    pub index: IndexConfig,
    /// The partition key's value: the operand of the list's `eq` on it.
    pub partition: Scalar,
    /// The one condition on the sort key, part of the key condition.
    pub sort_condition: Option<Test>,
    /// `order=-attr`: the index's order reversed.
    pub descending: bool,
    /// The filters not on the index's key attributes: DynamoDB's
    /// FilterExpression. (Memory and embedded test every filter.)
    pub remaining: Vec<Filter>,
}

/// Why a list's `order` or `offset` does not fit its plan.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("`order`: {0}")]
    Order(String),
    #[error(
        "`offset` was returned by a list served {minted}, but this list is served {plan}: \
         use a cursor with the filters and order it came from"
    )]
    ForeignCursor { minted: String, plan: String },
}

impl Plan {
    /// The plan for a list with `filters` and `order`, on a resource with
    /// `indexes`: see the module's rules.
    pub fn choose(
        filters: &[Filter],
        order: Option<&Order>,
        indexes: &[IndexConfig],
    ) -> Result<Self, PlanError> {
        let mut best: Option<IndexPlan> = None;
        for index in indexes {
            let Some(candidate) = fit(index, filters, order) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some(chosen) => {
                    candidate.sort_condition.is_some() && chosen.sort_condition.is_none()
                }
            };
            if better {
                best = Some(candidate);
            }
        }
        match (best, order) {
            (Some(plan), _) => Ok(Plan::Index(plan)),
            (None, None) => Ok(Plan::Scan),
            (None, Some(order)) => Err(PlanError::Order(unservable_order(order, indexes))),
        }
    }

    /// Refuses a cursor minted by a list served another way: its position
    /// means nothing in this plan's order.
    pub fn check_cursor(&self, cursor: &Cursor) -> Result<(), PlanError> {
        let fits = match (self, cursor.index_position()) {
            (Plan::Scan, None) => true,
            (Plan::Index(plan), Some(position)) => {
                position.index == plan.index.name
                    && match (&plan.index.sort_key, &position.sort) {
                        (None, None) => true,
                        (Some(key), Some(value)) => value_has_kind(value, key.kind),
                        _ => false,
                    }
            }
            _ => false,
        };
        if fits {
            return Ok(());
        }
        let minted = match cursor.index_position() {
            Some(position) => format!("from index `{}`", position.index),
            None => "by a scan".to_owned(),
        };
        Err(PlanError::ForeignCursor {
            minted,
            plan: self.to_string(),
        })
    }

    /// What `x-served-by` says: `scan`, or `index <name>`.
    pub fn served_by(&self) -> String {
        match self {
            Plan::Scan => "scan".to_owned(),
            Plan::Index(plan) => format!("index {}", plan.index.name),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Scan => f.write_str("by a scan"),
            Plan::Index(plan) => write!(f, "from index `{}`", plan.index.name),
        }
    }
}

/// The plan of `index` for this list, if the index can serve it.
fn fit(index: &IndexConfig, filters: &[Filter], order: Option<&Order>) -> Option<IndexPlan> {
    if filters.iter().any(|filter| filter.field == ID_FIELD) {
        return None;
    }
    let partition_key = &index.partition_key;
    let mut partition: Option<&Scalar> = None;
    for filter in filters.iter().filter(|f| f.field == partition_key.name) {
        let Test::Eq(operand) = &filter.test else {
            return None;
        };
        if !key_operand(operand, partition_key, MAX_PARTITION_VALUE_BYTES)
            || partition.is_some_and(|chosen| chosen != operand)
        {
            return None;
        }
        partition = Some(operand);
    }
    let partition = partition?.clone();

    let sort_condition = match &index.sort_key {
        None => {
            if order.is_some() {
                return None;
            }
            None
        }
        Some(sort_key) => {
            if order.is_some_and(|order| order.attribute != sort_key.name) {
                return None;
            }
            let mut on_sort = filters.iter().filter(|f| f.field == sort_key.name);
            match (on_sort.next(), on_sort.next()) {
                (None, _) if order.is_some() => None,
                (None, _) => return None,
                (Some(filter), None) if sort_key_condition(&filter.test, sort_key) => {
                    Some(filter.test.clone())
                }
                _ => return None,
            }
        }
    };
    let keys: Vec<&str> = index.keys().map(|key| key.name.as_str()).collect();
    Some(IndexPlan {
        index: index.clone(),
        partition,
        sort_condition,
        descending: order.is_some_and(|order| order.descending),
        remaining: filters
            .iter()
            .filter(|filter| !keys.contains(&filter.field.as_str()))
            .cloned()
            .collect(),
    })
}

/// Whether `operand` is a value DynamoDB could hold in key `key`.
fn key_operand(operand: &Scalar, key: &KeyAttribute, max_bytes: usize) -> bool {
    match (key.kind, operand) {
        (KeyKind::String, Scalar::String(s)) => !s.is_empty() && s.len() <= max_bytes,
        (KeyKind::Number, Scalar::Number(_)) => true,
        _ => false,
    }
}

/// Whether `test` can be the sort key's part of a key condition.
fn sort_key_condition(test: &Test, key: &KeyAttribute) -> bool {
    match test {
        Test::Eq(operand)
        | Test::Lt(operand)
        | Test::Le(operand)
        | Test::Gt(operand)
        | Test::Ge(operand) => key_operand(operand, key, MAX_SORT_VALUE_BYTES),
        Test::BeginsWith(prefix) => {
            key.kind == KeyKind::String
                && !prefix.is_empty()
                && prefix.len() <= MAX_SORT_VALUE_BYTES
        }
        Test::Ne(_) | Test::Contains(_) | Test::Exists | Test::NotExists => false,
    }
}

fn value_has_kind(value: &serde_json::Value, kind: KeyKind) -> bool {
    matches!(
        (kind, value),
        (KeyKind::String, serde_json::Value::String(_))
            | (KeyKind::Number, serde_json::Value::Number(_))
    )
}

/// Why no index serves `order`, and what would.
fn unservable_order(order: &Order, indexes: &[IndexConfig]) -> String {
    let sorting: Vec<&IndexConfig> = indexes
        .iter()
        .filter(|index| {
            index
                .sort_key
                .as_ref()
                .is_some_and(|key| key.name == order.attribute)
        })
        .collect();
    if sorting.is_empty() {
        let sort_keys: Vec<String> = indexes
            .iter()
            .filter_map(|index| index.sort_key.as_ref())
            .map(|key| format!("`{}`", key.name))
            .collect();
        let offered = if indexes.is_empty() {
            "this resource declares no index (`indexes:` in the app declaration)".to_owned()
        } else if sort_keys.is_empty() {
            "this resource's indexes have no sort key".to_owned()
        } else {
            format!("a list can be ordered by {}", sort_keys.join(", "))
        };
        return format!(
            "no index of this resource sorts by `{}`; {offered}",
            order.attribute
        );
    }
    let needs: Vec<String> = sorting
        .iter()
        .map(|index| {
            format!(
                "index `{}` orders by it a list with `filters={}:eq:…`",
                index.name, index.partition_key.name
            )
        })
        .collect();
    format!(
        "{}; with at most one other condition, on `{}` (eq, lt, le, gt, ge, begins_with), \
         and none on `id`",
        needs.join("; "),
        order.attribute
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::IndexPosition;

    fn key(name: &str, kind: KeyKind) -> KeyAttribute {
        KeyAttribute {
            name: name.to_owned(),
            kind,
        }
    }

    fn index(name: &str, partition: KeyAttribute, sort: Option<KeyAttribute>) -> IndexConfig {
        IndexConfig {
            name: name.to_owned(),
            partition_key: partition,
            sort_key: sort,
        }
    }

    fn by_gender() -> IndexConfig {
        index("by-gender", key("gender", KeyKind::String), None)
    }

    fn by_team_age() -> IndexConfig {
        index(
            "by-team-age",
            key("team", KeyKind::String),
            Some(key("age", KeyKind::Number)),
        )
    }

    fn filter(field: &str, test: Test) -> Filter {
        Filter {
            field: field.to_owned(),
            test,
        }
    }

    fn s(text: &str) -> Scalar {
        Scalar::String(text.to_owned())
    }

    fn n(number: i64) -> Scalar {
        Scalar::Number(number.into())
    }

    fn order(attribute: &str, descending: bool) -> Order {
        Order {
            attribute: attribute.to_owned(),
            descending,
        }
    }

    fn served_by(filters: &[Filter], order: Option<&Order>) -> String {
        Plan::choose(filters, order, &[by_gender(), by_team_age()])
            .unwrap()
            .served_by()
    }

    #[test]
    fn an_eq_on_a_partition_key_is_served_by_its_index() {
        let plan = Plan::choose(
            &[
                filter("gender", Test::Eq(s("F"))),
                filter("name", Test::BeginsWith("A".to_owned())),
            ],
            None,
            &[by_gender()],
        )
        .unwrap();
        let Plan::Index(plan) = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(plan.index.name, "by-gender");
        assert_eq!(plan.partition, s("F"));
        assert_eq!(plan.sort_condition, None);
        assert_eq!(
            plan.remaining,
            [filter("name", Test::BeginsWith("A".to_owned()))],
            "the key attribute never reaches the filter expression"
        );
        assert!(!plan.descending);
    }

    #[test]
    fn lists_an_index_cannot_answer_exactly_are_scans() {
        for filters in [
            vec![],
            vec![filter("gender", Test::Ne(s("F")))],
            vec![filter("gender", Test::BeginsWith("F".to_owned()))],
            // A type DynamoDB could not store there, or an empty key.
            vec![filter("gender", Test::Eq(n(1)))],
            vec![filter("gender", Test::Eq(s("")))],
            vec![filter("gender", Test::Eq(s(&"x".repeat(2049))))],
            // A second condition on the key could not be a filter expression.
            vec![
                filter("gender", Test::Eq(s("F"))),
                filter("gender", Test::Eq(s("M"))),
            ],
            vec![
                filter("gender", Test::Eq(s("F"))),
                filter("gender", Test::Exists),
            ],
            vec![
                filter("gender", Test::Eq(s("F"))),
                filter("id", Test::Exists),
            ],
            // An index with a sort key would leave out records without it.
            vec![filter("team", Test::Eq(s("red")))],
            vec![
                filter("team", Test::Eq(s("red"))),
                filter("age", Test::Ge(n(18))),
                filter("age", Test::Le(n(65))),
            ],
            vec![
                filter("team", Test::Eq(s("red"))),
                filter("age", Test::Ne(n(18))),
            ],
            vec![
                filter("team", Test::Eq(s("red"))),
                filter("age", Test::BeginsWith("1".to_owned())),
            ],
            vec![
                filter("team", Test::Eq(s("red"))),
                filter("age", Test::Eq(s("18"))),
            ],
        ] {
            assert_eq!(served_by(&filters, None), "scan", "{filters:?}");
        }
        // The same `eq` twice is one condition.
        let twice = [
            filter("gender", Test::Eq(s("F"))),
            filter("gender", Test::Eq(s("F"))),
        ];
        assert_eq!(served_by(&twice, None), "index by-gender");
    }

    #[test]
    fn a_sort_key_condition_is_part_of_the_key() {
        for test in [
            Test::Eq(n(30)),
            Test::Lt(n(30)),
            Test::Le(n(30)),
            Test::Gt(n(30)),
            Test::Ge(n(30)),
        ] {
            let filters = [
                filter("team", Test::Eq(s("red"))),
                filter("age", test.clone()),
            ];
            let Plan::Index(plan) = Plan::choose(&filters, None, &[by_team_age()]).unwrap() else {
                panic!("{test:?}")
            };
            assert_eq!(plan.sort_condition, Some(test));
            assert!(plan.remaining.is_empty());
        }
        let by_team_name = index(
            "by-team-name",
            key("team", KeyKind::String),
            Some(key("name", KeyKind::String)),
        );
        let filters = [
            filter("team", Test::Eq(s("red"))),
            filter("name", Test::BeginsWith("An".to_owned())),
        ];
        assert_eq!(
            Plan::choose(&filters, None, &[by_team_name])
                .unwrap()
                .served_by(),
            "index by-team-name"
        );
    }

    #[test]
    fn order_needs_an_index_sorting_by_it() {
        let red = [filter("team", Test::Eq(s("red")))];
        for descending in [false, true] {
            let wanted = order("age", descending);
            let Plan::Index(plan) = Plan::choose(&red, Some(&wanted), &[by_team_age()]).unwrap()
            else {
                panic!()
            };
            assert_eq!(plan.descending, descending);
            assert_eq!(plan.sort_condition, None);
        }

        let indexes = [by_gender(), by_team_age()];
        let refused = |filters: &[Filter], wanted: Order, fragment: &str| {
            let error = Plan::choose(filters, Some(&wanted), &indexes).unwrap_err();
            assert!(error.to_string().contains(fragment), "{error}");
        };
        refused(
            &red,
            order("name", false),
            "no index of this resource sorts by `name`",
        );
        refused(&red, order("name", false), "ordered by `age`");
        refused(&[], order("age", false), "`filters=team:eq:…`");
        refused(
            &[filter("gender", Test::Eq(s("F")))],
            order("gender", false),
            "sorts by `gender`",
        );
        let error = Plan::choose(&red, Some(&order("age", false)), &[by_gender()]).unwrap_err();
        assert!(error.to_string().contains("have no sort key"), "{error}");
        let error = Plan::choose(&red, Some(&order("age", false)), &[]).unwrap_err();
        assert!(error.to_string().contains("declares no index"), "{error}");
    }

    #[test]
    fn the_narrower_index_wins_then_the_first_declared() {
        let by_team = index("by-team", key("team", KeyKind::String), None);
        let filters = [
            filter("team", Test::Eq(s("red"))),
            filter("age", Test::Gt(n(40))),
        ];
        let indexes = [by_team.clone(), by_team_age()];
        assert_eq!(
            Plan::choose(&filters, None, &indexes).unwrap().served_by(),
            "index by-team-age"
        );
        let also_by_team = index("also-by-team", key("team", KeyKind::String), None);
        assert_eq!(
            Plan::choose(&filters[..1], None, &[by_team, also_by_team])
                .unwrap()
                .served_by(),
            "index by-team"
        );
    }

    #[test]
    fn a_cursor_serves_only_the_plan_it_came_from() {
        let gender = [filter("gender", Test::Eq(s("F")))];
        let index_plan = Plan::choose(&gender, None, &[by_gender()]).unwrap();
        let from_index = Cursor::in_index(
            "7",
            IndexPosition {
                index: "by-gender".to_owned(),
                sort: None,
            },
        );
        assert_eq!(index_plan.check_cursor(&from_index), Ok(()));
        assert_eq!(Plan::Scan.check_cursor(&Cursor::after("7")), Ok(()));

        let error = Plan::Scan.check_cursor(&from_index).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`offset` was returned by a list served from index `by-gender`, but this list is \
             served by a scan: use a cursor with the filters and order it came from"
        );
        assert!(index_plan.check_cursor(&Cursor::after("7")).is_err());
        let with_sort = Cursor::in_index(
            "7",
            IndexPosition {
                index: "by-gender".to_owned(),
                sort: Some(serde_json::json!(3)),
            },
        );
        assert!(index_plan.check_cursor(&with_sort).is_err());

        let red = [filter("team", Test::Eq(s("red")))];
        let by_age = Plan::choose(&red, Some(&order("age", false)), &[by_team_age()]).unwrap();
        assert!(
            by_age.check_cursor(&with_sort).is_err(),
            "another index's cursor"
        );
        let age_cursor = |sort: serde_json::Value| {
            Cursor::in_index(
                "7",
                IndexPosition {
                    index: "by-team-age".to_owned(),
                    sort: Some(sort),
                },
            )
        };
        assert_eq!(
            by_age.check_cursor(&age_cursor(serde_json::json!(31))),
            Ok(())
        );
        assert!(
            by_age
                .check_cursor(&age_cursor(serde_json::json!("31")))
                .is_err()
        );
    }
}
