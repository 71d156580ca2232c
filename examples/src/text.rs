//! Text statistics: `text.count` counts the lines, words and characters of a text and adds its
//! words to the server's tally; `text.top` gives the tally's most frequent words. The tally is
//! the service's state, shared by both procedures' handlers.

use std::collections::HashMap;
use std::sync::Mutex;

use fibrpc_rpc::{Procedure, Service};
use serde::{Deserialize, Serialize};

/// Counts a text and adds its words to the tally.
pub struct Count;

impl Procedure for Count {
    const NAME: &'static str = "text.count";
    type Request = String;
    type Response = Counts;
    type Error = TextError;
}

/// The `n` most frequent words counted so far, most frequent first.
pub struct Top;

impl Procedure for Top {
    const NAME: &'static str = "text.top";
    const IDEMPOTENT: bool = true;
    type Request = u32;
    type Response = Vec<(String, u64)>;
    type Error = TextError;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub lines: u64,
    pub words: u64,
    pub chars: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TextError {
    #[error("a text of {chars} characters is above this server's bound of {max}")]
    TooLong { chars: u64, max: u64 },
    #[error("asked for the top {asked} words; at most {max}")]
    TooMany { asked: u32, max: u32 },
}

/// Most words `text.top` lists.
const TOP_MAX: u32 = 100;

/// The service's state: its bound on a text, and every word counted so far.
pub struct Tally {
    max_chars: u64,
    words: Mutex<HashMap<String, u64>>,
}

impl Tally {
    pub fn new(max_chars: u64) -> Self {
        Self {
            max_chars,
            words: Mutex::new(HashMap::new()),
        }
    }

    /// # Errors
    /// [`TextError::TooLong`] for a text above the bound; nothing is counted then.
    pub fn count(&self, text: &str) -> Result<Counts, TextError> {
        let chars = text.chars().count() as u64;
        if chars > self.max_chars {
            return Err(TextError::TooLong {
                chars,
                max: self.max_chars,
            });
        }
        let words: Vec<String> = text
            .split_whitespace()
            .map(|word| {
                word.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|word| !word.is_empty())
            .collect();
        let counts = Counts {
            lines: text.lines().count() as u64,
            words: words.len() as u64,
            chars,
        };
        let mut tally = self.tally();
        for word in words {
            *tally.entry(word).or_default() += 1;
        }
        Ok(counts)
    }

    /// # Errors
    /// [`TextError::TooMany`] when asked for more than 100 words.
    pub fn top(&self, n: u32) -> Result<Vec<(String, u64)>, TextError> {
        if n > TOP_MAX {
            return Err(TextError::TooMany {
                asked: n,
                max: TOP_MAX,
            });
        }
        let mut words: Vec<(String, u64)> = self
            .tally()
            .iter()
            .map(|(word, count)| (word.clone(), *count))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        words.truncate(n as usize);
        Ok(words)
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Each update is complete before the lock is released: a poisoned tally is consistent.
        self.words
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Both procedures over one tally, for texts of at most `max_chars` characters.
pub fn service(max_chars: u64) -> Service<Tally> {
    Service::new(Tally::new(max_chars))
        .register(Count, |tally, text| async move { tally.count(&text) })
        .register(Top, |tally, n| async move { tally.top(n) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_tallies() {
        let tally = Tally::new(100);
        assert_eq!(
            tally.count("The dog sleeps.\nThe fox runs!"),
            Ok(Counts {
                lines: 2,
                words: 6,
                chars: 29
            })
        );
        tally.count("the end").unwrap();
        assert_eq!(
            tally.top(2),
            Ok(vec![("the".to_owned(), 3), ("dog".to_owned(), 1)])
        );
        assert_eq!(
            tally.count(&"x".repeat(101)),
            Err(TextError::TooLong {
                chars: 101,
                max: 100
            })
        );
        assert_eq!(
            tally.top(101),
            Err(TextError::TooMany {
                asked: 101,
                max: 100
            })
        );
    }
}
