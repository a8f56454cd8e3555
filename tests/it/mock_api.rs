//! A stand-in for the Anthropic Messages API, for tests that run the real Claude Code client
//! without a key or a network (tests/it/plugin_e2e.rs): `POST /v1/messages`, streamed (SSE) or
//! not, answered with a `tool_use` of the Bash tool running the command the test sets, then,
//! once the client sends its `tool_result`, with the text "done". Every request is recorded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};

/// A request the client made.
#[derive(Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Value,
}

struct MockState {
    /// The Bash command the model asks for.
    command: String,
    /// Another tool the model asks for instead, with its input.
    tool: Option<(String, Value)>,
    requests: Vec<Request>,
    tool_uses: usize,
    /// The model "thinks" until this file exists (20 s at most) before it answers.
    think_until: Option<std::path::PathBuf>,
}

impl MockState {
    /// The answer to one request: status, content type, body.
    fn answer(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (&'static str, &'static str, Vec<u8>) {
        let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.requests.push(Request {
            method: method.to_string(),
            path: path.to_string(),
            body: req.clone(),
        });
        if method != "POST" || path.split('?').next() != Some("/v1/messages") {
            let error = json!({"type": "error", "error": {"type": "not_found_error",
                "message": format!("this mock answers POST /v1/messages only, not {method} {path}")
            }});
            return (
                "404 Not Found",
                "application/json",
                error.to_string().into_bytes(),
            );
        }
        let (name, input) = self.tool.clone().unwrap_or_else(|| {
            let input = json!({"command": self.command, "description": "the command under test"});
            ("Bash".to_string(), input)
        });
        let offers_bash = req["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == name.as_str()));
        let answered = req["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_array())
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"));
        // The block, the same block as streamed (start, delta) and the stop reason.
        let (block, start, delta, stop) = if offers_bash && !answered {
            self.tool_uses += 1;
            let id = format!("toolu_e2e_{}", self.tool_uses);
            (
                json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                json!({"type": "input_json_delta", "partial_json": input.to_string()}),
                "tool_use",
            )
        } else {
            (
                json!({"type": "text", "text": "done"}),
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": "done"}),
                "end_turn",
            )
        };
        let model = req["model"].as_str().unwrap_or("claude-mock");
        let message = |content: Value, stop: Value| {
            json!({"id": "msg_e2e", "type": "message", "role": "assistant", "model": model,
                   "content": content, "stop_reason": stop, "stop_sequence": null,
                   "usage": {"input_tokens": 10, "output_tokens": 5}})
        };
        if req["stream"] != true {
            let whole = message(json!([block]), json!(stop));
            return ("200 OK", "application/json", whole.to_string().into_bytes());
        }
        let events = [
            json!({"type": "message_start", "message": message(json!([]), Value::Null)}),
            json!({"type": "content_block_start", "index": 0, "content_block": start}),
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                   "usage": {"output_tokens": 5}}),
            json!({"type": "message_stop"}),
        ];
        let mut sse = String::new();
        for e in events {
            sse += &format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap());
        }
        ("200 OK", "text/event-stream", sse.into_bytes())
    }
}

/// A stand-in for the Anthropic Messages API on 127.0.0.1 (HTTP/1.1, keep-alive), recording
/// every request.
pub struct MockApi {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockApi {
    pub fn start() -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(MockState {
            command: String::new(),
            tool: None,
            requests: Vec::new(),
            tool_uses: 0,
            think_until: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let state = state.clone();
                        std::thread::spawn(move || serve(stream, &state));
                    }
                }
            })
        };
        MockApi {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }
}

impl MockApi {
    /// The base URL, for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes the model ask for the Bash command `command` from now on; returns the number of
    /// requests so far.
    pub fn ask_for(&self, command: &str) -> usize {
        let mut state = self.state.lock().unwrap();
        state.command = command.to_string();
        state.tool = None;
        state.requests.len()
    }

    /// Makes the model ask for tool `name` with `input` from now on (not Bash); returns the
    /// number of requests so far.
    pub fn ask_for_tool(&self, name: &str, input: Value) -> usize {
        let mut state = self.state.lock().unwrap();
        state.tool = Some((name.to_string(), input));
        state.requests.len()
    }

    /// Makes the model take its time: it answers once `path` exists, or after 20 s — as a real
    /// one may, while what the session started goes on.
    pub fn think_until(&self, path: &std::path::Path) {
        self.state.lock().unwrap().think_until = Some(path.to_path_buf());
    }

    /// The requests made since the `first`.
    pub fn requests_since(&self, first: usize) -> Vec<Request> {
        self.state.lock().unwrap().requests[first..].to_vec()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accepting thread
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers the requests of one connection until the client closes it.
fn serve(stream: TcpStream, state: &Mutex<MockState>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let line = |r: &mut BufReader<TcpStream>| -> Option<String> {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(l.trim_end().to_string()),
        }
    };
    loop {
        let Some(request_line) = line(&mut reader) else {
            return;
        };
        if request_line.is_empty() {
            continue;
        }
        let mut words = request_line.split(' ');
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        loop {
            let Some(h) = line(&mut reader) else { return };
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let Some(size) = line(&mut reader) else {
                    return;
                };
                let size =
                    usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap_or(0);
                if size == 0 {
                    while line(&mut reader).is_some_and(|l| !l.is_empty()) {}
                    break;
                }
                let mut chunk = vec![0; size + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        let think_until = state.lock().unwrap().think_until.clone();
        if let Some(until) = think_until {
            let started = std::time::Instant::now();
            while !until.exists() && started.elapsed() < std::time::Duration::from_secs(20) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let (status, content_type, mut payload) =
            state.lock().unwrap().answer(&method, &path, &body);
        if method == "HEAD" {
            payload.clear(); // (the client's `HEAD /api/hello`, when nonessential traffic is on)
        }
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            payload.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(&payload).is_err() || close {
            return;
        }
    }
}
