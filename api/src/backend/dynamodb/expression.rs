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

use super::attribute::to_attribute_value;
use crate::query::{Filter, Scalar, Test};
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
        let projection = fields.map(|fields| {
            let id = (!fields.iter().any(|field| field == ID_FIELD)).then_some(ID_FIELD);
            fields
                .iter()
                .map(String::as_str)
                .chain(id)
                .map(|field| placeholders.name(field))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let filter = (!filters.is_empty()).then(|| {
            filters
                .iter()
                .map(|filter| condition(filter, &mut placeholders))
                .collect::<Vec<_>>()
                .join(" AND ")
        });
        let (names, values) = placeholders.into_maps();
        Self {
            projection,
            filter,
            names,
            values,
        }
    }
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

/// The expressions of an UpdateItem that sets some attributes of an
/// existing item.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateExpressions {
    /// `SET #n0 = :v0, #n1 = :v1, ...`
    pub update: String,
    /// Always [`ID_PRESENT`]: an update never creates.
    pub condition: &'static str,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl UpdateExpressions {
    /// `None` when there is nothing to set: DynamoDB has no empty update.
    pub fn set(fields: &Record) -> Option<Self> {
        if fields.is_empty() {
            return None;
        }
        let mut placeholders = Placeholders::new("#n");
        let assignments: Vec<String> = fields
            .iter()
            .map(|(field, value)| {
                let name = placeholders.name(field);
                let value = placeholders.value(to_attribute_value(value));
                format!("{name} = {value}")
            })
            .collect();
        let (names, values) = placeholders.into_maps();
        let mut names = names.unwrap_or_default();
        names.extend(id_name());
        Some(Self {
            update: format!("SET {}", assignments.join(", ")),
            condition: ID_PRESENT,
            names,
            values: values.unwrap_or_default(),
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
        let query = ListQuery::parse(Some(query)).unwrap();
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
        let expressions = UpdateExpressions::set(&fields).unwrap();
        assert_eq!(
            expressions,
            UpdateExpressions {
                update: "SET #n0 = :v0, #n1 = :v1, #n2 = :v2".into(),
                condition: "attribute_exists(#id)",
                names: names(&[
                    ("#n0", "name"),
                    ("#n1", "ttl"),
                    ("#n2", "nested"),
                    ("#id", "id")
                ])
                .unwrap(),
                values: values(&[
                    (":v0", s("n")),
                    (":v1", n("1.50")),
                    (":v2", to_attribute_value(&json!({"a": [null]})),),
                ])
                .unwrap(),
            }
        );
        assert_eq!(UpdateExpressions::set(&Record::new()), None);
    }
}
