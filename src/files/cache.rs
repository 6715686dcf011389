//! The per-core cache: what is known about each served path (validators, content type,
//! precompressed siblings, and the content of small files), filled from disk and trusted
//! until it is older than the revalidation interval. Content versions for `static_url` are
//! kept beside it, keyed by path and checked against the file's stamp.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use glommio::io::BufferedFile;
use http::header::HeaderValue;

use super::disk::{self, Kind, OpenError, Opened, Stamp};
use super::{conditional, path, Inner};
use crate::response::OCTET_STREAM;

pub(super) type FileCache = quick_cache::unsync::Cache<Box<str>, Rc<Entry>, EntryWeight>;

/// What the cache knows about one served path.
pub(super) struct Entry {
    pub(super) checked: Instant,
    pub(super) content_type: HeaderValue,
    pub(super) identity: Variant,
    pub(super) brotli: Option<Variant>,
    pub(super) gzip: Option<Variant>,
}

impl Entry {
    pub(super) fn has_siblings(&self) -> bool {
        self.brotli.is_some() || self.gzip.is_some()
    }
}

/// One file on disk: the plain file or a precompressed sibling.
#[derive(Clone)]
pub(super) struct Variant {
    pub(super) path: PathBuf,
    pub(super) stamp: Stamp,
    pub(super) etag: HeaderValue,
    pub(super) last_modified: HeaderValue,
    pub(super) modified: u64,
    /// The content, for a file small enough to keep.
    pub(super) body: Option<Bytes>,
}

/// A file's content version, for `static_url` and the `v` of requests.
#[derive(Clone)]
pub(super) struct Version {
    pub(super) stamp: Stamp,
    pub(super) tag: Rc<str>,
    pub(super) checked: Instant,
}

/// Weighs cache entries by the content they hold, plus what an entry costs anyway.
#[derive(Clone, Copy)]
pub(super) struct EntryWeight;

impl quick_cache::Weighter<Box<str>, Rc<Entry>> for EntryWeight {
    fn weight(&self, key: &Box<str>, entry: &Rc<Entry>) -> u64 {
        let held = |v: &Option<Variant>| v.as_ref().map_or(0, Variant::held);
        512 + key.len() as u64 + entry.identity.held() + held(&entry.brotli) + held(&entry.gzip)
    }
}

impl Variant {
    fn held(&self) -> u64 {
        self.body.as_ref().map_or(0, |b| b.len() as u64)
    }
}

impl Inner {
    pub(super) fn fresh(&self, key: &str) -> Option<Rc<Entry>> {
        let files = self.files.borrow();
        let entry = files.get(key)?;
        (entry.checked.elapsed() < self.settings.revalidate_every).then(|| Rc::clone(entry))
    }

    /// Opens `key` and its siblings, reusing what the cache holds for files that have not
    /// changed. `None` for a directory. A large plain file comes back open, to be sent.
    pub(super) async fn load(
        &self,
        key: &str,
    ) -> Result<Option<(Rc<Entry>, Option<BufferedFile>)>, OpenError> {
        let settings = &self.settings;
        let path = settings.root.join(key);
        let opened = disk::open_confined(&settings.root, &path).await?;
        match opened.kind {
            Kind::File => {}
            Kind::Dir => return Ok(None),
            Kind::Other => return Err(OpenError::Forbidden),
        }
        let previous = self.files.borrow().peek(key).cloned();
        let (identity, opened) = self
            .variant(
                path.clone(),
                opened,
                previous.as_ref().map(|p| &p.identity),
                "",
            )
            .await?;
        let (brotli, gzip) = if settings.precompressed {
            let brotli = previous.as_ref().and_then(|p| p.brotli.as_ref());
            let gzip = previous.as_ref().and_then(|p| p.gzip.as_ref());
            (
                self.sibling(&path, "br", brotli).await,
                self.sibling(&path, "gz", gzip).await,
            )
        } else {
            (None, None)
        };
        let entry = Rc::new(Entry {
            checked: Instant::now(),
            content_type: content_type_of(key),
            identity,
            brotli,
            gzip,
        });
        self.files
            .borrow_mut()
            .insert(key.into(), Rc::clone(&entry));
        Ok(Some((entry, opened)))
    }

