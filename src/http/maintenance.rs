//! `POST /v1/maintenance`: runs a maintenance pass now (retention, compaction, tier moves) and
//! answers its summary as JSON. Only the admin key may: a pass touches every tenant's data.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;

use super::guard::presented_key;
use super::{ApiError, HttpState};
use crate::store::policy::Policies;
use crate::store::tiers::MaintenanceReport;

/// Whether the request carries the admin key.
pub(super) fn is_admin(s: &HttpState, headers: &HeaderMap) -> bool {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented_key);
    // Digests are compared, so the time taken says nothing about the key's bytes.
    let digest = |k: &str| ring::digest::digest(&ring::digest::SHA256, k.as_bytes());
    key.is_some_and(|k| digest(&k).as_ref() == digest(&s.admin_key).as_ref())
}

/// Runs one pass under the server's policy and each tenant's overrides as stored now.
pub async fn run(
    State(s): State<HttpState>,
    headers: HeaderMap,
) -> Result<Json<MaintenanceReport>, ApiError> {
    if !is_admin(&s, &headers) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "maintenance needs the admin key: send Authorization: Bearer <admin key>",
        ));
    }
    let policies = Policies::load(s.tiers, &s.store.data_dir);
    // Its own task: a client that hangs up must not cut a pass between a commit and its install.
    let store = s.store.clone();
    let pass =
        tokio::spawn(async move { store.maintain(&policies, crate::model::now_micros()).await });
    let report = pass.await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the maintenance pass failed: {e}"),
        )
    })?;
    Ok(Json(report))
}
