//! The step-by-step page, end to end: `vmsim explain --html` writes it, headless
//! Chromium opens it through chromedriver (the W3C WebDriver protocol, spoken here over
//! a plain TCP socket), and the test presses Next and Previous, checks what is shown,
//! and takes a screenshot. `vmsim run --html` is checked on the example scenario.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).

mod support;
use support::{folder as temp_dir, output as vmsim};

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The JSON embedded in a page.
fn embedded(page: &str) -> Value {
    let tag = "id=\"walkthrough\">";
    let start = page.find(tag).expect("the steps' JSON is embedded") + tag.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).expect("the embedded JSON parses")
}

#[test]
fn run_html_writes_one_step_per_translation_of_the_scenario() {
    let dir = temp_dir("run");
    let out = dir.join("scenario.html");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/scenario.vmt");
    let o = vmsim(&[
        "run",
        "--html",
        out.to_str().unwrap(),
        scenario.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("scenario.html"));
    let page = std::fs::read_to_string(&out).unwrap();
    let v = embedded(&page);
    // Five accesses, none crossing a page.
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| s["attempts"][0]["kernel"]["kind"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        kinds,
        ["demand-zero", "demand-zero", "-", "cow-copy", "-"],
        "{kinds:?}"
    );
    assert_eq!(steps[2]["pid"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_html_refuses_a_long_trace_naming_the_cap() {
    let dir = temp_dir("long");
    let trace = dir.join("long.vmt");
    let mut text = String::from("#vmsim-text 1\n");
    for i in 0..10_001u64 {
        text.push_str(&format!("R 1 {:#x}\n", 0x10000 + (i % 16) * 8));
    }
    std::fs::write(&trace, text).unwrap();
    let out = dir.join("long.html");
    let o = vmsim(&[
        "run",
        "--html",
        out.to_str().unwrap(),
        trace.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("10000"), "{err}");
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- A WebDriver client, just big enough ----

/// One HTTP/1.1 request to chromedriver; returns the status and the JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if body.is_some() {
        req.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
    req.push_str(&payload);
    s.write_all(req.as_bytes()).unwrap();
    // Read the head, then exactly the body it announces: chromedriver may keep the
    // connection open whatever the request says.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).expect("reading chromedriver's answer");
        assert!(n > 0, "chromedriver closed the connection before answering");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut rest = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let done = match length {
            Some(len) => rest.len() >= len,
            None if chunked => rest.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).expect("reading chromedriver's answer");
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&buf[..n]);
    }
    if let Some(len) = length {
        rest.truncate(len);
    } else if chunked {
        rest = dechunk(&rest);
    }
    let v = if rest.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&rest).unwrap_or_else(|e| {
            panic!("chromedriver answered {status} with non-JSON ({e}): {head}")
        })
    };
    (status, v)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&b[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
}

/// Decodes standard base64 (what WebDriver screenshots are).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// A chromedriver process, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session, ended when dropped.
struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = http(
            self.driver.port,
            "DELETE",
            &format!("/session/{}", self.id),
            None,
        );
    }
}

impl Session<'_> {
    fn call(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{what}", self.id);
        let (status, v) = http(self.driver.port, method, &path, body.as_ref());
        assert_eq!(status, 200, "{method} {what}: {v}");
        v["value"].clone()
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn count(&self, css: &str) -> usize {
        let v = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array().map_or(0, |a| a.len())
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_driver() -> Driver {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: the browser test needs Debian's chromium and chromedriver; \
             install them with `apt-get install -y chromium chromium-driver` (.ci/run does)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (status, v) = http(port, "GET", "/status", None);
            if status == 200 && v["value"]["ready"] == true {
                return driver;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn new_session(driver: &Driver) -> Session<'_> {
    let caps = json!({
        "capabilities": {
            "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1600"]
                }
            }
        }
    });
    let (status, v) = http(driver.port, "POST", "/session", Some(&caps));
    assert_eq!(status, 200, "starting a browser session: {v}");
    let id = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session id: {v}"))
        .to_string();
    Session { driver, id }
}

#[test]
fn the_page_steps_forwards_and_backwards_in_headless_chromium() {
    let dir = temp_dir("browser");
    let out = dir.join("explain.html");
    // A miss that walks and fills, a hit on the same page, and a fault.
    let o = vmsim(&[
        "explain",
        "--html",
        out.to_str().unwrap(),
        "0x6000",
        "0x6008",
        "0x0",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let driver = start_driver();
    let s = new_session(&driver);
    s.call(
        "POST",
        "/timeouts",
        Some(json!({"implicit": 2000, "pageLoad": 20000})),
    );
    s.call(
        "POST",
        "/url",
        Some(json!({"url": format!("file://{}", out.display())})),
    );

    // Step 1: the address, split; a miss, so the walk read four entries.
    assert_eq!(s.text("#step"), "step 1 of 3");
    let bits = s.text("#bits");
    assert!(bits.contains("0x6000"), "{bits}");
    assert!(bits.contains("VPN 0x6"), "{bits}");
    assert!(bits.contains("PML4"), "{bits}");
    assert_eq!(s.count("#walk table tr"), 5, "a header and four levels");
    assert!(s.text("#tlb").contains("miss"));
    assert!(s.text("#fault").contains("No page fault"));

    // Next: the same page hits in the TLB, and its entry is marked.
    s.click("#next");
    assert_eq!(s.text("#step"), "step 2 of 3");
    assert!(s.text("#bits").contains("0x6008"));
    assert!(
        s.count("#tlb tr.touched.hit") >= 1,
        "the hit entry is highlighted"
    );
    assert!(s.text("#walk").contains("no walk"));

    // Next again: a fault with nobody to handle it.
    s.click("#next");
    assert_eq!(s.text("#step"), "step 3 of 3");
    assert!(s.text("#fault").contains("page fault"));

    // Previous goes back.
    s.click("#prev");
    assert_eq!(s.text("#step"), "step 2 of 3");
    assert!(s.text("#bits").contains("0x6008"));

    // The frames section lists the page and its tables.
    assert!(s.count("#frames .frame") > 0);
    assert!(s.text("#swap").contains("No swap"));

    let shot = s.call("GET", "/screenshot", None);
    let png = base64_decode(shot.as_str().expect("a base64 screenshot"));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    let shot_path = dir.join("step2.png");
    std::fs::write(&shot_path, &png).unwrap();
    eprintln!("screenshot: {}", shot_path.display());
    drop(s);
    drop(driver);
}
