use super::*;

fn line(message: Option<&str>) -> Line<'_> {
    Line {
        at: Instant::now(),
        method: "/helloworld.Greeter/SayHello",
        code: "NOT_FOUND",
        duration_us: 42,
        peer: Some(SocketAddr::from(([127, 0, 0, 1], 5000))),
        caller: "collector",
        trace_id: None,
        message,
    }
}

fn render(format: fn(&mut LineBuf, &Line<'_>), line: &Line<'_>) -> Vec<u8> {
    let mut out = LineBuf::default();
    format(&mut out, line);
    out.buf
}

#[test]
fn a_trace_id_follows_the_caller_in_both_formats() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = Line { trace_id: Some(trace), ..line(Some("gone")) };
    let text_line = String::from_utf8(render(text, &traced)).unwrap();
    assert!(
        text_line.ends_with(&format!(" caller=collector trace_id={trace} message=\"gone\"\n")),
        "{text_line}"
    );
    let v: serde_json::Value = serde_json::from_slice(&render(json, &traced)).unwrap();
    assert_eq!(v["fields"]["trace_id"], trace);
    let untraced: serde_json::Value = serde_json::from_slice(&render(json, &line(None))).unwrap();
    assert!(untraced["fields"].get("trace_id").is_none());
}

#[test]
fn json_lines_have_tracing_subscribers_shape_and_escape_the_message() {
    let buf = render(json, &line(Some("bad \"x\"\nnext")));
    assert_eq!(buf.last(), Some(&b'\n'));
    assert_eq!(buf.iter().filter(|b| **b == b'\n').count(), 1);
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["target"], "dataport::call");
    let ts = v["timestamp"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    assert_eq!(
        v["fields"],
        serde_json::json!({
            "method": "/helloworld.Greeter/SayHello",
            "code": "NOT_FOUND",
            "duration_us": 42,
            "peer": "127.0.0.1:5000",
            "caller": "collector",
            "message": "bad \"x\"\nnext",
        })
    );
}

#[test]
fn text_lines_read_like_tracing_subscribers_and_stay_on_one_line() {
    let s = String::from_utf8(render(text, &line(Some("two\nlines")))).unwrap();
    let (ts, rest) = s.split_once("  ").unwrap();
    assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    assert_eq!(
        rest,
        "INFO dataport::call: method=/helloworld.Greeter/SayHello code=NOT_FOUND duration_us=42 \
         peer=127.0.0.1:5000 caller=collector message=\"two\\nlines\"\n"
    );
    let buf = render(text, &Line { peer: None, ..line(None) });
    assert!(String::from_utf8(buf).unwrap().ends_with("code=NOT_FOUND duration_us=42 caller=collector\n"));
    let buf = render(text, &Line { caller: "a b\nc", ..line(None) });
    assert!(String::from_utf8(buf).unwrap().ends_with(" caller=\"a b\\nc\"\n"), "a name cannot forge a line");
}

#[test]
fn a_line_reads_the_wall_clock_through_the_monotonic_one_within_a_second() {
    let mut out = LineBuf::default();
    let start = Instant::now();
    let first = out.wall(start);
    // Within the second, the wall clock is the first reading moved on.
    let later = start + std::time::Duration::from_millis(300);
    assert_eq!(out.wall(later), first + 300_000);
    // A second on (or an instant before the reading), it is read again.
    let next = start + std::time::Duration::from_secs(1);
    let read = out.wall(next);
    assert_eq!(out.clock, Some((next, read)));
    let now = unix_micros(SystemTime::now());
    assert!(read <= now && now - read < 1_000_000);
}

#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines that reach the writer once the sink has flushed.
fn count_lines(out: &Shared, guard: super::super::SinkGuard) -> usize {
    drop(guard);
    out.0.lock().unwrap().iter().filter(|b| **b == b'\n').count()
}

#[test]
fn a_thread_that_holds_lines_hands_them_over_in_batches_and_one_that_does_not_at_once() {
    std::thread::spawn(|| {
        let out = Shared::default();
        let (sink, guard) = super::super::Sink::spawn(out.clone()).unwrap();
        let lines = CallLines { sink, format: LogFormat::Json };
        // Not holding (no park seen): every line goes at once.
        lines.write(&line(None));
        assert!(LINE.with_borrow(|held| held.buf.is_empty()));
        // Holding: lines stay until BATCH bytes, then go together.
        LINE.with_borrow_mut(|held| held.holds = true);
        let mut held_lines = 0;
        while LINE.with_borrow(|held| held.buf.len() + 300 < BATCH) {
            lines.write(&line(None));
            held_lines += 1;
        }
        assert!(held_lines > 10);
        assert!(LINE.with_borrow(|held| !held.buf.is_empty()));
        while LINE.with_borrow(|held| !held.buf.is_empty()) {
            lines.write(&line(None));
            held_lines += 1;
        }
        // And what a thread holds when it parks goes then.
        lines.write(&line(None));
        LINE.with_borrow_mut(|held| lines.hand_over(held));
        assert_eq!(count_lines(&out, guard), 1 + held_lines + 1);
    })
    .join()
    .unwrap();
}

#[test]
fn times_match_rfc3339_with_microseconds() {
    let mut out = LineBuf::default();
    let base = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_244_844);
    for offset_us in [0, 42, 999_999, 1_000_000, 1_000_001, 86_400_000_123] {
        let t = base + std::time::Duration::from_micros(offset_us);
        out.buf.clear();
        out.time(unix_micros(t));
        assert_eq!(String::from_utf8_lossy(&out.buf), humantime::format_rfc3339_micros(t).to_string());
    }
    out.buf.clear();
    out.time(unix_micros(base));
    assert_eq!(out.buf, b"2026-11-21T07:07:24.000000Z");
}

#[test]
fn remembered_peers_and_methods_never_leak_into_other_lines() {
    let mut out = LineBuf::default();
    let mut render_with = |method: &str, port: u16| {
        out.buf.clear();
        let line = Line { method, peer: Some(SocketAddr::from(([10, 0, 0, 1], port))), ..line(None) };
        json(&mut out, &line);
        serde_json::from_slice::<serde_json::Value>(&out.buf).unwrap()["fields"].clone()
    };
    for (method, port) in [("/a/B", 1), ("/a/B", 1), ("/a/\"C", 2), ("/a/B", 2), ("/d/E", 65535)] {
        let fields = render_with(method, port);
        assert_eq!(fields["method"], method);
        assert_eq!(fields["peer"], format!("10.0.0.1:{port}"));
    }
    let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 80));
    let buf = render(text, &Line { peer: Some(v6), ..line(None) });
    assert!(String::from_utf8(buf).unwrap().ends_with(" peer=[::1]:80 caller=collector\n"));
}

#[test]
fn code_names_are_canonical() {
    assert_eq!(code_name(0), "OK");
    assert_eq!(code_name(14), "UNAVAILABLE");
    assert_eq!(code_name(16), "UNAUTHENTICATED");
    assert_eq!(code_name(17), "UNKNOWN");
    assert_eq!(code_name(-1), "UNKNOWN");
}
