//! Debug mode's error pages: what failed, and the request that failed, for a developer's
//! browser. Off by default ([`App::debug`](crate::App::debug)); in production a 500 says
//! nothing about the server's insides.

use std::fmt::Write;

use crate::http::Version;
use crate::request::Request;
use crate::response::{Response, TEXT_HTML};

/// What debug mode shows of a request, copied before the handler takes it.
pub(crate) struct RequestSummary {
    line: String,
    headers: Vec<(String, String)>,
}

impl RequestSummary {
    pub(crate) fn of(req: &Request) -> RequestSummary {
        RequestSummary {
            line: format!(
                "{} {} {}",
                req.method(),
                req.head().target(),
                match req.version() {
                    Version::Http10 => "HTTP/1.0",
                    Version::Http11 => "HTTP/1.1",
                }
            ),
            headers: req
                .headers()
                .map(|(name, value)| (name.to_owned(), String::from_utf8_lossy(value).into()))
                .collect(),
        }
    }
}

/// Replaces the body of a server-error response with a page describing the error and the
/// request. The error stays attached, so it is still logged.
pub(crate) fn explain(response: Response, request: &RequestSummary) -> Response {
    let Some(error) = response.error().filter(|e| e.status().is_server_error()) else {
        return response;
    };
    let mut page = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>squall debug</title>\
         <style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;\
         white-space:pre-wrap}th{text-align:left;padding-right:1em}</style></head><body>",
    );
    let _ = write!(page, "<h1>{}</h1><h2>Error</h2><pre>", error.status());
    escape_into(&mut page, &error.to_string());
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        page.push_str("\ncaused by: ");
        escape_into(&mut page, &inner.to_string());
        cause = inner.source();
    }
    page.push_str("</pre><h2>Request</h2><pre>");
    escape_into(&mut page, &request.line);
    page.push_str("</pre><table>");
    for (name, value) in &request.headers {
        page.push_str("<tr><th>");
        escape_into(&mut page, name);
        page.push_str("</th><td>");
        escape_into(&mut page, value);
        page.push_str("</td></tr>");
    }
    page.push_str("</table><p>Debug mode is on: never run it in production.</p></body></html>");
    response.with_content_type(TEXT_HTML).with_body_of(page)
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}
