//! Privacy: removes patient values and secrets from text before it leaves the process.
//!
//! A [`Scrubber`] lives for one run. It learns every patient value the run emits (names,
//! birth dates in the usual spellings, phones, e-mails) and the account's secret values,
//! and replaces them, case-insensitively, in any text: connector log lines, guest
//! stdout/stderr, error details, summaries. E-mail addresses and phone numbers are
//! removed by pattern too, whether the run emitted them or not.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

pub const REDACTED: &str = "[redacted]";
pub const SECRET: &str = "[secret]";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+").unwrap()
});
/// French numbers (0X XX XX XX XX, +33 X XX XX XX XX, with spaces, dots or dashes) and
/// other international numbers of 8+ digits.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+|00)\d{1,3}[\s.\-]?\(?\d\)?(?:[\s.\-]?\d{2,4}){3,5}|\b0[1-9](?:[\s.\-]?\d{2}){4}\b",
    )
    .unwrap()
});

/// The sensitive values of one run and the matcher built from them.
#[derive(Default)]
pub struct Scrubber {
    patient_values: Vec<String>,
    secret_values: Vec<String>,
    matcher: Option<(AhoCorasick, usize)>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Scrubber({} patient values, {} secrets)",
            self.patient_values.len(),
            self.secret_values.len()
        )
    }
}

impl Scrubber {
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns a secret value (replaced by `[secret]`).
    pub fn add_secret(&mut self, value: &str) {
        if !value.is_empty() {
            self.secret_values.push(value.to_string());
            self.matcher = None;
        }
    }

    /// Learns a patient value. Values under three characters are too common to remove.
    pub fn add_patient_value(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() < 3 {
            return;
        }
        self.patient_values.push(value.to_string());
        self.matcher = None;
    }

    /// Learns a birth date given as `YYYY-MM-DD`, with its usual other spellings.
    pub fn add_birth_date(&mut self, iso: &str) {
        self.add_patient_value(iso);
        let parts: Vec<&str> = iso.trim().split('-').collect();
        if let [y, m, d] = parts[..] {
            self.add_patient_value(&format!("{d}/{m}/{y}"));
            self.add_patient_value(&format!("{d}-{m}-{y}"));
            self.add_patient_value(&format!("{d}.{m}.{y}"));
            self.add_patient_value(&format!("{y}{m}{d}"));
        }
    }

    /// Learns a phone number, also as bare digits.
    pub fn add_phone(&mut self, phone: &str) {
        self.add_patient_value(phone);
        let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
        self.add_patient_value(&digits);
    }

    /// How many values it knows.
    pub fn len(&self) -> usize {
        self.patient_values.len() + self.secret_values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every known value and every e-mail or phone pattern replaced.
    pub fn scrub(&mut self, text: &str) -> String {
        let mut out = if self.is_empty() {
            text.to_string()
        } else {
            let (matcher, secrets) = self.matcher();
            let mut out = String::with_capacity(text.len());
            matcher.replace_all_with(text, &mut out, |m, _, dst| {
                dst.push_str(if m.pattern().as_usize() < secrets {
                    SECRET
                } else {
                    REDACTED
                });
                true
            });
            out
        };
        if EMAIL.is_match(&out) {
            out = EMAIL.replace_all(&out, REDACTED).into_owned();
        }
        if PHONE.is_match(&out) {
            out = PHONE.replace_all(&out, REDACTED).into_owned();
        }
        out
    }

    fn matcher(&mut self) -> (&AhoCorasick, usize) {
        if self.matcher.is_none() {
            let patterns = self.secret_values.iter().chain(self.patient_values.iter());
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(patterns)
                .expect("literal patterns always build");
            self.matcher = Some((ac, self.secret_values.len()));
        }
        let (ac, n) = self.matcher.as_ref().expect("built above");
        (ac, *n)
    }
}

#[cfg(test)]
mod tests {
    use crate::scrub::*;

    #[test]
    fn removes_known_values_case_insensitively_and_patterns() {
        let mut s = Scrubber::new();
        s.add_patient_value("Quintardeau");
        s.add_birth_date("1984-03-09");
        s.add_secret("s3cr3t-token");
        let out = s.scrub(
            "QUINTARDEAU born 09/03/1984 mail a.b@x.example tel 06 12 34 56 78 or +33 6 12 34 56 78 token s3cr3t-token",
        );
        assert!(!out.to_lowercase().contains("quintardeau"), "{out}");
        assert!(!out.contains("1984"), "{out}");
        assert!(!out.contains("a.b@x.example"), "{out}");
        assert!(!out.contains("12 34 56 78"), "{out}");
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains(SECRET));
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let mut s = Scrubber::new();
        s.add_patient_value("Li");
        let text = "fetched 12 slots for centre 4512 in 230 ms (Li)";
        assert_eq!(s.scrub(text), text);
    }
}
