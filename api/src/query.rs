//! The list query language: `limit`, `offset`, `fields`, `filters` and `order`.
//!
//! A query string is parsed once, here, into a [`ListQuery`]; backends receive
//! that typed value and never see raw strings. This module also holds the
//! reference semantics of a filter ([`Filter::matches`]), which follow
//! DynamoDB's condition expressions so every backend returns the same records.

use serde_json::Value;
use thiserror::Error;

use crate::cursor::Cursor;
use crate::filter::{Filter, Scalar, Test};
use crate::index::IndexConfig;
use crate::plan::{Order, Plan, PlanError};
use crate::record::{MAX_ATTRIBUTE_NAME_LEN, Record, VERSION_ATTRIBUTE, shorten};

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 100;
/// Most attribute names accepted in `fields`.
pub const MAX_FIELDS: usize = 100;
/// Most conditions accepted in `filters`.
pub const MAX_FILTERS: usize = 20;

/// A parsed list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Most records in the page, 1 to [`MAX_LIMIT`].
    pub limit: usize,
    /// Where the page starts; `None` for the first page.
    pub after: Option<Cursor>,
    /// Attributes to return; `None` returns whole records.
    pub fields: Option<Vec<String>>,
    /// Conditions a record must all meet to be listed.
    pub filters: Vec<Filter>,
    /// `order=attr` or `order=-attr`: served by an index sorting by it.
    pub order: Option<Order>,
    /// How the list is served: chosen from the filters, the order and the
    /// resource's indexes, when the query is parsed.
    pub plan: Plan,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
            fields: None,
            filters: Vec::new(),
            order: None,
            plan: Plan::Scan,
        }
    }
}

const OPERATORS: &str = "eq, ne, lt, le, gt, ge, begins_with, contains, exists, not_exists";

/// Why a list query was refused. Each message names the parameter at fault.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidQuery {
    #[error("`limit` must be an integer from 1 to {MAX_LIMIT}, got {0:?}")]
    Limit(String),
    #[error("`offset` is not a cursor returned by this API: {0:?}")]
    Offset(String),
    #[error("`fields`: {0}")]
    Fields(String),
    #[error("`filters`: {0}")]
    Filters(String),
    #[error("`order` must be an attribute name, or `-` and one for descending order, got {0:?}")]
    OrderSyntax(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "unknown query parameter `{0}`; a list accepts limit, offset, fields, filters and order"
    )]
    UnknownParameter(String),
    #[error("query parameter `{0}` is given more than once")]
    Repeated(String),
}

impl ListQuery {
    /// Parses the raw query string of a list request (`None` when the URL
    /// has none) on a resource with `indexes`, and plans it.
    pub fn parse(raw: Option<&str>, indexes: &[IndexConfig]) -> Result<Self, InvalidQuery> {
        let mut query = Self::default();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if seen.iter().any(|s| *s == name) {
                return Err(InvalidQuery::Repeated(shorten(&name)));
            }
            seen.push(name.to_string());
            match &*name {
                "limit" => query.limit = parse_limit(&value)?,
                "offset" => query.after = parse_offset(&value)?,
                "fields" => query.fields = parse_fields(&value)?,
                "filters" => {
                    query.filters = parse_filters(&value).map_err(InvalidQuery::Filters)?
                }
                "order" => query.order = parse_order(&value)?,
                _ => return Err(InvalidQuery::UnknownParameter(shorten(&name))),
            }
        }
        query.plan = Plan::choose(&query.filters, query.order.as_ref(), indexes)?;
        if let Some(cursor) = &query.after {
            query.plan.check_cursor(cursor)?;
        }
        Ok(query)
    }
}

fn parse_limit(raw: &str) -> Result<usize, InvalidQuery> {
    match raw.parse::<usize>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(InvalidQuery::Limit(shorten(raw))),
    }
}

fn parse_offset(raw: &str) -> Result<Option<Cursor>, InvalidQuery> {
    // The original took a numeric offset; `0` and empty still mean "from the start".
    if raw.is_empty() || raw == "0" {
        return Ok(None);
    }
    Cursor::decode(raw)
        .map(Some)
        .map_err(|_| InvalidQuery::Offset(shorten(raw)))
}

fn parse_order(raw: &str) -> Result<Option<Order>, InvalidQuery> {
    if raw.is_empty() {
        return Ok(None);
    }
    let (descending, attribute) = match raw.strip_prefix('-') {
        Some(attribute) => (true, attribute),
        None => (false, raw),
    };
    if attribute.is_empty() || check_field_name(attribute).is_err() {
        return Err(InvalidQuery::OrderSyntax(shorten(raw)));
    }
    Ok(Some(Order {
        attribute: attribute.to_owned(),
        descending,
    }))
}

