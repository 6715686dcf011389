//! PostgreSQL: a per-core pool of tokio-postgres connections over glommio sockets.
