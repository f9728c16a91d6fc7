//! Privacy: removes patient values and secrets from text before it leaves the process.
//!
//! A [`Scrubber`] lives for one run. It learns every patient value the run emits (names,
//! birth dates in the usual spellings, phones, e-mails), the text of the items it sets
//! aside (quarantine) and the account's secret values, and replaces them in any text:
//! connector log lines, guest stdout/stderr, error details, summaries. Matching folds
//! both sides the same way (Unicode compatibility decomposition, accents dropped,
//! Unicode lower case), so `ZOÉLINE`, `Zoéline` and `zoe\u{301}line` are one value.
//! E-mail addresses and phone numbers are removed by pattern too, whether the run emitted
//! them or not. How many values a run may teach it is bounded (`limits.scrub_patterns`):
//! each is a pattern the matcher carries.

use std::collections::HashSet;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use passerelle_model::LimitExceeded;

pub const REDACTED: &str = "[redacted]";
pub const SECRET: &str = "[secret]";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+").unwrap()
});
/// French numbers (0X XX XX XX XX, +33 X XX XX XX XX, with spaces, dots, dashes or
/// slashes) and other international numbers of 8+ digits.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+|00)\d{1,3}[\s./\-]?\(?\d\)?(?:[\s./\-]?\d{2,4}){3,5}|\b0[1-9](?:[\s./\-]?\d{2}){4}\b",
    )
    .unwrap()
});

/// `text` with every e-mail address replaced by what `with` makes of it (what is no
/// e-mail stays as it is).
pub fn replace_emails<'t>(
    text: &'t str,
    with: impl Fn(&str) -> String,
) -> std::borrow::Cow<'t, str> {
    EMAIL.replace_all(text, |caps: &regex::Captures| with(&caps[0]))
}

/// Patterns past which rebuilding the matcher is moved off the async workers.
const HEAVY_REBUILD: usize = 10_000;

