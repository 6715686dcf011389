//! Sailfish templates through `squall::template::Page`: the TechEmpower example's fortunes
//! page, checked against the reference page in `../shared/tfb/`.
#![cfg(all(feature = "postgres", feature = "template"))]

use sailfish::TemplateSimple;
use squall::template::Page;
use squall::{IntoResponse, StatusCode};

#[path = "../examples/techempower/app.rs"]
#[allow(dead_code)]
mod app;
mod support;

use app::{fortunes_page, Fortune, Fortunes};
use support::normalise_html as normalise;

/// The TechEmpower reference data lives beside the repository, in `../shared/tfb/`. Without
/// it (a bare clone) the reference tests are skipped with a reason, unless
/// `SQUALL_REQUIRE_SERVICES=1` (CI), where they fail.
fn shared(file: &str) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tfb")
        .join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var("SQUALL_REQUIRE_SERVICES").as_deref() != Ok("1") => {
            eprintln!("skipping: cannot read {}: {e}", path.display());
            None
        }
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn reference_fortunes() -> Option<Fortunes> {
    let stored = shared("fortunes.tsv")?
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (id, message) = line.split_once('\t').expect("id<TAB>message");
            Fortune {
                id: id.parse().expect("numeric id"),
                message: message.to_owned(),
            }
        })
        .collect::<Vec<_>>();
    Some(fortunes_page(stored))
}

#[test]
fn fortunes_page_matches_the_reference() {
    let (Some(fortunes), Some(expected)) = (reference_fortunes(), shared("fortunes_expected.html"))
    else {
        return;
    };
    let page = fortunes.render_once().expect("renders");
    assert_eq!(normalise(&page), normalise(&expected));
    assert!(page.contains("&lt;script&gt;"), "escaped by default");
}

#[test]
fn pages_are_html_responses() {
    let fortunes = fortunes_page([Fortune {
        id: 1,
        message: "<b>bold</b>".to_owned(),
    }]);
    let response = Page(fortunes).into_response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.content_type().expect("content type"),
        "text/html; charset=utf-8"
    );
    let body = futures_lite::future::block_on(response.into_bytes()).expect("full body");
    assert!(std::str::from_utf8(&body)
        .expect("utf-8")
        .contains("<td>&lt;b&gt;bold&lt;/b&gt;</td>"));
}
