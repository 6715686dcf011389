//! Getting TLS material to the cores, at startup and on every reload.
//!
//! The server's thread reads and checks the files ([`TlsConfig::load`]) and sends the result
//! to each core through that core's mailbox: a channel and an eventfd the core's reload task
//! watches. The core builds its own rustls configuration from it and swaps it in between
//! handshakes, so the request path never reads anything another core writes.

use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::SystemTime;

use super::core::Core;
use super::os::EventFd;
use crate::error::Error;
use crate::tls::server::{TicketSecret, TlsMaterial};
use crate::tls::TlsConfig;

/// The server thread's side: what to reload from, and each core's mailbox.
#[derive(Debug)]
pub(super) struct TlsReloader {
    config: TlsConfig,
    mailboxes: Vec<(mpsc::Sender<Arc<TlsMaterial>>, Arc<EventFd>)>,
}

/// A core's side: the first material, the ticket secret, and the mailbox's receiving end.
pub(super) struct CoreTls {
    secret: TicketSecret,
    first: Arc<TlsMaterial>,
    inbox: mpsc::Receiver<Arc<TlsMaterial>>,
    event: Arc<EventFd>,
}

/// Loads `config` for `workers` cores: one [`CoreTls`] each, and the reloader.
pub(super) fn start(
    config: &TlsConfig,
    workers: usize,
) -> Result<(TlsReloader, Vec<CoreTls>), Error> {
    let material = Arc::new(config.load(SystemTime::now())?);
    tracing::info!(target: "squall::server", "TLS: {}", material.describe());
    let secret = TicketSecret::generate()?;
    let mut mailboxes = Vec::with_capacity(workers);
    let mut cores = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (sender, inbox) = mpsc::channel();
        let event = Arc::new(EventFd::new()?);
        mailboxes.push((sender, Arc::clone(&event)));
        cores.push(CoreTls {
            secret,
            first: Arc::clone(&material),
            inbox,
            event,
        });
    }
    let reloader = TlsReloader {
        config: config.clone(),
        mailboxes,
    };
    Ok((reloader, cores))
}

impl TlsReloader {
    /// Reads the files again and, when they check out, sends them to every core; otherwise
    /// the cores keep what they have and the error says why.
    pub(super) fn reload(&self) -> Result<String, Error> {
        let material = Arc::new(self.config.load(SystemTime::now())?);
        for (sender, event) in &self.mailboxes {
            // A core that has stopped has dropped its inbox; nothing to tell it.
            if sender.send(Arc::clone(&material)).is_ok() {
                event.signal();
            }
        }
        Ok(material.describe())
    }
}

impl CoreTls {
    /// Builds this core's configuration from the first material.
    pub(super) fn install(&self, core: &Core) -> Result<(), Error> {
        core.set_tls(self.first.server_config(&self.secret)?);
        Ok(())
    }

    /// Applies every reload sent to this core, until the server stops.
    pub(super) async fn receive(self, core: Rc<Core>) {
        let watch = match self.event.watch() {
            Ok(watch) => watch,
            Err(e) => {
                tracing::error!(target: "squall::server", "TLS reload cannot reach this core: {e}");
                return;
            }
        };
        loop {
            if watch.readable().await.is_err() {
                return;
            }
            self.event.clear();
            while let Ok(material) = self.inbox.try_recv() {
                match material.server_config(&self.secret) {
                    Ok(config) => core.set_tls(config),
                    Err(e) => {
                        tracing::error!(target: "squall::server", "TLS reload failed on this core, keeping the certificates in use: {e}");
                    }
                }
            }
        }
    }
}
