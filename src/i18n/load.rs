//! Reading catalogue files: every file parsed once, every mistake reported with its file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fluent_bundle::{FluentBundle, FluentError, FluentResource};
use fluent_syntax::ast;
use unic_langid::LanguageIdentifier;

use super::format;
use crate::error::Error;

/// What all cores read: the parsed files. Nothing in it changes after loading.
pub(super) struct Shared {
    pub(super) locales: Vec<LocaleFiles>,
    /// The same tags as text, for negotiation.
    pub(super) tags: Vec<String>,
    pub(super) default: usize,
}

/// One locale's parsed files.
pub(super) struct LocaleFiles {
    pub(super) id: LanguageIdentifier,
    pub(super) resources: Vec<Arc<FluentResource>>,
}

/// Reads `dir/<language-tag>/*.ftl`; see [`Translations::load`](super::Translations::load).
pub(super) fn load(dir: &Path, default: &str) -> Result<Shared, Error> {
    let default_id: LanguageIdentifier = default
        .parse()
        .map_err(|_| Error::config(format!("default locale {default:?} is not a language tag")))?;
    let mut locales: Vec<LocaleFiles> = Vec::new();
    for entry in sorted_entries(dir)? {
        let name = file_name(&entry);
        if name.starts_with('.') {
            continue;
        }
        if !entry.is_dir() {
            return Err(layout_error(&entry, dir));
        }
        let id: LanguageIdentifier = name.parse().map_err(|_| {
            Error::config(format!(
                "{}: the directory name is not a language tag (like en or es-MX)",
                entry.display()
            ))
        })?;
        if let Some(twin) = locales.iter().find(|l| l.id == id) {
            return Err(Error::config(format!(
                "{}: a second directory for locale {} (already {})",
                entry.display(),
                twin.id,
                dir.join(twin.id.to_string()).display()
            )));
        }
        locales.push(load_locale(&entry, id)?);
    }
    let tags: Vec<String> = locales.iter().map(|l| l.id.to_string()).collect();
    if tags.is_empty() {
        return Err(Error::config(format!(
            "{}: no locale directories (expected <dir>/<language-tag>/*.ftl)",
            dir.display()
        )));
    }
    let default = locales
        .iter()
        .position(|l| l.id == default_id)
        .ok_or_else(|| {
            Error::config(format!(
                "{}: no directory for the default locale {default_id} (found {})",
                dir.display(),
                tags.join(", ")
            ))
        })?;
    warn_about_gaps(&locales, default);
    Ok(Shared {
        locales,
        tags,
        default,
    })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| Error::config(format!("{}: cannot read translations: {e}", dir.display())))?;
    let mut entries = read
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("{}: cannot list: {e}", dir.display())))?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn layout_error(path: &Path, root: &Path) -> Error {
    Error::config(format!(
        "{}: unexpected file; translations are laid out as {}/<language-tag>/*.ftl",
        path.display(),
        root.display()
    ))
}

/// Reads and parses one locale's `.ftl` files and checks they fit in one bundle.
fn load_locale(dir: &Path, id: LanguageIdentifier) -> Result<LocaleFiles, Error> {
    let mut files = Vec::new();
    for path in sorted_entries(dir)? {
        let name = file_name(&path);
        if name.starts_with('.') {
            continue;
        }
        if !path.is_file() || path.extension().is_none_or(|e| e != "ftl") {
            return Err(layout_error(&path, dir.parent().unwrap_or(dir)));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::config(format!("{}: cannot read: {e}", path.display())))?;
        let resource = FluentResource::try_new(text)
            .map_err(|(resource, errors)| syntax_error(&path, resource.source(), &errors))?;
        files.push((path, Arc::new(resource)));
    }
    if files.is_empty() {
        return Err(Error::config(format!(
            "{}: no .ftl files for locale {id}",
            dir.display()
        )));
    }
    let mut defined: HashMap<String, &Path> = HashMap::new();
    for (path, resource) in &files {
        for entry_id in entry_ids(resource) {
            if let Some(first) = defined.insert(entry_id.clone(), path) {
                return Err(Error::config(format!(
                    "{}: `{entry_id}` is defined twice for locale {id} (first in {})",
                    path.display(),
                    first.display()
                )));
            }
        }
    }
    let locale = LocaleFiles {
        id,
        resources: files.into_iter().map(|(_, r)| r).collect(),
    };
    // Entries across files are distinct (checked above), so a conflict here would be a
    // bundle rule this check does not know; report it rather than serve a partial bundle.
    if let (_, Some(errors)) = bundle(&locale, false) {
        return Err(Error::config(format!(
            "{}: {}",
            dir.display(),
            describe_fluent_errors(&errors)
        )));
    }
    Ok(locale)
}

/// Message ids and term ids (with their `-`) defined in `resource`, duplicates included.
fn entry_ids(resource: &FluentResource) -> Vec<String> {
    resource
        .entries()
        .filter_map(|entry| match entry {
            ast::Entry::Message(m) => Some(m.id.name.to_owned()),
            ast::Entry::Term(t) => Some(format!("-{}", t.id.name)),
            _ => None,
        })
        .collect()
}

fn syntax_error(path: &Path, source: &str, errors: &[fluent_syntax::parser::ParserError]) -> Error {
    let Some(first) = errors.first() else {
        return Error::config(format!("{}: does not parse", path.display()));
    };
    let at = first.pos.start.min(source.len());
    let before = source.get(..at).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    let more = match errors.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Error::config(format!(
        "{}:{line}:{column}: {}{more}",
        path.display(),
        first.kind
    ))
}

pub(super) fn describe_fluent_errors(errors: &[FluentError]) -> String {
    errors
        .iter()
        .map(|e| match e {
            FluentError::Overriding { kind, id } => format!("{kind} `{id}` is defined twice"),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One locale's bundle, with the errors adding its resources raised.
pub(super) fn bundle(
    locale: &LocaleFiles,
    bidi_isolation: bool,
) -> (FluentBundle<Arc<FluentResource>>, Option<Vec<FluentError>>) {
    let mut bundle = FluentBundle::new(vec![locale.id.clone()]);
    bundle.set_use_isolating(bidi_isolation);
    bundle.set_formatter(Some(format::fluent_number));
    let mut errors = Vec::new();
    for resource in &locale.resources {
        if let Err(mut e) = bundle.add_resource(Arc::clone(resource)) {
            errors.append(&mut e);
        }
    }
    (bundle, (!errors.is_empty()).then_some(errors))
}

/// Logs, at startup, which of the default locale's messages the others lack (they will be
/// served in the default language).
fn warn_about_gaps(locales: &[LocaleFiles], default: usize) {
    let ids = |locale: &LocaleFiles| -> HashSet<String> {
        locale
            .resources
            .iter()
            .flat_map(|r| entry_ids(r))
            .filter(|id| !id.starts_with('-'))
            .collect()
    };
    let expected = ids(&locales[default]);
    for locale in locales {
        let have = ids(locale);
        let mut missing: Vec<&String> = expected.difference(&have).collect();
        if !missing.is_empty() {
            missing.sort();
            tracing::warn!(
                locale = %locale.id,
                missing = ?missing,
                "locale lacks messages of the default; they will be shown in the default language"
            );
        }
    }
}
