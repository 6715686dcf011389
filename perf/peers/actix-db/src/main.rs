//! actix-web peer for squall's database benchmark, shaped like the leading TechEmpower entries:
//! one worker per core, and in each worker ONE tokio-postgres connection with its statements
//! prepared once, the queries of a request pipelined on that connection, one bulk UPDATE per
//! `/updates` request, sailfish for `/fortunes`, and a per-worker row cache for
//! `/cached-queries` warmed before the worker accepts connections.
//!
//! Environment: `SQUALL_ADDR` (default `127.0.0.1:8080`), `SQUALL_WORKERS` (default: the CPUs
//! this process may run on), `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use std::cell::RefCell;

use actix_web::http::header::{CONTENT_TYPE, HeaderValue, SERVER};
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::future::try_join_all;
use sailfish::TemplateSimple;
use serde::Serialize;
use tokio_postgres::{Client, NoTls, Statement};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const WORLD_ROWS: i32 = 10_000;
const MAX_QUERIES: i64 = 500;

const SERVER_NAME: HeaderValue = HeaderValue::from_static("actix");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

#[derive(Clone, Copy, Serialize)]
struct World {
    id: i32,
    #[serde(rename = "randomNumber")]
    random_number: i32,
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

struct Fortune {
    id: i32,
    message: String,
}

#[derive(TemplateSimple)]
#[template(path = "fortunes.stpl")]
struct FortunesPage {
    fortunes: Vec<Fortune>,
}

/// What one worker owns: its single connection, the statements prepared on it, and its cache.
struct Db {
    client: Client,
    select_world: Statement,
    select_fortunes: Statement,
    update_worlds: Statement,
    cache: RefCell<quick_cache::unsync::Cache<i32, World>>,
}

impl Db {
    /// Connects, prepares every statement once and loads all world rows into the cache.
    /// Runs inside the worker, so the connection task lives on that worker's runtime.
    async fn connect(url: &str) -> Result<Db, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        actix_web::rt::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("peer-actix-db: database connection closed: {e}");
            }
        });
        let select_world = client
            .prepare("SELECT id, randomnumber FROM world WHERE id = $1")
            .await?;
        let select_fortunes = client.prepare("SELECT id, message FROM fortune").await?;
        // Ids arrive sorted and distinct, so concurrent requests lock rows in one order.
        let update_worlds = client
            .prepare(
                "UPDATE world SET randomnumber = v.rnd \
                 FROM UNNEST($1::int[], $2::int[]) AS v(id, rnd) \
                 WHERE world.id = v.id",
            )
            .await?;
        let mut cache = quick_cache::unsync::Cache::new(WORLD_ROWS as usize);
        for row in client
            .query("SELECT id, randomnumber FROM world", &[])
            .await?
        {
            let world = World {
                id: row.get(0),
                random_number: row.get(1),
            };
            cache.insert(world.id, world);
        }
        Ok(Db {
            client,
            select_world,
            select_fortunes,
            update_worlds,
            cache: RefCell::new(cache),
        })
    }

    async fn world(&self, id: i32) -> Result<World, tokio_postgres::Error> {
        let row = self.client.query_one(&self.select_world, &[&id]).await?;
        Ok(World {
            id: row.get(0),
            random_number: row.get(1),
        })
    }

    /// `n` random rows, every SELECT in flight at once on the one connection.
    async fn worlds(&self, n: usize) -> Result<Vec<World>, tokio_postgres::Error> {
        try_join_all((0..n).map(|_| self.world(random_id()))).await
    }
}

fn random_id() -> i32 {
    fastrand::i32(1..=WORLD_ROWS)
}

/// The `name` query parameter by the TechEmpower rules: missing or not an integer → 1,
/// otherwise clamped to 1..=500.
fn query_count(req: &HttpRequest, name: &str) -> usize {
    req.query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(1, |n| n.clamp(1, MAX_QUERIES)) as usize
}

fn respond(status: StatusCode, content_type: HeaderValue, body: impl Into<Vec<u8>>) -> HttpResponse {
    // actix-http adds the Date header itself.
    HttpResponse::build(status)
        .insert_header((SERVER, SERVER_NAME))
        .insert_header((CONTENT_TYPE, content_type))
        .body(body.into())
}

fn json<T: Serialize>(value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => respond(StatusCode::OK, JSON, body),
        Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, e.to_string()),
    }
}

