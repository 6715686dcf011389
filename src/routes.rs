//! Route data: the patterns an application routes, the names given to them, and URLs built
//! back from a name and parameters.
//!
//! The router matches requests against these patterns and keeps the handlers; a request
//! reads the data (its matched pattern, [`Request::url_for`](crate::Request::url_for))
//! without knowing the router. A route is known by its index, the order in which its
//! pattern was first registered.

use std::collections::HashMap;
use std::rc::Rc;

use crate::error::Error;

/// The patterns of an application's routes, by index, and the names given to them.
#[derive(Default)]
pub(crate) struct Routes {
    patterns: Vec<Pattern>,
    names: HashMap<String, usize>,
}

impl Routes {
    /// Adds `pattern` as the next route; its index.
    pub(crate) fn push(&mut self, pattern: Pattern) -> usize {
        self.patterns.push(pattern);
        self.patterns.len() - 1
    }

    /// The pattern of route `index`, as registered (`/users/{id}`).
    pub(crate) fn pattern(&self, index: usize) -> Option<&str> {
        self.patterns.get(index).map(|p| p.source.as_str())
    }

    /// Names route `index`; a name used twice is a registration mistake.
    pub(crate) fn name(&mut self, name: &str, index: usize) -> Result<(), String> {
        if self.names.insert(name.to_owned(), index).is_some() {
            return Err(format!("route name {name:?} is used twice"));
        }
        Ok(())
    }

    /// Builds the URL of the route named `name` with `params` filled in and percent-encoded.
    pub(crate) fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        let index = self
            .names
            .get(name)
            .ok_or_else(|| Error::internal(format!("no route named {name:?}")))?;
        self.patterns[*index].fill(params)
    }
}

/// A route pattern split into literal text and parameters, for naming captured values and
/// building URLs back from them.
pub(crate) struct Pattern {
    source: String,
    parts: Vec<PatternPart>,
    names: Rc<[Box<str>]>,
}

enum PatternPart {
    Literal(String),
    Param(String),
    CatchAll(String),
}

impl Pattern {
    /// Splits `source` (matchit's syntax); a parameter without a name is a mistake.
    pub(crate) fn parse(source: &str) -> Result<Pattern, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if !literal.is_empty() {
                        parts.push(PatternPart::Literal(std::mem::take(&mut literal)));
                    }
                    match name.strip_prefix('*') {
                        Some(rest) => parts.push(PatternPart::CatchAll(rest.to_owned())),
                        None => parts.push(PatternPart::Param(name)),
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(PatternPart::Literal(literal));
        }
        let names = parts
            .iter()
            .filter_map(|p| match p {
                PatternPart::Param(n) | PatternPart::CatchAll(n) => {
                    Some(n.clone().into_boxed_str())
                }
                PatternPart::Literal(_) => None,
            })
            .collect::<Vec<_>>();
        if names.iter().any(|n| n.is_empty()) {
            return Err(format!("{source}: a parameter has no name"));
        }
        Ok(Pattern {
            source: source.to_owned(),
            parts,
            names: names.into(),
        })
    }

    /// The names of the parameters, in the order matchit captures them.
    pub(crate) fn param_names(&self) -> &Rc<[Box<str>]> {
        &self.names
    }

    fn fill(&self, params: &[(&str, &str)]) -> Result<String, Error> {
        const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        const PATH: &percent_encoding::AsciiSet = &SEGMENT.remove(b'/');
        let value = |name: &str| {
            params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    Error::internal(format!("url for {}: missing {name:?}", self.source))
                })
        };
        let mut url = String::new();
        for part in &self.parts {
            match part {
                PatternPart::Literal(text) => url.push_str(text),
                PatternPart::Param(name) => {
                    url.extend(percent_encoding::utf8_percent_encode(value(name)?, SEGMENT));
                }
                PatternPart::CatchAll(name) => {
                    url.extend(percent_encoding::utf8_percent_encode(value(name)?, PATH));
                }
            }
        }
        Ok(url)
    }
}
