//! `/v1/alerts`: the key's tenant's alert rules — `POST` one (JSON: name, sql, above/below,
//! every, for, cooldown, summary), `GET` them with their state, `POST …/{name}/mute` (optional
//! `{"for": "1h"}`) and `…/unmute`, `DELETE …/{name}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::guard::KeyTenant;
use super::{ApiError, HttpState};
use crate::alerts::rule::RuleSpec;
use crate::alerts::{now_ms, rfc3339, AlertError, Entry};

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> ApiError {
        let status = match &e {
            AlertError::Rule(_) | AlertError::Sql(_) | AlertError::Answer(_) => {
                StatusCode::BAD_REQUEST
            }
            AlertError::NotFound(_) => StatusCode::NOT_FOUND,
            AlertError::Exists(_) => StatusCode::CONFLICT,
            AlertError::Limit { .. } => StatusCode::FORBIDDEN,
            AlertError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A rule and its label sets as the API shows them.
pub fn view(e: &Entry) -> Value {
    let now = now_ms();
    let series: Vec<Value> = e
        .series
        .values()
        .map(|s| {
            json!({
                "labels": s.labels,
                "state": s.phase.as_str(),
                "value": s.value,
                "since": s.since.map(rfc3339),
                "last_fired": s.last_fired.map(rfc3339),
                "last_notified": s.last_notified.map(rfc3339),
            })
        })
        .collect();
    let human = |d: std::time::Duration| humantime::format_duration(d).to_string();
    json!({
        "name": e.rule.name,
        "sql": e.rule.sql,
        "above": e.rule.above,
        "below": e.rule.below,
        "threshold": e.rule.threshold(),
        "every": human(e.rule.every),
        "for": human(e.rule.hold),
        "cooldown": human(e.rule.cooldown),
        "summary": e.rule.summary,
        "muted": e.muted(now),
        "muted_until": e.muted_until.filter(|t| *t != i64::MAX && *t > now).map(rfc3339),
        "silenced_by": e.silenced_by,
        "last_eval": e.last_eval_ms.map(rfc3339),
        "last_error": e.last_error,
        "series": series,
    })
}

pub async fn add(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: RuleSpec = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the rule does not read: {e} (send {{\"name\", \"sql\", \"above\" or \"below\", \"every\", \"for\", \"cooldown\"}})"),
        )
    })?;
    let entry = s.alerts.add(&tenant, &spec).await?;
    Ok((StatusCode::CREATED, Json(view(&entry))).into_response())
}

pub async fn list(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
) -> Json<Value> {
    let rules: Vec<Value> = s.alerts.list(&tenant).iter().map(view).collect();
    Json(json!({ "rules": rules }))
}

pub async fn one(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    s.alerts
        .list(&tenant)
        .iter()
        .find(|e| e.rule.name == name)
        .map(|e| Json(view(e)))
        .ok_or_else(|| AlertError::NotFound(name).into())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MuteFor {
    #[serde(rename = "for")]
    hold: Option<String>,
}

pub async fn mute(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let bad = |reason: String| ApiError::new(StatusCode::BAD_REQUEST, reason);
    let asked: MuteFor = if body.iter().all(u8::is_ascii_whitespace) {
        MuteFor::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "the body does not read: {e} (send {{\"for\": \"1h\"}} or nothing)"
            ))
        })?
    };
    let until = match asked.hold.as_deref() {
        None => i64::MAX,
        Some(text) => {
            let d = humantime::parse_duration(text.trim())
                .map_err(|e| bad(format!("for {text:?}: {e} (use 30m, 2h, 1d)")))?;
            let ms = i64::try_from(d.as_millis())
                .ok()
                .filter(|ms| *ms <= 366 * 86_400_000)
                .ok_or_else(|| bad(format!("for {text:?}: at most a year")))?;
            now_ms() + ms
        }
    };
    Ok(Json(view(&s.alerts.mute(&tenant, &name, Some(until))?)))
}

pub async fn unmute(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&s.alerts.mute(&tenant, &name, None)?)))
}

pub async fn remove(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&s.alerts.remove(&tenant, &name)?)))
}
