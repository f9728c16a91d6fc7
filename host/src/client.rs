//! A typed client of the admin API: one method per endpoint, taking and returning the
//! service's own types, with query strings encoded by `reqwest` (never formatted by
//! hand). The command line's `--server` mode is built on it; so can other tools.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use passerelle_model::connector::Activation;
use passerelle_model::connector::{Canary, Rejection};
use passerelle_model::pause::Pause;
use passerelle_model::quarantine::{QuarantineFilter, QuarantinedItem};
use passerelle_model::run::Run;
use passerelle_service::accounts::{AccountUpdate, CheckedAccount, NewAccount};
use passerelle_service::check::AccountCheck;
use passerelle_service::connectors::{ConnectorView, InstallAnswer};
use passerelle_service::practices::{NewPractice, PracticeUpdate, PracticeView};
use passerelle_service::runs::{Resumed, RunQuery, SyncAccepted, SyncRequest};
use passerelle_service::subscriptions::{AddSubscription, CreatedSubscription, SubscriptionView};
use passerelle_store::practices::Account;
use passerelle_wire::{ApproveRequest, CanaryRequest, Replay, SecretValue, VersionChoice};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--server must be an http:// or https:// URL, such as http://127.0.0.1:8787")]
    BadUrl,
    #[error("cannot reach the daemon at {base}: {source}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the daemon refused the token ({message}); give it with --token or PASSERELLE_TOKEN")]
    Unauthorized { message: String },
    /// The daemon answered with an error: its status, code and message.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("unexpected answer from the daemon ({what}): {source}")]
    Unexpected {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A client of one daemon's admin API.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

type Answer<T> = Result<T, ClientError>;

impl Client {
    pub fn new(base: &str, token: &str) -> Answer<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| ClientError::Unreachable {
                base: base.clone(),
                source,
            })?;
        Ok(Client {
            base,
            token: token.to_string(),
            http,
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Answer<T> {
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                base: self.base.clone(),
                source,
            })?;
        let status = response.status();
        let url = response.url().path().to_string();
        let text = response
            .text()
            .await
            .map_err(|source| ClientError::Unreachable {
                base: self.base.clone(),
                source,
            })?;
        if !status.is_success() {
            let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
            let message = body["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or(text);
            if status == StatusCode::UNAUTHORIZED {
                return Err(ClientError::Unauthorized { message });
            }
            return Err(ClientError::Refused {
                status,
                code: body["error"]["code"].as_str().unwrap_or("").to_string(),
                message,
            });
        }
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).map_err(|source| ClientError::Unexpected { what: url, source })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &impl Serialize) -> Answer<T> {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Answer<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `GET /v1/practices`.
    pub async fn practices(&self) -> Answer<Vec<PracticeView>> {
        self.get("/v1/practices", &()).await
    }

    /// `POST /v1/practices`.
    pub async fn create_practice(&self, new: &NewPractice) -> Answer<PracticeView> {
        self.post("/v1/practices", new).await
    }

    /// `PATCH /v1/practices/{id}`.
    pub async fn update_practice(&self, id: &str, update: &PracticeUpdate) -> Answer<PracticeView> {
        self.send(
            self.request(Method::PATCH, &format!("/v1/practices/{}", seg(id)))
                .json(update),
        )
        .await
    }

    /// `GET /v1/practices/{id}`.
    pub async fn practice(&self, id: &str) -> Answer<PracticeView> {
        self.get(&format!("/v1/practices/{}", seg(id)), &()).await
    }

    /// `GET /v1/accounts/{id}`.
    pub async fn account(&self, id: &str) -> Answer<Account> {
        self.get(&format!("/v1/accounts/{}", seg(id)), &()).await
    }

    /// `PATCH /v1/accounts/{id}`.
    pub async fn update_account(&self, id: &str, update: &AccountUpdate) -> Answer<CheckedAccount> {
        self.send(
            self.request(Method::PATCH, &format!("/v1/accounts/{}", seg(id)))
                .json(update),
        )
        .await
    }

    /// `GET /v1/accounts?practice=`.
    pub async fn accounts(&self, practice: Option<&str>) -> Answer<Vec<Account>> {
        self.get("/v1/accounts", &[("practice", practice)]).await
    }

    /// `POST /v1/practices/{id}/accounts`.
    pub async fn create_account(&self, practice: &str, new: &NewAccount) -> Answer<CheckedAccount> {
        self.post(&format!("/v1/practices/{}/accounts", seg(practice)), new)
            .await
    }

    /// `DELETE /v1/accounts/{id}?with_data=`.
    pub async fn delete_account(&self, id: &str, with_data: bool) -> Answer<()> {
        let _: Value = self
            .send(
                self.request(Method::DELETE, &format!("/v1/accounts/{}", seg(id)))
                    .query(&[("with_data", with_data)]),
            )
            .await?;
        Ok(())
    }

    /// `POST /v1/accounts/{id}/check`.
    pub async fn check_account(&self, account: &str) -> Answer<AccountCheck> {
        self.send(self.request(
            Method::POST,
            &format!("/v1/accounts/{}/check", seg(account)),
        ))
        .await
    }

    /// `PUT /v1/accounts/{id}/secrets/{name}`.
    pub async fn set_secret(&self, account: &str, name: &str, value: &str) -> Answer<()> {
        let _: Value = self
            .send(
                self.request(
                    Method::PUT,
                    &format!("/v1/accounts/{}/secrets/{}", seg(account), seg(name)),
                )
                .json(&SecretValue {
                    value: value.to_string(),
                }),
            )
            .await?;
        Ok(())
    }

    /// `GET /v1/paused`.
    pub async fn paused(&self, connector: Option<&str>) -> Answer<Vec<Pause>> {
        self.get("/v1/paused", &[("connector", connector)]).await
    }

    /// `GET /v1/quarantine`.
    pub async fn quarantined(&self, filter: &QuarantineFilter) -> Answer<Vec<QuarantinedItem>> {
        #[derive(Serialize)]
        struct Query<'a> {
            connector: Option<&'a str>,
            account: Option<&'a str>,
            with_items: bool,
            limit: Option<i64>,
        }
        self.get(
            "/v1/quarantine",
            &Query {
                connector: filter.connector.as_deref(),
                account: filter.account_id.as_deref(),
                with_items: filter.with_items,
                limit: filter.limit,
            },
        )
        .await
    }

    /// `POST /v1/accounts/{id}/resume`.
    pub async fn resume(&self, account: &str) -> Answer<Resumed> {
        self.send(self.request(
            Method::POST,
            &format!("/v1/accounts/{}/resume", seg(account)),
        ))
        .await
    }

    /// `GET /v1/connectors`.
    pub async fn connectors(&self) -> Answer<Vec<ConnectorView>> {
        self.get("/v1/connectors", &()).await
    }

    /// `GET /v1/connectors/rejections`.
    pub async fn rejections(&self, limit: Option<i64>) -> Answer<Vec<Rejection>> {
        self.get("/v1/connectors/rejections", &[("limit", limit)])
            .await
    }

    /// `POST /v1/connectors` with a component's bytes.
    pub async fn install(&self, bytes: Vec<u8>) -> Answer<InstallAnswer> {
        self.send(
            self.request(Method::POST, "/v1/connectors")
                .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                .timeout(Duration::from_secs(300))
                .body(bytes),
        )
        .await
    }

    /// `POST /v1/connectors/{name}/approve`.
    pub async fn approve(&self, name: &str, version: &str) -> Answer<Activation> {
        let body = ApproveRequest {
            version: version.to_string(),
        };
        self.post(&format!("/v1/connectors/{}/approve", seg(name)), &body)
            .await
    }

    /// `POST /v1/connectors/{name}/shadow`.
    pub async fn shadow(
        &self,
        name: &str,
        version: &str,
    ) -> Answer<passerelle_service::flight::shadow::ShadowReport> {
        let body = ApproveRequest {
            version: version.to_string(),
        };
        self.post(&format!("/v1/connectors/{}/shadow", seg(name)), &body)
            .await
    }

    /// `POST /v1/connectors/{name}/rollback`.
    pub async fn rollback(&self, name: &str, version: Option<&str>) -> Answer<Activation> {
        let body = VersionChoice {
            version: version.map(str::to_string),
        };
        self.post(&format!("/v1/connectors/{}/rollback", seg(name)), &body)
            .await
    }

    /// `POST /v1/connectors/{name}/canary`.
    pub async fn start_canary(
        &self,
        name: &str,
        version: &str,
        practices: &[String],
    ) -> Answer<Canary> {
        let body = CanaryRequest {
            version: version.to_string(),
            practices: practices.to_vec(),
        };
        self.post(&format!("/v1/connectors/{}/canary", seg(name)), &body)
            .await
    }

    /// `POST /v1/connectors/{name}/promote`.
    pub async fn promote(&self, name: &str) -> Answer<Activation> {
        self.send(self.request(
            Method::POST,
            &format!("/v1/connectors/{}/promote", seg(name)),
        ))
        .await
    }

    /// `DELETE /v1/connectors/{name}/canary`.
    pub async fn stop_canary(&self, name: &str) -> Answer<()> {
        let _: Value = self
            .send(self.request(
                Method::DELETE,
                &format!("/v1/connectors/{}/canary", seg(name)),
            ))
            .await?;
        Ok(())
    }

    /// `POST /v1/practices/{id}/sync`.
    pub async fn sync(&self, practice: &str, request: &SyncRequest) -> Answer<SyncAccepted> {
        self.post(&format!("/v1/practices/{}/sync", seg(practice)), request)
            .await
    }

    /// `GET /v1/runs`.
    pub async fn runs(&self, query: &RunQuery) -> Answer<Vec<Run>> {
        self.get("/v1/runs", query).await
    }

    /// `GET /v1/daemons`.
    pub async fn daemons(&self) -> Answer<Vec<passerelle_model::daemon::DaemonRow>> {
        self.get("/v1/daemons", &()).await
    }

    /// `GET /v1/runs/{id}`.
    pub async fn run(&self, id: i64) -> Answer<Run> {
        self.get(&format!("/v1/runs/{id}"), &()).await
    }

    /// `GET /v1/runs/{id}/cassette`.
    pub async fn run_cassette(&self, id: i64) -> Answer<passerelle_service::flight::RunCassette> {
        self.get(&format!("/v1/runs/{id}/cassette"), &()).await
    }

    /// `GET /v1/practices/{id}/appointments`.
    pub async fn appointments(
        &self,
        practice: &str,
        query: &passerelle_service::records::AppointmentQuery,
    ) -> Answer<passerelle_service::records::AppointmentPage> {
        self.get(
            &format!("/v1/practices/{}/appointments", seg(practice)),
            query,
        )
        .await
    }

    /// `GET /v1/slots`.
    pub async fn slots(
        &self,
        query: &passerelle_service::records::SlotQuery,
    ) -> Answer<passerelle_service::records::SlotPage> {
        self.get("/v1/slots", query).await
    }

    /// `GET /v1/changes`.
    pub async fn changes(
        &self,
        query: &passerelle_service::feed::ChangeQuery,
    ) -> Answer<passerelle_service::feed::ChangePage> {
        self.get("/v1/changes", query).await
    }

    /// `GET /v1/subscriptions`.
    pub async fn subscriptions(&self) -> Answer<Vec<SubscriptionView>> {
        self.get("/v1/subscriptions", &()).await
    }

    /// `POST /v1/subscriptions`.
    pub async fn add_subscription(&self, add: &AddSubscription) -> Answer<CreatedSubscription> {
        self.post("/v1/subscriptions", add).await
    }

    /// `DELETE /v1/subscriptions/{id}`.
    pub async fn remove_subscription(&self, id: &str) -> Answer<()> {
        let _: Value = self
            .send(self.request(Method::DELETE, &format!("/v1/subscriptions/{}", seg(id))))
            .await?;
        Ok(())
    }

    /// `POST /v1/subscriptions/{id}/replay`.
    pub async fn replay_subscription(&self, id: &str, after: i64) -> Answer<SubscriptionView> {
        self.post(
            &format!("/v1/subscriptions/{}/replay", seg(id)),
            &Replay { after },
        )
        .await
    }
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
