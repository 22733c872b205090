//! `lvc lsp` driven over stdio by a minimal client: diagnostics at the line
//! on open and after a change, hover shapes, definition honouring the phase
//! (an in-place TRAIN-only layer), references, rename and formatting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
}

fn read_messages(stdout: ChildStdout, send: std::sync::mpsc::Sender<Value>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        if send.send(serde_json::from_slice(&body).unwrap()).is_err() {
            return;
        }
    }
}

impl Client {
    fn start(init: Value) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lvc"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, incoming) = channel();
        std::thread::spawn(move || read_messages(stdout, send));
        let mut client = Client { child, stdin, incoming, next_id: 1 };
        let answer = client
            .request("initialize", json!({"capabilities": {}, "initializationOptions": init}));
        assert!(answer["capabilities"]["hoverProvider"].as_bool().unwrap());
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.incoming.recv_timeout(Duration::from_secs(30)).expect("an answer");
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{m}");
                return m["result"].clone();
            }
        }
    }

    /// The next diagnostics published for `version`.
    fn diagnostics(&mut self, version: i64) -> Vec<Value> {
        loop {
            let m = self.incoming.recv_timeout(Duration::from_secs(30)).expect("diagnostics");
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["version"] == version
            {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }

    fn at(&mut self, method: &str, line: u32, character: u32, extra: Value) -> Value {
        let mut params = json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        self.request(method, params)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const URI: &str = "file:///work/demo.prototxt";

fn demo() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo.prototxt")).unwrap()
}

/// The 0-based line of the first line of `text` equal to `wanted` (trimmed)
/// at or after `from`.
fn line_of(text: &str, wanted: &str, from: usize) -> u32 {
    text.lines().enumerate().skip(from).find(|(_, l)| l.trim() == wanted).unwrap().0 as u32
}

#[test]
fn diagnostics_hover_navigation_rename_and_formatting_over_stdio() {
    let text = demo();
    let mut client = Client::start(Value::Null);
    // A typo in a field name: the diagnostic lands on its line.
    let typo = text.replacen("num_output:", "num_outptu:", 1);
    let typo_line = line_of(&typo, "num_outptu: 16", 0);
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "prototxt", "version": 1, "text": typo}}),
    );
    let found = client.diagnostics(1);
    assert!(!found.is_empty(), "a diagnostic for the typo");
    assert_eq!(found[0]["range"]["start"]["line"], typo_line, "{found:?}");
    assert_eq!(found[0]["code"], "lvc::schema::unknown_field");
    assert!(
        found[0]["message"].as_str().unwrap().contains("num_output"),
        "did you mean: {found:?}"
    );
    // Fixed by a change: no diagnostics.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    assert_eq!(client.diagnostics(2), Vec::<Value>::new());

    // Hover on conv1's bottom `data_preprocessed`: its shape and producer.
    let conv1 = line_of(&text, "name: \"conv1\"", 0) as usize;
    let bottom = line_of(&text, "bottom: \"data_preprocessed\"", conv1);
    let hover = client.at("textDocument/hover", bottom, 12, json!({}));
    let shown = hover["contents"]["value"].as_str().unwrap();
    assert!(shown.starts_with("`data_preprocessed`: 4×1×256×256"), "{shown}");
    assert!(
        shown.contains("produced by `normalise`") && shown.contains("consumed by `conv1`"),
        "{shown}"
    );

    // In TEST (the default) the Augment layer is out: normalise's bottom
    // `data` comes from the Input layer.
    let normalise = line_of(&text, "name: \"normalise\"", 0) as usize;
    let data_bottom = line_of(&text, "bottom: \"data\"", normalise);
    let input_top = line_of(&text, "top: \"data\"", 0);
    let definition = client.at("textDocument/definition", data_bottom, 12, json!({}));
    assert_eq!(definition["range"]["start"]["line"], input_top, "{definition}");

    // References and rename of conv1 (the ReLU writes it in place).
    let refs = client.at(
        "textDocument/references",
        bottom + 1,
        8,
        json!({"context": {"includeDeclaration": true}}),
    );
    let conv1_uses = text.matches("\"conv1\"").count() - 1; // less the layer's own name
    assert_eq!(refs.as_array().unwrap().len(), conv1_uses, "{refs}");
    let rename = client.at("textDocument/rename", bottom + 1, 8, json!({"newName": "c1"}));
    let edits = rename["changes"][URI].as_array().unwrap();
    assert_eq!(edits.len(), conv1_uses);
    assert!(edits.iter().all(|e| e["newText"] == "\"c1\""));

    // Formatting: a messy text gets one whole-document edit; a tidy one none.
    let formatting =
        json!({"textDocument": {"uri": URI}, "options": {"tabSize": 2, "insertSpaces": true}});
    let whole = client.request("textDocument/formatting", formatting.clone());
    let tidy = whole[0]["newText"].as_str().unwrap().to_string();
    assert!(tidy.contains("    weight_filler {\n      type: \"msra\"\n    }"), "{tidy}");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 3}, "contentChanges": [{"text": tidy}]}),
    );
    assert_eq!(client.request("textDocument/formatting", formatting.clone()), json!([]));
    client.notify("textDocument/didChange", json!({"textDocument": {"uri": URI, "version": 4}, "contentChanges": [{"text": "layer{name:'a' type:\"ReLU\"}"}]}));
    let edit = client.request("textDocument/formatting", formatting);
    assert_eq!(edit[0]["newText"], "layer {\n  name: \"a\"\n  type: \"ReLU\"\n}\n");

    assert_eq!(client.request("shutdown", Value::Null), Value::Null);
    client.notify("exit", Value::Null);
    assert!(client.child.wait().unwrap().success());
}

#[test]
fn junk_and_a_huge_paste_get_diagnostics_not_a_crash() {
    let mut client = Client::start(json!({"phase": "train"}));
    client.notify("textDocument/didOpen", json!({"textDocument": {"uri": URI, "languageId": "prototxt", "version": 1, "text": "layer { name: \"x\u{0}\u{7f}\" ]]] {{{"}}));
    assert!(!client.diagnostics(1).is_empty());
    let huge = "# padding\n".repeat(1 << 20); // 10 MiB
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": huge}]}),
    );
    let found = client.diagnostics(2);
    assert_eq!(found[0]["code"], "lvc::lsp::too_large", "{found:?}");
    let hover = client.at("textDocument/hover", 0, 0, json!({}));
    assert_eq!(hover, Value::Null);
}