/// The sensitive values of one run and the matcher built from them.
pub struct Scrubber {
    /// Folded values, each once.
    patient_values: HashSet<String>,
    secret_values: Vec<String>,
    /// The values that alone name a person (a full name, an e-mail, a phone): what
    /// record text is scrubbed of. A single first or last name is not among them — in a
    /// practitioner's or a place's name it is no patient's datum ("Dr Philippe Garcia"
    /// stays whoever else is called Garcia).
    identifying: HashSet<String>,
    max_patterns: u64,
    /// Values refused because the budget was reached.
    over_budget: bool,
    /// Secrets then patient values: for logs, errors and summaries.
    matcher: Matcher,
    /// The matchers for record text: secrets only, and secrets with the identifying
    /// values.
    record_matchers: [Matcher; 2],
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber {
            patient_values: HashSet::new(),
            secret_values: Vec::new(),
            identifying: HashSet::new(),
            max_patterns: u64::MAX,
            over_budget: false,
            matcher: Matcher::default(),
            record_matchers: Default::default(),
        }
    }
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

    /// At most `max` patient values (`limits.scrub_patterns`).
    pub fn limit_patterns(self, max: u64) -> Self {
        Scrubber {
            max_patterns: max,
            ..self
        }
    }

    /// Err once the run has taught more values than its budget allows (the values
    /// past it were not kept: the run must end).
    pub fn within_budget(&self) -> Result<(), LimitExceeded> {
        if self.over_budget {
            return Err(LimitExceeded(format!(
                "scrubber patterns: the run's records may give at most {} values to remove from logs (limits.scrub_patterns)",
                self.max_patterns
            )));
        }
        Ok(())
    }

    /// Learns a secret value (replaced by `[secret]`).
    pub fn add_secret(&mut self, value: &str) {
        let folded = fold(value);
        if !folded.is_empty() {
            self.secret_values.push(folded);
            self.matcher = Matcher::default();
            self.record_matchers = Default::default();
        }
    }

    /// Learns a value that alone names a patient (a full name, an e-mail, a phone): it
    /// is removed from logs like any patient value, and from record text too
    /// ([`Self::scrub_record_text`]).
    pub fn add_identifying(&mut self, value: &str) {
        self.add_patient_value(value);
        let value = value.trim();
        if value.chars().count() < 3 || self.over_budget {
            return;
        }
        if self.identifying.insert(fold(value)) {
            self.record_matchers[1] = Matcher::default();
        }
    }

    /// Learns a patient value. Values under three characters are too common to remove.
    pub fn add_patient_value(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() < 3 {
            return;
        }
        let folded = fold(value);
        if self.patient_values.contains(&folded) {
            return;
        }
        if self.patient_values.len() as u64 >= self.max_patterns {
            self.over_budget = true;
            return;
        }
        self.patient_values.insert(folded);
        self.matcher = Matcher::default();
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

    /// Learns the text of an item set aside: every string in it when it is JSON (names
    /// and the like the connector could not read) and every map key that is not a
    /// field name (`start_date` is a platform's schema; `Zoé Martin` or
    /// `zoe@example.org` as a key is data), else the whole text.
    pub fn add_quarantined_item(&mut self, item: &str) {
        fn is_field_name(key: &str) -> bool {
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
        }
        fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
                serde_json::Value::Object(o) => o.iter().for_each(|(k, v)| {
                    if !is_field_name(k) {
                        out.push(k.clone());
                    }
                    strings(v, out)
                }),
                _ => {}
            }
        }
        match serde_json::from_str::<serde_json::Value>(item) {
            Ok(v) => {
                let mut found = Vec::new();
                strings(&v, &mut found);
                for s in found {
                    self.add_patient_value(&s);
                }
            }
            Err(_) => self.add_patient_value(item),
        }
    }

    /// How many values it knows.
    pub fn len(&self) -> usize {
        self.patient_values.len() + self.secret_values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every known value (secret or patient) replaced, and nothing else: for
    /// structured text a pattern would damage (a recorded platform answer, where a
    /// phone-like run of digits may be an id).
    pub fn scrub_values(&mut self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        self.replace_known(text)
    }

    /// `text` with every known value and every e-mail or phone pattern replaced.
    pub fn scrub(&mut self, text: &str) -> String {
        let mut out = if self.is_empty() {
            text.to_string()
        } else {
            self.replace_known(text)
        };
        if EMAIL.is_match(&out) {
            out = EMAIL.replace_all(&out, REDACTED).into_owned();
        }
        if PHONE.is_match(&out) {
            out = replace_phones(&out);
        }
        out
    }

    /// Record text others read (a slot's place, a visit motive) with the run's secrets,
    /// every value that alone names a patient of the run ([`Self::add_identifying`]) and
    /// every e-mail or phone pattern replaced. With `names` false (a field that names a
    /// professional by design: a practitioner), the patients' names are left: a
    /// practitioner is no patient because one of the practice's patients bears their name.
    pub fn scrub_record_text(&mut self, text: &str, names: bool) -> String {
        let slot = usize::from(names);
        let known = !self.secret_values.is_empty() || (names && !self.identifying.is_empty());
        let mut out = if !known {
            text.to_string()
        } else {
            let identifying: &HashSet<String> = if names { &self.identifying } else { &EMPTY };
            let secrets = &self.secret_values;
            let secret_count = secrets.len();
            replace_folded(
                &mut |hay| {
                    self.record_matchers[slot]
                        .find(|| secrets.iter().chain(identifying.iter()), hay)
                },
                secret_count,
                text,
            )
        };
        if EMAIL.is_match(&out) {
            out = EMAIL.replace_all(&out, REDACTED).into_owned();
        }
        if PHONE.is_match(&out) {
            out = replace_phones(&out);
        }
        out
    }

    /// `text` with every secret and patient value replaced.
    fn replace_known(&mut self, text: &str) -> String {
        let (secrets, patients) = (&self.secret_values, &self.patient_values);
        let matcher = &mut self.matcher;
        replace_folded(
            &mut |hay| matcher.find(|| secrets.iter().chain(patients.iter()), hay),
            secrets.len(),
            text,
        )
    }
}

