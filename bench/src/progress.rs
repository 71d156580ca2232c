//! The progress bar on stderr, shown only to someone watching a terminal: a redirected or
//! piped run (CI, scripts reading stdout) stays quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) fn bar(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    // The template is a constant; if indicatif ever refused it, the default style still works.
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} calls {per_sec} {eta}") {
        bar.set_style(style);
    }
    Some(bar)
}
