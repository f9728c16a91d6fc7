//! Redaction of recorded HTTP exchanges, one rule for `passerelle sync --record` and the
//! flight recorder: secret values never reach a recording (the HTTP capability removes
//! them from responses first; requests carry them only in headers, not recorded); the
//! patient values the run emitted are replaced by stand-ins of the same shape (a date
//! stays a date, an e-mail an e-mail), so a replay parses the same and stores the same
//! records, patients aside; what the run did not emit is redacted by kind — every e-mail
//! address, members holding contact details (`phone`, `email`, `birthdate`…) by shape,
//! login tokens (`access_token`, `session`, `password`…) by one stand-in each, the same
//! wherever the value appears, URLs included, so the replayed run asks for what it asked.
//! A run that failed before emitting its patients (the flight recorder's case) also has
//! its name members (`first_name`, `lastName`…) redacted by shape, and every value its
//! scrubber learned replaced.

use std::collections::BTreeMap;

use serde_json::Value;

use super::CassetteExchange;
use passerelle_model::records::PatientRecord;
use passerelle_runtime::capabilities::http::Recorded;
use passerelle_runtime::scrub::Scrubber;

/// Response headers kept in a cassette: what a connector may read, not transport details.
const KEPT_HEADERS: &[&str] = &["content-type", "retry-after", "location", "link"];

/// What redaction knows of the run.
pub struct Redaction<'a> {
    /// The patients the run emitted (stored): replaced by stand-ins of their shape.
    pub patients: &'a [PatientRecord],
    /// Redact name members by shape too (the run may not have emitted its patients).
    pub names_by_member: bool,
    /// The run's scrubber: every value it learned (patients emitted but not stored,
    /// secrets) is replaced, in every string.
    pub scrubber: Option<&'a mut Scrubber>,
}

