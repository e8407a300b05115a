//! The table: one row per figure, with its ratio to a baseline measured in
//! the same run. Printed as Markdown (so it pastes into the README as is) and
//! written as JSON.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

/// One figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub section: String,
    pub figure: String,
    /// `None` when the figure could not be measured (see `note`).
    pub value: Option<f64>,
    pub unit: String,
    /// `value / baseline value`, when there is a baseline.
    pub ratio: Option<f64>,
    /// What the ratio is against, e.g. `hello`.
    pub baseline: Option<String>,
    pub note: String,
}

impl Row {
    pub fn new(section: &str, figure: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            section: section.to_owned(),
            figure: figure.into(),
            value: Some(value),
            unit: unit.to_owned(),
            ratio: None,
            baseline: None,
            note: String::new(),
        }
    }

    /// A figure that could not be measured, and why.
    pub fn skipped(section: &str, figure: impl Into<String>, why: impl fmt::Display) -> Self {
        Self {
            section: section.to_owned(),
            figure: figure.into(),
            value: None,
            unit: String::new(),
            ratio: None,
            baseline: None,
            note: format!("not measured: {why}"),
        }
    }

    /// Sets the ratio to `baseline_value` (when both are there and it is not 0).
    pub fn against(mut self, baseline: &str, baseline_value: Option<f64>) -> Self {
        if let (Some(value), Some(base)) = (self.value, baseline_value)
            && base != 0.0
        {
            self.ratio = Some(value / base);
            self.baseline = Some(baseline.to_owned());
        }
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// The median (the mean of the middle two for an even count); `None` for none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some(f64::midpoint(sorted[middle - 1], sorted[middle])),
    }
}

/// Milliseconds, for rows.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A value with as many decimals as it deserves.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || (value.fract() == 0.0 && magnitude < 1e15) {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| section | figure | value | vs baseline | note |\n");
    out.push_str("| --- | --- | ---: | ---: | --- |\n");
    for row in rows {
        let value = row.value.map_or_else(
            || "–".to_owned(),
            |value| format!("{} {}", number(value), row.unit),
        );
        let ratio = match (row.ratio, &row.baseline) {
            // A tiny ratio reads better upside down: `1/7853× x`, not `0.00× x`.
            (Some(ratio), Some(baseline)) if ratio > 0.0 && ratio < 0.1 => {
                format!("1/{:.0}× {baseline}", 1.0 / ratio)
            }
            (Some(ratio), Some(baseline)) => format!("{ratio:.2}× {baseline}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            row.section,
            row.figure,
            value.trim_end(),
            ratio,
            row.note.replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_no_values() {
        let check = |values: &[f64], expected: Option<f64>| {
            assert_eq!(median(values), expected, "{values:?}")
        };
        check(&[], None);
        check(&[3.0], Some(3.0));
        check(&[5.0, 1.0, 3.0], Some(3.0));
        check(&[4.0, 1.0, 3.0, 2.0], Some(2.5));
    }

    #[test]
    fn rows_print_as_a_markdown_table() {
        let rows = [
            Row::new("cold start", "hello: spawn → ping", 2.5, "ms"),
            Row::new("cold start", "api: spawn → ping", 3.25, "ms").against("hello", Some(2.5)),
            Row::new("load", "api get-by-id", 12345.6, "req/s").note("0 non-2xx | ok"),
            Row::skipped("seeding", "aws cli put-item", "no venv"),
            Row::new("x", "zero baseline", 1.5, "ms").against("none", Some(0.0)),
            Row::new("x", "slow", 2.0, "items/s").against("fast", Some(1000.0)),
            Row::new("x", "calls", 40.0, "calls"),
        ];
        assert_eq!(
            markdown(&rows),
            "| section | figure | value | vs baseline | note |\n\
             | --- | --- | ---: | ---: | --- |\n\
             | cold start | hello: spawn → ping | 2.50 ms |  |  |\n\
             | cold start | api: spawn → ping | 3.25 ms | 1.30× hello |  |\n\
             | load | api get-by-id | 12346 req/s |  | 0 non-2xx \\| ok |\n\
             | seeding | aws cli put-item | – |  | not measured: no venv |\n\
             | x | zero baseline | 1.50 ms |  |  |\n\
             | x | slow | 2 items/s | 1/500× fast |  |\n\
             | x | calls | 40 calls |  |  |\n"
        );
    }
}
