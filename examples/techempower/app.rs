//! The TechEmpower application: routes and handlers, shared by `main.rs` and by the tests in
//! `tests/techempower.rs`.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use sailfish::TemplateSimple;
use serde::Serialize;
use squall::db::postgres::{join_all, PgConfig, PgConn, PgPool};
use squall::template::Page;
use squall::{App, Error, Json, Request};

const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
/// One statement for all rows of a request; ids are sorted first so that concurrent updates
/// lock rows in the same order and cannot deadlock.
const UPDATE_WORLDS: &str = "UPDATE world SET randomnumber = new.rnd \
     FROM (SELECT * FROM UNNEST($1::int[], $2::int[]) AS t(id, rnd)) AS new \
     WHERE world.id = new.id";
const WORLD_ROWS: i32 = 10_000;

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

pub(crate) struct Fortune {
    pub(crate) id: i32,
    pub(crate) message: String,
}

#[derive(TemplateSimple)]
#[template(path = "fortunes.stpl")]
pub(crate) struct Fortunes {
    fortunes: Vec<Fortune>,
}

/// The fortunes page by the test's rules: the stored rows plus one added at request time,
/// sorted by message.
pub(crate) fn fortunes_page(stored: impl IntoIterator<Item = Fortune>) -> Fortunes {
    let mut fortunes: Vec<Fortune> = stored.into_iter().collect();
    fortunes.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    fortunes.sort_by(|a, b| a.message.cmp(&b.message));
    Fortunes { fortunes }
}

/// What each core keeps: its pool and its cache.
struct State {
    pool: Rc<PgPool>,
    cache: RefCell<quick_cache::unsync::Cache<i32, World>>,
}

impl State {
    async fn conn(&self) -> Result<PgConn, Error> {
        self.pool.get().await
    }

    async fn world(conn: &PgConn, id: i32) -> Result<World, Error> {
        let row = conn.query_one(SELECT_WORLD, &[&id]).await?;
        Ok(World {
            id: row.get(0),
            random_number: row.get(1),
        })
    }

    /// One row from the database, kept in the cache.
    async fn load(&self, id: i32) -> Result<World, Error> {
        let world = Self::world(&self.conn().await?, id).await?;
        self.cache.borrow_mut().insert(id, world);
        Ok(world)
    }

    /// Loads every row into the cache, so `/cached-queries` is served from memory.
    async fn warm_cache(self: Rc<Self>) {
        let rows = match self.conn().await {
            Ok(conn) => conn.query("SELECT id, randomnumber FROM world", &[]).await,
            Err(e) => Err(e),
        };
        match rows {
            Ok(rows) => {
                let mut cache = self.cache.borrow_mut();
                for row in rows {
                    let world = World {
                        id: row.get(0),
                        random_number: row.get(1),
                    };
                    cache.insert(world.id, world);
                }
            }
            Err(e) => tracing::warn!("cache warm-up failed, rows will load on demand: {e}"),
        }
    }
}

fn random_id() -> i32 {
    fastrand::i32(1..=WORLD_ROWS)
}

/// `queries`/`count` as the rules read it: missing or not an integer → 1, clamped to 1..500.
fn query_count(req: &Request, name: &str) -> usize {
    let n = req
        .query_args()
        .raw(name)
        .and_then(|v| v.parse::<i64>().ok());
    n.unwrap_or(1).clamp(1, 500) as usize
}

async fn plaintext(_req: Request) -> &'static str {
    "Hello, World!"
}

async fn json(_req: Request) -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

async fn db(state: Rc<State>, _req: Request) -> Result<Json<World>, Error> {
    let conn = state.conn().await?;
    Ok(Json(State::world(&conn, random_id()).await?))
}

async fn queries(state: Rc<State>, req: Request) -> Result<Json<Vec<World>>, Error> {
    let n = query_count(&req, "queries");
    let conn = state.conn().await?;
    let worlds = join_all((0..n).map(|_| State::world(&conn, random_id()))).await;
    Ok(Json(worlds.into_iter().collect::<Result<_, _>>()?))
}

async fn updates(state: Rc<State>, req: Request) -> Result<Json<Vec<World>>, Error> {
    let n = query_count(&req, "queries");
    let conn = state.conn().await?;
    let read = join_all((0..n).map(|_| State::world(&conn, random_id()))).await;
    let mut worlds = read.into_iter().collect::<Result<Vec<_>, _>>()?;
    for world in &mut worlds {
        world.random_number = random_id();
    }
    let mut sorted = worlds.clone();
    sorted.sort_by_key(|w| w.id);
    sorted.dedup_by_key(|w| w.id);
    let ids: Vec<i32> = sorted.iter().map(|w| w.id).collect();
    let numbers: Vec<i32> = sorted.iter().map(|w| w.random_number).collect();
    conn.execute(UPDATE_WORLDS, &[&ids, &numbers]).await?;
    // A row drawn twice answers with the value that was stored.
    for world in &mut worlds {
        if let Ok(at) = sorted.binary_search_by_key(&world.id, |w| w.id) {
            world.random_number = sorted[at].random_number;
        }
    }
    Ok(Json(worlds))
}

async fn fortunes(state: Rc<State>, _req: Request) -> Result<Page<Fortunes>, Error> {
    let conn = state.conn().await?;
    let rows = conn.query(SELECT_FORTUNES, &[]).await?;
    Ok(Page(fortunes_page(rows.into_iter().map(|row| Fortune {
        id: row.get(0),
        message: row.get(1),
    }))))
}

async fn cached_queries(state: Rc<State>, req: Request) -> Result<Json<Vec<World>>, Error> {
    let n = query_count(&req, "count");
    let mut worlds = Vec::with_capacity(n);
    for _ in 0..n {
        let id = random_id();
        let cached = state.cache.borrow().get(&id).copied();
        let world = match cached {
            Some(world) => world,
            // Boxed: a miss is rare once the cache is warm, and a query's future would make
            // every request's future over a kilobyte.
            None => Box::pin(state.load(id)).await?,
        };
        worlds.push(world);
    }
    Ok(Json(worlds))
}

/// A handler with this core's state.
fn with<F, Fut, R>(state: &Rc<State>, handler: F) -> impl Fn(Request) -> Fut + 'static
where
    F: Fn(Rc<State>, Request) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
{
    let state = Rc::clone(state);
    move |req| handler(Rc::clone(&state), req)
}

/// The application of one core.
pub fn app(pg: &PgConfig) -> App {
    let state = Rc::new(State {
        pool: PgPool::new(pg.clone()).unwrap_or_else(|e| panic!("database pool: {e}")),
        cache: RefCell::new(quick_cache::unsync::Cache::new(WORLD_ROWS as usize)),
    });
    glommio::spawn_local(Rc::clone(&state).warm_cache()).detach();
    App::new()
        .get("/plaintext", plaintext)
        .get("/json", json)
        .get("/db", with(&state, db))
        .get("/queries", with(&state, queries))
        .get("/updates", with(&state, updates))
        .get("/fortunes", with(&state, fortunes))
        .get("/cached-queries", with(&state, cached_queries))
}
