//! How times and durations read in the deployer's output, one format for
//! each use: a point in time (`rfc3339`), a duration in a sentence
//! (`duration`: `45s`, `4m 12s`, `1h 02m`), and the elapsed-time column of
//! a stream of stack events (`clock`: `4:12`), which must line up.

use std::time::Duration;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

/// `2024-11-25T01:47:08.535Z`, or nothing for a time that cannot be written.
pub fn rfc3339(at: &DateTime) -> Option<String> {
    at.fmt(Format::DateTime).ok()
}

/// A duration as people write it: `250ms` (test timeouts), `45s`, `30m`,
/// `4m 12s`, `1h 02m`.
pub fn duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0 => format!("{}ms", duration.as_millis()),
        1..60 => format!("{seconds}s"),
        60..3600 if seconds.is_multiple_of(60) => format!("{}m", seconds / 60),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds / 60 % 60),
    }
}

/// `m:ss`, or `h:mm:ss` from an hour on: a column that lines up.
pub fn clock(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let secs = Duration::from_secs;
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(secs(45)), "45s");
        assert_eq!(duration(secs(1800)), "30m");
        assert_eq!(duration(secs(252)), "4m 12s");
        assert_eq!(duration(secs(3720)), "1h 02m");
        assert_eq!(duration(secs(3900)), "1h 05m");
    }

    #[test]
    fn clocks_line_up() {
        assert_eq!(clock(Duration::from_millis(999)), "0:00");
        assert_eq!(clock(Duration::from_secs(61)), "1:01");
        assert_eq!(clock(Duration::from_secs(3_725)), "1:02:05");
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            rfc3339(&DateTime::from_millis(1_732_499_228_535)).as_deref(),
            Some("2024-11-25T01:47:08.535Z")
        );
    }
}
