//! The DynamoDB expressions of our requests, with placeholders for everything.
//!
//! Every attribute name goes into an expression as a `#name` placeholder and
//! every value as a `:value` placeholder, defined in the request's
//! `ExpressionAttributeNames` and `ExpressionAttributeValues`. Nothing a
//! client sent is ever spliced into expression text, so DynamoDB's reserved
//! words (`name`, `status`, `ttl`, `value`, ...) and names holding `.`, `[`
//! or spaces mean exactly the top-level attribute they spell, and no input
//! can change an expression's structure.
//!
//! The filters follow [`Filter::matches`], the reference semantics every
//! backend reproduces; the one operator whose DynamoDB form differs is `ne`
//! (see [`condition`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::attribute::{to_attribute_value, version_value};
use crate::backend::{VERSION_ATTRIBUTE, Version};
use crate::filter::{Filter, Scalar, Test};
use crate::plan::IndexPlan;
use crate::record::{ID_FIELD, Record};

/// The placeholder of `id` in the conditions of single-record writes.
pub const ID_NAME: &str = "#id";
/// `PutItem`'s condition: never overwrite.
pub const ID_ABSENT: &str = "attribute_not_exists(#id)";
/// `UpdateItem`'s and `DeleteItem`'s condition: never create.
pub const ID_PRESENT: &str = "attribute_exists(#id)";

/// `ExpressionAttributeNames` with only `#id`, for the conditions above.
pub fn id_name() -> HashMap<String, String> {
    HashMap::from([(ID_NAME.to_owned(), ID_FIELD.to_owned())])
}

/// The placeholders of one request's expressions.
///
/// A name used twice (projected and filtered on) gets one placeholder, as
/// DynamoDB refuses a request defining a placeholder its expressions do not
/// use; every value gets its own.
#[derive(Debug)]
pub struct Placeholders {
    name_prefix: &'static str,
    names: HashMap<String, String>,
    placeholder_of_name: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// Names will be `{name_prefix}0`, `{name_prefix}1`...; values `:v0`, `:v1`...
    pub fn new(name_prefix: &'static str) -> Self {
        Self {
            name_prefix,
            names: HashMap::new(),
            placeholder_of_name: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// The placeholder standing for attribute `name`.
    pub fn name(&mut self, name: &str) -> String {
        if let Some(placeholder) = self.placeholder_of_name.get(name) {
            return placeholder.clone();
        }
        let placeholder = format!("{}{}", self.name_prefix, self.names.len());
        self.names.insert(placeholder.clone(), name.to_owned());
        self.placeholder_of_name
            .insert(name.to_owned(), placeholder.clone());
        placeholder
    }

    /// A new placeholder standing for `value`.
    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `ExpressionAttributeNames` and `ExpressionAttributeValues`, each `None`
    /// when empty: DynamoDB refuses an empty map.
    pub fn into_maps(self) -> (NamesMap, ValuesMap) {
        (non_empty(self.names), non_empty(self.values))
    }
}

fn non_empty<V>(map: HashMap<String, V>) -> Option<HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

pub type NamesMap = Option<HashMap<String, String>>;
pub type ValuesMap = Option<HashMap<String, AttributeValue>>;

/// The expressions of a list's Scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanExpressions {
    pub projection: Option<String>,
    pub filter: Option<String>,
    pub names: NamesMap,
    pub values: ValuesMap,
}

impl ScanExpressions {
    /// Projects `fields` plus `id` (a page's cursor is the id of an item it
    /// covered, so the id must come back even when the client did not ask for
    /// it; the backend drops it again), and keeps items passing every filter.
    pub fn new(fields: Option<&[String]>, filters: &[Filter]) -> Self {
        let mut placeholders = Placeholders::new("#f");
        let projection = projection(fields, &[ID_FIELD], &mut placeholders);
        let filter = all_of(filters, &mut placeholders);
        let (names, values) = placeholders.into_maps();
        Self {
            projection,
            filter,
            names,
            values,
        }
    }
}

/// The expressions of a list's Query on a secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexQueryExpressions {
    /// `#f0 = :v0`, and the sort key's condition: `… AND #f1 > :v1`.
    pub key_condition: String,
    pub projection: Option<String>,
    /// The filters on other attributes: DynamoDB refuses a filter
    /// expression naming the index's key attributes.
    pub filter: Option<String>,
    pub names: NamesMap,
    pub values: ValuesMap,
}

