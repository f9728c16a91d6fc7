//! Cassettes: recorded HTTP exchanges a connector run is replayed against.
//!
//! A cassette is a folder with a `cassette.toml` listing exchanges in order. Each has a
//! request matcher — `method` (default `GET`), `url` (origin and path must be equal; the
//! query parameters it carries must all be present with those values, others may be
//! added), optional `headers` (names case-insensitive, values equal), optional
//! `body_json` (a table the request's JSON body must hold) — and the response:
//! `status` (default 200), `headers`, and its body as `body` (a file, relative to the
//! cassette folder, inside it or inside a fixtures root the tester names — `--fixtures`,
//! `PASSERELLE_FIXTURES`, e.g. `../shared/fixtures` — and at most [`MAX_BODY`] bytes;
//! symbolic links are followed before the check) or `body_text` (inline). A request is answered by the first exchange that matches, as
//! often as it is asked: matching is deterministic and a second run replays the same.
//!
//! ```toml
//! [[exchange]]
//! url = "https://www.doctolib.fr/booking/centre-x.json"
//! body = "../../shared/fixtures/doctolib/basic-booking.json"
//!
//! [[exchange]]
//! url = "https://www.doctolib.fr/availabilities.json?visit_motive_ids=2"
//! headers = { accept = "application/json" }
//! status = 200
//! headers_out = { "content-type" = "application/json" }
//! body_text = '{"availabilities": []}'
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// The index file of a cassette folder.
pub const INDEX: &str = "cassette.toml";

/// The largest body file a cassette may name (the largest recorded platform answer
/// is a few MiB).
pub const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Why a cassette cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("{0}: no such cassette folder")]
    Missing(PathBuf),
    #[error("{0}: no cassette.toml there nor in any folder in it")]
    NoneIn(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a cassette index: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("{path}: exchange {index}: {message}")]
    Exchange {
        path: PathBuf,
        index: usize,
        message: String,
    },
}

/// The cassettes `dir` names: itself when it holds a `cassette.toml`, else each folder
/// in it that does, by name.
pub fn cassettes_in(dir: &Path) -> Result<Vec<PathBuf>, CassetteError> {
    if !dir.is_dir() {
        return Err(CassetteError::Missing(dir.to_path_buf()));
    }
    if dir.join("cassette.toml").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let read = |source| CassetteError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.join("cassette.toml").is_file() {
            found.push(path);
        }
    }
    if found.is_empty() {
        return Err(CassetteError::NoneIn(dir.to_path_buf()));
    }
    found.sort();
    Ok(found)
}

/// A cassette as written in `cassette.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassetteFile {
    /// How to replay it, unless `connector test`'s flags say otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayDefaults>,
    #[serde(default, rename = "exchange")]
    pub exchanges: Vec<ExchangeFile>,
}

/// `[replay]`: the account and clock a cassette was recorded with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayDefaults {
    /// The run's clock (`--now`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// `PAST:FUTURE` days (`--window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Account settings (`--setting`; a flag replaces the same key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    /// The recorded run's mode: `full` replays in full without `--full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The cursor the recorded run started from: an incremental replay starts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One exchange as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeFile {
    #[serde(default = "get", skip_serializing_if = "is_get")]
    pub method: String,
    pub url: String,
    /// Request headers that must be present with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// What the request's JSON body must hold: every key given, with that value
    /// (objects compared member by member, anything else as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_json: Option<toml::Table>,
    #[serde(default = "ok", skip_serializing_if = "is_ok")]
    pub status: u16,
    /// Response headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_out: BTreeMap<String, String>,
    /// Response body file, relative to the cassette folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Response body, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// Where this answer comes from when not from the platform (e.g. `"made up"`):
    /// shown in the report next to each request it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn get() -> String {
    "GET".into()
}
fn is_get(m: &String) -> bool {
    m == "GET"
}
fn ok() -> u16 {
    200
}
fn is_ok(s: &u16) -> bool {
    *s == 200
}

/// A loaded cassette: matchers and response bodies in memory.
#[derive(Debug, Clone)]
pub struct Cassette {
    pub dir: PathBuf,
    pub replay: ReplayDefaults,
    pub exchanges: Vec<Exchange>,
}

/// One loaded exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// `scheme://host:port`.
    pub origin: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// A subset the request's JSON body must hold.
    pub body_json: Option<serde_json::Value>,
    pub status: u16,
    pub headers_out: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Where the body came from (a file, or `inline`), for reports.
    pub body_source: String,
    /// The cassette's note on this exchange (`"made up"`), for reports.
    pub note: Option<String>,
}