fn parse_fields(raw: &str) -> Result<Option<Vec<String>>, InvalidQuery> {
    // As in the original, an empty `fields` means whole records.
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let mut fields: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim) {
        check_field_name(name).map_err(InvalidQuery::Fields)?;
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_owned());
        }
    }
    if fields.len() > MAX_FIELDS {
        return Err(InvalidQuery::Fields(format!(
            "at most {MAX_FIELDS} attribute names, got {}",
            fields.len()
        )));
    }
    Ok(Some(fields))
}

fn check_field_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("an attribute name is empty".to_owned())
    } else if name.chars().count() > MAX_ATTRIBUTE_NAME_LEN {
        Err(format!(
            "attribute name {:?} is longer than {MAX_ATTRIBUTE_NAME_LEN} characters",
            shorten(name)
        ))
    } else {
        Ok(())
    }
}

fn parse_filters(raw: &str) -> Result<Vec<Filter>, String> {
    // Like an empty `fields` or `offset`: no condition (forms send `filters=`).
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let filters = if raw.trim_start().starts_with('[') {
        parse_json_filters(raw)?
    } else {
        parse_compact_filters(raw)?
    };
    if filters.len() > MAX_FILTERS {
        return Err(format!(
            "at most {MAX_FILTERS} conditions, got {}",
            filters.len()
        ));
    }
    // Records never show it, yet DynamoDB would evaluate a filter on the
    // stored attribute: the backends would disagree. (A `fields` naming it is
    // harmless: every backend strips it, so it selects nothing.)
    if filters
        .iter()
        .any(|filter| filter.field == VERSION_ATTRIBUTE)
    {
        return Err(format!(
            "`{VERSION_ATTRIBUTE}` is maintained by the API and cannot be filtered on; a \
             record's version is its ETag"
        ));
    }
    Ok(filters)
}

/// The original's form: `[["gender","eq","F"],["value","gt",10]]`.
fn parse_json_filters(raw: &str) -> Result<Vec<Filter>, String> {
    let triples: Vec<Vec<Value>> = serde_json::from_str(raw)
        .map_err(|err| format!("not a JSON array of [field, operator, value] arrays ({err})"))?;
    triples
        .into_iter()
        .map(|triple| {
            let text = Value::Array(triple.clone()).to_string();
            let (field, operator, operand) = match triple.as_slice() {
                [Value::String(f), Value::String(o)] => (f, o, None),
                [Value::String(f), Value::String(o), v] => (f, o, Some(json_scalar(v, &text)?)),
                _ => {
                    return Err(format!(
                        "{} should be [field, operator, value] with string field and operator",
                        shorten(&text)
                    ));
                }
            };
            build_filter(field, operator, operand, &text)
        })
        .collect()
}

fn json_scalar(value: &Value, condition: &str) -> Result<Scalar, String> {
    match value {
        Value::String(s) => Ok(Scalar::String(s.clone())),
        Value::Number(n) => Ok(Scalar::Number(n.clone())),
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Null => Ok(Scalar::Null),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "in {}, the value must be a string, number, boolean or null",
            shorten(condition)
        )),
    }
}

/// The compact form: `gender:eq:F,value:gt:10,"a,b":exists`.
fn parse_compact_filters(raw: &str) -> Result<Vec<Filter>, String> {
    let mut filters = Vec::new();
    let mut rest = raw;
    loop {
        let (filter, after) = parse_compact_condition(rest)?;
        filters.push(filter);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => return Ok(filters),
        }
    }
}

/// Parses one `field:operator[:value]` condition from the start of `input`,
/// returning it and the input after it (which is empty or starts with `,`).
fn parse_compact_condition(input: &str) -> Result<(Filter, &str), String> {
    let condition_text = |rest: &str| input[..input.len() - rest.len()].to_owned();
    let (field, rest) = take_token(input, &[':', ','])?;
    let Some(rest) = rest.strip_prefix(':') else {
        return Err(format!(
            "{:?} should be field:operator or field:operator:value",
            shorten(&condition_text(rest))
        ));
    };
    let (operator, rest) = take_token(rest, &[':', ','])?;
    let (operand, rest) = match rest.strip_prefix(':') {
        // A bare value runs to the next comma, so `time:eq:12:30` needs no quotes.
        Some(value) => {
            let (token, rest) = take_token(value, &[','])?;
            (Some(compact_scalar(token)), rest)
        }
        None => (None, rest),
    };
    let filter = build_filter(&field.text, &operator.text, operand, &condition_text(rest))?;
    Ok((filter, rest))
}

