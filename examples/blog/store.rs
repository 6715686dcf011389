//! The blog's tables and queries: users with Argon2 password hashes, and posts.

use std::rc::Rc;

use squall::db::postgres::{PgConfig, PgPool};
use squall::{tasks, Error};

/// Created if missing; an advisory lock keeps two servers starting at once from racing.
const SCHEMA: &str = "BEGIN;
SELECT pg_advisory_xact_lock(7413);
CREATE TABLE IF NOT EXISTS blog_user (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS blog_post (
    id serial PRIMARY KEY,
    author_id integer NOT NULL REFERENCES blog_user (id),
    title text NOT NULL,
    body text NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS blog_post_created ON blog_post (created DESC);
COMMIT;";

const LIST_POSTS: &str = "SELECT p.id, p.title, p.body, u.name, \
     extract(year FROM p.created)::int, extract(month FROM p.created)::int, \
     extract(day FROM p.created)::int \
     FROM blog_post p JOIN blog_user u ON u.id = p.author_id \
     ORDER BY p.created DESC, p.id DESC LIMIT 50";
const COUNT_POSTS: &str = "SELECT count(*) FROM blog_post";
const INSERT_POST: &str =
    "INSERT INTO blog_post (author_id, title, body) VALUES ($1, $2, $3) RETURNING id";
const INSERT_USER: &str = "INSERT INTO blog_user (name, password_hash) VALUES ($1, $2) \
     ON CONFLICT (name) DO NOTHING RETURNING id";
const FIND_USER: &str = "SELECT id, password_hash FROM blog_user WHERE name = $1";

/// Creates the tables, once, before the server starts (on a short-lived executor of its own).
pub(crate) fn create_schema(pg: &PgConfig) -> Result<(), Error> {
    let pg = pg.clone();
    let executor = glommio::LocalExecutorBuilder::default()
        .make()
        .map_err(|e| Error::internal(format!("cannot start an executor: {e}")))?;
    executor.run(async move {
        let pool = PgPool::connect(pg.pool_size(1)).await?;
        pool.get().await?.batch_execute(SCHEMA).await
    })
}

/// A post as listed.
pub(crate) struct Post {
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) author: String,
    pub(crate) date: time::Date,
}

/// Who signed in.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) id: i32,
    pub(crate) name: String,
}

/// What sign-up can say no to.
pub(crate) enum SignUp {
    Created(User),
    NameTaken,
}

/// This core's access to the database.
pub(crate) struct Store {
    pool: Rc<PgPool>,
}

impl Store {
    pub(crate) fn new(pg: &PgConfig) -> Result<Store, Error> {
        Ok(Store {
            pool: PgPool::new(pg.clone())?,
        })
    }

    /// The newest posts and how many there are, in one round trip (pipelined).
    pub(crate) async fn posts(&self) -> Result<(Vec<Post>, i64), Error> {
        let conn = self.pool.get().await?;
        let (rows, count) = futures_lite::future::zip(
            conn.query(LIST_POSTS, &[]),
            conn.query_one(COUNT_POSTS, &[]),
        )
        .await;
        let posts = rows?
            .iter()
            .filter_map(|row| {
                let month = time::Month::try_from(row.get::<_, i32>(5) as u8).ok()?;
                let date =
                    time::Date::from_calendar_date(row.get(4), month, row.get::<_, i32>(6) as u8)
                        .ok()?;
                Some(Post {
                    title: row.get(1),
                    body: row.get(2),
                    author: row.get(3),
                    date,
                })
            })
            .collect();
        Ok((posts, count?.get(0)))
    }

    pub(crate) async fn add_post(
        &self,
        author: &User,
        title: &str,
        body: &str,
    ) -> Result<i32, Error> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_one(INSERT_POST, &[&author.id, &title, &body])
            .await?;
        Ok(row.get(0))
    }

    /// Creates a user; the password is hashed off the core (Argon2 is slow on purpose).
    pub(crate) async fn sign_up(&self, name: &str, password: &str) -> Result<SignUp, Error> {
        let password = password.to_owned();
        let hash = tasks::run_blocking(move || hash_password(&password)).await??;
        let conn = self.pool.get().await?;
        match conn.query_opt(INSERT_USER, &[&name, &hash]).await? {
            Some(row) => Ok(SignUp::Created(User {
                id: row.get(0),
                name: name.to_owned(),
            })),
            None => Ok(SignUp::NameTaken),
        }
    }

    /// The user with this name and password, if both are right.
    pub(crate) async fn log_in(&self, name: &str, password: &str) -> Result<Option<User>, Error> {
        let conn = self.pool.get().await?;
        let Some(row) = conn.query_opt(FIND_USER, &[&name]).await? else {
            return Ok(None);
        };
        let (id, stored): (i32, String) = (row.get(0), row.get(1));
        let password = password.to_owned();
        let matches = tasks::run_blocking(move || verify_password(&password, &stored)).await?;
        Ok(matches.then(|| User {
            id,
            name: name.to_owned(),
        }))
    }
}

fn hash_password(password: &str) -> Result<String, Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&random)
        .map_err(|e| Error::internal(format!("salt encoding failed: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(stored).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}