impl IndexQueryExpressions {
    /// Projects `fields` plus `id` and the index's keys (a page's cursor is
    /// the position of an item it covered in the index).
    pub fn new(fields: Option<&[String]>, plan: &IndexPlan) -> Self {
        let mut placeholders = Placeholders::new("#f");
        let partition = Filter {
            field: plan.index.partition_key.name.clone(),
            test: Test::Eq(plan.partition.clone()),
        };
        let mut key_condition = condition(&partition, &mut placeholders);
        if let (Some(key), Some(test)) = (&plan.index.sort_key, &plan.sort_condition) {
            let sort = Filter {
                field: key.name.clone(),
                test: test.clone(),
            };
            key_condition.push_str(" AND ");
            key_condition.push_str(&condition(&sort, &mut placeholders));
        }
        let keys: Vec<&str> = std::iter::once(ID_FIELD)
            .chain(plan.index.keys().map(|key| key.name.as_str()))
            .collect();
        let projection = projection(fields, &keys, &mut placeholders);
        let filter = all_of(&plan.remaining, &mut placeholders);
        let (names, values) = placeholders.into_maps();
        Self {
            key_condition,
            projection,
            filter,
            names,
            values,
        }
    }
}

/// A projection of `fields` plus the attributes the backend itself needs
/// (`always`), or `None` for whole items.
fn projection(
    fields: Option<&[String]>,
    always: &[&str],
    placeholders: &mut Placeholders,
) -> Option<String> {
    fields.map(|fields| {
        let extra = always
            .iter()
            .filter(|name| !fields.iter().any(|field| field == *name))
            .copied();
        fields
            .iter()
            .map(String::as_str)
            .chain(extra)
            .map(|field| placeholders.name(field))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// `filters` as one condition, or `None` when there are none.
fn all_of(filters: &[Filter], placeholders: &mut Placeholders) -> Option<String> {
    (!filters.is_empty()).then(|| {
        filters
            .iter()
            .map(|filter| condition(filter, placeholders))
            .collect::<Vec<_>>()
            .join(" AND ")
    })
}

/// One filter as a condition expression.
///
/// The conditions of a list are joined with `AND` alone, so none needs
/// parentheses (DynamoDB refuses redundant ones). `ne` adds
/// `attribute_exists`: in DynamoDB `<>` holds for a missing attribute, while
/// our semantics, like every other comparison's, say a missing attribute
/// passes no comparison.
pub fn condition(filter: &Filter, placeholders: &mut Placeholders) -> String {
    let name = placeholders.name(&filter.field);
    let mut value = |operand: AttributeValue| placeholders.value(operand);
    let scalar = |operand: &Scalar| to_attribute_value(&operand.to_json());
    match &filter.test {
        Test::Eq(operand) => format!("{name} = {}", value(scalar(operand))),
        Test::Ne(operand) => format!(
            "attribute_exists({name}) AND {name} <> {}",
            value(scalar(operand))
        ),
        Test::Lt(operand) => format!("{name} < {}", value(scalar(operand))),
        Test::Le(operand) => format!("{name} <= {}", value(scalar(operand))),
        Test::Gt(operand) => format!("{name} > {}", value(scalar(operand))),
        Test::Ge(operand) => format!("{name} >= {}", value(scalar(operand))),
        Test::BeginsWith(prefix) => format!(
            "begins_with({name}, {})",
            value(AttributeValue::S(prefix.clone()))
        ),
        Test::Contains(operand) => format!("contains({name}, {})", value(scalar(operand))),
        Test::Exists => format!("attribute_exists({name})"),
        Test::NotExists => format!("attribute_not_exists({name})"),
    }
}

/// The placeholder of [`VERSION_ATTRIBUTE`] in single-record writes.
pub const VERSION_NAME: &str = "#ver";

/// The condition of an UpdateItem or DeleteItem: the item exists ([`ID_PRESENT`],
/// a write never creates) and, when `If-Match` named versions, is at one of them:
///
/// `attribute_exists(#id) AND (#ver IN (:e0, :e1) OR attribute_not_exists(#ver))`
///
/// `IN` becomes `=` for one version, and the `attribute_not_exists` branch is
/// there only when version 0 (an item another tool wrote) is expected. When
/// no version at all is expected, the condition can never hold:
/// `attribute_exists(#id) AND attribute_not_exists(#id)`, so the call still
/// fails atomically and its `ALL_OLD` tells 404 from 412.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteCondition {
    pub condition: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl WriteCondition {
    /// `expected`: `None` for any version.
    pub fn new(expected: Option<&[Version]>) -> Self {
        let mut names = id_name();
        let mut values = HashMap::new();
        let condition = match expected {
            None => ID_PRESENT.to_owned(),
            Some([]) => format!("{ID_PRESENT} AND {ID_ABSENT}"),
            Some(versions) => {
                names.insert(VERSION_NAME.to_owned(), VERSION_ATTRIBUTE.to_owned());
                let placeholders: Vec<String> = versions
                    .iter()
                    .enumerate()
                    .map(|(i, version)| {
                        let placeholder = format!(":e{i}");
                        values.insert(placeholder.clone(), version_value(*version));
                        placeholder
                    })
                    .collect();
                let mut test = match placeholders.as_slice() {
                    [one] => format!("{VERSION_NAME} = {one}"),
                    many => format!("{VERSION_NAME} IN ({})", many.join(", ")),
                };
                if versions.contains(&Version::UNWRITTEN) {
                    test.push_str(&format!(" OR attribute_not_exists({VERSION_NAME})"));
                }
                format!("{ID_PRESENT} AND ({test})")
            }
        };
        Self {
            condition,
            names,
            values,
        }
    }
}

/// The expressions of an UpdateItem that sets some attributes of an
/// existing item and counts the write in its version.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateExpressions {
    /// `SET #n0 = :v0, #n1 = :v1, ..., #ver = if_not_exists(#ver, :zero) + :one`
    pub update: String,
    /// The [`WriteCondition`].
    pub condition: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl UpdateExpressions {
    /// `None` when there is nothing to set: DynamoDB has no empty update. The
    /// version attribute among `fields` is ignored: only the API writes it.
    pub fn set(fields: &Record, expected: Option<&[Version]>) -> Option<Self> {
        let fields: Vec<_> = fields
            .iter()
            .filter(|(field, _)| *field != VERSION_ATTRIBUTE)
            .collect();
        if fields.is_empty() {
            return None;
        }
        let mut placeholders = Placeholders::new("#n");
        let mut assignments: Vec<String> = fields
            .into_iter()
            .map(|(field, value)| {
                let name = placeholders.name(field);
                let value = placeholders.value(to_attribute_value(value));
                format!("{name} = {value}")
            })
            .collect();
        // An item another tool wrote has no version: its first update makes it 1.
        assignments.push(format!(
            "{VERSION_NAME} = if_not_exists({VERSION_NAME}, :zero) + :one"
        ));
        let (names, values) = placeholders.into_maps();
        let condition = WriteCondition::new(expected);
        let mut names = names.unwrap_or_default();
        names.extend(condition.names);
        names.insert(VERSION_NAME.to_owned(), VERSION_ATTRIBUTE.to_owned());
        let mut values = values.unwrap_or_default();
        values.extend(condition.values);
        values.insert(":zero".to_owned(), version_value(Version::UNWRITTEN));
        values.insert(":one".to_owned(), AttributeValue::N("1".to_owned()));
        Some(Self {
            update: format!("SET {}", assignments.join(", ")),
            condition: condition.condition,
            names,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::query::ListQuery;

    fn names(pairs: &[(&str, &str)]) -> NamesMap {
        Some(
            pairs
                .iter()
                .map(|(placeholder, name)| ((*placeholder).to_owned(), (*name).to_owned()))
                .collect(),
        )
    }

    fn values(pairs: &[(&str, AttributeValue)]) -> ValuesMap {
        Some(
            pairs
                .iter()
                .map(|(placeholder, value)| ((*placeholder).to_owned(), value.clone()))
                .collect(),
        )
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }
    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(text.to_owned())
    }

    /// The Scan expressions for the query string `query`.
    fn check(query: &str, expected: ScanExpressions) {
        let query = ListQuery::parse(Some(query), &[]).unwrap();
        let built = ScanExpressions::new(query.fields.as_deref(), &query.filters);
        assert_eq!(built, expected, "?{query:?}");
    }

    fn filter_only(filter: &str, names: NamesMap, values: ValuesMap) -> ScanExpressions {
        ScanExpressions {
            projection: None,
            filter: Some(filter.to_owned()),
            names,
            values,
        }
    }

    #[test]
    fn no_fields_no_filters_no_expressions() {
        check(
            "limit=5",
            ScanExpressions {
                projection: None,
                filter: None,
                names: None,
                values: None,
            },
        );
    }

    #[test]
    fn projection_always_includes_id_once() {
        check(
            "fields=name,status",
            ScanExpressions {
                projection: Some("#f0, #f1, #f2".into()),
                filter: None,
                names: names(&[("#f0", "name"), ("#f1", "status"), ("#f2", "id")]),
                values: None,
            },
        );
        check(
            "fields=id,ttl",
            ScanExpressions {
                projection: Some("#f0, #f1".into()),
                filter: None,
                names: names(&[("#f0", "id"), ("#f1", "ttl")]),
                values: None,
            },
        );
    }

    #[test]
    fn every_operator_uses_placeholders() {
        let name = || names(&[("#f0", "name")]);
        check(
            "filters=name:eq:x",
            filter_only("#f0 = :v0", name(), values(&[(":v0", s("x"))])),
        );
        check(
            "filters=name:ne:x",
            filter_only(
                "attribute_exists(#f0) AND #f0 <> :v0",
                name(),
                values(&[(":v0", s("x"))]),
            ),
        );
        check(
            "filters=name:lt:x",
            filter_only("#f0 < :v0", name(), values(&[(":v0", s("x"))])),
        );
        check(
            "filters=name:le:5.50",
            filter_only("#f0 <= :v0", name(), values(&[(":v0", n("5.50"))])),
        );
        check(
            "filters=name:gt:-1e-7",
            filter_only("#f0 > :v0", name(), values(&[(":v0", n("-1e-7"))])),
        );
        check(
            "filters=name:ge:12345678901234567890",
            filter_only(
                "#f0 >= :v0",
                name(),
                values(&[(":v0", n("12345678901234567890"))]),
            ),
        );
        check(
            "filters=name:begins_with:Gas",
            filter_only(
                "begins_with(#f0, :v0)",
                name(),
                values(&[(":v0", s("Gas"))]),
            ),
        );
        check(
            "filters=name:contains:true",
            filter_only(
                "contains(#f0, :v0)",
                name(),
                values(&[(":v0", AttributeValue::Bool(true))]),
            ),
        );
        check(
            "filters=name:eq:null",
            filter_only(
                "#f0 = :v0",
                name(),
                values(&[(":v0", AttributeValue::Null(true))]),
            ),
        );
        check(
            "filters=name:exists",
            filter_only("attribute_exists(#f0)", name(), None),
        );
        check(
            "filters=name:not_exists",
            filter_only("attribute_not_exists(#f0)", name(), None),
        );
    }

    #[test]
    fn request_text_never_reaches_an_expression() {
        let hostile = r#"[["a) OR (b","eq",") OR attribute_exists(id"]]"#;
        let encoded = form_urlencoded::Serializer::new(String::new())
            .append_pair("filters", hostile)
            .finish();
        check(
            &encoded,
            filter_only(
                "#f0 = :v0",
                names(&[("#f0", "a) OR (b")]),
                values(&[(":v0", s(") OR attribute_exists(id"))]),
            ),
        );
    }

    #[test]
    fn conditions_join_with_and_sharing_name_placeholders() {
        check(
            "fields=value,name&filters=value:gt:10,status:eq:active,value:ne:99",
            ScanExpressions {
                projection: Some("#f0, #f1, #f2".into()),
                filter: Some(
                    "#f0 > :v0 AND #f3 = :v1 AND attribute_exists(#f0) AND #f0 <> :v2".into(),
                ),
                names: names(&[
                    ("#f0", "value"),
                    ("#f1", "name"),
                    ("#f2", "id"),
                    ("#f3", "status"),
                ]),
                values: values(&[(":v0", n("10")), (":v1", s("active")), (":v2", n("99"))]),
            },
        );
    }

    #[test]
    fn updates_set_each_field_and_require_the_item() {
        let fields: Record =
            serde_json::from_str(r#"{"name":"n","ttl":1.50,"nested":{"a":[null]}}"#).unwrap();
        let expressions = UpdateExpressions::set(&fields, None).unwrap();
        assert_eq!(
            expressions,
            UpdateExpressions {
                update: "SET #n0 = :v0, #n1 = :v1, #n2 = :v2, \
                         #ver = if_not_exists(#ver, :zero) + :one"
                    .into(),
                condition: "attribute_exists(#id)".into(),
                names: names(&[
                    ("#n0", "name"),
                    ("#n1", "ttl"),
                    ("#n2", "nested"),
                    ("#id", "id"),
                    ("#ver", "_version"),
                ])
                .unwrap(),
                values: values(&[
                    (":v0", s("n")),
                    (":v1", n("1.50")),
                    (":v2", to_attribute_value(&json!({"a": [null]})),),
                    (":zero", n("0")),
                    (":one", n("1")),
                ])
                .unwrap(),
            }
        );
        assert_eq!(UpdateExpressions::set(&Record::new(), None), None);
        let only_version: Record = serde_json::from_str(r#"{"_version":9}"#).unwrap();
        assert_eq!(
            UpdateExpressions::set(&only_version, None),
            None,
            "the version attribute is never set from a body"
        );
    }

    #[test]
    fn if_match_becomes_a_condition_on_the_version() {
        let versions = |numbers: &[u64]| -> Vec<Version> {
            numbers.iter().copied().map(Version::new).collect()
        };
        let check = |expected: Option<&[Version]>, condition: &str, vals: ValuesMap| {
            let built = WriteCondition::new(expected);
            assert_eq!(built.condition, condition, "{expected:?}");
            assert_eq!(non_empty(built.values), vals, "{expected:?}");
            let uses_version = condition.contains("#ver");
            assert_eq!(built.names.contains_key("#ver"), uses_version);
        };
        check(None, "attribute_exists(#id)", None);
        check(
            Some(&versions(&[3])),
            "attribute_exists(#id) AND (#ver = :e0)",
            values(&[(":e0", n("3"))]),
        );
        check(
            Some(&versions(&[3, 5])),
            "attribute_exists(#id) AND (#ver IN (:e0, :e1))",
            values(&[(":e0", n("3")), (":e1", n("5"))]),
        );
        check(
            Some(&versions(&[0])),
            "attribute_exists(#id) AND (#ver = :e0 OR attribute_not_exists(#ver))",
            values(&[(":e0", n("0"))]),
        );
        check(
            Some(&[]),
            "attribute_exists(#id) AND attribute_not_exists(#id)",
            None,
        );
        let fields: Record = serde_json::from_str(r#"{"a":1}"#).unwrap();
        let update = UpdateExpressions::set(&fields, Some(&versions(&[4]))).unwrap();
        assert_eq!(update.condition, "attribute_exists(#id) AND (#ver = :e0)");
        assert_eq!(update.values.get(":e0"), Some(&n("4")));
    }
}

#[cfg(test)]
mod index_query_tests {
    use super::*;
    use crate::index::{IndexConfig, KeyAttribute, KeyKind};
    use crate::plan::Plan;
    use crate::query::ListQuery;

    /// DynamoDB refuses a filter expression naming a key attribute of the
    /// index a Query reads (Query API reference, FilterExpression: "A
    /// FilterExpression does not allow key attributes"): the keys' conditions
    /// are the key condition, every other filter the filter expression.
    #[test]
    fn key_attributes_are_in_the_key_condition_only() {
        let indexes = [IndexConfig {
            name: "by-team-age".to_owned(),
            partition_key: KeyAttribute {
                name: "team".to_owned(),
                kind: KeyKind::String,
            },
            sort_key: Some(KeyAttribute {
                name: "age".to_owned(),
                kind: KeyKind::Number,
            }),
        }];
        let query = ListQuery::parse(
            Some("fields=name&filters=name:begins_with:A,team:eq:red,age:le:40,ok:eq:true"),
            &indexes,
        )
        .unwrap();
        let Plan::Index(plan) = &query.plan else {
            panic!("{:?}", query.plan)
        };
        let built = IndexQueryExpressions::new(query.fields.as_deref(), plan);
        assert_eq!(built.key_condition, "#f0 = :v0 AND #f1 <= :v1");
        assert_eq!(
            built.projection.as_deref(),
            Some("#f2, #f3, #f0, #f1"),
            "the fields, then id and the index keys for the cursor"
        );
        assert_eq!(
            built.filter.as_deref(),
            Some("begins_with(#f2, :v2) AND #f4 = :v3")
        );
        let names = built.names.unwrap();
        for (placeholder, name) in [
            ("#f0", "team"),
            ("#f1", "age"),
            ("#f2", "name"),
            ("#f3", "id"),
            ("#f4", "ok"),
        ] {
            assert_eq!(names[placeholder], name);
        }
        let filter = built.filter.unwrap();
        assert!(
            !filter.contains("#f0") && !filter.contains("#f1"),
            "{filter}"
        );
        assert_eq!(
            built.values.unwrap()[":v1"],
            AttributeValue::N("40".to_owned())
        );
    }
}