    /// What is known about an opened file: the previous knowledge if the file has not
    /// changed, else fresh validators and, for a small file, its content. A large file's
    /// handle is handed back, to be read from.
    pub(super) async fn variant(
        &self,
        path: PathBuf,
        opened: Opened,
        previous: Option<&Variant>,
        etag_suffix: &str,
    ) -> Result<(Variant, Option<BufferedFile>), OpenError> {
        let keep_open = |variant: Variant, file: BufferedFile| {
            let file = variant.body.is_none().then_some(file);
            (variant, file)
        };
        if let Some(previous) = previous.filter(|p| p.stamp == opened.stamp) {
            return Ok(keep_open(previous.clone(), opened.file));
        }
        let stamp = opened.stamp;
        let body = if stamp.len <= self.settings.max_cached_file_size {
            Some(
                disk::read_all(&opened.file, stamp.len)
                    .await
                    .map_err(OpenError::Io)?,
            )
        } else {
            None
        };
        let header = |text: String| HeaderValue::from_str(&text).map_err(std::io::Error::other);
        let variant = Variant {
            path,
            stamp,
            etag: header(stamp.etag(etag_suffix)).map_err(OpenError::Io)?,
            last_modified: header(httpdate::fmt_http_date(opened.modified))
                .map_err(OpenError::Io)?,
            modified: conditional::epoch_seconds(opened.modified),
            body,
        };
        Ok(keep_open(variant, opened.file))
    }

    /// The precompressed sibling `<path>.<extension>`, if there is one to serve.
    pub(super) async fn sibling(
        &self,
        path: &Path,
        extension: &str,
        previous: Option<&Variant>,
    ) -> Option<Variant> {
        let mut name = OsString::from(path.as_os_str());
        name.push(".");
        name.push(extension);
        let path = PathBuf::from(name);
        let opened = disk::open_confined(&self.settings.root, &path).await.ok()?;
        if opened.kind != Kind::File {
            return None;
        }
        let suffix = format!("-{extension}");
        let (variant, _) = self.variant(path, opened, previous, &suffix).await.ok()?;
        Some(variant)
    }

    /// The content version of the plain file, computed once per file version.
    pub(super) async fn version(&self, key: &str, identity: &Variant) -> Option<Rc<str>> {
        if let Some(known) = self.versions.borrow().peek(key) {
            if known.stamp == identity.stamp {
                return Some(Rc::clone(&known.tag));
            }
        }
        let tag: Rc<str> = match &identity.body {
            Some(content) => disk::version_of_bytes(content).into(),
            None => {
                let opened = disk::open_confined(&self.settings.root, &identity.path)
                    .await
                    .ok()
                    .filter(|o| o.stamp == identity.stamp)?;
                let chunk = self.settings.chunk_size;
                disk::version_of_file(&opened.file, identity.stamp.len, chunk)
                    .await
                    .ok()?
                    .into()
            }
        };
        let version = Version {
            stamp: identity.stamp,
            tag: Rc::clone(&tag),
            checked: Instant::now(),
        };
        self.versions.borrow_mut().insert(key.into(), version);
        Some(tag)
    }

    /// `static_url`'s version of the file named by the encoded path `encoded`.
    pub(super) fn version_blocking(&self, encoded: &str) -> Result<Rc<str>, String> {
        let tail = path::sanitize(encoded).map_err(|why| format!("refused path ({why:?})"))?;
        if tail.trailing_slash {
            return Err("a directory has no version".to_owned());
        }
        let key: &str = &tail.relative;
        let known = self.versions.borrow().peek(key).cloned();
        if let Some(known) = &known {
            if known.checked.elapsed() < self.settings.revalidate_every {
                return Ok(Rc::clone(&known.tag));
            }
        }
        let root = &self.settings.root;
        let path = root.join(key);
        let stamp = disk::stamp_blocking(&path).map_err(|e| e.to_string())?;
        let version = match known {
            Some(known) if known.stamp == stamp => Version {
                checked: Instant::now(),
                ..known
            },
            _ => {
                let (stamp, tag) =
                    disk::version_blocking(root, &path).map_err(|e| e.to_string())?;
                Version {
                    stamp,
                    tag: tag.into(),
                    checked: Instant::now(),
                }
            }
        };
        let tag = Rc::clone(&version.tag);
        self.versions.borrow_mut().insert(key.into(), version);
        Ok(tag)
    }
}

/// The content type for a path's extension; text gets `charset=utf-8`.
pub(super) fn content_type_of(key: &str) -> HeaderValue {
    let Some(mime) = mime_guess::from_path(key).first_raw() else {
        return OCTET_STREAM;
    };
    let is_text = mime.starts_with("text/") || mime == "application/javascript";
    let value = if is_text {
        HeaderValue::from_str(&format!("{mime}; charset=utf-8"))
    } else {
        HeaderValue::from_str(mime)
    };
    value.unwrap_or(OCTET_STREAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type_of("css/site.css"), "text/css; charset=utf-8");
        assert_eq!(content_type_of("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type_of("logo.png"), "image/png");
        assert_eq!(content_type_of("data.json"), "application/json");
        assert_eq!(content_type_of("icon.svg"), "image/svg+xml");
        assert_eq!(content_type_of("README"), "application/octet-stream");
        assert!(content_type_of("app.js")
            .to_str()
            .expect("ascii")
            .ends_with("javascript; charset=utf-8"));
    }
}
