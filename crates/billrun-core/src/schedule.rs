//! Job schedules: cron lines in UTC, 5 fields (minute first) or 6 (seconds first), parsed the
//! way tokio-cron-scheduler parses them (croner, seconds required, day-of-month AND
//! day-of-week), so that what `billrun jobs` shows is what the daemon fires.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

#[derive(Debug, Clone)]
pub struct Schedule {
    /// The 6-field line given to the scheduler.
    pub six_fields: String,
    cron: Cron,
}

impl Schedule {
    pub fn parse(line: &str) -> Result<Schedule, String> {
        let fields = line.split_whitespace().count();
        let six_fields = match fields {
            5 => format!("0 {}", line.trim()),
            6 => line.trim().to_string(),
            n => {
                return Err(format!(
                    "schedule `{line}` has {n} fields: a cron line has 5 (minute hour day month weekday) or 6 (seconds first)"
                ));
            }
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&six_fields)
            .map_err(|e| format!("schedule `{line}` is not a valid cron line: {e}"))?;
        Ok(Schedule { six_fields, cron })
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The latest fire time at or before `t`: the tick a run at `t` belongs to.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&t, true).ok()
    }

    /// The tick to catch up at start: the latest one in `(since, now]` when it is newer than
    /// the last tick claimed (`None`: nothing was missed).
    pub fn missed_tick(
        &self,
        now: DateTime<Utc>,
        last_claimed: Option<DateTime<Utc>>,
        window: chrono::Duration,
    ) -> Option<DateTime<Utc>> {
        let tick = self.latest_at_or_before(now)?;
        if tick <= now - window {
            return None;
        }
        match last_claimed {
            Some(last) if last >= tick => None,
            _ => Some(tick),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn five_and_six_field_lines() {
        let s = Schedule::parse("0 6 1 * *").unwrap();
        assert_eq!(s.six_fields, "0 0 6 1 * *");
        assert_eq!(
            s.next_after(t("2026-11-22T10:00:00Z")),
            Some(t("2026-12-01T06:00:00Z"))
        );
        let s = Schedule::parse("0 0 7 * * *").unwrap();
        assert_eq!(
            s.latest_at_or_before(t("2026-11-22T07:00:00Z")),
            Some(t("2026-11-22T07:00:00Z"))
        );
        assert_eq!(
            s.latest_at_or_before(t("2026-11-22T06:59:59Z")),
            Some(t("2026-11-21T07:00:00Z"))
        );
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(Schedule::parse("0 6 1 *").unwrap_err().contains("4 fields"));
        assert!(
            Schedule::parse("0 99 6 1 * *")
                .unwrap_err()
                .contains("not a valid cron line")
        );
        assert!(Schedule::parse("0 0 6 1 * * 2026 x").is_err());
    }

    #[test]
    fn catch_up_takes_the_latest_missed_tick_once() {
        let s = Schedule::parse("0 0 7 * * *").unwrap();
        let now = t("2026-11-22T09:00:00Z");
        let day = chrono::Duration::hours(36);
        // Down since the 20th: only today's 07:00 runs, once.
        assert_eq!(
            s.missed_tick(now, Some(t("2026-11-20T07:00:00Z")), day),
            Some(t("2026-11-22T07:00:00Z"))
        );
        assert_eq!(
            s.missed_tick(now, Some(t("2026-11-22T07:00:00Z")), day),
            None
        );
        // Never ran: the latest tick, if inside the window.
        assert_eq!(
            s.missed_tick(now, None, day),
            Some(t("2026-11-22T07:00:00Z"))
        );
        assert_eq!(
            s.missed_tick(now, None, chrono::Duration::hours(1)),
            None,
            "older than the window"
        );
    }
}
