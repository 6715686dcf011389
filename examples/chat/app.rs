//! The chat application, shared by the example's `main` and its tests.
//!
//! - `GET /` redirects to `/rooms/lobby`.
//! - `GET /rooms/{room}` is the chat page (room names: 1–40 of `A-Z a-z 0-9 _ -`).
//! - `GET /rooms/{room}/ws` is the room's WebSocket. A client sends `{"name": …, "text": …}`
//!   as text; everyone in the room, sender included, receives it back with `room` and `at`
//!   (milliseconds since the epoch) added. A binary message closes the socket with 1003,
//!   malformed JSON or an over-long field with 1008.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use squall::db::redis;
use squall::hub::Hub;
use squall::ws::{self, CloseCode, Message, WebSocket, WsConfig};
use squall::{App, Error, Html, Request, Response};

const PAGE: &str = include_str!("page.html");
const MAX_NAME: usize = 40;
const MAX_TEXT: usize = 2000;

#[derive(Deserialize)]
struct Said {
    name: String,
    text: String,
}

#[derive(Serialize)]
struct Posted<'a> {
    room: &'a str,
    name: &'a str,
    text: &'a str,
    at: u128,
}

/// The room from the path, if it is a valid room name.
fn room_of(req: &Request) -> Result<String, Error> {
    let room = req.param("room").unwrap_or_default();
    let valid = (1..=40).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(Error::new(
            squall::StatusCode::NOT_FOUND,
            "room names are 1-40 letters, digits, '_' or '-'",
        ));
    }
    Ok(room.into_owned())
}

async fn page(req: Request) -> Result<Html<String>, Error> {
    // Room names are restricted to characters that need no HTML escaping.
    Ok(Html(PAGE.replace("{{room}}", &room_of(&req)?)))
}

async fn socket(req: Request, config: Rc<WsConfig>) -> Result<Response, Error> {
    let room = room_of(&req)?;
    match ws::Upgrade::with_config(req, config) {
        Ok(upgrade) => Ok(upgrade.open(move |socket| chat(socket, room))),
        Err(rejection) => Ok(rejection.into()),
    }
}

async fn chat(socket: WebSocket, room: String) {
    let hub = Hub::current();
    let topic = format!("room:{room}");
    let _subscription = hub.subscribe(&topic, socket.sender());
    while let Some(message) = socket.recv().await {
        let Message::Text(text) = message else {
            socket.close(CloseCode::Unsupported, "messages are JSON text");
            continue;
        };
        let said = match serde_json::from_str::<Said>(text.as_str()) {
            Ok(said) if said.name.len() <= MAX_NAME && said.text.len() <= MAX_TEXT => said,
            _ => {
                socket.close(
                    CloseCode::Policy,
                    "expected {\"name\": ≤40 bytes, \"text\": ≤2000 bytes}",
                );
                continue;
            }
        };
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let posted = Posted {
            room: &room,
            name: said.name.trim(),
            text: &said.text,
            at,
        };
        let Ok(json) = serde_json::to_string(&posted) else {
            continue;
        };
        if let Err(e) = hub.publish(&topic, json).await {
            tracing::warn!("chat: the redis bridge failed: {e}");
        }
    }
}

/// The app for one core; `bridge` links the rooms to other machines through Redis.
pub fn app(bridge: Option<redis::RedisConfig>) -> App {
    if let Some(redis) = bridge {
        Hub::current().bridge_redis(redis, "squall-chat:");
    }
    let config = Rc::new(WsConfig::default().max_message_size(8 << 10));
    App::new()
        .get("/", |_req: Request| async {
            Response::redirect("/rooms/lobby")
        })
        .get("/rooms/{room}", page)
        .get("/rooms/{room}/ws", move |req| {
            socket(req, Rc::clone(&config))
        })
}