/// `exchanges`, redacted, in the order they happened.
pub fn redact(exchanges: &[Recorded], redaction: Redaction<'_>) -> Vec<CassetteExchange> {
    let mut placeholders = Placeholders::new(redaction.patients);
    placeholders.names_by_member = redaction.names_by_member;
    placeholders.learn_tokens(exchanges);
    let mut scrubber = redaction.scrubber;
    let mut known = |text: String| match scrubber.as_deref_mut() {
        Some(s) => s.scrub_values(&text),
        None => text,
    };
    exchanges
        .iter()
        .map(|e| {
            let json = serde_json::from_slice::<Value>(&e.body).ok();
            let (body, is_json) = match json {
                Some(mut v) => {
                    placeholders.apply_json(&mut v);
                    map_strings(&mut v, &mut known);
                    (
                        serde_json::to_string_pretty(&v).expect("serialisable"),
                        true,
                    )
                }
                None => (
                    known(placeholders.apply_text(&String::from_utf8_lossy(&e.body))),
                    false,
                ),
            };
            CassetteExchange {
                method: e.method.clone(),
                url: known(placeholders.apply_text(&e.url)),
                status: e.status,
                headers: e
                    .headers
                    .iter()
                    .filter(|(k, _)| KEPT_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
                    .map(|(k, v)| (k.to_ascii_lowercase(), known(placeholders.apply_text(v))))
                    .collect(),
                body,
                json: is_json,
                note: None,
            }
        })
        .collect()
}

/// Every string of `v` (keys aside) through `f`.
fn map_strings(v: &mut Value, f: &mut impl FnMut(String) -> String) {
    match v {
        Value::String(s) => *s = f(std::mem::take(s)),
        Value::Array(items) => items.iter_mut().for_each(|i| map_strings(i, f)),
        Value::Object(map) => map.values_mut().for_each(|i| map_strings(i, f)),
        _ => {}
    }
}

/// Patient values → stand-ins of the same shape. Distinctive values (full names, birth
/// dates, phones, e-mails) are replaced wherever they appear; a lone first or last name,
/// or a patient id, only where it is a whole JSON string — a practitioner may share a
/// patient's surname, and must stay as the platform sent it.
struct Placeholders {
    anywhere: Vec<(String, String)>,
    whole: BTreeMap<String, String>,
    /// Login tokens learned so far.
    tokens: usize,
    /// Name members are redacted by shape.
    names_by_member: bool,
}

impl Placeholders {
    fn new(patients: &[PatientRecord]) -> Placeholders {
        let mut anywhere: BTreeMap<String, String> = BTreeMap::new();
        let mut whole: BTreeMap<String, String> = BTreeMap::new();
        let usable = |v: &String| v.chars().count() >= 2;
        for (n, p) in patients.iter().enumerate() {
            let n = n + 1;
            let (first, last) = (format!("Prénom{n}"), format!("Nom{n}"));
            for (value, stand_in) in [
                (
                    format!("{} {}", p.first_name, p.last_name),
                    format!("{first} {last}"),
                ),
                (
                    format!("{} {}", p.last_name, p.first_name),
                    format!("{last} {first}"),
                ),
            ] {
                anywhere.entry(value).or_insert(stand_in);
            }
            for (value, stand_in) in [
                (
                    p.birth_date.as_ref(),
                    same_shape_date(p.birth_date.as_deref()),
                ),
                (p.phone.as_ref(), digits_to_zero(p.phone.as_deref())),
                (p.email.as_ref(), format!("patient{n}@example.invalid")),
            ] {
                if let Some(v) = value.filter(|v| usable(v)) {
                    anywhere.entry(v.clone()).or_insert(stand_in);
                }
            }
            for (value, stand_in) in [
                (Some(&p.first_name), first.clone()),
                (Some(&p.last_name), last.clone()),
                (p.external_id.as_ref(), format!("patient-{n}")),
            ] {
                if let Some(v) = value.filter(|v| usable(v)) {
                    whole.entry(v.clone()).or_insert(stand_in);
                }
            }
        }
        let mut anywhere: Vec<(String, String)> = anywhere.into_iter().collect();
        anywhere.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Placeholders {
            anywhere,
            whole,
            tokens: 0,
            names_by_member: false,
        }
    }

    /// Learns the login tokens the responses hold (the values of token-like members),
    /// each to be replaced by a stand-in of its own wherever it appears.
    fn learn_tokens(&mut self, exchanges: &[Recorded]) {
        fn walk(v: &Value, found: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    for (key, value) in map {
                        match (member_kind(key), value) {
                            (Some(Member::Token), Value::String(s)) if s.chars().count() >= 4 => {
                                found.push(s.clone())
                            }
                            _ => walk(value, found),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        for e in exchanges {
            if let Ok(v) = serde_json::from_slice::<Value>(&e.body) {
                walk(&v, &mut found);
            }
        }
        for token in found {
            let n = self.tokens + 1;
            if !self.anywhere.iter().any(|(v, _)| *v == token) {
                self.anywhere.push((token, format!("recorded-token-{n}")));
                self.tokens = n;
            }
        }
        self.anywhere
            .sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    }

    fn apply_text(&self, text: &str) -> String {
        if let Some(stand_in) = self.whole.get(text) {
            return stand_in.clone();
        }
        let mut out = text.to_string();
        for (value, stand_in) in &self.anywhere {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), stand_in);
            }
        }
        // Stand-ins (`patient1@example.invalid`) stay; any other address goes.
        passerelle_runtime::scrub::replace_emails(&out, |address| {
            if address.ends_with("@example.invalid") {
                address.to_string()
            } else {
                "redacted@example.invalid".to_string()
            }
        })
        .into_owned()
    }

    /// A contact value: its stand-in when the run emitted it (or it is an e-mail
    /// address), else one of its shape — a date stays a valid date.
    fn redact_contact(&self, s: &str) -> String {
        let known = self.apply_text(s);
        if known != s {
            return known;
        }
        let date_like = s.chars().any(|c| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.'));
        if date_like && (8..=10).contains(&s.len()) {
            same_shape_date(Some(s))
        } else {
            same_shape(s)
        }
    }

    fn apply_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.apply_text(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.apply_json(i)),
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match (member_kind(key), &value) {
                        (Some(Member::Contact), Value::String(s)) => {
                            *value = Value::String(self.redact_contact(s))
                        }
                        (Some(Member::Name), Value::String(s)) if self.names_by_member => {
                            let known = self.apply_text(s);
                            *value = Value::String(if known != *s { known } else { same_shape(s) })
                        }
                        _ => self.apply_json(value),
                    }
                }
            }
            _ => {}
        }
    }
}

/// What a JSON member holds, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    /// Contact details or a birth date: redacted by shape whoever they are of.
    Contact,
    /// A login token or password: a stand-in of its own.
    Token,
    /// A person's name: by shape when the run may not have emitted its patients.
    Name,
}

/// The kind of a member named `key` (`access_token`, `accessToken`, `Access-Token` are
/// one name).
fn member_kind(key: &str) -> Option<Member> {
    let name: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // Whole names, and endings (`mobilePhone`, `refresh_token`, `clientSecret`); short
    // words only whole (`tel` ends `hotel`).
    const CONTACT_NAMES: &[&str] = &["tel", "fax", "mail", "mobile", "dob", "birthday"];
    const CONTACT_ENDINGS: &[&str] = &[
        "phone",
        "phonenumber",
        "email",
        "emailaddress",
        "birthdate",
        "dateofbirth",
    ];
    const TOKEN_NAMES: &[&str] = &["session", "jwt", "authorization", "passwd", "auth"];
    const TOKEN_ENDINGS: &[&str] = &[
        "token",
        "password",
        "secret",
        "apikey",
        "sessionid",
        "cookie",
    ];
    const NAME_NAMES: &[&str] = &["nom", "prenom", "surname"];
    const NAME_ENDINGS: &[&str] = &[
        "firstname",
        "lastname",
        "givenname",
        "familyname",
        "maidenname",
        "birthname",
        "fullname",
        "patientname",
    ];
    let is = |names: &[&str], endings: &[&str]| {
        names.contains(&name.as_str()) || endings.iter().any(|w| name.ends_with(w))
    };
    if is(TOKEN_NAMES, TOKEN_ENDINGS) {
        Some(Member::Token)
    } else if is(CONTACT_NAMES, CONTACT_ENDINGS) {
        Some(Member::Contact)
    } else if is(NAME_NAMES, NAME_ENDINGS) {
        Some(Member::Name)
    } else {
        None
    }
}

