//! Compiled templates as responses. This is the only module that knows sailfish.
//!
//! Templates are `.stpl` files compiled into Rust by sailfish's derive macros (add `sailfish`
//! to your own dependencies for the derives), escaped by default (`<%= value %>` escapes
//! `& < > " '`; `<%- value %>` does not). With `#[derive(TemplateSimple)]` a template names its
//! fields directly; wrap the value in [`Page`] to answer with it:
//!
//! ```text
//! #[derive(sailfish::TemplateSimple)]
//! #[template(path = "fortunes.stpl")]
//! struct Fortunes { fortunes: Vec<Fortune> }
//!
//! async fn fortunes(_req: Request) -> Page<Fortunes> { Page(Fortunes { fortunes: load() }) }
//! ```
//!
//! Templates derived with `TemplateOnce` (fields through `self.`) render with [`render`].
//!
//! A layout is a template that `include!`s its parts (`<% include!("header.stpl"); %>`): the
//! included file is compiled into the including one and sees its fields.

use crate::error::Error;
use crate::response::{IntoResponse, Response};

pub use sailfish::{RenderError, Template, TemplateOnce, TemplateSimple};

/// A rendered template: `text/html; charset=utf-8`, or 500 if rendering fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page<T>(pub T);

impl<T: TemplateSimple> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        html_or_error(self.0.render_once())
    }
}

/// Renders a `TemplateOnce` template into a response, as [`Page`] does for `TemplateSimple`.
pub fn render<T: TemplateOnce>(template: T) -> Response {
    html_or_error(template.render_once())
}

fn html_or_error(rendered: Result<String, RenderError>) -> Response {
    match rendered {
        Ok(html) => Response::html(html),
        Err(e) => Error::internal("template rendering failed")
            .with_source(e)
            .into_response(),
    }
}