static EMPTY: LazyLock<HashSet<String>> = LazyLock::new(HashSet::new);

/// A match over folded text: its byte range and its pattern's index.
type Found = (usize, usize, usize);

/// Texts, and bytes, a pattern set is scanned for one pattern at a time before its
/// automaton is built. Building an Aho-Corasick automaton of a run's ~180 patterns takes
/// ~400 µs; looking for each in turn in a short text ~5 µs (`perf` over a night: the
/// matchers' building was 8 % of the daemon's CPU, for runs that scrub a handful of
/// log lines and record texts after learning their patients).
const SCAN_TEXTS: u32 = 48;
const SCAN_BYTES: usize = 8 * 1024;

/// How one set of folded patterns is searched: each pattern in turn while the set has
/// been used on little text since it last changed, then an Aho-Corasick automaton. Both
/// find the same matches (leftmost-longest, the first pattern on a tie).
#[derive(Default)]
struct Matcher {
    automaton: Option<AhoCorasick>,
    scanned_texts: u32,
    scanned_bytes: usize,
}

impl Matcher {
    /// The matches of `patterns` (always the same ones until the matcher is reset) in
    /// `haystack`, in order, none overlapping.
    fn find<'p, I: Iterator<Item = &'p String>>(
        &mut self,
        patterns: impl Fn() -> I,
        haystack: &str,
    ) -> Vec<Found> {
        if self.automaton.is_none()
            && self.scanned_texts < SCAN_TEXTS
            && self.scanned_bytes + haystack.len() <= SCAN_BYTES
        {
            self.scanned_texts += 1;
            self.scanned_bytes += haystack.len();
            return scan(patterns(), haystack);
        }
        let automaton = self.automaton.get_or_insert_with(|| {
            let build = || automaton(patterns());
            if patterns().count() > HEAVY_REBUILD {
                off_the_async_workers(build)
            } else {
                build()
            }
        });
        automaton
            .find_iter(haystack)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect()
    }
}

fn automaton<'p>(patterns: impl Iterator<Item = &'p String>) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .kind(Some(MATCHER_KIND))
        .build(patterns)
        .expect("literal patterns always build")
}

