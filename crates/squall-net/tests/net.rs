//! squall_net::Socket and Listener: reads, writes and accepts through the executor's epoll
//! set, waiting and waking on both directions, connect failures, and executors made one
//! after another on the same thread (each gets its own epoll set).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use squall_net::{Listener, Socket};

/// Runs `test` to completion on a new glommio executor on this thread.
fn run<T>(test: impl std::future::Future<Output = T>) -> T {
    glommio::LocalExecutorBuilder::default()
        .make()
        .expect("a test executor")
        .run(test)
}

/// A blocking listener on an ephemeral loopback port, served by `serve` on its own thread.
fn peer(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        serve(stream);
    });
    addr
}

#[test]
fn a_round_trip_waits_for_the_reply_and_sees_the_end() {
    let addr = peer(|mut stream| {
        let mut request = [0u8; 5];
        stream.read_exact(&mut request).expect("read");
        // The reply comes late, so the client's read must wait for it.
        std::thread::sleep(Duration::from_millis(50));
        stream.write_all(b"pong:").expect("write");
        stream.write_all(&request).expect("write");
    });
    let reply = run(async move {
        let mut socket = Socket::connect(addr, None).await.expect("connect");
        socket.write_all(b"hello").await.expect("write");
        let mut reply = Vec::new();
        socket.read_to_end(&mut reply).await.expect("read");
        reply
    });
    assert_eq!(reply, b"pong:hello");
}

#[test]
fn a_write_larger_than_the_socket_buffers_waits_for_the_reader() {
    const SIZE: usize = 32 << 20;
    let addr = peer(|mut stream| {
        // Starts reading only after the writer has had time to fill every buffer.
        std::thread::sleep(Duration::from_millis(200));
        let mut received = Vec::new();
        stream.read_to_end(&mut received).expect("read");
        stream
            .write_all(&(received.len() as u64).to_be_bytes())
            .expect("write");
        let sum: u64 = received.iter().map(|b| u64::from(*b)).sum();
        stream.write_all(&sum.to_be_bytes()).expect("write");
    });
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let expected_sum: u64 = data.iter().map(|b| u64::from(*b)).sum();
    let (len, sum) = run(async move {
        let mut socket = Socket::connect(addr, None).await.expect("connect");
        socket.write_all(&data).await.expect("write");
        socket.shutdown(Shutdown::Write).expect("shutdown");
        let mut answer = [0u8; 16];
        socket.read_exact(&mut answer).await.expect("read");
        let (len, sum) = answer.split_at(8);
        (
            u64::from_be_bytes(len.try_into().expect("8 bytes")),
            u64::from_be_bytes(sum.try_into().expect("8 bytes")),
        )
    });
    assert_eq!(len, SIZE as u64);
    assert_eq!(sum, expected_sum);
}

#[test]
fn connecting_to_a_closed_port_fails_with_the_reason() {
    // Bind then drop: the port is very likely closed for the moment of the test.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("addr");
    let result = run(async move { Socket::connect(addr, None).await.map(drop) });
    let error = result.expect_err("nothing listens there");
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{error}"
    );
}

#[test]
fn a_connection_can_come_from_a_chosen_source_address() {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = peer(move |stream| {
        tx.send(stream.peer_addr().expect("peer")).expect("send");
    });
    let from = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 7), 0));
    run(async move {
        let socket = Socket::connect(addr, Some(from)).await.expect("connect");
        assert_eq!(socket.local_addr().expect("local").ip(), from.ip());
    });
    let seen = rx.recv_timeout(Duration::from_secs(5)).expect("accepted");
    assert_eq!(seen.ip(), from.ip());
}

#[test]
fn executors_made_one_after_another_on_a_thread_each_get_working_sockets() {
    for round in 0..3u8 {
        let addr = peer(move |mut stream| {
            std::thread::sleep(Duration::from_millis(20));
            stream.write_all(&[round]).expect("write");
        });
        let byte = run(async move {
            let mut socket = Socket::connect(addr, None).await.expect("connect");
            let mut byte = [0u8; 1];
            socket.read_exact(&mut byte).await.expect("read");
            byte[0]
        });
        assert_eq!(byte, round);
    }
}

#[test]
fn many_sockets_wait_at_once_and_each_is_woken() {
    const SOCKETS: usize = 200;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let accepted: Vec<_> = (0..SOCKETS)
            .map(|_| listener.accept().expect("accept").0)
            .collect();
        // Answer in reverse order, after everyone is waiting.
        std::thread::sleep(Duration::from_millis(50));
        for (i, mut stream) in accepted.into_iter().enumerate().rev() {
            let _ = stream.write_all(&(i as u32).to_be_bytes());
        }
    });
    let total = run(async move {
        let mut sockets = Vec::new();
        for _ in 0..SOCKETS {
            sockets.push(Socket::connect(addr, None).await.expect("connect"));
        }
        let reads = sockets.into_iter().map(|mut socket| {
            glommio::spawn_local(async move {
                let mut word = [0u8; 4];
                socket.read_exact(&mut word).await.expect("read");
                u64::from(u32::from_be_bytes(word))
            })
        });
        let tasks: Vec<_> = reads.collect();
        let mut total = 0;
        for task in tasks {
            total += task.await;
        }
        total
    });
    assert_eq!(total, (0..SOCKETS as u64).sum::<u64>());
}

#[test]
fn a_listener_takes_a_burst_then_waits_for_the_next_connection() {
    let reply = run(async {
        let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("addr");
        let listener = Listener::new(std_listener.into()).expect("listener");
        assert_eq!(listener.local_addr().expect("addr"), addr);
        // Three connections queued before the first accept: all taken without waiting.
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(Socket::connect(addr, None).await.expect("connect"));
        }
        let mut accepted = Vec::new();
        for _ in 0..3 {
            accepted.push(listener.accept().await.expect("accept"));
        }
        // The backlog is empty now: the fourth accept waits until a client arrives later.
        let late = glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            let mut client = Socket::connect(addr, None).await.expect("connect");
            client.write_all(b"late").await.expect("write");
            client
        });
        let (mut fourth, peer) = listener.accept().await.expect("accept");
        let mut got = [0u8; 4];
        fourth.read_exact(&mut got).await.expect("read");
        let late = late.await;
        // The peer's address comes with the connection.
        assert_eq!(peer, Some(late.local_addr().expect("addr")));
        drop((late, clients, accepted));
        got
    });
    assert_eq!(&reply, b"late");
}

#[test]
fn a_unix_listener_hands_out_streams_without_a_peer_address() {
    let dir = std::env::temp_dir().join(format!("squall-net-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("s.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let client = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut stream = std::os::unix::net::UnixStream::connect(path).expect("connect");
            stream.write_all(b"ping").expect("write");
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).expect("read");
            reply
        }
    });
    run(async move {
        let listener = Listener::new(std_listener.into()).expect("listener");
        assert!(listener.local_addr().is_err(), "not an IP socket");
        let (mut stream, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer, None);
        let mut got = [0u8; 4];
        stream.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        stream.write_all(b"pong").await.expect("write");
        stream.close().await.expect("close");
    });
    assert_eq!(client.join().expect("client"), b"pong");
    let _ = std::fs::remove_dir_all(&dir);
}
