//! The simulator's own API, under `/_sim`:
//! - `GET /_sim/practices`: the practices and their accounts, each with its platform
//!   and the connector settings and (simulated) secrets that point passerelle at it;
//! - `GET|PUT|DELETE /_sim/faults/{platform}`: read, set or clear a platform's faults;
//! - `POST /_sim/advance`: move the world one step on; answers what changed;
//! - `GET /_sim/requests`: the requests answered so far.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::faults::Faults;
use crate::{Simulator, PLATFORMS};

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/_sim/practices", get(practices))
        .route(
            "/_sim/faults/{platform}",
            get(get_faults).put(put_faults).delete(delete_faults),
        )
        .route("/_sim/advance", post(advance))
        .route("/_sim/requests", get(requests))
}

async fn practices(State(sim): State<Simulator>) -> Response {
    let world = sim.world();
    let practices: Vec<_> = world
        .practices
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "accounts": p.accounts.iter().map(|a| {
                    let (settings, secrets) = crate::settings(a);
                    let map = |pairs: Vec<(&str, String)>| {
                        pairs.into_iter().map(|(k, v)| (k.to_string(), json!(v)))
                            .collect::<serde_json::Map<_, _>>()
                    };
                    json!({
                        "id": a.id,
                        "platform": a.platform,
                        "label": a.label,
                        "settings": map(settings),
                        "secrets": map(secrets),
                        "appointments": a.appointments.len(),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "step": world.step, "clock": world.clock, "practices": practices }))
        .into_response()
}

/// A 404 naming the known platforms, unless `platform` is one.
fn unknown(platform: &str) -> Option<Response> {
    (!PLATFORMS.contains(&platform)).then(|| {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("unknown platform `{platform}`; known: {}", PLATFORMS.join(", "))})),
        )
            .into_response()
    })
}

async fn get_faults(State(sim): State<Simulator>, Path(platform): Path<String>) -> Response {
    if let Some(r) = unknown(&platform) {
        return r;
    }
    Json(sim.faults(&platform)).into_response()
}

async fn put_faults(
    State(sim): State<Simulator>,
    Path(platform): Path<String>,
    body: Result<Json<Faults>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = unknown(&platform) {
        return r;
    }
    match body {
        Ok(Json(faults)) => {
            sim.set_faults(&platform, faults.clone());
            Json(faults).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("invalid faults: {}", e.body_text())})),
        )
            .into_response(),
    }
}

async fn delete_faults(State(sim): State<Simulator>, Path(platform): Path<String>) -> Response {
    if let Some(r) = unknown(&platform) {
        return r;
    }
    sim.set_faults(&platform, Faults::default());
    StatusCode::NO_CONTENT.into_response()
}

async fn advance(State(sim): State<Simulator>) -> Response {
    Json(sim.advance()).into_response()
}

async fn requests(State(sim): State<Simulator>) -> Response {
    Json(sim.requests()).into_response()
}