/// The automaton's matches, found without it: every occurrence of every pattern
/// (overlapping ones too), then kept as a leftmost-longest automaton keeps them —
/// earliest start, then longest, then first pattern, each after the last kept one.
fn scan<'p>(patterns: impl Iterator<Item = &'p String>, haystack: &str) -> Vec<Found> {
    let mut all = Vec::new();
    for (id, pattern) in patterns.enumerate() {
        if pattern.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(at) = haystack[from..].find(pattern.as_str()) {
            let start = from + at;
            all.push((start, start + pattern.len(), id));
            from = start + haystack[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    all.sort_unstable_by_key(|&(start, end, id)| (start, std::cmp::Reverse(end), id));
    let mut kept = Vec::with_capacity(all.len());
    let mut last_end = 0;
    for found in all {
        if found.0 >= last_end {
            last_end = found.1;
            kept.push(found);
        }
    }
    kept
}

/// `text` with every phone number replaced: a [`PHONE`] match of 8 to 15 digits (E.164's
/// longest) that is not part of a longer identifier — a UUID, a hexadecimal or long
/// digit id (`00000000-0000-4000-8000-000000000001`, `000000000000000000000029`) is no
/// phone number, and stays readable in logs and records.
fn replace_phones(text: &str) -> String {
    let bytes = text.as_bytes();
    // A character that continues an identifier: a letter, a digit, `_`, or a `-`/`.`
    // joining two of those.
    let joins = |i: usize| -> bool {
        let c = bytes[i];
        c.is_ascii_alphanumeric() || c == b'_'
    };
    let attached_before = |start: usize| {
        start > 0
            && (joins(start - 1)
                || (matches!(bytes[start - 1], b'-' | b'.') && start > 1 && joins(start - 2)))
    };
    let attached_after = |end: usize| {
        end < bytes.len()
            && (joins(end)
                || (matches!(bytes[end], b'-' | b'.')
                    && end + 1 < bytes.len()
                    && bytes[end + 1].is_ascii_alphanumeric()))
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in PHONE.find_iter(text) {
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if !(8..=15).contains(&digits) || attached_before(m.start()) || attached_after(m.end()) {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        out.push_str(REDACTED);
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// Runs CPU-heavy `f` without holding up the runtime's other tasks: on a multi-thread
/// tokio runtime the worker hands its tasks over first (`block_in_place`).
fn off_the_async_workers<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The folded form of one character: its compatibility decomposition without combining
/// marks, in lower case.
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    decompose_compatible(c, |d| {
        if !is_combining_mark(d) {
            out.extend(d.to_lowercase());
        }
    });
}

/// `text` folded for matching.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// The automaton the matchers are: a contiguous NFA, not the DFA the builder picks for
/// few patterns. A run's matcher is rebuilt whenever it learns patients and then scans a
/// few kilobytes: building the DFA was 5.8 % of the daemon's CPU over a night
/// (`perf`, 6,000 runs), more than all its scanning.
const MATCHER_KIND: AhoCorasickKind = AhoCorasickKind::ContiguousNFA;

/// Replaces the matches `find` finds (over folded text) in `text`: the first `secrets`
/// patterns by [`SECRET`], the others by [`REDACTED`].
fn replace_folded(find: &mut dyn FnMut(&str) -> Vec<Found>, secrets: usize, text: &str) -> String {
    let mark = |pattern: usize| if pattern < secrets { SECRET } else { REDACTED };
    if text.is_ascii() {
        // Folding ASCII keeps every offset: match the lower-cased copy, cut the original.
        let lower = text.to_ascii_lowercase();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, pattern) in find(&lower) {
            out.push_str(&text[last..start]);
            out.push_str(mark(pattern));
            last = end;
        }
        out.push_str(&text[last..]);
        return out;
    }
    // For each byte of the folded text, the original character it came from.
    let mut folded = String::with_capacity(text.len());
    let mut origin: Vec<(usize, usize)> = Vec::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        let before = folded.len();
        fold_char(c, &mut folded);
        origin.extend(std::iter::repeat_n(
            (at, at + c.len_utf8()),
            folded.len() - before,
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, pattern) in find(&folded) {
        let (start, end) = (origin[start].0, origin[end - 1].1);
        if start < last {
            continue; // inside a character the previous match already covered
        }
        out.push_str(&text[last..start]);
        out.push_str(mark(pattern));
        last = end;
    }
    out.push_str(&text[last..]);
    out
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
        let accented = "créneaux trouvés à Besançon: 12";
        assert_eq!(s.scrub(accented), accented);
    }

    /// Before: ASCII-only case folding let `ZOÉLINE` through, and a decomposed accent or
    /// a compatibility form (full-width letters) too.
    #[test]
    fn unicode_case_accents_and_compatibility_forms_are_one_value() {
        let mut s = Scrubber::new();
        s.add_patient_value("Zoéline");
        s.add_patient_value("Émeline Ørsted");
        for text in [
            "patient ZOÉLINE arrived",
            "patient zoe\u{301}line arrived",
            "patient Zoeline arrived",
            "patient ＺＯＥＬＩＮＥ arrived",
            "patient ÉMELINE ØRSTED arrived",
        ] {
            let out = s.scrub(text);
            assert_eq!(out, "patient [redacted] arrived", "{text}");
        }
    }

    /// Before: `06/55/00/00/42` passed.
    #[test]
    fn phone_numbers_with_any_separator() {
        let mut s = Scrubber::new();
        for text in [
            "call 06/55/00/00/42 now",
            "call 06.55.00.00.42 now",
            "call +33/6/55/00/00/42 now",
        ] {
            assert_eq!(s.scrub(text), "call [redacted] now", "{text}");
        }
    }

    #[test]
    fn identifiers_are_not_phone_numbers() {
        let mut s = Scrubber::new();
        for text in [
            "pharmacy=00000000-0000-4000-8000-000000000001",
            "practitioner 000000000000000000000029",
            "agenda 0033612345678901234 moved",
            "id 5f0c-06-55-00-00-42-aa",
            "hash 0655000042ab",
        ] {
            assert_eq!(s.scrub(text), text, "{text}");
            assert_eq!(s.scrub_record_text(text, true), text, "{text}");
        }
        for text in [
            "call 06 55 00 00 42",
            "call +33 6 55 00 00 42.",
            "(0655000042)",
            "tel:+33655000042",
        ] {
            assert!(s.scrub(text).contains("[redacted]"), "{text}");
            assert!(
                s.scrub_record_text(text, false).contains("[redacted]"),
                "{text}"
            );
        }
    }

    #[test]
    fn quarantined_items_teach_their_strings() {
        let mut s = Scrubber::new();
        s.add_quarantined_item(r#"{"patient":{"name":"Quillembeau","tags":["Aurélienne"]},"n":4}"#);
        let out = s.scrub("could not read Quillembeau / AURELIENNE");
        assert_eq!(out, "could not read [redacted] / [redacted]");
        // Keys: data (a name) is learned, a field name is not.
        s.add_quarantined_item(r#"{"Zoé Martin":{"start_date_v2":"x"}}"#);
        let out = s.scrub(r#"at $["Zoé Martin"].start_date_v2"#);
        assert_eq!(out, r#"at $["[redacted]"].start_date_v2"#);
    }

    #[test]
    fn the_pattern_budget_is_kept() {
        let mut s = Scrubber::new().limit_patterns(3);
        for v in ["aaa", "bbb", "aaa", "ccc"] {
            s.add_patient_value(v);
        }
        assert!(s.within_budget().is_ok());
        s.add_patient_value("ddd");
        assert!(s.within_budget().is_err());
        assert_eq!(s.len(), 3);
    }

    proptest::proptest! {
        /// A learned value never survives scrubbing, whatever its case or surroundings.
        #[test]
        fn a_learned_value_never_survives(
            value in "[a-zA-Zàéèïôüç ]{3,20}",
            before in "\\PC{0,20}",
            after in "\\PC{0,20}",
        ) {
            let mut s = Scrubber::new();
            s.add_patient_value(&value);
            let needle = fold(value.trim());
            proptest::prop_assume!(needle.chars().count() >= 3);
            for variant in [value.clone(), value.to_uppercase(), value.to_lowercase()] {
                let out = s.scrub(&format!("{before}{variant}{after}"));
                proptest::prop_assert!(!fold(&out).contains(&needle), "{:?} -> {:?}", variant, out);
            }
        }

        /// Scanning pattern by pattern and the automaton replace the same spans with
        /// the same marks, overlapping and repeated patterns included.
        #[test]
        fn scanning_and_the_automaton_agree(
            patterns in proptest::collection::vec("[abé ]{1,4}", 1..8),
            secrets in 0usize..3,
            text in "[abéAB ]{0,40}",
        ) {
            let patterns: Vec<String> = patterns.iter().map(|p| fold(p)).collect();
            let secrets = secrets.min(patterns.len());
            let scanned = replace_folded(&mut |hay| scan(patterns.iter(), hay), secrets, &text);
            let ac = automaton(patterns.iter());
            let automaton = replace_folded(
                &mut |hay| ac.find_iter(hay).map(|m| (m.start(), m.end(), m.pattern().as_usize())).collect(),
                secrets,
                &text,
            );
            proptest::prop_assert_eq!(scanned, automaton);
        }

        /// Scrubbing never panics and leaves text without learned values unchanged
        /// apart from e-mail and phone patterns.
        #[test]
        fn text_without_values_is_kept(text in "\\PC{0,80}") {
            let mut s = Scrubber::new();
            s.add_patient_value("Quintardeau");
            let out = s.scrub(&text);
            if !fold(&text).contains("quintardeau") && !EMAIL.is_match(&text) && !PHONE.is_match(&text) {
                proptest::prop_assert_eq!(out, text);
            }
        }
    }
}