fn db_error(e: tokio_postgres::Error) -> HttpResponse {
    respond(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("database error: {e}"))
}

async fn plaintext() -> HttpResponse {
    respond(StatusCode::OK, TEXT, &b"Hello, World!"[..])
}

async fn json_message() -> HttpResponse {
    // Built and serialized on every request.
    json(&Message {
        message: "Hello, World!",
    })
}

async fn single_query(db: web::Data<Db>) -> HttpResponse {
    match db.world(random_id()).await {
        Ok(world) => json(&world),
        Err(e) => db_error(e),
    }
}

async fn queries(db: web::Data<Db>, req: HttpRequest) -> HttpResponse {
    match db.worlds(query_count(&req, "queries")).await {
        Ok(worlds) => json(&worlds),
        Err(e) => db_error(e),
    }
}

async fn updates(db: web::Data<Db>, req: HttpRequest) -> HttpResponse {
    let mut worlds = match db.worlds(query_count(&req, "queries")).await {
        Ok(worlds) => worlds,
        Err(e) => return db_error(e),
    };
    for world in &mut worlds {
        world.random_number = random_id();
    }
    // One UPDATE for the request: ids sorted, each once (the first value drawn for an id wins).
    let mut sorted = worlds.clone();
    sorted.sort_by_key(|w| w.id);
    sorted.dedup_by_key(|w| w.id);
    let ids: Vec<i32> = sorted.iter().map(|w| w.id).collect();
    let numbers: Vec<i32> = sorted.iter().map(|w| w.random_number).collect();
    if let Err(e) = db.client.execute(&db.update_worlds, &[&ids, &numbers]).await {
        return db_error(e);
    }
    // A row drawn twice reports the value that was stored.
    for world in &mut worlds {
        if let Ok(at) = sorted.binary_search_by_key(&world.id, |w| w.id) {
            world.random_number = sorted[at].random_number;
        }
    }
    json(&worlds)
}

async fn fortunes(db: web::Data<Db>) -> HttpResponse {
    let rows = match db.client.query(&db.select_fortunes, &[]).await {
        Ok(rows) => rows,
        Err(e) => return db_error(e),
    };
    let mut fortunes: Vec<Fortune> = rows
        .iter()
        .map(|row| Fortune {
            id: row.get(0),
            message: row.get(1),
        })
        .collect();
    fortunes.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    fortunes.sort_by(|a, b| a.message.cmp(&b.message));
    match (FortunesPage { fortunes }).render_once() {
        Ok(page) => respond(StatusCode::OK, HTML, page),
        Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, e.to_string()),
    }
}

async fn cached_queries(db: web::Data<Db>, req: HttpRequest) -> HttpResponse {
    let n = query_count(&req, "count");
    let mut worlds = Vec::with_capacity(n);
    for _ in 0..n {
        let id = random_id();
        let cached = db.cache.borrow().get(&id).copied();
        let world = match cached {
            Some(world) => world,
            None => match db.world(id).await {
                Ok(world) => {
                    db.cache.borrow_mut().insert(id, world);
                    world
                }
                Err(e) => return db_error(e),
            },
        };
        worlds.push(world);
    }
    json(&worlds)
}

async fn not_found() -> HttpResponse {
    respond(StatusCode::NOT_FOUND, TEXT, &b"Not Found"[..])
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("SQUALL_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    let workers = workers();
    eprintln!("peer-actix-db listening on {addr} with {workers} worker(s), one connection each");
    HttpServer::new(move || {
        let url = url.clone();
        App::new()
            // Called once per worker, on that worker, before it accepts connections.
            .data_factory(move || {
                let url = url.clone();
                async move {
                    Db::connect(&url).await.map_err(|e| {
                        // A worker without its connection is useless; stop the whole server.
                        eprintln!("peer-actix-db: cannot prepare the database connection: {e}");
                        std::process::exit(1);
                    })
                }
            })
            .route("/plaintext", web::get().to(plaintext))
            .route("/json", web::get().to(json_message))
            .route("/db", web::get().to(single_query))
            .route("/queries", web::get().to(queries))
            .route("/fortunes", web::get().to(fortunes))
            .route("/updates", web::get().to(updates))
            .route("/cached-queries", web::get().to(cached_queries))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .backlog(4096)
    .bind(&addr)?
    .run()
    .await
}

/// SQUALL_WORKERS, else every core this process may run on.
fn workers() -> usize {
    std::env::var("SQUALL_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
