//! Activity a Jupyter server saw that its gateway did not (a kernel
//! computing, terminal output), for idle culling: the one check the local
//! and the ECS runtimes both make before stopping an idle server.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// When the server was last active by its own account, if within `idle_ms`
/// of now: Jupyter's `last_activity` when that is recent, else now when a
/// kernel is busy; `None` when it is idle (or does not answer). `base` is
/// the server's URL prefix ending in `/` (e.g. `http://10.0.1.5:8888/jupyter/<id>/`);
/// the kernels are listed with `no_track_activity` so looking does not
/// count as activity.
pub async fn recent_activity(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    idle_ms: i64,
) -> Option<i64> {
    let auth = format!("token {token}");
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header(reqwest::header::AUTHORIZATION, &auth)
            .timeout(Duration::from_secs(5))
            .send()
    };
    let now = Utc::now().timestamp_millis();
    if let Ok(resp) = get("api/status").await {
        if let Ok(status) = resp.json::<serde_json::Value>().await {
            let last = status
                .get("last_activity")
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp_millis());
            if let Some(last) = last {
                if now - last < idle_ms {
                    return Some(last);
                }
            }
        }
    }
    if let Ok(resp) = get("api/kernels?no_track_activity=1").await {
        if let Ok(kernels) = resp.json::<Vec<serde_json::Value>>().await {
            let busy = kernels
                .iter()
                .any(|k| k.get("execution_state").and_then(|s| s.as_str()) == Some("busy"));
            if busy {
                return Some(now);
            }
        }
    }
    None
}