struct Token {
    text: String,
    quoted: bool,
}

/// Reads a bare token up to one of `stops`, or a double-quoted JSON string.
fn take_token<'a>(input: &'a str, stops: &[char]) -> Result<(Token, &'a str), String> {
    if let Some(quoted) = input.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    let literal = &input[..i + 2];
                    let text: String = serde_json::from_str(literal)
                        .map_err(|err| format!("bad quoted string {}: {err}", shorten(literal)))?;
                    return Ok((Token { text, quoted: true }, &quoted[i + 1..]));
                }
                _ => {}
            }
        }
        return Err(format!("unterminated quote in {}", shorten(input)));
    }
    let end = input.find(stops).unwrap_or(input.len());
    let text = &input[..end];
    if text.contains('"') {
        return Err(format!(
            "{:?}: a quote may only open a quoted field or value",
            shorten(text)
        ));
    }
    Ok((
        Token {
            text: text.to_owned(),
            quoted: false,
        },
        &input[end..],
    ))
}

/// An unquoted value that reads as a JSON number, `true`, `false` or `null` is
/// that; anything else (or anything quoted) is a string.
fn compact_scalar(token: Token) -> Scalar {
    if !token.quoted {
        match serde_json::from_str::<Value>(&token.text) {
            Ok(Value::Number(n)) => return Scalar::Number(n),
            Ok(Value::Bool(b)) => return Scalar::Bool(b),
            Ok(Value::Null) => return Scalar::Null,
            _ => {}
        }
    }
    Scalar::String(token.text)
}

fn build_filter(
    field: &str,
    operator: &str,
    operand: Option<Scalar>,
    condition: &str,
) -> Result<Filter, String> {
    let condition = shorten(condition);
    check_field_name(field).map_err(|problem| format!("in {condition:?}, {problem}"))?;
    let needs_value = |operand: Option<Scalar>| {
        operand.ok_or_else(|| format!("in {condition:?}, operator `{operator}` needs a value"))
    };
    let ordered = |operand: Option<Scalar>| match needs_value(operand)? {
        scalar @ (Scalar::String(_) | Scalar::Number(_)) => Ok(scalar),
        other => Err(format!(
            "in {condition:?}, `{operator}` compares numbers or strings, not {}",
            other.kind()
        )),
    };
    let no_value = |operand: Option<Scalar>, test: Test| match operand {
        None => Ok(test),
        Some(_) => Err(format!(
            "in {condition:?}, operator `{operator}` takes no value"
        )),
    };
    let test = match operator {
        "eq" => Test::Eq(needs_value(operand)?),
        "ne" => Test::Ne(needs_value(operand)?),
        "lt" => Test::Lt(ordered(operand)?),
        "le" => Test::Le(ordered(operand)?),
        "gt" => Test::Gt(ordered(operand)?),
        "ge" => Test::Ge(ordered(operand)?),
        "begins_with" => match needs_value(operand)? {
            Scalar::String(prefix) => Test::BeginsWith(prefix),
            other => {
                return Err(format!(
                    "in {condition:?}, `begins_with` needs a string, not {} (quote it: \"…\")",
                    other.kind()
                ));
            }
        },
        "contains" => Test::Contains(needs_value(operand)?),
        "exists" => no_value(operand, Test::Exists)?,
        "not_exists" => no_value(operand, Test::NotExists)?,
        unknown => {
            return Err(format!(
                "in {condition:?}, unknown operator `{}`; expected one of {OPERATORS}",
                shorten(unknown)
            ));
        }
    };
    Ok(Filter {
        field: field.to_owned(),
        test,
    })
}

