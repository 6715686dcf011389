//! The in-process test client used as an application's own tests would use it: a login flow
//! through signed cookies, the XSRF middleware and the authenticated guard, without a socket.
//! The client's core behaviour is tested in `testing.rs`.
#![cfg(all(feature = "auth", feature = "signed", feature = "xsrf"))]

use serde::{Deserialize, Serialize};
use squall::auth::{authenticated, RequestAuth};
use squall::signed::{SignedCookies, SigningKeys};
use squall::testing::{run, TestClient};
use squall::xsrf::{self, Xsrf};
use squall::{App, Error, Json, Request, Response, StatusCode};

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Note {
    title: String,
    stars: u8,
}

async fn login_form(req: Request) -> Result<String, Error> {
    xsrf::form_field(&req)
}

async fn login(mut req: Request) -> Result<Response, Error> {
    let args = req.args().await?;
    let name = args.get::<String>("name")?;
    if args.raw("password") != Some("hunter22") {
        return Err(Error::forbidden("wrong password"));
    }
    let cookie = req.sign_cookie("user", &name)?;
    Ok(Response::redirect_with(StatusCode::SEE_OTHER, "/me").set_cookie(cookie))
}

async fn me(mut req: Request) -> String {
    let user = req.current_user::<String>().await;
    format!(
        "you are {}",
        user.as_deref().map_or("nobody", String::as_str)
    )
}

async fn echo_note(mut req: Request) -> Result<Json<Note>, Error> {
    let mut note: Note = req.json().await?;
    note.stars += 1;
    Ok(Json(note))
}

fn app() -> App {
    App::new()
        .wrap(Xsrf::default())
        .signing_keys(SigningKeys::new(1, [42u8; 32]).expect("32 bytes"))
        .login_url("/login")
        .current_user(|req: &Request| std::future::ready(req.signed_cookie("user")))
        .get("/login", login_form)
        .post("/login", login)
        .get("/me", authenticated(me))
        .put("/notes", echo_note)
}

fn hidden_value(field: &str) -> String {
    let start = field.find("value=\"").expect("a value") + 7;
    field[start..]
        .split('"')
        .next()
        .expect("closing quote")
        .to_owned()
}

#[test]
fn a_login_flow_runs_in_process_with_cookies_kept_between_requests() {
    run(async {
        let client = TestClient::new(app()).expect("valid routes");
        let r = client.get("/me").send().await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.header("location"), Some("/login?next=%2Fme"));

        let form = client.get("/login").send().await;
        assert!(client.cookie("_xsrf").is_some(), "the xsrf cookie is kept");
        let token = hidden_value(&form.text());

        let r = client
            .post("/login")
            .form(&[("name", "ada"), ("password", "wrong"), ("_xsrf", &token)])
            .send()
            .await;
        assert_eq!(r.status(), 403);
        assert_eq!(r.text().trim_end(), "wrong password");

        let r = client
            .post("/login")
            .form(&[("name", "ada"), ("password", "hunter22")])
            .send()
            .await;
        assert_eq!(r.status(), 403, "no token: refused by the xsrf check");

        let r = client
            .post("/login")
            .form(&[("name", "ada"), ("password", "hunter22"), ("_xsrf", &token)])
            .send()
            .await;
        assert_eq!(r.status(), 303);
        let r = client.get("/me").send().await;
        assert_eq!(r.text(), "you are ada");

        // Forgetting the cookie logs out.
        client.set_cookie("user", None);
        assert_eq!(client.get("/me").send().await.status(), 302);
    })
    .expect("an executor");
}

#[test]
fn json_bodies_headers_and_router_answers_work_in_process() {
    run(async {
        let client = TestClient::new(app()).expect("valid routes");
        let note = Note {
            title: "x".into(),
            stars: 4,
        };
        let token = client.cookie("_xsrf");
        assert!(token.is_none());
        client.get("/login").send().await;
        let raw = client.cookie("_xsrf").expect("set by the first page");
        let r = client
            .put("/notes")
            .header("x-xsrf-token", &raw)
            .json(&note)
            .send()
            .await;
        assert_eq!(r.status(), 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.json::<Note>(),
            Note {
                title: "x".into(),
                stars: 5
            }
        );
        let r = client.get("/nowhere").send().await;
        assert_eq!(r.status(), 404);
        // The xsrf check runs before routing, so a state-changing method needs the token
        // even to learn that it is not allowed.
        let r = client.request(squall::Method::PATCH, "/notes").send().await;
        assert_eq!(r.status(), 403);
        let r = client
            .request(squall::Method::PATCH, "/notes")
            .header("x-xsrf-token", &raw)
            .send()
            .await;
        assert_eq!(r.status(), 405);
        assert_eq!(r.header("allow"), Some("OPTIONS, PUT"));
        // A head the server would refuse is refused here too.
        let r = client.get("/login").header("bad name", "x").send().await;
        assert_eq!(r.status(), 400);
    })
    .expect("an executor");
}