/// A value of the same shape: digits `0`, letters `x`, the rest kept (`+33 6 12…` →
/// `+00 0 00…`, `zoe@ex.fr` → `xxx@xx.xx`, `1984-03-12` → `0000-00-00`).
fn same_shape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                '0'
            } else if c.is_alphabetic() {
                'x'
            } else {
                c
            }
        })
        .collect()
}

/// A date in the same format: `1984-03-12` → `1900-01-01`; another shape keeps its
/// separators, every digit `1` (`12/03/1984` → `11/11/1111`, still a date).
fn same_shape_date(d: Option<&str>) -> String {
    let d = d.unwrap_or_default();
    if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() {
        "1900-01-01".into()
    } else {
        d.chars()
            .map(|c| if c.is_ascii_digit() { '1' } else { c })
            .collect()
    }
}

fn digits_to_zero(s: Option<&str>) -> String {
    s.unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the run did not emit is redacted by kind: e-mails anywhere, contact members
    /// by shape, login tokens by one stand-in each, in the URLs as in the bodies.
    #[test]
    fn contacts_and_tokens_the_run_did_not_emit_are_redacted() {
        let body = serde_json::json!({
            "access_token": "eyJhbGciOi.payload.sig",
            "session": {"refreshToken": "r-77-secret-ish"},
            "patients": [{"mobilePhone": "06 55 12 34 56", "e-mail": "anna@x.example",
                "birthDate": "12/03/1984", "note": "write to anna@x.example"}],
            "agenda": {"id": 123456789, "label": "Cabinet"}
        });
        let exchange = Recorded {
            method: "GET".into(),
            url: "https://p.example/api/agenda?token=eyJhbGciOi.payload.sig&q=anna@x.example"
                .into(),
            request_body: None,
            status: 200,
            headers: vec![],
            body: serde_json::to_vec(&body).unwrap(),
        };
        let mut placeholders = Placeholders::new(&[]);
        placeholders.learn_tokens(std::slice::from_ref(&exchange));
        let mut v = body.clone();
        placeholders.apply_json(&mut v);
        assert_eq!(v["access_token"], "recorded-token-1");
        assert_eq!(v["session"]["refreshToken"], "recorded-token-2");
        let p = &v["patients"][0];
        assert_eq!(p["mobilePhone"], "00 00 00 00 00");
        assert_eq!(p["e-mail"], "redacted@example.invalid");
        assert_eq!(p["birthDate"], "11/11/1111");
        assert_eq!(p["note"], "write to redacted@example.invalid");
        // Ids and the rest as the platform sent them; a short word only whole.
        assert_eq!(v["agenda"], body["agenda"]);
        assert_eq!(member_kind("hotel"), None);
        assert_eq!(member_kind("nextPageToken"), Some(Member::Token));
        assert_eq!(
            placeholders.apply_text(&exchange.url),
            "https://p.example/api/agenda?token=recorded-token-1&q=redacted@example.invalid"
        );
    }

    #[test]
    fn patient_values_become_stand_ins_of_the_same_shape() {
        let p = PatientRecord {
            external_id: Some("pat-77".into()),
            first_name: "Zoéline".into(),
            last_name: "Quintardeau".into(),
            birth_date: Some("1984-03-12".into()),
            phone: Some("+33 6 55 12 34 56".into()),
            email: Some("zoe.q@patients.example".into()),
        };
        let stand_ins = Placeholders::new(&[p]);
        let mut v: Value = serde_json::json!({"patient": {
            "id": "pat-77", "name": "Zoéline Quintardeau", "last": "Quintardeau",
            "born": "1984-03-12", "phone": "+33 6 55 12 34 56",
            "mail": "zoe.q@patients.example", "n": 3},
            "practitioner": "Dr Ada Quintardeau"});
        stand_ins.apply_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"patient": {
                "id": "patient-1", "name": "Prénom1 Nom1", "last": "Nom1",
                "born": "1900-01-01", "phone": "+00 0 00 00 00 00",
                "mail": "patient1@example.invalid", "n": 3},
                "practitioner": "Dr Ada Quintardeau"})
        );
    }
}