/// Keeps only the attributes named in `fields` (those the record has).
pub fn project(record: &Record, fields: &[String]) -> Record {
    fields
        .iter()
        .filter_map(|name| Some((name.clone(), record.get(name)?.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(field: &str, test: Test) -> Filter {
        Filter {
            field: field.into(),
            test,
        }
    }
    fn s(text: &str) -> Scalar {
        Scalar::String(text.into())
    }
    fn n(value: Value) -> Scalar {
        match value {
            Value::Number(n) => Scalar::Number(n),
            other => panic!("not a number: {other}"),
        }
    }

    /// Parses `input` as the `filters` parameter and compares with `expected`.
    fn check_filters(input: &str, expected: Result<Vec<Filter>, &str>) {
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("filters", input)
            .finish();
        let parsed = ListQuery::parse(Some(&encoded), &[]).map(|q| q.filters);
        match expected {
            Ok(filters) => assert_eq!(parsed, Ok(filters), "filters={input}"),
            Err(fragment) => {
                let message = parsed.expect_err(input).to_string();
                assert!(
                    message.starts_with("`filters`") && message.contains(fragment),
                    "filters={input}: {message:?} lacks {fragment:?}"
                );
            }
        }
    }

    #[test]
    fn compact_filters() {
        check_filters(
            "gender:eq:F,value:gt:10",
            Ok(vec![
                filter("gender", Test::Eq(s("F"))),
                filter("value", Test::Gt(n(json!(10)))),
            ]),
        );
        check_filters(
            "value:le:1.5",
            Ok(vec![filter("value", Test::Le(n(json!(1.5))))]),
        );
        check_filters(
            "value:ge:-1e-7",
            Ok(vec![filter("value", Test::Ge(n(json!(-1e-7))))]),
        );
        check_filters(
            "code:eq:\"10\"",
            Ok(vec![filter("code", Test::Eq(s("10")))]),
        );
        check_filters(
            "ok:eq:true",
            Ok(vec![filter("ok", Test::Eq(Scalar::Bool(true)))]),
        );
        check_filters("x:ne:null", Ok(vec![filter("x", Test::Ne(Scalar::Null))]));
        check_filters(
            "time:eq:12:30",
            Ok(vec![filter("time", Test::Eq(s("12:30")))]),
        );
        check_filters(
            r#"name:eq:"Gas, \"Station\"",ttl:exists"#,
            Ok(vec![
                filter("name", Test::Eq(s("Gas, \"Station\""))),
                filter("ttl", Test::Exists),
            ]),
        );
        check_filters(
            r#""a:b":not_exists,name:begins_with:Gas"#,
            Ok(vec![
                filter("a:b", Test::NotExists),
                filter("name", Test::BeginsWith("Gas".into())),
            ]),
        );
        check_filters(
            "tags:contains:7",
            Ok(vec![filter("tags", Test::Contains(n(json!(7))))]),
        );
        check_filters("x:lt:b", Ok(vec![filter("x", Test::Lt(s("b")))]));
        check_filters("name:eq:", Ok(vec![filter("name", Test::Eq(s("")))]));
    }

    #[test]
    fn json_filters() {
        check_filters(
            r#"[["gender","eq","F"],["value","gt",10],["ttl","exists"]]"#,
            Ok(vec![
                filter("gender", Test::Eq(s("F"))),
                filter("value", Test::Gt(n(json!(10)))),
                filter("ttl", Test::Exists),
            ]),
        );
        check_filters(
            r#"[["code","eq","10"]]"#,
            Ok(vec![filter("code", Test::Eq(s("10")))]),
        );
        check_filters("[]", Ok(vec![]));
        check_filters("[[", Err("not a JSON array"));
        check_filters(r#"[["a"]]"#, Err("should be [field, operator, value]"));
        check_filters(r#"[[1,"eq",2]]"#, Err("should be [field, operator, value]"));
        check_filters(
            r#"[["a","eq",[1]]]"#,
            Err("must be a string, number, boolean or null"),
        );
        check_filters(r#"[["a","like","x"]]"#, Err("unknown operator `like`"));
    }

    #[test]
    fn malformed_filters_are_named() {
        check_filters("gender", Err("should be field:operator"));
        check_filters("gender,x:exists", Err("should be field:operator"));
        check_filters(
            "gender:like:F",
            Err("unknown operator `like`; expected one of eq"),
        );
        check_filters("value:gt", Err("operator `gt` needs a value"));
        check_filters("ttl:exists:1", Err("operator `exists` takes no value"));
        check_filters(
            "ok:gt:true",
            Err("`gt` compares numbers or strings, not a boolean"),
        );
        check_filters(
            "name:begins_with:10",
            Err("`begins_with` needs a string, not a number"),
        );
        check_filters(":eq:1", Err("an attribute name is empty"));
        check_filters("\"abc:eq:1", Err("unterminated quote"));
        check_filters("a\"b:eq:1", Err("a quote may only open"));
        check_filters(",", Err("should be field:operator"));
        // Empty, like an empty `fields`, means no condition.
        check_filters("", Ok(Vec::new()));
        check_filters("  ", Ok(Vec::new()));
        check_filters("a:exists,", Err("should be field:operator"));
        let many = vec!["a:exists"; MAX_FILTERS + 1].join(",");
        check_filters(&many, Err("at most 20 conditions, got 21"));
    }

    fn check_query(input: &str, expected: Result<ListQuery, &str>) {
        let parsed = ListQuery::parse(Some(input), &[]);
        match expected {
            Ok(query) => assert_eq!(parsed, Ok(query), "?{input}"),
            Err(message) => {
                assert_eq!(
                    parsed.map_err(|e| e.to_string()),
                    Err(message.to_owned()),
                    "?{input}"
                )
            }
        }
    }

    #[test]
    fn limit_offset_fields() {
        let cursor = Cursor::after("000-2");
        check_query("", Ok(ListQuery::default()));
        check_query(
            "limit=7",
            Ok(ListQuery {
                limit: 7,
                ..Default::default()
            }),
        );
        check_query(
            "limit=100",
            Ok(ListQuery {
                limit: 100,
                ..Default::default()
            }),
        );
        check_query("offset=", Ok(ListQuery::default()));
        check_query("offset=0", Ok(ListQuery::default()));
        check_query(
            &format!("offset={}", cursor.encode()),
            Ok(ListQuery {
                after: Some(cursor),
                ..Default::default()
            }),
        );
        check_query(
            "fields=id,%20name,id",
            Ok(ListQuery {
                fields: Some(vec!["id".into(), "name".into()]),
                ..Default::default()
            }),
        );
        check_query(
            "limit=abc",
            Err(r#"`limit` must be an integer from 1 to 100, got "abc""#),
        );
        check_query(
            "limit=-1",
            Err(r#"`limit` must be an integer from 1 to 100, got "-1""#),
        );
        check_query(
            "limit=0",
            Err(r#"`limit` must be an integer from 1 to 100, got "0""#),
        );
        check_query(
            "limit=1000000",
            Err(r#"`limit` must be an integer from 1 to 100, got "1000000""#),
        );
        check_query(
            "limit=",
            Err(r#"`limit` must be an integer from 1 to 100, got """#),
        );
        check_query(
            "offset=garbage!",
            Err(r#"`offset` is not a cursor returned by this API: "garbage!""#),
        );
        check_query(
            "fields=id,,name",
            Err("`fields`: an attribute name is empty"),
        );
        check_query("fields=", Ok(ListQuery::default()));
        check_query(
            "limt=5",
            Err(
                "unknown query parameter `limt`; a list accepts limit, offset, fields, filters and order",
            ),
        );
        check_query(
            "limit=1&limit=2",
            Err("query parameter `limit` is given more than once"),
        );
    }

    #[test]
    fn filter_semantics_follow_dynamodb() {
        let record = json!({
            "id": "000-1", "name": "Gas Station", "value": 1.5, "big": 12345678901234567890u64,
            "ok": true, "none": null, "tags": ["a", 7], "nested": {"a": 1}
        });
        let record = record.as_object().unwrap();
        let check = |text: &str, expected: bool| {
            let query = ListQuery::parse(
                Some(
                    &form_urlencoded::Serializer::new(String::new())
                        .append_pair("filters", text)
                        .finish(),
                ),
                &[],
            )
            .unwrap();
            assert_eq!(query.filters[0].matches(record), expected, "{text}");
        };
        check("name:eq:Gas Station", true);
        check("name:eq:gas station", false);
        check("value:eq:1.50", true);
        check("value:eq:\"1.5\"", false);
        check("value:gt:1", true);
        check("value:lt:1.5", false);
        check("value:le:1.5", true);
        check("value:ge:2", false);
        check("big:gt:12345678901234567889", true);
        check("big:eq:12345678901234567890", true);
        check("name:gt:G", true);
        check("name:lt:G", false);
        check("value:gt:\"1\"", false);
        check("ok:eq:true", true);
        check("none:eq:null", true);
        check("none:exists", true);
        check("missing:exists", false);
        check("missing:not_exists", true);
        check("missing:ne:x", false);
        check("name:ne:x", true);
        check("name:ne:Gas Station", false);
        check("name:begins_with:Gas", true);
        check("name:begins_with:Station", false);
        check("name:contains:s St", true);
        check("tags:contains:7", true);
        check("tags:contains:a", true);
        check("tags:contains:b", false);
        check("nested:eq:1", false);
        check("value:contains:1", false);
    }

    #[test]
    fn projection_keeps_named_attributes_in_request_order() {
        let record = json!({"id": "1", "name": "n", "value": 2});
        let projected = project(
            record.as_object().unwrap(),
            &["value".into(), "id".into(), "missing".into()],
        );
        assert_eq!(
            Value::Object(projected).to_string(),
            r#"{"value":2,"id":"1"}"#
        );
    }
}
