//! Static files over real loopback connections: traversal refused, directories, 404,
//! conditional requests, ranges, HEAD, content types, versioned URLs, large files streamed,
//! and the per-core cache noticing edits. Fixtures are written to a fresh temporary
//! directory by each test.
#![cfg(feature = "files")]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use squall::{App, Request, StaticFiles};
use support::{get, request, start, Client, Response, TempDir};

const HELLO: &str = "hello, static world\n";
const SECRET: &str = "the secret outside the root\n";

/// Deterministic bytes that do not repeat with a short period.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// `<base>/root` with the usual files, and `<base>/outside/secret.txt` next to it.
fn fixture(name: &str) -> (TempDir, PathBuf) {
    let base = TempDir::new(name);
    base.write("outside/secret.txt", SECRET);
    base.write("root/hello.txt", HELLO);
    base.write("root/css/site.css", "body { color: #333; }\n".repeat(50));
    base.write("root/data.json", "{\"ok\":true}");
    base.write("root/logo.png", b"\x89PNG\r\n\x1a\nnot really");
    base.write("root/README", "no extension");
    base.write("root/page.html", "<!doctype html><p>hi</p>");
    base.write("root/docs/index.html", "<h1>docs</h1>");
    base.write("root/docs/guide.txt", "guide");
    std::fs::create_dir_all(base.0.join("root/empty")).expect("create dir");
    std::os::unix::fs::symlink(
        base.0.join("outside/secret.txt"),
        base.0.join("root/link-out"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(base.0.join("outside"), base.0.join("root/dir-out"))
        .expect("symlink");
    std::os::unix::fs::symlink(base.0.join("root/hello.txt"), base.0.join("root/link-in"))
        .expect("symlink");
    let root = base.0.join("root");
    (base, root)
}

/// A one-worker server with `StaticFiles` over `root`, configured by `configure`, plus
/// `/url?p=…` answering `static_url(p)`.
fn serve(root: &Path, configure: fn(StaticFiles) -> StaticFiles) -> squall::RunningServer {
    let root = root.to_owned();
    start(move || {
        let files = configure(StaticFiles::new(&root).expect("fixture root"));
        let urls = files.clone();
        App::new()
            .get("/static/{*path}", files)
            .get("/url", move |req: Request| {
                let url = req.arg::<String>("p").map(|p| urls.static_url(&p));
                async move { url }
            })
    })
}

fn plain(files: StaticFiles) -> StaticFiles {
    files
}

fn with_index(files: StaticFiles) -> StaticFiles {
    files.index_file("index.html")
}

fn get_with(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n")
}

#[test]
fn traversal_attempts_are_refused() {
    let (_base, root) = fixture("traversal");
    let server = serve(&root, plain);
    let addr = server.local_addr();
    let attempts = [
        "/static/../outside/secret.txt",
        "/static/css/../../outside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/%2E%2E/outside/secret.txt",
        "/static/.%2e/outside/secret.txt",
        "/static/..%2Foutside%2Fsecret.txt",
        "/static/..%2foutside/secret.txt",
        "/static/%2e%2e%2foutside%2fsecret.txt",
        "/static/..%5Coutside%5Csecret.txt",
        "/static/..\\outside\\secret.txt",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/hello.txt%00.png",
        "/static/./hello.txt",
        "/static/css//site.css",
        "/static/link-out",
        "/static/dir-out/secret.txt",
    ];
    for target in attempts {
        let r = request(addr, get(target));
        assert_eq!(r.status, 403, "{target}: {}", r.text());
        assert!(
            !r.text().contains("secret outside"),
            "{target} leaked the secret"
        );
    }
    // A link that stays inside the root is fine.
    let r = request(addr, get("/static/link-in"));
    assert_eq!((r.status, r.text().as_str()), (200, HELLO));
}

#[test]
fn directories_missing_files_and_index_pages() {
    let (_base, root) = fixture("dirs");
    let plain_server = serve(&root, plain);
    let addr = plain_server.local_addr();
    for (target, status) in [
        ("/static/docs/", 403),
        ("/static/docs", 403),
        ("/static/empty/", 403),
        ("/static/nope.txt", 404),
        ("/static/nope/", 404),
        ("/static/nope/deeper.txt", 404),
        ("/static/hello.txt/", 404),
        ("/static/hello.txt/x", 404),
    ] {
        assert_eq!(request(addr, get(target)).status, status, "{target}");
    }

    let index_server = serve(&root, with_index);
    let addr = index_server.local_addr();
    let r = request(addr, get("/static/docs/"));
    assert_eq!((r.status, r.text().as_str()), (200, "<h1>docs</h1>"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = request(addr, get("/static/docs?x=1"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/static/docs/?x=1"));
    assert_eq!(request(addr, get("/static/empty/")).status, 403);
    assert_eq!(request(addr, get("/static/empty")).status, 301);
    assert_eq!(request(addr, get("/static/nope/")).status, 404);
    assert_eq!(request(addr, get("/static/docs/guide.txt")).text(), "guide");
}

#[test]
fn content_types_follow_the_extension() {
    let (_base, root) = fixture("types");
    let server = serve(&root, plain);
    let addr = server.local_addr();
    for (target, content_type) in [
        ("/static/hello.txt", "text/plain; charset=utf-8"),
        ("/static/css/site.css", "text/css; charset=utf-8"),
        ("/static/page.html", "text/html; charset=utf-8"),
        ("/static/data.json", "application/json"),
        ("/static/logo.png", "image/png"),
        ("/static/README", "application/octet-stream"),
    ] {
        let r = request(addr, get(target));
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.header("content-type"), Some(content_type), "{target}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{target}");
    }
}

/// The validators of `/static/hello.txt`.
fn validators(client: &mut Client) -> (String, String) {
    client.send(get("/static/hello.txt"));
    let r = client.response();
    assert_eq!(r.status, 200);
    let etag = r.header("etag").expect("etag").to_owned();
    let last_modified = r.header("last-modified").expect("last-modified").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong etag: {etag}"
    );
    (etag, last_modified)
}

fn http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

#[test]
fn conditional_requests_answer_304_and_412() {
    let (_base, root) = fixture("conditional");
    let server = serve(&root, plain);
    let mut client = Client::connect(server.local_addr());
    let (etag, last_modified) = validators(&mut client);
    let modified = httpdate::parse_http_date(&last_modified).expect("valid date");
    let before = http_date(modified - Duration::from_secs(10));
    let after = http_date(modified + Duration::from_secs(10));
    let weak = format!("W/{etag}");
    let list = format!("\"nope\", {etag}");
    let cases: Vec<(String, u16)> = vec![
        (format!("If-None-Match: {etag}\r\n"), 304),
        (format!("If-None-Match: {weak}\r\n"), 304),
        (format!("If-None-Match: {list}\r\n"), 304),
        ("If-None-Match: *\r\n".to_owned(), 304),
        ("If-None-Match: \"nope\"\r\n".to_owned(), 200),
        (format!("If-Modified-Since: {last_modified}\r\n"), 304),
        (format!("If-Modified-Since: {after}\r\n"), 304),
        (format!("If-Modified-Since: {before}\r\n"), 200),
        ("If-Modified-Since: not a date\r\n".to_owned(), 200),
        // If-None-Match decides when both are present.
        (
            format!("If-None-Match: \"nope\"\r\nIf-Modified-Since: {after}\r\n"),
            200,
        ),
        (
            format!("If-None-Match: {etag}\r\nIf-Modified-Since: {before}\r\n"),
            304,
        ),
        (format!("If-Match: {etag}\r\n"), 200),
        ("If-Match: \"nope\"\r\n".to_owned(), 412),
        (format!("If-Unmodified-Since: {before}\r\n"), 412),
        (format!("If-Unmodified-Since: {last_modified}\r\n"), 200),
    ];
    for (headers, status) in cases {
        client.send(get_with("/static/hello.txt", &headers));
        let r = client.response();
        assert_eq!(r.status, status, "{headers:?}");
        match status {
            304 => {
                assert!(r.body.is_empty());
                assert_eq!(r.header("etag"), Some(etag.as_str()), "{headers:?}");
                assert_eq!(r.header("last-modified"), Some(last_modified.as_str()));
                assert_eq!(r.header("cache-control"), Some("no-cache"));
            }
            200 => assert_eq!(r.text(), HELLO, "{headers:?}"),
            _ => {}
        }
    }
}

/// Sends `GET path` with `headers` on `client` and returns the response.
fn fetch(client: &mut Client, path: &str, headers: &str) -> Response {
    client.send(get_with(path, headers));
    client.response()
}

#[test]
fn ranges_answer_206_416_or_the_whole_file() {
    let (base, root) = fixture("ranges");
    let big = pseudo_random(3 * 1024 * 1024 + 17);
    base.write("root/big.bin", &big);
    let server = serve(&root, plain);
    let mut client = Client::connect(server.local_addr());
    let (etag, last_modified) = validators(&mut client);

    // Cached in memory and streamed from disk behave alike.
    for (path, content) in [
        ("/static/hello.txt", HELLO.as_bytes()),
        ("/static/big.bin", &big),
    ] {
        let len = content.len();
        let cases = [
            ("bytes=0-4", 0, 4),
            ("bytes=7-", 7, len - 1),
            ("bytes=-6", len - 6, len - 1),
            ("bytes=3-99999999", 3, len - 1),
            ("bytes=-99999999", 0, len - 1),
        ];
        for (range, start, end) in cases {
            let r = fetch(&mut client, path, &format!("Range: {range}\r\n"));
            assert_eq!(r.status, 206, "{path} {range}");
            let expected_range = format!("bytes {start}-{end}/{len}");
            assert_eq!(r.header("content-range"), Some(expected_range.as_str()));
            assert_eq!(r.body, &content[start..=end], "{path} {range}");
        }
        for range in [
            format!("bytes={len}-"),
            format!("bytes={}-{}", len + 5, len + 9),
            "bytes=-0".to_owned(),
        ] {
            let r = fetch(&mut client, path, &format!("Range: {range}\r\n"));
            assert_eq!(r.status, 416, "{path} {range}");
            let unsatisfied = format!("bytes */{len}");
            assert_eq!(r.header("content-range"), Some(unsatisfied.as_str()));
        }
        // Several ranges, a malformed one, or another unit: the whole file.
        for range in ["bytes=0-1,4-5", "bytes=5-1", "lines=1-2"] {
            let r = fetch(&mut client, path, &format!("Range: {range}\r\n"));
            assert_eq!(r.status, 200, "{path} {range}");
            assert_eq!(r.body.len(), len);
        }
    }

    // If-Range keeps the range only while the file is the one the client has.
    let partial = |headers: &str, client: &mut Client| {
        fetch(
            client,
            "/static/hello.txt",
            &format!("Range: bytes=0-4\r\n{headers}"),
        )
        .status
    };
    assert_eq!(partial(&format!("If-Range: {etag}\r\n"), &mut client), 206);
    assert_eq!(
        partial(&format!("If-Range: {last_modified}\r\n"), &mut client),
        206
    );
    assert_eq!(partial("If-Range: \"old\"\r\n", &mut client), 200);
    assert_eq!(
        partial(&format!("If-Range: W/{etag}\r\n"), &mut client),
        200
    );
    assert_eq!(
        partial("If-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n", &mut client),
        200
    );
}

#[test]
fn head_sends_the_headers_of_get_without_a_body() {
    let (base, root) = fixture("head");
    base.write("root/big.bin", pseudo_random(2 * 1024 * 1024));
    let server = serve(&root, plain);
    let mut client = Client::connect(server.local_addr());
    for (path, len) in [
        ("/static/hello.txt", HELLO.len()),
        ("/static/big.bin", 2 * 1024 * 1024),
    ] {
        client.send(format!("HEAD {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        let r = client.head_response();
        assert_eq!(r.status, 200, "{path}");
        let expected_len = len.to_string();
        assert_eq!(
            r.header("content-length"),
            Some(expected_len.as_str()),
            "{path}"
        );
        assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
        // Ranges are for GET only.
        client.send(format!(
            "HEAD {path} HTTP/1.1\r\nHost: test\r\nRange: bytes=0-1\r\n\r\n"
        ));
        assert_eq!(client.head_response().status, 200);
    }
    // Nothing but the heads came back: the next response follows at once.
    client.send(get("/static/hello.txt"));
    assert_eq!(client.response().text(), HELLO);
}

#[test]
fn large_files_stream_byte_for_byte() {
    let (base, root) = fixture("large");
    let big = pseudo_random(5 * 1024 * 1024 + 3);
    base.write("root/big.bin", &big);
    // Small chunks: many reads per response.
    let server = serve(&root, |files| files.chunk_size(64 * 1024));
    let mut client = Client::connect(server.local_addr());
    for _ in 0..2 {
        client.send(get("/static/big.bin"));
        let r = client.response();
        assert_eq!(r.status, 200);
        assert!(!r.chunked, "the length is known");
        assert_eq!(r.body.len(), big.len());
        assert!(r.body == big, "streamed bytes differ");
    }
    client.send(get("/static/hello.txt"));
    assert_eq!(client.response().text(), HELLO);
}

/// Drops `path`'s pages from the page cache, so that reading it has to wait for the disk.
fn evict_from_page_cache(path: &Path) {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::File::open(path).expect("open fixture");
    file.sync_all().expect("sync fixture");
    // SAFETY: a plain system call on a descriptor that `file` keeps open.
    let status = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(status, 0, "posix_fadvise failed");
}

#[test]
fn files_not_in_the_page_cache_are_read_through_io_uring() {
    let (base, root) = fixture("cold");
    let big = pseudo_random(2 * 1024 * 1024 + 5);
    let big_path = base.write("root/big.bin", &big);
    let small_path = base.write("root/small.txt", "small and cold");
    let server = serve(&root, |files| files.revalidate_every(Duration::ZERO));
    let mut client = Client::connect(server.local_addr());
    for _ in 0..2 {
        evict_from_page_cache(&big_path);
        evict_from_page_cache(&small_path);
        let r = fetch(&mut client, "/static/big.bin", "");
        assert!(r.body == big, "cold large file differs");
        let r = fetch(
            &mut client,
            "/static/big.bin",
            "Range: bytes=1000-2999999\r\n",
        );
        assert!(r.body == big[1000..], "cold range differs");
        assert_eq!(
            fetch(&mut client, "/static/small.txt", "").text(),
            "small and cold"
        );
    }
}

#[test]
fn versioned_urls_are_cached_for_a_year() {
    let (base, root) = fixture("versions");
    let server = serve(&root, |files| files.revalidate_every(Duration::ZERO));
    let mut client = Client::connect(server.local_addr());
    let url = fetch(&mut client, "/url?p=css/site.css", "").text();
    let (path, version) = url.split_once("?v=").expect("a version");
    assert_eq!(path, "/static/css/site.css");
    assert_eq!(version.len(), 16, "{url}");
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()));

    let r = fetch(&mut client, &url, "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    for other in [
        "/static/css/site.css",
        "/static/css/site.css?v=0123456789abcdef",
    ] {
        assert_eq!(
            fetch(&mut client, other, "").header("cache-control"),
            Some("no-cache")
        );
    }

    // Editing the file changes its URL; the old URL is no longer immutable.
    base.write("root/css/site.css", "body { color: red; }\n");
    let newer = fetch(&mut client, "/url?p=css/site.css", "").text();
    assert_ne!(newer, url);
    assert_eq!(
        fetch(&mut client, &newer, "").header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        fetch(&mut client, &url, "").header("cache-control"),
        Some("no-cache")
    );

    // Names are encoded; what cannot be served gets no version.
    base.write("root/a b.txt", "spaced");
    let spaced = fetch(&mut client, "/url?p=a%20b.txt", "").text();
    assert!(spaced.starts_with("/static/a%20b.txt?v="), "{spaced}");
    assert_eq!(fetch(&mut client, &spaced, "").text(), "spaced");
    for missing in ["nope.css", "../outside/secret.txt", "link-out"] {
        let url = fetch(&mut client, &format!("/url?p={missing}"), "").text();
        assert!(!url.contains("?v="), "{missing}: {url}");
    }
}

#[test]
fn the_cache_serves_an_edited_file_fresh() {
    let (base, root) = fixture("edits");
    let server = serve(&root, |files| files.revalidate_every(Duration::ZERO));
    let mut client = Client::connect(server.local_addr());
    let path = base.write("root/note.txt", "first");
    let first = fetch(&mut client, "/static/note.txt", "");
    assert_eq!(first.text(), "first");

    // A different size.
    base.write("root/note.txt", "second version");
    let second = fetch(&mut client, "/static/note.txt", "");
    assert_eq!(second.text(), "second version");
    assert_ne!(second.header("etag"), first.header("etag"));

    // The same size, only the modification time tells.
    base.write("root/note.txt", "SECOND VERSION");
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(later))
        .expect("set mtime");
    let third = fetch(&mut client, "/static/note.txt", "");
    assert_eq!(third.text(), "SECOND VERSION");
    assert_ne!(third.header("etag"), second.header("etag"));

    // Deleted: gone.
    std::fs::remove_file(&path).expect("remove");
    assert_eq!(fetch(&mut client, "/static/note.txt", "").status, 404);
}

#[test]
fn a_large_file_is_never_served_stale() {
    let (base, root) = fixture("stale");
    // What the cache knows is trusted for an hour, but a large file is checked when opened.
    let server = serve(&root, |files| {
        files.revalidate_every(Duration::from_secs(3600))
    });
    let mut client = Client::connect(server.local_addr());
    let before = pseudo_random(300 * 1024);
    base.write("root/big.bin", &before);
    assert!(fetch(&mut client, "/static/big.bin", "").body == before);
    let after = pseudo_random(200 * 1024 + 1);
    base.write("root/big.bin", &after);
    let r = fetch(&mut client, "/static/big.bin", "");
    assert_eq!(r.body.len(), after.len());
    assert!(r.body == after);
}

#[test]
fn a_mount_outside_the_prefix_is_a_server_error() {
    let (_base, root) = fixture("prefix");
    let server = serve(&root, |files| files.url_prefix("/assets"));
    let r = request(server.local_addr(), get("/static/hello.txt"));
    assert_eq!(r.status, 500);
}