/// A request as the replay server saw it, with the origin the connector asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub method: String,
    pub origin: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-case names. Never reported: values may carry secrets.
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl Request {
    /// `GET https://host/path?query`, for reports.
    pub fn line(&self) -> String {
        let origin = self
            .origin
            .strip_suffix(":443")
            .filter(|_| self.origin.starts_with("https:"))
            .or_else(|| {
                self.origin
                    .strip_suffix(":80")
                    .filter(|_| self.origin.starts_with("http:"))
            })
            .unwrap_or(&self.origin);
        let mut url = format!("{origin}{}", self.path);
        if !self.query.is_empty() {
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            url = format!("{url}?{}", q.join("&"));
        }
        format!("{} {url}", self.method)
    }
}

impl Cassette {
    /// Reads `dir/cassette.toml` and every body it names: each inside `dir` or one of
    /// `fixtures` (a cassette from elsewhere cannot make the tester read and print
    /// `../../etc/…`).
    pub fn load(dir: &Path, fixtures: &[PathBuf]) -> Result<Cassette, CassetteError> {
        if !dir.is_dir() {
            return Err(CassetteError::Missing(dir.to_path_buf()));
        }
        let index = dir.join(INDEX);
        let text = std::fs::read_to_string(&index).map_err(|source| CassetteError::Read {
            path: index.clone(),
            source,
        })?;
        let file: CassetteFile = toml::from_str(&text).map_err(|e| CassetteError::Malformed {
            path: index.clone(),
            message: e.to_string(),
        })?;
        if file.exchanges.is_empty() {
            return Err(CassetteError::Malformed {
                path: index,
                message: "no [[exchange]]".into(),
            });
        }
        let roots: Vec<PathBuf> = std::iter::once(dir)
            .chain(fixtures.iter().map(PathBuf::as_path))
            .filter_map(|d| d.canonicalize().ok())
            .collect();
        let mut exchanges = Vec::with_capacity(file.exchanges.len());
        for (i, e) in file.exchanges.into_iter().enumerate() {
            let bad = |message: String| CassetteError::Exchange {
                path: index.clone(),
                index: i + 1,
                message,
            };
            exchanges.push(Exchange::load(dir, &roots, e).map_err(bad)?);
        }
        let replay = file.replay.unwrap_or_default();
        let bad = |message: String| CassetteError::Malformed {
            path: index.clone(),
            message,
        };
        if let Some(now) = &replay.now {
            parse_now(now).map_err(|e| bad(format!("[replay] now: {e}")))?;
        }
        if let Some(window) = &replay.window {
            parse_window(window).map_err(|e| bad(format!("[replay] window: {e}")))?;
        }
        Ok(Cassette {
            dir: dir.to_path_buf(),
            replay,
            exchanges,
        })
    }

    /// The index of the first exchange matching `request`.
    pub fn find(&self, request: &Request) -> Option<usize> {
        self.exchanges
            .iter()
            .position(|e| e.mismatches(request).is_empty())
    }

    /// Up to three exchanges closest to `request`, each with what differs.
    pub fn closest(&self, request: &Request) -> Vec<(usize, Vec<String>)> {
        let mut all: Vec<(usize, Vec<String>)> = self
            .exchanges
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.mismatches(request)))
            .collect();
        all.sort_by_key(|(i, m)| (m.len(), *i));
        all.truncate(3);
        all
    }
}

