//! Admin API: what was synced, read back — a practice's appointments (patient fields only
//! with the `patients:read` scope and `patients=true`) and slots, a page at a time.

use axum::extract::State;
use axum::Json;

use super::{ApiError, ApiState, ErrorBody, Params, PathParams};
use passerelle_service::records::{AppointmentPage, AppointmentQuery, SlotPage, SlotQuery};

#[utoipa::path(
    get,
    path = "/v1/practices/{id}/appointments",
    operation_id = "listAppointments",
    tag = "records",
    summary = "A practice's stored appointments by start, a page at a time; patients as initials unless patients=true (needs the patients:read scope)",
    params(("id" = String, Path, description = "Practice id"), AppointmentQuery),
    responses(
        (status = 200, description = "A page of appointments", body = AppointmentPage),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the scope", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn appointments(
    State(state): State<ApiState>,
    PathParams(practice_id): PathParams<String>,
    Params(query): Params<AppointmentQuery>,
) -> Result<Json<AppointmentPage>, ApiError> {
    Ok(Json(
        state
            .daemon
            .app
            .appointments_page(&practice_id, &query)
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/v1/slots",
    operation_id = "listSlots",
    tag = "records",
    summary = "Stored slots (public availability) by start, a page at a time",
    params(SlotQuery),
    responses(
        (status = 200, description = "A page of slots", body = SlotPage),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the scope", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn slots(
    State(state): State<ApiState>,
    Params(query): Params<SlotQuery>,
) -> Result<Json<SlotPage>, ApiError> {
    Ok(Json(state.daemon.app.slots_page(&query).await?))
}
