//! The fault table, as the suite prints it and docs/reliability.md quotes it.

use std::fmt::Write as _;

use super::load::Row;

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| fault | what was done | calls | succeeded | failed (error) | lost | retried | longest call |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let failed = if row.failed.is_empty() {
            "0".to_owned()
        } else {
            row.failed
                .iter()
                .map(|(kind, count)| format!("{count} ({kind})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} ms |",
            row.fault,
            row.action,
            row.attempted,
            row.succeeded,
            failed,
            row.lost,
            row.retried,
            row.longest_call.as_millis()
        );
    }
    out
}
