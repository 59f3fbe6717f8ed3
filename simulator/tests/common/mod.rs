//! Helpers shared by the simulator's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use calpump_simulator::{SimConfig, Simulator, catalogue};
use serde_json::Value;

pub fn cfg() -> SimConfig {
    SimConfig {
        rooms: 12,
        events_per_room: 40,
        users: 10,
        seed: 5,
        anchor: "2025-06-02T00:00:00Z".parse().ok(),
        ..SimConfig::default()
    }
}

pub async fn start() -> Simulator {
    Simulator::start(cfg()).await.unwrap()
}

/// A client-credentials token for the good Graph app.
pub async fn graph_token(sim: &Simulator) -> String {
    token(
        sim,
        catalogue::GRAPH_APP_ID,
        catalogue::GRAPH_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap()
}

pub async fn token(
    sim: &Simulator,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Result<String, Value> {
    let r = reqwest::Client::new()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let ok = r.status().is_success();
    let v: Value = r.json().await.unwrap();
    if ok {
        Ok(v["access_token"].as_str().unwrap().to_string())
    } else {
        Err(v)
    }
}

pub async fn get(sim: &Simulator, token: &str, url: &str, prefer: &[&str]) -> (u16, Value) {
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{}", sim.graph_url(), url)
    };
    let mut req = reqwest::Client::new().get(url).bearer_auth(token);
    for p in prefer {
        req = req.header("Prefer", *p);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
