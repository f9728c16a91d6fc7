//! A console client for the handler tests: logs in with a token, keeps the session
//! cookie, reads the CSRF token off the pages and posts forms as a browser would
//! (without following redirects, so a test sees each 303).

use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;

/// A console page (or a redirect).
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> Option<String> {
        let at = self.text.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
        let end = self.text[at..].find('"')?;
        Some(self.text[at..at + end].to_string())
    }
}

/// A browser-like client of one daemon's console.
pub struct Console {
    base: String,
    http: reqwest::Client,
    /// `passerelle_console=<id>` once logged in.
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Console {
    pub fn new(base: &str) -> Console {
        Console {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: None,
            csrf: None,
        }
    }

    async fn page(response: reqwest::Response) -> Page {
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("a body"),
        }
    }

    /// Logs in with `token`; on success keeps the cookie and the CSRF token.
    pub async fn login(&mut self, token: &str) -> Page {
        let response = self
            .http
            .post(format!("{}/console/login", self.base))
            .form(&[("token", token)])
            .send()
            .await
            .expect("the console answers");
        let page = Self::page(response).await;
        if let Some(set) = page.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            self.cookie = set.split(';').next().map(str::to_string);
            let overview = self.get("/console").await;
            self.csrf = overview.csrf();
        }
        page
    }

    pub async fn get(&self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            request = request.header(COOKIE, c);
        }
        Self::page(request.send().await.expect("the console answers")).await
    }

    /// Posts a form with the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, None).await
    }

    /// Posts exactly these fields, with an `Origin` header when given.
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(fields);
        if let Some(c) = &self.cookie {
            request = request.header(COOKIE, c);
        }
        if let Some(o) = origin {
            request = request.header(ORIGIN, o);
        }
        Self::page(request.send().await.expect("the console answers")).await
    }

    /// Uploads a component through the upload form (multipart, CSRF in the action).
    pub async fn upload(&self, bytes: Vec<u8>) -> Page {
        let form = reqwest::multipart::Form::new().part(
            "component",
            reqwest::multipart::Part::bytes(bytes).file_name("connector.wasm"),
        );
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut request = self
            .http
            .post(format!("{}/console/connectors/upload", self.base))
            .query(&[("csrf", csrf)])
            .multipart(form);
        if let Some(c) = &self.cookie {
            request = request.header(COOKIE, c);
        }
        Self::page(request.send().await.expect("the console answers")).await
    }
}