/// A body file's bytes, if it lies under one of `roots` (already canonical) and is
/// no larger than [`MAX_BODY`]. The file is opened once, checked through its handle.
fn read_body(path: &Path, named: &str, roots: &[PathBuf]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let real = path
        .canonicalize()
        .map_err(|err| format!("body `{}`: {err}", path.display()))?;
    if !roots.iter().any(|r| real.starts_with(r)) {
        return Err(format!(
            "body `{named}` lies outside the cassette folder and every fixtures root: refused (name the folder that holds it with --fixtures or PASSERELLE_FIXTURES)"
        ));
    }
    let file =
        std::fs::File::open(&real).map_err(|err| format!("body `{}`: {err}", real.display()))?;
    let meta = file
        .metadata()
        .map_err(|err| format!("body `{}`: {err}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("body `{named}` is not a file"));
    }
    if meta.len() > MAX_BODY {
        return Err(format!(
            "body `{named}` is {} bytes, over the {MAX_BODY}-byte limit",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_BODY + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("body `{}`: {err}", real.display()))?;
    if bytes.len() as u64 > MAX_BODY {
        return Err(format!(
            "body `{named}` grew over the {MAX_BODY}-byte limit"
        ));
    }
    Ok(bytes)
}

impl Exchange {
    fn load(dir: &Path, roots: &[PathBuf], e: ExchangeFile) -> Result<Exchange, String> {
        let url = Url::parse(&e.url).map_err(|err| format!("url `{}`: {err}", e.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("url `{}`: not an http(s) URL", e.url));
        }
        let method = e.method.to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("method `{}` is not an HTTP method", e.method));
        }
        if !(100..=599).contains(&e.status) {
            return Err(format!("status {} is not an HTTP status", e.status));
        }
        let (body, body_source) = match (e.body, e.body_text) {
            (Some(_), Some(_)) => return Err("give `body` or `body_text`, not both".into()),
            (Some(file), None) => (read_body(&dir.join(&file), &file, roots)?, file),
            (None, Some(text)) => (text.into_bytes(), "inline".into()),
            (None, None) => (Vec::new(), "empty".into()),
        };
        Ok(Exchange {
            method,
            origin: origin_of(&url),
            path: url.path().to_string(),
            query: url.query_pairs().into_owned().collect(),
            headers: e
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body_json: match e.body_json {
                None => None,
                Some(t) => {
                    Some(serde_json::to_value(t).map_err(|err| format!("body_json: {err}"))?)
                }
            },
            status: e.status,
            headers_out: e.headers_out.into_iter().collect(),
            body,
            body_source,
            note: e.note.filter(|n| !n.trim().is_empty()),
        })
    }

    /// What keeps this exchange from matching `r` (empty: it matches).
    pub fn mismatches(&self, r: &Request) -> Vec<String> {
        let mut out = Vec::new();
        if self.method != r.method {
            out.push(format!("method {} ≠ {}", self.method, r.method));
        }
        if self.origin != r.origin {
            out.push(format!("origin {} ≠ {}", self.origin, r.origin));
        }
        if self.path != r.path {
            out.push(format!("path {} ≠ {}", self.path, r.path));
        }
        for (k, v) in &self.query {
            match r.query.iter().find(|(rk, _)| rk == k) {
                None => out.push(format!("query `{k}` missing")),
                Some(_) if r.query.iter().any(|(rk, rv)| rk == k && rv == v) => {}
                Some((_, rv)) => out.push(format!("query {k}={v} ≠ {rv}")),
            }
        }
        for (k, v) in &self.headers {
            match r.headers.iter().find(|(rk, _)| rk == k) {
                None => out.push(format!("header `{k}` missing")),
                Some((_, rv)) if rv == v => {}
                // Header values may carry secrets: say that it differs, not what it is.
                Some(_) => out.push(format!("header `{k}` differs")),
            }
        }
        if let Some(wanted) = &self.body_json {
            match serde_json::from_slice::<serde_json::Value>(&r.body) {
                Err(_) => out.push("body is not JSON".into()),
                Ok(got) => subset_mismatches(wanted, &got, "body", &mut out),
            }
        }
        out
    }
}

/// Where `got` lacks what `wanted` holds (objects member by member), named by path; the
/// values themselves are not shown (a body may carry patient data).
fn subset_mismatches(
    wanted: &serde_json::Value,
    got: &serde_json::Value,
    at: &str,
    out: &mut Vec<String>,
) {
    match (wanted, got) {
        (serde_json::Value::Object(w), serde_json::Value::Object(g)) => {
            for (k, wv) in w {
                let path = format!("{at}.{k}");
                match g.get(k) {
                    None => out.push(format!("{path} missing")),
                    Some(gv) => subset_mismatches(wv, gv, &path, out),
                }
            }
        }
        (w, g) if w == g => {}
        _ => out.push(format!("{at} differs")),
    }
}

/// A run's clock: RFC 3339, or a date (midnight UTC).
pub fn parse_now(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .map_err(|_| {
            format!(
                "`{s}` is not an RFC 3339 time (2021-04-03T09:00:00+02:00) or a date (2021-04-03)"
            )
        })
}

/// A sync window, `PAST:FUTURE` in days around the run's clock.
pub fn parse_window(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not PAST:FUTURE in days (e.g. 0:14)");
    let (past, future) = s.split_once(':').ok_or_else(bad)?;
    let past = past.trim().parse().map_err(|_| bad())?;
    let future: u32 = future.trim().parse().map_err(|_| bad())?;
    if future == 0 && past == 0 {
        return Err(format!("`{s}`: the window is empty"));
    }
    Ok((past, future))
}

/// `scheme://host:port` with the port always written.
pub fn origin_of(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use crate::cassette::*;

    fn write(dir: &Path, index: &str) {
        std::fs::write(dir.join(INDEX), index).unwrap();
    }

    fn request(url: &str) -> Request {
        let u = Url::parse(url).unwrap();
        Request {
            method: "GET".into(),
            origin: origin_of(&u),
            path: u.path().into(),
            query: u.query_pairs().into_owned().collect(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
        }
    }

    #[test]
    fn the_first_matching_exchange_answers_and_query_is_a_subset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        write(
            dir.path(),
            r#"
[[exchange]]
url = "https://x.example/a?k=1"
body = "a.json"
[[exchange]]
url = "https://x.example/a"
status = 404
"#,
        );
        let c = Cassette::load(dir.path(), &[]).unwrap();
        assert_eq!(c.exchanges[0].body, b"{}");
        assert_eq!(c.find(&request("https://x.example/a?k=1&other=2")), Some(0));
        assert_eq!(c.find(&request("https://x.example/a?k=2")), Some(1));
        assert_eq!(c.find(&request("https://x.example:443/a")), Some(1));
        assert_eq!(c.find(&request("https://y.example/a")), None);
        let closest = c.closest(&request("https://x.example/b?k=2"));
        assert_eq!(closest[0].0, 1);
        assert_eq!(closest[0].1, vec!["path /a ≠ /b".to_string()]);
        assert!(closest[1].1.contains(&"query k=1 ≠ 2".to_string()));
    }

    #[test]
    fn headers_match_case_insensitively_by_name() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "[[exchange]]\nurl = \"https://x.example/\"\nheaders = { Accept = \"application/json\" }\n",
        );
        let c = Cassette::load(dir.path(), &[]).unwrap();
        assert_eq!(c.find(&request("https://x.example/")), Some(0));
        let mut r = request("https://x.example/");
        r.headers.clear();
        assert_eq!(c.closest(&r)[0].1, vec!["header `accept` missing"]);
    }

    #[test]
    fn a_json_body_matches_by_subset() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "[[exchange]]\nmethod = \"POST\"\nurl = \"https://x.example/slots\"\n\
             body_json = { reason = \"r1\", range = { start = \"2021-05-12\" } }\n",
        );
        let c = Cassette::load(dir.path(), &[]).unwrap();
        let mut r = request("https://x.example/slots");
        r.method = "POST".into();
        r.body = br#"{"reason":"r1","range":{"start":"2021-05-12","end":"x"},"n":1}"#.to_vec();
        assert_eq!(c.find(&r), Some(0));
        r.body = br#"{"reason":"r2","range":{}}"#.to_vec();
        assert_eq!(
            c.closest(&r)[0].1,
            ["body.range.start missing", "body.reason differs"]
        );
        r.body = b"reason=r1".to_vec();
        assert_eq!(c.closest(&r)[0].1, ["body is not JSON"]);
    }

    #[test]
    fn bad_cassettes_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Cassette::load(&dir.path().join("nope"), &[]).unwrap_err();
        assert!(matches!(missing, CassetteError::Missing(_)), "{missing}");
        let no_index = Cassette::load(dir.path(), &[]).unwrap_err();
        assert!(matches!(no_index, CassetteError::Read { .. }), "{no_index}");
        write(dir.path(), "[[exchange]]\nurll = 1\n");
        let e = Cassette::load(dir.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("unknown field `urll`"), "{e}");
        write(
            dir.path(),
            "[[exchange]]\nurl = \"https://x.example/\"\nbody = \"gone.json\"\n",
        );
        let e = Cassette::load(dir.path(), &[]).unwrap_err().to_string();
        assert!(e.contains("exchange 1") && e.contains("gone.json"), "{e}");
        write(dir.path(), "[[exchange]]\nurl = \"ftp://x.example/\"\n");
        let e = Cassette::load(dir.path(), &[]).unwrap_err().to_string();
        assert!(e.contains("not an http(s) URL"), "{e}");
    }

    #[test]
    fn a_body_stays_inside_the_cassette_or_a_fixtures_root() {
        let outer = tempfile::tempdir().unwrap();
        let cassette = outer.path().join("cassette");
        let fixtures = outer.path().join("fixtures");
        let secret = outer.path().join("secret.txt");
        std::fs::create_dir_all(&cassette).unwrap();
        std::fs::create_dir_all(&fixtures).unwrap();
        std::fs::write(fixtures.join("f.json"), "[]").unwrap();
        std::fs::write(&secret, "host secret").unwrap();
        std::os::unix::fs::symlink(&secret, cassette.join("link.json")).unwrap();
        let with = |body: &str| {
            write(
                &cassette,
                &format!("[[exchange]]\nurl = \"https://x.example/\"\nbody = \"{body}\"\n"),
            );
        };
        for escaping in ["../secret.txt", "link.json", "../fixtures/f.json"] {
            with(escaping);
            let e = Cassette::load(&cassette, &[]).unwrap_err().to_string();
            assert!(e.contains("outside the cassette folder"), "{escaping}: {e}");
            assert!(!e.contains("host secret"), "{e}");
        }
        // Named as a fixtures root, the folder is readable; the secret still is not.
        with("../fixtures/f.json");
        let c = Cassette::load(&cassette, std::slice::from_ref(&fixtures)).unwrap();
        assert_eq!(c.exchanges[0].body, b"[]");
        with("../secret.txt");
        assert!(Cassette::load(&cassette, &[fixtures]).is_err());
    }
}
